"""Typed, frozen, validated configuration.

Every section of the model is a frozen dataclass checked at construction. An invalid value
raises :class:`ConfigError` whose message names the field, the value and what is allowed, in the
style of scikit-learn's ``check_scalar``::

    network.lead_time == -1, must be >= 1

Hydra stays at the edge: :func:`register_configs` stores these dataclasses as the schema of
``conf/config.yaml``, and :func:`compose` turns a list of Hydra overrides into a validated
:class:`Config` for library use.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Config",
    "ConfigError",
    "CostConfig",
    "CultureConfig",
    "DemandConfig",
    "EnvironmentConfig",
    "FinanceConfig",
    "ManagementConfig",
    "NetworkConfig",
    "OutputConfig",
    "PolicyConfig",
    "ScenarioConfig",
    "StrategyConfig",
    "SupplyConfig",
    "compose",
    "config_from_dict",
    "register_configs",
    "with_changes",
]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
_DATA_CONF_DIR = Path(__file__).resolve().parent / "conf"


class ConfigError(ValueError):
    """An invalid configuration value; the message is one line naming field, value and rule."""


# --------------------------------------------------------------------------------------------
# checks (scikit-learn ``check_scalar`` style messages)
# --------------------------------------------------------------------------------------------
#: integer fields hold 64-bit integers (both engines, and Numba, use int64)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: the longest run (``periods``); a duration, period index or period count of a run's
#: parameters (``demand.shock_duration``, ``finance.grace_periods``, ...) is bounded by it, as a
#: longer one acts exactly like this one: no run has more periods
_MAX_PERIODS = 100_000
#: upper bounds of the quantities and money amounts, chosen so that no valid config can overflow
#: the float range: a period's flows stay below ~1e40 and their sums over the longest run below
#: ~1e50, far from 1.8e308 (docs/model.md §12, "Bounds"). They are orders of magnitude above any
#: firm the model describes.
_MAX_RATE = 1_000_000  #: units per period (demand level, demand step)
_MAX_STOCK = 1_000_000_000  #: units (capacity per period, initial inventory, desired stock)
_MAX_PRICE = 1_000_000  #: MU per unit or per unit and period (price, unit costs)
_MAX_PERIOD_COST = 1_000_000_000  #: MU per period (a team's fixed cost, a programme's cost)
_MAX_CASH = 1_000_000_000_000  #: MU (initial and minimum cash)


def _show(value: Any) -> str:
    """``repr(value)`` for a message, abbreviated so that the message stays one readable line."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
        n = int(value)
        if abs(n) >= 10**30:  # also beyond Python's int-to-str limit (4300 digits)
            exponent = math.floor(math.log10(abs(n)))
            exponent += (abs(n) >= 10 ** (exponent + 1)) - (abs(n) < 10**exponent)  # log10 rounding
            head = str(abs(n) // 10 ** (exponent - 5))  # the leading six digits, exactly
            mantissa = (head[0] + "." + head[1:].rstrip("0")).rstrip(".")
            return f"{'-' if n < 0 else ''}{mantissa}e+{exponent} (an integer of {exponent + 1} digits)"
    try:
        text = repr(value)
    except ValueError:  # e.g. a list holding an integer beyond the int-to-str limit
        return f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:140] + " ... " + text[-50:]


def _fail(path: str, value: Any, rule: str) -> None:
    raise ConfigError(f"{path} == {_show(value)}, must be {rule}")


def _bounds(path: str, value: Any, lo, hi, lo_open: bool, hi_open: bool) -> None:
    if lo is not None and (value <= lo if lo_open else value < lo):
        _fail(path, value, f"{'>' if lo_open else '>='} {lo}")
    if hi is not None and (value >= hi if hi_open else value > hi):
        _fail(path, value, f"{'<' if hi_open else '<='} {hi}")


def _num(path: str, value: Any, *, lo=None, hi=None, lo_open=False, hi_open=False, integer=False):
    """A real number checked against its bounds, as ``int`` (integer fields) or ``float``.

    Integer fields must also lie in the int64 range; a Python integer beyond the float range
    (``10**400``) is rejected with the field named, not converted.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        _fail(path, value, "an integer" if integer else "a number")
    if integer:
        if isinstance(value, numbers.Rational):  # int, numpy integer, Fraction: exact
            if value.denominator != 1:
                _fail(path, value, "an integer")
            n = int(value)
        else:
            x = float(value)
            if not x.is_integer():  # also nan and inf
                _fail(path, value, "an integer")
            n = int(x)
        _bounds(path, value, lo, hi, lo_open, hi_open)
        _bounds(path, value, _INT64_MIN, _INT64_MAX, False, False)
        return n
    try:
        x = float(value)
    except OverflowError:  # an integer (or fraction) beyond the float range
        _bounds(path, value, lo, hi, lo_open, hi_open)
        _fail(path, value, f"within the float range (magnitude <= {sys.float_info.max!r})")
    if not math.isfinite(x):
        _fail(path, value, "finite")
    _bounds(path, value, lo, hi, lo_open, hi_open)
    return x


def _choice(path: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        _fail(path, value, "one of " + ", ".join(repr(a) for a in allowed))
    return value


def _bool(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        _fail(path, value, "true or false")
    return value


def _name(path: str, value: Any) -> str:
    if not isinstance(value, str) or not value or not value.replace("_", "").isalnum():
        _fail(path, value, "a non-empty identifier (letters, digits, underscores)")
    return value


def _per_stage(path: str, value: Any, n: int, *, allow_none: bool = False, **rule) -> tuple:
    """A number, or a list with one number per stage, as a tuple of ``n`` values."""
    if value is None:
        if allow_none:
            return (None,) * n
        _fail(path, value, "a number or a list of one number per stage")
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            _fail(path, list(value), f"a number or a list of {n} numbers (one per stage)")
        out = []
        for i, v in enumerate(value):
            if v is None and allow_none:
                out.append(None)
            else:
                out.append(_num(f"{path}[{i}]", v, **rule))
        return tuple(out)
    return (_num(path, value, **rule),) * n


def _set(obj, name, value):
    object.__setattr__(obj, name, value)


# --------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------
#: what one period is (``scenario.time_unit``), and how many make a year (None: abstract)
TIME_UNITS: dict[str, float | None] = {
    "day": 365.0,
    "week": 52.0,
    "month": 12.0,
    "quarter": 4.0,
    "year": 1.0,
    "period": None,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class ScenarioConfig:
    """Which firm is simulated (``conf/scenario/*.yaml``)."""

    name: str = "multinational"
    description: str = ""
    time_unit: str = "week"

    def __post_init__(self):
        _name("scenario.name", self.name)
        if not isinstance(self.description, str):
            _fail("scenario.description", self.description, "a string")
        _choice("scenario.time_unit", self.time_unit, tuple(TIME_UNITS))

    @property
    def periods_per_year(self) -> float | None:
        """Periods in a year for the scenario's time unit (``None`` for an abstract period)."""
        return TIME_UNITS[self.time_unit]


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvironmentConfig:
    """Name of the environment preset (``conf/environment/*.yaml``); its values live in
    ``demand``, ``supply`` and ``culture``."""

    name: str = "stable"

    def __post_init__(self):
        _name("environment.name", self.name)


@dataclass(frozen=True, kw_only=True, slots=True)
class StrategyConfig:
    """Name and family of the management regime (``conf/strategy/*.yaml``).

    The family is a label carried into the results; no code branches on it or on the name.
    """

    name: str = "none"
    family: str = "baseline"

    def __post_init__(self):
        _name("strategy.name", self.name)
        _choice("strategy.family", self.family, ("baseline", "efficiency_only", "culture_aligned"))


@dataclass(frozen=True, kw_only=True, slots=True)
class NetworkConfig:
    """Supply network: ``stages`` echelons counted from the customer (stage 0 serves end
    customers), ``width`` teams per stage. Each team has one supplier in the next stage up;
    the top stage buys from an unlimited outside source."""

    stages: int = 4
    width: Any = 1
    roles: Any = None
    order_delay: Any = 2
    lead_time: Any = 2
    capacity: Any = None
    initial_inventory: Any = 12.0
    integer_units: bool = False

    def __post_init__(self):
        n = _num("network.stages", self.stages, lo=1, hi=12, integer=True)
        _set(self, "stages", n)
        width = _per_stage("network.width", self.width, n, lo=1, hi=64, integer=True)
        for k in range(1, n):
            if width[k] > width[k - 1]:
                _fail(
                    "network.width",
                    list(width),
                    "non-increasing from the customer up (each team has one supplier)",
                )
        _set(self, "width", width)
        if self.roles is None:
            roles = tuple(f"stage{k}" for k in range(n))
        else:
            if not isinstance(self.roles, (list, tuple)) or len(self.roles) != n:
                _fail("network.roles", self.roles, f"a list of {n} role names (one per stage)")
            roles = tuple(_name(f"network.roles[{k}]", r) for k, r in enumerate(self.roles))
            repeated = [r for k, r in enumerate(roles) if r in roles[:k]]
            if repeated:  # roles name the stages in the results (a categorical column)
                _fail("network.roles", list(roles), f"distinct role names ({repeated[0]!r} is repeated)")
        _set(self, "roles", roles)
        _set(
            self,
            "order_delay",
            _per_stage("network.order_delay", self.order_delay, n, lo=1, hi=52, integer=True),
        )
        _set(
            self,
            "lead_time",
            _per_stage("network.lead_time", self.lead_time, n, lo=1, hi=52, integer=True),
        )
        _set(
            self,
            "capacity",
            _per_stage(
                "network.capacity", self.capacity, n, allow_none=True, lo=0, lo_open=True, hi=_MAX_STOCK
            ),
        )
        _set(
            self,
            "initial_inventory",
            _per_stage("network.initial_inventory", self.initial_inventory, n, lo=0, hi=_MAX_STOCK),
        )
        _bool("network.integer_units", self.integer_units)

    @property
    def n_teams(self) -> int:
        return int(sum(self.width))


@dataclass(frozen=True, kw_only=True, slots=True)
class DemandConfig:
    """End-customer demand per sales team and period.

    D = max(0, μ_t + u_t), μ_t = (level + step)·(1 + trend·t)·(1 + seasonality·sin(2πt/P))
    ·(1 + shock), u_t = ρ·u_{t-1} + cv·level·ε_t.
    """

    level: float = 100.0
    trend: float = 0.0
    seasonality: float = 0.0
    season_period: int = 52
    rho: float = 0.0
    cv: float = 0.0
    shock_prob: float = 0.0
    shock_size: float = 0.0
    shock_duration: int = 4
    step_period: int = 0
    step_size: float = 0.0
    allow_negative: bool = False

    def __post_init__(self):
        _set(self, "level", _num("demand.level", self.level, lo=0, hi=_MAX_RATE))
        _set(self, "trend", _num("demand.trend", self.trend, lo=-0.01, hi=0.01))
        _set(self, "seasonality", _num("demand.seasonality", self.seasonality, lo=0, hi=1))
        _set(self, "season_period", _num("demand.season_period", self.season_period, lo=2, integer=True))
        _set(self, "rho", _num("demand.rho", self.rho, lo=-1, hi=1, lo_open=True, hi_open=True))
        _set(self, "cv", _num("demand.cv", self.cv, lo=0, hi=2))
        _set(self, "shock_prob", _num("demand.shock_prob", self.shock_prob, lo=0, hi=1))
        _set(self, "shock_size", _num("demand.shock_size", self.shock_size, lo=-1, hi=5))
        _set(
            self,
            "shock_duration",
            _num("demand.shock_duration", self.shock_duration, lo=1, hi=_MAX_PERIODS, integer=True),
        )
        _set(
            self,
            "step_period",
            _num("demand.step_period", self.step_period, lo=0, hi=_MAX_PERIODS, integer=True),
        )
        _set(self, "step_size", _num("demand.step_size", self.step_size, lo=-_MAX_RATE, hi=_MAX_RATE))
        _bool("demand.allow_negative", self.allow_negative)


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyConfig:
    """Anchoring-and-adjustment ordering (Sterman 1989).

    O = E + α_S·(S' − S − β·SL), S' = s_prime + cover·E; order-up-to is α_S = β = 1.
    """

    forecast: str = "smoothing"
    theta: float = 0.36
    ma_window: int = 4
    alpha_s: float = 0.26
    beta: float = 0.34
    s_prime: Any = None
    cover: Any = 0.0
    fixed_order_periods: int = 0
    allow_negative_orders: bool = False

    def __post_init__(self):
        _choice("policy.forecast", self.forecast, ("smoothing", "moving_average"))
        _set(self, "theta", _num("policy.theta", self.theta, lo=0, hi=1))
        _set(self, "ma_window", _num("policy.ma_window", self.ma_window, lo=1, hi=520, integer=True))
        _set(self, "alpha_s", _num("policy.alpha_s", self.alpha_s, lo=0, hi=1))
        _set(self, "beta", _num("policy.beta", self.beta, lo=0, hi=1))
        _set(
            self,
            "fixed_order_periods",
            _num("policy.fixed_order_periods", self.fixed_order_periods, lo=0, hi=_MAX_PERIODS, integer=True),
        )
        _bool("policy.allow_negative_orders", self.allow_negative_orders)


@dataclass(frozen=True, kw_only=True, slots=True)
class CostConfig:
    """Per-unit operating costs (money per unit or per unit-period), one value or one per stage."""

    holding: Any = 0.5
    backlog: Any = 1.0
    unit: Any = 0.0
    fixed: Any = 0.0
    material: float = 0.0
    unmet: str = "backlog"

    def __post_init__(self):
        _set(self, "material", _num("costs.material", self.material, lo=0, hi=_MAX_PRICE))
        _choice("costs.unmet", self.unmet, ("backlog", "lost_sales"))


@dataclass(frozen=True, kw_only=True, slots=True)
class SupplyConfig:
    """Disruptions of the outside source that feeds the top stage, and input-cost shocks
    (episodes during which the material price is multiplied by 1 + ``cost_shock_size``)."""

    disruption_prob: float = 0.0
    disruption_duration: int = 4
    disruption_severity: float = 0.5
    cost_shock_prob: float = 0.0
    cost_shock_size: float = 0.0
    cost_shock_duration: int = 8

    def __post_init__(self):
        _set(self, "disruption_prob", _num("supply.disruption_prob", self.disruption_prob, lo=0, hi=1))
        _set(
            self,
            "disruption_duration",
            _num("supply.disruption_duration", self.disruption_duration, lo=1, hi=_MAX_PERIODS, integer=True),
        )
        _set(
            self,
            "disruption_severity",
            _num("supply.disruption_severity", self.disruption_severity, lo=0, hi=1),
        )
        _set(self, "cost_shock_prob", _num("supply.cost_shock_prob", self.cost_shock_prob, lo=0, hi=1))
        _set(self, "cost_shock_size", _num("supply.cost_shock_size", self.cost_shock_size, lo=-0.9, hi=5))
        _set(
            self,
            "cost_shock_duration",
            _num("supply.cost_shock_duration", self.cost_shock_duration, lo=1, hi=_MAX_PERIODS, integer=True),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class FinanceConfig:
    """Cash, debt and a credit line whose limit follows a covenant on trailing EBITDA."""

    enabled: bool = True
    price: float = 10.0
    initial_cash: float = 50_000.0
    min_cash: float = 10_000.0
    interest_rate: float = 0.0015
    covenant_multiple: float = 3.0
    covenant_window: int = 52
    grace_periods: int = 4
    receivable_lag: int = 4
    payable_lag: int = 4

    def __post_init__(self):
        _bool("finance.enabled", self.enabled)
        _set(self, "price", _num("finance.price", self.price, lo=0, hi=_MAX_PRICE))
        _set(self, "initial_cash", _num("finance.initial_cash", self.initial_cash, lo=0, hi=_MAX_CASH))
        _set(self, "min_cash", _num("finance.min_cash", self.min_cash, lo=0, hi=_MAX_CASH))
        _set(self, "interest_rate", _num("finance.interest_rate", self.interest_rate, lo=0, hi=0.1))
        _set(
            self,
            "covenant_multiple",
            _num("finance.covenant_multiple", self.covenant_multiple, lo=0, hi=20),
        )
        _set(
            self,
            "covenant_window",
            _num("finance.covenant_window", self.covenant_window, lo=1, hi=520, integer=True),
        )
        _set(
            self,
            "grace_periods",
            _num("finance.grace_periods", self.grace_periods, lo=0, hi=_MAX_PERIODS, integer=True),
        )
        _set(
            self,
            "receivable_lag",
            _num("finance.receivable_lag", self.receivable_lag, lo=0, hi=52, integer=True),
        )
        _set(self, "payable_lag", _num("finance.payable_lag", self.payable_lag, lo=0, hi=52, integer=True))


@dataclass(frozen=True, kw_only=True, slots=True)
class CultureConfig:
    """March (1991) culture and learning layer, and how knowledge drives decisions.

    Socialisation p1, code learning p2, turnover p3 and turbulence p4 act on ``dims``
    dimensions of reality held by ``members`` individuals per team, for ``burn_in`` learning
    periods before the firm starts operating and then once every ``every`` periods. The code learns from a
    superior group chosen by individual ``performance`` (March) or by teams' accountability
    ``score`` (the top ``superior_share`` of teams). A team's decision quality q = clip(K, 0, 1),
    from its knowledge K, sets its supply-line weight β·(1 − λ_β(1 − q)), forecast noise
    σ_F(1 − q) and a cost premium κ_c(1 − q) on processing, fixed and material cost
    (docs/model.md §7.15).
    """

    enabled: bool = False
    dims: int = 30
    members: int = 50
    p1: float = 0.1
    p2: float = 0.5
    p3: float = 0.0
    p4: float = 0.0
    burn_in: int = 0
    every: int = 1
    superior: str = "performance"
    superior_share: float = 0.3
    beta_sensitivity: float = 0.5
    forecast_noise: float = 0.2
    cost_sensitivity: float = 0.2

    def __post_init__(self):
        _bool("culture.enabled", self.enabled)
        _set(self, "dims", _num("culture.dims", self.dims, lo=1, hi=64, integer=True))
        _set(self, "members", _num("culture.members", self.members, lo=1, hi=10_000, integer=True))
        for p in ("p1", "p2", "p3", "p4"):
            _set(self, p, _num(f"culture.{p}", getattr(self, p), lo=0, hi=1))
        _set(self, "burn_in", _num("culture.burn_in", self.burn_in, lo=0, hi=10_000, integer=True))
        _set(self, "every", _num("culture.every", self.every, lo=1, hi=520, integer=True))
        _choice("culture.superior", self.superior, ("performance", "score"))
        _set(
            self,
            "superior_share",
            _num("culture.superior_share", self.superior_share, lo=0, hi=1, lo_open=True),
        )
        _set(self, "beta_sensitivity", _num("culture.beta_sensitivity", self.beta_sensitivity, lo=0, hi=1))
        _set(self, "forecast_noise", _num("culture.forecast_noise", self.forecast_noise, lo=0, hi=1))
        _set(self, "cost_sensitivity", _num("culture.cost_sensitivity", self.cost_sensitivity, lo=0, hi=2))


@dataclass(frozen=True, kw_only=True, slots=True)
class ManagementConfig:
    """Accountability, adaptation and the management programmes (BPO, BPM, culture programme).

    Every strategy is a setting of these numbers; no code looks at a strategy's name.
    """

    accountability_weight: float = 0.0
    score_window: int = 13
    adapt_every: int = 0
    adapt_step: float = 0.1
    bias_min: float = 0.5
    bias_max: float = 2.0
    execution_noise: float = 0.0
    initial_maturity: float = 0.0
    bpo_every: int = 0
    bpo_size: float = 0.1
    bpo_cost: float = 0.0
    bpo_target: str = "worst_local"
    bpo_erosion: float = 0.05
    bpm_rate: float = 0.0
    bpm_cost: float = 0.0
    bpm_focus: str = "uniform"
    alignment_rate: float = 0.0
    alignment_cost: float = 0.0
    alignment_weight: float = 0.8
    socialisation_boost: float = 0.0

    def __post_init__(self):
        m = "management."
        _set(
            self,
            "accountability_weight",
            _num(m + "accountability_weight", self.accountability_weight, lo=0, hi=1),
        )
        _set(self, "score_window", _num(m + "score_window", self.score_window, lo=1, hi=520, integer=True))
        _set(self, "adapt_every", _num(m + "adapt_every", self.adapt_every, lo=0, hi=520, integer=True))
        _set(self, "adapt_step", _num(m + "adapt_step", self.adapt_step, lo=0, hi=1))
        _set(self, "bias_min", _num(m + "bias_min", self.bias_min, lo=0, lo_open=True, hi=1))
        _set(self, "bias_max", _num(m + "bias_max", self.bias_max, lo=1, hi=10))
        _set(self, "execution_noise", _num(m + "execution_noise", self.execution_noise, lo=0, hi=1))
        _set(self, "initial_maturity", _num(m + "initial_maturity", self.initial_maturity, lo=0, hi=1))
        _set(self, "bpo_every", _num(m + "bpo_every", self.bpo_every, lo=0, hi=520, integer=True))
        _set(self, "bpo_size", _num(m + "bpo_size", self.bpo_size, lo=0, hi=1))
        _set(self, "bpo_cost", _num(m + "bpo_cost", self.bpo_cost, lo=0, hi=_MAX_PERIOD_COST))
        _choice(m + "bpo_target", self.bpo_target, ("worst_local", "constraint"))
        _set(self, "bpo_erosion", _num(m + "bpo_erosion", self.bpo_erosion, lo=0, hi=1))
        _set(self, "bpm_rate", _num(m + "bpm_rate", self.bpm_rate, lo=0, hi=1))
        _set(self, "bpm_cost", _num(m + "bpm_cost", self.bpm_cost, lo=0, hi=_MAX_PERIOD_COST))
        _choice(m + "bpm_focus", self.bpm_focus, ("uniform", "constraint"))
        _set(self, "alignment_rate", _num(m + "alignment_rate", self.alignment_rate, lo=0, hi=1))
        _set(
            self, "alignment_cost", _num(m + "alignment_cost", self.alignment_cost, lo=0, hi=_MAX_PERIOD_COST)
        )
        _set(self, "alignment_weight", _num(m + "alignment_weight", self.alignment_weight, lo=0, hi=1))
        _set(
            self, "socialisation_boost", _num(m + "socialisation_boost", self.socialisation_boost, lo=0, hi=1)
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class OutputConfig:
    """What a command-line run writes: team records (``teams``), and the sweep's name, which
    names its directory ``multirun/<name>/`` (so a sweep run again finds its finished runs)."""

    teams: bool = False
    name: str = "sweep"

    def __post_init__(self):
        _bool("output.teams", self.teams)
        _name("output.name", self.name)


#: per-stage fields: one number, or a list with one number per stage
_PER_STAGE = (
    ("network", "width"),
    ("network", "order_delay"),
    ("network", "lead_time"),
    ("network", "capacity"),
    ("network", "initial_inventory"),
    ("policy", "s_prime"),
    ("policy", "cover"),
    ("costs", "holding"),
    ("costs", "backlog"),
    ("costs", "unit"),
    ("costs", "fixed"),
)

_SECTIONS: dict[str, type] = {
    "scenario": ScenarioConfig,
    "strategy": StrategyConfig,
    "environment": EnvironmentConfig,
    "network": NetworkConfig,
    "demand": DemandConfig,
    "policy": PolicyConfig,
    "costs": CostConfig,
    "supply": SupplyConfig,
    "finance": FinanceConfig,
    "culture": CultureConfig,
    "management": ManagementConfig,
    "output": OutputConfig,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    """The whole validated configuration of a simulation.

    Per-stage values (``policy.s_prime``, ``costs.holding``, ...) are normalised to tuples with
    one entry per stage. Build one with :func:`compose` (from ``conf/``) or
    :func:`config_from_dict`; change one with :meth:`replace`.
    """

    n_orgs: int = 8
    periods: int = 260
    seed: int = 0
    engine: str = "mesa"
    information: str = "local"
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    environment: EnvironmentConfig = field(default_factory=EnvironmentConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    demand: DemandConfig = field(default_factory=DemandConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    costs: CostConfig = field(default_factory=CostConfig)
    supply: SupplyConfig = field(default_factory=SupplyConfig)
    finance: FinanceConfig = field(default_factory=FinanceConfig)
    culture: CultureConfig = field(default_factory=CultureConfig)
    management: ManagementConfig = field(default_factory=ManagementConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def __post_init__(self):
        _set(self, "n_orgs", _num("n_orgs", self.n_orgs, lo=1, hi=10_000_000, integer=True))
        _set(self, "periods", _num("periods", self.periods, lo=1, hi=_MAX_PERIODS, integer=True))
        _set(self, "seed", _num("seed", self.seed, lo=0, integer=True))
        _choice("engine", self.engine, ("mesa", "numba"))
        _choice("information", self.information, ("local", "shared"))
        for name, cls in _SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                _fail(name, getattr(self, name), f"a {cls.__name__}")
        n = self.network.stages
        # per-stage values need the number of stages, so they are normalised here, into new
        # section objects (a section passed in by the caller is never changed)
        p = dataclasses.replace(
            self.policy,
            s_prime=_per_stage(
                "policy.s_prime", self.policy.s_prime, n, allow_none=True, lo=-_MAX_STOCK, hi=_MAX_STOCK
            ),
            cover=_per_stage("policy.cover", self.policy.cover, n, lo=0, hi=520),
        )
        c = dataclasses.replace(
            self.costs,
            **{
                k: _per_stage(
                    f"costs.{k}",
                    getattr(self.costs, k),
                    n,
                    lo=0,
                    hi=_MAX_PERIOD_COST if k == "fixed" else _MAX_PRICE,
                )
                for k in ("holding", "backlog", "unit", "fixed")
            },
        )
        _set(self, "policy", p)
        _set(self, "costs", c)
        if p.allow_negative_orders and any(w != 1 for w in self.network.width):
            _fail(
                "policy.allow_negative_orders",
                True,
                "false unless the network is serial (network.width == 1 at every stage)",
            )
        if self.network.integer_units:  # whole units need whole initial stocks and pipelines
            inv = self.network.initial_inventory
            if not all(float(v).is_integer() for v in inv):
                shown = inv[0] if len(set(inv)) == 1 else list(inv)
                _fail("network.initial_inventory", shown, "whole numbers when network.integer_units is true")
            if not float(self.demand.level).is_integer():
                _fail("demand.level", self.demand.level, "a whole number when network.integer_units is true")
        if p.allow_negative_orders and self.network.integer_units:
            _fail("policy.allow_negative_orders", True, "false when network.integer_units is true")
        if p.allow_negative_orders:
            # orders without a floor make the ordering rule a linear system, stable only when the
            # supply line weighs at least half (docs/model.md §7.10); with the culture layer on,
            # an ignorant team weighs it β·(1 − λ_β)
            why = "when policy.allow_negative_orders is true (below it, orders without a floor diverge)"
            if p.beta < 0.5:
                _fail("policy.beta", p.beta, f">= 0.5 {why}")
            if self.culture.enabled and p.beta * (1.0 - self.culture.beta_sensitivity) < 0.5:
                _fail(
                    "culture.beta_sensitivity",
                    self.culture.beta_sensitivity,
                    f"<= 1 − 0.5/policy.beta = {1 - 0.5 / p.beta:.4g}, so that an ignorant team's "
                    f"supply-line weight β·(1 − λ_β) stays >= 0.5, {why}",
                )

    # ---- conveniences ------------------------------------------------------------------
    def replace(self, **changes) -> Config:
        """A new validated config with top-level fields or whole sections replaced.

        Dotted section updates are accepted as ``replace(**{"policy.theta": 0.2})``.
        """
        return config_from_dict(with_changes(self.to_dict(), changes))

    def to_dict(self) -> dict:
        """Plain nested dict, the inverse of :func:`config_from_dict`.

        A per-stage value that is the same at every stage is written as one number (and default
        role names as null), so a dict can be changed to another number of stages.
        """

        def conv(obj):
            if dataclasses.is_dataclass(obj):
                return {f.name: conv(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
            if isinstance(obj, (list, tuple)):
                return [conv(v) for v in obj]
            return obj

        data = conv(self)
        for section, key in _PER_STAGE:
            values = data[section][key]
            if isinstance(values, list) and values and all(v == values[0] for v in values):
                data[section][key] = values[0]
        if data["network"]["roles"] == [f"stage{k}" for k in range(self.network.stages)]:
            data["network"]["roles"] = None
        return data


#: role names of the classic networks, customer first: a scenario's roles that follow one of
#: them are extended (or cut) along it when ``network.stages`` changes
ROLE_SEQUENCES = (
    ("retailer", "wholesaler", "distributor", "factory"),
    ("sales", "distribution", "production", "sourcing"),
)


def _roles_for(roles: Any, stages: int) -> Any:
    """``roles`` fitted to ``stages`` if they follow a :data:`ROLE_SEQUENCES` entry (further
    stages beyond the sequence are named ``stage<k>``); otherwise unchanged."""
    if not isinstance(roles, (list, tuple)) or len(roles) == stages or not roles:
        return roles
    for seq in ROLE_SEQUENCES:
        if tuple(roles) == seq[: len(roles)]:
            return [*seq[:stages], *(f"stage{k}" for k in range(len(seq), stages))]
    return roles


def _fit_stages(data: dict) -> dict:
    """Check every per-stage value of a config dict against ``network.stages`` at once.

    A scalar applies to every stage and role names that follow a classic sequence are fitted;
    every list of another length is named in one ConfigError, so that changing the number of
    stages takes one round trip (``network.stages=2`` on a four-stage scenario)."""
    net = data.get("network", {})
    if not isinstance(net, dict):
        return data
    stages = net.get("stages", NetworkConfig.__dataclass_fields__["stages"].default)
    if isinstance(stages, bool) or not isinstance(stages, numbers.Integral) or not 1 <= stages <= 12:
        return data  # the network's own check names a bad stage count
    stages = int(stages)
    if net.get("roles") is not None:
        fitted = _roles_for(net["roles"], stages)
        if fitted is not net["roles"]:
            data = {**data, "network": {**net, "roles": fitted}}
    wrong = []
    for section, key in (*_PER_STAGE[:5], ("network", "roles"), *_PER_STAGE[5:]):
        values = (data.get(section) or {}).get(key) if isinstance(data.get(section, {}), dict) else None
        if isinstance(values, (list, tuple)) and len(values) != stages:
            wrong.append(f"{section}.{key} ({len(values)})")
    if wrong:
        raise ConfigError(
            f"network.stages == {stages}, but {len(wrong)} per-stage value{'s' if len(wrong) > 1 else ''} "
            f"{'have' if len(wrong) > 1 else 'has'} another number of entries: {', '.join(wrong)}; "
            f"give each {stages} values, customer first (or one value for every stage)"
        )
    return data


def _build(cls, data: Any, path: str):
    if dataclasses.is_dataclass(data) and isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        _fail(path or "config", data, "a mapping")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"{where}{unknown[0]} is not a config key; allowed keys: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for key, value in data.items():
        if cls is Config and key in _SECTIONS:
            kwargs[key] = _build(_SECTIONS[key], value, key)
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - defensive
        raise ConfigError(f"{path or 'config'}: {exc}") from None


def with_changes(data: dict, changes: dict) -> dict:
    """A copy of a config dict with dotted-key ``changes`` applied.

    Only the dicts on the changed paths are copied, so one base dict can serve many variants
    (one per firm of a ``params`` table) without being converted again.
    """
    out = dict(data)
    for key, value in changes.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            if part not in node or not isinstance(node[part], dict):
                raise ConfigError(f"{key} is not a config key")
            node[part] = dict(node[part])
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"{key} is not a config key")
        node[parts[-1]] = value.to_dict() if hasattr(value, "to_dict") else value
    return out


def config_from_dict(data: Mapping) -> Config:
    """Build and validate a :class:`Config` from a nested mapping (missing keys take defaults).

    Every per-stage value is checked against ``network.stages`` first, in one message
    (:func:`_fit_stages`)."""
    if not isinstance(data, Mapping):
        _fail("config", data, "a mapping of config sections and values (e.g. {'n_orgs': 4})")
    return _build(Config, _fit_stages(dict(data)), "")


# --------------------------------------------------------------------------------------------
# Hydra edge
# --------------------------------------------------------------------------------------------
def _schema_node():
    """The dataclass schema as an (unfrozen) OmegaConf node, so Hydra can merge overrides."""
    from omegaconf import DictConfig, OmegaConf

    def unfreeze(node):
        node._set_flag("readonly", None)
        for key in node.keys():
            child = node._get_node(key)
            if isinstance(child, DictConfig):
                unfreeze(child)
        return node

    return unfreeze(OmegaConf.structured(Config))


def register_configs() -> None:
    """Store the schema in Hydra's ConfigStore as ``orgsim_schema`` (the base of config.yaml),
    once per process (Hydra hands out copies of a stored node, so it is never changed)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    if "orgsim_schema.yaml" not in store.repo:
        store.store(name="orgsim_schema", node=_schema_node())


def config_dir() -> Path:
    """The ``conf/`` directory: the repository's, or the copy shipped inside the package."""
    return CONF_DIR if (CONF_DIR / "config.yaml").exists() else _DATA_CONF_DIR


def compose_hydra(overrides: list[str] | None = None, *, hydra: bool = False):
    """``conf/`` composed with Hydra overrides as an OmegaConf config (not yet validated); with
    ``hydra`` it keeps Hydra's own node (run and sweep directories, launcher, mode). The one place
    that composes, for :func:`compose` and the command line's validation.

    A config group set to null (``scenario=null``) is a ConfigError naming the group and its
    options (Hydra's message names neither).
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = _override_list(overrides)
    roots = [config_dir()]
    for ov in overrides:  # a researcher's own config directory (--config-dir)
        key, _, value = ov.partition("=")
        if key == "hydra.searchpath":
            roots += [
                Path(p.strip().removeprefix("file://")) for p in value.strip("[]").split(",") if p.strip()
            ]
    for ov in overrides:
        key, _, value = ov.partition("=")
        name = key.lstrip("+~")
        groups = [root / name for root in roots if name and (root / name).is_dir()]
        if not groups or key.startswith("~"):
            continue
        options = sorted({p.stem for group in groups for p in group.glob("*.yaml")})
        if value.strip() in ("null", "None"):
            _fail(name, None, "one of " + ", ".join(map(repr, options)))
        plugins = name.startswith("hydra")  # Hydra's plugins add options (hydra/launcher=ray)
        if (
            value not in options
            and (not plugins or "/" in value or ".." in value)
            and "," not in value
            and not value.startswith(("choice(", "range(", "glob("))
        ):
            # a path (scenario=../x) or an unknown option: Hydra's message would mangle the name
            _fail(name, value, "one of " + ", ".join(map(repr, options)))
    register_configs()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=overrides, return_hydra_config=hydra)


def check_repeated(overrides: list[str]) -> None:
    """Raise ConfigError if a key is given twice (``strategy=bso strategy=bpo``): Hydra would
    silently take the last. The command line refuses that; :func:`compose` lets a later entry
    of a list built in code win, as Hydra does."""
    seen: dict[str, str] = {}
    for ov in overrides:
        if ov.startswith("~"):  # a deletion, which a later +key=value may refill
            continue
        key = ov.partition("=")[0].lstrip("+")
        if key in seen:
            raise ConfigError(f"{key} is given twice ({seen[key]} and {ov}), must be given once")
        seen[key] = ov


#: top-level nodes of a composed config that belong to a tool, not to the model's Config:
#: Hydra's, an experiment's name, and the settings of a calibration or a sensitivity analysis
#: (``conf/calibration/``, ``conf/sensitivity/``), which their tools read from the composed config
TOOL_NODES = ("hydra", "experiment", "calibration", "sensitivity")


def job_dict(cfg) -> dict:
    """The run's part of a composed config as a plain, resolved dict (the :data:`TOOL_NODES`
    left out)."""
    from omegaconf import OmegaConf

    job = OmegaConf.masked_copy(cfg, [k for k in cfg if k not in TOOL_NODES])
    return OmegaConf.to_container(job, resolve=True)


def compose_dict(overrides: list[str] | None = None) -> dict:
    """Compose ``conf/`` with Hydra overrides into a plain dict (not yet validated)."""
    return job_dict(compose_hydra(overrides))


def _override_list(overrides: Any) -> list[str]:
    """``overrides`` as a list of strings; a TypeError says what is expected otherwise."""
    expected = 'overrides must be a list of strings like "key=value" (e.g. ["n_orgs=4"])'
    if overrides is None:
        return []
    if isinstance(overrides, (str, bytes)) or not isinstance(overrides, Iterable):
        raise TypeError(f"{expected}, not {_show(overrides)}")
    out = list(overrides)
    for item in out:
        if not isinstance(item, str):
            raise TypeError(f"{expected}; {_show(item)} is not a string")
    return out


def compose(overrides: list[str] | None = None) -> Config:
    """A validated :class:`Config` from ``conf/`` and Hydra overrides.

    Parameters
    ----------
    overrides : list of str, optional
        Hydra overrides, e.g. ``["scenario=beer_game", "policy.theta=0.2"]``. As in Hydra, a
        later entry for the same key wins (``[*base, "strategy=bso"]``); the command line,
        where a key typed twice is a mistake, refuses it.

    Examples
    --------
    >>> import orgsim
    >>> cfg = orgsim.compose(["scenario=beer_game"])
    >>> cfg.network.roles
    ('retailer', 'wholesaler', 'distributor', 'factory')
    """
    overrides = _override_list(overrides)
    try:
        data = compose_dict(overrides)
    except Exception as exc:  # Hydra / OmegaConf errors -> one clear line
        raise ConfigError(hydra_error_line(exc)) from None
    return config_from_dict(data)


_OC_TYPES = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false", "String": "a string"}


def hydra_error_line(exc: BaseException) -> str:
    """One line naming field, value and rule out of a (multi-line) Hydra or OmegaConf error."""
    import re

    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for err in chain:  # an OmegaConf type error: "Value 'abc' of type 'str' could not be converted to Float"
        key = getattr(err, "full_key", None)
        m = re.search(r"Value '(.*)' of type '\w+' could not be converted to (\w+)", str(err))
        if key and m:
            return f"{key} == {m.group(1)!r}, must be {_OC_TYPES.get(m.group(2), m.group(2))}"
    for err in chain:  # "Value 'maybe' is not a valid bool (type str)"
        key = getattr(err, "full_key", None)
        m = re.search(r"Value '(.*)' is not a valid bool", str(err))
        if key and m:
            return f"{key} == {m.group(1)!r}, must be true or false"
    for err in chain:  # "field 'n_orgs' is not Optional": validation states the rule for null
        key = getattr(err, "full_key", None)
        if key and re.search(r"is not Optional", str(err)):
            return _null_rule(key)
    for err in chain:
        m = re.search(r"Could not override '([^']+)'", str(err))
        if m:
            return f"{m.group(1)} is not a config key (see `orgsim --cfg job` for the keys)"
    for err in chain:  # "Could not find 'environment/foo'", "'hydra/launcher/foo'", "'environment/'"
        m = re.search(r"Could not find '(.+)/([^/']*)'", str(err))
        if m:
            group = m.group(1)
            options = sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))
            allowed = ", ".join(repr(o) for o in options) or "an option of the group"
            plugins = " (or a Hydra launcher plugin's name)" if group == "hydra/launcher" else ""
            return f"{group} == {m.group(2)!r}, must be one of {allowed}{plugins}"
    for err in chain:  # "Ambiguous value for argument 'seed=0,1'" (Hydra's hints follow on more lines)
        m = re.search(r"Ambiguous value for argument '([^'=]+)=([^']*)'", str(err))
        if m:
            return (
                f"{m.group(1)} == {m.group(2)!r}, must be one value: [{m.group(2)}] for a list, "
                f"'{m.group(2)}' quoted for a string, or add -m to sweep over it"
            )
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    full_key = getattr(exc, "full_key", None)
    if full_key and full_key not in msg:
        return f"{full_key}: {msg}"
    return msg


def _null_rule(key: str) -> str:
    """The validation message for null at the dotted ``key`` (which OmegaConf refuses without a
    rule), e.g. ``n_orgs == None, must be an integer``."""
    data: Any = None
    for part in reversed(key.split(".")):
        data = {part: data}
    try:
        config_from_dict(data)
    except ConfigError as exc:
        return str(exc)
    return f"{key} == None, must not be null"  # pragma: no cover - every non-optional field rejects None
