"""The supply network of a firm: teams, their stages, roles, suppliers and initial state.

Teams are numbered stage by stage from the customer: the ``width[0]`` teams of stage 0 serve end
customers, then stage 1, and so on. Team ``j`` of stage ``k`` buys from team
``floor(j * width[k+1] / width[k])`` of stage ``k + 1``; the top stage buys from an outside
source. Both engines build their state from this one description.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import Config
from .management import LOCAL_METRIC, METRICS, metric_target

__all__ = ["Network", "build_network"]


@dataclass(frozen=True)
class Network:
    """Topology and steady-state initial values, as arrays indexed by team."""

    names: tuple[str, ...]
    roles: tuple[str, ...]
    stage: np.ndarray  # int, counted from the customer
    supplier: np.ndarray  # team index of the supplier, -1 for the outside source
    customers: tuple[tuple[int, ...], ...]  # downstream teams of each team
    sales_teams: np.ndarray  # teams of stage 0
    subtree_sales: np.ndarray  # [team, sales team] 1 if the sales team is downstream of team
    order_delay: np.ndarray  # periods from placing an order to the supplier filling it
    lead_time: np.ndarray  # periods goods spend in transit to the team
    info_delay: np.ndarray  # periods before shared customer demand reaches the team
    capacity: np.ndarray  # units the team can ship per period (inf = unlimited)
    throughput: np.ndarray  # steady-state units per period through the team
    initial_inventory: np.ndarray
    s_prime: np.ndarray  # desired stock and supply line S' (units, before cover); NaN = auto
    inventory_target: np.ndarray  # S* of the auto rule: the initial inventory
    supply_line_target: np.ndarray  # SL* of the auto rule: the initial supply line
    cover: np.ndarray  # periods of expected demand added to S'
    holding: np.ndarray
    backlog_cost: np.ndarray
    unit_cost: np.ndarray
    fixed_cost: np.ndarray
    steady_cost: np.ndarray  # operating cost per period at the steady state (incl. material)
    metric: np.ndarray  # code of each team's local metric (orgsim.management.METRICS)
    metric_scale: np.ndarray  # capacity, or throughput when uncapacitated (for utilisation)
    metric_target: np.ndarray  # the local metric's value at the steady state (management.metric_target)
    unit_margin: float  # price minus material and processing costs along a path, per unit

    @property
    def n_teams(self) -> int:
        return len(self.names)

    @property
    def top(self) -> np.ndarray:
        """Teams supplied by the outside source."""
        return np.flatnonzero(self.supplier < 0)


def build_network(cfg: Config) -> Network:
    net, pol, cost = cfg.network, cfg.policy, cfg.costs
    names, roles, stage, supplier = [], [], [], []
    first = np.cumsum((0, *net.width))
    for k in range(net.stages):
        for j in range(net.width[k]):
            role = net.roles[k]
            roles.append(role)
            names.append(role if net.width[k] == 1 else f"{role}_{j}")
            stage.append(k)
            if k + 1 < net.stages:
                supplier.append(int(first[k + 1] + (j * net.width[k + 1]) // net.width[k]))
            else:
                supplier.append(-1)
    n = len(names)
    stage = np.array(stage, dtype=np.int64)
    supplier = np.array(supplier, dtype=np.int64)
    customers = tuple(tuple(int(c) for c in np.flatnonzero(supplier == i)) for i in range(n))
    sales = np.flatnonzero(stage == 0)
    sub = np.zeros((n, sales.size), dtype=np.int64)
    for s_i, s in enumerate(sales):
        node = int(s)
        while node >= 0:
            sub[node, s_i] = 1
            node = int(supplier[node])
    od = np.array([net.order_delay[k] for k in stage], dtype=np.int64)
    lt = np.array([net.lead_time[k] for k in stage], dtype=np.int64)
    # shared demand data travels up with the orders: stage k sees it after the order delays below
    info = np.array([sum(net.order_delay[j] for j in range(k)) for k in stage], dtype=np.int64)
    cap = np.array([np.inf if net.capacity[k] is None else net.capacity[k] for k in stage], dtype=np.float64)
    throughput = sub.sum(axis=1).astype(np.float64) * cfg.demand.level
    inv0 = np.array([net.initial_inventory[k] for k in stage], dtype=np.float64)
    cover = np.array([pol.cover[k] for k in stage], dtype=np.float64)
    # auto S' (NaN): Sterman's S* + β·SL* with S* the initial inventory and SL* the initial
    # supply line, less the cover term, so the initial state is an equilibrium
    s_prime = np.array(
        [np.nan if pol.s_prime[k] is None else pol.s_prime[k] for k in stage], dtype=np.float64
    )
    sl_target = (od - 1 + lt) * throughput
    inv_target = inv0 - cover * throughput

    def per_team(values):
        return np.array([values[k] for k in stage], dtype=np.float64)

    holding, backlog_cost = per_team(cost.holding), per_team(cost.backlog)
    unit_cost, fixed_cost = per_team(cost.unit), per_team(cost.fixed)
    top = supplier < 0
    steady = (
        holding * inv0 + unit_cost * throughput + fixed_cost + np.where(top, cost.material * throughput, 0.0)
    )
    metric = np.array(
        [METRICS[LOCAL_METRIC.get(r, "holding_backlog_cost")][0] for r in roles], dtype=np.int64
    )
    scale = np.where(np.isfinite(cap), cap, throughput)
    target = np.array(
        [
            metric_target(
                int(metric[i]),
                float(throughput[i]),
                float(scale[i]),
                float(steady[i]),
                float(holding[i] * inv0[i]),
            )
            for i in range(n)
        ]
    )
    margin = cfg.finance.price - cost.material - sum(cost.unit)

    return Network(
        names=tuple(names),
        roles=tuple(roles),
        stage=stage,
        supplier=supplier,
        customers=customers,
        sales_teams=sales,
        subtree_sales=sub,
        order_delay=od,
        lead_time=lt,
        info_delay=info,
        capacity=cap,
        throughput=throughput,
        initial_inventory=inv0,
        s_prime=s_prime,
        inventory_target=inv_target,
        supply_line_target=sl_target,
        cover=cover,
        holding=holding,
        backlog_cost=backlog_cost,
        unit_cost=unit_cost,
        fixed_cost=fixed_cost,
        steady_cost=steady,
        metric=metric,
        metric_scale=scale,
        metric_target=target,
        unit_margin=float(margin),
    )
