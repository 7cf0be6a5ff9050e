"""Operations layer: forecasting, the ordering heuristic, rationing and operating costs.

Pure Numba functions over numbers and small arrays; the Mesa agents call them step by step and
the batch kernels in their loops, so each equation is written once.

Ordering is Sterman's (1989) anchoring-and-adjustment heuristic::

    O_t = E_t + α_S · (S'_t − S_t − β · SL_t),      S'_t = s' + c · E_t,

with expected demand E_t by exponential smoothing (θ) or a p-period moving average, S_t the
effective stock (inventory − backlog), SL_t the supply line (orders not yet filled by the
supplier, the supplier's backlog owed to the team, and goods in transit). With α_S = β = 1 it is
the order-up-to policy with order-up-to level E_t + S'_t.
"""

from __future__ import annotations

import math

from numba import njit

from . import _numba_cache  # noqa: F401  (first: where Numba caches the kernels)

__all__ = [
    "allocate",
    "allocate_one",
    "anchor_and_adjust",
    "desired_stock",
    "finalize_order",
    "line_sum",
    "push_and_mean",
    "round_half_away",
    "row_sum",
    "smooth",
    "team_cost",
]


@njit(cache=True)
def round_half_away(x):
    """Round half away from zero (the beer game's integer cases)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


@njit(cache=True)
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


@njit(cache=True)
def desired_stock(s_prime, inventory_target, supply_line_target, beta):
    """S': the configured value, or (``s_prime`` NaN) Sterman's S* + β·SL* from the targets.

    With the targets at the initial inventory and supply line, the initial state is an
    equilibrium for any effective supply-line weight β.
    """
    if math.isnan(s_prime):
        return inventory_target + beta * supply_line_target
    return s_prime


@njit(cache=True)
def anchor_and_adjust(expected, stock, supply_line, s_prime, cover, alpha_s, beta):
    """Indicated order E + α_S·(S' + c·E − S − β·SL), before rounding and the floor at zero."""
    desired = s_prime + cover * expected
    return expected + alpha_s * (desired - stock - beta * supply_line)


@njit(cache=True)
def finalize_order(x, allow_negative, integer):
    """Round to whole units if asked, then floor at zero unless negative orders are allowed."""
    if integer:
        x = round_half_away(x)
    if not allow_negative and x < 0.0:
        x = 0.0
    return x


@njit(cache=True)
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


@njit(cache=True)
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
