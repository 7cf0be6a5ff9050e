"""Kernels of the finance layer (``orgsim.finance``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orgsim.finance import finance_step, ring_push

money = st.floats(-1e5, 1e5, allow_nan=False, allow_infinity=False)
stock = st.floats(0, 1e5, allow_nan=False, allow_infinity=False)

# finance_step(cash, debt, trailing_ebitda, breach, fcf, rate, min_cash, multiple, grace, enabled)
# -> (cash, debt, limit, breach, insolvent, net_financing, interest)


def step(
    cash=1000.0,
    debt=0.0,
    trailing=1000.0,
    breach=0,
    fcf=0.0,
    rate=0.01,
    min_cash=100.0,
    multiple=2.0,
    grace=2,
):
    out = finance_step(cash, debt, trailing, breach, fcf, rate, min_cash, multiple, grace, True)
    return dict(zip(("cash", "debt", "limit", "breach", "insolvent", "net_financing", "interest"), out))


@given(
    cash=money,
    debt=stock,
    trailing=money,
    breach=st.integers(0, 5),
    fcf=money,
    rate=st.floats(0, 0.1),
    min_cash=stock,
    multiple=st.floats(0, 20),
    grace=st.integers(0, 5),
)
def test_financing_identities(cash, debt, trailing, breach, fcf, rate, min_cash, multiple, grace):
    s = step(cash, debt, trailing, breach, fcf, rate, min_cash, multiple, grace)
    scale = 1e-9 * max(1.0, abs(cash), abs(fcf), debt, min_cash, abs(multiple * trailing))
    # cash identity: new cash = old cash + FCF + net financing (draws − repayments − interest)
    assert s["cash"] == pytest.approx(cash + fcf + s["net_financing"], abs=scale)
    # debt moves by draws − repayments = net financing + interest
    assert s["debt"] - debt == pytest.approx(s["net_financing"] + s["interest"], abs=scale)
    assert s["interest"] == pytest.approx(rate * debt, abs=scale)
    assert s["limit"] == pytest.approx(max(0.0, multiple * trailing), abs=scale)
    assert s["debt"] >= -scale
    if s["debt"] > debt + scale:  # the firm drew: never beyond the limit, never beyond need
        assert s["debt"] <= s["limit"] + scale
        assert s["cash"] <= max(min_cash, cash + fcf - rate * debt) + scale
    if s["debt"] > s["limit"] + 1e-9:  # above the limit only when no cash is left to repay
        assert s["cash"] <= scale
        assert s["breach"] == breach + 1
    elif s["debt"] <= s["limit"]:
        assert s["breach"] == 0
    assert s["insolvent"] == (s["cash"] < 0.0 or s["breach"] > grace)


def test_draws_to_keep_minimum_cash():
    s = step(cash=0.0, debt=0.0, trailing=1000.0, fcf=50.0, min_cash=300.0, multiple=2.0)
    assert s["debt"] == pytest.approx(250.0)
    assert s["cash"] == pytest.approx(300.0)
    assert s["net_financing"] == pytest.approx(250.0)
    assert not s["insolvent"]


def test_draws_are_capped_by_the_limit():
    s = step(cash=0.0, debt=0.0, trailing=50.0, fcf=-200.0, min_cash=300.0, multiple=2.0)
    assert s["limit"] == pytest.approx(100.0)
    assert s["debt"] == pytest.approx(100.0)
    assert s["cash"] == pytest.approx(-100.0)
    assert s["insolvent"], "negative cash after every draw is insolvency"


def test_surplus_cash_repays_debt():
    s = step(cash=500.0, debt=300.0, trailing=1000.0, fcf=0.0, rate=0.0, min_cash=100.0)
    assert s["debt"] == pytest.approx(0.0)
    assert s["cash"] == pytest.approx(200.0)
    assert s["net_financing"] == pytest.approx(-300.0)


def test_interest_on_opening_debt():
    s = step(cash=100.0, debt=1000.0, trailing=1000.0, fcf=0.0, rate=0.01, min_cash=100.0)
    assert s["interest"] == pytest.approx(10.0)


def test_negative_trailing_ebitda_closes_the_credit_line():
    s = step(cash=1000.0, debt=0.0, trailing=-500.0, fcf=-950.0, min_cash=100.0)
    assert s["limit"] == 0.0
    assert s["debt"] == 0.0
    assert s["cash"] == pytest.approx(50.0)


def test_covenant_breach_becomes_insolvency_after_the_grace_periods():
    """Debt above a limit that has fallen to zero, and no cash to repay it: the breach counter
    grows each period and the firm is insolvent once it exceeds the grace periods."""
    grace = 3
    cash, debt, breach = 0.0, 500.0, 0
    history = []
    for _ in range(grace + 2):
        cash, debt, _, breach, insolvent, _, _ = finance_step(
            cash, debt, -100.0, breach, 0.0, 0.0, 0.0, 2.0, grace, True
        )
        history.append((breach, insolvent))
        assert cash == 0.0 and debt == 500.0
    assert history == [(1, False), (2, False), (3, False), (4, True), (5, True)]


def test_covenant_excess_is_repaid_from_cash_first():
    s = step(cash=400.0, debt=500.0, trailing=100.0, fcf=0.0, rate=0.0, min_cash=1000.0, multiple=2.0)
    assert s["limit"] == pytest.approx(200.0)
    assert s["debt"] == pytest.approx(200.0)
    assert s["cash"] == pytest.approx(100.0)
    assert s["breach"] == 0


def test_breach_counter_resets_when_back_within_the_limit():
    s = step(cash=1000.0, debt=100.0, trailing=1000.0, breach=3, fcf=0.0)
    assert s["breach"] == 0


@given(cash=money, debt=stock, fcf=money)
def test_disabled_finance_just_accumulates(cash, debt, fcf):
    out = finance_step(cash, debt, -1e6, 7, fcf, 0.05, 1e4, 3.0, 0, False)
    assert out == (cash + fcf, debt, 0.0, 0, False, 0.0, 0.0)


def test_ring_push_returns_the_value_it_replaces():
    ring = np.array([1.0, 2.0, 3.0])
    assert ring_push(ring, 1, 9.0) == 2.0
    np.testing.assert_array_equal(ring, [1.0, 9.0, 3.0])


def test_ring_push_is_a_lag():
    """Pushing at t % W returns the value pushed W periods earlier (the receivables lag)."""
    lag = 4
    ring = np.full(lag, -1.0)
    out = [ring_push(ring, t % lag, float(t)) for t in range(1, 13)]
    assert out == [-1.0] * lag + [float(t) for t in range(1, 9)]
