"""The ``orgsim`` command (``orgsim.cli``), run as a subprocess in an empty working directory.

Issue 2: a bad value exits with status 2 and one line naming the field, its value and what is
allowed, with no traceback and nothing written; a good run prints a summary and writes
``kpis.parquet`` (``teams.parquet`` too with ``output.teams=true``) and ``meta.json`` (config,
seed, engine, versions), the same metadata embedded in each Parquet file, and its results are
those of ``orgsim.simulate`` for the same overrides.
"""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers import run_cli

import orgsim


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd)


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("kpis.parquet"))


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["n_orgs=-1"], "n_orgs"),
        (["policy.theta=abc"], "policy.theta"),
        (["policy.theta=7"], "policy.theta"),
        (["scenario=nope"], "scenario"),
        (["foo=1"], "foo"),
        (["network.width=[1,2,3,4]"], "network.width"),
        (["-m", "policy.theta=0.5,7"], "policy.theta"),
        (["-m", "seed=0,1", "n_orgs=0"], "n_orgs"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_bad_value_exits_2_with_one_line_and_writes_nothing(tmp_path, args, field):
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"orgsim: error: {field} ")
    assert "Traceback" not in proc.stderr + proc.stdout
    assert list(tmp_path.iterdir()) == [], "a bad run wrote files"


def test_bad_value_message_names_value_and_rule(tmp_path):
    proc = cli("policy.theta=7", cwd=tmp_path)
    assert proc.stderr.strip() == "orgsim: error: policy.theta == 7.0, must be <= 1"


def test_malformed_override_names_the_field(tmp_path):
    proc = cli("policy.theta=[1", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("orgsim: error: policy.theta")


def check_run_dir(run_dir: Path, overrides: list[str]) -> None:
    """Outputs of one run: its files, its metadata, and results equal to the library's."""
    cfg = orgsim.compose(overrides)
    meta = json.loads((run_dir / "meta.json").read_text())
    expected_files = {"kpis.parquet", "meta.json"} | ({"teams.parquet"} if cfg.output.teams else set())
    present = {p.name for p in run_dir.iterdir()}
    assert expected_files <= present
    assert ("teams.parquet" in present) == cfg.output.teams
    assert set(meta["files"]) <= present, "meta.json lists files that were not written"
    # provenance: config, seed, engine and package versions
    assert meta["config"] == cfg.to_dict()
    assert meta["seed"] == cfg.seed
    assert meta["engine"] == cfg.engine
    for package in ("orgsim", "mesa", "numba", "numpy", "pandas", "pyarrow", "hydra-core"):
        assert meta["versions"][package] == metadata.version(package)
    assert meta["versions"]["python"] == platform.python_version()
    # the same results as the library for the same overrides
    expected = orgsim.simulate(cfg, teams=cfg.output.teams)
    frames = {"kpis": (expected.kpis, orgsim.KPI_COLUMNS)}
    if cfg.output.teams:
        frames["teams"] = (expected.teams, orgsim.TEAM_COLUMNS)
    for name, (frame, contract) in frames.items():
        table = pq.read_table(run_dir / f"{name}.parquet")
        embedded = json.loads(table.schema.metadata[b"orgsim"])
        for key in ("config", "seed", "engine", "versions"):
            assert embedded[key] == meta[key], f"{name}.parquet metadata differs from meta.json on {key}"
        got = table.to_pandas()
        assert tuple(got.columns[: len(contract)]) == tuple(contract)
        pd.testing.assert_frame_equal(
            got[list(frame.columns)], frame, check_exact=True, check_categorical=False
        )


@pytest.mark.parametrize(
    "args",
    [
        ["n_orgs=2", "periods=30", "output.teams=true"],
        ["scenario=beer_game"],
        ["scenario=chen_bullwhip"],
        ["strategy=bso", "environment=volatile", "n_orgs=2", "periods=30"],
        ["engine=numba", "n_orgs=2", "periods=30", "output.teams=true"],
    ],
    ids=" ".join,
)
def test_good_run_prints_summary_and_writes_outputs(tmp_path, args):
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    cfg = orgsim.compose(args)
    assert f"scenario={cfg.scenario.name}" in proc.stdout
    assert f"firms={cfg.n_orgs} periods={cfg.periods}" in proc.stdout
    (run_dir,) = run_dirs(tmp_path)
    assert run_dir.relative_to(tmp_path).parts[0] == "outputs"
    assert f"outputs: {run_dir}" in proc.stdout
    check_run_dir(run_dir, args)


def test_multirun_sweep_writes_one_run_per_value(tmp_path):
    # one joblib job: the sweep runs in this subprocess instead of a pool of fresh ones
    proc = cli("-m", "n_orgs=1", "periods=5", "seed=3,4", "hydra.launcher.n_jobs=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    dirs = run_dirs(tmp_path)
    assert len(dirs) == 2 and all(d.relative_to(tmp_path).parts[0] == "multirun" for d in dirs)
    seeds = sorted(json.loads((d / "meta.json").read_text())["seed"] for d in dirs)
    assert seeds == [3, 4]
    for d in dirs:
        seed = json.loads((d / "meta.json").read_text())["seed"]
        check_run_dir(d, ["n_orgs=1", "periods=5", f"seed={seed}"])


def test_print_config_writes_nothing(tmp_path):
    proc = cli("--cfg", "job", "scenario=beer_game", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "beer_game" in proc.stdout and "n_orgs:" in proc.stdout
    assert list(tmp_path.iterdir()) == [], "printing the config wrote files"
