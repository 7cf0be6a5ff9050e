"""One large population split into firm chunks on a Ray cluster.

A firm's random key depends only on the root seed and the firm's index (:func:`orgsim._rng.firm_keys`),
and the batch engine runs each firm independently, so a population can be cut into chunks of firm
indices that run anywhere. When the chunks are joined back in index order, the results are
bit-identical to one local ``orgsim.simulate(cfg, engine="numba")``. Ray is imported only when
:func:`simulate_ray` is called: ``import orgsim`` never needs it.

Sweeps over many configurations are a different job: they go through Hydra's launchers
(``orgsim -m hydra/launcher=ray ...``); see ``docs/clusters.md``.
"""

from __future__ import annotations

import time
from itertools import pairwise

import numpy as np

from . import _rng
from .config import Config, ConfigError
from .simulation import SimulationResult

__all__ = ["simulate_ray"]


def simulate_ray(
    cfg: Config,
    *,
    chunks: int | None = None,
    chunk_size: int | None = None,
    address: str | None = None,
    teams: bool = False,
) -> SimulationResult:
    """Simulate ``cfg.n_orgs`` firms with the numba engine, in firm chunks run as Ray tasks.

    The firm indices ``0 .. n_orgs - 1`` are cut into contiguous chunks; each chunk is one Ray
    task that draws its firms' keys from ``(cfg.seed, firm index)`` and runs the batch kernel on
    them. The chunks' arrays are joined along the firm axis in index order, so the result equals
    ``orgsim.simulate(cfg, engine="numba")`` bit for bit, whatever the chunking or the nodes
    (given the same orgsim, numba and numpy versions and CPU architecture on every node).

    Parameters
    ----------
    cfg : Config
        A validated configuration (see :func:`orgsim.compose`); ``cfg.engine`` is ignored, the
        result's engine is ``"numba"``.
    chunks : int, optional
        Number of chunks (Ray tasks); chunk sizes differ by at most one firm. Default: the
        cluster's CPU count. Give ``chunks`` or ``chunk_size``, not both.
    chunk_size : int, optional
        Firms per chunk (the last chunk may be smaller).
    address : str, optional
        Address of a running Ray cluster (``"auto"``, ``"ray://head:10001"``, ``"head:6379"``).
        Default: the Ray session already initialised in this process, else a new local Ray
        instance (``ray.init()``, left running for later calls). An already initialised session
        is always used as it is.
    teams : bool
        Keep team-level records (``result.teams``); they are shipped back from every task, so
        memory and traffic grow with firms × periods × teams.

    Returns
    -------
    SimulationResult
        As from :func:`orgsim.simulate` with ``engine="numba"``; ``wall_time`` includes
        scheduling and transfer.

    Raises
    ------
    ConfigError
        If ``chunks`` or ``chunk_size`` is not a positive integer, or both are given.

    See Also
    --------
    orgsim.simulate : the same population in this process.

    Notes
    -----
    Every node needs the same orgsim (and numba, numpy) installed, or a Ray ``runtime_env``
    that ships them; each task compiles or loads the Numba kernels once per worker process.
    Each task gets one CPU by default and runs its kernel on the CPUs Ray assigned to it.

    Examples
    --------
    >>> import numpy as np
    >>> import ray
    >>> import orgsim
    >>> from orgsim.distributed import simulate_ray
    >>> cfg = orgsim.compose(["strategy=bso", "environment=volatile", "n_orgs=12", "periods=24"])
    >>> _ = ray.init(num_cpus=2, include_dashboard=False)  # doctest: +SKIP
    >>> res = simulate_ray(cfg, chunks=5)  # doctest: +SKIP
    >>> local = orgsim.simulate(cfg, engine="numba", teams=False)
    >>> all(np.array_equal(res.kpi_arrays[k], local.kpi_arrays[k]) for k in local.kpi_arrays)  # doctest: +SKIP
    True
    >>> ray.shutdown()  # doctest: +SKIP
    """
    import ray

    from . import engine_numba

    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be an orgsim Config, got {type(cfg).__name__}")
    if chunks is not None and chunk_size is not None:
        raise ConfigError(f"chunks == {chunks} and chunk_size == {chunk_size}, must give at most one")
    for name, value in (("chunks", chunks), ("chunk_size", chunk_size)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1
        ):
            raise ConfigError(f"{name} == {value!r}, must be an integer >= 1")
    if cfg.engine != "numba":
        cfg = cfg.replace(engine="numba")

    start = time.perf_counter()
    if not ray.is_initialized():
        ray.init(address=address)
    n = cfg.n_orgs
    if chunk_size is not None:
        bounds = [*range(0, n, int(chunk_size)), n]
    else:
        k = int(chunks) if chunks is not None else max(1, int(ray.cluster_resources().get("CPU", 1)))
        bounds = np.linspace(0, n, min(k, n) + 1).round().astype(int).tolist()
    cfg_ref = ray.put(cfg)
    task = ray.remote(_run_chunk)
    refs = [task.remote(cfg_ref, lo, hi, teams) for lo, hi in pairwise(bounds)]
    parts = ray.get(refs)
    k_arr = np.concatenate([p[0] for p in parts], axis=1)
    t_arr = np.concatenate([p[1] for p in parts], axis=1) if teams else None
    del parts, refs
    wall = time.perf_counter() - start

    kpis = {name: k_arr[j] for j, name in enumerate(engine_numba.KPI_FIELDS)}
    team_arrays = {name: t_arr[j] for j, name in enumerate(engine_numba.TEAM_FIELDS)} if teams else None
    return SimulationResult(cfg, kpis, team_arrays, engine="numba", wall_time=wall)


def _run_chunk(cfg: Config, lo: int, hi: int, teams: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Firms ``lo .. hi - 1`` of ``cfg``'s population: KPIs ``[field, firm, period]`` and teams."""
    import numba
    import ray

    from . import engine_numba

    # run the kernel on the CPUs Ray gave this task (the results do not depend on it)
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    numba.set_num_threads(max(1, min(int(cpus), numba.config.NUMBA_NUM_THREADS)))
    packed = engine_numba.pack([cfg])
    keys = _rng.firm_keys(cfg.seed, np.arange(lo, hi))
    rows = np.zeros(hi - lo, dtype=np.int64)
    return engine_numba.run(packed, keys, rows, teams=teams)
