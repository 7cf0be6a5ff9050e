"""Command-line runs and sweeps: the files every run writes, resumable sweeps, output errors.

Each test runs the real console entry point (``orgsim.cli.main``, in this process unless the
test needs processes of its own) in a temporary directory with tiny populations. Tests whose
subject is not the figure draw a run's figures as a tiny PNG (the ``quick_figures`` fixture of
conftest.py: drawing the fan chart is most of a tiny run's time); ``test_single_run_writes_every_file``
and the subprocess tests draw the real ones.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from helpers import quick_fan_chart, run_cli, run_main

import orgsim
from orgsim import cli


def orgsim_cmd(*args, cwd):
    """The command in this process (``helpers.run_main``); a sweep runs its jobs here, one at a
    time, unless the test sets ``hydra.launcher.n_jobs`` (then joblib's workers run them)."""
    if ("-m" in args or "+experiment=strategy_comparison" in args) and not any("n_jobs" in a for a in args):
        args = (*args, "hydra.launcher.n_jobs=1")
    return run_main(*args, cwd=cwd)


def orgsim_process(*args, cwd):
    """The console entry point in a new process (joblib's parallel workers, signals)."""
    return run_cli(*args, cwd=cwd, env={"PYTHONWARNINGS": "ignore"})


def run_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("meta.json"))


def test_single_run_writes_every_file(tmp_path):
    out = orgsim_cmd("n_orgs=2", "periods=12", "policy.theta=0.3", "output.teams=true", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "kpis.parquet", "teams.parquet", "fan_chart.png", "meta.json"} <= names
    assert not [n for n in names if n.endswith(".tmp")]
    meta = json.loads((run / "meta.json").read_text())
    for key in (
        "seed",
        "engine",
        "versions",
        "git_commit",
        "wall_time_s",
        "team_periods_per_second",
        "run_id",
    ):
        assert key in meta
    assert meta["config"]["policy"]["theta"] == 0.3
    assert set(meta["files"]) <= names
    kpis = pd.read_parquet(run / "kpis.parquet")
    assert list(kpis.columns[: len(orgsim.KPI_COLUMNS)]) == list(orgsim.KPI_COLUMNS)
    # the run's id and its overrides are columns, so a store of many runs can be queried
    assert (kpis["run_id"] == meta["run_id"]).all()
    assert (kpis["policy.theta"] == 0.3).all()
    assert len(kpis) == 2 * 12
    assert (run / "fan_chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the config written is the resolved, validated one and composes back to the same run id
    cfg = orgsim.config_from_dict(meta["config"])
    assert cli.run_id(cfg) == meta["run_id"]


def test_sweep_runs_every_combination_and_is_queryable(tmp_path):
    out = orgsim_process("-m", "strategy=bpo,bso", "seed=range(0,2)", "n_orgs=2", "periods=10", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert re.search(r"Done\s+4 out of\s+4", out.stderr + out.stdout)  # joblib reports progress
    runs = run_dirs(tmp_path / "multirun" / "sweep")
    assert len(runs) == 4
    df = orgsim.results.load(tmp_path / "multirun" / "sweep")
    assert df.groupby(["run_id", "org", "period"]).size().max() == 1
    assert len(df) == 4 * 2 * 10
    assert set(df.strategy.unique()) == {"bpo", "bso"}
    assert set(df.seed.unique()) == {0, 1}
    # plain Parquet files: Arrow datasets (what Dask, Polars and Spark build on) read the glob
    import pyarrow.dataset as ds

    files = sorted(str(p) for p in (tmp_path / "multirun" / "sweep").rglob("kpis.parquet"))
    table = ds.dataset(files, format="parquet").to_table()
    assert table.num_rows == len(df) and set(orgsim.KPI_COLUMNS) <= set(table.column_names)
    summary = orgsim.results.summarize(tmp_path / "multirun" / "sweep")
    assert set(summary.strategy) == {"bpo", "bso"}
    assert (summary.runs == 2).all() and (summary.firms == 4).all()


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_recomputing(tmp_path, quick_figures):
    """Kill a sweep part-way; every Parquet file left reads back; rerunning finishes the rest
    and leaves the finished runs untouched. (The killed sweep, a process of its own, draws real
    figures, which keeps each run long enough to be killed part-way.)"""
    args = ["-m", "seed=range(0,6)", "n_orgs=2", "periods=150", "hydra.launcher.n_jobs=1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "orgsim.cli", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    root = tmp_path / "multirun" / "sweep"
    deadline = time.time() + 180
    while time.time() < deadline and len(run_dirs(root)) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    finished = run_dirs(root)
    assert 2 <= len(finished) < 6, "the sweep should have been interrupted part-way"
    for parquet in root.rglob("*.parquet"):
        pd.read_parquet(parquet)  # no partial or corrupt file under its final name
    stamps = {d: (d / "meta.json").stat().st_mtime_ns for d in finished}
    kpi_stamps = {d: (d / "kpis.parquet").stat().st_mtime_ns for d in finished}

    out = orgsim_cmd(*args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("already complete") == len(finished)
    done = run_dirs(root)
    assert len(done) == 6
    for d in finished:  # not recomputed
        assert (d / "meta.json").stat().st_mtime_ns == stamps[d]
        assert (d / "kpis.parquet").stat().st_mtime_ns == kpi_stamps[d]
    assert not list(root.rglob("*.tmp"))
    df = orgsim.results.load(root)
    assert df.run_id.nunique() == 6
    assert len(df) == 6 * 2 * 150


def test_changed_config_is_recomputed_not_skipped(tmp_path, quick_figures):
    first = orgsim_cmd("-m", "seed=0", "n_orgs=1", "periods=8", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (run,) = run_dirs(tmp_path / "multirun")
    old = json.loads((run / "meta.json").read_text())["run_id"]
    # same overrides (same directory) but another resolved config: the stale run is redone
    again = orgsim_cmd("-m", "seed=0", "n_orgs=1", "periods=8", cwd=tmp_path)
    assert "0 computed now, 1 skipped (complete before)" in again.stdout
    changed = orgsim_cmd("-m", "seed=0", "n_orgs=1", "periods=8", "demand.level=90", cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    runs = run_dirs(tmp_path / "multirun")
    assert len(runs) == 2 and old in {json.loads((r / "meta.json").read_text())["run_id"] for r in runs}


def test_experiment_config_composes_to_the_full_design():
    hydra = cli.validate_overrides(["+experiment=strategy_comparison"], multirun=False)
    assert hydra["_multirun"]
    params = hydra["sweeper"]["params"]
    strategies = set(params["strategy"].split(","))
    assert {"bpo", "bpm", "bpo_bpm", "bso"} <= strategies  # both families
    assert set(params["environment"].split(",")) == {"stable", "volatile", "disrupted"}
    assert len(cli._expand([f"seed={params['seed']}"])) >= 5


def test_bad_value_in_experiment_sweep_exits_2_and_writes_nothing(tmp_path):
    out = orgsim_cmd("+experiment=strategy_comparison", "strategy=bpo,nope", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orgsim: error: strategy == 'nope'")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_directory_is_one_line_and_status_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = orgsim_cmd(f"hydra.run.dir={blocker}/run", "n_orgs=1", "periods=5", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr
    assert (
        lines[0].startswith(f"orgsim: error: hydra.run.dir == '{blocker}/run', must be a directory")
        and "is not a directory" in lines[0]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_full_disk_keeps_finished_runs_and_leaves_no_partial_file(tmp_path, monkeypatch):
    cfg = orgsim.compose(["n_orgs=1", "periods=6"])
    done = tmp_path / "done"
    cli.write_run(orgsim.simulate(cfg), done, [], teams=False)
    before = {p.name: p.read_bytes() for p in done.iterdir()}

    import pyarrow.parquet as pq

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", no_space)
    failing = tmp_path / "failing"
    with pytest.raises(OSError) as info:
        cli.write_run(orgsim.simulate(cfg.replace(seed=1)), failing, [], teams=False)
    assert cli.describe_os_error(info.value, failing).endswith("the disk is full")
    assert not (failing / "meta.json").exists()
    assert not [p for p in failing.iterdir() if p.suffix == ".parquet" or p.name.endswith(".tmp")]
    assert {p.name: p.read_bytes() for p in done.iterdir()} == before


#: the console script installed beside this interpreter (pyproject's [project.scripts])
RESULTS_CMD = str(Path(sys.executable).with_name("orgsim-results"))


def results_cmd(*args: str, cwd) -> subprocess.CompletedProcess:
    """Run the ``orgsim-results`` console script in ``cwd``; capture its output."""
    return subprocess.run([RESULTS_CMD, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_results_command_summarizes_a_sweep_and_rejects_a_bad_path(tmp_path, quick_figures):
    out = orgsim_cmd(
        "-m", "strategy=bpo,bso", "environment=stable,volatile", "n_orgs=2", "periods=8", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    ok = results_cmd("summarize", "multirun/sweep", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    header, *rows, note = ok.stdout.strip().splitlines()
    assert header.split()[:4] == ["strategy", "environment", "runs", "firms"]
    assert note.startswith("mean ± standard error of the mean over firms")
    assert len(rows) == 4  # one per strategy and environment
    assert {tuple(r.split()[:2]) for r in rows} == {
        (s, e) for s in ("bpo", "bso") for e in ("stable", "volatile")
    }
    bad = results_cmd("summarize", "nowhere", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["orgsim-results: error: results path 'nowhere' does not exist"]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_rerun_into_a_complete_run_of_another_config_is_refused(tmp_path, quick_figures):
    first = orgsim_cmd("hydra.run.dir=X", "n_orgs=2", "periods=5", "output.teams=true", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = _snapshot(tmp_path)
    other = orgsim_cmd("hydra.run.dir=X", "n_orgs=1", "periods=5", "seed=3", cwd=tmp_path)
    assert other.returncode == 2
    lines = other.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in other.stderr
    assert lines[0].startswith("orgsim: error: hydra.run.dir == ")
    assert "holds a complete run of another config" in lines[0]
    assert _snapshot(tmp_path) == before  # nothing written, nothing replaced
    same = orgsim_cmd("hydra.run.dir=X", "n_orgs=2", "periods=5", cwd=tmp_path)
    assert same.returncode == 0 and "already complete" in same.stdout
    assert _snapshot(tmp_path) == before


def test_sweep_into_a_directory_of_another_config_is_refused(tmp_path, quick_figures):
    # hydra.sweep.subdir=one sends both sweeps to one directory, as a changed conf/ file would
    args = ("-m", "n_orgs=1", "periods=5", "hydra.sweep.subdir=one", "hydra.launcher.n_jobs=1")
    first = orgsim_cmd(*args, "seed=0", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = _snapshot(tmp_path)
    other = orgsim_cmd(*args, "seed=1", cwd=tmp_path)
    assert other.returncode == 2
    lines = other.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orgsim: error: output.name == ")
    assert _snapshot(tmp_path) == before


def test_team_records_asked_for_later_are_added_without_changing_the_kpis(tmp_path, quick_figures):
    assert orgsim_cmd("hydra.run.dir=Y", "n_orgs=2", "periods=5", cwd=tmp_path).returncode == 0
    kpis = pd.read_parquet(tmp_path / "Y" / "kpis.parquet")
    assert not (tmp_path / "Y" / "teams.parquet").exists()
    again = orgsim_cmd("hydra.run.dir=Y", "n_orgs=2", "periods=5", "output.teams=true", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "already complete" not in again.stdout
    assert len(pd.read_parquet(tmp_path / "Y" / "teams.parquet")) == 2 * 5 * 10
    assert "teams.parquet" in json.loads((tmp_path / "Y" / "meta.json").read_text())["files"]
    after = pd.read_parquet(tmp_path / "Y" / "kpis.parquet")
    pd.testing.assert_frame_equal(after[kpis.columns], kpis)  # plus the column output.teams


def test_unfinished_run_leaves_no_team_records_behind(tmp_path, quick_figures):
    assert (
        orgsim_cmd("hydra.run.dir=W", "n_orgs=2", "periods=5", "output.teams=true", cwd=tmp_path).returncode
        == 0
    )
    (tmp_path / "W" / "meta.json").unlink()  # as if that run had been killed before finishing
    out = orgsim_cmd("hydra.run.dir=W", "n_orgs=1", "periods=5", "seed=3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "W" / "teams.parquet").exists()
    assert orgsim.results.load(tmp_path / "W")["run_id"].nunique() == 1


def test_whole_section_override_is_recorded_as_json(tmp_path, quick_figures):
    out = orgsim_cmd("hydra.run.dir=Z", "n_orgs=1", "periods=5", "finance={enabled:false}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    kpis = pd.read_parquet(tmp_path / "Z" / "kpis.parquet")
    assert json.loads(kpis["finance"].iloc[0])["enabled"] is False
    assert (kpis["credit_headroom"] == 0).all()  # the finance layer is off


def test_run_too_large_for_memory_exits_2_and_writes_nothing(tmp_path):
    out = orgsim_cmd("n_orgs=10000000", "periods=100000", "engine=numba", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orgsim: error: n_orgs × periods == 10000000 × 100000")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cfg", "job", "n_orgs=abc"), "orgsim: error: n_orgs == 'abc', must be an integer"),
        (("-m", "n_orgs=1", "seed=range(5,0)"), "orgsim: error: seed=range(5,0) gives no runs"),
        (
            ("-m", "n_orgs=1", "seed=0,1", "hydra.launcher.n_jobs=0"),
            "orgsim: error: hydra.launcher.n_jobs == 0, must be a non-zero integer",
        ),
        (("hydra/launcher=foo",), "orgsim: error: hydra/launcher == 'foo', must be one of 'local', 'slurm'"),
        (
            ("environment=",),
            "orgsim: error: environment == '', must be one of 'disrupted', 'native', 'stable'",
        ),
        (("-cn", "foo", "n_orgs=1"), "orgsim: error: -cn == 'foo', must not be given"),
        (("hydra.run.dir=", "n_orgs=1"), "orgsim: error: hydra.run.dir == '', must be a directory path"),
        (("scenario=null",), "orgsim: error: scenario == None, must be one of 'beer_game', 'chen_bullwhip'"),
    ],
    ids=[
        "print-config",
        "empty-sweep",
        "zero-jobs",
        "launcher",
        "empty-group",
        "config-name",
        "empty-run-dir",
        "null-group",
    ],
)
def test_more_bad_command_lines_exit_2_with_one_line_and_write_nothing(tmp_path, args, message):
    out = orgsim_cmd(*args, cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr
    assert list(tmp_path.iterdir()) == []


def test_sweep_subdir_from_the_job_number_runs(tmp_path, quick_figures):
    # hydra.job.num is set when a job starts: validation cannot place such runs, the jobs check
    out = orgsim_cmd(
        "-m", "n_orgs=1", "periods=3", "seed=0,1", "hydra.sweep.subdir=${hydra.job.num}",
        "hydra.launcher.n_jobs=${oc.env:ORGSIM_TEST_JOBS,1}", cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert [p.name for p in run_dirs(tmp_path / "multirun" / "sweep")] == ["0", "1"]


def test_sweep_is_checked_in_the_directories_hydra_names(tmp_path, quick_figures):
    """Hydra names a run's directory from normalised values ([a,b,c,d], not [a, b, c, d]);
    validation must look there, so a conflicting run stops the sweep before anything is written."""
    args = ("-m", "n_orgs=1", "periods=5", "seed=0", "hydra.launcher.n_jobs=1")
    assert orgsim_cmd(*args, "network.roles=[a,b,c,d]", cwd=tmp_path).returncode == 0
    (run,) = run_dirs(tmp_path / "multirun" / "sweep")
    assert run.name == "n_orgs=1,network.roles=[a,b,c,d],periods=5,seed=0"
    meta = json.loads((run / "meta.json").read_text())
    meta["run_id"] = "0123456789abcdef"  # as if the config behind that directory had changed
    (run / "meta.json").write_text(json.dumps(meta))
    before = _snapshot(tmp_path)
    out = orgsim_cmd(*args, "network.roles=[a, b, c, d]", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orgsim: error: output.name == 'sweep', must name a sweep")
    assert "run 0123456789abcdef" in lines[0]
    assert _snapshot(tmp_path) == before  # not even multirun.yaml is rewritten


def test_two_runs_of_a_sweep_sharing_a_directory_are_refused(tmp_path):
    out = orgsim_cmd("-m", "n_orgs=1", "periods=3", "seed=0,1", "hydra.sweep.subdir=same", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orgsim: error: hydra.sweep.subdir == ")
    assert "for two runs of different configs" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_value_without_multirun_says_how_to_sweep(tmp_path):
    out = orgsim_cmd("n_orgs=1", "seed=0,1", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "orgsim: error: seed == '0,1', must be one value: [0,1] for a list, '0,1' quoted for a string, "
        "or add -m to sweep over it"
    )
    assert list(tmp_path.iterdir()) == []


def test_own_experiment_from_config_dir_is_validated_and_run(tmp_path, quick_figures):
    """A researcher's experiment outside the package (``--config-dir``): composed, validated and
    run as Hydra runs it; a bad value in it is caught before anything is written."""
    mine = tmp_path / "my" / "experiment"
    mine.mkdir(parents=True)
    (mine / "mine.yaml").write_text("# @package _global_\nn_orgs: 1\nperiods: 3\npolicy:\n  theta: 0.25\n")
    (mine / "bad.yaml").write_text("# @package _global_\nn_orgs: 1\npolicy:\n  theta: 7\n")
    ok = orgsim_cmd("--config-dir", "my", "+experiment=mine", "hydra.run.dir=out", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    config = json.loads((tmp_path / "out" / "meta.json").read_text())["config"]
    assert (config["n_orgs"], config["periods"], config["policy"]["theta"]) == (1, 3, 0.25)
    bad = orgsim_cmd("-cd", "my", "+experiment=bad", "hydra.run.dir=bad", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "orgsim: error: policy.theta == 7.0, must be <= 1"
    assert not (tmp_path / "bad").exists()


# -- issue 12: a finished run is verified, not assumed ----------------------------------------
def _damage(kind: str, path: Path) -> None:
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "zero-byte":
        path.write_bytes(b"")
    else:  # one bit flipped in the middle: same size, same name
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(flipped))


DAMAGE_SWEEP = ("-m", "seed=0,1,2", "n_orgs=2", "periods=12", "engine=numba", "hydra.launcher.n_jobs=1")


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> Path:
    """A finished sweep of three runs, computed once; each damage case works on its own copy."""
    import orgsim.plots

    home = tmp_path_factory.mktemp("finished_sweep")
    with pytest.MonkeyPatch.context() as mp:  # as quick_figures does (this fixture is module-scoped)
        mp.setattr(orgsim.plots, "fan_chart", quick_fan_chart)
        first = orgsim_cmd(*DAMAGE_SWEEP, cwd=home)
    assert first.returncode == 0, first.stderr
    return home


@pytest.mark.xdist_group("finished_sweep")  # one worker builds the shared sweep
@pytest.mark.parametrize("kind", ["truncated", "zero-byte", "bit-flipped"])
def test_a_damaged_run_of_a_sweep_is_recomputed_and_never_served(
    kind, finished_sweep, tmp_path, quick_figures
):
    import shutil

    args = DAMAGE_SWEEP
    shutil.copytree(finished_sweep, tmp_path, dirs_exist_ok=True)  # file times kept (copy2)
    root = tmp_path / "multirun" / "sweep"
    runs = run_dirs(root)
    assert len(runs) == 3
    before = orgsim.results.load(root).sort_values(["seed", "org", "period"], ignore_index=True)
    damaged = runs[1]
    _damage(kind, damaged / "kpis.parquet")
    stamps = {d: (d / "kpis.parquet").stat().st_mtime_ns for d in runs if d != damaged}

    # the store reads the other runs and names the damaged one in its warning
    with pytest.warns(UserWarning, match=re.escape(str(damaged)) + ".*kpis.parquet") as caught:
        partial = orgsim.results.load(root)
    assert (
        len(caught) == 1 and partial.seed.nunique() == 2 and damaged.name not in " ".join(partial.kpis_file)
    )

    again = orgsim_cmd(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert re.search(
        rf"recompute {re.escape(str(tmp_path / 'multirun' / 'sweep' / damaged.name))}: kpis\.parquet",
        again.stdout,
    )
    assert again.stdout.count("already complete") == 2
    assert "sweep: 3 runs, 1 computed now, 2 skipped (complete before)" in again.stdout
    for d, stamp in stamps.items():  # the intact runs were not rewritten
        assert (d / "kpis.parquet").stat().st_mtime_ns == stamp
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing left out any more
        after = orgsim.results.load(root).sort_values(["seed", "org", "period"], ignore_index=True)
    pd.testing.assert_frame_equal(after.drop(columns="kpis_file"), before.drop(columns="kpis_file"))


def test_a_complete_sweep_is_not_launched_again(tmp_path, monkeypatch, quick_figures):
    """Every run complete and verified: the command prints the sweep's table without starting
    Hydra (no job is launched, no file is touched)."""
    args = ("-m", "strategy=bpo,bso", "n_orgs=2", "periods=10", "engine=numba", "hydra.launcher.n_jobs=1")
    assert orgsim_cmd(*args, cwd=tmp_path).returncode == 0
    snapshot = _snapshot(tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    import hydra

    def no_launch(*a, **k):
        raise AssertionError("Hydra was started for a complete sweep")

    monkeypatch.setattr(hydra, "main", no_launch)
    again = orgsim_cmd(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    lines = again.stdout.strip().splitlines()
    assert lines[0] == "sweep: 2 runs, 0 computed now, 2 skipped (complete before)"
    assert lines[1].split()[:3] == ["strategy", "status", "firms"]
    assert [line.split()[:2] for line in lines[2:4]] == [["bpo", "skipped"], ["bso", "skipped"]]
    assert "cumulative_fcf (MU)" in lines[1] and " ± " in lines[2]
    assert _snapshot(tmp_path) == snapshot
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()} == stamps


def test_a_full_disk_at_the_last_write_leaves_no_run(tmp_path, monkeypatch):
    """meta.json is written last: when the disk fills while it is written, the directory holds
    files but no run, and the store does not count it."""
    cfg = orgsim.compose(["n_orgs=1", "periods=6"])
    cli.write_run(orgsim.simulate(cfg, engine="numba"), tmp_path / "done", [], teams=False)
    import orgsim._io as io

    real = io.atomic_write

    def full_at_meta(path, write):
        if Path(path).name == "meta.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write)

    monkeypatch.setattr(io, "atomic_write", full_at_meta)
    with pytest.raises(OSError):
        cli.write_run(
            orgsim.simulate(cfg.replace(seed=1), engine="numba"), tmp_path / "failing", [], teams=False
        )
    assert (tmp_path / "failing" / "kpis.parquet").exists() and not (
        tmp_path / "failing" / "meta.json"
    ).exists()
    with pytest.warns(UserWarning, match="left out 1 unfinished run"):
        kpis = orgsim.results.load(tmp_path)
    assert set(kpis.kpis_file) == {str(tmp_path / "done" / "kpis.parquet")}
