"""Kernels of the environment layer (``orgsim.environment``): demand and episodes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orgsim import _rng
from orgsim.environment import ar1_next, ar1_start, demand_mean, demand_value, episode_update

KEY = int(_rng.firm_keys(2024, [0])[0])


def mean_at(t, level=100.0, trend=0.0, seasonality=0.0, season_period=52, step_period=0, step_size=0.0):
    return demand_mean(level, trend, seasonality, season_period, step_period, step_size, t)


# -- deterministic demand ---------------------------------------------------------------------
def test_level_only():
    assert all(mean_at(t) == 100.0 for t in range(1, 60))


def test_step_starts_in_step_period():
    """The beer game's step: demand 4, then 8 from week 5."""
    got = [mean_at(t, level=4.0, step_period=5, step_size=4.0) for t in range(1, 9)]
    assert got == [4.0] * 4 + [8.0] * 4


def test_step_period_zero_means_no_step():
    assert mean_at(10, step_period=0, step_size=50.0) == 100.0


@given(t=st.integers(1, 5000), trend=st.floats(-0.01, 0.01))
def test_trend_is_linear_growth_of_the_level(t, trend):
    assert mean_at(t, trend=trend) == pytest.approx(100.0 * (1.0 + trend * t), rel=1e-12, abs=1e-9)


def test_seasonality_is_a_sine_with_the_season_period():
    p, a = 52, 0.3
    values = np.array([mean_at(t, seasonality=a, season_period=p) for t in range(1, 2 * p + 1)])
    np.testing.assert_allclose(values[:p], values[p:], rtol=1e-12)  # period p
    assert mean_at(13, seasonality=a, season_period=p) == pytest.approx(130.0)  # sin(π/2) peak
    assert mean_at(39, seasonality=a, season_period=p) == pytest.approx(70.0)  # trough
    assert values.mean() == pytest.approx(100.0, rel=1e-9)  # averages out over whole seasons


def test_components_multiply():
    t = 20
    got = mean_at(t, level=50, trend=0.005, seasonality=0.2, season_period=12, step_period=10, step_size=10)
    want = 60 * (1 + 0.005 * t) * (1 + 0.2 * math.sin(2 * math.pi * t / 12))
    assert got == pytest.approx(want, rel=1e-12)


# -- demand value -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((100.0, False, 0.5, 3.0, False, False), 103.0),  # noise added
        ((100.0, True, 0.5, 3.0, False, False), 153.0),  # a shock scales the mean by (1 + s)
        ((100.0, True, -1.0, 0.0, False, False), 0.0),  # a shock of -100 % wipes demand out
        ((4.0, False, 0.0, 0.5, False, True), 5.0),  # whole units, half away from zero
        ((4.0, False, 0.0, -10.0, False, False), 0.0),  # floored at zero ...
        ((4.0, False, 0.0, -10.0, True, False), -6.0),  # ... unless negative demand is allowed
    ],
)
def test_demand_value(args, expected):
    assert demand_value(*args) == expected


# -- AR(1) noise ------------------------------------------------------------------------------
def ar1_paths(rho, sigma, teams, periods, key=KEY):
    paths = np.empty((teams, periods + 1))
    for team in range(teams):
        u = ar1_start(key, _rng.DEMAND_NOISE, team, rho, sigma)
        paths[team, 0] = u
        for t in range(1, periods + 1):
            u = ar1_next(u, key, _rng.DEMAND_NOISE, team, t, rho, sigma)
            paths[team, t] = u
    return paths


@pytest.mark.parametrize("rho", [0.0, 0.5, -0.6, 0.9])
def test_ar1_stationary_variance_and_autocorrelation(rho):
    """u_t = ρ·u_{t-1} + σ·ε_t started from N(0, σ²/(1−ρ²)) has variance σ²/(1−ρ²) and lag-1
    autocorrelation ρ. 8 independent teams × 5000 periods; tolerances are 4 standard errors of
    the estimators (var: σ_u²·sqrt(2(1+ρ²)/((1−ρ²)n)); lag-1 correlation: sqrt((1−ρ²)/n))."""
    sigma, teams, periods = 2.0, 8, 5000
    u = ar1_paths(rho, sigma, teams, periods)
    n = u.size
    var_u = sigma**2 / (1 - rho**2)
    se_var = var_u * math.sqrt(2 * (1 + rho**2) / ((1 - rho**2) * n))
    assert abs(u.var() - var_u) < 4 * se_var
    assert abs(u.mean()) < 4 * math.sqrt(var_u * (1 + rho) / ((1 - rho) * n))
    lag1 = np.mean([np.corrcoef(p[:-1], p[1:])[0, 1] for p in u])
    assert abs(lag1 - rho) < 4 * math.sqrt((1 - rho**2) / n)


def test_ar1_starts_from_the_stationary_distribution():
    """u_0 across 4000 independent teams has variance σ²/(1−ρ²) (4 standard errors)."""
    rho, sigma, n = 0.8, 1.5, 4000
    u0 = np.array([ar1_start(KEY, _rng.DEMAND_NOISE, team, rho, sigma) for team in range(n)])
    var_u = sigma**2 / (1 - rho**2)
    assert abs(u0.var() - var_u) < 4 * var_u * math.sqrt(2 / n)


def test_ar1_without_noise_decays():
    assert ar1_start(KEY, _rng.DEMAND_NOISE, 0, 0.5, 0.0) == 0.0
    assert ar1_next(8.0, KEY, _rng.DEMAND_NOISE, 0, 3, 0.5, 0.0) == 4.0


def test_ar1_draws_are_reproducible_and_keyed():
    a = ar1_paths(0.5, 1.0, 2, 50)
    np.testing.assert_array_equal(a, ar1_paths(0.5, 1.0, 2, 50))
    assert not np.array_equal(a[0], a[1]), "two teams share a noise path"
    other = ar1_paths(0.5, 1.0, 2, 50, key=int(_rng.firm_keys(2024, [1])[0]))
    assert not np.array_equal(a, other), "two firms share a noise path"


# -- episodes (demand shocks, supply disruptions) ---------------------------------------------
def episodes(prob, duration, periods, stream=_rng.SUPPLY_DISRUPTION, key=KEY):
    remaining, active = 0, []
    for t in range(1, periods + 1):
        on, remaining = episode_update(remaining, key, stream, t, prob, duration)
        active.append(on)
    return np.array(active)


def run_lengths(active):
    lengths, n = [], 0
    for a in active:
        if a:
            n += 1
        elif n:
            lengths.append(n)
            n = 0
    if n:
        lengths.append(n)
    return lengths


def test_no_episodes_at_probability_zero():
    assert not episodes(0.0, 4, 500).any()


def test_back_to_back_episodes_at_probability_one():
    assert episodes(1.0, 3, 100).all()


@pytest.mark.parametrize("duration", [1, 2, 3, 6])
def test_episodes_last_whole_durations(duration):
    """Each episode lasts exactly ``duration`` periods; a new one may start the period after
    one ends, so active runs are whole multiples of the duration (the last may be cut off)."""
    active = episodes(0.1, duration, 3000)
    lengths = run_lengths(active)
    assert len(lengths) > 20
    cut = 1 if active[-1] else 0
    assert all(n % duration == 0 for n in lengths[: len(lengths) - cut])


def test_episode_start_rate():
    """Starts happen with probability p in idle periods: 20000 periods, p = 0.05, duration 2;
    the start count is binomial over the idle periods (4 standard errors)."""
    prob, duration, periods = 0.05, 2, 20000
    remaining, starts, idle = 0, 0, 0
    for t in range(1, periods + 1):
        was_idle = remaining == 0
        _, remaining = episode_update(remaining, KEY, _rng.DEMAND_SHOCK, t, prob, duration)
        if was_idle:
            idle += 1
            starts += remaining == duration - 1
    assert abs(starts - prob * idle) < 4 * math.sqrt(idle * prob * (1 - prob))


def test_episode_streams_are_independent():
    shocks = episodes(0.2, 1, 500, stream=_rng.DEMAND_SHOCK)
    disruptions = episodes(0.2, 1, 500, stream=_rng.SUPPLY_DISRUPTION)
    assert not np.array_equal(shocks, disruptions)
