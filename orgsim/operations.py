"""Operations layer: forecasting, the ordering heuristic, rationing and operating costs.

Pure Numba functions over numbers and small arrays; the Mesa agents call them step by step and
the batch kernels in their loops, so each equation is written once. The phase kernels —
:func:`receive`, :func:`fill`, :func:`source_fill`, :func:`operating_cost`, :func:`shift` (the
order pipeline), :func:`observed_demand`, :func:`forecast`, :func:`supply_line` and
:func:`order` — are a team's part of phases 1–5 of a period (docs/model.md §3); they read the
firm's parameter vector ``p`` (columns :class:`orgsim.schema.Param`) and the team's parameter
row ``tp`` (:class:`orgsim.schema.TeamParam`). A pipeline argument is the team's own: its
length is the team's delay.

Ordering is Sterman's (1989) anchoring-and-adjustment heuristic::

    O_t = E_t + α_S · (S'_t − S_t − β · SL_t),      S'_t = s' + c · E_t,

with expected demand E_t by exponential smoothing (θ) or a p-period moving average, S_t the
effective stock (inventory − backlog), SL_t the supply line (orders not yet filled by the
supplier, the supplier's backlog owed to the team, and goods in transit). With α_S = β = 1 it is
the order-up-to policy with order-up-to level E_t + S'_t.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import _numba_cache  # noqa: F401  (first: where Numba caches the kernels)
from .culture import supply_line_weight
from .schema import Param, TeamParam

__all__ = [
    "allocate",
    "allocate_one",
    "anchor_and_adjust",
    "desired_stock",
    "fill",
    "fill_rate",
    "finalize_order",
    "forecast",
    "idle_flows",
    "line_sum",
    "observed_demand",
    "operating_cost",
    "order",
    "push_and_mean",
    "receive",
    "round_half_away",
    "row_sum",
    "shift",
    "smooth",
    "source_fill",
    "supply_line",
    "team_cost",
    "unmet_backlog",
]


@njit(cache=True, _nrt=False)
def round_half_away(x):
    """Round half away from zero (the beer game's integer cases)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


@njit(cache=True, _nrt=False)
def smooth(expected, observed, theta):
    """Exponential smoothing E ← E + θ·(observed − E)."""
    return expected + theta * (observed - expected)


@njit(cache=True, _nrt=False)
def push_and_mean(window, observed):
    """Shift ``observed`` into the moving-average window (oldest first); return its mean."""
    p = window.shape[0]
    for i in range(p - 1):
        window[i] = window[i + 1]
    window[p - 1] = observed
    total = 0.0
    for i in range(p):
        total += window[i]
    return total / p


@njit(cache=True, _nrt=False)
def desired_stock(s_prime, inventory_target, supply_line_target, beta):
    """S': the configured value, or (``s_prime`` NaN) Sterman's S* + β·SL* from the targets.

    With the targets at the initial inventory and supply line, the initial state is an
    equilibrium for any effective supply-line weight β.
    """
    if math.isnan(s_prime):
        return inventory_target + beta * supply_line_target
    return s_prime


@njit(cache=True, _nrt=False)
def anchor_and_adjust(expected, stock, supply_line, s_prime, cover, alpha_s, beta):
    """Indicated order E + α_S·(S' + c·E − S − β·SL), before rounding and the floor at zero."""
    desired = s_prime + cover * expected
    return expected + alpha_s * (desired - stock - beta * supply_line)


@njit(cache=True, _nrt=False)
def finalize_order(x, allow_negative, integer):
    """Round to whole units if asked, then floor at zero unless negative orders are allowed."""
    if integer:
        x = round_half_away(x)
    if not allow_negative and x < 0.0:
        x = 0.0
    return x


@njit(cache=True, _nrt=False)
def allocate_one(request, available, integer):
    """What :func:`allocate` ships to a lone request, without arrays: ``(shipped to it, total
    shipped)``, i.e. ``out[0]`` and the return value of ``allocate`` with ``n = 1``. The
    request in full when ``available`` covers it (or it is not positive), else all that is
    available (whole units when ``integer``)."""
    total = 0.0 + request
    if total <= 0.0 or available >= total:
        return request, total
    ship = max(available, 0.0)
    shipped = math.floor(ship) if integer else ship
    return shipped, shipped


@njit(cache=True, _nrt=False)
def allocate(requests, available, integer, out, n=-1):
    """Ship what can be shipped of ``requests`` into ``out``; return the total shipped.

    Full requests when ``available`` covers them, else proportional rationing (whole units
    first, then one unit at a time in team order when ``integer``). Non-positive total requests
    (negative orders, serial networks only) are returned goods and are passed through.
    Only the first ``n`` requests take part (all of them by default; ``n`` must not exceed
    the buffers' length), so callers can reuse one buffer without slicing it.
    """
    if n < 0:
        n = requests.shape[0]
    if n == 1:  # a lone customer gets all that is available (no rationing formula)
        out[0], shipped = allocate_one(requests[0], available, integer)
        return shipped
    total = 0.0
    for i in range(n):
        total += requests[i]
    if total <= 0.0 or available >= total:
        for i in range(n):
            out[i] = requests[i]
        return total
    ship = max(available, 0.0)
    shipped = 0.0
    for i in range(n):
        share = requests[i] * ship / total if requests[i] > 0.0 else 0.0
        out[i] = math.floor(share) if integer else share
        shipped += out[i]
    if integer:
        left = math.floor(ship) - shipped
        i = 0
        while left > 0.0 and i < n:
            if out[i] < requests[i]:
                out[i] += 1.0
                shipped += 1.0
                left -= 1.0
            i += 1
    return shipped


@njit(cache=True, _nrt=False)
def team_cost(inventory, backlog, shipped, holding, backlog_cost, unit_cost, fixed_cost):
    """Operating cost of a team in a period (money): holding, backlog, processing and fixed."""
    return holding * max(inventory, 0.0) + backlog_cost * backlog + unit_cost * max(shipped, 0.0) + fixed_cost


@njit(cache=True, _nrt=False)
def line_sum(values, n=-1):
    """Sum of the first ``n`` values (all by default; at most ``len(values)``) in index order
    (both engines add pipelines the same way, so floats agree)."""
    if n < 0:
        n = values.shape[0]
    total = 0.0
    for i in range(n):
        total += values[i]
    return total


@njit(cache=True, _nrt=False)
def row_sum(values, row, n):
    """Sum of the first ``n`` entries (at most the row's length) of row ``row`` of a 2-D array,
    in index order (the same floats as :func:`line_sum` of the row, without making a view)."""
    total = 0.0
    for i in range(n):
        total += values[row, i]
    return total


# --------------------------------------------------------------------------------------------
# a team's phases (docs/model.md §3, §7.4-7.10)
# --------------------------------------------------------------------------------------------
@njit(cache=True, _nrt=False)
def shift(pipeline, n=-1):
    """Advance a pipeline, its first ``n`` slots (all by default), one slot (§7.4, §7.7):
    returns what leaves its head; the tail slot becomes 0. (The batch engine keeps each team's
    pipeline in a row padded to the longest delay and passes its length, which costs less than
    a view of the row's first ``n`` slots.)"""
    if n < 0:
        n = pipeline.shape[0]
    head = pipeline[0]
    for k in range(n - 1):
        pipeline[k] = pipeline[k + 1]
    pipeline[n - 1] = 0.0
    return head


@njit(cache=True, _nrt=False)
def receive(inbound, inventory, n=-1):
    """Phase 1 (§7.4): the goods at the head of the team's ``inbound`` pipeline (its first
    ``n`` slots, all by default) arrive; returns ``(inventory, received)``."""
    received = shift(inbound, n)
    return inventory + received, received


@njit(cache=True, _nrt=False, forceinline=True)
def fill(requests, m, inventory, capacity, integer, out):
    """Phase 2 (§7.5): ship from stock, up to ``capacity``, what can be shipped of the first
    ``m`` ``requests`` into ``out`` (:func:`allocate`); returns ``(inventory, shipped,
    requested)``."""
    available = min(max(inventory, 0.0), capacity)
    if m == 1:  # one customer (the common case): allocate_one directly, as allocate would
        out[0], shipped = allocate_one(requests[0], available, integer)
    else:
        shipped = allocate(requests, available, integer, out, m)
    return inventory - shipped, shipped, line_sum(requests, m)


@njit(cache=True, _nrt=False)
def unmet_backlog(request, shipped, backlog_unmet):
    """A sales team's backlog after filling: the end customers' unfilled request, or 0 when
    unmet demand is lost (``costs.unmet = lost_sales``)."""
    return request - shipped if backlog_unmet else 0.0


@njit(cache=True, _nrt=False)
def source_fill(p, tp, request, disrupted):
    """Phase 2, the outside source (§7.5): what it ships to a top team that asks for
    ``request``: all of it, or during a supply disruption at most (1 − severity)·x̄. Returns
    ``(shipped, still owed)``."""
    cap = (1.0 - p[Param.disruption_severity]) * tp[TeamParam.throughput] if disrupted else np.inf
    shipped = allocate_one(request, cap, p[Param.integer] != 0.0)[0]
    return shipped, request - shipped


@njit(cache=True, _nrt=False)
def operating_cost(tp, inventory, backlog, shipped, received, factor, material_price):
    """Phase 3 (§7.6): a team's operating cost in a period and the material cost within it:
    holding and backlog cost, processing and fixed cost times the process-cost ``factor`` and,
    for a team supplied by the outside source, the ``received`` material at
    ``material_price``·factor. Returns ``(cost, material cost)``."""
    cost = team_cost(
        inventory,
        backlog,
        shipped,
        tp[TeamParam.holding],
        tp[TeamParam.backlog_cost],
        tp[TeamParam.unit_cost] * factor,
        tp[TeamParam.fixed_cost] * factor,
    )
    material = material_price * factor * received if tp[TeamParam.is_top] != 0.0 else 0.0
    return cost + material, material


@njit(cache=True, _nrt=False)
def observed_demand(p, incoming, history, period, subtree):
    """Phase 5 (§7.8): what a team forecasts from: its ``incoming`` demand or orders, or with
    shared information the end-customer demand of the sales teams downstream of it
    (``subtree[s] != 0``) in ``period`` (its information delay ago; the steady state before
    period 1), from ``history[period, sales team]``."""
    if p[Param.shared] == 0.0:
        return incoming
    row = max(period, 0)
    total = 0.0
    for s in range(subtree.shape[0]):
        if subtree[s] != 0:
            total += history[row, s]
    return total


@njit(cache=True, _nrt=False, forceinline=True)
def forecast(p, expected, window, observed, noise_sd, z):
    """Phase 5 (§7.8): expected demand after this period's ``observed`` value, distorted by
    forecast noise ``observed·(1 + noise_sd·z)`` when ``noise_sd`` > 0, then smoothed (θ) or
    averaged over the moving-average ``window`` (updated in place)."""
    if noise_sd > 0.0:
        observed = observed * (1.0 + noise_sd * z)
    if p[Param.moving_average] != 0.0:
        return push_and_mean(window, observed)
    return smooth(expected, observed, p[Param.theta])


@njit(cache=True, _nrt=False, forceinline=True)
def supply_line(orders, owed, inbound, n_orders=-1, n_inbound=-1):
    """The supply line SL (§7.9): order slips not yet read by the supplier, what the supplier
    owes the team, and goods in transit to it (the first ``n_orders`` and ``n_inbound`` slots
    of the two pipelines; all by default)."""
    return line_sum(orders, n_orders) + owed + line_sum(inbound, n_inbound)


@njit(cache=True, _nrt=False)
def order(p, tp, t, expected, stock, line, bias, q, execution_sd, z):
    """Phase 5 (§7.10): the team's order in period ``t``: x̄ in the fixed-order periods, else
    the anchoring-and-adjustment rule with the supply-line weight of a team of decision quality
    ``q`` and the stock ``bias`` on S', times the execution noise ``1 + execution_sd·z`` when
    ``execution_sd`` > 0; rounded to whole units if asked and floored at 0 unless negative
    orders are allowed. ``stock`` is inventory − backlog, ``line`` the supply line."""
    if t <= p[Param.fixed_order_periods]:
        indicated = tp[TeamParam.throughput]
    else:
        beta = supply_line_weight(p, q)
        desired = desired_stock(
            tp[TeamParam.s_prime], tp[TeamParam.inventory_target], tp[TeamParam.supply_line_target], beta
        )
        indicated = anchor_and_adjust(
            expected, stock, line, bias * desired, tp[TeamParam.cover], p[Param.alpha_s], beta
        )
        if execution_sd > 0.0:  # process variability, damped by maturity
            indicated = indicated * (1.0 + execution_sd * z)
    return finalize_order(indicated, p[Param.allow_negative_orders] != 0.0, p[Param.integer] != 0.0)


@njit(cache=True, _nrt=False)
def fill_rate(shipped, requested):
    """The share of the end customers' requests shipped: 1 when nothing was requested (a
    dormant firm ships nothing: 0 if there was demand)."""
    return shipped / requested if requested > 0 else 1.0


@njit(cache=True)
def idle_flows():
    """A dormant team's flows after insolvency (§7.12): ``(received, shipped, order, cost,
    requested, material cost)``, all 0; its stocks stay as they were."""
    return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
