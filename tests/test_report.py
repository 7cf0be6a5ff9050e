"""``orgsim-compare`` (orgsim.report): the comparison report, run in process."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from orgsim import report

SMALL = ["--firms", "6", "--periods", "60", "--strategies", "bpo_bpm,bso", "--environments", "stable"]


def test_the_report_prints_the_headline_and_writes_every_file(tmp_path, capsys):
    out = tmp_path / "rep"
    assert report.main([*SMALL, "--out", str(out)]) == 0
    printed, err = capsys.readouterr()
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
