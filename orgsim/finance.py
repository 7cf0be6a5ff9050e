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
"""

from __future__ import annotations

from numba import njit

from . import _numba_cache  # noqa: F401  (first: where Numba caches the kernels)

__all__ = ["finance_step", "ring_push"]


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
