"""Counter-based random numbers shared by both engines (SPEC 7).

A firm's 64-bit key is derived from the root seed and the firm's index through NumPy's
``SeedSequence`` spawn tree, so a firm's numbers do not depend on how many firms run or how they
are chunked. Each draw is then a pure function of ``(key, stream, team, period, k)``: a chain of
SplitMix64 finalisers (Steele, Lea & Flood 2014). Nothing is stored, so memory does not grow with
firms × teams × periods, and any thread may compute any draw.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# streams: one per random mechanism, so adding draws to one mechanism never shifts another
DEMAND_NOISE = 1
DEMAND_SHOCK = 2
SUPPLY_DISRUPTION = 3
MANAGEMENT = 7
DECISION = 8  # a team's forecast noise and execution noise: the two normals of one pair
COST_SHOCK = 10
# the culture layer's streams (21-26) are defined in orgsim.culture

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@njit(cache=True, inline="always")
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def stream_base(key, stream, team, period):
    """The hash prefix of all draws of one (key, stream, team, period); hoist it out of loops.

    Two SplitMix64 finalisers: one over the key with the stream and team folded in by odd
    multipliers, one adding the period.
    """
    h = _mix(np.uint64(key) ^ (np.uint64(stream) * _GAMMA) ^ (np.uint64(team) * _M1 + _M2))
    return _mix(h + np.uint64(period) * _GAMMA + np.uint64(2))


@njit(cache=True)
def bits_at(base, k):
    """Draw ``k`` of the stream whose prefix is ``base`` as 64 random bits (a uint64)."""
    return _mix(base + np.uint64(k) * _GAMMA + np.uint64(3))


@njit(cache=True)
def uniform_at(base, k):
    """Draw ``k`` of the stream whose prefix is ``base``: U[0, 1) with 53 random bits."""
    h = _mix(base + np.uint64(k) * _GAMMA + np.uint64(3))
    return float(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def normal_at(base, k):
    """Standard normal by Box–Muller from draws ``2k`` and ``2k + 1`` of a stream."""
    u1 = 1.0 - uniform_at(base, 2 * k)  # in (0, 1]
    u2 = uniform_at(base, 2 * k + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True)
def normal_pair_at(base, k):
    """Two independent standard normals (Box–Muller's cosine and sine) from draws 2k, 2k + 1."""
    r = math.sqrt(-2.0 * math.log(1.0 - uniform_at(base, 2 * k)))
    angle = 2.0 * math.pi * uniform_at(base, 2 * k + 1)
    return r * math.cos(angle), r * math.sin(angle)


@njit(cache=True)
def uniform(key, stream, team, period, k):
    """U[0, 1) for the draw at coordinates (key, stream, team, period, k)."""
    return uniform_at(stream_base(key, stream, team, period), k)


@njit(cache=True)
def normal_pair(key, stream, team, period, k):
    """Two independent standard normals for the draw pair at (key, stream, team, period, k)."""
    return normal_pair_at(stream_base(key, stream, team, period), k)


@njit(cache=True)
def normal(key, stream, team, period, k):
    """Standard normal for the draw at coordinates (key, stream, team, period, k)."""
    return normal_at(stream_base(key, stream, team, period), k)


def as_seed_sequence(seed) -> np.random.SeedSequence:
    """Normalise an int, ``SeedSequence`` or ``Generator`` to a ``SeedSequence`` (SPEC 7)."""
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(0, 2**63)))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return np.random.SeedSequence(int(seed))
    raise ValueError(f"seed == {seed!r}, must be a non-negative int, SeedSequence or Generator")


def seed_to_int(seed) -> int:
    """An integer seed to record in the config: the int itself, a plain SeedSequence's entropy,
    or one integer drawn from a Generator."""
    if isinstance(seed, np.random.SeedSequence):
        if isinstance(seed.entropy, int) and not seed.spawn_key and 0 <= seed.entropy < 2**63:
            return int(seed.entropy)
        raise ValueError(f"seed == {seed!r}, must be a SeedSequence with one entropy int < 2**63")
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63))
    return int(as_seed_sequence(seed).entropy)


def firm_seed_sequence(root: np.random.SeedSequence, firm: int) -> np.random.SeedSequence:
    """The ``firm``-th child of ``root`` (what ``root.spawn`` would give, without state)."""
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, int(firm)))


def firm_keys(seed, firms) -> np.ndarray:
    """64-bit keys for the given firm indices, derived from ``seed`` and each index."""
    root = as_seed_sequence(seed)
    firms = np.asarray(firms, dtype=np.int64)
    out = np.empty(firms.size, dtype=np.uint64)
    for i, f in enumerate(firms):
        out[i] = firm_seed_sequence(root, int(f)).generate_state(1, dtype=np.uint64)[0]
    return out
