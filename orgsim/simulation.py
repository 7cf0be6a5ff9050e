"""``simulate`` and its results object."""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
import warnings
from functools import cached_property
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from . import _rng
from .config import Config, ConfigError, config_from_dict, with_changes
from .network import build_network

__all__ = ["KPI_COLUMNS", "TEAM_COLUMNS", "SimulationResult", "package_versions", "simulate"]

KPI_COLUMNS = (
    "org",
    "period",
    "strategy",
    "family",
    "demand",
    "revenue",
    "operating_cost",
    "ebitda",
    "free_cash_flow",
    "cash",
    "debt",
    "credit_headroom",
    "inventory_units",
    "backlog_units",
    "fill_rate",
    "mean_knowledge",
    "code_knowledge",
    "mean_maturity",
    "solvent",
)
#: extra KPI columns kept after the contract's (needed to check cash conservation)
KPI_EXTRA = ("cash_start", "net_financing", "interest", "programme_cost")
TEAM_COLUMNS = (
    "org",
    "period",
    "team",
    "stage",
    "role",
    "inventory",
    "backlog",
    "order",
    "received",
    "shipped",
    "cost",
    "knowledge",
)
#: what both engines record per firm and period (``demand_total`` becomes ``demand``)
ENGINE_KPIS = ("demand_total", *KPI_COLUMNS[5:], *KPI_EXTRA)
ENGINE_TEAM_FIELDS = TEAM_COLUMNS[5:]
_PACKAGES = ("orgsim", "mesa", "numba", "numpy", "pandas", "pyarrow", "hydra-core", "omegaconf")


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that produce results."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[name] = "not installed"
    return out


#: keys a ``params`` row cannot set: run options, which hold for the whole population, and the
#: labels of the run (a strategy is what its management.* and culture.* values do, not its name)
NOT_PER_FIRM = {
    "seed": "a run option (firm i's stream comes from the seed and i)",
    "n_orgs": "a run option (the population is one firm per row)",
    "engine": "a run option",
    "output": "a run option",
    "strategy": "a label of the run; vary the strategy's management.* and culture.* values",
    "scenario": "a label of the run",
    "environment": "a label of the run (the environment's values are demand.*, supply.* and culture.*)",
}


def _firm_configs(cfg: Config, params) -> list[Config] | None:
    """One validated config per row of ``params`` (columns are dotted config keys)."""
    if params is None:
        return None
    if not isinstance(params, pd.DataFrame):
        if not isinstance(params, dict):
            raise TypeError(
                f"params must be a pandas DataFrame (one row per firm, columns named by dotted config "
                f"keys such as 'policy.theta'), got {type(params).__name__}"
            )
        params = pd.DataFrame(params)
    for key in params.columns:
        if not isinstance(key, str):
            raise ConfigError(f"params column {key!r}, must be a dotted config key such as 'policy.theta'")
        for banned, why in NOT_PER_FIRM.items():
            if key == banned or key.startswith(banned + "."):
                raise ConfigError(f"params column {key!r} cannot vary per firm: {why}")
    if len(params) == 0:
        raise ConfigError("params has 0 rows, must have one row per firm")
    base = cfg.replace(n_orgs=len(params))
    base_data = base.to_dict()  # converted once, shared by every row
    out = []
    for row in params.to_dict(orient="records"):
        changes = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        out.append(config_from_dict(with_changes(base_data, changes)) if changes else base)
    from .engine_numba import check_structure

    check_structure(out)  # one population shares its array shapes, on either engine
    return out


def check_memory(cfg: Config, teams: bool) -> None:
    """Raise ConfigError if the engines' result arrays alone (8 bytes per KPI per firm and
    period, and per team field per team with ``teams``) exceed this machine's memory: such a run
    cannot finish, so it is refused before it starts (and before the CLI writes anything)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return
    per_period = len(ENGINE_KPIS) + (len(ENGINE_TEAM_FIELDS) * cfg.network.n_teams if teams else 0)
    need = 8 * per_period * cfg.n_orgs * cfg.periods
    if need > total:
        what = "KPI and team arrays" if teams else "KPI arrays"
        raise ConfigError(
            f"n_orgs × periods == {cfg.n_orgs} × {cfg.periods}, must fit in memory: its {what} need "
            f"{need / 2**30:,.0f} GiB, this machine has {total / 2**30:,.0f} GiB"
        )


def _flag(name: str, value) -> bool | None:
    if value is None or isinstance(value, bool | np.bool_):
        return None if value is None else bool(value)
    raise ConfigError(f"{name} == {value!r}, must be True, False or None")


def simulate(
    cfg: Config,
    engine: str | None = None,
    *,
    seed=None,
    params: pd.DataFrame | None = None,
    teams: bool | None = None,
    progress: bool | None = None,
    chunk: int | None = None,
) -> SimulationResult:
    """Simulate ``cfg.n_orgs`` firms for ``cfg.periods`` periods.

    Parameters
    ----------
    cfg : Config
        A validated configuration (see :func:`orgsim.compose`).
    engine : {"mesa", "numba"}, optional
        Overrides ``cfg.engine``. Both give the same numbers; ``numba`` is the fast one.
    seed : int, SeedSequence or Generator, optional
        Overrides ``cfg.seed`` (SPEC 7). Firm ``i`` draws from a stream derived from the seed
        and ``i`` only, so it follows the same path alone or in any population.
    params : pandas.DataFrame, optional
        One row per firm, columns named by dotted config keys (``"policy.theta"``,
        ``"demand.cv"``, ...): firm ``i`` runs with ``cfg`` changed by row ``i`` (validated).
        ``n_orgs`` becomes the number of rows. With ``engine="numba"`` the whole population is
        one kernel call. On either engine, keys that fix array shapes
        (``orgsim.engine_numba.STRUCTURAL``) must not vary, and run options and labels
        (:data:`NOT_PER_FIRM`: ``seed``, ``n_orgs``, ``engine``, ``output.*``, the strategy,
        scenario and environment names) cannot be columns.
    teams : bool, optional
        Keep team-level records (``result.teams``); memory grows with firms × periods × teams.
        By default only the numba engine leaves them out (firm-level KPIs only, so large
        populations fit in memory); the Mesa engine, run on small populations, keeps them.
    progress : bool, optional
        Show a progress bar (tqdm). By default it is shown on an interactive terminal when the
        run is long enough to take more than a few seconds.
    chunk : int, optional
        Firms per kernel call for the numba engine (default: all, or ~2 s worth with
        ``progress``); results do not depend on it.

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> import orgsim
    >>> res = orgsim.simulate(orgsim.compose(["scenario=beer_game"]))
    >>> float(res.teams.cost.sum())
    2694.0
    """
    if not isinstance(cfg, Config):
        raise TypeError(f"cfg must be an orgsim Config, got {type(cfg).__name__}")
    if seed is not None:
        cfg = cfg.replace(seed=_rng.seed_to_int(seed))
    engine = cfg.engine if engine is None else engine
    if engine not in ("mesa", "numba"):
        raise ConfigError(f"engine == {engine!r}, must be one of 'mesa', 'numba'")
    teams, progress = _flag("teams", teams), _flag("progress", progress)
    if chunk is not None and (
        isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1
    ):
        raise ConfigError(f"chunk == {chunk!r}, must be a positive integer or None")
    if engine != cfg.engine:
        cfg = cfg.replace(engine=engine)
    if teams is None:
        teams = engine == "mesa"
    configs = _firm_configs(cfg, params)
    if configs is not None:  # the population's size is the number of parameter rows
        cfg = cfg.replace(n_orgs=len(configs))
    check_memory(cfg, teams)
    n = cfg.n_orgs
    keys = _rng.firm_keys(cfg.seed, range(n))
    bar = None
    if progress is None:  # roughly a few seconds of work on either engine
        work = n * cfg.periods * cfg.network.n_teams
        progress = sys.stderr.isatty() and work > (1_000_000 if engine == "mesa" else 20_000_000)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"firms ({engine})", unit="firm")
    start = time.perf_counter()
    try:
        if engine == "mesa":
            from .engine_mesa import run_firm

            kpi_parts, team_parts = [], []
            for i in range(n):
                k, tm = run_firm(configs[i] if configs else cfg, i, keys[i])
                kpi_parts.append(k)
                if teams:
                    team_parts.append(tm)
                if bar is not None:
                    bar.update(1)
            kpis = {c: np.stack([p[c] for p in kpi_parts]) for c in kpi_parts[0]}
            team_arrays = {c: np.stack([p[c] for p in team_parts]) for c in team_parts[0]} if teams else None
        else:
            from . import engine_numba

            packed = engine_numba.pack(configs or [cfg], checked=True)
            rows = np.arange(n) if configs else np.zeros(n, dtype=np.int64)
            if chunk is None and bar is not None:
                chunk = max(1, min(n, 2_000_000 // max(1, cfg.periods * packed["TP"].shape[1])))
            k_arr, t_arr = engine_numba.run(
                packed, keys, rows, teams=teams, chunk=chunk, progress=None if bar is None else bar.update
            )
            kpis = {name: k_arr[j] for j, name in enumerate(engine_numba.KPI_FIELDS)}
            team_arrays = (
                {name: t_arr[j] for j, name in enumerate(engine_numba.TEAM_FIELDS)} if teams else None
            )
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - start
    _warn_non_finite(kpis)
    return SimulationResult(cfg, kpis, team_arrays, engine=engine, wall_time=wall, params=params)


def _warn_non_finite(kpis: dict) -> None:
    """Warn (RuntimeWarning) about the first non-finite KPI: inputs at the edge of the float
    range (a cost of 1e308) overflow, and such a result should not pass unnoticed."""
    for name, values in kpis.items():
        bad = ~np.isfinite(values)
        if bad.any():
            firm, period = np.argwhere(bad)[0]
            warnings.warn(
                f"KPI {name!r} is {values[firm, period]} for firm {firm} in period {period + 1}: the "
                "inputs overflow the float range (check the scale of money and quantity parameters)",
                RuntimeWarning,
                stacklevel=3,
            )
            return


class SimulationResult:
    """Results of :func:`simulate`: the config, raw arrays, and labelled DataFrames.

    Attributes
    ----------
    config : Config
    engine : str
    kpis : pandas.DataFrame
        One row per firm and period with the KPI columns of the public contract.
    teams : pandas.DataFrame
        One row per firm, period and team (empty if team records were not kept).
    """

    def __init__(
        self,
        config: Config,
        kpi_arrays: dict,
        team_arrays: dict | None,
        *,
        engine: str,
        wall_time: float,
        params: pd.DataFrame | None = None,
    ):
        self.config = config
        self.params = None if params is None else pd.DataFrame(params).reset_index(drop=True)
        self.engine = engine
        self.seed = config.seed
        self.wall_time = wall_time
        self.kpi_arrays = kpi_arrays  # each [n_orgs, periods]
        self.team_arrays = team_arrays  # each [n_orgs, periods, n_teams]
        self.network = build_network(config)
        self.versions = package_versions()

    @property
    def team_periods(self) -> int:
        return self.config.n_orgs * self.config.periods * self.network.n_teams

    @property
    def team_periods_per_second(self) -> float:
        return self.team_periods / self.wall_time if self.wall_time > 0 else float("nan")

    @cached_property
    def kpis(self) -> pd.DataFrame:
        """One row per firm and period: the contract's KPI columns, then extras."""
        cfg = self.config
        n, t = cfg.n_orgs, cfg.periods
        a = self.kpi_arrays

        def flat(name):  # a view when the engine's array is contiguous (no copy)
            return np.ascontiguousarray(a[name], dtype=np.float64).reshape(-1)

        cols = {
            "org": np.repeat(np.arange(n, dtype=np.int64), t),
            "period": np.tile(np.arange(1, t + 1, dtype=np.int64), n),
            "strategy": pd.Categorical.from_codes(np.zeros(n * t, dtype=np.int8), [cfg.strategy.name]),
            "family": pd.Categorical.from_codes(np.zeros(n * t, dtype=np.int8), [cfg.strategy.family]),
            "demand": flat("demand_total"),
        }
        for col in KPI_COLUMNS[5:]:
            cols[col] = flat(col) != 0.0 if col == "solvent" else flat(col)
        for col in KPI_EXTRA:
            cols[col] = flat(col)
        if self.params is not None:  # each firm's own parameter values, for calibration
            for col in self.params.columns:
                cols[col] = np.repeat(self.params[col].to_numpy(), t)
        return pd.DataFrame(cols, copy=False)

    @cached_property
    def teams(self) -> pd.DataFrame:
        """One row per firm, period and team (empty if team records were not kept)."""
        cfg, net = self.config, self.network
        if self.team_arrays is None:
            return pd.DataFrame({c: [] for c in TEAM_COLUMNS})
        n, t, m = cfg.n_orgs, cfg.periods, net.n_teams
        a = self.team_arrays
        cols = {
            "org": np.repeat(np.arange(n, dtype=np.int64), t * m),
            "period": np.tile(np.repeat(np.arange(1, t + 1, dtype=np.int64), m), n),
            "team": pd.Categorical.from_codes(np.tile(np.arange(m, dtype=np.int16), n * t), list(net.names)),
            "stage": np.tile(net.stage, n * t),
            "role": pd.Categorical(np.tile(np.array(net.roles), n * t)),
        }
        for col in TEAM_COLUMNS[5:]:
            cols[col] = np.ascontiguousarray(a[col], dtype=np.float64).reshape(-1)
        return pd.DataFrame(cols, copy=False)

    # -- summaries -------------------------------------------------------------------------
    def final(self) -> pd.DataFrame:
        """KPIs of each firm in the last period, with cumulative free cash flow."""
        k = self.kpis
        last = k[k.period == self.config.periods].set_index("org")
        last = last.assign(cumulative_fcf=k.groupby("org").free_cash_flow.sum())
        return last

    def summary(self) -> str:
        """A short text summary of the run."""
        cfg = self.config
        fin = self.final()
        lines = [
            f"orgsim {self.versions.get('orgsim', '?')} | scenario={cfg.scenario.name} "
            f"strategy={cfg.strategy.name} ({cfg.strategy.family}) environment={cfg.environment.name}",
            f"engine={self.engine} seed={cfg.seed} firms={cfg.n_orgs} periods={cfg.periods} "
            f"teams/firm={self.network.n_teams} wall={self.wall_time:.2f}s "
            f"({self.team_periods_per_second:,.0f} team-periods/s)",
        ]
        stats = {
            "cumulative free cash flow": fin.cumulative_fcf,
            "ending cash": fin.cash,
            "ending debt": fin.debt,
            "ending credit headroom": fin.credit_headroom,
            "mean fill rate": self.kpis.groupby("org").fill_rate.mean(),
            "total operating cost": self.kpis.groupby("org").operating_cost.sum(),
            "ending team knowledge": fin.mean_knowledge,
            "ending code knowledge": fin.code_knowledge,
        }
        lines.append(f"{'KPI (per firm)':<28}{'mean':>14}{'p5':>14}{'p95':>14}")
        for name, s in stats.items():
            lines.append(f"{name:<28}{s.mean():>14,.2f}{s.quantile(0.05):>14,.2f}{s.quantile(0.95):>14,.2f}")
        lines.append(f"{'solvent at end':<28}{fin.solvent.mean():>14.1%}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        cfg = self.config
        return (
            f"<SimulationResult scenario={cfg.scenario.name} strategy={cfg.strategy.name} "
            f"engine={self.engine} firms={cfg.n_orgs} periods={cfg.periods}>"
        )

    def _repr_html_(self) -> str:
        return "<pre>" + self.summary() + "</pre>"

    # -- provenance and output --------------------------------------------------------------
    def metadata(self) -> dict:
        """Config, seed, engine, versions and timing: recorded with every output."""
        return {
            "config": self.config.to_dict(),
            "seed": self.seed,
            "engine": self.engine,
            "versions": self.versions,
            "wall_time_s": self.wall_time,
            "team_periods": self.team_periods,
            "team_periods_per_second": self.team_periods_per_second,
            "params": None if self.params is None else self.params.to_dict(orient="list"),
        }

    def to_parquet(
        self,
        directory: str | os.PathLike,
        *,
        teams: bool = True,
        extra_columns: dict | None = None,
        write_meta: bool = True,
    ) -> dict[str, Path]:
        """Write ``kpis.parquet`` (and ``teams.parquet``) and ``meta.json`` into ``directory``.

        Each file is written to a temporary name and renamed, so a killed run leaves no partial
        file; the metadata is also embedded in each Parquet file's schema metadata.
        ``extra_columns`` adds constant columns (run id, overrides) to every table.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = self.metadata()
        meta_bytes = json.dumps(meta, sort_keys=True).encode()
        written = {}
        frames = {"kpis": self.kpis}
        if teams and self.team_arrays is not None:
            frames["teams"] = self.teams
        for name, df in frames.items():
            table = pa.Table.from_pandas(df, preserve_index=False)
            for col, value in (extra_columns or {}).items():
                if col not in table.column_names:
                    table = table.append_column(col, pa.array([value] * table.num_rows))
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"orgsim": meta_bytes})
            path = directory / f"{name}.parquet"
            atomic_write(path, lambda p, table=table: pq.write_table(table, p))
            written[name] = path
        if write_meta:
            path = directory / "meta.json"
            atomic_write(path, lambda p: Path(p).write_text(json.dumps(meta, indent=2, sort_keys=True)))
            written["meta"] = path
        return written


def atomic_write(path: Path, write) -> None:
    """Write through ``write(tmp_path)`` to a temporary file beside ``path``, then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
