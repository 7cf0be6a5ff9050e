"""The results store's summary uses the definitions of the published experiment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import orgsim
import orgsim.comparison
import orgsim.results
from orgsim._io import write_meta

PERIODS = 260  # the published experiment's horizon (docs/results.md): 5 years of weeks


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
                f"periods={PERIODS}",
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
    """The published experiment's per-firm outcomes over its whole run
    (``orgsim.comparison.firm_outcomes``, which ``experiments/strategy_families.py`` reports),
    averaged over firms (a firm never solvent has no fill rate and is left out of that mean)."""
    firms = orgsim.comparison.firm_outcomes(res, horizons=[PERIODS])
    return {
        "cumulative_fcf": firms.cumulative_fcf.mean(),
        "survival": firms.survival.mean(),
        "ending_headroom": firms.credit_headroom.mean(),
        "fill_rate": firms.fill_rate.mean(),  # pandas skips NaN, as SQL's avg skips NULL
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


def seal(run, **meta):
    """Write ``run``'s meta.json as a finished run writes it: last, with the size and SHA-256
    of each of its Parquet files."""
    files = {name: {} for name in ("kpis.parquet", "teams.parquet") if (run / name).exists()}
    write_meta(run, meta, files)


def hand_made_store(root, runs=("a", "b")):
    """Two copies (two runs) of three firms over three periods, written as
    ``SimulationResult.to_parquet`` writes them: no run id, no environment column, a meta.json
    without config (and here no teams.parquet).

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
        seal(root / run)
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
        seal(root / run, run_id=run, seed=0, engine="numba")
    # decoys that the names would match as patterns (sweep1/, and a/ for [ab]): not read
    hand_made_store(tmp_path / "sweep1", runs=("b",))
    hand_made_store(root, runs=("a",))
    files = {str(root / run / "kpis.parquet") for run in (*AWKWARD, "a")}

    kpis = orgsim.results.load(root)
    assert set(kpis.kpis_file) == files and len(kpis) == 9 * len(files)
    assert len(orgsim.results.load(root, "teams")) == 2 * len(AWKWARD)
    runs = orgsim.results.load(root, "runs")
    assert set(runs.run_id.dropna()) == set(AWKWARD) and len(runs) == len(files)
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
    assert len(orgsim.results.load(root, "runs")) == 2  # every complete run has its meta.json


def test_a_malformed_meta_json_leaves_its_run_out_with_a_warning(tmp_path, capsys):
    root = hand_made_store(tmp_path)
    (root / "b" / "meta.json").write_text('{"run_id": "b", "se')  # damaged: the run cannot be verified
    with pytest.warns(
        UserWarning, match=r"left out the run in '.*b': meta\.json does not read as a JSON object"
    ):
        assert summary_of(root).runs == 1
    with pytest.warns(UserWarning, match=r"'.*b'"):
        runs = orgsim.results.load(root, "runs")
    assert [Path(f).parent.name for f in runs.meta_file] == ["a"]
    with pytest.warns(UserWarning):
        con = orgsim.results.open(root)
    assert con.sql("SELECT count(*) FROM kpis").fetchall() == [(9,)]
    # on the command line: one warning line naming the file, then the table of the other run
    assert orgsim.results.main(["summarize", str(root), "--by", "strategy"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith("orgsim-results: warning: results: left out the run in ") and err.count("\n") == 1
    assert "bso" in out


def flip_a_bit(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[min(len(data) - 1, int(len(data) * at))] ^= 0x10
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "emptied": lambda p: p.write_bytes(b""),
    "bit-flipped": flip_a_bit,
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_file_leaves_its_run_out_and_the_rest_readable(damage, tmp_path, capsys):
    """One damaged kpis.parquet never makes the store unreadable: its run is left out with one
    warning that names the file; every other run is read, and nothing of the damaged one is."""
    root = hand_made_store(tmp_path, runs=("a", "b", "c"))
    DAMAGE[damage](root / "b" / "kpis.parquet")
    with pytest.warns(UserWarning) as caught:
        kpis = orgsim.results.load(root)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "b" in messages[0] and "kpis.parquet" in messages[0]
    assert {Path(f).parent.name for f in kpis.kpis_file} == {"a", "c"} and len(kpis) == 18
    with pytest.warns(UserWarning, match="kpis.parquet"):
        assert summary_of(root).runs == 2
    assert orgsim.results.main(["summarize", str(root), "--by", "strategy"]) == 0
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "kpis.parquet" in err and "bso" in out


def test_a_damaged_teams_file_leaves_its_run_out_of_every_view(tmp_path):
    root = hand_made_store(tmp_path, runs=("a", "b"))
    for run in ("a", "b"):
        pd.DataFrame({"team": [0, 1], "cost": [1.0, 2.0]}).to_parquet(root / run / "teams.parquet")
        seal(root / run)
    flip_a_bit(root / "a" / "teams.parquet", at=0.9)
    with pytest.warns(UserWarning, match=r"'.*a': teams\.parquet does not match its SHA-256 checksum"):
        teams = orgsim.results.load(root, "teams")
    assert len(teams) == 2
    with pytest.warns(UserWarning):
        assert orgsim.results.load(root).kpis_file.str.contains("/b/").all()


def test_unfinished_runs_are_left_out_with_one_warning(tmp_path):
    """A run without meta.json (a sweep still running, or killed before the run finished) is not
    in any view, however complete its kpis.parquet looks."""
    root = hand_made_store(tmp_path, runs=("a", "b", "c"))
    (root / "b" / "meta.json").unlink()
    (root / "c" / "meta.json").unlink()
    with pytest.warns(UserWarning, match=r"left out 2 unfinished runs \(no meta\.json.*'.*b/kpis\.parquet'"):
        assert set(orgsim.results.load(root).kpis_file) == {str(root / "a" / "kpis.parquet")}
    (root / "a" / "meta.json").unlink()
    with (
        pytest.warns(UserWarning),
        pytest.raises(orgsim.results.ResultsError, match=r"no complete run under .*3 unfinished"),
    ):
        orgsim.results.load(root)


def test_a_run_without_checksums_is_not_served(tmp_path):
    """A meta.json of the older layout (a list of file names) cannot be verified."""
    root = hand_made_store(tmp_path, runs=("a", "b"))
    (root / "a" / "meta.json").write_text(json.dumps({"run_id": "a", "files": ["kpis.parquet"]}))
    with pytest.warns(UserWarning, match=r"'.*a': meta\.json records no file checksums"):
        assert summary_of(root).runs == 1


def test_size_only_verification_skips_the_checksum(tmp_path):
    root = hand_made_store(tmp_path, runs=("a", "b"))
    flip_a_bit(root / "a" / "kpis.parquet", at=1.0)  # the last byte, Parquet's magic: a same-size change
    with pytest.warns(UserWarning, match="SHA-256"):
        assert summary_of(root).runs == 1
    with pytest.raises(orgsim.results.ResultsError, match=r"DuckDB cannot read '.*a/kpis\.parquet'"):
        orgsim.results.load(root, verify="size")  # the damage passes a size check; DuckDB names the file
    with pytest.raises(ValueError, match=r"verify == 'sha', must be 'checksum' or 'size'"):
        orgsim.results.load(root, verify="sha")


def test_summary_names_a_kpi_column_a_file_lacks(tmp_path, capsys):
    root = hand_made_store(tmp_path, runs=("a", "b", "c"))
    for run in ("b", "c"):
        pd.read_parquet(root / run / "kpis.parquet").drop(columns="fill_rate").to_parquet(
            root / run / "kpis.parquet"
        )
        seal(root / run)
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
    seal(root / "a")
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
    assert out.startswith("usage: orgsim-results summarize [-h] [--by BY] [--outcomes OUTCOMES] path")
    assert err == ""


def test_an_empty_by_summarizes_the_whole_store_on_both_interfaces(tmp_path, capsys):
    root = hand_made_store(tmp_path)
    whole = orgsim.results.summarize(root, by=())
    assert len(whole) == 1
    pd.testing.assert_frame_equal(orgsim.results.summarize(root, by=""), whole)
    assert orgsim.results.main(["summarize", str(root), "--by", ""]) == 0
    out, err = capsys.readouterr()
    assert out.strip() and err == ""


def test_summary_gives_the_standard_error_beside_each_mean(tmp_path):
    """``<outcome>_se`` is s/√n over the group's firms (here 6: two runs of three firms)."""
    row = summary_of(hand_made_store(tmp_path))
    cum = np.array([6.0, 3.0, -5.0] * 2)
    assert row.cumulative_fcf_se == pytest.approx(cum.std(ddof=1) / np.sqrt(6))
    survived = np.array([1.0, 0.0, 0.0] * 2)
    assert row.survival_se == pytest.approx(survived.std(ddof=1) / np.sqrt(6))
    fill = np.array([2.5 / 3, 0.8] * 2)  # the never-solvent firm has no fill rate: n = 4
    assert row.fill_rate_se == pytest.approx(fill.std(ddof=1) / np.sqrt(4))


def test_summary_reports_the_outcomes_asked_for(tmp_path, capsys):
    root = hand_made_store(tmp_path)
    row = summary_of(root, outcomes=("survival", "credit_headroom"))
    assert list(row.index) == [
        "strategy",
        "runs",
        "firms",
        "survival",
        "survival_se",
        "credit_headroom",
        "credit_headroom_se",
    ]
    # a KPI column's name: its per-firm mean over the run
    headroom = np.array([[90.0, 95.0, 100.0], [60.0, 50.0, 50.0], [-10.0, -10.0, -10.0]]).mean(axis=1)
    assert row.credit_headroom == pytest.approx(headroom.mean())
    with pytest.raises(ValueError, match=r"outcomes == 'cash_flow', must be one of cumulative_fcf, survival"):
        summary_of(root, outcomes=("cash_flow",))
    with pytest.raises(ValueError, match=r"kpis column 'cash' is missing from 2 of 2 files"):
        summary_of(root, outcomes="ending_cash")
    assert orgsim.results.main(["summarize", str(root), "--by", "strategy", "--outcomes", "survival"]) == 0
    out, err = capsys.readouterr()
    assert "survival (%)" in out and "33.3% ± 21.1%" in out and "cumulative_fcf" not in out and err == ""


def test_summary_leaves_out_finance_outcomes_when_finance_is_off(tmp_path):
    """The beer game has no cash: its summary reports fill rate and operating cost."""
    res = orgsim.simulate(orgsim.compose(["scenario=beer_game"]), engine="numba")
    res.to_parquet(tmp_path / "beer", teams=False)
    summary = orgsim.results.summarize(tmp_path, by=())
    assert list(summary.columns) == [
        "runs",
        "firms",
        "fill_rate",
        "fill_rate_se",
        "operating_cost",
        "operating_cost_se",
    ]
    assert summary.operating_cost.iloc[0] == pytest.approx(res.kpis.operating_cost.sum())
    text = res.summary()
    assert "ending cash" not in text and "free cash flow" not in text and "total operating cost" in text


def test_plot_draws_each_environment_with_the_strategies_side_by_side(tmp_path, capsys):
    for strategy in ("bpo", "bso"):
        for env in ("stable", "volatile"):
            cfg = orgsim.compose([f"strategy={strategy}", f"environment={env}", "n_orgs=3", "periods=20"])
            res = orgsim.simulate(cfg, engine="numba")
            res.to_parquet(tmp_path / f"{strategy}-{env}", teams=False, extra_columns={"environment": env})
    assert orgsim.results.main(["plot", str(tmp_path), "--out", str(tmp_path / "figs")]) == 0
    out, err = capsys.readouterr()
    files = sorted((tmp_path / "figs").glob("*.png"))
    assert [f.name for f in files] == ["kpis_stable.png", "kpis_volatile.png"] and err == ""
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in files)
    assert out.split() == [str(f) for f in files]
    assert orgsim.results.main(["plot", str(tmp_path), "--kpis", "cash,bogus"]) == 2
    assert "kpis == 'bogus', must be a KPI column of the store" in capsys.readouterr().err
