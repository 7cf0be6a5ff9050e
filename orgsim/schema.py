"""What both engines read and write.

* **Outputs:** KPI columns per firm and period, team columns per firm, period and team (the
  public contract of ``../shared/MODEL.md``), and the fields the engines record (:class:`KPI`,
  :class:`TeamField`: their rows in the batch engine's output arrays).
* **Parameters:** every numeric parameter the layer kernels read is a column of a firm's
  parameter vector (:class:`Param`) or of a team's parameter row (:class:`TeamParam`). Each is
  declared once, in :data:`FIRM_PARAMETERS` or :data:`TEAM_PARAMETERS`, with how its value is
  read from a config and its network; the column numbers are generated from the declaration
  order. :func:`parameters` builds both for one firm: the Mesa engine gives each firm and team
  its own, the batch engine stacks them into its matrices ``P`` and ``TP``.
* **Structure:** :data:`STRUCTURAL`, the config keys that fix array shapes.
"""

from __future__ import annotations

import os
from enum import IntEnum

import numpy as np

from .config import ConfigError

__all__ = [
    "ENGINE_KPIS",
    "ENGINE_TEAM_FIELDS",
    "FIRM_PARAMETERS",
    "KPI",
    "KPI_COLUMNS",
    "KPI_EXTRA",
    "STRUCTURAL",
    "TEAM_COLUMNS",
    "TEAM_PARAMETERS",
    "Param",
    "TeamField",
    "TeamParam",
    "check_memory",
    "parameters",
]

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
#: rows of the batch engine's KPI and team output arrays
KPI = IntEnum("KPI", [(name, i) for i, name in enumerate(ENGINE_KPIS)])
TeamField = IntEnum("TeamField", [(name, i) for i, name in enumerate(ENGINE_TEAM_FIELDS)])

# ---- parameters ------------------------------------------------------------------------------
#: the firm's scalar parameters, in column order: name -> its value for ``(cfg, net)`` (choices
#: and booleans become 1.0 or 0.0; ``sigma`` is the demand noise scale cv·level)
FIRM_PARAMETERS = {
    "theta": lambda cfg, net: cfg.policy.theta,
    "alpha_s": lambda cfg, net: cfg.policy.alpha_s,
    "beta": lambda cfg, net: cfg.policy.beta,
    "moving_average": lambda cfg, net: cfg.policy.forecast == "moving_average",
    "fixed_order_periods": lambda cfg, net: cfg.policy.fixed_order_periods,
    "allow_negative_orders": lambda cfg, net: cfg.policy.allow_negative_orders,
    "integer": lambda cfg, net: cfg.network.integer_units,
    "shared": lambda cfg, net: cfg.information == "shared",
    "level": lambda cfg, net: cfg.demand.level,
    "trend": lambda cfg, net: cfg.demand.trend,
    "seasonality": lambda cfg, net: cfg.demand.seasonality,
    "season_period": lambda cfg, net: cfg.demand.season_period,
    "rho": lambda cfg, net: cfg.demand.rho,
    "sigma": lambda cfg, net: cfg.demand.cv * cfg.demand.level,
    "shock_prob": lambda cfg, net: cfg.demand.shock_prob,
    "shock_size": lambda cfg, net: cfg.demand.shock_size,
    "shock_duration": lambda cfg, net: cfg.demand.shock_duration,
    "step_period": lambda cfg, net: cfg.demand.step_period,
    "step_size": lambda cfg, net: cfg.demand.step_size,
    "allow_negative": lambda cfg, net: cfg.demand.allow_negative,
    "backlog_unmet": lambda cfg, net: cfg.costs.unmet == "backlog",
    "material": lambda cfg, net: cfg.costs.material,
    "disruption_prob": lambda cfg, net: cfg.supply.disruption_prob,
    "disruption_duration": lambda cfg, net: cfg.supply.disruption_duration,
    "disruption_severity": lambda cfg, net: cfg.supply.disruption_severity,
    "finance_enabled": lambda cfg, net: cfg.finance.enabled,
    "price": lambda cfg, net: cfg.finance.price,
    "initial_cash": lambda cfg, net: cfg.finance.initial_cash,
    "min_cash": lambda cfg, net: cfg.finance.min_cash,
    "interest_rate": lambda cfg, net: cfg.finance.interest_rate,
    "covenant_multiple": lambda cfg, net: cfg.finance.covenant_multiple,
    "grace_periods": lambda cfg, net: cfg.finance.grace_periods,
    "culture_enabled": lambda cfg, net: cfg.culture.enabled,
    "p1": lambda cfg, net: cfg.culture.p1,
    "p2": lambda cfg, net: cfg.culture.p2,
    "p3": lambda cfg, net: cfg.culture.p3,
    "p4": lambda cfg, net: cfg.culture.p4,
    "burn_in": lambda cfg, net: cfg.culture.burn_in,
    "superior_by_score": lambda cfg, net: cfg.culture.superior == "score",
    "superior_share": lambda cfg, net: cfg.culture.superior_share,
    "beta_sensitivity": lambda cfg, net: cfg.culture.beta_sensitivity,
    "forecast_noise": lambda cfg, net: cfg.culture.forecast_noise,
    "cost_sensitivity": lambda cfg, net: cfg.culture.cost_sensitivity,
    "weight0": lambda cfg, net: cfg.management.accountability_weight,
    "adapt_every": lambda cfg, net: cfg.management.adapt_every,
    "adapt_step": lambda cfg, net: cfg.management.adapt_step,
    "bias_min": lambda cfg, net: cfg.management.bias_min,
    "bias_max": lambda cfg, net: cfg.management.bias_max,
    "execution_noise": lambda cfg, net: cfg.management.execution_noise,
    "initial_maturity": lambda cfg, net: cfg.management.initial_maturity,
    "bpo_every": lambda cfg, net: cfg.management.bpo_every,
    "bpo_size": lambda cfg, net: cfg.management.bpo_size,
    "bpo_cost": lambda cfg, net: cfg.management.bpo_cost,
    "bpo_constraint": lambda cfg, net: cfg.management.bpo_target == "constraint",
    "bpo_erosion": lambda cfg, net: cfg.management.bpo_erosion,
    "bpm_rate": lambda cfg, net: cfg.management.bpm_rate,
    "bpm_cost": lambda cfg, net: cfg.management.bpm_cost,
    "bpm_constraint": lambda cfg, net: cfg.management.bpm_focus == "constraint",
    "alignment_rate": lambda cfg, net: cfg.management.alignment_rate,
    "alignment_cost": lambda cfg, net: cfg.management.alignment_cost,
    "alignment_weight": lambda cfg, net: cfg.management.alignment_weight,
    "socialisation_boost": lambda cfg, net: cfg.management.socialisation_boost,
    "unit_margin": lambda cfg, net: net.unit_margin,
    "culture_every": lambda cfg, net: cfg.culture.every,
    "cost_shock_prob": lambda cfg, net: cfg.supply.cost_shock_prob,
    "cost_shock_size": lambda cfg, net: cfg.supply.cost_shock_size,
    "cost_shock_duration": lambda cfg, net: cfg.supply.cost_shock_duration,
}
#: a team's parameters, in column order: name -> the network's array of it (one value per team)
TEAM_PARAMETERS = {
    "capacity": lambda net: net.capacity,
    "throughput": lambda net: net.throughput,
    "s_prime": lambda net: net.s_prime,
    "cover": lambda net: net.cover,
    "holding": lambda net: net.holding,
    "backlog_cost": lambda net: net.backlog_cost,
    "unit_cost": lambda net: net.unit_cost,
    "fixed_cost": lambda net: net.fixed_cost,
    "initial_inventory": lambda net: net.initial_inventory,
    "steady_cost": lambda net: net.steady_cost,
    "metric_target": lambda net: net.metric_target,
    "metric_scale": lambda net: net.metric_scale,
    "metric": lambda net: net.metric,
    "is_top": lambda net: net.supplier < 0,
    "inventory_target": lambda net: net.inventory_target,
    "supply_line_target": lambda net: net.supply_line_target,
}
#: columns of a firm's parameter vector (``p[Param.theta]``; Numba reads them as constants)
Param = IntEnum("Param", [(name, i) for i, name in enumerate(FIRM_PARAMETERS)])
#: columns of a team's parameter row (``tp[TeamParam.capacity]``)
TeamParam = IntEnum("TeamParam", [(name, i) for i, name in enumerate(TEAM_PARAMETERS)])


def parameters(cfg, net) -> tuple[np.ndarray, np.ndarray]:
    """One firm's parameter vector ``[Param]`` and team parameter matrix ``[team, TeamParam]``
    (float64) for the config ``cfg`` and its network ``net``
    (:func:`orgsim.network.build_network`)."""
    p = np.array([float(value(cfg, net)) for value in FIRM_PARAMETERS.values()], dtype=np.float64)
    tp = np.column_stack([np.asarray(value(net), dtype=np.float64) for value in TEAM_PARAMETERS.values()])
    return p, np.ascontiguousarray(tp, dtype=np.float64)


#: config keys that fix a population's array shapes: every firm of one call shares them
STRUCTURAL = (
    "periods",
    "network.stages",
    "network.width",
    "network.roles",
    "network.order_delay",
    "network.lead_time",
    "policy.ma_window",
    "management.score_window",
    "finance.covenant_window",
    "finance.receivable_lag",
    "finance.payable_lag",
    "culture.dims",
    "culture.members",
)


def check_memory(cfg, teams: bool, n_orgs: int | None = None) -> None:
    """Raise ConfigError if the engines' result arrays alone (8 bytes per KPI per firm and
    period, and per team field per team with ``teams``) exceed this machine's memory: such a run
    cannot finish, so it is refused before it starts (and before the CLI writes anything).
    ``n_orgs`` (already validated) stands for ``cfg.n_orgs`` when given: a calibration batch
    checks its size without building a config for it."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return
    per_period = len(ENGINE_KPIS) + (len(ENGINE_TEAM_FIELDS) * cfg.network.n_teams if teams else 0)
    n_orgs = cfg.n_orgs if n_orgs is None else n_orgs
    need = 8 * per_period * n_orgs * cfg.periods
    if need > total:
        what = "KPI and team arrays" if teams else "KPI arrays"
        raise ConfigError(
            f"n_orgs × periods == {n_orgs} × {cfg.periods}, must fit in memory: its {what} need "
            f"{need / 2**30:,.0f} GiB, this machine has {total / 2**30:,.0f} GiB"
        )
