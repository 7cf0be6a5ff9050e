"""Paired comparison of management strategies on common random numbers.

:func:`compare` runs the same firms under every strategy in every environment and returns a
:class:`ComparisonResult`: per-firm outcomes at each horizon (cumulative and discounted free cash
flow, survival, ending cash, credit headroom, revenue growth, fill rate), paired effects with
95% intervals (the culture-aligned family against the pooled efficiency-only family, and every
pair of strategies), the crossover period of the cumulative-FCF advantage with a bootstrap
interval, text/HTML summaries and figures. :func:`from_store` builds the same object from a
sweep's results store.

Pairing. orgsim's random numbers are counter-based, keyed by (seed, firm index, stream, team,
period), so with one seed firm *i* meets the same demand, shocks, disruptions and turnover draws
under every strategy (common random numbers). The per-firm differences y_a,i − y_b,i are then
independent across firms, and their mean has a paired t interval. ``docs/comparison.md`` has the
definitions, the validation of the variance reduction, and the benchmark.

Examples
--------
>>> from orgsim.comparison import compare
>>> res = compare(strategies=["bpo_bpm", "bso"], environments=["stable"], n_orgs=4, periods=60,
...               horizons=[30, 60])
>>> frame = res.summary_frame(alpha=0.05)
>>> sorted(frame.contrast.unique())
['bso − bpo_bpm', 'culture_aligned − efficiency_only']
>>> list(frame.columns[5:10])
['mean', 'mean_se', 'mean_ci_lower', 'mean_ci_upper', 'n']
"""

from __future__ import annotations

import json
import math
import numbers
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _rng
from ._paired import (
    _ENGINE_NAMES,
    ARRAY_KPIS,
    DIAGNOSTICS,
    OUTCOMES,
    _cell_outcomes,
    _discount_factors,
    bootstrap_crossover,
    check_alpha,
    first_crossover,
    newcombe_difference,
    paired_difference,
    resample_counts,
)
from ._strategy_forecast import ForecastCheck, StrategyForecast
from .config import Config, ConfigError, compose, config_dir, config_from_dict, with_changes

__all__ = [
    "ARRAY_KPIS",
    "DEFAULT_ENVIRONMENTS",
    "DIAGNOSTICS",
    "FAMILY_CONTRAST",
    "OUTCOMES",
    "ComparisonResult",
    "ForecastCheck",
    "StrategyForecast",
    "compare",
    "firm_outcomes",
    "first_crossover",
    "from_store",
    "newcombe_difference",
    "paired_difference",
]

CULTURE, EFFICIENCY, BASELINE = "culture_aligned", "efficiency_only", "baseline"
#: families from the lowest to the highest rank: a contrast puts the higher-ranked arm first
FAMILY_ORDER = (BASELINE, EFFICIENCY, CULTURE)
MINUS = " − "  # U+2212, as in "bso − bpo_bpm"
#: the family contrast: culture-aligned minus the pooled efficiency-only family
FAMILY_CONTRAST = f"{CULTURE}{MINUS}{EFFICIENCY}"
#: the market environments compared by default (``native`` switches the environment off)
DEFAULT_ENVIRONMENTS = ("stable", "volatile", "disrupted")
#: keys a list of common overrides may not set: compare sets them from its own arguments
_RUN_ARGUMENTS = {"n_orgs": "n_orgs", "periods": "periods", "seed": "seed", "engine": "engine"}


def firm_outcomes(
    result,
    *,
    horizons: Sequence[int] | None = None,
    discount_rate: float = 0.08,
    periods_per_year: float | None = None,
    growth_window: int = 13,
) -> pd.DataFrame:
    """Per-firm outcomes of one simulation at each horizon (the definitions of :func:`compare`).

    Parameters
    ----------
    result : SimulationResult
        A result of :func:`orgsim.simulate`.
    horizons, discount_rate, periods_per_year, growth_window
        As for :func:`compare`.

    Returns
    -------
    pandas.DataFrame
        One row per firm and horizon: ``firm, horizon``, the :data:`OUTCOMES` and the
        :data:`DIAGNOSTICS`.
    """
    from .simulation import SimulationResult

    if not isinstance(result, SimulationResult):
        raise TypeError(f"result must be an orgsim SimulationResult, got {type(result).__name__}")
    cfg = result.config
    ppy = _check_periods_per_year(periods_per_year, _config_periods_per_year(cfg))
    hs = _check_horizons(horizons, cfg.periods, ppy)
    rate = _check_rate(discount_rate)
    w = _check_window(growth_window)
    arrays = {k: result.kpi_arrays[_ENGINE_NAMES.get(k, k)] for k in ARRAY_KPIS}
    out = _cell_outcomes(arrays, hs, _discount_factors(cfg.periods, rate, ppy), w)
    n = cfg.n_orgs
    frame = {"firm": np.tile(np.arange(n), len(hs)), "horizon": np.repeat(np.array(hs, dtype=np.int64), n)}
    frame.update({k: v.reshape(-1) for k, v in out.items()})
    return pd.DataFrame(frame)


# ----------------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------------
def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool | np.bool_)


def _check_horizons(horizons, periods: int, periods_per_year: float) -> tuple[int, ...]:
    """Horizons as sorted unique ints in 1..periods; by default 2 and 5 years where they fit,
    and the run's length."""
    if horizons is None:
        years = [round(y * periods_per_year) for y in (2, 5) if 1 <= round(y * periods_per_year) <= periods]
        return tuple(sorted({*years, periods}))
    if isinstance(horizons, str | bytes) or not isinstance(horizons, Sequence | np.ndarray):
        horizons = [horizons]
    hs = list(horizons)
    if not hs:
        raise ValueError(f"horizons == {hs!r}, must name at least one period in 1..{periods}")
    for h in hs:
        if not _is_int(h):
            raise TypeError(f"horizons == {hs!r}, must be integers (periods) in 1..{periods}; {h!r} is not")
        if not 1 <= h <= periods:
            raise ValueError(
                f"horizons == {hs!r}, must be periods in 1..{periods} (the run's length); {h!r} is not"
            )
    return tuple(sorted({int(h) for h in hs}))


def _check_rate(discount_rate) -> float:
    if isinstance(discount_rate, bool) or not isinstance(discount_rate, numbers.Real):
        raise TypeError(f"discount_rate == {discount_rate!r}, must be a number >= 0 (an annual rate)")
    if not math.isfinite(float(discount_rate)) or discount_rate < 0:
        raise ValueError(f"discount_rate == {discount_rate!r}, must be a finite annual rate >= 0, e.g. 0.08")
    return float(discount_rate)


def _check_periods_per_year(value, default: float) -> float:
    if value is None:
        value = default
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"periods_per_year == {value!r}, must be a number > 0 (52 for weekly periods)")
    return int(value) if float(value).is_integer() else float(value)


def _config_periods_per_year(cfg: Config) -> float:
    """Periods in a year: the scenario's time unit where it names one (``scenario.time_unit``),
    else the demand's seasonal cycle (``demand.season_period``, 52 for weeks)."""
    per_year = getattr(cfg.scenario, "periods_per_year", None)
    return per_year if per_year else cfg.demand.season_period


def _time_unit(configs: Mapping) -> str:
    units = {getattr(c.scenario, "time_unit", "week") for c in configs.values()}
    unit = units.pop() if len(units) == 1 else "period"
    return "weeks" if unit == "week" else f"{unit}s"


def _check_window(value) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"growth_window == {value!r}, must be an integer >= 1 (periods, e.g. 13 weeks)")
    return int(value)


def _check_int(name: str, value, lo: int, why: str = "") -> int:
    if not _is_int(value):
        raise TypeError(f"{name} == {value!r}, must be an integer >= {lo}{why}")
    if value < lo:
        raise ValueError(f"{name} == {value!r}, must be >= {lo}{why}")
    return int(value)


def _group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def _flat(data: Mapping, prefix: str = "") -> dict[str, Any]:
    """A nested config dict as dotted keys (lists stay values)."""
    out = {}
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _group_values(group: str, option: str) -> dict[str, Any]:
    """The dotted keys and values that ``conf/<group>/<option>.yaml`` sets (``@package _global_``)."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.load(config_dir() / group / f"{option}.yaml"), resolve=True)
    data.pop("defaults", None)
    return _flat(data)


def _group_keys(group: str) -> set[str]:
    """Every dotted key set by some option of ``conf/<group>/``: the keys the group owns."""
    return {k for option in _group_options(group) for k in _group_values(group, option)}


def _override_key(item: str) -> str:
    return item.partition("=")[0].strip().lstrip("+~")


def _arms(strategies) -> list[tuple[str, list[str]]]:
    """The arms as (label, overrides that choose and change the strategy)."""
    options = _group_options("strategy")
    allowed = ", ".join(repr(o) for o in options)
    if strategies is None:
        return [(s, [f"strategy={s}"]) for s in options]  # ordered by family later
    if isinstance(strategies, str | bytes) or not isinstance(strategies, Sequence | Mapping):
        raise TypeError(
            f"strategies == {strategies!r}, must be a list of strategy names ({allowed}) or a mapping "
            "of labels to override lists"
        )
    items = list(strategies.items()) if isinstance(strategies, Mapping) else [(s, None) for s in strategies]
    if len(items) < 2:
        raise ValueError(
            f"strategies == {list(strategies)!r}, must name at least 2 strategies to compare (options: {allowed})"
        )
    arms, seen = [], set()
    for label, ov in items:
        if not isinstance(label, str) or not label.strip() or MINUS.strip() in label:
            raise ValueError(
                f"strategies label {label!r}, must be a non-empty string without '{MINUS.strip()}'"
            )
        if label in seen:
            raise ValueError(f"strategies label {label!r} appears twice, must be unique")
        seen.add(label)
        if ov is None:
            if label not in options:
                raise ConfigError(
                    f"strategies == {label!r}, must be one of {allowed} (conf/strategy/), or a label mapped "
                    "to overrides such as {'" + label + "': ['strategy=bso', 'strategy.name=" + label + "']}"
                )
            ov = [f"strategy={label}"]
        if (
            isinstance(ov, str | bytes)
            or not isinstance(ov, Sequence)
            or not all(isinstance(o, str) for o in ov)
        ):
            raise TypeError(f"strategies[{label!r}] == {ov!r}, must be a list of override strings or None")
        for o in ov:
            key = _override_key(o)
            if key in _RUN_ARGUMENTS or key == "environment" or key.startswith("environment."):
                raise ConfigError(
                    f"strategies[{label!r}] sets {o!r}, must not: compare sets n_orgs, periods, seed, engine "
                    "and the environment for every arm (pass them as arguments)"
                )
            if key == "strategy" and o.partition("=")[2].strip() not in options:
                raise ConfigError(f"strategies[{label!r}]: {o!r}, the strategy must be one of {allowed}")
        arms.append((label, list(ov)))
    return arms


def _environments(environments) -> list[str]:
    options = _group_options("environment")
    allowed = ", ".join(repr(o) for o in options)
    if environments is None:
        return [e for e in DEFAULT_ENVIRONMENTS if e in options]
    if isinstance(environments, str):
        environments = [environments]
    if not isinstance(environments, Sequence):
        raise TypeError(f"environments == {environments!r}, must be a list of names from {allowed}")
    envs = list(environments)
    if not envs:
        raise ValueError(f"environments == [], must name at least one of {allowed}")
    for e in envs:
        if e not in options:
            raise ConfigError(f"environments == {envs!r}, must be names from {allowed} (conf/environment/)")
    if len(set(envs)) != len(envs):
        raise ValueError(f"environments == {envs!r}, must not repeat a name")
    return envs


def _common_overrides(overrides) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, str | bytes) or not isinstance(overrides, Sequence):
        raise TypeError(
            f'overrides == {overrides!r}, must be a list of strings like "key=value" or an orgsim Config'
        )
    out = list(overrides)
    for o in out:
        if not isinstance(o, str):
            raise TypeError(f"overrides item {o!r}, must be a string like 'policy.theta=0.2'")
        key = _override_key(o)
        if key in _RUN_ARGUMENTS:
            raise ConfigError(f"overrides sets {o!r}: pass {_RUN_ARGUMENTS[key]}= to compare instead")
        if key.split(".")[0] in ("strategy", "environment"):
            what = "strategies" if key.startswith("strategy") else "environments"
            raise ConfigError(f"overrides sets {o!r}: compare chooses it per arm; pass {what}= instead")
    return out


# ----------------------------------------------------------------------------------------------
# building the cells
# ----------------------------------------------------------------------------------------------
def _compose_cells(common, envs, arms, run_ov, *, fast: bool = True) -> dict[tuple[str, str], Config]:
    """Each cell's config, as ``compose([*common, environment=E, *arm, *run_ov])`` gives it.

    Hydra merges the strategy file after the environment and the scenario, and the command
    line's overrides after all files. So when an arm is a strategy file with plain
    ``key=value`` changes, and no common override touches a key that file sets, the cell is
    one composition per environment without the strategy group (``~strategy``), then the
    file's keys, then the arm's changes: the same config for a fifth of Hydra's time (tested
    against the full composition). Any other arm is composed in full.
    """
    bases: dict[str, dict] = {}
    out = {}
    for label, ov in arms:
        plan = _fast_arm(ov, common) if fast else None
        for env in envs:
            if plan is None:
                out[(env, label)] = compose([*common, f"environment={env}", *ov, *run_ov])
                continue
            if env not in bases:
                bases[env] = compose([*common, f"environment={env}", "~strategy", *run_ov]).to_dict()
            try:
                out[(env, label)] = config_from_dict(with_changes(bases[env], plan))
            except ConfigError as exc:
                raise ConfigError(f"strategies[{label!r}] in environment {env!r}: {exc}") from None
    return out


def _fast_arm(ov: Sequence[str], common: Sequence[str]) -> dict[str, Any] | None:
    """The dotted changes that make an arm on top of a composition without the strategy group,
    or None when the arm needs a full composition (see :func:`_compose_cells`)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    strategy, changes = "none", {}
    parser = OverridesParser.create()
    for item in ov:
        try:
            parsed = parser.parse_overrides([item])[0]
        except Exception:
            return None  # let Hydra report it
        key = parsed.key_or_group
        if parsed.is_add() or parsed.is_delete() or parsed.is_sweep_override() or "${" in item:
            return None
        if key == "strategy":
            strategy = parsed.value()
        elif key.split(".")[0] in groups or key.startswith("hydra"):
            return None
        else:
            changes[key] = parsed.value()
    values = _group_values("strategy", strategy)
    if any(isinstance(v, str) and "${" in v for v in values.values()):
        return None
    touched = {_override_key(c) for c in common}
    for key in values:
        if any(key == c or key.startswith(c + ".") or c.startswith(key + ".") for c in touched):
            return None  # a common override of a key the strategy sets wins in Hydra
    return {**values, **changes}


def _config_cells(base: Config, envs, arms, run_changes) -> dict[tuple[str, str], Config]:
    """Cells from a Config: the keys the environment and strategy groups own are reset to the
    schema's defaults and set from the chosen files (then the arm's own changes, then the run's)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    defaults = _flat(Config().to_dict())
    owned = _group_keys("environment") | _group_keys("strategy")
    data = base.to_dict()
    parser = OverridesParser.create()
    out = {}
    for label, ov in arms:
        strategy, changes = None, {}
        for item in ov:
            try:
                parsed = parser.parse_overrides([item])[0]
            except Exception as exc:
                raise ConfigError(f"strategies[{label!r}]: {item!r} is not an override ({exc})") from None
            if parsed.is_add() or parsed.is_delete() or parsed.is_sweep_override():
                raise ConfigError(
                    f"strategies[{label!r}]: {item!r}, must be 'strategy=NAME' or 'key=value' when overrides "
                    "is a Config"
                )
            if parsed.key_or_group == "strategy":
                strategy = parsed.value()
            else:
                changes[parsed.key_or_group] = parsed.value()
        for env in envs:
            cell = {k: defaults[k] for k in owned if k in defaults}
            cell.update(_group_values("environment", env))
            cell.update(_group_values("strategy", strategy or "none"))
            cell.update(changes)
            cell.update(run_changes)
            try:
                out[(env, label)] = config_from_dict(with_changes(data, cell))
            except ConfigError as exc:
                raise ConfigError(f"strategies[{label!r}] in environment {env!r}: {exc}") from None
    return out


def _simulate_cell(cfg: Config, engine: str) -> tuple[dict[str, np.ndarray], float]:
    """One cell's KPI arrays (those of :data:`ARRAY_KPIS`, each [firm, period]) and its wall time."""
    from .simulation import simulate

    start = time.perf_counter()
    res = simulate(cfg, engine=engine, teams=False, progress=False)
    arrays = {k: res.kpi_arrays[_ENGINE_NAMES.get(k, k)] for k in ARRAY_KPIS}
    arrays["solvent"] = arrays["solvent"] != 0.0
    return arrays, time.perf_counter() - start


def _order_arms(labels: Sequence[str], families: Mapping[str, str], given: bool) -> list[str]:
    if given:
        return list(labels)
    return sorted(labels, key=lambda s: (_family_rank(families[s]), s))


def _family_rank(family: str) -> int:
    return FAMILY_ORDER.index(family) if family in FAMILY_ORDER else -1


def compare(
    overrides: Sequence[str] | Config | None = None,
    *,
    strategies: Sequence[str] | Mapping[str, Sequence[str] | None] | None = None,
    environments: Sequence[str] | None = None,
    n_orgs: int = 200,
    periods: int | None = None,
    seed=0,
    engine: str = "numba",
    discount_rate: float = 0.08,
    horizons: Sequence[int] | None = None,
    periods_per_year: float | None = None,
    growth_window: int = 13,
    n_jobs: int = 1,
    progress: bool | None = None,
) -> ComparisonResult:
    """Run the same firms under each strategy in each environment and compare them in pairs.

    Parameters
    ----------
    overrides : list of str or Config, optional
        Common config: Hydra overrides as for :func:`orgsim.compose` (e.g.
        ``["scenario=multinational", "finance.price=11"]``), or a :class:`orgsim.Config`. The
        strategy, environment, ``n_orgs``, ``periods``, ``seed`` and ``engine`` come from the
        other arguments and may not be set here. With a Config, the keys that
        ``conf/environment/`` and ``conf/strategy/`` own are reset to the schema's defaults and
        set from each cell's environment and strategy file; every other value is the Config's.
    strategies : list of str or mapping, optional
        The arms. Names of ``conf/strategy/`` files (default: all of them, ordered by family,
        then name), or a mapping from a label to the overrides that make the arm, e.g.
        ``{"bso": None, "bso_copy": ["strategy=bso", "strategy.name=bso_copy"],
        "bpo_bpm+shared": ["strategy=bpo_bpm", "information=shared"]}`` (``None``: the strategy
        file of that name). At least two. An arm's family is its config's ``strategy.family``.
    environments : list of str, optional
        Names of ``conf/environment/`` files; default ``stable``, ``volatile``, ``disrupted``.
    n_orgs : int
        Firms per arm (at least 2 for an interval). Firm ``i`` is the same firm in every arm.
    periods : int, optional
        Periods to simulate; default the scenario's (260 weeks for ``multinational``).
    seed : int, SeedSequence or Generator
        The root seed, the same in every cell (SPEC 7).
    engine : {"numba", "mesa"}
        Both give the same numbers; ``numba`` is the fast one.
    discount_rate : float
        Annual rate r for the NPV of free cash flow: period t's flow is discounted by
        (1 + r)^(−t / periods_per_year).
    horizons : sequence of int, optional
        Periods at which outcomes are measured; default 2 and 5 years (104 and 260 weeks) where
        they fit, and the run's length.
    periods_per_year : int, optional
        Periods in a year, for the NPV and the default horizons. Default: the scenario's
        ``time_unit`` (52 for weeks), or ``demand.season_period`` where the unit is abstract.
    growth_window : int
        Revenue growth compares revenue over the last ``growth_window`` periods before the
        horizon with the first ``growth_window`` periods of the run (default 13 weeks).
    n_jobs : int
        Worker processes over cells (joblib; -1: all cores). The results do not depend on it;
        useful for the Mesa engine.
    progress : bool, optional
        A progress bar over cells (tqdm); by default on a terminal for long runs.

    Returns
    -------
    ComparisonResult

    Examples
    --------
    >>> from orgsim.comparison import compare
    >>> res = compare(strategies=["bpo", "bso"], environments=["volatile"], n_orgs=4, periods=60)
    >>> res.horizons
    (60,)
    >>> bool((res.arrays["demand"][0, 0] == res.arrays["demand"][0, 1]).all())  # common random numbers
    True
    """
    start = time.perf_counter()
    n_orgs = _check_int("n_orgs", n_orgs, 2, " (a paired interval needs at least 2 firms)")
    if periods is not None:
        periods = _check_int("periods", periods, 1)
    if engine not in ("numba", "mesa"):
        raise ValueError(f"engine == {engine!r}, must be one of 'numba', 'mesa'")
    rate = _check_rate(discount_rate)
    window = _check_window(growth_window)
    if not _is_int(n_jobs) or n_jobs == 0:
        raise ValueError(f"n_jobs == {n_jobs!r}, must be a non-zero integer (-1: all cores)")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress == {progress!r}, must be True, False or None")
    seed = _rng.seed_to_int(seed)
    arms = _arms(strategies)
    envs = _environments(environments)
    if horizons is not None and periods is not None:  # refuse before composing anything
        _check_horizons(horizons, periods, 52)

    run_changes: dict[str, Any] = {"n_orgs": n_orgs, "seed": seed, "engine": engine}
    if periods is not None:
        run_changes["periods"] = periods
    if isinstance(overrides, Config):
        cells = _config_cells(overrides, envs, arms, run_changes)
    else:
        common = _common_overrides(overrides)
        cells = _compose_cells(common, envs, arms, [f"{k}={v}" for k, v in run_changes.items()])
    compose_s = time.perf_counter() - start

    families = {}
    for (env, label), cfg in cells.items():
        if families.setdefault(label, cfg.strategy.family) != cfg.strategy.family:
            raise ConfigError(
                f"strategies[{label!r}] has family {families[label]!r} in one environment and "
                f"{cfg.strategy.family!r} in {env!r}, must have one family"
            )
    labels = _order_arms([label for label, _ in arms], families, given=strategies is not None)
    first = cells[(envs[0], labels[0])]
    for key, cfg in cells.items():
        for field in ("periods", "demand.season_period", "scenario"):
            mine, theirs = _get(cfg, field), _get(first, field)
            if mine != theirs:
                raise ConfigError(
                    f"{field} == {mine!r} in cell {key}, must be the same in every cell ({theirs!r} in "
                    f"{(envs[0], labels[0])}): every arm runs the same firms over the same periods"
                )
    ppy = _check_periods_per_year(periods_per_year, _config_periods_per_year(first))
    hs = _check_horizons(horizons, first.periods, ppy)

    # compile (or load the cached kernels) once, outside the timed cells
    warm = time.perf_counter()
    _simulate_cell(first.replace(n_orgs=1, periods=min(first.periods, 2)), engine)
    warmup_s = time.perf_counter() - warm

    order = [(env, label) for env in envs for label in labels]
    arrays: dict[str, np.ndarray] = {}
    walls: dict[str, float] = {}
    sim_start = time.perf_counter()
    for (env, label), (cell, wall) in zip(
        order, _run_cells([cells[k] for k in order], engine, n_jobs, progress)
    ):
        e, s = envs.index(env), labels.index(label)
        for k, v in cell.items():
            if k not in arrays:
                arrays[k] = np.empty((len(envs), len(labels), *v.shape), dtype=v.dtype)
            arrays[k][e, s] = v
        walls[f"{env}/{label}"] = round(wall, 4)
    simulation_s = time.perf_counter() - sim_start
    timings = {
        "compose_s": compose_s,
        "warmup_s": warmup_s,
        "simulation_s": simulation_s,
        "cell_wall_s": walls,
    }
    result = ComparisonResult(
        arrays,
        environments=envs,
        strategies=labels,
        families=families,
        horizons=hs,
        discount_rate=rate,
        periods_per_year=ppy,
        growth_window=window,
        configs={k: cells[k] for k in order},
        seed=seed,
        engine=engine,
        timings=timings,
    )
    bad = [env for env, ok in result.crn_verified.items() if not ok]
    if bad:
        warnings.warn(
            f"end-customer demand differs between arms in environment(s) {bad}: an arm's overrides change "
            "demand, so the arms do not meet the same demand (firms are still paired by their random numbers)",
            RuntimeWarning,
            stacklevel=2,
        )
    return result


def _get(cfg: Config, dotted: str):
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _run_cells(configs: list[Config], engine: str, n_jobs: int, progress: bool | None):
    """Simulate cells in order (in ``n_jobs`` processes with joblib), with an optional bar."""
    from joblib import Parallel, delayed

    if progress is None:
        work = sum(c.n_orgs * c.periods * c.network.n_teams for c in configs)
        progress = sys.stderr.isatty() and work > (1_000_000 if engine == "mesa" else 20_000_000)
    if n_jobs == 1:
        results = (_simulate_cell(cfg, engine) for cfg in configs)
    else:
        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_simulate_cell)(cfg, engine) for cfg in configs
        )
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(configs), desc=f"cells ({engine})", unit="cell")
    yield from results


# ----------------------------------------------------------------------------------------------
# the results object
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Contrast:
    """A paired contrast: the per-firm mean over ``first``'s arms minus that over ``second``'s."""

    name: str
    kind: str  # "family" or "strategy"
    first: tuple[str, ...]
    second: tuple[str, ...]


def _contrasts(strategies: Sequence[str], families: Mapping[str, str]) -> list[Contrast]:
    """The family contrast (if both families are present) and every pair of strategies, each
    oriented higher family rank first, and within a family the later-listed strategy first."""
    out = []
    cul = tuple(s for s in strategies if families[s] == CULTURE)
    eff = tuple(s for s in strategies if families[s] == EFFICIENCY)
    if cul and eff:
        out.append(Contrast(FAMILY_CONTRAST, "family", cul, eff))
    key = {s: (_family_rank(families[s]), i) for i, s in enumerate(strategies)}
    for a in sorted(strategies, key=lambda s: key[s], reverse=True):
        for b in strategies:
            if key[b] < key[a]:
                out.append(Contrast(f"{a}{MINUS}{b}", "strategy", (a,), (b,)))
    return out


class ComparisonResult:
    """Paired comparison of strategies: raw arrays, per-firm outcomes, effects and crossover.

    Built by :func:`compare` or :func:`from_store`; the constructor takes raw arrays (for
    hand-built data and tests).

    Parameters
    ----------
    arrays : dict of str to numpy.ndarray
        The :data:`ARRAY_KPIS`, each shaped [environment, strategy, firm, period]; firm ``i`` is
        the same firm (the same random numbers) in every strategy of an environment.
    environments, strategies : sequence of str
        Labels of the first two axes.
    families : mapping
        Each strategy's family (``baseline``, ``efficiency_only``, ``culture_aligned``).
    horizons, discount_rate, periods_per_year, growth_window
        As for :func:`compare`.
    configs : mapping, optional
        The Config of each (environment, strategy).
    firms : pandas.DataFrame, optional
        One row per firm position: its ``seed`` and ``org`` (index within its run).
    seed, engine, timings
        Provenance.

    Attributes
    ----------
    arrays : dict
        The raw KPI arrays.
    contrasts : list of Contrast
        The family contrast (culture-aligned − pooled efficiency-only, when both are present)
        and every pair of strategies (``bso − bpo_bpm``).
    crn_verified : dict
        Per environment, whether every firm's end-customer demand is identical in every arm.
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        *,
        environments: Sequence[str],
        strategies: Sequence[str],
        families: Mapping[str, str],
        horizons: Sequence[int] | None = None,
        discount_rate: float = 0.08,
        periods_per_year: float = 52,
        growth_window: int = 13,
        configs: Mapping[tuple[str, str], Config] | None = None,
        firms: pd.DataFrame | None = None,
        seed=None,
        engine: str | None = None,
        timings: Mapping[str, Any] | None = None,
    ):
        self.environments = tuple(environments)
        self.strategies = tuple(strategies)
        missing = [k for k in ARRAY_KPIS if k not in arrays]
        if missing:
            raise ValueError(f"arrays lacks {missing}, must hold every one of {list(ARRAY_KPIS)}")
        shape = np.shape(arrays["free_cash_flow"])
        if len(shape) != 4 or shape[:2] != (len(self.environments), len(self.strategies)):
            raise ValueError(
                f"arrays['free_cash_flow'] has shape {shape}, must be (environments, strategies, firms, "
                f"periods) = ({len(self.environments)}, {len(self.strategies)}, n, T)"
            )
        self.arrays = {k: np.asarray(arrays[k]) for k in ARRAY_KPIS}
        for k, v in self.arrays.items():
            if v.shape != shape:
                raise ValueError(f"arrays[{k!r}] has shape {v.shape}, must be {shape} like free_cash_flow")
        if len(self.strategies) < 2 or len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"strategies == {list(self.strategies)!r}, must be at least 2 distinct labels")
        unknown = [s for s in self.strategies if s not in families]
        if unknown:
            raise ValueError(f"families lacks {unknown}, must give each strategy's family")
        self.families = {s: families[s] for s in self.strategies}
        self.n_firms, self.periods = int(shape[2]), int(shape[3])
        if self.n_firms < 2:
            raise ValueError(f"n_firms == {self.n_firms}, must be >= 2 (a paired interval needs 2 firms)")
        self.periods_per_year = _check_periods_per_year(periods_per_year, 52)
        self.horizons = _check_horizons(horizons, self.periods, self.periods_per_year)
        self.discount_rate = _check_rate(discount_rate)
        self.growth_window = _check_window(growth_window)
        self.configs = dict(configs or {})
        if firms is None:
            firms = pd.DataFrame({"seed": seed, "org": np.arange(self.n_firms)})
        if len(firms) != self.n_firms:
            raise ValueError(f"firms has {len(firms)} rows, must have one per firm ({self.n_firms})")
        self.firms = firms.reset_index(drop=True)
        self.seed = seed
        self.engine = engine
        self.timings = dict(timings or {})
        self.contrasts = _contrasts(self.strategies, self.families)
        self._frames: dict[tuple, pd.DataFrame] = {}
        self._boot: dict[tuple, np.ndarray] = {}

    # -- lookups ----------------------------------------------------------------------------
    def _env(self, environment: str) -> int:
        if environment not in self.environments:
            raise ValueError(f"environment == {environment!r}, must be one of {list(self.environments)}")
        return self.environments.index(environment)

    def _arm(self, arm) -> tuple[int, ...]:
        names = (arm,) if isinstance(arm, str) else tuple(arm)
        if not names:
            raise ValueError("arm == (), must name at least one strategy")
        bad = [s for s in names if s not in self.strategies]
        if bad:
            raise ValueError(
                f"strategy {bad[0]!r} is not in this comparison; strategies: {list(self.strategies)}"
            )
        return tuple(self.strategies.index(s) for s in names)

    def _horizon(self, horizon) -> int:
        if horizon not in self.horizons:
            raise ValueError(f"horizon == {horizon!r}, must be one of {list(self.horizons)}")
        return self.horizons.index(horizon)

    def _contrast(self, name: str | None) -> Contrast:
        if name is None:
            return self.contrasts[0]
        for c in self.contrasts:
            if c.name == name:
                return c
        raise ValueError(f"contrast == {name!r}, must be one of {[c.name for c in self.contrasts]}")

    @cached_property
    def crn_verified(self) -> dict[str, bool]:
        """Per environment: is every firm's end-customer demand identical in every arm?"""
        d = self.arrays["demand"]
        return {env: bool((d[e] == d[e, :1]).all()) for e, env in enumerate(self.environments)}

    # -- per-firm outcomes ------------------------------------------------------------------
    @cached_property
    def _outcome_arrays(self) -> dict[str, np.ndarray]:
        """Each outcome and diagnostic as [environment, strategy, horizon, firm]."""
        factors = _discount_factors(self.periods, self.discount_rate, self.periods_per_year)
        e_n, s_n = len(self.environments), len(self.strategies)
        out = {k: np.empty((e_n, s_n, len(self.horizons), self.n_firms)) for k in (*OUTCOMES, *DIAGNOSTICS)}
        for e in range(e_n):
            for s in range(s_n):
                cell = _cell_outcomes(
                    {k: v[e, s] for k, v in self.arrays.items()}, self.horizons, factors, self.growth_window
                )
                for k, v in cell.items():
                    out[k][e, s] = v
        return out

    def outcomes(self) -> pd.DataFrame:
        """Per-firm outcomes: one row per environment, strategy, firm and horizon.

        Columns ``environment, strategy, family, firm, seed, org, horizon``, then the
        :data:`OUTCOMES` and :data:`DIAGNOSTICS` (definitions in ``docs/comparison.md``).
        """
        if "outcomes" not in self._frames:
            o = self._outcome_arrays
            e_n, s_n, h_n, n = o["cumulative_fcf"].shape
            env = np.repeat(np.arange(e_n), s_n * h_n * n)
            strat = np.tile(np.repeat(np.arange(s_n), h_n * n), e_n)
            firm = np.tile(np.arange(n), e_n * s_n * h_n)
            cols = {
                "environment": pd.Categorical.from_codes(env, list(self.environments)),
                "strategy": pd.Categorical.from_codes(strat, list(self.strategies)),
                "family": np.array([self.families[s] for s in self.strategies])[strat],
                "firm": firm,
                "seed": self.firms["seed"].to_numpy()[firm],
                "org": self.firms["org"].to_numpy()[firm],
                "horizon": np.tile(np.repeat(np.array(self.horizons, dtype=np.int64), n), e_n * s_n),
            }
            cols.update({k: v.reshape(-1) for k, v in o.items()})
            self._frames["outcomes"] = pd.DataFrame(cols)
        return self._frames["outcomes"].copy()

    def values(self, environment: str, arm, outcome: str, horizon: int) -> np.ndarray:
        """Per-firm values of an arm: one strategy's, or the mean over several (a pooled family,
        equal weights) for each firm."""
        if outcome not in self._outcome_arrays:
            raise ValueError(f"outcome == {outcome!r}, must be one of {[*OUTCOMES, *DIAGNOSTICS]}")
        o = self._outcome_arrays[outcome][self._env(environment), :, self._horizon(horizon)]
        return np.mean(np.stack([o[s] for s in self._arm(arm)]), axis=0)

    # -- effects ----------------------------------------------------------------------------
    def contrast(
        self,
        first,
        second,
        *,
        name: str | None = None,
        outcomes: Sequence[str] | None = None,
        horizons: Sequence[int] | None = None,
        environments: Sequence[str] | None = None,
        alpha: float = 0.05,
    ) -> pd.DataFrame:
        """Paired effects of any two arms (each a strategy or a list pooled with equal weight).

        Returns the rows of :meth:`summary_frame` for this contrast: one per environment,
        outcome and horizon. Means get a paired t interval; a proportion (survival) gets
        Newcombe's hybrid score interval (see :data:`orgsim._paired.INTERVALS`).
        """
        alpha = check_alpha(alpha)
        a = (first,) if isinstance(first, str) else tuple(first)
        b = (second,) if isinstance(second, str) else tuple(second)
        self._arm(a)
        self._arm(b)
        name = name or f"{'+'.join(a)}{MINUS}{'+'.join(b)}"
        kind = "family" if name == FAMILY_CONTRAST else "strategy"
        return self._rows(Contrast(name, kind, a, b), outcomes, horizons, environments, alpha)

    def _rows(self, c: Contrast, outcomes, horizons, environments, alpha) -> pd.DataFrame:
        outcomes = list(OUTCOMES) if outcomes is None else list(outcomes)
        horizons = self.horizons if horizons is None else tuple(horizons)
        environments = self.environments if environments is None else tuple(environments)
        rows = []
        for env in environments:
            for o in outcomes:
                spec = OUTCOMES.get(o) or DIAGNOSTICS.get(o)
                for h in horizons:
                    x, y = self.values(env, c.first, o, h), self.values(env, c.second, o, h)
                    if spec is not None and spec.proportion:
                        stats, method = newcombe_difference(x, y, alpha), "newcombe"
                    else:
                        stats, method = paired_difference(x - y, alpha), "paired_t"
                    rows.append(
                        {
                            "environment": env,
                            "contrast": c.name,
                            "kind": c.kind,
                            "outcome": o,
                            "horizon": h,
                            **stats,
                            "interval": method,
                        }
                    )
        return pd.DataFrame(rows)

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Effects: one row per environment × contrast × outcome × horizon.

        Columns: ``environment, contrast, kind, outcome, horizon`` (``kind`` is ``family`` for
        culture-aligned − pooled efficiency-only, ``strategy`` for a pair), then statsmodels'
        ``mean, mean_se, mean_ci_lower, mean_ci_upper``, ``n`` (firms) and ``interval`` (the
        method: ``paired_t`` for means, ``newcombe`` for survival). ``mean_se`` is always the
        standard error of the mean paired difference.
        """
        alpha = check_alpha(alpha)
        key = ("effects", alpha)
        if key not in self._frames:
            parts = [self._rows(c, None, None, None, alpha) for c in self.contrasts]
            frame = pd.concat(parts, ignore_index=True)
            order = {env: i for i, env in enumerate(self.environments)}
            frame = frame.sort_values("environment", key=lambda s: s.map(order), kind="stable")
            self._frames[key] = frame.reset_index(drop=True)
        return self._frames[key].copy()

    # -- crossover --------------------------------------------------------------------------
    def _differences(self, c: Contrast, e: int) -> np.ndarray:
        """Per-firm cumulative free-cash-flow difference of a contrast, [firm, period]."""
        fcf = self.arrays["free_cash_flow"][e]
        a = np.mean(np.stack([fcf[s] for s in self._arm(c.first)]), axis=0)
        b = np.mean(np.stack([fcf[s] for s in self._arm(c.second)]), axis=0)
        return np.cumsum(a - b, axis=1)

    def crossover(
        self, alpha: float = 0.05, *, n_boot: int = 1000, seed=0, contrasts: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The first period from which the mean cumulative-FCF advantage stays positive.

        For each environment and contrast (first arm − second, e.g. ``bso − bpo_bpm`` or the
        family contrast), the mean over firms of the cumulative free-cash-flow difference is a
        series over periods 1..T; the crossover is the first period from which it is positive
        at every later period to the end of the run.

        Parameters
        ----------
        alpha : float
            The interval is the bootstrap percentile interval [alpha/2, 1 − alpha/2].
        n_boot : int
            Bootstrap resamples B (default 1000). Each resamples the firms with replacement
            (the same resamples for every environment and contrast) and finds its crossover.
        seed : int, SeedSequence or Generator
            Seeds the bootstrap's Generator (``numpy.random.default_rng``); an int gives the
            same draws every time.
        contrasts : list of str, optional
            Default: every contrast.

        Returns
        -------
        pandas.DataFrame
            ``environment, contrast, crossover, never, ci_lower, ci_upper, share_never, n,
            n_boot, periods, interval``. ``never`` is True when the mean advantage is not
            positive at the end of the run: there is no crossover within the horizon, and
            ``crossover`` is <NA>. ``share_never`` is the share of resamples without a
            crossover; an interval bound that falls among them is <NA> (no crossover within
            the horizon at that quantile).
        """
        alpha = check_alpha(alpha)
        n_boot = _check_int("n_boot", n_boot, 1)
        chosen = self.contrasts if contrasts is None else [self._contrast(c) for c in contrasts]
        # one set of resamples for every environment and contrast; an int seed gives the same ones
        key = (n_boot, int(seed)) if _is_int(seed) else None
        counts = self._boot.get(key) if key else None
        if counts is None:
            counts = resample_counts(self.n_firms, n_boot, np.random.default_rng(seed))
            if key:
                self._boot[key] = counts
        rows = []
        for e, env in enumerate(self.environments):
            diffs = np.stack([self._differences(c, e) for c in chosen])  # [C, N, T]
            point = first_crossover(diffs.mean(axis=1))
            draws = bootstrap_crossover(diffs, counts)
            for i, c in enumerate(chosen):
                lo, hi = np.quantile(draws[i], [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
                rows.append(
                    {
                        "environment": env,
                        "contrast": c.name,
                        "crossover": _period(point[i]),
                        "never": bool(np.isinf(point[i])),
                        "ci_lower": _period(lo),
                        "ci_upper": _period(hi),
                        "share_never": float(np.isinf(draws[i]).mean()),
                        "n": self.n_firms,
                        "n_boot": n_boot,
                        "periods": self.periods,
                        "interval": "bootstrap_percentile",
                    }
                )
        frame = pd.DataFrame(rows)
        for col in ("crossover", "ci_lower", "ci_upper"):
            frame[col] = frame[col].astype("Int64")
        return frame

    def difference_over_time(self, contrast: str | None = None, alpha: float = 0.05) -> pd.DataFrame:
        """Mean cumulative free-cash-flow difference of a contrast at every period, per
        environment, with a pointwise paired t interval (``DescrStatsW`` per period).

        Columns ``environment, contrast, period, mean, mean_se, mean_ci_lower, mean_ci_upper, n``.
        """
        from statsmodels.stats.weightstats import DescrStatsW

        alpha = check_alpha(alpha)
        c = self._contrast(contrast)
        parts = []
        for e, env in enumerate(self.environments):
            d = self._differences(c, e)
            stats = DescrStatsW(d)  # one variable per period
            lo, hi = stats.tconfint_mean(alpha=alpha)
            parts.append(
                pd.DataFrame(
                    {
                        "environment": env,
                        "contrast": c.name,
                        "period": np.arange(1, self.periods + 1),
                        "mean": stats.mean,
                        "mean_se": stats.std_mean,
                        "mean_ci_lower": lo,
                        "mean_ci_upper": hi,
                        "n": self.n_firms,
                    }
                )
            )
        return pd.concat(parts, ignore_index=True)

    # -- forecasts past the horizon ---------------------------------------------------------
    def forecast(
        self,
        kpi: str | Sequence[str] = "free_cash_flow",
        *,
        steps: int | None = None,
        model=None,
        alpha: float = 0.05,
        train_periods: int | None = None,
        series: str | Sequence[str] | None = None,
        contrasts: str | Sequence[str] | None = None,
        environments: Sequence[str] | None = None,
        seed=0,
        n_jobs: int | None = 1,
        progress: bool | None = None,
    ) -> StrategyForecast:
        """Forecast each strategy's, each family's and each contrast's pooled KPI series past the
        simulated horizon, with prediction intervals (:mod:`orgsim._strategy_forecast`).

        Per environment: each strategy's mean over firms, each family's equal-weight mean of its
        strategies, and each contrast's mean per-firm paired difference (by default the family
        contrast), each fitted by its own copy of ``model`` (default: ETS with an additive trend and
        a season when two fit) on periods 1..``train_periods`` and forecast ``steps`` periods on.

        Parameters
        ----------
        kpi : str or list of str
            A KPI array (``revenue``, ``free_cash_flow``, ``cash``, ...) or ``cumulative_fcf``.
        steps : int, optional
            Periods forecast (default one year).
        model : orgsim.forecasting forecaster, optional
            e.g. ``orgsim.forecasting.ETS(trend="add")``; cloned, never changed.
        alpha : float
            Default level 1 − alpha of the intervals.
        train_periods : int, optional
            Fit on the first periods only (default all); the later simulated periods are then the
            known continuation that ``evaluate()``, ``winner()`` and ``plot()`` compare with.
        series, contrasts, environments, seed, n_jobs, progress
            See :func:`orgsim._strategy_forecast.forecast_comparison`.

        Returns
        -------
        StrategyForecast
            ``summary_frame(alpha)`` (environment × KPI × series × period: ``mean, mean_se,
            mean_ci_lower, mean_ci_upper``), ``winner()``, ``evaluate()``, ``summary()``, ``plot()``.

        Examples
        --------
        >>> from orgsim.comparison import compare
        >>> from orgsim.forecasting import Drift
        >>> res = compare(strategies=["bpo", "bso"], environments=["stable"], n_orgs=4, periods=60)
        >>> fc = res.forecast("cumulative_fcf", steps=20, model=Drift(), train_periods=40)
        >>> sorted(set(fc.summary_frame().kind))
        ['difference', 'family', 'strategy']
        >>> int(fc.winner().period.iloc[0]), fc.known_periods
        (60, 20)
        """
        from ._strategy_forecast import forecast_comparison

        return forecast_comparison(
            self,
            kpi,
            steps=steps,
            model=model,
            alpha=alpha,
            train_periods=train_periods,
            series=series,
            contrasts=contrasts,
            environments=environments,
            seed=seed,
            n_jobs=n_jobs,
            progress=progress,
        )

    # -- subsets ----------------------------------------------------------------------------
    def select(
        self,
        strategies: Sequence[str] | None = None,
        environments: Sequence[str] | None = None,
        firms: Sequence[int] | np.ndarray | None = None,
    ) -> ComparisonResult:
        """A comparison of a subset of strategies, environments or firm positions (the family
        contrast is formed again from the strategies kept)."""
        s_idx = list(range(len(self.strategies))) if strategies is None else list(self._arm(strategies))
        e_idx = (
            list(range(len(self.environments)))
            if environments is None
            else [self._env(e) for e in ([environments] if isinstance(environments, str) else environments)]
        )
        f_idx = np.arange(self.n_firms) if firms is None else np.asarray(firms, dtype=np.int64)
        if f_idx.ndim != 1 or (f_idx.size and (f_idx.min() < 0 or f_idx.max() >= self.n_firms)):
            raise ValueError(f"firms must be positions in 0..{self.n_firms - 1}")
        arrays = {k: v[np.ix_(e_idx, s_idx, f_idx)] for k, v in self.arrays.items()}
        strategies_ = [self.strategies[i] for i in s_idx]
        envs_ = [self.environments[i] for i in e_idx]
        return ComparisonResult(
            arrays,
            environments=envs_,
            strategies=strategies_,
            families=self.families,
            horizons=self.horizons,
            discount_rate=self.discount_rate,
            periods_per_year=self.periods_per_year,
            growth_window=self.growth_window,
            configs={k: v for k, v in self.configs.items() if k[0] in envs_ and k[1] in strategies_},
            firms=self.firms.iloc[f_idx],
            seed=self.seed,
            engine=self.engine,
            timings=self.timings,
        )

    # -- reports ----------------------------------------------------------------------------
    def summary(self, alpha: float = 0.05):
        """A statsmodels ``Summary`` (text with ``str()``/``as_text()``, HTML in JupyterLab):
        the run, the effects of the family contrast (or of every pair when one family is absent)
        and the crossover of each contrast whose first arm is culture-aligned."""
        from statsmodels.iolib.summary2 import Summary

        alpha = check_alpha(alpha)
        level = f"{100 * (1 - alpha):g}%"
        s = Summary()
        s.add_title("Strategy comparison on common random numbers")
        crn = ", ".join(f"{e}: {'yes' if ok else 'NO'}" for e, ok in self.crn_verified.items())
        seeds = sorted(set(self.firms["seed"].dropna().astype(int))) if "seed" in self.firms else []
        info = {
            "Strategies:": ", ".join(f"{x} ({self.families[x]})" for x in self.strategies),
            "Environments:": ", ".join(self.environments),
            "Firms per arm:": f"{self.n_firms} (paired across arms)",
            "Periods:": f"{self.periods} ({self.periods_per_year} a year)",
            "Horizons:": ", ".join(str(h) for h in self.horizons),
            "Seed(s):": ", ".join(map(str, seeds)) or str(self.seed),
            "Engine:": str(self.engine),
            "Discount rate:": f"{self.discount_rate:g} a year",
            "Same demand in every arm:": crn,
        }
        s.add_dict(info, ncols=1)
        eff = self.summary_frame(alpha)
        family = bool((eff.kind == "family").any())
        headline = eff[eff.kind == "family"] if family else eff
        s.add_df(
            pd.DataFrame(
                {
                    "environment": headline.environment,
                    "effect of": headline.contrast,
                    "outcome": headline.outcome,
                    "horizon": headline.horizon.astype(str),
                    "mean": [_fmt(o, m) for o, m in zip(headline.outcome, headline["mean"])],
                    f"{level} interval": [
                        f"[{_fmt(o, lo)}, {_fmt(o, hi)}]"
                        for o, lo, hi in zip(headline.outcome, headline.mean_ci_lower, headline.mean_ci_upper)
                    ],
                    "n": headline.n.astype(str),
                    "interval": headline.interval,
                }
            ),
            index=False,
        )
        culture_first = [c.name for c in self.contrasts if all(self.families[x] == CULTURE for x in c.first)]
        cross = self.crossover(alpha, contrasts=culture_first or [c.name for c in self.contrasts])
        s.add_df(
            pd.DataFrame(
                {
                    "environment": cross.environment,
                    "crossover of": cross.contrast,
                    "first period": [_fmt_period(x, never) for x, never in zip(cross.crossover, cross.never)],
                    f"{level} interval": [
                        f"[{_fmt_period(lo)}, {_fmt_period(hi)}]"
                        for lo, hi in zip(cross.ci_lower, cross.ci_upper)
                    ],
                    "share of draws never": [f"{x:.3f}" for x in cross.share_never],
                }
            ),
            index=False,
        )
        s.add_text(
            f"Effects: {'the family contrast (every pair: summary_frame)' if family else 'every pair'}; the mean "
            "per-firm paired difference at each horizon (periods), with a paired t interval for means and "
            "Newcombe's hybrid score interval for survival (it treats the arms as independent samples)."
        )
        s.add_text(
            "Crossover: the first period from which the mean cumulative-FCF advantage of the first arm stays "
            f"positive to period {self.periods} ('never': not positive at the end); bootstrap percentile "
            f"interval, firms resampled with replacement (B = {int(cross.n_boot.iloc[0])})."
        )
        return s

    def __repr__(self) -> str:
        return (
            f"<ComparisonResult strategies={list(self.strategies)} environments={list(self.environments)} "
            f"firms={self.n_firms} periods={self.periods} horizons={list(self.horizons)}>"
        )

    # -- figures ----------------------------------------------------------------------------
    def plot_difference(self, contrast: str | None = None, alpha: float = 0.05, ax=None):
        """The mean cumulative free-cash-flow difference of a contrast over time, one line per
        environment, with its pointwise paired t band (1 − alpha). Returns the Axes."""
        ax = _axes(ax, (7.0, 4.0))
        frame = self.difference_over_time(contrast, alpha)
        name = frame.contrast.iloc[0]
        for env, part in frame.groupby("environment", sort=False):
            (line,) = ax.plot(part.period, part["mean"], linewidth=1.5, label=str(env))
            ax.fill_between(
                part.period,
                part.mean_ci_lower,
                part.mean_ci_upper,
                color=line.get_color(),
                alpha=0.2,
                linewidth=0,
            )
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xlabel(f"period ({_time_unit(self.configs)})")
        ax.set_ylabel("Δ cumulative free cash flow (MU)")
        ax.set_title(
            f"{name}: mean paired difference\n{100 * (1 - alpha):g}% pointwise paired t band, "
            f"{self.n_firms} firms per arm",
            fontsize=10,
        )
        ax.legend(title="environment", fontsize=8)
        ax.grid(alpha=0.3)
        return ax

    def plot_effects(
        self, outcome: str = "cumulative_fcf", horizon: int | None = None, alpha: float = 0.05, ax=None
    ):
        """A forest plot of every contrast's effect on ``outcome`` at ``horizon`` (default the
        last), with its 1 − alpha interval, one colour per environment. Returns the Axes."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome == {outcome!r}, must be one of {list(OUTCOMES)}")
        horizon = self.horizons[-1] if horizon is None else horizon
        self._horizon(horizon)
        frame = self.summary_frame(alpha)
        frame = frame[(frame.outcome == outcome) & (frame.horizon == horizon)]
        names = [c.name for c in self.contrasts]
        ax = _axes(ax, (7.0, 1.4 + 0.4 * len(names)))
        k = len(self.environments)
        for j, env in enumerate(self.environments):
            part = frame[frame.environment == env].set_index("contrast").loc[names]
            y = np.arange(len(names)) + (j - (k - 1) / 2) * 0.8 / max(k, 1)
            err = np.vstack([part["mean"] - part.mean_ci_lower, part.mean_ci_upper - part["mean"]])
            ax.errorbar(part["mean"], y, xerr=err, fmt="o", markersize=4, capsize=2, label=env)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(np.arange(len(names)), names)
        ax.invert_yaxis()
        spec = OUTCOMES[outcome]
        ax.set_xlabel(f"Δ {spec.label} at period {horizon} ({spec.unit})")
        ax.set_title(f"Paired effects with {100 * (1 - alpha):g}% intervals ({self.n_firms} firms per arm)")
        ax.legend(title="environment", fontsize=8)
        ax.grid(alpha=0.3, axis="x")
        return ax

    def plot(self, contrast: str | None = None, outcome: str = "cumulative_fcf", alpha: float = 0.05):
        """Both figures side by side; returns the matplotlib Figure (save with ``savefig``)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(14.0, 4.8), layout="constrained")
        left, right = fig.subplots(1, 2)
        self.plot_difference(contrast, alpha, ax=left)
        self.plot_effects(outcome, None, alpha, ax=right)
        return fig


def _axes(ax, size):
    """``ax``, or the Axes of a new Figure (no pyplot state, so it renders headless with Agg)."""
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained").subplots()


def _period(x) -> Any:
    return pd.NA if not np.isfinite(x) else int(x)


def _fmt_period(x, never: bool = False) -> str:
    return "never" if never or x is pd.NA or pd.isna(x) else str(int(x))


def _fmt(outcome: str, x: float) -> str:
    spec = OUTCOMES.get(outcome)
    if x is None or not np.isfinite(x):
        return "nan"
    if spec is not None and spec.unit == "MU":
        return f"{x:,.0f}"
    return f"{x:.4f}"


# ----------------------------------------------------------------------------------------------
# from a results store
# ----------------------------------------------------------------------------------------------
#: per-run columns that may differ between the runs of one comparison
_VARYING = {"run_id", "kpis_file", "seed", "environment", "strategy", "family", "engine"}


def _fail(msg: str):
    raise ValueError(f"runs are not paired: {msg}")


def _store_configs(path) -> dict[str, dict]:
    """Each run's config from its ``meta.json``, by run directory (empty if the store has none)."""
    from . import results

    try:
        runs = results.load(path, table="runs")
    except ValueError:  # no meta.json: pairing is checked on the kpis columns only
        return {}
    out = {}
    for f in runs.get("meta_file", []):
        try:
            meta = json.loads(Path(f).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(meta, dict) and isinstance(meta.get("config"), dict):
            out[str(Path(f).parent)] = meta["config"]
    return out


def _store_runs(df: pd.DataFrame, run_key: str) -> pd.DataFrame:
    """One row per run: its descriptors, other constant columns, firms, periods and rows."""
    from .simulation import KPI_COLUMNS, KPI_EXTRA

    known = {"org", "period", *ARRAY_KPIS, *KPI_COLUMNS, *KPI_EXTRA}
    descriptors = ["strategy", "family", "environment", "seed", *(c for c in ("run_id", "engine") if c in df)]
    others = [c for c in df.columns if c not in known and c not in _VARYING and c != run_key]
    grouped = df.groupby(run_key, sort=True, dropna=False, observed=True)
    nunique = grouped[[*descriptors, *others]].nunique(dropna=False)
    for col in nunique.columns:
        several = nunique.index[nunique[col] > 1]
        if len(several):
            _fail(f"column {col!r} takes several values within run {several[0]!r}; each run must have one")
    info = grouped[[*descriptors, *others]].first()
    info["_orgs"] = grouped["org"].agg(lambda x: tuple(sorted(x.unique())))
    info["_period_set"] = grouped["period"].agg(lambda x: tuple(sorted(x.unique())))
    info["_n_orgs"] = info["_orgs"].map(len)
    info["_periods"] = info["_period_set"].map(len)
    info["_rows"] = grouped.size()
    if run_key == "kpis_file":  # a sweep names each run's directory after its overrides
        info["_name"] = [Path(str(f)).parent.name for f in info.index]
    else:
        info["_name"] = info.index.astype(str)
    info.attrs["others"] = others
    return info


def _check_pairing(info: pd.DataFrame) -> tuple[list, list, list]:
    """Raise ValueError unless the runs form complete, paired cells; return the environments,
    strategies and seeds in order."""
    names = info["_name"]
    for col in info.attrs["others"]:
        values = info[col].astype(object).where(info[col].notna(), None)
        distinct = list(dict.fromkeys(values))
        if len(distinct) > 1:
            examples = "; ".join(
                f"{v!r} in run(s) {', '.join(names[values == v].head(3))}" for v in distinct[:3]
            )
            _fail(
                f"column {col!r} differs between runs ({examples}); the runs of one comparison may differ "
                f"only in strategy, seed and environment (filter the kpis table first, e.g. on {col!r})"
            )
    for strategy, fams in info.groupby("strategy", observed=True)["family"].unique().items():
        if len(fams) > 1:
            _fail(f"strategy {strategy!r} has families {sorted(fams)} in different runs, must have one")
    cells = info.groupby(["environment", "seed", "strategy"], observed=True)["_name"].agg(list)
    dup = cells[cells.map(len) > 1]
    if len(dup):
        (env, seed, strategy), runs = dup.index[0], dup.iloc[0]
        _fail(
            f"{len(runs)} runs of strategy {strategy!r} in environment {env!r} with seed {seed} "
            f"({', '.join(runs)}); each cell must have one run (remove the duplicate or filter the table)"
        )
    family = info.groupby("strategy", observed=True)["family"].first()
    strategies = sorted(family.index, key=lambda s: (_family_rank(family[s]), s))
    if len(strategies) < 2:
        raise ValueError(f"the store holds strategies {strategies}, must hold at least 2 to compare")
    envs = sorted(
        info.environment.unique(),
        key=lambda e: (
            DEFAULT_ENVIRONMENTS.index(e) if e in DEFAULT_ENVIRONMENTS else len(DEFAULT_ENVIRONMENTS),
            e,
        ),
    )
    seeds = sorted(info.seed.unique())
    for env in envs:
        for seed in seeds:
            here = info[(info.environment == env) & (info.seed == seed)]
            if not len(here):
                have = sorted(info.seed[info.environment == env])
                _fail(
                    f"environment {env!r} has no runs with seed {seed} (it has seeds {have}); every "
                    "environment needs runs of the same seeds"
                )
            missing = [s for s in strategies if s not in set(here.strategy)]
            if missing:
                _fail(
                    f"strategy {missing[0]!r} is missing for environment {env!r}, seed {seed} (that cell has "
                    f"{sorted(here.strategy)}); every strategy needs a run per environment and seed"
                )
            orgs = dict(zip(here.strategy, here["_orgs"]))
            if len(set(orgs.values())) > 1:
                counts = {s: len(o) for s, o in orgs.items()}
                _fail(
                    f"the firms (n_orgs) differ between the arms of environment {env!r}, seed {seed}: {counts}"
                )
    for seed in seeds:
        orgs = set(info["_orgs"][info.seed == seed])
        if len(orgs) > 1:
            _fail(f"the firms (n_orgs) of seed {seed} differ between environments: {sorted(map(len, orgs))}")
    periods = info["_period_set"].unique()
    if len(periods) > 1:
        _fail(f"periods differ between runs ({sorted(map(len, periods))}); every run needs the same periods")
    incomplete = info[info["_rows"] != info["_n_orgs"] * info["_periods"]]
    if len(incomplete):
        r = incomplete.iloc[0]
        _fail(
            f"run {r['_name']!r} has {r['_rows']} rows, must have one per firm and period "
            f"({r['_n_orgs']} × {r['_periods']}): a duplicated or partial run"
        )
    return envs, strategies, seeds


def _check_configs(info: pd.DataFrame, configs: Mapping[Any, dict]) -> None:
    """Within each environment and seed, the arms' configs must agree on every key that the
    strategy files do not set (and the seed, engine and output options)."""
    owned = _group_keys("strategy") | {"seed", "engine"}
    for (env, seed), here in info.groupby(["environment", "seed"], observed=True):
        flat = {
            row.strategy: {
                k: v
                for k, v in _flat(configs[run]).items()
                if k not in owned and not k.startswith(("strategy.", "output."))
            }
            for run, row in here.iterrows()
            if run in configs
        }
        if len(flat) < 2:
            continue
        (s0, c0), *rest = flat.items()
        for s1, c1 in rest:
            diff = sorted(k for k in set(c0) | set(c1) if c0.get(k) != c1.get(k))
            if diff:
                k = diff[0]
                _fail(
                    f"in environment {env!r}, seed {seed}, the runs of {s0!r} and {s1!r} differ in {k!r} "
                    f"({c0.get(k)!r} vs {c1.get(k)!r}), which their strategy files do not set"
                )


def from_store(
    path,
    *,
    discount_rate: float = 0.08,
    horizons: Sequence[int] | None = None,
    periods_per_year: float | None = None,
    growth_window: int = 13,
) -> ComparisonResult:
    """A :class:`ComparisonResult` from a sweep's results store, pairing runs by seed and firm.

    Parameters
    ----------
    path : str, path-like or pandas.DataFrame
        A run or sweep directory (read with ``orgsim.results.load(path, table="kpis")``), or
        such a kpis table already loaded (e.g. filtered to some seeds).
    discount_rate, horizons, periods_per_year, growth_window
        As for :func:`compare`. ``periods_per_year`` defaults to what the runs' configs (in their
        ``meta.json``) give, as for :func:`compare`, else 52.

    Returns
    -------
    ComparisonResult
        Its firms are every seed's firms, paired across strategies by (seed, org).

    Raises
    ------
    ValueError
        Unless every (environment, seed) holds exactly one run of each strategy with the same
        firms, and every run the same periods; the runs may differ only in strategy, seed,
        environment and engine (any other column, such as the scenario or an override, must
        be the same in every run, and where the runs' ``meta.json`` is available their configs
        must agree on every key their strategy files do not set). The message names the runs
        and what differs.
    """
    configs_by_dir: dict[str, dict] = {}
    if isinstance(path, pd.DataFrame):
        df = path
    else:
        from . import results

        df = results.load(path, table="kpis")
        configs_by_dir = _store_configs(path)
    need = ["org", "period", "strategy", "family", "seed", "environment", *ARRAY_KPIS]
    lacking = [c for c in need if c not in df.columns]
    if lacking:
        raise ValueError(
            f"the kpis table lacks column(s) {lacking}, must have {need} (as the orgsim command line writes them)"
        )
    if df.empty:
        raise ValueError("the kpis table has no rows, must hold at least one run of two strategies")
    run_key = next((c for c in ("kpis_file", "run_id") if c in df.columns), None)
    if run_key is None:  # a hand-made table: a run is a (environment, seed, strategy) cell
        df = df.assign(
            _run=df.environment.astype(str) + "/" + df.seed.astype(str) + "/" + df.strategy.astype(str)
        )
        run_key = "_run"
    info = _store_runs(df, run_key)
    envs, strategies, seeds = _check_pairing(info)
    run_configs = {}
    if configs_by_dir and run_key == "kpis_file":
        run_configs = {
            run: configs_by_dir[str(Path(str(run)).parent)]
            for run in info.index
            if str(Path(str(run)).parent) in configs_by_dir
        }
        _check_configs(info, run_configs)

    cell_run = {(r.environment, r.strategy, r.seed): run for run, r in info.iterrows()}
    orgs = {seed: info["_orgs"][info.seed == seed].iloc[0] for seed in seeds}
    firms = pd.DataFrame([(seed, org) for seed in seeds for org in orgs[seed]], columns=["seed", "org"])
    n, t = len(firms), int(info["_periods"].iloc[0])
    ordered = df.sort_values([run_key, "org", "period"], kind="stable")
    positions = ordered.groupby(run_key, sort=False, dropna=False, observed=True).indices
    arrays = {}
    for name in ARRAY_KPIS:
        dtype = bool if name == "solvent" else float
        column = ordered[name].to_numpy(dtype=dtype)
        out = np.empty((len(envs), len(strategies), n, t), dtype=dtype)
        for e, env in enumerate(envs):
            for s, strategy in enumerate(strategies):
                offset = 0
                for seed in seeds:
                    k = len(orgs[seed])
                    out[e, s, offset : offset + k] = column[
                        positions[cell_run[(env, strategy, seed)]]
                    ].reshape(k, t)
                    offset += k
        arrays[name] = out
    configs = {}
    for (env, strategy, seed), run in cell_run.items():
        if seed == seeds[0] and run in run_configs:
            configs[(str(env), str(strategy))] = config_from_dict(run_configs[run])
    per_year = {_config_periods_per_year(c) for c in configs.values()}
    ppy = _check_periods_per_year(periods_per_year, per_year.pop() if len(per_year) == 1 else 52)
    family = info.groupby("strategy", observed=True)["family"].first()
    engines = sorted(info.engine.astype(str).unique()) if "engine" in info else []
    return ComparisonResult(
        arrays,
        environments=[str(e) for e in envs],
        strategies=[str(s) for s in strategies],
        families={str(s): str(family[s]) for s in strategies},
        horizons=horizons,
        discount_rate=discount_rate,
        periods_per_year=ppy,
        growth_window=growth_window,
        configs=configs,
        firms=firms,
        seed=[int(s) for s in seeds],
        engine=", ".join(engines) or None,
    )
