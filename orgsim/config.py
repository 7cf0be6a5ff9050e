"""Typed, frozen, validated configuration.

Every section of the model is a frozen dataclass checked at construction. An invalid value
raises :class:`ConfigError` whose message names the field, the value and what is allowed, in the
style of scikit-learn's ``check_scalar``::

    network.lead_time == -1, must be >= 1

Each field is declared once, in its dataclass: its default, and in its metadata a :class:`Param`
(kind, range, unit, meaning, source; every one by dotted key from :func:`parameters`). One
validator reads the declarations; the rules that bind several fields are explicit code at the
end of ``Config.__post_init__``. The parameter tables of ``docs/model.md`` §12 are generated
from the same declarations (``python -m orgsim._param_table``).

Hydra stays at the edge: :func:`register_configs` stores these dataclasses as the schema of
``conf/config.yaml``, and :func:`compose` turns a list of Hydra overrides into a validated
:class:`Config` for library use.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import sys
import typing
from collections.abc import Callable, Iterable, Mapping
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
    "Param",
    "PolicyConfig",
    "ScenarioConfig",
    "StrategyConfig",
    "SupplyConfig",
    "compose",
    "config_from_dict",
    "parameters",
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
# parameters: one declaration per field (its default, rule, unit, meaning and source)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Param:
    """What a config field is: its rule, unit, meaning and source, declared once.

    Stored in the field's metadata (``dataclasses.fields(NetworkConfig)[0].metadata["param"]``,
    or :func:`parameters`), it drives the one validator (:meth:`validate`), the parameter tables
    of ``docs/model.md`` §12 (``python -m orgsim._param_table``) and the config tests.

    ``kind`` is ``"number"`` (finite, within ``lo``/``hi``, each bound closed unless
    ``lo_open``/``hi_open``; ``integer``: integral, held as ``int``), ``"choice"`` (one of
    ``choices``), ``"flag"`` (true or false), ``"identifier"`` (letters, digits, underscores),
    ``"text"`` (any string) or ``"roles"`` (the stage names of ``network.roles``). A
    ``per_stage`` number takes one value or a list of one per stage (``nullable``: each may be
    null). ``also`` is a further check of the field's value alone; ``rule`` states, for the
    docs, what ``also`` or a rule across fields (:class:`Config`) adds. ``null_means`` says
    what null stands for; ``unit`` is ``"–"`` for a pure number or a label.
    """

    kind: str
    meaning: str
    unit: str
    source: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False
    per_stage: bool = False
    nullable: bool = False
    choices: tuple[str, ...] = ()
    null_means: str = ""
    rule: str = ""
    also: Callable[[str, Any], None] | None = None

    def validate(self, path: str, value: Any, stages: int | None = None) -> Any:
        """``value`` checked against this declaration and normalised (an ``int`` or ``float``;
        a tuple of ``stages`` values for a per-stage field or the roles); raises ConfigError
        naming ``path``, the value and the rule."""
        if self.kind == "number":
            bounds = dict(lo=self.lo, hi=self.hi, lo_open=self.lo_open, hi_open=self.hi_open)
            if self.per_stage:
                out = _per_stage(
                    path, value, stages, allow_none=self.nullable, integer=self.integer, **bounds
                )
            elif value is None and self.nullable:
                out = None
            else:
                out = _num(path, value, integer=self.integer, **bounds)
        elif self.kind == "choice":
            out = _choice(path, value, self.choices)
        elif self.kind == "flag":
            out = _bool(path, value)
        elif self.kind == "identifier":
            out = _name(path, value)
        elif self.kind == "text":
            if not isinstance(value, str):
                _fail(path, value, "a string")
            out = value
        elif self.kind == "roles":
            out = _roles(path, value, stages)
        else:  # pragma: no cover - _param refuses other kinds
            raise AssertionError(self.kind)
        if self.also is not None:
            self.also(path, out)
        return out


_KINDS = ("number", "choice", "flag", "identifier", "text", "roles")


def _param(*, kind: str = "number", **declared) -> dict[str, Param]:
    """A field's metadata, ``{"param": Param(kind, **declared)}``; a declaration that the
    validator could not enforce, or that the docs could not show, is refused at import."""
    p = Param(kind=kind, **declared)
    if kind not in _KINDS or not (p.meaning and p.unit and p.source):
        raise TypeError(f"a parameter needs a kind among {_KINDS}, a meaning, a unit and a source: {p}")
    if p.integer and not (p.lo is not None and p.hi is not None and _INT64_MIN <= p.lo <= p.hi <= _INT64_MAX):
        # both engines (and Numba) hold integers as int64
        raise TypeError(f"an integer parameter needs bounds within the int64 range: {p}")
    if kind == "number" and (p.lo is None or p.hi is None):
        raise TypeError(f"a number parameter needs both bounds (the docs print its interval): {p}")
    if (kind == "choice") != bool(p.choices):
        raise TypeError(f"choices belong to (and are needed by) a choice parameter: {p}")
    return {"param": p}


def _validate(obj: Any, prefix: str, stages: int | None = None) -> None:
    """The one validator: every declared field of ``obj`` (a config section, or the top level
    with ``prefix`` ""), in the order of its fields, checked against its :class:`Param` and set
    to its normalised value. Per-stage fields (and the roles) need the number of stages: without
    ``stages`` they are left to :class:`Config`, which knows it."""
    for name, p in _declared(type(obj)).items():
        if (p.per_stage or p.kind == "roles") and stages is None:
            continue
        _set(obj, name, p.validate(prefix + name, getattr(obj, name), stages))


@functools.cache
def _declared(cls: type) -> dict[str, Param]:
    """``{field name: Param}`` of a config dataclass, in field order (its sections have none)."""
    return {f.name: f.metadata["param"] for f in dataclasses.fields(cls) if "param" in f.metadata}


def parameters() -> dict[str, Param]:
    """Every config field's declaration, by dotted key (``"n_orgs"``, ``"policy.theta"``), in the
    order of :class:`Config`'s fields and sections.

    Examples
    --------
    >>> from orgsim.config import parameters
    >>> p = parameters()["demand.rho"]
    >>> (p.lo, p.hi, p.lo_open, p.hi_open)
    (-1, 1, True, True)
    """
    out = dict(_declared(Config))
    for section, cls in _SECTIONS.items():
        out.update({f"{section}.{name}": p for name, p in _declared(cls).items()})
    return out


def _roles(path: str, value: Any, stages: int) -> tuple[str, ...]:
    """The stage names: default ``stage<k>``, or ``stages`` distinct identifiers."""
    if value is None:
        return tuple(f"stage{k}" for k in range(stages))
    if not isinstance(value, (list, tuple)) or len(value) != stages:
        _fail(path, value, f"a list of {stages} role names (one per stage)")
    roles = tuple(_name(f"{path}[{k}]", r) for k, r in enumerate(value))
    repeated = [r for k, r in enumerate(roles) if r in roles[:k]]
    if repeated:  # roles name the stages in the results (a categorical column)
        _fail(path, list(roles), f"distinct role names ({repeated[0]!r} is repeated)")
    return roles


def _non_increasing(path: str, width: tuple[int, ...]) -> None:
    """Each team has one supplier, so a stage has at most as many teams as the one it supplies."""
    for k in range(1, len(width)):
        if width[k] > width[k - 1]:
            _fail(path, list(width), "non-increasing from the customer up (each team has one supplier)")


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

#: sources that many fields share (docs/model.md §12 explains the words)
_LABEL = "n/a: a label"
_MARCH = "March (1991)"
_STERMAN = "Sterman (1989) mean estimate"
_ILLUSTRATIVE_92 = "illustrative (§9.2)"


@dataclass(frozen=True, kw_only=True, slots=True)
class ScenarioConfig:
    """Which firm is simulated (``conf/scenario/*.yaml``)."""

    name: str = field(
        default="multinational",
        metadata=_param(kind="identifier", meaning="scenario label", unit="–", source=_LABEL),
    )
    description: str = field(
        default="", metadata=_param(kind="text", meaning="free text", unit="–", source=_LABEL)
    )
    time_unit: str = field(
        default="week",
        metadata=_param(
            kind="choice",
            choices=tuple(TIME_UNITS),
            meaning="what one period is, for labels (summaries, figures) and for the periods in a year "
            "(NPV in `orgsim.compare`)",
            unit="–",
            source="n/a: a label (multinational and the beer game are weekly, §2.6)",
        ),
    )

    def __post_init__(self):
        _validate(self, "scenario.")

    @property
    def periods_per_year(self) -> float | None:
        """Periods in a year for the scenario's time unit (``None`` for an abstract period)."""
        return TIME_UNITS[self.time_unit]


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvironmentConfig:
    """Name of the environment preset (``conf/environment/*.yaml``); its values live in
    ``demand``, ``supply`` and ``culture``."""

    name: str = field(
        default="stable",
        metadata=_param(kind="identifier", meaning="environment preset label", unit="–", source=_LABEL),
    )

    def __post_init__(self):
        _validate(self, "environment.")


@dataclass(frozen=True, kw_only=True, slots=True)
class StrategyConfig:
    """Name and family of the management regime (``conf/strategy/*.yaml``).

    The family is a label carried into the results; no code branches on it or on the name.
    """

    name: str = field(
        default="none",
        metadata=_param(
            kind="identifier", meaning="strategy label (no code branches on it)", unit="–", source=_LABEL
        ),
    )
    family: str = field(
        default="baseline",
        metadata=_param(
            kind="choice",
            choices=("baseline", "efficiency_only", "culture_aligned"),
            meaning="family label carried into results (no code branches on it)",
            unit="–",
            source="design choice (project brief: efficiency-only and culture-aligned families, after the "
            "seed article's BPO, BPM and BSO, §1.1)",
        ),
    )

    def __post_init__(self):
        _validate(self, "strategy.")


@dataclass(frozen=True, kw_only=True, slots=True)
class NetworkConfig:
    """Supply network: ``stages`` echelons counted from the customer (stage 0 serves end
    customers), ``width`` teams per stage. Each team has one supplier in the next stage up;
    the top stage buys from an unlimited outside source."""

    stages: int = field(
        default=4,
        metadata=_param(
            lo=1,
            hi=12,
            integer=True,
            meaning="number of stages from the customer up",
            unit="stages",
            source="beer game (Sterman 1989)",
        ),
    )
    width: Any = field(
        default=1,
        metadata=_param(
            lo=1,
            hi=64,
            integer=True,
            per_stage=True,
            also=_non_increasing,
            rule="non-increasing from the customer up",
            meaning="teams per stage",
            unit="teams",
            source="illustrative: three regions and one global sourcing team, after the seed article's case "
            "(§1.1, §9.1)",
        ),
    )
    roles: Any = field(
        default=None,
        metadata=_param(
            kind="roles",
            null_means="`stage0`, `stage1`, …",
            meaning="role name of each stage (sets the default local metric, §7.16)",
            unit="–",
            source="design choice (project brief: teams are sourcing, production, distribution and sales, "
            "after the seed article's case, §9.1)",
        ),
    )
    order_delay: Any = field(
        default=2,
        metadata=_param(
            lo=1,
            hi=52,
            integer=True,
            per_stage=True,
            meaning="periods from placing an order to the supplier reading it",
            unit="periods",
            source="schema: beer game mailing delay (Sterman 1989); multinational: illustrative, orders "
            "transmitted within a week",
        ),
    )
    lead_time: Any = field(
        default=2,
        metadata=_param(
            lo=1,
            hi=52,
            integer=True,
            per_stage=True,
            meaning="periods goods spend in transit to the team",
            unit="periods",
            source="schema: beer game shipping delay; multinational: illustrative — local delivery 1 week, "
            "plant to DC 2, intercontinental material flows 4",
        ),
    )
    capacity: Any = field(
        default=None,
        metadata=_param(
            lo=0,
            lo_open=True,
            hi=_MAX_STOCK,
            per_stage=True,
            nullable=True,
            null_means="unlimited",
            meaning="maximum units a team can ship per period",
            unit="units/period",
            source="illustrative: plants 30 % above mean regional demand (utilisation ≈ 77 %)",
        ),
    )
    initial_inventory: Any = field(
        default=12.0,
        metadata=_param(
            lo=0,
            hi=_MAX_STOCK,
            per_stage=True,
            rule="whole numbers when `network.integer_units` is true",
            meaning="initial on-hand stock per team",
            unit="units",
            source="schema: beer game (12 cases); multinational: illustrative, 2–3 weeks of throughput",
        ),
    )
    integer_units: bool = field(
        default=False,
        metadata=_param(
            kind="flag",
            rule="true only if `network.initial_inventory` and `demand.level` are whole numbers",
            meaning="whole units, rounding of demand and orders",
            unit="–",
            source="beer game (integer cases)",
        ),
    )

    def __post_init__(self):
        # the number of stages first: the per-stage fields and the roles have one entry per stage
        stages = _declared(NetworkConfig)["stages"].validate("network.stages", self.stages)
        _validate(self, "network.", stages=stages)

    @property
    def n_teams(self) -> int:
        return int(sum(self.width))


@dataclass(frozen=True, kw_only=True, slots=True)
class DemandConfig:
    """End-customer demand per sales team and period.

    D = max(0, μ_t + u_t), μ_t = (level + step)·(1 + trend·t)·(1 + seasonality·sin(2πt/P))
    ·(1 + shock), u_t = ρ·u_{t-1} + cv·level·ε_t.
    """

    level: float = field(
        default=100.0,
        metadata=_param(
            lo=0,
            hi=_MAX_RATE,
            rule="a whole number when `network.integer_units` is true",
            meaning=r"base demand $\ell$ per sales team",
            unit="units/period",
            source="scale choice: a round 100 units per sales team and week; the multinational's stocks "
            "(2–3 weeks of throughput), capacity (130) and money values are sized relative to it (§5, §9.1)",
        ),
    )
    trend: float = field(
        default=0.0,
        metadata=_param(
            lo=-0.01,
            hi=0.01,
            meaning="linear growth $g$: mean × $(1 + g t)$",
            unit="1/period",
            source="design: 0 in every shipped config, so mean demand does not drift away from the steady "
            "state the firm starts in (§5)",
        ),
    )
    seasonality: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=1,
            meaning="seasonal amplitude $A$ (fraction of the mean)",
            unit="–",
            source="illustrative: modest annual cycle",
        ),
    )
    season_period: int = field(
        default=52,
        metadata=_param(
            lo=2,
            hi=_INT64_MAX,
            integer=True,
            meaning="seasonal period $P$",
            unit="periods",
            source="one year of weeks",
        ),
    )
    rho: float = field(
        default=0.0,
        metadata=_param(
            lo=-1,
            hi=1,
            lo_open=True,
            hi_open=True,
            meaning=r"AR(1) coefficient $\rho$ of the noise",
            unit="–",
            source="illustrative; AR(1) demand as in Chen et al. (2000)",
        ),
    )
    cv: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=2,
            meaning=r"innovation sd as a fraction of the level, $\sigma = \mathrm{cv}\,\ell$",
            unit="–",
            source=_ILLUSTRATIVE_92,
        ),
    )
    shock_prob: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=1,
            meaning="probability per period that a demand shock starts (none running)",
            unit="1/period",
            source=_ILLUSTRATIVE_92,
        ),
    )
    shock_size: float = field(
        default=0.0,
        metadata=_param(
            lo=-1,
            hi=5,
            meaning="relative change of mean demand during a shock, $s$",
            unit="–",
            source="illustrative: a surge that uses the plants' 30 % spare capacity; a slump",
        ),
    )
    shock_duration: int = field(
        default=4,
        metadata=_param(
            lo=1,
            hi=_MAX_PERIODS,
            integer=True,
            meaning="length of a shock episode",
            unit="periods",
            source="illustrative: a month (surge), two months (slump)",
        ),
    )
    step_period: int = field(
        default=0,
        metadata=_param(
            lo=0,
            hi=_MAX_PERIODS,
            integer=True,
            meaning="first period of a permanent step (0 = no step)",
            unit="period",
            source="beer game step in week 5 (Sterman 1989)",
        ),
    )
    step_size: float = field(
        default=0.0,
        metadata=_param(
            lo=-_MAX_RATE,
            hi=_MAX_RATE,
            meaning=r"size $\Delta$ of the step",
            unit="units/period",
            source="beer game (+4 cases)",
        ),
    )
    allow_negative: bool = field(
        default=False,
        metadata=_param(
            kind="flag",
            meaning="keep negative demand (returns) instead of flooring at 0",
            unit="–",
            source="Chen et al. (2000) allow negative demand",
        ),
    )

    def __post_init__(self):
        _validate(self, "demand.")


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyConfig:
    """Anchoring-and-adjustment ordering (Sterman 1989).

    O = E + α_S·(S' − S − β·SL), S' = s_prime + cover·E; order-up-to is α_S = β = 1.
    """

    forecast: str = field(
        default="smoothing",
        metadata=_param(
            kind="choice",
            choices=("smoothing", "moving_average"),
            meaning="expectation method",
            unit="–",
            source="Sterman (1989); Chen et al. (2000)",
        ),
    )
    theta: float = field(
        default=0.36,
        metadata=_param(
            lo=0, hi=1, meaning=r"smoothing weight $\theta$ of the new observation", unit="–", source=_STERMAN
        ),
    )
    ma_window: int = field(
        default=4,
        metadata=_param(
            lo=1,
            hi=520,
            integer=True,
            meaning="moving-average length $p$",
            unit="periods",
            source="illustrative (Chen et al. use general $p$)",
        ),
    )
    alpha_s: float = field(
        default=0.26,
        metadata=_param(
            lo=0, hi=1, meaning=r"stock adjustment fraction $\alpha_S$", unit="1/period", source=_STERMAN
        ),
    )
    beta: float = field(
        default=0.34,
        metadata=_param(
            lo=0,
            hi=1,
            rule="≥ 0.5 when `policy.allow_negative_orders` is true (§7.10)",
            meaning=r"supply-line weight $\beta$ (of a fully knowledgeable team when the culture layer is on, "
            "§7.15)",
            unit="–",
            source="schema: Sterman (1989) mean estimate; multinational: illustrative — a team with $q = 1$ "
            "weighs its whole supply line, one with $q = 0$ has Sterman's 0.34 (via "
            "`culture.beta_sensitivity`)",
        ),
    )
    s_prime: Any = field(
        default=None,
        metadata=_param(
            lo=-_MAX_STOCK,
            hi=_MAX_STOCK,
            per_stage=True,
            nullable=True,
            null_means=r"auto rule $S^* + \beta^{\mathrm{eff}}\mathrm{SL}^*$ of §5",
            meaning="constant part $s'$ of desired stock and supply line",
            unit="units",
            source=r"Sterman (1989) ($S'$ = 17 mean estimate; $S' = S^* + \beta\mathrm{SL}^*$); the "
            r"multinational's auto values are 300, 500, 600, 1800 at $\beta^{\mathrm{eff}} = 1$",
        ),
    )
    cover: Any = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=520,
            per_stage=True,
            meaning=r"periods of expected demand added to $S'$, $S' = \nu s' + cE$",
            unit="periods",
            source="Chen et al. (2000): `cover` = $L - 1$",
        ),
    )
    fixed_order_periods: int = field(
        default=0,
        metadata=_param(
            lo=0,
            hi=_MAX_PERIODS,
            integer=True,
            meaning="first periods in which orders equal throughput",
            unit="periods",
            source="beer game: orders fixed at 4 in weeks 1–4",
        ),
    )
    allow_negative_orders: bool = field(
        default=False,
        metadata=_param(
            kind="flag",
            rule="true only if every `network.width` is 1, `network.integer_units` is false and the lowest "
            "supply-line weight is ≥ 0.5 (`policy.beta` ≥ 0.5, and β·(1 − `culture.beta_sensitivity`) ≥ 0.5 "
            "with the culture layer on; §7.10)",
            meaning="allow negative orders (returns)",
            unit="–",
            source="Chen et al. (2000); the stability bound: §7.10",
        ),
    )

    def __post_init__(self):
        _validate(self, "policy.")


@dataclass(frozen=True, kw_only=True, slots=True)
class CostConfig:
    """Per-unit operating costs (money per unit or per unit-period), one value or one per stage."""

    holding: Any = field(
        default=0.5,
        metadata=_param(
            lo=0,
            hi=_MAX_PRICE,
            per_stage=True,
            meaning="holding cost $h$ on end-of-period stock",
            unit="MU/(unit·period)",
            source=r"schema: beer game \$0.50; multinational: illustrative, 0.5 %/week of the price "
            "(≈ 26 %/year)",
        ),
    )
    backlog: Any = field(
        default=1.0,
        metadata=_param(
            lo=0,
            hi=_MAX_PRICE,
            per_stage=True,
            meaning="backlog cost $b$ on units owed",
            unit="MU/(unit·period)",
            source=r"schema: beer game \$1.00; multinational: illustrative, 10 × holding (late delivery is "
            "costly)",
        ),
    )
    unit: Any = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=_MAX_PRICE,
            per_stage=True,
            meaning="processing cost $u$ per unit shipped",
            unit="MU/unit",
            source="illustrative: handling at sales and DCs, conversion at plants",
        ),
    )
    fixed: Any = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=_MAX_PERIOD_COST,
            per_stage=True,
            meaning="fixed cost $f$ per team",
            unit="MU/period",
            source="illustrative overhead: 500 MU/week for the 10 teams, 17 % of revenue; with the other "
            "multinational rates it leaves a steady-state EBITDA of 265 MU/week (8.8 % of revenue), which "
            "sets the initial credit limit (§5)",
        ),
    )
    material: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=_MAX_PRICE,
            meaning="base material price $P^M$ per unit received from the outside source",
            unit="MU/unit",
            source="illustrative: 40 % of the price",
        ),
    )
    unmet: str = field(
        default="backlog",
        metadata=_param(
            kind="choice",
            choices=("backlog", "lost_sales"),
            meaning="unmet end-customer demand is backlogged or lost",
            unit="–",
            source="beer game (backlog)",
        ),
    )

    def __post_init__(self):
        _validate(self, "costs.")


@dataclass(frozen=True, kw_only=True, slots=True)
class SupplyConfig:
    """Disruptions of the outside source that feeds the top stage, and input-cost shocks
    (episodes during which the material price is multiplied by 1 + ``cost_shock_size``)."""

    disruption_prob: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=1,
            meaning="probability per period that a disruption of the outside source starts (none running)",
            unit="1/period",
            source=_ILLUSTRATIVE_92,
        ),
    )
    disruption_duration: int = field(
        default=4,
        metadata=_param(
            lo=1,
            hi=_MAX_PERIODS,
            integer=True,
            meaning="length of a disruption",
            unit="periods",
            source="illustrative: a month",
        ),
    )
    disruption_severity: float = field(
        default=0.5,
        metadata=_param(
            lo=0,
            hi=1,
            meaning="fraction of a top team's throughput the source cannot ship while disrupted",
            unit="–",
            source="calibration choice, not data (§9.2): 0.5 is a half-outage (schema, volatile), disrupted's "
            "0.6 a severe one; at steady throughput a 4-week outage withholds 600 or 720 units, against the "
            "sourcing team's initial stock of 600",
        ),
    )
    cost_shock_prob: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=1,
            meaning="probability per period that an input-cost shock starts (none running)",
            unit="1/period",
            source="illustrative (§9.2); input-cost shocks as a mechanism: design choice (project brief, §2.4)",
        ),
    )
    cost_shock_size: float = field(
        default=0.0,
        metadata=_param(
            lo=-0.9,
            hi=5,
            meaning="relative rise $s_C$ of the material price during a cost shock",
            unit="–",
            source="illustrative: large enough to make the firm loss-making while it lasts (§9.2)",
        ),
    )
    cost_shock_duration: int = field(
        default=8,
        metadata=_param(
            lo=1,
            hi=_MAX_PERIODS,
            integer=True,
            meaning="length of a cost shock",
            unit="periods",
            source="illustrative: two months",
        ),
    )

    def __post_init__(self):
        _validate(self, "supply.")


@dataclass(frozen=True, kw_only=True, slots=True)
class FinanceConfig:
    """Cash, debt and a credit line whose limit follows a covenant on trailing EBITDA."""

    enabled: bool = field(
        default=True,
        metadata=_param(
            kind="flag",
            meaning="finance layer on (debt, covenant, insolvency)",
            unit="–",
            source="design: switches the finance layer off to isolate operations (the classic scenarios, §8)",
        ),
    )
    price: float = field(
        default=10.0,
        metadata=_param(
            lo=0,
            hi=_MAX_PRICE,
            meaning="price $P$ per unit shipped to end customers",
            unit="MU/unit",
            source="illustrative; steady-state EBITDA margin 8.8 % in multinational at full knowledge",
        ),
    )
    initial_cash: float = field(
        default=50_000.0,
        metadata=_param(
            lo=0,
            hi=_MAX_CASH,
            meaning=r"cash $\mathit{Cash}_0$",
            unit="MU",
            source="illustrative: ≈ 6.7 weeks of revenue in multinational",
        ),
    )
    min_cash: float = field(
        default=10_000.0,
        metadata=_param(
            lo=0,
            hi=_MAX_CASH,
            meaning=r"target minimum cash $\mathit{Cash}_{\min}$ (draw below, sweep above)",
            unit="MU",
            source="illustrative: operating cash buffer, ≈ 1.7 weeks of revenue",
        ),
    )
    interest_rate: float = field(
        default=0.0015,
        metadata=_param(
            lo=0,
            hi=0.1,
            meaning="interest $r$ per period on debt",
            unit="1/period",
            source="illustrative: ≈ 8.1 %/year compounded weekly",
        ),
    )
    covenant_multiple: float = field(
        default=3.0,
        metadata=_param(
            lo=0,
            hi=20,
            meaning=r"maximum debt / trailing EBITDA, $\kappa$",
            unit="–",
            source="illustrative: a leverage covenant of a few times EBITDA",
        ),
    )
    covenant_window: int = field(
        default=52,
        metadata=_param(
            lo=1,
            hi=520,
            integer=True,
            meaning="trailing window $T_W$ for EBITDA",
            unit="periods",
            source="one year of weeks",
        ),
    )
    grace_periods: int = field(
        default=4,
        metadata=_param(
            lo=0,
            hi=_MAX_PERIODS,
            integer=True,
            meaning="consecutive periods in breach tolerated, $G$",
            unit="periods",
            source="illustrative: a short cure period",
        ),
    )
    receivable_lag: int = field(
        default=4,
        metadata=_param(
            lo=0,
            hi=52,
            integer=True,
            meaning=r"periods until customers pay, $\ell_R$",
            unit="periods",
            source="illustrative: ≈ 30-day terms",
        ),
    )
    payable_lag: int = field(
        default=4,
        metadata=_param(
            lo=0,
            hi=52,
            integer=True,
            meaning=r"periods until material suppliers are paid, $\ell_P$",
            unit="periods",
            source="illustrative: ≈ 30-day terms",
        ),
    )

    def __post_init__(self):
        _validate(self, "finance.")


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

    enabled: bool = field(
        default=False,
        metadata=_param(
            kind="flag",
            meaning="culture and learning layer on",
            unit="–",
            source="March (1991); design choice (project brief: every layer can be switched off, so the "
            "classic scenarios are exact special cases)",
        ),
    )
    dims: int = field(
        default=30,
        metadata=_param(
            lo=1,
            hi=64,
            integer=True,
            meaning="dimensions $m$ of reality (at most 64: a belief vector is one pair of 64-bit masks, §7.14)",
            unit="dimensions",
            source="March (1991), $m = 30$",
        ),
    )
    members: int = field(
        default=50,
        metadata=_param(
            lo=1,
            hi=10_000,
            integer=True,
            meaning="members $n$ per team",
            unit="members",
            source="March (1991), $n = 50$; multinational: 10 teams × 5 = 50",
        ),
    )
    p1: float = field(
        default=0.1,
        metadata=_param(
            lo=0,
            hi=1,
            meaning="socialisation rate $p_1$ (before the culture programme's boost)",
            unit="1/step",
            source="March (1991) (0.1 is the slowest rate of his Figure 1; march1991 scans it by override, §8.3)",
        ),
    )
    p2: float = field(
        default=0.5,
        metadata=_param(
            lo=0,
            hi=1,
            meaning="code learning rate $p_2$",
            unit="1/step",
            source="March (1991) (march1991 scans it by override, §8.3)",
        ),
    )
    p3: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=1,
            meaning="turnover $p_3$: probability a member is replaced by a naive one",
            unit="1/step",
            source=r"March (1991) (mechanism); multinational: illustrative, $1 - 0.996^{52} \approx$ 19 % a year",
        ),
    )
    p4: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=1,
            meaning="turbulence $p_4$: probability a dimension of reality flips",
            unit="1/step",
            source="March (1991) (mechanism); values: illustrative, 2.6 % and 5.1 % of dimensions a year (§9.2)",
        ),
    )
    burn_in: int = field(
        default=0,
        metadata=_param(
            lo=0,
            hi=10_000,
            integer=True,
            meaning="learning steps before operations start (superior group by performance)",
            unit="steps",
            source="illustrative: an established firm whose code is near March's equilibrium (code knowledge "
            "0.92 on average at the start, §5)",
        ),
    )
    every: int = field(
        default=1,
        metadata=_param(
            lo=1,
            hi=520,
            integer=True,
            meaning="operating periods per learning step (a step when $t$ is a multiple)",
            unit="periods",
            source="illustrative: one step per week, as March's one step per period",
        ),
    )
    superior: str = field(
        default="performance",
        metadata=_param(
            kind="choice",
            choices=("performance", "score"),
            meaning="who the code learns from: members outperforming the code (`performance`), or those of "
            "them in the best-scoring teams (`score`)",
            unit="–",
            source="`performance`: March (1991) as replicated by Christensen (2015) and Workiewicz (2019); "
            "`score`: design choice (project brief: accountability decides who counts as the superior group)",
        ),
    )
    superior_share: float = field(
        default=0.3,
        metadata=_param(
            lo=0,
            hi=1,
            lo_open=True,
            meaning=r"share $\varsigma$ of teams counted as superior when `superior = score` "
            r"($\max(1, \lceil\varsigma N\rceil)$ teams)",
            unit="–",
            source="illustrative: 3 of 10 teams",
        ),
    )
    beta_sensitivity: float = field(
        default=0.5,
        metadata=_param(
            lo=0,
            hi=1,
            rule="≤ 1 − 0.5/`policy.beta` when `policy.allow_negative_orders` is true and the layer is on "
            "(§7.10)",
            meaning=r"$\lambda_\beta$: relative loss of supply-line weight at $q = 0$",
            unit="–",
            source="schema: a midpoint, not calibrated (at $q = 0$ half the supply-line weight is lost); "
            r"multinational: chosen so that $\beta^{\mathrm{eff}}(q = 0) = 0.34$, Sterman's (1989) mean "
            "estimate",
        ),
    )
    forecast_noise: float = field(
        default=0.2,
        metadata=_param(
            lo=0,
            hi=1,
            meaning=r"$\sigma_F$: relative forecast noise (sd) at $q = 0$",
            unit="–",
            source="illustrative: an ignorant team misreads demand by about 20 %",
        ),
    )
    cost_sensitivity: float = field(
        default=0.2,
        metadata=_param(
            lo=0,
            hi=2,
            meaning=r"$\kappa_c$: premium on processing, fixed and material cost at $q = 0$",
            unit="–",
            source="illustrative: a team that knows nothing wastes 20 % more (§13: this choice drives insolvency)",
        ),
    )

    def __post_init__(self):
        _validate(self, "culture.")


@dataclass(frozen=True, kw_only=True, slots=True)
class ManagementConfig:
    """Accountability, adaptation and the management programmes (BPO, BPM, culture programme).

    Every strategy is a setting of these numbers; no code looks at a strategy's name.
    """

    accountability_weight: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=1,
            meaning="$w$: weight of the firm objective in a team's score (each default rule's $w_i$)",
            unit="–",
            source="illustrative: teams judged on local metrics unless a programme aligns them (design choice, "
            "project brief: teams with their own metrics and accountability, §7.16)",
        ),
    )
    score_window: int = field(
        default=13,
        metadata=_param(
            lo=1,
            hi=520,
            integer=True,
            meaning="periods $W$ averaged in a team's score",
            unit="periods",
            source="illustrative: a quarter of weeks",
        ),
    )
    adapt_every: int = field(
        default=0,
        metadata=_param(
            lo=0,
            hi=520,
            integer=True,
            meaning="periods $A$ between stock-bias adaptations (0 = never)",
            unit="periods",
            source="illustrative: quarterly reviews",
        ),
    )
    adapt_step: float = field(
        default=0.1,
        metadata=_param(
            lo=0,
            hi=1,
            meaning=r"relative step $\eta$ of the stock bias, $\nu \leftarrow \nu e^{\pm\eta}$",
            unit="–",
            source="illustrative: ±10 % a review",
        ),
    )
    bias_min: float = field(
        default=0.5,
        metadata=_param(
            lo=0,
            lo_open=True,
            hi=1,
            meaning=r"lower bound $\nu_{\min}$ of the stock bias",
            unit="–",
            source="illustrative: at most halve desired stock",
        ),
    )
    bias_max: float = field(
        default=2.0,
        metadata=_param(
            lo=1,
            hi=10,
            meaning=r"upper bound $\nu_{\max}$ of the stock bias",
            unit="–",
            source="illustrative: at most double it",
        ),
    )
    execution_noise: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=1,
            meaning=r"$\sigma_E$: relative order noise (sd) at maturity 0",
            unit="–",
            source="illustrative: immature processes execute orders with 10 % error",
        ),
    )
    initial_maturity: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=1,
            meaning=r"initial process maturity $\mathfrak m_i$",
            unit="–",
            source="illustrative: no standardised processes at the start",
        ),
    )
    bpo_every: int = field(
        default=0,
        metadata=_param(
            lo=0,
            hi=520,
            integer=True,
            meaning=r"periods $T_{\mathrm{bpo}}$ between BPO projects (0 = none)",
            unit="periods",
            source="illustrative: a quarterly project",
        ),
    )
    bpo_size: float = field(
        default=0.1,
        metadata=_param(
            lo=0,
            hi=1,
            meaning=r"share $z$ of the remaining cost gap a project closes, $g \leftarrow g + z(1 - g)$",
            unit="–",
            source="illustrative: a project cuts a team's process cost by 10 %",
        ),
    )
    bpo_cost: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=_MAX_PERIOD_COST,
            meaning="cost of one project",
            unit="MU",
            source="illustrative: ≈ 1.9 weeks of steady-state EBITDA; 2 000 a year",
        ),
    )
    bpo_target: str = field(
        default="worst_local",
        metadata=_param(
            kind="choice",
            choices=("worst_local", "constraint"),
            meaning="team a project targets: worst local score or the firm's constraint (worst firm score)",
            unit="–",
            source="design choice (project brief: BPO aims at the worst local metric or at the firm's constraint)",
        ),
    )
    bpo_erosion: float = field(
        default=0.05,
        metadata=_param(
            lo=0,
            hi=1,
            meaning="erosion rate $e$ of BPO gains at maturity 0",
            unit="1/period",
            source="illustrative: a gain halves in ≈ 13.5 weeks without maturity (design choice, project brief: "
            "gains erode unless processes are mature)",
        ),
    )
    bpm_rate: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=1,
            meaning=r"growth rate $\rho_m$ of maturity under BPM (0 = no BPM)",
            unit="1/period",
            source="illustrative: maturity 0.65 after a year from 0",
        ),
    )
    bpm_cost: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=_MAX_PERIOD_COST,
            meaning="BPM cost per team",
            unit="MU/(team·period)",
            source="illustrative: 30 MU/week for 10 teams, 1 560 a year",
        ),
    )
    bpm_focus: str = field(
        default="uniform",
        metadata=_param(
            kind="choice",
            choices=("uniform", "constraint"),
            meaning="BPM on every team or all on the firm's constraint",
            unit="–",
            source="design choice (project brief, after the seed article: BSO subordinates BPM to the firm's "
            "objective)",
        ),
    )
    alignment_rate: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=1,
            meaning=r"progress rate $\rho_a$ of the culture programme (0 = none)",
            unit="1/period",
            source="illustrative: half-way in about a quarter",
        ),
    )
    alignment_cost: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=_MAX_PERIOD_COST,
            meaning="culture programme cost",
            unit="MU/period",
            source="illustrative: 2 080 a year, ≈ 15 % of steady-state EBITDA",
        ),
    )
    alignment_weight: float = field(
        default=0.8,
        metadata=_param(
            lo=0,
            hi=1,
            meaning=r"$w_{\mathrm{align}}$ reached at full alignment",
            unit="–",
            source="illustrative: mostly, not only, the firm objective",
        ),
    )
    socialisation_boost: float = field(
        default=0.0,
        metadata=_param(
            lo=0,
            hi=1,
            meaning=r"$b_{\mathrm{soc}}$: increase of $p_1$ at full alignment",
            unit="–",
            source="illustrative: socialisation from 0.1 to 0.3 (design choice, project brief: the culture "
            "programme raises socialisation)",
        ),
    )

    def __post_init__(self):
        _validate(self, "management.")


@dataclass(frozen=True, kw_only=True, slots=True)
class OutputConfig:
    """What a command-line run writes: team records (``teams``), and the sweep's name, which
    names its directory ``multirun/<name>/`` (so a sweep run again finds its finished runs)."""

    teams: bool = field(
        default=False,
        metadata=_param(
            kind="flag",
            meaning="the command line writes `teams.parquet`",
            unit="–",
            source="n/a: output option",
        ),
    )
    name: str = field(
        default="sweep",
        metadata=_param(
            kind="identifier",
            meaning="name of a sweep: its directory is `multirun/<name>/` (so a sweep run again finds its "
            "finished runs)",
            unit="–",
            source="n/a: output option",
        ),
    )

    def __post_init__(self):
        _validate(self, "output.")


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

#: per-stage fields (one number, or a list with one number per stage), in section order
_PER_STAGE = tuple(
    (section, name) for section, cls in _SECTIONS.items() for name, p in _declared(cls).items() if p.per_stage
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Config:
    """The whole validated configuration of a simulation.

    Per-stage values (``policy.s_prime``, ``costs.holding``, ...) are normalised to tuples with
    one entry per stage. Build one with :func:`compose` (from ``conf/``) or
    :func:`config_from_dict`; change one with :meth:`replace`.

    Each field's rule is declared in its metadata (:class:`Param`, :func:`parameters`); the
    rules across fields are the explicit checks at the end of ``__post_init__``.
    """

    n_orgs: int = field(
        default=8,
        metadata=_param(
            lo=1,
            hi=10_000_000,
            integer=True,
            meaning="number of firms (independent replicates)",
            unit="firms",
            source="illustrative: enough for a quick summary; march1991: March's 80 organisations",
        ),
    )
    periods: int = field(
        default=260,
        metadata=_param(
            lo=1,
            hi=_MAX_PERIODS,
            integer=True,
            meaning="horizon $T$",
            unit="periods",
            source="illustrative: 5 years of weeks; march1991: long enough for the code to settle (§8.3)",
        ),
    )
    seed: int = field(
        default=0,
        metadata=_param(
            lo=0,
            hi=_INT64_MAX,
            integer=True,
            meaning="root seed (SPEC 7)",
            unit="–",
            source="n/a: run option (root of every random stream, §7.13)",
        ),
    )
    engine: str = field(
        default="mesa",
        metadata=_param(
            kind="choice",
            choices=("mesa", "numba"),
            meaning="simulation engine: the readable Mesa reference or the Numba batch engine (same numbers)",
            unit="–",
            source="n/a: run option (both engines give the same numbers, §11)",
        ),
    )
    information: str = field(
        default="local",
        metadata=_param(
            kind="choice",
            choices=("local", "shared"),
            meaning="what teams forecast from: own incoming orders or shared customer demand",
            unit="–",
            source="Chen et al. (2000); shared information under BSO: design choice (project brief: BSO's "
            "culture programme includes shared information, §9.3)",
        ),
    )
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
        _validate(self, "")
        for name, cls in _SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                _fail(name, getattr(self, name), f"a {cls.__name__}")
        n = self.network.stages
        # per-stage values need the number of stages, so the other sections' are normalised here,
        # into new section objects (a section passed in by the caller is never changed); the
        # network normalised its own with its stages
        for name, cls in _SECTIONS.items():
            if name == "network":
                continue
            section = getattr(self, name)
            staged = {
                key: p.validate(f"{name}.{key}", getattr(section, key), n)
                for key, p in _declared(cls).items()
                if p.per_stage
            }
            if staged:
                _set(self, name, dataclasses.replace(section, **staged))
        # rules across fields (docs/model.md §12 states each in the range column of its fields)
        p = self.policy
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
    rule = _declared(NetworkConfig)["stages"]
    if (
        isinstance(stages, bool)
        or not isinstance(stages, numbers.Integral)
        or not rule.lo <= stages <= rule.hi
    ):
        return data  # the network's own check names a bad stage count
    stages = int(stages)
    if net.get("roles") is not None:
        fitted = _roles_for(net["roles"], stages)
        if fitted is not net["roles"]:
            data = {**data, "network": {**net, "roles": fitted}}
    wrong = []
    network = sum(section == "network" for section, _ in _PER_STAGE)  # the roles follow the network's
    for section, key in (*_PER_STAGE[:network], ("network", "roles"), *_PER_STAGE[network:]):
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
def _schema_class(cls: type) -> type:
    """A writable copy of the config dataclass ``cls`` for Hydra's schema: the same names, fields,
    types and defaults (its sections copied alike), neither frozen nor validated. OmegaConf makes
    a frozen dataclass's node read-only, and Hydra merges ``conf/`` into the schema's node."""
    types = typing.get_type_hints(cls)
    fields = []
    for f in dataclasses.fields(cls):
        if cls is Config and f.name in _SECTIONS:
            section = _schema_class(_SECTIONS[f.name])
            fields.append((f.name, section, field(default_factory=section)))
        else:
            fields.append((f.name, types[f.name], field(default=f.default)))
    schema = dataclasses.make_dataclass(cls.__name__, fields, kw_only=True)
    schema.__module__, schema.__qualname__ = cls.__module__, cls.__qualname__  # as errors name them
    return schema


def _schema_node():
    """The dataclass schema as an OmegaConf node that Hydra can merge overrides into."""
    from omegaconf import OmegaConf

    return OmegaConf.structured(_schema_class(Config))


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
