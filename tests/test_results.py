"""The results store's summary uses the definitions of the published experiment."""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import orgsim
import orgsim.results


@functools.cache
def _experiment():
    """``experiments/strategy_families.py`` as a module: its per-firm outcomes are the oracle."""
    path = Path(__file__).resolve().parents[1] / "experiments" / "strategy_families.py"
    spec = importlib.util.spec_from_file_location("strategy_families", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two runs of the experiment's length with insolvent firms among them (little starting
    cash in a volatile market)."""
    root = tmp_path_factory.mktemp("store")
    results = {}
    for strategy in ("bpo", "bso"):
        cfg = orgsim.compose(
            [
                f"strategy={strategy}",
                "environment=volatile",
                "n_orgs=24",
                f"periods={_experiment().PERIODS}",
                "finance.initial_cash=6000",
            ]
        )
        res = orgsim.simulate(cfg, engine="numba")
        res.to_parquet(
            root / strategy,
            teams=False,
            extra_columns={"environment": "volatile", "run_id": f"run-{strategy}"},
        )
        results[strategy] = res
    return root, results


def expected_row(res):
    """The experiment's per-firm outcomes over its whole run (``firm_outcomes``), averaged over
    firms (a firm never solvent has no fill rate and is left out of that mean)."""
    experiment = _experiment()
    firms = experiment.firm_outcomes(res.kpi_arrays)
    whole = firms[firms.weeks == experiment.PERIODS]
    return {
        "cumulative_fcf": whole.cum_fcf.mean(),
        "survival": whole.survived.mean(),
        "ending_headroom": whole.credit_headroom.mean(),
        "fill_rate": whole.fill_rate.mean(),  # pandas skips NaN, as SQL's avg skips NULL
    }


def test_summary_matches_the_experiment_definitions(store):
    root, results = store
    summary = orgsim.results.summarize(root).set_index("strategy")
    for strategy, res in results.items():
        row = summary.loc[strategy]
        assert row.runs == 1 and row.firms == 24 and row.environment == "volatile"
        for column, value in expected_row(res).items():
            assert row[column] == pytest.approx(value, rel=1e-12), column


def test_summary_counts_dormant_weeks_in_survival_not_in_fill_rate(store):
    """The store has insolvent firms; their dormant weeks (fill rate 0) would pull the mean
    over all weeks below the mean over solvent weeks."""
    root, results = store
    summary = orgsim.results.summarize(root).set_index("strategy")
    insolvent = {s: int((~r.kpi_arrays["solvent"][:, -1].astype(bool)).sum()) for s, r in results.items()}
    assert sum(insolvent.values()) > 0
    for strategy, res in results.items():
        all_weeks = res.kpi_arrays["fill_rate"].mean(axis=1).mean()
        if insolvent[strategy]:
            assert summary.loc[strategy, "fill_rate"] > all_weeks
            assert summary.loc[strategy, "survival"] < 1.0
        else:
            assert summary.loc[strategy, "fill_rate"] == pytest.approx(all_weeks, rel=1e-12)


def test_store_written_by_to_parquet_opens_with_its_runs(store):
    """``SimulationResult.to_parquet`` writes a meta.json without the run id and git commit
    that the command line adds; the ``runs`` view still has a row per run (NULL there)."""
    root, results = store
    runs = orgsim.results.load(root, "runs").sort_values("meta_file")
    assert len(runs) == 2 and runs.run_id.isna().all() and runs.git_commit.isna().all()
    assert sorted(runs.engine) == ["numba", "numba"]
    assert list(runs.team_periods_per_second) == pytest.approx(
        [results[s].team_periods_per_second for s in ("bpo", "bso")]
    )


def hand_made_store(root, runs=("a", "b")):
    """Two copies (two runs) of three firms over three periods, written as
    ``SimulationResult.to_parquet`` writes them: no run id, no environment column (and here no
    meta.json or teams.parquet).

    Firm 0 stays solvent; firm 1 fails in period 2 with a recorded headroom that stays
    positive; firm 2 is never solvent."""
    frame = pd.DataFrame(
        {
            "org": np.repeat([0, 1, 2], 3),
            "period": np.tile([1, 2, 3], 3),
            "strategy": "bso",
            "free_cash_flow": [1.0, 2.0, 3.0, 4.0, -1.0, 0.0, -5.0, 0.0, 0.0],
            "solvent": [True, True, True, True, False, False, False, False, False],
            "credit_headroom": [90.0, 95.0, 100.0, 60.0, 50.0, 50.0, -10.0, -10.0, -10.0],
            "fill_rate": [1.0, 0.5, 1.0, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0],
        }
    )
    for run in runs:
        (root / run).mkdir(parents=True)
        frame.to_parquet(root / run / "kpis.parquet")
    return root


def test_summary_by_hand(tmp_path):
    summary = orgsim.results.summarize(hand_made_store(tmp_path), by=("strategy",))
    assert len(summary) == 1
    row = summary.iloc[0]
    assert row.runs == 2 and row.firms == 6  # runs told apart by their files
    assert row.cumulative_fcf == pytest.approx((6.0 + 3.0 - 5.0) / 3)
    assert row.survival == pytest.approx(1 / 3)
    # firm 1's positive recorded headroom counts as 0: it has no credit left to use
    assert row.ending_headroom == pytest.approx((100.0 + 0.0 - 10.0) / 3)
    # firm 2 was never solvent and is left out; firm 1 counts only its solvent period
    assert row.fill_rate == pytest.approx((2.5 / 3 + 0.8) / 2)


def test_summary_names_a_missing_grouping_column(tmp_path, capsys):
    root = hand_made_store(tmp_path)
    with pytest.raises(ValueError, match=r"by == 'environment', must be a column of the store: .*strategy"):
        orgsim.results.summarize(root)  # the default groups by strategy and environment
    assert orgsim.results.main(["summarize", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("orgsim-results: error: by == 'environment'") and err.count("\n") == 1


def summary_of(root, **kwargs):
    return orgsim.results.summarize(root, by=("strategy",), **kwargs).iloc[0]


# a sweep's run directory as the command line names it for a list override, and other names
# that DuckDB would take as glob patterns
AWKWARD = ("n_orgs=1,network.roles=[a,b,c,d],periods=5,seed=0", "x*y?z", "it's", "[ab]")


def test_paths_are_names_not_glob_patterns(tmp_path):
    root = hand_made_store(tmp_path / "sweep[1]", runs=AWKWARD)
    for run in AWKWARD:
        pd.DataFrame({"team": [0, 1], "cost": [1.0, 2.0]}).to_parquet(root / run / "teams.parquet")
        (root / run / "meta.json").write_text(json.dumps({"run_id": run, "seed": 0, "engine": "numba"}))
    # decoys that the names would match as patterns (sweep1/, and a/ for [ab]): not read
    hand_made_store(tmp_path / "sweep1", runs=("b",))
    hand_made_store(root, runs=("a",))
    files = {str(root / run / "kpis.parquet") for run in (*AWKWARD, "a")}

    kpis = orgsim.results.load(root)
    assert set(kpis.kpis_file) == files and len(kpis) == 9 * len(files)
    assert len(orgsim.results.load(root, "teams")) == 2 * len(AWKWARD)
    assert set(orgsim.results.load(root, "runs").run_id) == set(AWKWARD)
    assert summary_of(root).runs == len(files)

    # one run: its directory, or its kpis.parquet (with the run's teams and meta.json)
    run = root / AWKWARD[0]
    assert set(orgsim.results.load(run).kpis_file) == {str(run / "kpis.parquet")}
    assert list(orgsim.results.load(run / "kpis.parquet", "runs").run_id) == [AWKWARD[0]]
    assert len(orgsim.results.load(run / "kpis.parquet", "teams")) == 2
    pd.testing.assert_series_equal(summary_of(run / "kpis.parquet"), summary_of(run))
    assert summary_of(run).runs == 1


def test_load_names_a_table_the_store_lacks(tmp_path):
    root = hand_made_store(tmp_path)
    with pytest.raises(
        ValueError, match=r"no teams\.parquet under '.*': runs keep team records only with output\.teams=true"
    ):
        orgsim.results.load(root, "teams")
    with pytest.raises(ValueError, match=r"no meta\.json under '.*'"):
        orgsim.results.load(root, "runs")
    (root / "a" / "meta.json").write_text("{")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"no readable meta\.json under"):
        orgsim.results.load(root, "runs")


def test_a_malformed_meta_json_is_left_out_of_runs_with_a_warning(tmp_path, capsys):
    root = hand_made_store(tmp_path)
    (root / "a" / "meta.json").write_text(json.dumps({"run_id": "a", "seed": 1, "engine": "numba"}))
    (root / "b" / "meta.json").write_text('{"run_id": "b", "se')  # damaged
    # the summary reads no meta.json
    assert summary_of(root).runs == 2
    assert orgsim.results.main(["summarize", str(root), "--by", "strategy"]) == 0
    assert capsys.readouterr().err == ""
    with pytest.warns(UserWarning, match=r"runs view: left out 1 meta\.json .*'.*b/meta\.json'"):
        runs = orgsim.results.load(root, "runs")
    assert list(runs.run_id) == ["a"]
    with pytest.warns(UserWarning, match="left out 1 meta.json"):
        con = orgsim.results.open(root)
    assert con.sql("SELECT count(*) FROM kpis").fetchall() == [(18,)]


def test_summary_names_a_kpi_column_a_file_lacks(tmp_path, capsys):
    root = hand_made_store(tmp_path, runs=("a", "b", "c"))
    for run in ("b", "c"):
        pd.read_parquet(root / run / "kpis.parquet").drop(columns="fill_rate").to_parquet(
            root / run / "kpis.parquet"
        )
    message = (
        r"kpis column 'fill_rate' is missing from 2 of 3 files: '.*b/kpis\.parquet', '.*c/kpis\.parquet'"
    )
    with pytest.raises(ValueError, match=message):
        orgsim.results.summarize(root, by=("strategy",))
    assert orgsim.results.main(["summarize", str(root), "--by", "strategy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("orgsim-results: error: kpis column 'fill_rate'") and err.count("\n") == 1


def test_summary_takes_a_string_as_one_column(tmp_path):
    root = hand_made_store(tmp_path)
    pd.testing.assert_frame_equal(
        orgsim.results.summarize(root, by="strategy"), orgsim.results.summarize(root, by=("strategy",))
    )
    with pytest.raises(ValueError, match=r"by == '', must be a column name"):
        orgsim.results.summarize(root, by=("strategy", ""))


def test_summary_takes_a_dotted_override_column(tmp_path):
    root = hand_made_store(tmp_path)
    frame = pd.read_parquet(root / "a" / "kpis.parquet").assign(**{"policy.theta": 0.5})
    frame.to_parquet(root / "a" / "kpis.parquet")
    by_theta = orgsim.results.summarize(root, by=("policy.theta",))
    assert by_theta["policy.theta"].tolist()[0] == 0.5 and by_theta["policy.theta"].isna().tolist() == [
        False,
        True,
    ]
    assert by_theta.runs.tolist() == [1, 1]


def test_summary_of_a_file(tmp_path):
    """A run's kpis.parquet is that run; another file says what is expected."""
    root = hand_made_store(tmp_path)
    pd.testing.assert_frame_equal(
        orgsim.results.summarize(root / "a" / "kpis.parquet", by="strategy"),
        orgsim.results.summarize(root / "a", by="strategy"),
    )
    (root / "notes.txt").write_text("")
    with pytest.raises(ValueError, match=r"is a file; must be a run or sweep directory, or a run's kpis"):
        orgsim.results.summarize(root / "notes.txt")


@pytest.mark.parametrize("by", [",", "strategy,,environment"])
def test_command_line_rejects_an_empty_column_in_by(by, tmp_path, capsys):
    """An empty name among the --by columns is an error, not silently dropped."""
    assert orgsim.results.main(["summarize", str(hand_made_store(tmp_path)), "--by", by]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        f"orgsim-results: error: --by == {by!r}, must be comma-separated column names, "
        "e.g. strategy,environment\n"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: command"),
        (["summarise", "x"], "argument command: invalid choice: 'summarise'"),
        (["summarize"], "the following arguments are required: path"),
        (["summarize", "x", "y"], "unrecognized arguments: y"),
        (["summarize", "x", "--byy", "strategy"], "unrecognized arguments: --byy"),
    ],
)
def test_command_line_usage_errors_are_one_line(argv, message, capsys):
    assert orgsim.results.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"orgsim-results: error: {message}") and err.count("\n") == 1


def test_command_line_help_is_unchanged(capsys):
    assert orgsim.results.main(["summarize", "--help"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("usage: orgsim-results summarize [-h] [--by BY] path") and err == ""


def test_an_empty_by_summarizes_the_whole_store_on_both_interfaces(tmp_path, capsys):
    root = hand_made_store(tmp_path)
    whole = orgsim.results.summarize(root, by=())
    assert len(whole) == 1
    pd.testing.assert_frame_equal(orgsim.results.summarize(root, by=""), whole)
    assert orgsim.results.main(["summarize", str(root), "--by", ""]) == 0
    out = capsys.readouterr().out
    assert out.strip() and "error" not in out
