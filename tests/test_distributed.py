"""Beyond one machine (issue 5, item 4), against a local Ray instance that this module starts.

* :func:`orgsim.distributed.simulate_ray`: a population cut into uneven firm chunks, each chunk a
  Ray task, gives KPI and team arrays bit-identical to one local ``simulate(engine="numba")``.
* ``orgsim -m hydra/launcher=ray ...``: the command runs a sweep through Hydra's Ray launcher on
  that instance, and every run writes a ``kpis.parquet`` with the contract's columns.
* Slurm has no cluster here: ``hydra/launcher=slurm`` (``conf/hydra/launcher/slurm.yaml``) is
  checked to compose into a launcher, and submitit's code path is run with its local executor
  (``hydra/launcher=submitit_local``); ``sbatch`` itself is not.

Ray takes ~20 s to start on two cores, so one instance serves the whole module (run these tests
in one xdist worker: ``--dist loadgroup``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from helpers import run_cli

import orgsim
from orgsim.config import ConfigError

ray = pytest.importorskip("ray")

from orgsim.distributed import simulate_ray  # noqa: E402

pytestmark = pytest.mark.xdist_group("ray")

# Ray sends usage statistics home unless told not to; nothing here may leave the machine.
_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A two-CPU local Ray instance; ``cwd`` is the directory its workers run in."""
    if ray.is_initialized():  # pragma: no cover - another module left a session open
        ray.shutdown()
    cwd = tmp_path_factory.mktemp("ray")
    saved_env = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(_ENV)
    saved_cwd = os.getcwd()
    # Ray workers inherit the working directory Ray was started from, and Hydra resolves a
    # relative sweep directory there: start in a temporary directory, not the repository.
    os.chdir(cwd)
    try:
        ctx = ray.init(
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=100 * 2**20,
            log_to_driver=False,
        )
    finally:
        os.chdir(saved_cwd)
    try:
        yield SimpleNamespace(address=ctx.address_info["gcs_address"], cwd=cwd)
    finally:
        ray.shutdown()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def assert_bit_identical(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for name, a in want.items():
        b = np.asarray(got[name])
        assert b.shape == a.shape, name
        assert b.dtype == a.dtype, name
        assert np.ascontiguousarray(b).tobytes() == np.ascontiguousarray(a).tobytes(), name


@pytest.mark.cluster
@pytest.mark.parametrize(
    "split",
    [{"chunks": 7}, {"chunk_size": 9}],  # firm chunks of 6,5,6,6,6,5,6 and of 9,9,9,9,4
    ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()),
)
def test_firm_chunks_on_ray_equal_one_local_run(ray_cluster, split):
    cfg = orgsim.compose(["strategy=bso", "environment=volatile", "n_orgs=40", "periods=60"])
    # run locally first: this also compiles (or loads) the Numba cache the Ray workers then load
    local = orgsim.simulate(cfg, engine="numba", teams=True)
    res = simulate_ray(cfg, teams=True, **split)

    assert isinstance(res, orgsim.SimulationResult)
    assert res.engine == "numba"
    assert res.config == local.config
    assert_bit_identical(res.kpi_arrays, local.kpi_arrays)
    assert_bit_identical(res.team_arrays, local.team_arrays)
    pd.testing.assert_frame_equal(res.kpis, local.kpis, check_exact=True)
    pd.testing.assert_frame_equal(res.teams, local.teams, check_exact=True)


@pytest.mark.cluster
def test_simulate_ray_without_teams_keeps_kpis_only(ray_cluster):
    cfg = orgsim.compose(["n_orgs=5", "periods=12", "seed=3"])
    res = simulate_ray(cfg, chunks=10)  # more chunks than firms: one firm per chunk
    assert res.team_arrays is None
    assert res.teams.empty
    assert_bit_identical(res.kpi_arrays, orgsim.simulate(cfg, engine="numba", teams=False).kpi_arrays)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunks": 0}, "chunks == 0, must be an integer >= 1"),
        ({"chunk_size": 2.5}, "chunk_size == 2.5, must be an integer >= 1"),
        ({"chunks": 2, "chunk_size": 3}, "must give at most one"),
    ],
)
def test_simulate_ray_rejects_bad_chunking(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        simulate_ray(orgsim.compose(["n_orgs=2", "periods=5"]), **kwargs)


def test_import_orgsim_does_not_need_ray():
    code = "import sys; sys.modules['ray'] = None; import orgsim, orgsim.distributed; print('ok')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


@pytest.mark.cluster
def test_hydra_ray_launcher_runs_a_sweep(ray_cluster):
    cwd = ray_cluster.cwd
    args = [
        "-m",
        "hydra/launcher=ray",
        f"hydra.launcher.ray.init.address={ray_cluster.address}",
        # the launcher asks for a small object store when it starts Ray itself, which Ray refuses
        # when it connects to a running instance
        "+hydra.launcher.ray.init.object_store_memory=null",
        "n_orgs=2",
        "periods=20",
        "seed=0,1",
    ]
    # run from the directory the Ray workers run in, so a relative sweep directory is the same
    # directory for the command and for the runs
    proc = run_cli(*args, cwd=cwd, env=_ENV)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "Ray Launcher is launching 2 jobs" in log, log[-4000:]

    files = sorted(cwd.glob("multirun/**/kpis.parquet"))
    assert len(files) == 2, log[-4000:]
    seeds = set()
    for path in files:
        kpis = pd.read_parquet(path)
        assert set(orgsim.KPI_COLUMNS) <= set(kpis.columns)
        assert len(kpis) == 2 * 20
        seed = json.loads((path.parent / "meta.json").read_text())["seed"]
        seeds.add(seed)
        # the run on Ray is the run this process would make
        want = orgsim.simulate(orgsim.compose(["n_orgs=2", "periods=20", f"seed={seed}"]), teams=False).kpis
        got = kpis.sort_values(["org", "period"], kind="stable").reset_index(drop=True)
        for col in orgsim.KPI_COLUMNS[4:]:
            np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)
    assert seeds == {0, 1}


@pytest.mark.cluster
def test_submitit_local_launcher_runs_a_sweep(tmp_path):
    """Slurm's code path without Slurm: submitit pickles each run and starts it in a subprocess."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    proc = run_cli("-m", "hydra/launcher=submitit_local", "n_orgs=2", "periods=20", "seed=0,1", cwd=tmp_path)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    files = sorted(tmp_path.glob("multirun/**/kpis.parquet"))
    assert len(files) == 2
    for path in files:
        assert set(orgsim.KPI_COLUMNS) <= set(pd.read_parquet(path).columns)


def test_slurm_launcher_config_composes():
    """No Slurm cluster here: check that ``hydra/launcher=slurm`` composes into a launcher."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from orgsim.config import config_dir, register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "hydra/launcher=slurm",
                "hydra.launcher.partition=cpu",
                "hydra.launcher.cpus_per_task=4",
            ],
            return_hydra_config=True,
        )
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert launcher["partition"] == "cpu"
    assert "export NUMBA_NUM_THREADS=4" in launcher["setup"]
    assert launcher["submitit_folder"].startswith(str(cfg.hydra.sweep.dir))
    assert type(instantiate(cfg.hydra.launcher)).__name__ == "SlurmLauncher"
