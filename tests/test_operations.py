"""Kernels of the operations layer (``orgsim.operations``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from orgsim.operations import (
    allocate,
    allocate_one,
    anchor_and_adjust,
    desired_stock,
    finalize_order,
    line_sum,
    push_and_mean,
    round_half_away,
    row_sum,
    smooth,
    team_cost,
)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
amount = st.floats(0, 1e4, allow_nan=False, allow_infinity=False)
# Summands of very different magnitudes, so that adding them in another order changes the float.
summands = st.one_of(finite, st.floats(-1e17, 1e17), st.sampled_from([0.1, 0.2, 0.3, 1e16, -1e16]))
# What a reused buffer may hold beyond the n entries in use: anything, NaN included.
junk = st.floats(allow_nan=True, allow_infinity=True)


def same_bits(a, b) -> bool:
    """The two floats are the same 64 bits (stricter than ``==``: tells 0.0 from -0.0)."""
    return np.float64(a).tobytes() == np.float64(b).tobytes()


def sum_in_index_order(values) -> float:
    total = 0.0
    for v in values:
        total += float(v)
    return total


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


@given(
    integer=st.booleans(),
    available=st.floats(-10, 2e4, allow_nan=False),
    data=st.data(),
)
def test_allocate_uses_only_the_first_n_requests(integer, available, data):
    """``allocate(buf, a, integer, out, n)`` is ``allocate`` of the slice ``buf[:n]``: the same
    total and ``out[:n]`` bit for bit, whatever the buffer holds beyond n, and ``out`` beyond n is
    left as it was (the Numba engine reuses one request buffer for customer lists of any size)."""
    unit = st.integers(-20, 1000).map(float) if integer else st.floats(-20, 1e4, allow_nan=False)
    used = data.draw(st.lists(unit, min_size=0, max_size=6), label="requests")
    extra = data.draw(st.lists(junk, min_size=1, max_size=6), label="junk beyond n")
    n = len(used)
    buf = np.array(used + extra, dtype=float)
    before = np.array(data.draw(st.lists(junk, min_size=buf.size, max_size=buf.size)), dtype=float)
    out = before.copy()
    total = allocate(buf, available, integer, out, n)

    out_ref = np.full(n, np.nan)
    total_ref = allocate(buf[:n].copy(), available, integer, out_ref)
    assert same_bits(total, total_ref)
    assert out[:n].tobytes() == out_ref.tobytes()
    assert out[n:].tobytes() == before[n:].tobytes(), "allocate wrote beyond the first n entries"


@pytest.mark.parametrize(
    ("request_", "available", "integer", "expected"),
    [(3.0, 0.7, False, 0.7), (6.0, 3.3, False, 3.3), (10.0, 7.9, True, 7.0), (3.0, -1.0, False, 0.0)],
)
def test_allocate_one_request_of_a_longer_buffer_is_a_lone_customer(request_, available, integer, expected):
    """n = 1 ships all that is available, as to a lone customer (here 3·0.7/3 would be
    0.6999999999999998, so the rationing formula must not be used)."""
    out = np.array([np.nan, -1.0, np.nan])
    total = allocate(np.array([request_, 5.0, np.nan]), available, integer, out, 1)
    assert same_bits(total, expected) and same_bits(out[0], expected)
    assert out[1] == -1.0 and np.isnan(out[2])


@given(
    request_=st.one_of(st.floats(-50, 1e4, allow_nan=False), st.sampled_from([0.0, -0.0, 7.0])),
    available=st.one_of(st.floats(-10, 2e4, allow_nan=False), st.sampled_from([0.0, -0.0, np.inf])),
    integer=st.booleans(),
)
def test_allocate_one_is_allocate_of_one_request(request_, available, integer):
    """``allocate_one(q, a, integer)`` gives bit for bit what ``allocate`` gives one request q:
    ``(out[0], total shipped)``, signed zeros included (the batch engine uses it for customers
    and sources with one request)."""
    out = np.full(1, np.nan)
    total = allocate(np.array([request_]), available, integer, out)
    shipped, shipped_total = allocate_one(request_, available, integer)
    assert same_bits(shipped, out[0]) and same_bits(shipped_total, total)


@given(
    requests=st.lists(amount, min_size=1, max_size=6), available=st.floats(-10, 2e4), integer=st.booleans()
)
def test_allocate_n_of_the_whole_buffer_is_the_default(requests, available, integer):
    """n = len(requests) is the default n = -1 (every request takes part)."""
    req = np.array(requests)
    out, out_all = np.full(req.size, np.nan), np.full(req.size, np.nan)
    assert same_bits(
        allocate(req, available, integer, out, req.size), allocate(req, available, integer, out_all)
    )
    assert out.tobytes() == out_all.tobytes()


# -- sums -------------------------------------------------------------------------------------
@given(used=st.lists(summands, max_size=20), extra=st.lists(junk, max_size=5))
def test_line_sum_of_the_first_n(used, extra):
    """``line_sum(v, n)`` adds ``v[:n]`` in index order, bit for bit as ``line_sum(v[:n])``,
    ignoring what lies beyond n; without n it sums all of ``v``."""
    n = len(used)
    v = np.array(used + extra, dtype=float)
    got = line_sum(v, n)
    assert same_bits(got, line_sum(v[:n]))
    assert same_bits(got, line_sum(v[:n].copy()))
    assert same_bits(got, sum_in_index_order(used))
    assert same_bits(line_sum(v), line_sum(v, v.size))
    assert same_bits(line_sum(np.array(used, dtype=float)), sum_in_index_order(used))


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.1, 0.2, 0.3], 0.6000000000000001), ([0.3, 0.2, 0.1], 0.6), ([1e16, 1.0, -1e16, 1.0], 1.0)],
)
def test_sums_are_in_index_order(values, expected):
    """Pairwise or reversed summation would give other floats (0.6, 0.6000000000000001, 0.0)."""
    v = np.array([*values, np.nan])
    a = np.array([[np.nan] * v.size, v])
    assert same_bits(line_sum(v, len(values)), expected)
    assert same_bits(line_sum(v[:-1]), expected)
    assert same_bits(row_sum(a, 1, len(values)), expected)
    assert same_bits(row_sum(np.asfortranarray(a), 1, len(values)), expected)


@given(
    a=st.tuples(st.integers(1, 4), st.integers(0, 12)).flatmap(
        lambda shape: hnp.arrays(np.float64, shape, elements=summands)
    ),
    fortran=st.booleans(),
    data=st.data(),
)
def test_row_sum_is_line_sum_of_the_row(a, fortran, data):
    """``row_sum(a, i, n)`` is ``line_sum(a[i, :n])`` bit for bit, for every row i and prefix n,
    whatever the memory layout (a row of a Fortran-ordered array is strided)."""
    if fortran:
        a = np.asfortranarray(a)
    rows, cols = a.shape
    i = data.draw(st.integers(0, rows - 1), label="row")
    n = data.draw(st.integers(0, cols), label="n")
    got = row_sum(a, i, n)
    assert same_bits(got, line_sum(a[i, :n]))
    assert same_bits(got, line_sum(a[i], n))
    assert same_bits(got, sum_in_index_order(a[i, :n]))


# -- costs ------------------------------------------------------------------------------------
def test_team_cost():
    assert team_cost(10.0, 4.0, 6.0, 0.5, 1.0, 2.0, 3.0) == 0.5 * 10 + 1.0 * 4 + 2.0 * 6 + 3.0


def test_team_cost_charges_no_holding_on_negative_stock_or_processing_on_returns():
    assert team_cost(-10.0, 0.0, -6.0, 0.5, 1.0, 2.0, 0.0) == 0.0


@given(values=st.lists(finite, max_size=20))
def test_line_sum(values):
    assert line_sum(np.array(values, dtype=float)) == pytest.approx(math.fsum(values), abs=1e-6)
