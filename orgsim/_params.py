"""A parameter table (one row per firm, columns named by dotted config keys) validated and
packed for the batch engine column by column.

``simulate(cfg, engine="numba", params=table)`` used to build and validate one :class:`Config`
per row and pack it, about 0.4 ms a row: a calibration batch of 2,000 beer games spent most of
its time there. Here each column of a *scalar field that the batch engine reads as it is* (the
:data:`DIRECT` fields: ``policy.theta``, ``culture.p1``, ...) is checked as a whole and written
into the packed parameter matrix directly; every other column (fields that shape the network or
its steady state, per-stage values, booleans, choices, fields bound by a rule across sections)
goes the old way, one config per distinct combination of those columns' values.

The checks are the same, with the same messages: every DIRECT field's rule is an interval
(its declaration, a :class:`orgsim.config.Param`, is checked for that at import: finite, within
[lo, hi], integral for integer fields, nothing more), so a
column satisfies it when its values are finite (and integral) and its smallest and largest
value pass the section's own validation; when one does not, the first row that fails is
validated on its own and its ConfigError is raised. ``tests/test_params.py`` checks that both
paths agree on every DIRECT field, for valid and invalid values, and give bit-identical
results.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .config import Config, config_from_dict, parameters, with_changes

__all__ = ["DIRECT", "pack_params"]

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

#: fields bound by the rule on orders without a floor (docs/model.md §7.10): direct only when
#: the base config allows no negative orders, so that the rule cannot apply
_NEGATIVE_ORDER_RULE = ("policy.beta", "culture.beta_sensitivity")


def _direct_columns(base: Config, table: pd.DataFrame) -> list[str]:
    """The columns of ``table`` that can be checked and packed as a whole."""
    out = []
    for key in table.columns:
        if key not in DIRECT:
            continue
        if key in _NEGATIVE_ORDER_RULE and base.policy.allow_negative_orders:
            continue
        values = table[key]
        if not (pd.api.types.is_integer_dtype(values) or pd.api.types.is_float_dtype(values)):
            continue  # booleans, objects (None, strings): one config per value, with their messages
        out.append(key)
    return out


def _check_value(base: Config, key: str, value) -> None:
    """Validate one value of a DIRECT field as its section does (same ConfigError)."""
    section, name = key.split(".")
    dataclasses.replace(getattr(base, section), **{name: value.item() if hasattr(value, "item") else value})


def _check_column(base: Config, key: str, column: pd.Series) -> None:
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
            _check_value(base, key, raw.min())
            _check_value(base, key, raw.max())
            return
        except Exception:  # an interval rule: some row breaks it; find the first below
            bad = np.ones(len(values), dtype=bool)
    for i in np.flatnonzero(bad):
        _check_value(base, key, raw[i])
    raise AssertionError(f"{key}: a value failed as a column but passed alone")  # pragma: no cover


def pack_params(cfg: Config, table: pd.DataFrame) -> dict:
    """Packed arrays (as :func:`orgsim.engine_numba.pack`) with one parameter row per row of
    ``table``: firm ``i`` runs with ``cfg`` changed by row ``i``. ``table`` has been checked
    for its columns' names (``simulation._check_params``)."""
    from . import engine_numba

    base = cfg.replace(n_orgs=len(table))
    direct = _direct_columns(base, table)
    rest = [k for k in table.columns if k not in direct]
    for key in direct:
        _check_column(base, key, table[key])
    if rest:  # one config per distinct combination of the other columns' values
        combos = table[rest].astype(object).apply(tuple, axis=1)
        codes, uniques = pd.factorize(combos, sort=False)
        base_data = base.to_dict()
        configs = []
        for combo in uniques:
            changes = {k: (v.item() if hasattr(v, "item") else v) for k, v in zip(rest, combo)}
            configs.append(config_from_dict(with_changes(base_data, changes)))
        packed = engine_numba.pack(configs)  # checks that the combinations share their shapes
        packed["P"] = packed["P"][codes]
        packed["TP"] = packed["TP"][codes]
    else:
        packed = engine_numba.pack([base])
        packed["P"] = np.repeat(packed["P"], len(table), axis=0)
        packed["TP"] = np.repeat(packed["TP"], len(table), axis=0)
    P = packed["P"]
    for key in direct:
        values = table[key].to_numpy(dtype=np.float64)
        if key == "demand.cv":
            values = values * P[:, engine_numba.P["level"]]
        P[:, engine_numba.P[DIRECT[key]]] = values
    packed["P"] = np.ascontiguousarray(P)
    packed["TP"] = np.ascontiguousarray(packed["TP"])
    return packed
