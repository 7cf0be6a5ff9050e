"""Finance layer: cash, debt, a covenant-linked credit line and insolvency.

Per period (money units)::

    EBITDA = revenue − operating cost
    FCF    = collections − cash operating costs − supplier payments   (= EBITDA − ΔAR + ΔAP)
    limit  = max(0, m · Σ_{last W periods} EBITDA)                    (covenant on trailing EBITDA)
    interest = r · debt_{t−1}
    cash_t = cash_{t−1} + FCF + net financing,   net financing = draws − repayments − interest

The firm draws on its credit line to keep ``min_cash``, sweeps cash above it into repayment,
and must repay debt above the limit. It becomes insolvent — an absorbing state — when cash is
negative after all draws, or when debt has exceeded the limit for more than ``grace`` periods.

Both engines keep a firm's books as :class:`Accounts`: :func:`open_accounts` before period 1
(the steady state), :func:`settle` in phase 7 of a period, :func:`dormant` in the periods after
insolvency.
"""

from __future__ import annotations

from typing import NamedTuple

from numba import njit

from . import _numba_cache  # noqa: F401  (first: where Numba caches the kernels)
from .operations import operating_cost
from .schema import Param, TeamParam

__all__ = ["Accounts", "dormant", "finance_step", "open_accounts", "ring_push", "settle"]


class Accounts(NamedTuple):
    """A firm's accounts for one period (money units): its flows and, at the end of it, its
    balance sheet, covenant state and solvency. The names are the KPIs' (docs/model.md §10.1)."""

    revenue: float
    operating_cost: float
    ebitda: float
    free_cash_flow: float
    net_financing: float
    interest: float
    cash_start: float
    cash: float
    debt: float
    credit_limit: float
    credit_headroom: float
    trailing_ebitda: float  #: Σ of the last ``covenant_window`` EBITDAs
    breach: int  #: consecutive periods with debt above the limit
    solvent: bool


@njit(cache=True, _nrt=False)
def ring_push(ring, pos, value):
    """Write ``value`` at ``pos`` of a ring buffer; return the value it replaced."""
    old = ring[pos]
    ring[pos] = value
    return old


@njit(cache=True)
def finance_step(cash, debt, trailing_ebitda, breach, fcf, rate, min_cash, multiple, grace, enabled):
    """One period of financing.

    Returns ``(cash, debt, limit, breach, insolvent, net_financing, interest)``.
    """
    if not enabled:
        return cash + fcf, debt, 0.0, 0, False, 0.0, 0.0
    interest = rate * debt
    limit = multiple * trailing_ebitda
    if limit < 0.0:
        limit = 0.0
    pre = cash + fcf - interest
    draw = 0.0
    repay = 0.0
    if pre < min_cash:
        room = limit - debt
        if room > 0.0:
            draw = min(min_cash - pre, room)
    elif debt > 0.0:
        repay = min(debt, pre - min_cash)
    new_debt = debt + draw - repay
    if new_debt > limit:
        # covenant: debt above the limit is repaid from any cash the firm has
        free = pre + draw - repay
        if free > 0.0:
            extra = min(new_debt - limit, free)
            repay += extra
            new_debt -= extra
    new_cash = pre + draw - repay
    if new_debt > limit + 1e-9:
        breach += 1
    else:
        breach = 0
    insolvent = new_cash < 0.0 or breach > grace
    return new_cash, new_debt, limit, breach, insolvent, draw - repay - interest, interest


@njit(cache=True, _nrt=False)
def open_accounts(p, tp, factors, sales, receivables, payables, ebitda_ring):
    """The books before period 1, at the steady state of the firm as it is (each team's cost
    ``factors`` φ, its knowledge after the burn-in included, docs/model.md §5): fills the
    ``receivables`` and ``payables`` rings with the steady revenue and material cost and the
    ``ebitda_ring`` with the steady EBITDA; ``tp`` is ``[team, TeamParam]``, ``sales`` the
    sales teams. Returns the opening :class:`Accounts` (no flows yet)."""
    throughput = 0.0
    for s in range(sales.shape[0]):
        throughput += tp[sales[s], TeamParam.throughput]
    revenue = p[Param.price] * throughput
    costs = 0.0
    material = 0.0
    for i in range(tp.shape[0]):
        flow = tp[i, TeamParam.throughput]
        cost, bought = operating_cost(
            tp[i], tp[i, TeamParam.initial_inventory], 0.0, flow, flow, factors[i], p[Param.material]
        )
        costs += cost
        material += bought
    ebitda = revenue - costs
    receivables[:] = revenue
    payables[:] = material
    ebitda_ring[:] = ebitda
    trailing = ebitda * ebitda_ring.shape[0]
    limit = max(0.0, p[Param.covenant_multiple] * trailing) if p[Param.finance_enabled] != 0.0 else 0.0
    cash = p[Param.initial_cash]
    return Accounts(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, cash, cash, 0.0, limit, limit, trailing, 0, True)


@njit(cache=True, _nrt=False, forceinline=True)
def settle(
    p, t, books, sales_shipped, team_costs, programme_cost, material, receivables, payables, ebitda_ring
):
    """Phase 7 of period ``t``: revenue from the units the sales teams shipped, operating cost
    (the teams' costs and the programmes'), EBITDA, collections and payments through the
    ``receivables`` and ``payables`` rings (lags 0: none), free cash flow, the trailing EBITDA
    of the covenant window, and financing (:func:`finance_step`) from the previous period's
    ``books``. Returns the period's :class:`Accounts`."""
    revenue = p[Param.price] * sales_shipped
    cost = team_costs + programme_cost
    ebitda = revenue - cost
    r_lag = receivables.shape[0]
    p_lag = payables.shape[0]
    collections = ring_push(receivables, t % r_lag, revenue) if r_lag else revenue
    payments = ring_push(payables, t % p_lag, material) if p_lag else material
    fcf = collections - (cost - material) - payments
    trailing = books.trailing_ebitda + (ebitda - ring_push(ebitda_ring, t % ebitda_ring.shape[0], ebitda))
    cash, debt, limit, breach, insolvent, net_financing, interest = finance_step(
        books.cash,
        books.debt,
        trailing,
        books.breach,
        fcf,
        p[Param.interest_rate],
        p[Param.min_cash],
        p[Param.covenant_multiple],
        int(p[Param.grace_periods]),
        p[Param.finance_enabled] != 0.0,
    )
    return Accounts(
        revenue, cost, ebitda, fcf, net_financing, interest, books.cash, cash, debt, limit, limit - debt,
        trailing, breach, not insolvent,
    )  # fmt: skip


@njit(cache=True)
def dormant(books):
    """The accounts of a period after insolvency (§7.12): no flows, no interest, the balance
    sheet and covenant state frozen."""
    return Accounts(
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, books.cash, books.cash, books.debt, books.credit_limit,
        books.credit_headroom, books.trailing_ebitda, books.breach, books.solvent,
    )  # fmt: skip
