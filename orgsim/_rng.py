"""Counter-based random numbers shared by both engines (SPEC 7).

A firm's 64-bit key is derived from the root seed and the firm's index through NumPy's
``SeedSequence`` spawn tree, so a firm's numbers do not depend on how many firms run or how they
are chunked. Each draw is then a pure function of ``(key, stream, team, period, k)``: a chain of
SplitMix64 finalisers (Steele, Lea & Flood 2014). Nothing is stored, so memory does not grow with
firms × teams × periods, and any thread may compute any draw.

The draw functions are compiled for explicit signatures when the module loads (from Numba's
cache after the first time). Callers pass stream numbers as constants, and Numba would
otherwise compile a copy of each function per constant: about 2 s of the cold compile.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from . import _numba_cache  # noqa: F401  (first: where Numba caches the kernels)

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


@njit("uint64(uint64, int64, int64, int64)", cache=True)
def stream_base(key, stream, team, period):
    """The hash prefix of all draws of one (key, stream, team, period); hoist it out of loops.

    Two SplitMix64 finalisers: one over the key with the stream and team folded in by odd
    multipliers, one adding the period.
    """
    h = _mix(np.uint64(key) ^ (np.uint64(stream) * _GAMMA) ^ (np.uint64(team) * _M1 + _M2))
    return _mix(h + np.uint64(period) * _GAMMA + np.uint64(2))


@njit(["uint64(uint64, int64)", "uint64(uint64, uint64)"], cache=True)
def bits_at(base, k):
    """Draw ``k`` of the stream whose prefix is ``base`` as 64 random bits (a uint64)."""
    return _mix(np.uint64(base) + np.uint64(k) * _GAMMA + np.uint64(3))


@njit(cache=True, inline="always")
def _unit(h):
    """U[0, 1) from the top 53 bits of a 64-bit word."""
    return float(h >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(["float64(uint64, int64)", "float64(uint64, uint64)"], cache=True)
def uniform_at(base, k):
    """Draw ``k`` of the stream whose prefix is ``base``: U[0, 1) with 53 random bits."""
    return _unit(bits_at(base, k))


# ---- standard normals: Marsaglia & Tsang's (2000) ziggurat ----------------------------------
#: layers of the ziggurat
ZIGGURAT_LAYERS = 256
#: counters each normal may use: draw ``k`` of a stream owns counters [16k, 16k + 16)
_NORMAL_DRAWS = 16


def _ziggurat_tables(n: int = ZIGGURAT_LAYERS) -> tuple[float, float, np.ndarray, np.ndarray]:
    """The right edge ``r`` of the base layer, the common layer area ``v`` and the layers' edges
    ``x`` (x[0] = v/f(r), x[1] = r, …, x[n] = 0) and heights ``f(x)`` of Marsaglia & Tsang's
    (2000) ziggurat for f(x) = exp(−x²/2), with ``r`` solved to machine precision by bisection.
    """

    def f(x):
        return math.exp(-0.5 * x * x)

    def area(r):  # the base layer: the rectangle [0, r] × [0, f(r)] and the tail beyond r
        return r * f(r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))

    def top(r):  # f at the top edge of the last layer when the base edge is r (1 when exact)
        v, x = area(r), r
        for _ in range(n - 2):  # x[2], …, x[n − 1]
            y = f(x) + v / x
            if y >= 1.0:
                return 2.0  # layers reached the peak early: r is too small
            x = math.sqrt(-2.0 * math.log(y))
        return f(x) + v / x

    lo, hi = 2.0, 5.0  # top(lo) > 1 > top(hi)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if top(mid) > 1.0:
            lo = mid
        else:
            hi = mid
    r = 0.5 * (lo + hi)
    v = area(r)
    x = np.empty(n + 1)
    x[0], x[1] = v / f(r), r
    for i in range(1, n - 1):
        x[i + 1] = math.sqrt(-2.0 * math.log(f(x[i]) + v / x[i]))
    x[n] = 0.0
    return r, v, x, np.exp(-0.5 * x * x)


ZIGGURAT_R, ZIGGURAT_V, _ZX, _ZF = _ziggurat_tables()


_TAIL_SALT = np.uint64(0x6A09E667F3BCC909)  # derives the tail draws' base from a stream's


@njit("float64(uint64, int64)", cache=True)
def _tail(base, k):
    """A standard normal conditioned on exceeding r (Marsaglia 1964): repeat
    t = −ln U₁ / r until −2 ln U₂ > t², return r + t. Attempt a of draw ``k`` uses counters
    2^32·k + 2a and + 2a + 1 of a base derived from ``base``, so attempts never run out and
    never meet other draws."""
    tail_base = _mix(np.uint64(base) ^ _TAIL_SALT)
    first = np.uint64(k) << np.uint64(32)
    a = np.uint64(0)
    while True:
        u1 = 1.0 - uniform_at(tail_base, first + a)
        u2 = 1.0 - uniform_at(tail_base, first + a + np.uint64(1))
        a += np.uint64(2)
        t = -math.log(u1) / _ZX[1]
        if -2.0 * math.log(u2) > t * t:
            return _ZX[1] + t


@njit(cache=True, inline="always")
def _layer_point(h):
    """A ziggurat word's layer (its low 8 bits), sign (bit 8) and point x = U·x[layer] (U from
    the top 53 bits); the point is the normal's magnitude if x < x[layer + 1]."""
    i = np.int64(h & np.uint64(0xFF))
    sign = -1.0 if (h >> np.uint64(8)) & np.uint64(1) else 1.0
    return i, sign, _unit(h) * _ZX[i]


@njit("float64(uint64, int64)", cache=True)
def normal_at(base, k):
    """Draw ``k`` of a stream as a standard normal (ziggurat, Marsaglia & Tsang 2000).

    One 64-bit word gives the layer (its low 8 bits), the sign (bit 8) and a 53-bit uniform
    (the top bits), so the layer and the value never share bits (Doornik 2005). About 98.5% of
    draws end with that word. A point in a wedge is accepted under the curve with the next
    counter, else the draw starts again with the following word; a point in the base strip
    beyond r takes a tail value (:func:`_tail`). Draw ``k`` owns counters [16k, 16k + 16): if
    eight rounds all end in rejected wedges (about one draw in 10^17) a Box–Muller normal from
    the complement counters ends it, so the result is exactly normal either way.
    """
    first = np.uint64(k) * np.uint64(_NORMAL_DRAWS)
    j = 0
    while j < _NORMAL_DRAWS - 1:  # a round uses counters j and j + 1
        h = bits_at(base, first + np.uint64(j))
        j += 1
        i, sign, x = _layer_point(h)
        if x < _ZX[i + 1]:  # inside the layer's rectangle under the curve
            return sign * x
        if i == 0:  # the base strip beyond r: the tail
            return sign * _tail(base, k)
        u = uniform_at(base, first + np.uint64(j))  # the wedge: accept under the curve
        j += 1
        if _ZF[i] + u * (_ZF[i + 1] - _ZF[i]) < math.exp(-0.5 * x * x):
            return sign * x
    u1 = 1.0 - uniform_at(base, ~first)
    u2 = uniform_at(base, ~(first + np.uint64(1)))
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True, _nrt=False, forceinline=True)
def normals_at(base, out):
    """Draws 0, 1, …, ``len(out)`` − 1 of a stream as standard normals into ``out``: the same
    numbers as :func:`normal_at`, with the common case (the first word lands in its layer's
    rectangle) computed for all draws in one branch-free pass that vectorises, and the rest
    (about 1.5 %) finished by :func:`normal_at`."""
    n = out.shape[0]
    for k in range(n):
        i, sign, x = _layer_point(bits_at(base, np.uint64(k) * np.uint64(_NORMAL_DRAWS)))
        out[k] = sign * x if x < _ZX[i + 1] else np.nan  # NaN: not in the rectangle
    for k in range(n):
        if np.isnan(out[k]):
            out[k] = normal_at(base, k)


@njit(cache=True)
def normal_pair_at(base, k):
    """Two independent standard normals: draws ``2k`` and ``2k + 1`` of a stream."""
    return normal_at(base, 2 * k), normal_at(base, 2 * k + 1)


@njit("float64(uint64, int64, int64, int64, int64)", cache=True)
def uniform(key, stream, team, period, k):
    """U[0, 1) for the draw at coordinates (key, stream, team, period, k)."""
    return uniform_at(stream_base(key, stream, team, period), k)


@njit(cache=True)
def normal_pair(key, stream, team, period, k):
    """Two independent standard normals for the draw pair at (key, stream, team, period, k)."""
    return normal_pair_at(stream_base(key, stream, team, period), k)


@njit("float64(uint64, int64, int64, int64, int64)", cache=True)
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
