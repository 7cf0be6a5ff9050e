"""Environment layer: end-customer demand and supply disruptions.

Pure Numba functions shared by both engines. Demand of sales team ``r`` in period ``t`` is

    D_{r,t} = max(0, μ_t · (1 + s·shock_t) + u_{r,t}),    u_{r,t} = ρ·u_{r,t-1} + σ·ε_{r,t},
    μ_t = (L + Δ·[t ≥ t_step]) · (1 + g·t) · (1 + A·sin(2πt / P)),   σ = cv·L,

with ε standard normal from the counter-based stream ``DEMAND_NOISE`` and u_{r,0} drawn from
the stationary distribution N(0, σ²/(1 − ρ²)). Demand shocks and supply disruptions are
episodes: when none is running, one starts with probability ``prob`` and lasts ``duration``
periods. Both engines draw a period with :func:`draw` (and the noise's start with
:func:`start_noise`), reading the firm's parameter vector ``p`` (columns
:class:`orgsim.schema.Param`).
"""

from __future__ import annotations

import math

from numba import njit

from . import (
    _numba_cache,  # noqa: F401  (first: where Numba caches the kernels)
    _rng,
)
from ._rng import normal, uniform
from .schema import Param

__all__ = [
    "ar1_next",
    "ar1_start",
    "demand_mean",
    "demand_value",
    "draw",
    "episode_update",
    "start_noise",
]


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


@njit(cache=True, _nrt=False)
def start_noise(p, key, sales, noise):
    """The AR(1) noise of each sales team before period 1 (``sales``: the sales teams' indices),
    into ``noise``."""
    for s in range(sales.shape[0]):
        noise[s] = ar1_start(key, _rng.DEMAND_NOISE, sales[s], p[Param.rho], p[Param.sigma])


@njit(cache=True, _nrt=False, forceinline=True)
def draw(p, key, t, episodes, noise, sales, demand, history):
    """Phase 0 of period ``t``: advance the demand-shock, supply-disruption and input-cost-shock
    episodes (``episodes``: their remaining periods, in place), the sales teams' AR(1)
    ``noise``, and set each sales team's end-customer demand in ``demand[team]`` and in
    ``history[sales team]`` (the period's row of the demand history). Returns ``(disrupted,
    material price, total demand)``."""
    shock, episodes[0] = episode_update(
        episodes[0], key, _rng.DEMAND_SHOCK, t, p[Param.shock_prob], int(p[Param.shock_duration])
    )
    disrupted, episodes[1] = episode_update(
        episodes[1],
        key,
        _rng.SUPPLY_DISRUPTION,
        t,
        p[Param.disruption_prob],
        int(p[Param.disruption_duration]),
    )
    cost_shock, episodes[2] = episode_update(
        episodes[2], key, _rng.COST_SHOCK, t, p[Param.cost_shock_prob], int(p[Param.cost_shock_duration])
    )
    material = p[Param.material]
    price = material * (1.0 + p[Param.cost_shock_size]) if cost_shock else material
    mean = demand_mean(
        p[Param.level],
        p[Param.trend],
        p[Param.seasonality],
        p[Param.season_period],
        p[Param.step_period],
        p[Param.step_size],
        t,
    )
    negative = p[Param.allow_negative] != 0.0
    integer = p[Param.integer] != 0.0
    total = 0.0
    for s in range(sales.shape[0]):
        team = sales[s]
        noise[s] = ar1_next(noise[s], key, _rng.DEMAND_NOISE, team, t, p[Param.rho], p[Param.sigma])
        value = demand_value(mean, shock, p[Param.shock_size], noise[s], negative, integer)
        demand[team] = value
        history[s] = value
        total += value
    return disrupted, price, total
