"""Kernels of the operations layer (``orgsim.operations``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orgsim.operations import (
    allocate,
    anchor_and_adjust,
    desired_stock,
    finalize_order,
    line_sum,
    push_and_mean,
    round_half_away,
    smooth,
    team_cost,
)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
amount = st.floats(0, 1e4, allow_nan=False, allow_infinity=False)


# -- rounding ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (2.5, 3.0),
        (-2.5, -3.0),
        (0.5, 1.0),
        (-0.5, -1.0),
        (1.5, 2.0),
        (3.49, 3.0),
        (-3.51, -4.0),
        (0.0, 0.0),
        (7.0, 7.0),
    ],
)
def test_round_half_away_from_zero(x, expected):
    """Beer-game cases are rounded half away from zero (not banker's rounding: 2.5 -> 3)."""
    assert round_half_away(x) == expected


@given(x=finite)
def test_round_half_away_is_odd_and_nearest(x):
    r = round_half_away(x)
    assert r == math.floor(r)
    assert abs(r - x) <= 0.5
    assert round_half_away(-x) == -r


# -- forecasting ------------------------------------------------------------------------------
@given(expected=finite, observed=finite, theta=st.floats(0, 1))
def test_smoothing_moves_a_share_theta_toward_the_observation(expected, observed, theta):
    e = smooth(expected, observed, theta)
    assert math.isclose(e, expected + theta * (observed - expected), rel_tol=1e-12, abs_tol=1e-6)
    assert min(expected, observed) - 1e-6 <= e <= max(expected, observed) + 1e-6


def test_smoothing_extremes():
    assert smooth(10.0, 20.0, 0.0) == 10.0  # θ = 0: expectations never change
    assert smooth(10.0, 20.0, 1.0) == 20.0  # θ = 1: naive forecast
    assert smooth(10.0, 20.0, 0.25) == 12.5


@given(
    initial=st.lists(finite, min_size=1, max_size=8),
    observations=st.lists(finite, min_size=1, max_size=30),
)
def test_push_and_mean_is_a_moving_average(initial, observations):
    """After each push the result is the mean of the last p values seen (p = window length),
    counting the initial window as the values seen before."""
    window = np.array(initial, dtype=float)
    p = window.size
    seen = list(initial)
    for obs in observations:
        mean = push_and_mean(window, obs)
        seen.append(obs)
        np.testing.assert_allclose(window, seen[-p:], rtol=0, atol=0)
        assert math.isclose(mean, float(np.mean(seen[-p:])), rel_tol=1e-9, abs_tol=1e-6)


def test_push_and_mean_keeps_oldest_first():
    window = np.array([1.0, 2.0, 3.0])
    assert push_and_mean(window, 6.0) == pytest.approx(11.0 / 3.0)
    np.testing.assert_array_equal(window, [2.0, 3.0, 6.0])


# -- ordering ---------------------------------------------------------------------------------
@given(expected=finite, stock=finite, supply_line=finite, s_prime=finite, cover=st.floats(0, 10))
def test_order_up_to_is_the_special_case_alpha_beta_one(expected, stock, supply_line, s_prime, cover):
    """α_S = β = 1: order = order-up-to level (E + S' + c·E) minus inventory position (S + SL)."""
    got = anchor_and_adjust(expected, stock, supply_line, s_prime, cover, 1.0, 1.0)
    want = (expected + s_prime + cover * expected) - (stock + supply_line)
    assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-6)


@given(
    expected=finite,
    stock=finite,
    supply_line=finite,
    s_prime=finite,
    cover=st.floats(0, 10),
    alpha=st.floats(0, 1),
    beta=st.floats(0, 1),
)
def test_anchor_and_adjust_equation(expected, stock, supply_line, s_prime, cover, alpha, beta):
    """O = E + α_S·(S' + c·E − S − β·SL) (Sterman 1989); α_S = 0 orders expected demand."""
    got = anchor_and_adjust(expected, stock, supply_line, s_prime, cover, alpha, beta)
    want = expected + alpha * (s_prime + cover * expected - stock - beta * supply_line)
    assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-5)
    assert anchor_and_adjust(expected, stock, supply_line, s_prime, cover, 0.0, beta) == expected


def test_supply_line_weight_discounts_the_supply_line():
    full = anchor_and_adjust(10.0, 5.0, 20.0, 40.0, 0.0, 1.0, 1.0)
    none = anchor_and_adjust(10.0, 5.0, 20.0, 40.0, 0.0, 1.0, 0.0)
    assert none - full == pytest.approx(20.0)


@given(
    inventory_target=finite,
    supply_line_target=st.floats(0, 1e5),
    beta=st.floats(0, 1),
    s_prime=finite,
)
def test_desired_stock(inventory_target, supply_line_target, beta, s_prime):
    """S' as configured, or (NaN: auto) Sterman's S* + β·SL* — with which the ordering rule
    orders exactly expected demand at the targets: E + α_S·(S* + β·SL* − S* − β·SL*) = E."""
    assert desired_stock(s_prime, inventory_target, supply_line_target, beta) == s_prime
    auto = desired_stock(math.nan, inventory_target, supply_line_target, beta)
    assert auto == pytest.approx(inventory_target + beta * supply_line_target, rel=1e-12, abs=1e-9)
    order = anchor_and_adjust(50.0, inventory_target, supply_line_target, auto, 0.0, 0.7, beta)
    assert order == pytest.approx(50.0, abs=1e-9 * max(1.0, abs(inventory_target), supply_line_target))


@pytest.mark.parametrize(
    ("x", "allow_negative", "integer", "expected"),
    [
        (2.5, False, True, 3.0),
        (2.4, False, True, 2.0),
        (2.4, False, False, 2.4),
        (-3.0, False, False, 0.0),
        (-3.0, True, False, -3.0),
        (-2.5, True, True, -3.0),
        (-0.4, False, True, 0.0),
    ],
)
def test_finalize_order(x, allow_negative, integer, expected):
    assert finalize_order(x, allow_negative, integer) == expected


# -- rationing --------------------------------------------------------------------------------
def shipped(requests, available, integer):
    req = np.array(requests, dtype=float)
    out = np.full(req.size, np.nan)
    total = allocate(req, float(available), integer, out)
    return total, out


def test_full_fill_when_stock_covers_requests():
    total, out = shipped([3.0, 4.5, 0.0], 100.0, False)
    np.testing.assert_array_equal(out, [3.0, 4.5, 0.0])
    assert total == 7.5


def test_proportional_rationing():
    total, out = shipped([10.0, 30.0], 20.0, False)
    np.testing.assert_allclose(out, [5.0, 15.0])
    assert total == pytest.approx(20.0)


def test_integer_rationing_hands_out_the_remainder_in_team_order():
    # shares 10·7/15 = 4.67 and 5·7/15 = 2.33 -> floors 4 + 2 = 6, one unit left for team 0
    total, out = shipped([10.0, 5.0], 7.0, True)
    np.testing.assert_array_equal(out, [5.0, 2.0])
    assert total == 7.0


def test_single_customer_integer_shortage_ships_whole_units():
    total, out = shipped([10.0], 7.9, True)
    assert out[0] == 7.0 and total == 7.0


def test_returns_pass_through():
    """Non-positive total requests (negative orders in serial networks) are returned goods."""
    total, out = shipped([-4.0], 0.0, False)
    assert out[0] == -4.0 and total == -4.0


def test_nothing_ships_without_stock():
    total, out = shipped([5.0, 5.0], 0.0, True)
    np.testing.assert_array_equal(out, [0.0, 0.0])
    assert total == 0.0
    total, out = shipped([5.0, 5.0], -3.0, False)
    np.testing.assert_array_equal(out, [0.0, 0.0])


@given(
    requests=st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=6),
    available=st.floats(-10, 2e4, allow_nan=False),
)
def test_rationing_properties(requests, available):
    total, out = shipped(requests, available, False)
    req = np.array(requests)
    tol = 1e-9 * max(1.0, req.sum())
    assert total == pytest.approx(out.sum(), abs=tol)
    assert np.all(out <= req + tol), "a customer got more than it asked for"
    assert np.all(out >= -tol)
    assert total == pytest.approx(min(req.sum(), max(available, 0.0)), abs=tol)


@given(
    requests=st.lists(st.integers(0, 1000), min_size=1, max_size=6),
    available=st.floats(-5, 5000, allow_nan=False),
)
def test_integer_rationing_properties(requests, available):
    total, out = shipped(requests, available, True)
    req = np.array(requests, dtype=float)
    assert np.array_equal(out, np.floor(out)), "fractional units shipped"
    assert np.all(out <= req) and np.all(out >= 0)
    assert total == out.sum()
    if available >= req.sum():
        np.testing.assert_array_equal(out, req)
    else:
        assert total == math.floor(max(available, 0.0)), "whole units left on the shelf"
        share = req * max(available, 0.0) / req.sum() if req.sum() > 0 else req * 0
        assert np.all(out >= np.floor(share)), "a customer got less than its proportional floor"


# -- costs ------------------------------------------------------------------------------------
def test_team_cost():
    assert team_cost(10.0, 4.0, 6.0, 0.5, 1.0, 2.0, 3.0) == 0.5 * 10 + 1.0 * 4 + 2.0 * 6 + 3.0


def test_team_cost_charges_no_holding_on_negative_stock_or_processing_on_returns():
    assert team_cost(-10.0, 0.0, -6.0, 0.5, 1.0, 2.0, 0.0) == 0.0


@given(values=st.lists(finite, max_size=20))
def test_line_sum(values):
    assert line_sum(np.array(values, dtype=float)) == pytest.approx(math.fsum(values), abs=1e-6)
