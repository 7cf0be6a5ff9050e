"""Global sensitivity analysis of orgsim's outcomes: Morris screening and Sobol' indices (SALib).

:func:`morris` screens which parameters move an outcome (elementary effects, Morris 1991, with
μ* of Campolongo et al. 2007); :func:`sobol` splits the outcome's variance into first-order (S1)
and total (ST) Sobol' indices (Saltelli et al. 2010 estimators). Both come from SALib 1.6; what
orgsim adds is the model side and the noise.

**Outcome.** A per-firm outcome of one strategy (``strategy="bso"``: e.g. its cumulative free
cash flow at period 260), or the paired difference of two arms on common random numbers
(``contrast="family"``, the default: culture-aligned minus the pooled efficiency-only
strategies, as :func:`orgsim.compare` defines it). Each design point runs under every arm with
the same firm streams, and the per-firm difference is the response. Or any Python function of
the parameters (``model=``), which the tests use for functions with known indices.

**Seed-aware design.** orgsim is stochastic: at fixed parameters, firms differ. Each design
point is run with ``replicates`` = R firms on independent random streams; the within-point
spread estimates the model's own (replicate) variance σ², and the replicate mean is the model
output given to SALib. The indices therefore describe how the parameters drive the *expected*
outcome of a firm (estimated by an average over R firms), not one firm's draw. The replicate
noise left in the mean, σ²/R, is reported beside the indices (:class:`NoiseReport`) with the
bias it causes: it leaves the Morris mean effect μ unbiased but lifts μ* and σ above zero for
a parameter without effect (the noise floor in :meth:`MorrisResult.summary_frame`), and it
deflates S1 and inflates ST by the share of noise in the output's variance (corrected estimates
in :meth:`SobolResult.summary_frame`, column ``adjusted``). ``docs/sensitivity.md`` has the
derivations and their check on the Ishigami function plus noise.

**Runs.** A design of P points × R replicates is one ``params`` table (one row per firm) and
one :func:`orgsim.simulate` call per arm on the numba engine: 1 call for a strategy's outcome,
4 for the family difference of the default strategies.

Examples
--------
>>> from orgsim.sensitivity import morris
>>> res = morris({"management.execution_noise": [0.0, 0.3], "culture.p3": [0.0, 0.01]},
...              strategy="bso", overrides=["periods=30"], trajectories=2, replicates=2, seed=1)
>>> list(res.summary_frame().parameter)
['management.execution_noise', 'culture.p3']
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import numbers
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from . import _rng
from ._paired import DIAGNOSTICS, OUTCOMES, check_alpha
from .config import Config, ConfigError, config_dir, config_from_dict, with_changes

__all__ = [
    "METHODS",
    "MorrisResult",
    "NoiseReport",
    "Parameter",
    "SobolResult",
    "check_parameters",
    "load_settings",
    "main",
    "morris",
    "run_configured",
    "sobol",
]

#: the analyses, by the name a ``conf/sensitivity/*.yaml`` gives in ``method``
METHODS = ("morris", "sobol")
#: tags mixed into the seed for the streams of the design and SALib's bootstrap, so that they
#: never coincide with a firm's stream (firm i's is the seed's i-th spawned child)
_DESIGN_TAG, _BOOT_TAG, _FUNCTION_TAG = 0x5E57, 0xB007, 0xF00C
_PROG = "orgsim-sensitivity"


# ----------------------------------------------------------------------------------------------
# parameters
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Parameter:
    """A parameter the analysis varies: a dotted config key (or an input of a function) with
    its bounds. The design samples it uniformly on [low, high]; an integer parameter is
    rounded to the nearest whole number, ⌊x + ½⌋."""

    name: str
    low: float
    high: float
    integer: bool = False
    base: float | None = None  #: its value in the base config (None for a function's input)


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_)


def _leaves(spec, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted name, bounds) of a mapping that may nest sections (``{"demand": {"cv": [..]}}``,
    as Hydra writes ``+sensitivity.parameters.demand.cv=[..]``)."""
    out = []
    for key, value in spec.items():
        if not isinstance(key, str) or not key.strip():
            raise TypeError(f"parameters key {key!r}, must be a dotted config key such as 'demand.cv'")
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if not value:
                raise ValueError(f"parameters[{name!r}] == {{}}, must be [low, high]")
            out += _leaves(value, name + ".")
        else:
            out.append((name, value))
    return out


def _check_bounds(name: str, bounds) -> tuple[float, float]:
    if isinstance(bounds, str | bytes) or not isinstance(bounds, Sequence | np.ndarray) or len(bounds) != 2:
        raise TypeError(f"parameters[{name!r}] == {bounds!r}, must be [low, high] (two numbers)")
    lo, hi = bounds[0], bounds[1]
    for v in (lo, hi):
        if not _is_real(v):
            raise TypeError(f"parameters[{name!r}] == {list(bounds)!r}, must be [low, high] (two numbers)")
        if not math.isfinite(float(v)):
            raise ValueError(f"parameters[{name!r}] == {list(bounds)!r}, must be finite numbers")
    if not lo < hi:
        raise ValueError(f"parameters[{name!r}] == {list(bounds)!r}, must be [low, high] with low < high")
    return float(lo), float(hi)


def _parameter_items(parameters) -> list[tuple[str, Any]]:
    if isinstance(parameters, Mapping):
        items = _leaves(parameters)
    elif isinstance(parameters, Sequence) and not isinstance(parameters, str | bytes):
        items = []
        for p in parameters:
            if not isinstance(p, Parameter):
                raise TypeError(
                    f"parameters item {p!r}, must be a Parameter; or pass a mapping such as "
                    "{'demand.cv': [0.05, 0.3]}"
                )
            items.append((p.name, (p.low, p.high)))
    else:
        raise TypeError(
            f"parameters == {parameters!r}, must be a mapping of parameter names to [low, high], "
            "e.g. {'demand.cv': [0.05, 0.3], 'culture.p3': [0.0, 0.01]}"
        )
    if not items:
        raise ValueError("parameters == {}, must name at least one parameter with its [low, high]")
    names = [n for n, _ in items]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"parameters[{repeated[0]!r}] is given twice, must be given once")
    return items


def _flat(data: Mapping, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in data.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _field_kind(name: str) -> tuple[str, bool]:
    """(kind, integer) of a dotted Config field: kind ``"number"`` or something else (a choice,
    a flag, a name). From the field's declaration (``orgsim.config.parameters()``) where the
    config declares its fields, else from the field's annotation."""
    try:
        from .config import parameters as declarations
    except ImportError:
        declarations = None
    if declarations is not None:
        p = declarations().get(name)
        if p is not None:
            return str(p.kind), bool(p.integer)
    cls: Any = Config
    parts = name.split(".")
    for part in parts[:-1]:
        cls = cls.__dataclass_fields__[part].default_factory
    kind = str(cls.__dataclass_fields__[parts[-1]].type)
    return ("number" if kind in ("int", "float", "Any") else kind), kind == "int"


def check_parameters(
    parameters, configs: Mapping[str, Config] | Config | None = None
) -> tuple[Parameter, ...]:
    """Validate the parameters of an analysis and return them as :class:`Parameter` objects.

    Parameters
    ----------
    parameters : mapping or sequence of Parameter
        ``{name: [low, high]}``; names may nest (``{"demand": {"cv": [0.05, 0.3]}}``).
    configs : Config or mapping of str to Config, optional
        The base config of each arm. With configs, every name must be a numeric config key that
        may vary per firm and both bounds must lie in its allowed range (checked with the
        config's own validation on every arm); without, the names are a function's inputs.

    Returns
    -------
    tuple of Parameter

    Raises
    ------
    orgsim.ConfigError
        A name that is not a config key, a key that cannot vary per firm (run options and labels,
        ``orgsim.simulation.NOT_PER_FIRM``), a structural key (``orgsim.schema.STRUCTURAL``), a
        non-numeric key (a switch, a choice, a per-stage list), or bounds outside the key's
        allowed range; each message names the parameter.
    TypeError, ValueError
        Bounds that are not two finite numbers with low < high.
    """
    items = _parameter_items(parameters)
    if configs is None:
        return tuple(Parameter(name, *_check_bounds(name, b)) for name, b in items)
    if isinstance(configs, Config):
        configs = {"base": configs}
    from .schema import STRUCTURAL
    from .simulation import NOT_PER_FIRM

    dicts = {label: cfg.to_dict() for label, cfg in configs.items()}
    flats = {label: _flat(d) for label, d in dicts.items()}
    flat = next(iter(flats.values()))
    out = []
    for name, bounds in items:
        where = f"parameters[{name!r}]"
        if name not in flat:
            inside = sorted(k for k in flat if k.startswith(name + "."))
            if inside:
                raise ConfigError(
                    f"{where} is a config section, must be one of its numeric keys, e.g. {inside[0]!r}"
                )
            close = difflib.get_close_matches(name, list(flat), n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else " (see `orgsim --cfg job`)"
            raise ConfigError(f"{where} is not a config key{hint}")
        for banned, why in NOT_PER_FIRM.items():
            if name == banned or name.startswith(banned + "."):
                raise ConfigError(
                    f"{where} cannot be a sensitivity parameter: it cannot vary per firm ({why})"
                )
        if name in STRUCTURAL or any(name.startswith(s + ".") for s in STRUCTURAL):
            raise ConfigError(
                f"{where} is structural (orgsim.schema.STRUCTURAL: it fixes the population's array shapes, "
                "so every firm of one run shares it), must not be a sensitivity parameter; run one analysis "
                "per value instead"
            )
        value, (kind, integer) = flat[name], _field_kind(name)
        if isinstance(value, bool) or kind in ("bool", "flag"):
            raise ConfigError(
                f"{where} is not numeric (a switch, now {value!r}), must be a numeric config key"
            )
        if isinstance(value, str) or kind != "number":
            raise ConfigError(
                f"{where} is not numeric (a choice, now {value!r}), must be a numeric config key"
            )
        if isinstance(value, list):
            raise ConfigError(
                f"{where} is a per-stage list in this config ({value!r}), must be one number for every "
                "stage to be varied (set the stages to one value first)"
            )
        lo, hi = _check_bounds(name, bounds)
        if integer and not (lo.is_integer() and hi.is_integer()):
            raise ValueError(f"{where} == {[lo, hi]!r}, must be whole numbers: {name} is an integer")
        for data in dicts.values():
            for v in (lo, hi):
                try:
                    config_from_dict(with_changes(data, {name: int(v) if integer else v}))
                except ConfigError as exc:
                    raise ConfigError(
                        f"{where} == {[lo, hi]!r} lies outside the allowed range: {exc}"
                    ) from None
        values = {label: f.get(name) for label, f in flats.items()}
        if len({json.dumps(v) for v in values.values()}) > 1:
            warnings.warn(
                f"{where}: the arms differ in {name} ({', '.join(f'{k}: {v!r}' for k, v in values.items())}); "
                "the analysis sets it to the same value in every arm, which removes that difference",
                UserWarning,
                stacklevel=3,
            )
        base = values[next(iter(values))]
        out.append(Parameter(name, lo, hi, integer, None if base is None else float(base)))
    return tuple(out)


def _run_values(parameters: Sequence[Parameter], X: np.ndarray) -> pd.DataFrame:
    """The design's values as run: integer parameters rounded to ⌊x + ½⌋ within their bounds."""
    cols = {}
    for j, p in enumerate(parameters):
        x = X[:, j]
        if p.integer:
            cols[p.name] = np.clip(np.floor(x + 0.5), p.low, p.high).astype(np.int64)
        else:
            cols[p.name] = x.astype(float)
    return pd.DataFrame(cols)


# ----------------------------------------------------------------------------------------------
# the model side: arms, outcome, evaluation
# ----------------------------------------------------------------------------------------------
_NOT_OVERRIDES = {
    "strategy": "the arms come from contrast= or strategy=",
    "n_orgs": "the design sets it (design points × replicates)",
    "seed": "pass seed= (the analysis derives the firms' streams from it)",
    "engine": "pass engine=",
}


def _check_overrides(overrides) -> list[str]:
    from .comparison import _override_key

    if overrides is None:
        return []
    if isinstance(overrides, str | bytes) or not isinstance(overrides, Sequence):
        raise TypeError(f'overrides == {overrides!r}, must be a list of strings like "environment=volatile"')
    out = list(overrides)
    for item in out:
        if not isinstance(item, str):
            raise TypeError(f"overrides item {item!r}, must be a string like 'environment=volatile'")
        key = _override_key(item)
        for banned, why in _NOT_OVERRIDES.items():
            if key == banned or key.startswith(banned + "."):
                raise ConfigError(f"overrides sets {item!r}, must not: {why}")
    return out


def _strategy_options() -> dict[str, str]:
    """Each ``conf/strategy/`` option and its family."""
    from .comparison import _group_options, _group_values

    return {
        s: _group_values("strategy", s).get("strategy.family", "baseline") for s in _group_options("strategy")
    }


def _arm_names(value, what: str, options: Mapping[str, str]) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else value
    allowed = ", ".join(map(repr, options))
    if isinstance(names, str | bytes) or not isinstance(names, Sequence) or not names:
        raise TypeError(f"{what} == {value!r}, must be a strategy name or a list of them ({allowed})")
    for s in names:
        if s not in options:
            raise ConfigError(f"{what} == {value!r}, must name strategies from {allowed} (conf/strategy/)")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} == {value!r}, must not repeat a strategy")
    return tuple(names)


@dataclass(frozen=True)
class _Target:
    """What the analysis measures: an outcome of the pooled ``first`` arms, minus that of the
    pooled ``second`` arms when there are any (a paired contrast)."""

    outcome: str
    horizon: int | None
    first: tuple[str, ...] = ()
    second: tuple[str, ...] = ()
    name: str = ""
    unit: str = ""

    @property
    def kind(self) -> str:
        if not self.first:
            return "function"
        return "contrast" if self.second else "strategy"

    def describe(self) -> str:
        if self.kind == "function":
            return f"the function's output ({self.unit})" if self.unit else "the function's output"
        spec = OUTCOMES.get(self.outcome) or DIAGNOSTICS[self.outcome]
        what = f"Δ {spec.label}" if self.second else spec.label
        return f"{what} at period {self.horizon} of {self.name}"


def _resolve_target(contrast, strategy, outcome, horizon) -> _Target:
    from .comparison import CULTURE, EFFICIENCY, FAMILY_CONTRAST, MINUS

    if outcome not in OUTCOMES and outcome not in DIAGNOSTICS:
        raise ValueError(
            f"outcome == {outcome!r}, must be one of {', '.join(map(repr, [*OUTCOMES, *DIAGNOSTICS]))}"
        )
    spec = OUTCOMES.get(outcome) or DIAGNOSTICS[outcome]
    options = _strategy_options()
    if strategy is not None:
        if contrast is not None:
            raise ValueError(
                f"contrast == {contrast!r} and strategy == {strategy!r}, must give one of them (contrast=None "
                "with a strategy's own outcome)"
            )
        if not isinstance(strategy, str):
            raise TypeError(
                f"strategy == {strategy!r}, must be a strategy name ({', '.join(map(repr, options))})"
            )
        first = _arm_names(strategy, "strategy", options)
        return _Target(outcome, horizon, first, (), strategy, spec.unit)
    if contrast is None:
        raise ValueError(
            "contrast == None and strategy == None, must give one: contrast='family' or strategy='bso'"
        )
    if isinstance(contrast, str):
        if contrast != "family":
            raise ValueError(
                f"contrast == {contrast!r}, must be 'family' or a pair [first, second] of strategies (or lists "
                "of them), e.g. ['bso', 'bpo_bpm']"
            )
        first = tuple(s for s, f in options.items() if f == CULTURE)
        second = tuple(s for s, f in options.items() if f == EFFICIENCY)
        if not first or not second:
            raise ConfigError(
                f"contrast == 'family' needs strategies of both families in conf/strategy/, found {options}"
            )
        return _Target(outcome, horizon, first, second, FAMILY_CONTRAST, spec.unit)
    if isinstance(contrast, bytes) or not isinstance(contrast, Sequence) or len(contrast) != 2:
        raise TypeError(f"contrast == {contrast!r}, must be 'family' or a pair [first, second] of strategies")
    first = _arm_names(contrast[0], "contrast[0]", options)
    second = _arm_names(contrast[1], "contrast[1]", options)
    common = set(first) & set(second)
    if common:
        raise ValueError(f"contrast == {contrast!r}, must not put {sorted(common)[0]!r} in both arms")
    return _Target(outcome, horizon, first, second, f"{'+'.join(first)}{MINUS}{'+'.join(second)}", spec.unit)


def _compose_arms(target: _Target, overrides: list[str]) -> dict[str, Config]:
    """Each arm's config, ``compose([*overrides, "strategy=<arm>"])``, composed as
    :func:`orgsim.compare` composes its cells (one Hydra composition per environment when the
    arms are plain strategy files; tested there against the full composition)."""
    from .comparison import _compose_cells, _override_key
    from .config import compose

    env, common = None, []
    for item in overrides:
        if _override_key(item) == "environment" and not item.startswith(("+", "~")):
            env = item.partition("=")[2].strip()
        else:
            common.append(item)
    labels = (*target.first, *target.second)
    try:
        if env is None:  # the scenario's or config.yaml's choice
            env = compose(common).environment.name
        cells = _compose_cells(common, [env], [(s, [f"strategy={s}"]) for s in labels], [])
    except ConfigError as exc:
        raise ConfigError(f"overrides: {exc}") from None
    return {s: cells[(env, s)] for s in labels}


def _check_horizon(horizon, periods: int) -> int:
    if horizon is None:
        return periods
    if not isinstance(horizon, numbers.Integral) or isinstance(horizon, bool | np.bool_):
        raise TypeError(
            f"horizon == {horizon!r}, must be an integer period in 1..{periods} (or None: the last)"
        )
    if not 1 <= horizon <= periods:
        raise ValueError(f"horizon == {horizon!r}, must be a period in 1..{periods} (the run's length)")
    return int(horizon)


def _simulate_arms(
    target: _Target, configs: Mapping[str, Config], params: pd.DataFrame, seed: int, engine: str, progress
) -> tuple[dict[str, np.ndarray], bool, dict[str, float]]:
    """Each arm's per-firm outcome (one value per row of ``params``), whether every firm met the
    same end-customer demand in every arm, and each arm's wall time. One simulate call per arm."""
    from .comparison import firm_outcomes
    from .simulation import simulate

    values, walls, demand, same = {}, {}, None, True
    for i, (label, cfg) in enumerate(configs.items()):
        if progress:
            print(
                f"{_PROG}: arm {i + 1}/{len(configs)}: {label} ({cfg.strategy.family}), {len(params):,} firms",
                file=sys.stderr,
                flush=True,
            )
        start = time.perf_counter()
        res = simulate(cfg, engine=engine, seed=seed, params=params, teams=False, progress=bool(progress))
        out = firm_outcomes(res, horizons=[target.horizon])
        values[label] = out[target.outcome].to_numpy(dtype=float)
        d = res.kpi_arrays["demand_total"]
        if demand is None:
            demand = d.copy()
        else:
            same = same and bool(np.array_equal(d, demand))
        walls[label] = time.perf_counter() - start
        del res
    return values, same, walls


def _response(target: _Target, values: Mapping[str, np.ndarray]) -> np.ndarray:
    y = np.mean([values[s] for s in target.first], axis=0)
    if target.second:
        y = y - np.mean([values[s] for s in target.second], axis=0)
    bad = ~np.isfinite(y)
    if bad.any():
        raise ValueError(
            f"outcome == {target.outcome!r} is undefined (NaN) for {int(bad.sum())} of {y.size} firms at period "
            f"{target.horizon} (e.g. a fill rate of a firm never solvent); choose an outcome defined for every firm"
        )
    return y


# ----------------------------------------------------------------------------------------------
# the noise
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoiseReport:
    """The model's own (replicate) variance beside the variance the parameters cause.

    With R replicates per design point, σ² is estimated by the pooled within-point variance
    (the mean over points of each point's sample variance, ddof = 1). The output given to SALib
    is the replicate mean, whose variance over the design is ``mean_variance``; replicate noise
    contributes σ²/R of it.

    Attributes
    ----------
    replicates : int
        R, firms per design point.
    points : int
        Design points.
    replicate_variance : float
        σ², the variance of one firm's response at fixed parameters (pooled over points).
    mean_variance : float
        Variance of the replicate means over the design points (ddof = 1).
    noise_share : float
        (σ²/R) / ``mean_variance``: the share of the variance of the model output used for the
        indices that is replicate noise (values near or above 1: the indices are mostly noise).
    parameter_variance : float
        ``mean_variance`` − σ²/R (at least 0): the variance the parameters cause.
    noise_share_per_firm : float
        σ² / (``parameter_variance`` + σ²): the share of one firm's variance that is stochastic,
        i.e. what an analysis with one firm per point would treat as signal.
    point_sd_quantiles : tuple of float
        The 10%, 50% and 90% quantiles of the per-point standard deviations (heteroscedasticity).
    """

    replicates: int
    points: int
    replicate_variance: float
    mean_variance: float
    noise_share: float
    parameter_variance: float
    noise_share_per_firm: float
    point_sd_quantiles: tuple[float, float, float]

    @classmethod
    def from_responses(cls, responses: np.ndarray) -> NoiseReport:
        p, r = responses.shape
        point_var = responses.var(axis=1, ddof=1)
        s2 = float(point_var.mean())
        vm = float(responses.mean(axis=1).var(ddof=1)) if p > 1 else float("nan")
        noise = s2 / r
        param = max(vm - noise, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = noise / vm if vm > 0 else (0.0 if noise == 0 else float("inf"))
            per_firm = s2 / (param + s2) if param + s2 > 0 else 0.0
        q = tuple(float(x) for x in np.quantile(np.sqrt(point_var), [0.1, 0.5, 0.9]))
        return cls(r, p, s2, vm, float(share), param, float(per_firm), q)

    def frame(self) -> pd.DataFrame:
        """One row with every field (the quantiles as three columns)."""
        data = asdict(self)
        q = data.pop("point_sd_quantiles")
        data.update(point_sd_q10=q[0], point_sd_q50=q[1], point_sd_q90=q[2])
        return pd.DataFrame([data])


# ----------------------------------------------------------------------------------------------
# the results
# ----------------------------------------------------------------------------------------------
def _z(level: float) -> float:
    return float(norm.ppf(0.5 + level / 2))


class _SensitivityResult:
    """What both analyses keep: the design, the responses, the noise and the provenance."""

    method = ""

    def __init__(
        self,
        *,
        parameters: Sequence[Parameter],
        design: np.ndarray,
        run_values: pd.DataFrame,
        responses: np.ndarray,
        salib: Mapping[str, np.ndarray],
        target: _Target,
        arm_values: Mapping[str, np.ndarray] | None,
        settings: Mapping[str, Any],
        seeds: Mapping[str, int],
        overrides: Sequence[str] = (),
        engine: str | None = None,
        crn_verified: bool | None = None,
        timings: Mapping[str, Any] | None = None,
    ):
        self.parameters = tuple(parameters)
        self.names = [p.name for p in self.parameters]
        self.design = np.asarray(design, dtype=float)  # as sampled, [point, parameter]
        self.run_values = run_values.reset_index(drop=True)  # as run (integers rounded)
        self.responses = np.asarray(responses, dtype=float)  # [point, replicate]
        self.salib = dict(salib)
        self.target = target
        self.arm_values = dict(arm_values or {})  # per arm, [point, replicate]
        self.settings = dict(settings)
        self.seeds = dict(seeds)
        self.overrides = list(overrides)
        self.engine = engine
        self.crn_verified = crn_verified
        self.timings = dict(timings or {})
        self.replicates = int(self.responses.shape[1])
        self.conf_level = float(self.settings["conf_level"])

    # -- data ---------------------------------------------------------------------------------
    @cached_property
    def means(self) -> np.ndarray:
        """The replicate mean of each design point: the model output given to SALib."""
        return self.responses.mean(axis=1)

    @cached_property
    def noise(self) -> NoiseReport:
        return NoiseReport.from_responses(self.responses)

    def noise_frame(self) -> pd.DataFrame:
        """:class:`NoiseReport` as a one-row DataFrame."""
        return self.noise.frame()

    def design_frame(self) -> pd.DataFrame:
        """One row per design point: the parameters as run, the replicate mean, its variance
        (ddof = 1) and the number of replicates."""
        out = self.run_values.copy()
        out.insert(0, "design_point", np.arange(len(out)))
        out["mean"] = self.means
        out["replicate_variance"] = self.responses.var(axis=1, ddof=1)
        out["n"] = self.replicates
        return out

    def training_frame(self) -> pd.DataFrame:
        """One row per firm (design point × replicate): ``design_point, replicate``, the
        parameters as run, ``response`` and, for orgsim outcomes, each arm's outcome
        (``<outcome>[<strategy>]``). The table a surrogate learns from
        (:class:`orgsim.surrogate.FamilySurrogate`, with ``groups=design_point``)."""
        p, r = self.responses.shape
        out = self.run_values.loc[np.repeat(np.arange(p), r)].reset_index(drop=True)
        out.insert(0, "replicate", np.tile(np.arange(r), p))
        out.insert(0, "design_point", np.repeat(np.arange(p), r))
        out["response"] = self.responses.reshape(-1)
        for label, v in self.arm_values.items():
            out[f"{self.target.outcome}[{label}]"] = v.reshape(-1)
        return out

    # -- reports ------------------------------------------------------------------------------
    def _info(self) -> dict[str, str]:
        t = self.target
        info = {"Output:": t.describe()}
        what = "evaluations" if t.kind == "function" else "firms"
        if t.kind == "contrast":
            info["Arms:"] = (
                f"{' + '.join(t.first)} minus the mean of {' + '.join(t.second)}, per firm (paired)"
            )
        info.update(
            {
                "Design:": self._design_text(),
                "Replicates:": f"{self.replicates} {what} per point (independent streams); output = their mean",
                f"{what.capitalize()} run:": f"{self.responses.size * max(1, len(self.arm_values)):,}",
                "Seed:": f"{self.seeds.get('seed')} (SALib sample {self.seeds.get('sample')}, "
                f"bootstrap {self.seeds.get('bootstrap')})",
            }
        )
        if self.overrides:
            info["Overrides:"] = " ".join(self.overrides)
        if self.crn_verified is not None:
            info["Same demand in every arm:"] = "yes" if self.crn_verified else "NO"
        n = self.noise
        info["Replicate noise:"] = (
            f"σ = {math.sqrt(n.replicate_variance):,.4g} per firm; σ²/R is {n.noise_share:.1%} of the variance "
            f"of the replicate means, σ² is {n.noise_share_per_firm:.1%} of one firm's variance"
        )
        if "total_s" in self.timings:
            info["Time:"] = f"{self.timings['total_s']:.1f} s"
        return info

    def _design_text(self) -> str:  # pragma: no cover - overridden
        return ""

    def summary(self, alpha: float | None = None):
        """A statsmodels ``Summary`` (text with ``str()``, HTML in JupyterLab): the design, the
        noise and the indices with their intervals."""
        from statsmodels.iolib.summary2 import Summary

        alpha = 1 - self.conf_level if alpha is None else check_alpha(alpha)
        s = Summary()
        s.add_title(self._title())
        s.add_dict(self._info(), ncols=1)
        s.add_df(self._summary_table(alpha), index=False)
        for note in self._notes(alpha):
            s.add_text(note)
        return s

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __str__(self) -> str:
        return str(self.summary())

    def _title(self) -> str:  # pragma: no cover - overridden
        return ""

    def _summary_table(self, alpha) -> pd.DataFrame:  # pragma: no cover - overridden
        raise NotImplementedError

    def _notes(self, alpha) -> list[str]:  # pragma: no cover - overridden
        return []

    def _unit(self) -> str:
        return self.target.unit or "output units"

    def metadata(self) -> dict:
        from .simulation import package_versions

        versions = package_versions()
        try:
            from importlib.metadata import version

            versions["SALib"] = version("SALib")
        except Exception:  # pragma: no cover
            versions["SALib"] = "not installed"
        t = self.target
        return {
            "method": self.method,
            "parameters": [asdict(p) for p in self.parameters],
            "target": {
                "kind": t.kind,
                "name": t.name,
                "outcome": t.outcome,
                "horizon": t.horizon,
                "unit": t.unit,
            },
            "arms": {"first": list(t.first), "second": list(t.second)},
            "settings": self.settings,
            "seeds": self.seeds,
            "overrides": self.overrides,
            "engine": self.engine,
            "crn_verified": self.crn_verified,
            "noise": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self.noise).items()},
            "timings": self.timings,
            "versions": versions,
        }

    def to_files(self, directory, *, name: str | None = None) -> dict[str, Path]:
        """Write ``indices.csv`` (:meth:`summary_frame` at the analysis's level), ``noise.csv``,
        ``design.parquet`` (:meth:`training_frame`), ``summary.txt``, ``<method>.png`` and,
        last, ``meta.json`` (provenance, and each file's size and SHA-256) into ``directory``."""
        from ._io import atomic_write, write_meta

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "meta.json").unlink(missing_ok=True)
        written = {}
        frame = self.summary_frame(1 - self.conf_level)
        for fname, write in (
            ("indices.csv", lambda p: frame.to_csv(p, index=False)),
            ("noise.csv", lambda p: self.noise_frame().to_csv(p, index=False)),
            ("design.parquet", lambda p: self.training_frame().to_parquet(p, index=False)),
            ("summary.txt", lambda p: Path(p).write_text(str(self.summary()) + "\n")),
            (f"{self.method}.png", lambda p: self.plot().savefig(p, dpi=120, format="png")),
        ):
            atomic_write(directory / fname, write)
            written[fname] = directory / fname
        meta = self.metadata()
        if name is not None:
            meta["analysis"] = name
        written["meta.json"] = write_meta(directory, meta, {f: {} for f in written})
        return written


def _axes(ax, size):
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained").subplots()


class MorrisResult(_SensitivityResult):
    """Morris screening of the replicate-mean output (SALib ``morris.analyze``).

    ``summary_frame(alpha)`` has one row per parameter; ``mean`` is μ*, the mean absolute
    elementary effect, in output units per full range of the parameter (the change of the
    output when the parameter moves one Morris step, divided by the step as a share of its
    range), with SALib's bootstrap interval. See :meth:`summary_frame` for the noise columns.
    """

    method = "morris"

    @property
    def delta(self) -> float:
        """The Morris step as a share of each parameter's range, levels / (2 (levels − 1))."""
        levels = int(self.settings["levels"])
        return levels / (2 * (levels - 1))

    def _design_text(self) -> str:
        s = self.settings
        return (
            f"Morris, {s['trajectories']} trajectories × ({len(self.names)} + 1) points, {s['levels']} levels "
            f"(step {self.delta:.3g} of each range)"
        )

    @cached_property
    def elementary_effects(self) -> pd.DataFrame:
        """One row per elementary effect: ``parameter, trajectory, effect`` (from the replicate
        means, as SALib computes them) and ``noise_variance``, the variance replicate noise
        adds to it, (s²_a + s²_b) / (R Δ²) from the two points' sample variances."""
        k = len(self.names)
        per_traj = k + 1
        y = self.means
        s2 = self.responses.var(axis=1, ddof=1) / self.replicates
        rows = []
        for t in range(self.design.shape[0] // per_traj):
            for i in range(k):
                a, b = t * per_traj + i, t * per_traj + i + 1
                step = self.design[b] - self.design[a]
                j = int(np.argmax(np.abs(step)))
                sign = 1.0 if step[j] > 0 else -1.0
                rows.append(
                    (self.names[j], t, sign * (y[b] - y[a]) / self.delta, (s2[a] + s2[b]) / self.delta**2)
                )
        return pd.DataFrame(rows, columns=["parameter", "trajectory", "effect", "noise_variance"])

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per parameter.

        Columns: ``parameter, low, high``; ``mean, mean_se, mean_ci_lower, mean_ci_upper``: μ*,
        its bootstrap standard error (SALib's ``mu_star_conf`` / z) and the normal interval
        μ* ± z(1 − α/2)·se (SALib resamples the elementary effects with replacement); ``mu`` (the
        signed mean effect: noise does not bias it) and ``sigma`` (their standard deviation:
        interactions or nonlinearity); ``sigma_noise`` (the σ replicate noise alone gives:
        √(mean noise variance of the parameter's effects)), ``sigma_adjusted``
        (√max(σ² − σ_noise², 0)), ``noise_floor`` (the μ* a parameter without effect would show:
        the mean over its effects of √(2/π)·√(noise variance), divided by c = E[√(χ²_k / k)],
        k = 2(R − 1), which removes the downward bias of the square root of an estimated
        variance: 0.89 at R = 2, 0.96 at R = 4, 0.99 at R = 10; exact for normal noise of equal
        variance at an effect's two points) and
        ``above_noise`` (``mean_ci_lower`` > ``noise_floor``); ``rank`` by μ* (1: largest).
        """
        alpha = check_alpha(alpha)
        s = self.salib
        se = s["mu_star_conf"] / _z(self.conf_level)
        z = _z(1 - alpha)
        ee = self.elementary_effects
        noise = ee.groupby("parameter", sort=False)["noise_variance"]
        sigma_noise = np.sqrt(noise.mean().reindex(self.names).to_numpy())
        k = 2 * (self.replicates - 1)  # degrees of freedom of an effect's two sample variances
        c = math.sqrt(2 / k) * math.exp(math.lgamma((k + 1) / 2) - math.lgamma(k / 2))
        floor = (
            ee.assign(a=np.sqrt(2 / np.pi * ee.noise_variance))
            .groupby("parameter")["a"]
            .mean()
            .reindex(self.names)
        ).to_numpy() / c
        frame = pd.DataFrame(
            {
                "parameter": self.names,
                "low": [p.low for p in self.parameters],
                "high": [p.high for p in self.parameters],
                "mean": s["mu_star"],
                "mean_se": se,
                "mean_ci_lower": s["mu_star"] - z * se,
                "mean_ci_upper": s["mu_star"] + z * se,
                "mu": s["mu"],
                "sigma": s["sigma"],
                "sigma_noise": sigma_noise,
                "sigma_adjusted": np.sqrt(np.maximum(s["sigma"] ** 2 - sigma_noise**2, 0.0)),
                "noise_floor": floor,
            }
        )
        frame["above_noise"] = frame.mean_ci_lower > frame.noise_floor
        frame["rank"] = frame["mean"].rank(ascending=False, method="min").astype(int)
        return frame

    def _title(self) -> str:
        return "Morris screening (SALib), seed-aware"

    def _summary_table(self, alpha) -> pd.DataFrame:
        f = self.summary_frame(alpha)
        level = f"{100 * (1 - alpha):g}% interval"
        return pd.DataFrame(
            {
                "parameter": f.parameter,
                "μ*": f["mean"].map(_g),
                level: [f"[{_g(a)}, {_g(b)}]" for a, b in zip(f.mean_ci_lower, f.mean_ci_upper)],
                "μ": f.mu.map(_g),
                "σ": f.sigma.map(_g),
                "noise floor of μ*": f.noise_floor.map(_g),
                "σ adjusted": f.sigma_adjusted.map(_g),
                "above noise": f.above_noise.map({True: "yes", False: "no"}),
            }
        )

    def _notes(self, alpha) -> list[str]:
        return [
            f"μ*, μ and σ in {self._unit()} per full range of the parameter, from the replicate means. Interval: "
            f"normal, with SALib's bootstrap standard error (B = {self.settings['resamples']} resamples of the "
            "elementary effects). Replicate noise leaves μ unbiased; it lifts μ* and σ: a parameter without "
            "effect shows μ* near its noise floor, and 'above noise' asks whether the interval's lower end "
            "clears it."
        ]

    def plot(self, alpha: float = 0.05, ax=None):
        """μ*–σ plane with labels, μ*'s interval, each parameter's noise floor and the σ of noise;
        returns the Figure (or ``ax``'s figure when an Axes is given)."""
        f = self.summary_frame(alpha)
        ax = _axes(ax, (7.5, 5.5))
        unit = self._unit()
        err = np.vstack([f["mean"] - f.mean_ci_lower, f.mean_ci_upper - f["mean"]])
        ax.errorbar(
            f["mean"],
            f.sigma,
            xerr=err,
            fmt="o",
            color="tab:blue",
            capsize=3,
            label=f"parameter: μ* with its {100 * (1 - alpha):g}% bootstrap interval",
        )
        ax.scatter(
            f.noise_floor,
            f.sigma_noise,
            marker="x",
            color="tab:red",
            zorder=3,
            label="what replicate noise alone gives (noise floor of μ*, σ of noise)",
        )
        for name, x, y in zip(f.parameter, f["mean"], f.sigma):
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        top = float(np.nanmax(np.r_[f.mean_ci_upper, f.sigma, f.noise_floor, 1e-12])) * 1.1
        ax.plot([0, top], [0, top], color="grey", linestyle="--", linewidth=0.8, label="σ = μ*")
        ax.set_xlim(left=min(0.0, float(f.mean_ci_lower.min())), right=top)
        ax.set_ylim(bottom=0.0)
        ax.set_xlabel(f"μ*, mean |elementary effect| ({unit} per full range of the parameter)")
        ax.set_ylabel(f"σ of the elementary effects ({unit} per full range)")
        ax.set_title(
            f"Morris screening: {self.target.describe()}\n{self.settings['trajectories']} trajectories, "
            f"{self.replicates} replicates per point; replicate noise is {self.noise.noise_share:.0%} of the "
            "output's variance",
            fontsize=10,
        )
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
        return ax.figure


class SobolResult(_SensitivityResult):
    """Sobol' indices of the replicate-mean output (SALib ``sobol.analyze``).

    ``summary_frame(alpha)`` has one row per parameter and index (S1, ST, and S2 for pairs
    when second-order indices were computed), SALib's estimates with their bootstrap
    intervals, and the estimates corrected for replicate noise (``adjusted``).
    """

    method = "sobol"

    def _design_text(self) -> str:
        s = self.settings
        k = len(self.names)
        per = 2 * k + 2 if s["second_order"] else k + 2
        return f"Sobol' (Saltelli), N = {s['base_samples']} base samples × {per} = {s['base_samples'] * per} points"

    @cached_property
    def _noise_scale(self) -> tuple[float, float]:
        """(V, ν) in SALib's standardised units: V the variance of the A and B outputs that
        normalises the indices, ν = (σ²/R) / Var(Y) the replicate noise left in the output."""
        y = self.means
        y_std = (y - y.mean()) / y.std()
        k = len(self.names)
        per = 2 * k + 2 if self.settings["second_order"] else k + 2
        blocks = y_std.reshape(-1, per)
        v = float(np.var(np.r_[blocks[:, 0], blocks[:, -1]]))
        nu = (self.noise.replicate_variance / self.replicates) / float(y.var()) if y.var() > 0 else 0.0
        return v, nu

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per parameter and index.

        Columns: ``parameter`` (``a × b`` for S2), ``index`` (``S1``, ``ST``, ``S2``); ``mean,
        mean_se, mean_ci_lower, mean_ci_upper``: SALib's estimate from the replicate means, its
        bootstrap standard error (SALib's ``*_conf`` / z: B resamples of the base samples) and
        the normal interval estimate ± z(1 − α/2)·se; ``adjusted, adjusted_ci_lower,
        adjusted_ci_upper``: the estimate with the replicate-noise bias removed. With V the
        variance of the outputs that normalises the indices and ν the replicate noise in it
        (σ²/R, both in SALib's standardised units), S1 and S2 are scaled by V / (V − ν) (noise
        inflates only their denominator) and ST becomes (ST·V − ν) / (V − ν) (noise adds ν to
        its numerator too); the interval scales the standard error by V / (V − ν), treating V
        and ν as known. NaN when ν ≥ V (noise dominates).
        """
        alpha = check_alpha(alpha)
        s = self.salib
        zc, z = _z(self.conf_level), _z(1 - alpha)
        v, nu = self._noise_scale
        factor = v / (v - nu) if v > nu else float("nan")
        rows = []
        for j, name in enumerate(self.names):
            for index in ("S1", "ST"):
                est, se = float(s[index][j]), float(s[index + "_conf"][j]) / zc
                adj = est * factor if index == "S1" else (est * v - nu) / (v - nu) if v > nu else float("nan")
                rows.append((name, index, est, se, adj, se * factor))
        if self.settings["second_order"]:
            for j in range(len(self.names)):
                for k in range(j + 1, len(self.names)):
                    est, se = float(s["S2"][j, k]), float(s["S2_conf"][j, k]) / zc
                    rows.append(
                        (f"{self.names[j]} × {self.names[k]}", "S2", est, se, est * factor, se * factor)
                    )
        f = pd.DataFrame(rows, columns=["parameter", "index", "mean", "mean_se", "adjusted", "adjusted_se"])
        f.insert(4, "mean_ci_lower", f["mean"] - z * f.mean_se)
        f.insert(5, "mean_ci_upper", f["mean"] + z * f.mean_se)
        f["adjusted_ci_lower"] = f.adjusted - z * f.adjusted_se
        f["adjusted_ci_upper"] = f.adjusted + z * f.adjusted_se
        return f.drop(columns="adjusted_se")

    def _title(self) -> str:
        return "Sobol' indices (SALib), seed-aware"

    def _summary_table(self, alpha) -> pd.DataFrame:
        f = self.summary_frame(alpha)
        level = f"{100 * (1 - alpha):g}% interval"
        return pd.DataFrame(
            {
                "parameter": f.parameter,
                "index": f["index"],
                "estimate": f["mean"].map(lambda x: f"{x:.3f}"),
                level: [f"[{a:.3f}, {b:.3f}]" for a, b in zip(f.mean_ci_lower, f.mean_ci_upper)],
                "noise-adjusted": f.adjusted.map(lambda x: f"{x:.3f}"),
                f"adjusted {level}": [
                    f"[{a:.3f}, {b:.3f}]" for a, b in zip(f.adjusted_ci_lower, f.adjusted_ci_upper)
                ],
            }
        )

    def _notes(self, alpha) -> list[str]:
        v, nu = self._noise_scale
        return [
            "S1: share of the variance of the replicate-mean output due to the parameter alone; ST: including "
            "its interactions. Interval: normal, with SALib's bootstrap standard error (B = "
            f"{self.settings['resamples']} resamples of the base samples).",
            f"Replicate noise is {nu / v:.1%} of the variance that normalises the indices: it lowers S1 and "
            "raises ST (even of a parameter without effect) by about that share; 'noise-adjusted' removes that "
            "bias (docs/sensitivity.md).",
        ]

    def plot(self, alpha: float = 0.05, ax=None):
        """Bars of S1 and ST per parameter with their intervals, and the noise-adjusted estimates;
        returns the Figure (or ``ax``'s figure)."""
        f = self.summary_frame(alpha)
        ax = _axes(ax, (max(6.0, 1.3 * len(self.names) + 3), 4.8))
        x = np.arange(len(self.names))
        width = 0.38
        for i, (index, colour) in enumerate((("S1", "tab:blue"), ("ST", "tab:orange"))):
            part = f[f["index"] == index].set_index("parameter").reindex(self.names)
            err = np.vstack([part["mean"] - part.mean_ci_lower, part.mean_ci_upper - part["mean"]])
            pos = x + (i - 0.5) * width
            label = "first order S1" if index == "S1" else "total ST"
            ax.bar(pos, part["mean"], width, color=colour, alpha=0.8, label=f"{label} (SALib)")
            ax.errorbar(
                pos,
                part["mean"],
                yerr=err,
                fmt="none",
                ecolor="black",
                capsize=3,
                linewidth=1,
                label=f"{100 * (1 - alpha):g}% bootstrap interval" if i == 0 else None,
            )
            ax.scatter(
                pos,
                part.adjusted,
                marker="D",
                facecolors="none",
                edgecolors="black",
                zorder=3,
                label="noise-adjusted estimate" if i == 0 else None,
            )
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(x, self.names, rotation=20, ha="right")
        ax.set_ylabel("share of the output's variance")
        ax.set_xlabel("parameter")
        v, nu = self._noise_scale
        ax.set_title(
            f"Sobol' indices: {self.target.describe()}\nN = {self.settings['base_samples']} base samples, "
            f"{self.replicates} replicates per point; replicate noise is {nu / v:.0%} of the variance",
            fontsize=10,
        )
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        return ax.figure


def _g(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{x:,.4g}"


# ----------------------------------------------------------------------------------------------
# the analyses
# ----------------------------------------------------------------------------------------------
def _check_int(name: str, value, lo: int, why: str = "") -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} == {value!r}, must be an integer >= {lo}{why}")
    if value < lo:
        raise ValueError(f"{name} == {value!r}, must be >= {lo}{why}")
    return int(value)


def _check_level(conf_level) -> float:
    if not _is_real(conf_level) or not 0 < float(conf_level) < 1:
        raise ValueError(f"conf_level == {conf_level!r}, must be in (0, 1), e.g. 0.95")
    return float(conf_level)


def _seeds(seed) -> dict[str, int]:
    """The analysis's seeds from one user seed (SPEC 7): the firms' root seed, and seeds for
    SALib's sampler and bootstrap drawn from a Generator keyed by (tag, root seed), so they never
    share a stream with a firm. SALib's Sobol' analysis ignores a seed of 0, so these are >= 1."""
    root = _rng.seed_to_int(seed)
    gen = np.random.default_rng([_DESIGN_TAG, root])
    boot = np.random.default_rng([_BOOT_TAG, root])
    return {
        "seed": root,
        "sample": int(gen.integers(1, 2**31)),
        "bootstrap": int(boot.integers(1, 2**31)),
    }


def _check_design(method: str, design: Mapping[str, Any]) -> dict[str, Any]:
    if method == "morris":
        trajectories = _check_int("trajectories", design["trajectories"], 2, " (σ needs two effects)")
        levels = _check_int("levels", design["levels"], 2)
        if levels % 2:
            raise ValueError(f"levels == {levels}, must be even (Morris 1991: every level equally likely)")
        return {"trajectories": trajectories, "levels": levels}
    n = _check_int("base_samples", design["base_samples"], 2)
    if n & (n - 1):
        raise ValueError(
            f"base_samples == {n}, must be a power of 2 (the balance of Sobol' points needs it), e.g. "
            f"{1 << (n.bit_length() - 1)} or {1 << n.bit_length()}"
        )
    second = design["second_order"]
    if not isinstance(second, bool):
        raise TypeError(f"second_order == {second!r}, must be True or False")
    return {"base_samples": n, "second_order": second}


def _analyse(
    method: str,
    parameters,
    *,
    model: Callable | None,
    outcome: str,
    horizon,
    contrast,
    strategy,
    overrides,
    replicates: int,
    design: Mapping[str, Any],
    seed,
    engine: str,
    conf_level: float,
    resamples: int,
    unit: str | None,
    progress,
):
    from SALib.analyze import morris as morris_analyze
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import morris as morris_sample
    from SALib.sample import sobol as sobol_sample

    start = time.perf_counter()
    replicates = _check_int(
        "replicates", replicates, 2, " (the replicate noise is the spread within a point)"
    )
    conf_level = _check_level(conf_level)
    resamples = _check_int("resamples", resamples, 2, " (bootstrap resamples of SALib's intervals)")
    if engine not in ("numba", "mesa"):
        raise ValueError(f"engine == {engine!r}, must be one of 'numba', 'mesa'")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress == {progress!r}, must be True, False or None")
    seeds = _seeds(seed)
    settings: dict[str, Any] = {"replicates": replicates, "conf_level": conf_level, "resamples": resamples}
    settings.update(_check_design(method, design))
    _parameter_items(parameters)  # its shape, before anything is composed

    configs: dict[str, Config] = {}
    if model is not None:
        if not callable(model):
            raise TypeError(f"model == {model!r}, must be a callable f(params: DataFrame, rng) -> array")
        if overrides or strategy is not None:
            raise ValueError("model is given: overrides and strategy apply to orgsim only, must be left out")
        target = _Target("output", None, unit=unit or "")
        params = check_parameters(parameters)
        overrides = []
    else:
        target = _resolve_target(contrast, strategy, outcome, horizon)
        overrides = _check_overrides(overrides)
        configs = _compose_arms(target, overrides)
        periods = {cfg.periods for cfg in configs.values()}
        target = _Target(
            target.outcome,
            _check_horizon(horizon, periods.pop()),
            target.first,
            target.second,
            target.name,
            target.unit,
        )
        params = check_parameters(parameters, configs)

    problem = {
        "num_vars": len(params),
        "names": [p.name for p in params],
        "bounds": [[p.low, p.high] for p in params],
    }
    if method == "morris":
        X = morris_sample.sample(
            problem, settings["trajectories"], num_levels=settings["levels"], seed=seeds["sample"]
        )
    else:
        # integers: sampled on [low - 1/2, high + 1/2) so that rounding makes every value equally likely
        wide = {
            **problem,
            "bounds": [[p.low - 0.5, p.high + 0.5] if p.integer else [p.low, p.high] for p in params],
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # scrambled points: SALib warns about skip_values
            X = sobol_sample.sample(
                wide, settings["base_samples"], calc_second_order=settings["second_order"], scramble=True,
                seed=seeds["sample"],
            )  # fmt: skip
    levels, second = settings.get("levels"), settings.get("second_order")

    values = _run_values(params, X)
    rows = values.loc[np.repeat(np.arange(len(values)), replicates)].reset_index(drop=True)
    sim_start = time.perf_counter()
    crn, walls, arm_values = None, {}, {}
    if model is not None:
        out = np.asarray(
            model(rows.copy(), np.random.default_rng([_FUNCTION_TAG, seeds["seed"]])), dtype=float
        )
        if out.shape != (len(rows),):
            raise ValueError(
                f"model returned shape {out.shape}, must return one value per row ({len(rows)},)"
            )
        if not np.isfinite(out).all():
            raise ValueError(
                f"model returned {int((~np.isfinite(out)).sum())} non-finite values, must be finite"
            )
        y = out
    else:
        per_arm, crn, walls = _simulate_arms(target, configs, rows, seeds["seed"], engine, progress)
        y = _response(target, per_arm)
        arm_values = {k: v.reshape(-1, replicates) for k, v in per_arm.items()}
    simulation_s = time.perf_counter() - sim_start
    responses = y.reshape(-1, replicates)
    means = responses.mean(axis=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*constant.*")
        if method == "morris":
            si = morris_analyze.analyze(
                problem, X, means, num_resamples=resamples, conf_level=conf_level, num_levels=levels,
                seed=seeds["bootstrap"],
            )  # fmt: skip
            salib = {k: np.asarray(si[k], dtype=float) for k in ("mu", "mu_star", "sigma", "mu_star_conf")}
        else:
            si = sobol_analyze.analyze(
                problem, means, calc_second_order=second, num_resamples=resamples, conf_level=conf_level,
                seed=seeds["bootstrap"],
            )  # fmt: skip
            keys = ("S1", "S1_conf", "ST", "ST_conf", *(("S2", "S2_conf") if second else ()))
            salib = {k: np.asarray(si[k], dtype=float) for k in keys}
    cls = MorrisResult if method == "morris" else SobolResult
    result = cls(
        parameters=params,
        design=X,
        run_values=values,
        responses=responses,
        salib=salib,
        target=target,
        arm_values=arm_values,
        settings=settings,
        seeds=seeds,
        overrides=overrides,
        engine=engine if model is None else None,
        crn_verified=crn,
        timings={"simulation_s": simulation_s, "arm_wall_s": walls, "total_s": time.perf_counter() - start},
    )
    if crn is False:
        warnings.warn(
            "end-customer demand differs between the arms: their overrides change demand, so the arms do not "
            "meet the same demand (firms are still paired by their random numbers)",
            RuntimeWarning,
            stacklevel=3,
        )
    return result


_COMMON_DOC = """
    parameters : mapping or sequence of Parameter
        ``{dotted config key: [low, high]}`` (or a function's inputs with ``model``), e.g.
        ``{"management.execution_noise": [0.0, 0.3], "demand.cv": [0.05, 0.3]}``. Each is sampled
        uniformly on its bounds; integer keys are rounded. Validated by :func:`check_parameters`.
    model : callable, optional
        Instead of orgsim: ``model(params, rng) -> array`` with one value per row of ``params``
        (a DataFrame with a column per parameter, one row per design point × replicate) and a
        NumPy Generator for its noise.
    outcome : str
        A per-firm outcome of :data:`orgsim.comparison.OUTCOMES` or ``DIAGNOSTICS``, as
        :func:`orgsim.compare` defines it (default cumulative free cash flow).
    horizon : int, optional
        The period at which the outcome is measured; default the run's last.
    contrast : "family", a pair, or None
        ``"family"`` (default): culture-aligned minus the pooled efficiency-only strategies of
        ``conf/strategy/`` (``bso`` − mean of ``bpo``, ``bpm``, ``bpo_bpm``), per firm on common
        random numbers. A pair ``[first, second]`` of strategies (or lists, pooled with equal
        weight) gives that paired difference. None with ``strategy``.
    strategy : str, optional
        Analyse this strategy's own outcome instead of a contrast (with ``contrast=None``).
    overrides : list of str, optional
        Hydra overrides of the model for every arm (``["environment=volatile", "periods=104"]``);
        not the strategy, ``n_orgs``, ``seed`` or ``engine``.
    replicates : int
        R >= 2 firms (independent random streams) per design point; the output is their mean.
    seed : int, SeedSequence or Generator
        SPEC 7. Firm j of the design table (point j // R, replicate j % R) draws from the seed's
        j-th stream in every arm; SALib's sampler and bootstrap get seeds derived from it.
    engine : {"numba", "mesa"}
        One :func:`orgsim.simulate` call per arm with a ``params`` table of every firm.
    conf_level : float
        Level of SALib's bootstrap intervals (``summary_frame(alpha)`` rescales them).
    resamples : int
        SALib's bootstrap resamples.
    unit : str, optional
        The output's unit, for labels (with ``model``; orgsim outcomes know theirs).
    progress : bool, optional
        Lines to standard error per arm and the simulation's progress bar."""


def morris(
    parameters,
    *,
    model: Callable | None = None,
    outcome: str = "cumulative_fcf",
    horizon: int | None = None,
    contrast="family",
    strategy: str | None = None,
    overrides: Sequence[str] | None = None,
    replicates: int = 10,
    trajectories: int = 10,
    levels: int = 4,
    seed=0,
    engine: str = "numba",
    conf_level: float = 0.95,
    resamples: int = 1000,
    unit: str | None = None,
    progress: bool | None = None,
) -> MorrisResult:
    """Morris screening (SALib) of an orgsim outcome or a function, with R replicates per point.

    Parameters
    ----------
    {common}
    trajectories : int
        r, Morris trajectories (each k + 1 points for k parameters; at least 2).
    levels : int
        Grid levels p (even); the step is p / (2 (p − 1)) of each range.

    Returns
    -------
    MorrisResult

    Examples
    --------
    >>> import numpy as np
    >>> from orgsim.sensitivity import morris
    >>> f = lambda X, rng: 2 * X["a"] + X["b"] ** 2 + rng.normal(0, 0.1, len(X))
    >>> res = morris({{"a": [0, 1], "b": [0, 1], "unused": [0, 1]}}, model=f, trajectories=20, seed=0)
    >>> frame = res.summary_frame()
    >>> frame.set_index("parameter")["rank"].to_dict()
    {{'a': 1, 'b': 2, 'unused': 3}}
    """
    return _analyse(
        "morris",
        parameters,
        model=model,
        outcome=outcome,
        horizon=horizon,
        contrast=None if strategy is not None and contrast == "family" else contrast,
        strategy=strategy,
        overrides=overrides,
        replicates=replicates,
        design={"trajectories": trajectories, "levels": levels},
        seed=seed,
        engine=engine,
        conf_level=conf_level,
        resamples=resamples,
        unit=unit,
        progress=progress,
    )


def sobol(
    parameters,
    *,
    model: Callable | None = None,
    outcome: str = "cumulative_fcf",
    horizon: int | None = None,
    contrast="family",
    strategy: str | None = None,
    overrides: Sequence[str] | None = None,
    replicates: int = 10,
    base_samples: int = 256,
    second_order: bool = False,
    seed=0,
    engine: str = "numba",
    conf_level: float = 0.95,
    resamples: int = 1000,
    unit: str | None = None,
    progress: bool | None = None,
) -> SobolResult:
    """Sobol' indices (SALib, Saltelli's design) of an orgsim outcome or a function, with R
    replicates per point.

    Parameters
    ----------
    {common}
    base_samples : int
        N, a power of 2: the design has N (k + 2) points (N (2k + 2) with second order).
    second_order : bool
        Also estimate second-order indices S2.

    Returns
    -------
    SobolResult

    Examples
    --------
    >>> import numpy as np
    >>> from orgsim.sensitivity import sobol
    >>> f = lambda X, rng: X["a"] + 0.1 * X["b"] + rng.normal(0, 0.01, len(X))
    >>> res = sobol({{"a": [0, 1], "b": [0, 1]}}, model=f, base_samples=256, replicates=2, seed=0)
    >>> frame = res.summary_frame().set_index(["parameter", "index"])
    >>> bool(frame.loc[("a", "S1"), "mean"] > 0.9)
    True
    """
    return _analyse(
        "sobol",
        parameters,
        model=model,
        outcome=outcome,
        horizon=horizon,
        contrast=None if strategy is not None and contrast == "family" else contrast,
        strategy=strategy,
        overrides=overrides,
        replicates=replicates,
        design={"base_samples": base_samples, "second_order": second_order},
        seed=seed,
        engine=engine,
        conf_level=conf_level,
        resamples=resamples,
        unit=unit,
        progress=progress,
    )


morris.__doc__ = morris.__doc__.format(common=_COMMON_DOC.strip("\n").lstrip())
sobol.__doc__ = sobol.__doc__.format(common=_COMMON_DOC.strip("\n").lstrip())


# ----------------------------------------------------------------------------------------------
# configured analyses (conf/sensitivity/*.yaml) and the command line
# ----------------------------------------------------------------------------------------------
#: the keys of a ``conf/sensitivity/*.yaml`` file and their defaults
SETTINGS: dict[str, Any] = {
    "method": "morris",
    "parameters": None,
    "outcome": "cumulative_fcf",
    "horizon": None,
    "contrast": "family",
    "strategy": None,
    "overrides": [],
    "replicates": 10,
    "engine": "numba",
    "conf_level": 0.95,
    "resamples": 1000,
    "morris": {"trajectories": 10, "levels": 4},
    "sobol": {"base_samples": 256, "second_order": False},
    "description": "",
}


def _split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """(overrides of the ``sensitivity`` node, overrides of the model)."""
    from .comparison import _override_key

    mine, model = [], []
    for item in overrides:
        if not isinstance(item, str):
            raise TypeError(f"overrides item {item!r}, must be a string like 'sensitivity.replicates=4'")
        key = _override_key(item)
        (mine if key == "sensitivity" or key.startswith("sensitivity.") else model).append(item)
    return mine, model


def _load_group_file(name: str, overrides: list[str]) -> dict:
    """``conf/sensitivity/<name>.yaml`` with ``sensitivity.*`` overrides applied as Hydra would
    (used while the config schema has no ``sensitivity`` node: Hydra refuses the group then)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf, open_dict

    from .config import hydra_error_line

    node = OmegaConf.load(config_dir() / "sensitivity" / f"{name}.yaml")
    root = OmegaConf.create({"sensitivity": node})
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        raise ConfigError(hydra_error_line(exc)) from None
    for ov in parsed:
        key = ov.key_or_group
        if ov.is_delete():
            parent, _, leaf = key.rpartition(".")
            target = OmegaConf.select(root, parent) if parent else root
            if target is None or leaf not in target:
                raise ConfigError(f"{ov.input_line}: {key} is not in the analysis, cannot delete it")
            with open_dict(target):
                del target[leaf]
            continue
        present = OmegaConf.select(root, key, default="__missing__") != "__missing__"
        if not ov.is_add() and not present:
            raise ConfigError(f"{key} is not a setting of the analysis; to add it use +{key}=...")
        if ov.is_add() and present:
            raise ConfigError(f"{key} is already set in the analysis; override it without +")
        with open_dict(root):
            OmegaConf.update(root, key, ov.value(), merge=False, force_add=True)
    return OmegaConf.to_container(root.sensitivity, resolve=True)


def _schema_admits_node() -> bool:
    """Whether the config schema registered for Hydra (``orgsim_schema``) has a ``sensitivity``
    node, so that ``+sensitivity=NAME`` composes."""
    from hydra.core.config_store import ConfigStore

    from .config import register_configs

    register_configs()
    try:
        return "sensitivity" in ConfigStore.instance().load("orgsim_schema.yaml").node
    except Exception:  # pragma: no cover - Hydra's store layout changed: try composing
        return True


def load_settings(name: str, overrides: Sequence[str] | None = None) -> tuple[dict, list[str]]:
    """The settings of the analysis ``conf/sensitivity/<name>.yaml`` and the model's overrides.

    ``overrides`` mixes ``sensitivity.*`` overrides (of the settings) and the model's (e.g.
    ``environment=volatile``). The file's own ``overrides`` list comes first, then the command
    line's. The group is composed by Hydra (:func:`orgsim.config.compose_hydra` with
    ``+sensitivity=<name>``; the composed config's ``sensitivity`` node is one of
    :data:`orgsim.config.TOOL_NODES`, left out of the model's Config) and, while the config
    schema does not admit that node, read from the file with the same override syntax.

    Returns
    -------
    settings : dict
        Every key of :data:`SETTINGS`, validated for its type.
    model_overrides : list of str
    """
    from omegaconf import OmegaConf

    from .comparison import _group_options
    from .config import compose_hydra, hydra_error_line

    options = _group_options("sensitivity")
    if not isinstance(name, str) or name not in options:
        raise ConfigError(
            f"sensitivity == {name!r}, must be one of {', '.join(map(repr, options))} (conf/sensitivity/)"
        )
    mine, model = _split_overrides(list(overrides or []))
    if _schema_admits_node():
        try:
            composed = compose_hydra([f"+sensitivity={name}", *mine])
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(hydra_error_line(exc)) from None
        data = OmegaConf.to_container(composed.sensitivity, resolve=True)
    else:  # Hydra would refuse the group: read the file, with the same override syntax
        data = _load_group_file(name, mine)
    if not isinstance(data, dict):
        raise ConfigError(f"conf/sensitivity/{name}.yaml must hold a mapping of settings, not {data!r}")
    unknown = sorted(set(data) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"sensitivity.{unknown[0]} is not a setting; allowed: {', '.join(SETTINGS)}")
    settings = {**SETTINGS, **data}
    for key in ("morris", "sobol"):
        extra = sorted(set(settings[key]) - set(SETTINGS[key])) if isinstance(settings[key], dict) else [None]
        if extra:
            raise ConfigError(
                f"sensitivity.{key} == {settings[key]!r}, must be a mapping of {', '.join(SETTINGS[key])}"
            )
        settings[key] = {**SETTINGS[key], **settings[key]}
    if settings["method"] not in METHODS:
        raise ConfigError(
            f"sensitivity.method == {settings['method']!r}, must be one of {', '.join(map(repr, METHODS))}"
        )
    if settings["parameters"] is None:
        raise ConfigError("sensitivity.parameters == None, must map parameters to [low, high]")
    file_ov = settings["overrides"]
    if not isinstance(file_ov, list) or not all(isinstance(o, str) for o in file_ov):
        raise ConfigError(f"sensitivity.overrides == {file_ov!r}, must be a list of override strings")
    return settings, [*file_ov, *model]


def run_configured(
    name: str, overrides: Sequence[str] | None = None, *, progress: bool | None = None
) -> MorrisResult | SobolResult:
    """Run the analysis ``conf/sensitivity/<name>.yaml`` with overrides (see :func:`load_settings`).

    ``seed=N`` among the overrides is the analysis's seed (default the composed config's, 0).
    """
    from .comparison import _override_key

    settings, model_ov = load_settings(name, overrides)
    seed = 0
    rest = []
    for item in model_ov:
        key, value = _override_key(item), item.partition("=")[2].strip()
        if key == "seed":
            try:
                seed = int(value)
            except ValueError:
                raise ConfigError(f"seed == {value!r}, must be an integer >= 0") from None
        elif key == "engine":
            settings["engine"] = value
        else:
            rest.append(item)
    common = {
        k: settings[k]
        for k in (
            "outcome",
            "horizon",
            "contrast",
            "strategy",
            "replicates",
            "engine",
            "conf_level",
            "resamples",
        )
    }
    if common["strategy"] is not None and common["contrast"] == "family":
        common["contrast"] = None
    method = settings["method"]
    fn = morris if method == "morris" else sobol
    return fn(
        settings["parameters"], overrides=rest, seed=seed, progress=progress, **common, **settings[method]
    )


class _Parser(argparse.ArgumentParser):
    """Errors as one line, ``orgsim-sensitivity: error: ...``, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{_PROG}: error: {' '.join(message.split())}\n")


def main(argv: list[str] | None = None) -> int:
    """``orgsim-sensitivity NAME [--out DIR] [overrides]``: run ``conf/sensitivity/NAME.yaml``.

    Writes the indices (``indices.csv``), the noise report (``noise.csv``), every firm's
    response (``design.parquet``), ``summary.txt``, the figure (``morris.png`` or ``sobol.png``)
    and ``meta.json`` into ``DIR`` (default ``outputs/sensitivity/NAME``), with progress lines on
    standard error. Overrides: ``sensitivity.*`` settings (``sensitivity.replicates=20``,
    ``+sensitivity.parameters.demand.rho=[0,0.8]``), the model's (``environment=volatile``,
    ``periods=104``), ``seed=N`` and ``engine=mesa``. Bad input: one line, exit status 2.
    """
    from .plots import use_headless_backend

    use_headless_backend()
    parser = _Parser(prog=_PROG, description="Run a sensitivity analysis configured in conf/sensitivity/.")
    parser.add_argument(
        "name", nargs="?", help="an analysis in conf/sensitivity/ (the file name without .yaml)"
    )
    parser.add_argument("overrides", nargs="*", help="key=value overrides (sensitivity.* or the model's)")
    parser.add_argument("--out", default=None, help="output directory (default outputs/sensitivity/NAME)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_intermixed_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.name is None:
        from .comparison import _group_options

        options = ", ".join(_group_options("sensitivity"))
        print(
            f"{_PROG}: error: NAME is required, must be an analysis in conf/sensitivity/ ({options})",
            file=sys.stderr,
        )
        return 2
    progress = not args.quiet
    out = Path(args.out if args.out is not None else Path("outputs") / "sensitivity" / args.name)
    try:
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out == {str(out)!r}, must be a directory (it is a file)")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = run_configured(args.name, args.overrides, progress=progress)
        for w in caught:
            if issubclass(w.category, UserWarning | RuntimeWarning):
                print(f"{_PROG}: warning: {w.message}", file=sys.stderr)
    except (ConfigError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"{_PROG}: error: {first}", file=sys.stderr)
        return 2
    try:
        written = res.to_files(out, name=args.name)
    except OSError as exc:
        print(f"{_PROG}: error: cannot write outputs to {str(out)!r}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(str(res.summary()))
    print(f"wrote {', '.join(sorted(written))} to {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
