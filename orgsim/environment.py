"""Environment layer: end-customer demand and supply disruptions.

Pure Numba functions shared by both engines. Demand of sales team ``r`` in period ``t`` is

    D_{r,t} = max(0, μ_t · (1 + s·shock_t) + u_{r,t}),    u_{r,t} = ρ·u_{r,t-1} + σ·ε_{r,t},
    μ_t = (L + Δ·[t ≥ t_step]) · (1 + g·t) · (1 + A·sin(2πt / P)),   σ = cv·L,

with ε standard normal from the counter-based stream ``DEMAND_NOISE`` and u_{r,0} drawn from
the stationary distribution N(0, σ²/(1 − ρ²)). Demand shocks and supply disruptions are
episodes: when none is running, one starts with probability ``prob`` and lasts ``duration``
periods.
"""

from __future__ import annotations

import math

from numba import njit

from . import _numba_cache  # noqa: F401  (first: where Numba caches the kernels)
from ._rng import normal, uniform

__all__ = ["ar1_next", "ar1_start", "demand_mean", "demand_value", "episode_update"]


@njit(cache=True)
def demand_mean(level, trend, seasonality, season_period, step_period, step_size, t):
    """Deterministic demand μ_t per sales team in period ``t`` (1-based)."""
    base = level
    if step_period > 0 and t >= step_period:
        base += step_size
    return base * (1.0 + trend * t) * (1.0 + seasonality * math.sin(2.0 * math.pi * t / season_period))


@njit(cache=True)
def ar1_start(key, stream, team, rho, sigma):
    """Stationary starting value u_0 of the AR(1) noise."""
    if sigma == 0.0:
        return 0.0
    return sigma / math.sqrt(1.0 - rho * rho) * normal(key, stream, team, 0, 0)


@njit(cache=True)
def ar1_next(u_prev, key, stream, team, t, rho, sigma):
    """u_t = ρ·u_{t-1} + σ·ε_t."""
    if sigma == 0.0:
        return rho * u_prev
    return rho * u_prev + sigma * normal(key, stream, team, t, 0)


@njit(cache=True)
def episode_update(remaining, key, stream, t, prob, duration):
    """Advance an episode process; returns ``(active, remaining)`` for period ``t``."""
    if remaining == 0 and prob > 0.0 and uniform(key, stream, 0, t, 0) < prob:
        remaining = duration
    active = remaining > 0
    if active:
        remaining -= 1
    return active, remaining


@njit(cache=True)
def demand_value(mean, shock_active, shock_size, noise, allow_negative, integer):
    """Demand from its mean, shock state and noise, floored at 0 unless negatives are allowed."""
    d = mean * (1.0 + shock_size) if shock_active else mean
    d += noise
    if integer:
        d = math.copysign(math.floor(abs(d) + 0.5), d)
    if not allow_negative and d < 0.0:
        d = 0.0
    return d
