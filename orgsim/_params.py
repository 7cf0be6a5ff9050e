"""A parameter table (one row per firm, columns named by dotted config keys) validated and
packed for the batch engine column by column.

``simulate(cfg, engine="numba", params=table)`` used to build and validate one :class:`Config`
per row and pack it, about 0.4 ms a row: a calibration batch of 2,000 beer games spent most of
its time there. Here each column of a *scalar field that the batch engine reads as it is* (the
:data:`DIRECT` fields: ``policy.theta``, ``culture.p1``, ...) is checked as a whole and written
into the packed parameter matrix ``P`` directly, and so is each column of a *per-stage field that
the batch engine reads as it is, in one team column* (the :data:`STAGED` fields:
``policy.s_prime``, ``costs.backlog``): its value for stage ``k`` goes into the ``TP`` column of
every team of stage ``k``. Every other column (fields that shape the network or its steady
state, booleans, choices, fields bound by a rule across sections) goes the old way, one config
per distinct combination of those columns' values. A table whose columns are all DIRECT or
STAGED (a calibration's candidates) builds no config at all: the base config's packed arrays
are built once and kept (:func:`_base_packed`).

The checks are the same, with the same messages: every DIRECT and STAGED field's rule is an
interval (its declaration, a :class:`orgsim.config.Param`, is checked for that at import:
finite, within [lo, hi], integral for integer fields, nothing more), so a column satisfies it
when its values are finite (and integral) and its smallest and largest value pass the field's
own validation; when one does not, the first row that fails is validated on its own and its
ConfigError is raised. A STAGED column holds numbers (one value for every stage) or lists of one
number per stage; a column with anything else (``None`` for the auto rule of ``s_prime``, a
list of another length, a string) goes the old way, which gives its message, and so does every
STAGED column of a table that sets ``network.stages`` or ``network.width`` (they decide which
team is at which stage). Columns are checked in this order: DIRECT and STAGED ones in the
table's column order, then the others (one row per distinct combination, in row order); a table
with bad values in several columns may therefore name another one first than one config per
row would. ``tests/test_params.py`` (DIRECT) and ``tests/test_params_batch.py`` (STAGED, and the
batch as a whole) check that both paths agree, for valid and invalid values, and give
bit-identical results.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from .config import Config, config_from_dict, parameters, with_changes

__all__ = ["DIRECT", "STAGED", "pack_params"]

#: dotted config key -> the name of its entry in the batch engine's per-firm vector P, for the
#: scalar numeric fields that the engine reads as they are (``demand.cv`` enters as
#: σ = cv·level); none of them shapes the network (``orgsim.network.build_network``) or takes
#: part in a rule across sections
DIRECT: dict[str, str] = {
    "policy.theta": "theta",
    "policy.alpha_s": "alpha_s",
    "policy.beta": "beta",
    "policy.fixed_order_periods": "fixed_order_periods",
    "demand.trend": "trend",
    "demand.seasonality": "seasonality",
    "demand.season_period": "season_period",
    "demand.rho": "rho",
    "demand.cv": "sigma",
    "demand.shock_prob": "shock_prob",
    "demand.shock_size": "shock_size",
    "demand.shock_duration": "shock_duration",
    "demand.step_period": "step_period",
    "demand.step_size": "step_size",
    "supply.disruption_prob": "disruption_prob",
    "supply.disruption_duration": "disruption_duration",
    "supply.disruption_severity": "disruption_severity",
    "supply.cost_shock_prob": "cost_shock_prob",
    "supply.cost_shock_size": "cost_shock_size",
    "supply.cost_shock_duration": "cost_shock_duration",
    "finance.initial_cash": "initial_cash",
    "finance.min_cash": "min_cash",
    "finance.interest_rate": "interest_rate",
    "finance.covenant_multiple": "covenant_multiple",
    "finance.grace_periods": "grace_periods",
    "culture.p1": "p1",
    "culture.p2": "p2",
    "culture.p3": "p3",
    "culture.p4": "p4",
    "culture.burn_in": "burn_in",
    "culture.every": "culture_every",
    "culture.superior_share": "superior_share",
    "culture.beta_sensitivity": "beta_sensitivity",
    "culture.forecast_noise": "forecast_noise",
    "culture.cost_sensitivity": "cost_sensitivity",
    "management.accountability_weight": "weight0",
    "management.adapt_every": "adapt_every",
    "management.adapt_step": "adapt_step",
    "management.bias_min": "bias_min",
    "management.bias_max": "bias_max",
    "management.execution_noise": "execution_noise",
    "management.initial_maturity": "initial_maturity",
    "management.bpo_every": "bpo_every",
    "management.bpo_size": "bpo_size",
    "management.bpo_cost": "bpo_cost",
    "management.bpo_erosion": "bpo_erosion",
    "management.bpm_rate": "bpm_rate",
    "management.bpm_cost": "bpm_cost",
    "management.alignment_rate": "alignment_rate",
    "management.alignment_cost": "alignment_cost",
    "management.alignment_weight": "alignment_weight",
    "management.socialisation_boost": "socialisation_boost",
}

#: a column is checked by its extremes only if its field's whole rule is one interval: declared
#: (orgsim.config.Param) as a single number, neither per stage nor nullable, with no further check
_NOT_AN_INTERVAL = [
    key
    for key in DIRECT
    if (p := parameters()[key]).kind != "number" or p.per_stage or p.nullable or p.also is not None
]
if _NOT_AN_INTERVAL:  # pragma: no cover - a declaration changed under the fast path
    raise TypeError(f"{_NOT_AN_INTERVAL[0]} is in DIRECT, but its rule is not one interval")

#: dotted config key -> the name of its column in the batch engine's per-team matrix TP, for the
#: per-stage numeric fields that the engine reads there as they are (a team's entry is its
#: stage's value, ``orgsim.network.build_network``) and nowhere else: neither in P, nor in
#: another TP column (``policy.cover`` and ``costs.holding`` also shape the steady state), nor
#: in the network's shape, nor in a rule across sections
STAGED: dict[str, str] = {
    "policy.s_prime": "s_prime",
    "costs.backlog": "backlog_cost",
}

_NOT_A_STAGED_INTERVAL = [
    key
    for key in STAGED
    if (p := parameters()[key]).kind != "number" or not p.per_stage or p.also is not None
]
if _NOT_A_STAGED_INTERVAL:  # pragma: no cover - a declaration changed under the fast path
    raise TypeError(f"{_NOT_A_STAGED_INTERVAL[0]} is in STAGED, but its rule is not one interval per stage")

#: columns that decide which team is at which stage: with one of them in a table, the STAGED
#: columns go the old way (one config per combination)
_STAGE_KEYS = ("network.stages", "network.width")

#: fields bound by the rule on orders without a floor (docs/model.md §7.10): direct only when
#: the base config allows no negative orders, so that the rule cannot apply
_NEGATIVE_ORDER_RULE = ("policy.beta", "culture.beta_sensitivity")


def _numeric(column: pd.Series) -> bool:
    """Whether a column holds plain NumPy numbers (integers or floats, no missing-value mask)."""
    return isinstance(column.dtype, np.dtype) and column.dtype.kind in "iuf"


def _direct_columns(cfg: Config, table: pd.DataFrame) -> list[str]:
    """The DIRECT columns of ``table`` that can be checked and packed as a whole."""
    out = []
    for key in table.columns:
        if key not in DIRECT:
            continue
        if key in _NEGATIVE_ORDER_RULE and cfg.policy.allow_negative_orders:
            continue
        values = table[key]
        if not (pd.api.types.is_integer_dtype(values) or pd.api.types.is_float_dtype(values)):
            continue  # booleans, objects (None, strings): one config per value, with their messages
        out.append(key)
    return out


def _plain_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _staged_values(column: pd.Series, stages: int) -> np.ndarray | None:
    """A STAGED column as ``[row, stage]`` floats, or None if it must go the old way: a number
    applies to every stage, a list (or tuple) gives one number per stage."""
    if _numeric(column):
        return np.repeat(column.to_numpy(dtype=np.float64)[:, None], stages, axis=1)
    if column.dtype != object:
        return None
    rows = []
    for value in column.tolist():
        if _plain_real(value):
            rows.append((value,) * stages)
        elif isinstance(value, (list, tuple)) and len(value) == stages and all(map(_plain_real, value)):
            rows.append(value)
        else:  # None (the auto rule), another length, a string, ...: the old way, its message
            return None
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), stages)
    except OverflowError:  # an integer beyond the float range: the old way names it
        return None


def _staged_columns(cfg: Config, table: pd.DataFrame) -> dict[str, np.ndarray]:
    """The STAGED columns of ``table`` that can be checked and packed as a whole, with their
    values ``[row, stage]``."""
    if any(key in table.columns for key in _STAGE_KEYS):
        return {}
    out = {}
    for key in table.columns:
        if key in STAGED:
            values = _staged_values(table[key], cfg.network.stages)
            if values is not None:
                out[key] = values
    return out


def _as_given(value):
    """A table entry as one config per row receives it (a NumPy scalar as a Python number)."""
    return value.item() if hasattr(value, "item") else value


def _check_value(cfg: Config, key: str, value) -> None:
    """Validate one value of a DIRECT field as its section does (same ConfigError)."""
    section, name = key.split(".")
    dataclasses.replace(getattr(cfg, section), **{name: _as_given(value)})


def _check_column(cfg: Config, key: str, column: pd.Series) -> None:
    """Raise the ConfigError of the first row whose value breaks ``key``'s rule (validated as
    given, so the message shows the value as the row holds it)."""
    integer = parameters()[key].integer
    raw = column.to_numpy()
    values = raw.astype(np.float64)
    bad = ~np.isfinite(values)
    if integer:
        bad |= np.isfinite(values) & (values != np.round(values))
    if not bad.any():
        try:
            _check_value(cfg, key, raw.min())
            _check_value(cfg, key, raw.max())
            return
        except Exception:  # an interval rule: some row breaks it; find the first below
            bad = np.ones(len(values), dtype=bool)
    for i in np.flatnonzero(bad):
        _check_value(cfg, key, raw[i])
    raise AssertionError(f"{key}: a value failed as a column but passed alone")  # pragma: no cover


def _check_staged(cfg: Config, key: str, column: pd.Series, values: np.ndarray) -> None:
    """Raise the ConfigError of the first row of a STAGED column whose value breaks ``key``'s
    rule, as :class:`Config` gives it for that row alone (the value as the row holds it).

    Every stage has the same interval, so the column passes when all its numbers are finite
    (and integral) and its smallest and largest pass. Integers beyond 2**53 convert to floats
    inexactly, but every bound lies below it, so such a value fails both ways."""
    p = parameters()[key]
    stages = cfg.network.stages
    finite = np.isfinite(values)
    bad = ~finite.all(axis=1)
    if p.integer:
        bad |= (finite & (values != np.round(values))).any(axis=1)
    if not bad.any():
        try:
            p.validate(key, float(values.min()), stages)
            p.validate(key, float(values.max()), stages)
            return
        except Exception:  # some row breaks the interval: find the first below
            bad = np.ones(len(values), dtype=bool)
    raw = column.to_numpy()
    for i in np.flatnonzero(bad):
        p.validate(key, _as_given(raw[i]), stages)
    raise AssertionError(f"{key}: a value failed as a column but passed alone")  # pragma: no cover


def _group_key(value):
    """A hashable stand-in for a table entry that tells apart what a config tells apart: its
    type (``1``, ``1.0`` and ``True`` are equal in Python, not to the validation), the sign of a
    zero, and the entries of a list (a per-stage value); an entry that cannot be hashed is a
    group of its own."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return (type(value), tuple(_group_key(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return ("unhashable", id(value))
    if isinstance(value, (float, np.floating)):
        return (type(value), value, math.copysign(1.0, value))
    return (type(value), value)


def _groups(entries: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Rows ``[row, column]`` grouped by their values: each row's group (numbered in the order
    of first appearance) and the first row of each group."""
    codes = np.empty(len(entries), dtype=np.int64)
    index: dict[tuple, int] = {}
    firsts: list[int] = []
    for i, row in enumerate(entries):
        key = tuple(_group_key(v) for v in row)
        code = index.setdefault(key, len(firsts))
        if code == len(firsts):
            firsts.append(i)
        codes[i] = code
    return codes, firsts


#: the base configs' packed arrays (one row), by the config's identity: a calibration packs one
#: base config many times. Entries hold their config, so an identity is not reused while cached.
_BASE_PACKED: dict[int, tuple[Config, dict]] = {}


def _base_packed(cfg: Config) -> dict:
    """``engine_numba.pack([cfg])``, built once per config object (read-only: callers copy)."""
    from . import engine_numba

    hit = _BASE_PACKED.get(id(cfg))
    if hit is None or hit[0] is not cfg:
        if len(_BASE_PACKED) >= 8:
            _BASE_PACKED.pop(next(iter(_BASE_PACKED)))
        hit = (cfg, engine_numba.pack([cfg], checked=True))
        _BASE_PACKED[id(cfg)] = hit
    return hit[1]


def pack_params(cfg: Config, table: pd.DataFrame) -> dict:
    """Packed arrays (as :func:`orgsim.engine_numba.pack`) with one parameter row per row of
    ``table``: firm ``i`` runs with ``cfg`` changed by row ``i``. ``table`` has been checked
    for its columns' names (``simulation._check_params``)."""
    from . import engine_numba

    n = len(table)
    direct = _direct_columns(cfg, table)
    staged = _staged_columns(cfg, table)
    rest = [k for k in table.columns if k not in direct and k not in staged]
    if rest:
        base = cfg.replace(n_orgs=n)  # the population's size checked as a config's
    else:
        parameters()["n_orgs"].validate("n_orgs", n)  # the same check, without building a config
        base = cfg
    for key in table.columns:
        if key in staged:
            _check_staged(base, key, table[key], staged[key])
        elif key in direct:
            _check_column(base, key, table[key])
    if rest:  # one config per distinct combination of the other columns' values
        entries = table[rest].to_numpy(dtype=object)
        codes, firsts = _groups(entries)
        base_data = base.to_dict()
        configs = []
        for i in firsts:  # each combination as its first row holds it (a list stays a list)
            changes = {k: _as_given(v) for k, v in zip(rest, entries[i])}
            configs.append(config_from_dict(with_changes(base_data, changes)))
        packed = engine_numba.pack(configs)  # checks that the combinations share their shapes
        packed["P"] = packed["P"][codes]
        packed["TP"] = packed["TP"][codes]
    else:
        one = _base_packed(cfg)
        packed = dict(one, P=np.repeat(one["P"], n, axis=0), TP=np.repeat(one["TP"], n, axis=0))
    P, TP = packed["P"], packed["TP"]
    for key in direct:
        values = table[key].to_numpy(dtype=np.float64)
        if key == "demand.cv":
            values = values * P[:, engine_numba.P["level"]]
        P[:, engine_numba.P[DIRECT[key]]] = values
    stage = packed["network"].stage
    for key, values in staged.items():
        TP[:, :, engine_numba.T[STAGED[key]]] = values[:, stage]
    packed["P"] = np.ascontiguousarray(P)
    packed["TP"] = np.ascontiguousarray(TP)
    return packed
