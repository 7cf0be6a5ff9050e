"""The ``orgsim`` command (``orgsim.cli``), run in process (``helpers.run_main``) in an empty
working directory.

Issue 2: a bad value exits with status 2 and one line naming the field, its value and what is
allowed, with no traceback and nothing written; a good run prints a summary and writes
``kpis.parquet`` (``teams.parquet`` too with ``output.teams=true``) and ``meta.json`` (config,
seed, engine, versions), the same metadata embedded in each Parquet file, and its results are
those of ``orgsim.simulate`` for the same overrides.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers import run_main

import orgsim


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_main(*args, cwd=cwd)


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
    # one joblib job: the sweep runs in this process instead of a pool of workers
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


# -- issue 12: inputs that slipped through ---------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hydra.run.dir=/proc/x"], r"hydra\.run\.dir == '/proc/x', must be a directory that can be created"),
        (
            ["strategy=bso", "strategy=bpo"],
            r"strategy is given twice \(strategy=bso and strategy=bpo\), must be given once",
        ),
        (["costs.fixed=1e308"], r"costs\.fixed == 1e\+308, must be <= 1000000000$"),
        (
            ["finance.price=1e308", "demand.level=1e308"],
            r"(finance\.price|demand\.level) == 1e\+308, must be <= 1000000$",
        ),
        (
            ["scenario=../../etc/passwd"],
            r"scenario == '\.\./\.\./etc/passwd', must be one of 'beer_game', 'chen_bullwhip'",
        ),
        (
            ["-m", "seed=range(0,3,0)"],
            r"seed == 'range\(0,3,0\)', must be a sweep that gives values \(range\(\) arg 3",
        ),
        ([""], r"override == '', must be key=value"),
        (["n_orgs"], r"override == 'n_orgs', must be key=value"),
        (["+strategy=bso", "strategy=bpo"], r"strategy is given twice"),
        (
            ["scenario=chen_bullwhip", "policy.beta=0.3"],
            r"policy\.beta == 0\.3, must be >= 0\.5 when policy\.allow_negative_orders is true",
        ),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_inputs_that_slipped_through_exit_2_with_one_line(tmp_path, args, message):
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert re.match(r"orgsim: error: " + message, lines[0]), lines[0]
    assert list(tmp_path.iterdir()) == [], "a refused run wrote files"


def test_the_library_refuses_the_same_values_and_lets_a_later_override_win():
    # a list built in code may change an earlier entry (the last wins, as in Hydra)
    assert orgsim.compose(["strategy=bso", "strategy=bpo"]).strategy.name == "bpo"
    with pytest.raises(orgsim.ConfigError, match=r"^scenario == '\.\./x', must be one of 'beer_game'"):
        orgsim.compose(["scenario=../x"])
    with pytest.raises(orgsim.ConfigError, match=r"^costs\.fixed == 1e\+308, must be <= "):
        orgsim.compose(["costs.fixed=1e308"])


def test_changing_the_number_of_stages_names_every_key_in_one_line(tmp_path):
    proc = cli("network.stages=2", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    line = proc.stderr.strip()
    # every per-stage list of the default (four-stage) scenario, and nothing else
    for key in (
        "network.width",
        "network.lead_time",
        "network.capacity",
        "network.initial_inventory",
        "costs.unit",
    ):
        assert f"{key} (4)" in line, key
    assert (
        line.startswith("orgsim: error: network.stages == 2, but 5 per-stage values")
        and "give each 2 values" in line
    )
    # once they are given, it runs; a scalar applies to every stage and roles follow the scenario
    given = [
        "network.stages=2", "network.width=[3,1]", "network.lead_time=2", "network.capacity=null",
        "network.initial_inventory=[200,600]", "costs.unit=[0.5,2]",
    ]  # fmt: skip
    cfg = orgsim.compose(given)
    assert cfg.network.roles == ("sales", "distribution") and cfg.network.lead_time == (2, 2)
    assert orgsim.simulate(cfg.replace(n_orgs=1, periods=10), engine="numba").kpis.shape[0] == 10


def test_a_classic_scenario_extends_its_roles_to_more_stages(tmp_path):
    cfg = orgsim.compose(["scenario=chen_bullwhip", "network.stages=3"])
    assert cfg.network.roles == ("retailer", "wholesaler", "distributor")
    proc = cli(
        "scenario=chen_bullwhip", "network.stages=3", "n_orgs=1", "periods=20", "engine=numba", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert orgsim.compose(["scenario=beer_game", "network.stages=6", "network.order_delay=2"]).network.roles == (
        "retailer", "wholesaler", "distributor", "factory", "stage4", "stage5",
    )  # fmt: skip


def test_a_run_has_no_log_file_and_no_library_log_lines(tmp_path):
    proc = cli("n_orgs=1", "periods=5", "hydra.run.dir=run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not list((tmp_path / "run").glob("*.log"))
    assert "font_manager" not in proc.stdout + proc.stderr and "INFO" not in proc.stdout + proc.stderr


def test_summary_names_units_and_leaves_out_layers_that_are_off(tmp_path):
    proc = cli("scenario=beer_game", "hydra.run.dir=beer", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "periods=36 (weeks)" in out and "total operating cost" in out and " MU " in out
    for finance in ("cash", "debt", "credit headroom", "free cash flow", "solvent"):
        assert finance not in out, finance
    proc = cli("n_orgs=3", "periods=20", "hydra.run.dir=firm", cwd=tmp_path)
    assert "ending cash" in proc.stdout and "s.e." in proc.stdout and "ending team knowledge" in proc.stdout
    summary = (tmp_path / "firm" / "summary.txt").read_text()
    assert summary.startswith("orgsim ") and "cumulative free cash flow" in summary


# -- the fast composition of a sweep ---------------------------------------------------------
COMPOSED = [
    ["strategy=bso", "environment=volatile", "seed=3", "n_orgs=2"],
    ["+experiment=strategy_comparison", "strategy=bpo", "environment=disrupted", "seed=4"],
    ["scenario=beer_game", "policy.s_prime=[28,28,28,20]", "hydra.run.dir=somewhere/x"],
    ["network.roles=[a,b,c,d]", "output.name=other", "hydra.sweep.subdir=fixed", "policy.theta=0.5"],
    ["strategy=none", "++network.capacity=120", "hydra.job.chdir=false"],
]


@pytest.mark.parametrize("overrides", COMPOSED, ids=" ".join)
@pytest.mark.parametrize("multirun", [False, True])
def test_a_sweep_composes_each_run_as_hydra_does(overrides, multirun):
    """The composer that serves a sweep's validation (Hydra composes each choice of config
    groups once; values are applied to a copy) gives each run's config and directory exactly
    as a full Hydra compose does."""
    from omegaconf import OmegaConf

    from orgsim.cli import _compose_run, _Composer
    from orgsim.config import compose_hydra

    if not any(o.startswith("hydra.run.dir=") for o in overrides):  # not the time it is composed at
        overrides = [*overrides, "hydra.run.dir=outputs/fixed"]
    fast = _Composer(overrides)
    _Composer(["strategy=bpo"])  # another composer's cache does not leak in
    full_cfg = compose_hydra(overrides, hydra=True)
    fast_cfg = fast(overrides)
    assert _compose_run(fast_cfg, multirun) == _compose_run(full_cfg, multirun)
    assert OmegaConf.to_container(fast_cfg.hydra.overrides) == OmegaConf.to_container(
        full_cfg.hydra.overrides
    )
    assert fast_cfg.hydra.job.override_dirname == full_cfg.hydra.job.override_dirname
    assert fast(overrides) is not fast_cfg  # a fresh copy for every run
