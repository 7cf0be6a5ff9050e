"""``simulate`` and its results object."""

from __future__ import annotations

import functools
import json
import os
import platform
import sys
import time
from functools import cached_property
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from . import _rng
from ._io import atomic_write
from ._io import write_meta as _write_meta
from .config import Config, ConfigError, config_from_dict, with_changes
from .network import build_network
from .schema import (  # noqa: F401  (ENGINE_KPIS, ENGINE_TEAM_FIELDS: as before, from here too)
    ENGINE_KPIS,
    ENGINE_TEAM_FIELDS,
    KPI_COLUMNS,
    KPI_EXTRA,
    STRUCTURAL,
    TEAM_COLUMNS,
    check_memory,
)

__all__ = ["KPI_COLUMNS", "TEAM_COLUMNS", "ModelError", "SimulationResult", "package_versions", "simulate"]

_PACKAGES = ("orgsim", "mesa", "numba", "numpy", "pandas", "pyarrow", "hydra-core", "omegaconf")


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[name] = "not installed"
    return tuple(out.items())


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that produce results (read once per process)."""
    return dict(_versions())


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


def _check_params(params) -> pd.DataFrame | None:
    """``params`` as a DataFrame whose columns can vary per firm (checked by name, before any
    row is validated)."""
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
    repeated = params.columns[params.columns.duplicated()]
    if len(repeated):
        key = repeated[0]
        raise ConfigError(
            f"params column {key!r} is given {int((params.columns == key).sum())} times, must be given once"
        )
    if len(params) == 0:
        raise ConfigError("params has 0 rows, must have one row per firm")
    for key in params.columns:  # before the rows are built: a shape key that varies is named as such
        if key in STRUCTURAL or any(key.startswith(s + ".") for s in STRUCTURAL):
            values = list(dict.fromkeys(map(_hashable, params[key])))
            if len(values) > 1:
                raise ConfigError(
                    f"params column {key!r} varies ({values[0]!r}, {values[1]!r}, ...), must be the same "
                    "for every firm of one call (it fixes array shapes; run one call per value)"
                )
    return params.reset_index(drop=True)


def _firm_configs(cfg: Config, params: pd.DataFrame) -> list[Config]:
    """One validated config per row of a checked ``params`` (the Mesa engine runs each)."""
    base = cfg.replace(n_orgs=len(params))
    base_data = base.to_dict()  # converted once, shared by every row
    out = []
    for row in params.to_dict(orient="records"):
        changes = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        out.append(config_from_dict(with_changes(base_data, changes)) if changes else base)
    from .engine_numba import check_structure

    check_structure(out)  # one population shares its array shapes, on either engine
    return out


@functools.lru_cache(maxsize=16)
def _cached_keys(seed: int, n: int) -> np.ndarray:
    keys = _rng.firm_keys(seed, range(n))
    keys.setflags(write=False)
    return keys


def _firm_keys(seed: int, n: int) -> np.ndarray:
    """The random keys of firms 0 … n − 1 (a calibration simulates the same firms many times:
    they are derived once per seed and population size)."""
    return _cached_keys(int(seed), int(n))


def _hashable(value):
    return tuple(value) if isinstance(value, (list, np.ndarray)) else value


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
    rules=None,
    firm_class=None,
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
        run is long enough to take more than a few seconds. Unless ``progress=False``, the
        numba engine prints one line to standard error before it compiles its kernel (the first
        run after installing or changing orgsim, about a minute on two cores; later runs load it from the cache).
        The result's ``wall_time`` leaves that compile out (it is ``compile_time``).
    chunk : int, optional
        Firms per kernel call for the numba engine (default: all, or ~2 s worth with
        ``progress``); results do not depend on it.
    rules : AccountabilityRule subclass or dict, optional
        Mesa engine only: the teams' accountability rules — a subclass of
        :class:`orgsim.AccountabilityRule` for every team, or ``{team name: rule instance}``
        for some (the others keep their default rule); see docs/custom_rules.md.
    firm_class : type, optional
        Mesa engine only: a subclass of :class:`orgsim.Firm` to run instead (its
        ``team_class`` may replace the teams).

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
    notice = progress is not False  # the one-line compile notice; progress=False silences it
    if chunk is not None and (
        isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1
    ):
        raise ConfigError(f"chunk == {chunk!r}, must be a positive integer or None")
    if engine != cfg.engine:
        cfg = cfg.replace(engine=engine)
    if teams is None:
        teams = engine == "mesa"
    if rules is not None or firm_class is not None:
        what = "rules" if rules is not None else "firm_class"
        if engine != "mesa":
            raise ConfigError(
                f"{what}= runs only on engine='mesa' (the numba engine compiles the built-in rules "
                f"and teams), got engine == {engine!r}"
            )
        from .engine_mesa import Firm, check_firm_class, check_rules
        from .network import build_network

        firm_class = Firm if firm_class is None else check_firm_class(firm_class)
        check_rules(rules, build_network(cfg), cfg)  # refused before any firm runs
    params = _check_params(params)
    if params is not None:  # the population's size is the number of parameter rows
        cfg = cfg.replace(n_orgs=len(params))
    check_memory(cfg, teams)
    # Mesa runs each firm's own config; numba packs the table column by column (orgsim._params)
    configs = _firm_configs(cfg, params) if params is not None and engine == "mesa" else None
    packed = None
    if engine == "numba":
        from . import engine_numba
        from ._params import pack_params

        packed = pack_params(cfg, params) if params is not None else engine_numba.pack([cfg], checked=True)
    n = cfg.n_orgs
    keys = _firm_keys(cfg.seed, n)
    bar = None
    if progress is None:  # roughly a few seconds of work on either engine
        work = n * cfg.periods * cfg.network.n_teams
        progress = sys.stderr.isatty() and work > (1_000_000 if engine == "mesa" else 20_000_000)
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"firms ({engine})", unit="firm")
    compile_time = 0.0
    start = time.perf_counter()
    try:
        if engine == "mesa":
            from .engine_mesa import run_firm

            kpi_parts, team_parts = [], []
            custom = {} if firm_class is None else {"rules": rules, "firm_class": firm_class}
            for i in range(n):
                k, tm = run_firm(configs[i] if configs else cfg, i, keys[i], **custom)
                kpi_parts.append(k)
                if teams:
                    team_parts.append(tm)
                if bar is not None:
                    bar.update(1)
            kpis = {c: np.stack([p[c] for p in kpi_parts]) for c in kpi_parts[0]}
            team_arrays = {c: np.stack([p[c] for p in team_parts]) for c in team_parts[0]} if teams else None
        else:
            from . import engine_numba

            rows = np.arange(n) if params is not None else np.zeros(n, dtype=np.int64)
            # the first call in a process compiles the kernel, or loads it from Numba's cache:
            # timed apart on one firm, so the run's time and throughput leave it out
            compile_time = engine_numba.warm_up(packed, keys, rows, teams=teams, notice=notice)
            start = time.perf_counter()
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
    _check_finite(kpis, team_arrays)
    return SimulationResult(
        cfg, kpis, team_arrays, engine=engine, wall_time=wall, compile_time=compile_time, params=params
    )


class ModelError(RuntimeError):
    """The model produced a value it must never produce (a NaN or an infinity): a defect of
    orgsim, not of the config, since every valid config is bounded so that nothing
    overflows (docs/model.md §12)."""


def _check_finite(kpis: dict, team_arrays: dict | None) -> None:
    """Raise :class:`ModelError` naming the first non-finite KPI or team value (field, firm,
    period): such a result is never returned, written or served."""
    for kind, arrays in (("KPI", kpis), ("team field", team_arrays or {})):
        for name, values in arrays.items():
            bad = ~np.isfinite(values)
            if bad.any():
                where = tuple(np.argwhere(bad)[0])
                firm, period = where[:2]
                raise ModelError(
                    f"{kind} {name!r} is {values[where]} for firm {firm} in period "
                    f"{period + 1}: the model must not produce NaN or infinity for a valid config; "
                    "please report this config as a bug"
                )


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
        compile_time: float = 0.0,
        params: pd.DataFrame | None = None,
    ):
        self.config = config
        self.params = None if params is None else pd.DataFrame(params).reset_index(drop=True)
        self.engine = engine
        self.seed = config.seed
        self.wall_time = wall_time  # the simulation itself, without compile_time
        self.compile_time = compile_time  # compiling or loading the numba kernel (first call)
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

    def firm_outcomes(self) -> pd.DataFrame:
        """One row per firm: the run's headline outcomes, defined as ``orgsim-results
        summarize`` defines them (docs/model.md §10.4).

        Columns: ``cumulative_fcf`` (free cash flow summed over the run, MU), ``survival``
        (1.0 if solvent in the last period), ``ending_cash``, ``ending_debt`` and
        ``ending_headroom`` (MU, last period; an insolvent firm's headroom counts as at most 0),
        ``fill_rate`` (mean over the periods in which the firm was solvent; NaN if it never
        was), ``operating_cost`` (summed, MU), ``mean_knowledge`` and ``code_knowledge`` (last
        period, share of the dimensions of reality).
        """
        a = self.kpi_arrays
        solvent = np.asarray(a["solvent"]) != 0.0
        fill = np.where(solvent, a["fill_rate"], 0.0)
        periods_solvent = solvent.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            fill_rate = np.where(periods_solvent > 0, fill.sum(axis=1) / periods_solvent, np.nan)
        end_solvent = solvent[:, -1]
        headroom = a["credit_headroom"][:, -1]
        return pd.DataFrame(
            {
                "cumulative_fcf": a["free_cash_flow"].sum(axis=1),
                "survival": end_solvent.astype(float),
                "ending_cash": a["cash"][:, -1],
                "ending_debt": a["debt"][:, -1],
                "ending_headroom": np.where(end_solvent | (headroom <= 0), headroom, 0.0),
                "fill_rate": fill_rate,
                "operating_cost": a["operating_cost"].sum(axis=1),
                "mean_knowledge": a["mean_knowledge"][:, -1],
                "code_knowledge": a["code_knowledge"][:, -1],
            },
            index=pd.RangeIndex(self.config.n_orgs, name="org"),
        )

    def _headline_rows(self) -> list[tuple[str, str, str]]:
        """(column of :meth:`firm_outcomes`, label, unit) of the outcomes this run has: finance
        outcomes only with the finance layer on, knowledge only with the culture layer on."""
        cfg = self.config
        rows = []
        if cfg.finance.enabled:
            rows += [
                ("cumulative_fcf", "cumulative free cash flow", "MU"),
                ("ending_cash", "ending cash", "MU"),
                ("ending_debt", "ending debt", "MU"),
                ("ending_headroom", "ending credit headroom", "MU"),
                ("survival", "solvent at end", "share"),
            ]
        rows += [
            ("fill_rate", "mean fill rate" + (" (while solvent)" if cfg.finance.enabled else ""), "share"),
            ("operating_cost", "total operating cost", "MU"),
        ]
        if cfg.culture.enabled:
            rows += [
                ("mean_knowledge", "ending team knowledge", "share"),
                ("code_knowledge", "ending code knowledge", "share"),
            ]
        return rows

    def headline(self) -> dict[str, dict[str, float | None]]:
        """Per outcome of :meth:`summary`: the mean over firms, its standard error (s/√n,
        ``None`` for one firm) and the firms it averages (``n``)."""
        out = {}
        firms = self.firm_outcomes()
        for column, _, unit in self._headline_rows():
            values = firms[column].dropna().to_numpy()
            n = len(values)
            out[column] = {
                "mean": float(values.mean()) if n else None,
                "se": float(values.std(ddof=1) / np.sqrt(n)) if n > 1 else None,
                "n": n,
                "unit": unit,
            }
        return out

    def summary(self) -> str:
        """A short text summary of the run: per-firm outcomes with their unit, mean, standard
        error of the mean (s/√n over firms) and 5th and 95th percentiles."""
        cfg = self.config
        unit = cfg.scenario.time_unit
        timing = (
            f"time: {self.wall_time:.2f} s simulating ({self.team_periods_per_second:,.0f} team-periods/s)"
        )
        if self.compile_time >= 0.5:
            timing += f", plus {self.compile_time:.1f} s compiling or loading the numba kernel (first call)"
        lines = [
            f"orgsim {self.versions.get('orgsim', '?')} | scenario={cfg.scenario.name} "
            f"strategy={cfg.strategy.name} ({cfg.strategy.family}) environment={cfg.environment.name}",
            f"engine={self.engine} seed={cfg.seed} firms={cfg.n_orgs} periods={cfg.periods} "
            f"({unit}s) teams/firm={self.network.n_teams}",
            timing,
            f"{'per firm':<38}{'unit':>6}{'mean':>13}{'s.e.':>11}{'p5':>13}{'p95':>13}",
        ]
        firms = self.firm_outcomes()
        for column, label, unit_name in self._headline_rows():
            v = firms[column].dropna()
            if v.empty:
                lines.append(f"{label:<38}{unit_name:>6}{'(no firm)':>13}")
                continue
            se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
            if unit_name == "share":
                cells = [f"{x:>13.1%}" for x in (v.mean(), v.quantile(0.05), v.quantile(0.95))]
                se_cell = f"{se:>11.1%}" if np.isfinite(se) else f"{'-':>11}"
            else:
                cells = [f"{x:>13,.1f}" for x in (v.mean(), v.quantile(0.05), v.quantile(0.95))]
                se_cell = f"{se:>11,.1f}" if np.isfinite(se) else f"{'-':>11}"
            lines.append(f"{label:<38}{unit_name:>6}{cells[0]}{se_cell}{cells[1]}{cells[2]}")
        lines.append(
            "MU: money units; share: a fraction shown in %; s.e.: standard error of the mean over firms"
        )
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
            "compile_time_s": self.compile_time,
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
        file; ``meta.json`` comes last and records each file's size, SHA-256 digest and rows,
        which :mod:`orgsim.results` checks before it reads a run. The metadata is also embedded
        in each Parquet file's schema metadata. ``extra_columns`` adds constant columns (run id,
        overrides) to every table. With ``write_meta=False`` the caller writes ``meta.json``
        (the command line adds its config.yaml and figure first).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if write_meta:  # until the new meta.json is written, the directory holds no complete run
            (directory / "meta.json").unlink(missing_ok=True)
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
            written["meta"] = _write_meta(directory, meta, self.file_rows(written))
        return written

    def file_rows(self, written: dict[str, Path]) -> dict[str, dict]:
        """``{file name: {"rows": n}}`` for the tables of :meth:`to_parquet`'s ``written``."""
        rows = {"kpis": self.config.n_orgs * self.config.periods}
        rows["teams"] = rows["kpis"] * self.network.n_teams
        return {Path(path).name: {"rows": rows[name]} for name, path in written.items() if name in rows}
