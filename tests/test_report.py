"""``orgsim-compare`` (orgsim.report): the comparison report, run in process."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from orgsim import report

SMALL = ["--firms", "6", "--periods", "60", "--strategies", "bpo_bpm,bso", "--environments", "stable"]


def test_the_report_prints_the_headline_and_writes_every_file(tmp_path, capsys):
    out = tmp_path / "rep"
    assert report.main([*SMALL, "--out", str(out)]) == 0
    printed, _ = capsys.readouterr()
    lines = printed.strip().splitlines()
    assert lines[0].startswith("culture-aligned minus efficiency-only (pooled), 6 firms per strategy")
    assert lines[1].lstrip().startswith("stable") and "cumulative FCF" in lines[1] and "survival" in lines[1]
    assert ("ahead for good from week" in lines[1]) or ("no crossover within 60 weeks" in lines[1])
    assert lines[-1].startswith(f"report: {out}/report.md")
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "effects.parquet", "outcomes.parquet", "crossover.parquet", "difference.png",
            "effects.png", "meta.json"} <= names  # fmt: skip
    meta = json.loads((out / "meta.json").read_text())
    assert meta["complete"] and set(meta["files"]) == names - {"meta.json"}
    assert meta["n_orgs"] == 6 and meta["strategies"] == ["bpo_bpm", "bso"] and meta["engine"] == "numba"
    effects = pd.read_parquet(out / "effects.parquet")
    assert {"mean", "mean_se", "mean_ci_lower", "mean_ci_upper", "n"} <= set(effects.columns)
    family = effects[(effects.contrast == report.FAMILY) & (effects.outcome == "cumulative_fcf")]
    # the headline prints the family effect at the last horizon, rounded to whole MU
    last = family[family.horizon == family.horizon.max()].iloc[0]
    assert f"{last['mean']:+,.0f} MU" in lines[1]
    assert "## Headline" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--firms", "1"], "n_orgs == 1, must be >= 2"),
        (["--strategies", "bso,nope"], "nope"),
        (["--environments", "stable,"], "--environments == 'stable,', must be comma-separated names"),
        (["--alpha", "2"], "alpha == 2.0, must be"),
        (["policy.theta=7"], "policy.theta == 7.0, must be <= 1"),
        (["--firms", "x"], "argument --firms: invalid int value: 'x'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    assert report.main([*args, "--out", str(tmp_path / "r")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("orgsim-compare: error: ")
    assert message in err
    assert not (tmp_path / "r").exists()


LONGER = [
    "--firms",
    "4",
    "--periods",
    "160",
    "--strategies",
    "bpo_bpm,bso",
    "--environments",
    "stable,volatile",
]


@pytest.fixture(scope="module")
def longer_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "longer"
    import contextlib
    import io

    printed, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(err):
        code = report.main([*LONGER, "--forecast-steps", "26", "--out", str(out)])
    return code, out, printed.getvalue(), err.getvalue()


def test_the_report_forecasts_past_the_horizon_as_the_library_does(longer_report):
    from orgsim.comparison import compare

    code, out, printed, err = longer_report
    assert code == 0
    assert "forecasting the pooled series 26 periods past period 160" in err and "backtests done" in err
    # the same comparison and forecast called directly (same seed: the same firms)
    res = compare(strategies=["bpo_bpm", "bso"], environments=["stable", "volatile"], n_orgs=4, periods=160)
    direct = report.forecast_pooled(res, 26)
    written = pd.read_parquet(out / "forecasts.parquet")
    pd.testing.assert_frame_equal(written, direct.summary_frame(), check_dtype=False)
    assert set(written.kpi) == set(report.FORECAST_KPIS) and set(written.kind) == {"family", "difference"}
    assert written.period.min() == 161 and written.period.max() == 186
    # the headline's forecast line: each environment's family difference at week 186 and its interval
    line = [x for x in printed.splitlines() if x.lstrip().startswith("forecast to week 186")]
    assert len(line) == 1
    w = direct.winner(report.FAMILY, "cumulative_fcf")
    for r in w.itertuples():
        assert f"{r.environment} {r.mean:+,.0f} [{r.mean_ci_lower:+,.0f}, {r.mean_ci_upper:+,.0f}]" in line[0]
    same = int((np.sign(w["mean"]) == np.sign(w.last_observed)).sum())
    assert line[0].endswith(f"same sign as simulated at week 160 in {same} of 2 environments")
    text = (out / "report.md").read_text()
    assert "## Forecasts past the horizon" in text and "![forecasts past the horizon](forecast.png)" in text
    assert (out / "forecast.png").stat().st_size > 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["forecast"]["steps"] == 26 and "forecasts.parquet" in meta["files"]


def test_the_report_backtests_the_pooled_series_against_seasonal_naive(longer_report):
    _, out, _, _ = longer_report
    bt = pd.read_parquet(out / "backtests.parquet")
    assert set(bt.model) == {"ETS", "Drift", "Naive", "SeasonalNaive"} and set(bt.kpi) == {"free_cash_flow"}
    assert set(bt.environment) == {"stable", "volatile"} and set(bt.series_kind) == {"family", "difference"}
    assert (bt.n_origins == 1).all()  # 160 weeks: one origin at week 104, scored on weeks 105-156
    assert (bt.n_forecasts == bt.n_series * 52).all()
    # "beats seasonal naive" is a lower MASE than SeasonalNaive's on the same environment and series kind
    ref = bt[bt.model == "SeasonalNaive"].set_index(["environment", "series_kind"]).mase
    for r in bt.itertuples():
        assert r.beats_seasonal_naive == (r.mase < ref[(r.environment, r.series_kind)])
    text = (out / "report.md").read_text()
    assert "## Backtests on the pooled series" in text and "models beating seasonal naive" in text


def test_a_short_run_has_forecasts_but_no_backtests_and_steps_0_has_neither(tmp_path, capsys):
    short = tmp_path / "short"
    assert report.main([*SMALL, "--out", str(short)]) == 0  # 60 weeks: fewer than three seasons
    printed, err = capsys.readouterr()
    names = {p.name for p in short.iterdir()}
    assert {"forecasts.parquet", "forecast.png"} <= names and "backtests.parquet" not in names
    assert "no backtests: 60 periods are fewer than three seasons" in err
    assert "Not run: 60 weeks are fewer than three seasons" in (short / "report.md").read_text()
    assert "forecast to week 112" in printed  # one year past week 60
    none = tmp_path / "none"
    assert report.main([*SMALL, "--forecast-steps", "0", "--out", str(none)]) == 0
    printed, err = capsys.readouterr()
    names = {p.name for p in none.iterdir()}
    assert not names & {"forecasts.parquet", "backtests.parquet", "forecast.png"}
    assert "forecast to" not in printed and "## Forecasts" not in (none / "report.md").read_text()


def test_negative_forecast_steps_is_one_line_and_exit_2(tmp_path, capsys):
    assert report.main([*SMALL, "--forecast-steps", "-1", "--out", str(tmp_path / "r")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "--forecast-steps == -1, must be >= 0 (0: no forecasts)" in err
    assert not (tmp_path / "r").exists()
