"""Counter-based random numbers (``orgsim._rng``, SPEC 7).

The statistical checks use fixed keys, so they are deterministic: each either always passes or
always fails. Tolerances are 4 standard errors, and KS and chi-square tests require p > 1e-3.
Normals come from Marsaglia & Tsang's (2000) ziggurat: its solved constants are checked against
the published ones and its samples (rectangles, wedges and the tail) against N(0, 1).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import njit
from scipy import stats

from orgsim import _rng
from orgsim._rng import ZIGGURAT_R, ZIGGURAT_V

N = 20_000
KEY = int(_rng.firm_keys(1, [0])[0])


def uniforms(key=KEY, stream=_rng.DEMAND_NOISE, team=0, n=N):
    return np.array([_rng.uniform(key, stream, team, t, 0) for t in range(n)])


def normals(key=KEY, stream=_rng.DEMAND_NOISE, team=0, n=N):
    return np.array([_rng.normal(key, stream, team, t, 0) for t in range(n)])


def test_uniform_range_mean_and_distribution():
    u = uniforms()
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 4 * math.sqrt(1 / 12 / N)
    assert abs(u.var() - 1 / 12) < 4 * math.sqrt(1 / 180 / N)  # Var(s²) = (μ4 − σ⁴)/n = (1/80 − 1/144)/n
    assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_uniform_successive_periods_are_uncorrelated():
    u = uniforms()
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 4 / math.sqrt(N)


def test_normal_mean_sd_and_distribution():
    z = normals()
    assert abs(z.mean()) < 4 / math.sqrt(N)
    assert abs(z.std() - 1.0) < 4 * math.sqrt(1 / (2 * N))
    assert stats.kstest(z, "norm").pvalue > 1e-3


def test_normal_draws_k_are_independent():
    a = np.array([_rng.normal(KEY, 1, 0, t, 0) for t in range(N)])
    b = np.array([_rng.normal(KEY, 1, 0, t, 1) for t in range(N)])
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / math.sqrt(N)


def test_draws_are_pure_functions_of_their_coordinates():
    first = [
        _rng.uniform(KEY, s, m, t, k) for s in range(3) for m in range(3) for t in range(3) for k in range(2)
    ]
    again = [
        _rng.uniform(KEY, s, m, t, k) for s in range(3) for m in range(3) for t in range(3) for k in range(2)
    ]
    assert first == again


def test_different_coordinates_give_different_draws():
    """13,000 coordinates give 13,000 different 53-bit uniforms (a repeat by chance has
    probability about 1e-8), and another firm key gives none of them."""
    coords = [(s, m, t, k) for s in range(1, 10) for m in range(12) for t in range(40) for k in range(3)]
    values = {_rng.uniform(KEY, *c) for c in coords}
    assert len(values) == len(coords), "two coordinates share a draw"
    other_key = {_rng.uniform(KEY + 1, *c) for c in coords}
    assert values.isdisjoint(other_key)


def test_hoisted_stream_prefix_gives_the_same_draws():
    """``uniform``/``normal`` equal ``uniform_at``/``normal_at`` on the stream's hoisted prefix."""
    for stream, team, period in [(1, 0, 0), (3, 7, 12), (10, 2, 999)]:
        # keep the prefix a uint64: a Python int below 2**63 would be typed int64 by Numba
        base = np.uint64(_rng.stream_base(KEY, stream, team, period))
        for k in range(4):
            assert _rng.uniform_at(base, k) == _rng.uniform(KEY, stream, team, period, k)
            assert _rng.normal_at(base, k) == _rng.normal(KEY, stream, team, period, k)


def test_stream_ids_are_distinct():
    """One stream per random mechanism: two mechanisms sharing an id would draw the same numbers."""
    from orgsim import culture

    streams = {}
    for module in (_rng, culture):  # the culture layer's streams (21-26) live in orgsim.culture
        for k, v in vars(module).items():
            if k.isupper() and not k.startswith("_") and isinstance(v, int) and not isinstance(v, bool):
                if k in ("ZIGGURAT_LAYERS", "PLANES"):  # sizes, not streams
                    continue
                streams[f"{module.__name__}.{k}"] = v
    assert {"orgsim._rng.DEMAND_NOISE", "orgsim.culture.SOCIALISE", "orgsim.culture.CODE"} <= set(streams)
    assert len(set(streams.values())) == len(streams), streams


def test_streams_are_uncorrelated():
    a = uniforms(stream=_rng.DEMAND_NOISE)
    b = uniforms(stream=_rng.DEMAND_SHOCK)
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / math.sqrt(N)


# -- the ziggurat (Marsaglia & Tsang 2000) ----------------------------------------------------
#: published constants for 256 layers (Marsaglia & Tsang 2000, J. Stat. Software 5(8)); v is
#: printed with 12 significant digits
PUBLISHED_R = 3.6541528853610088
PUBLISHED_V = 0.00492867323399
N_BIG = 1_000_000
N_TAIL = 100_000_000  # ~26,000 draws beyond r: the tail share to 0.6%


@njit
def _normal_sample(base, n):
    """Draws 0, …, n − 1 of the stream with prefix ``base``."""
    out = np.empty(n)
    for k in range(n):
        out[k] = _rng.normal_at(base, k)
    return out


@njit
def _pair_sample(base, n):
    """Pairs 0, …, n − 1 of the stream with prefix ``base``, one row each."""
    out = np.empty((n, 2))
    for k in range(n):
        out[k, 0], out[k, 1] = _rng.normal_pair_at(base, k)
    return out


@njit
def _tail_sample(base, n, r):
    """How many of draws 0, …, n − 1 have |z| > r, and those |z| (without storing the rest)."""
    out = np.empty(n // 1000 + 1000)
    m = 0
    for k in range(n):
        z = abs(_rng.normal_at(base, k))
        if z > r:
            if m < out.size:
                out[m] = z
            m += 1
    return m, out[: min(m, out.size)]


@njit
def _tail_strip_draws(base, n):
    """For the draws whose first word lands in the base layer's strip beyond r (x in [r, x[0])):
    how many there are and how many of them end beyond r."""
    x = _rng._ZX
    strip = beyond = 0
    for k in range(n):
        h = _rng.bits_at(base, np.uint64(16 * k))
        if h & np.uint64(0xFF) == 0 and float(h >> np.uint64(11)) * (1.0 / 9007199254740992.0) * x[0] >= x[1]:
            strip += 1
            if abs(_rng.normal_at(base, k)) > x[1]:
                beyond += 1
    return strip, beyond


def _base(stream=_rng.DECISION, team=0, period=0):
    # keep the prefix a uint64: a Python int below 2**63 would be typed int64 by Numba
    return np.uint64(_rng.stream_base(KEY, stream, team, period))


@functools.cache
def big_normal_sample():
    """``N_BIG`` normals of one stream, drawn once for the tests that share them."""
    return _normal_sample(_base(), N_BIG)


def _f(x):
    return np.exp(-0.5 * np.asarray(x) ** 2)


def test_ziggurat_constants_match_the_published_ones():
    assert ZIGGURAT_R == pytest.approx(PUBLISHED_R, rel=1e-12, abs=0)
    assert ZIGGURAT_V == pytest.approx(PUBLISHED_V, rel=0, abs=1e-11)
    x, fx = _rng._ZX, _rng._ZF
    assert x.shape == fx.shape == (_rng.ZIGGURAT_LAYERS + 1,)
    np.testing.assert_array_equal(fx, _f(x))
    assert x[0] == ZIGGURAT_V / _f(ZIGGURAT_R) and x[1] == ZIGGURAT_R


def test_ziggurat_tables_are_consistent():
    """Every layer has area v, the base layer (rectangle plus tail) too, the edges fall to 0 and
    the last layer's top reaches the peak f(0) = 1."""
    r, v, x = ZIGGURAT_R, ZIGGURAT_V, _rng._ZX
    n = _rng.ZIGGURAT_LAYERS
    i = np.arange(1, n)  # layers 1, …, 255: [0, x[i]] × [f(x[i]), f(x[i + 1])]
    np.testing.assert_allclose(x[i] * (_f(x[i + 1]) - _f(x[i])), v, rtol=1e-9)
    tail = math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))
    assert r * _f(r) + tail == pytest.approx(v, rel=1e-12)
    assert x[0] * _f(r) == pytest.approx(v, rel=1e-12)  # layer 0 as drawn: [0, x[0]] × [0, f(r)]
    assert np.all(np.diff(x) < 0), "edges not strictly decreasing"
    assert x[n] == 0.0
    assert _f(x[n - 1]) + v / x[n - 1] == pytest.approx(1.0, abs=1e-9)
    # the layers' total area is the half-normal's plus the (small) rejected area
    assert n * v / math.sqrt(math.pi / 2) == pytest.approx(1.0067, abs=1e-4)


def test_ziggurat_normals_distribution():
    """A million draws: KS against N(0, 1), the first four moments within 4 SE and a chi-square
    fit on 100 equiprobable bins (which resolves the rectangles' and wedges' pieces)."""
    z = big_normal_sample()
    n = z.size
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.var() - 1.0) < 4 * math.sqrt(2 / n)
    assert abs(stats.skew(z)) < 4 * math.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 4 * math.sqrt(24 / n)  # excess kurtosis
    edges = stats.norm.ppf(np.linspace(0.0, 1.0, 101)[1:-1])
    counts = np.bincount(np.searchsorted(edges, z), minlength=100)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_ziggurat_tail():
    """The share of |z| > r is 2Φ(−r) within 4 SE, and beyond r the draws follow the normal
    truncated at r (the tail algorithm of Marsaglia 1964). 10⁸ draws resolve the share to 0.6%:
    restarting the ziggurat when the tail algorithm rejects (instead of retrying the tail) loses
    1 − r·Φ(−r)/φ(r) ≈ 6% of the tail, about 10 SE."""
    r = ZIGGURAT_R
    count, beyond = _tail_sample(_base(team=1), N_TAIL, r)
    p = 2 * stats.norm.sf(r)
    assert abs(count / N_TAIL - p) < 4 * math.sqrt(p * (1 - p) / N_TAIL), (count, p * N_TAIL)
    assert beyond.size == count > 20_000
    assert stats.kstest(beyond, stats.truncnorm(r, np.inf).cdf).pvalue > 1e-3


def test_ziggurat_tail_strip_always_ends_in_the_tail():
    """A draw whose first word picks the base layer beyond r is a tail draw: Marsaglia & Tsang
    repeat the tail algorithm until it accepts, they do not start the draw again (which would
    make the tail too thin by the tail algorithm's rejection rate, ~6%)."""
    strip, beyond = _tail_strip_draws(_base(team=2), 4_000_000)
    assert strip > 800  # P(strip) = (x[0] − r) / x[0] / 256 ≈ 2.6e-4
    assert beyond == strip, f"{strip - beyond} of {strip} tail-strip draws ended inside r"


def test_ziggurat_signs_and_independence():
    """Half the draws are negative; the two normals of a pair, and successive draws, are
    uncorrelated, in value and in size (a shared word would correlate the squares)."""
    z = big_normal_sample()
    n = z.size
    assert abs(np.mean(z < 0) - 0.5) < 4 * 0.5 / math.sqrt(n)
    pairs = _pair_sample(_base(team=3, period=5), 200_000)
    m = len(pairs)
    a, b = pairs[:, 0], pairs[:, 1]
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / math.sqrt(m)
    assert abs(np.corrcoef(a * a, b * b)[0, 1]) < 4 / math.sqrt(m)
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 4 / math.sqrt(m)  # successive pairs
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 4 / math.sqrt(n)
    assert abs(np.corrcoef(z[:-1] ** 2, z[1:] ** 2)[0, 1]) < 4 / math.sqrt(n)


def test_normal_at_is_pure_and_pairs_are_consecutive_draws():
    """``normal_at(base, k)`` depends on (base, k) only, and pair k is draws 2k and 2k + 1."""
    base = _base(stream=_rng.DEMAND_NOISE, team=2, period=9)
    ks = [*range(50), 10**6, 2**40 + 3]
    first = [_rng.normal_at(base, k) for k in ks]
    assert [_rng.normal_at(base, k) for k in reversed(ks)] == first[::-1]
    for k in ks[:-1]:
        assert _rng.normal_pair_at(base, k) == (_rng.normal_at(base, 2 * k), _rng.normal_at(base, 2 * k + 1))
    z = _normal_sample(base, 20_000)
    np.testing.assert_array_equal(z[: len(ks) - 2], first[:-2])
    pairs = _pair_sample(base, 10_000)
    np.testing.assert_array_equal(pairs[:, 0], z[0::2])
    np.testing.assert_array_equal(pairs[:, 1], z[1::2])


def test_normals_at_fills_the_same_draws_as_normal_at():
    """``normals_at(base, out)`` writes draws 0 … len(out) − 1, bit for bit what ``normal_at``
    gives, over 400 streams of 20 draws (the batch engine's decision normals), 8,000 draws of
    which about 1.5 % leave the fast pass (wedges and the tail)."""
    slow = 0
    out = np.empty(20)
    for period in range(400):
        base = _base(stream=_rng.DECISION, period=period)
        out[:] = -7.0
        _rng.normals_at(base, out)
        want = [_rng.normal_at(base, k) for k in range(out.size)]
        np.testing.assert_array_equal(out, want)
        for k in range(out.size):  # the draws the second pass finished
            h = int(_rng.bits_at(base, 16 * k))
            slow += (h >> 11) * (1.0 / 2**53) * _rng._ZX[h & 0xFF] >= _rng._ZX[(h & 0xFF) + 1]
    assert 40 < slow < 250
    empty = np.empty(0)
    _rng.normals_at(base, empty)


def test_normal_at_first_word_layout():
    """A draw that lands in its layer's rectangle uses only word 16k of the stream: layer from
    the low 8 bits, sign from bit 8, and the top 53 bits as the uniform scaling x[layer]."""
    base = _base(stream=_rng.DEMAND_SHOCK)
    x = _rng._ZX
    checked = 0
    for k in range(2_000):
        h = int(_rng.bits_at(base, 16 * k))
        i = h & 0xFF
        value = (h >> 11) * (1.0 / 2**53) * x[i]
        if value < x[i + 1]:
            sign = -1.0 if (h >> 8) & 1 else 1.0
            assert _rng.normal_at(base, k) == sign * value, k
            checked += 1
    assert checked > 1_900  # ~98.8% of draws end in a rectangle


# -- per-firm keys ----------------------------------------------------------------------------
def test_firm_keys_depend_only_on_seed_and_index():
    together = _rng.firm_keys(7, range(5))
    for i in range(5):
        assert _rng.firm_keys(7, [i])[0] == together[i]
    np.testing.assert_array_equal(_rng.firm_keys(7, [3, 1]), together[[3, 1]])
    assert len(set(together.tolist())) == 5
    assert not set(together.tolist()) & set(_rng.firm_keys(8, range(5)).tolist())


def test_firm_keys_follow_the_seed_sequence_spawn_tree():
    """Key of firm i = first 64-bit word of SeedSequence(seed).spawn(n)[i] (NumPy's tree)."""
    children = np.random.SeedSequence(42).spawn(4)
    want = [c.generate_state(1, dtype=np.uint64)[0] for c in children]
    np.testing.assert_array_equal(_rng.firm_keys(42, range(4)), want)


@given(seed=st.integers(0, 2**63 - 1), index=st.integers(0, 10**6))
def test_firm_key_is_the_firms_spawned_child(seed, index):
    """For any seed and index the key is that of child ``index`` of SeedSequence(seed), so a
    firm's stream never depends on how many firms run or in which chunk."""
    child = np.random.SeedSequence(seed, spawn_key=(index,))
    assert _rng.firm_keys(seed, [index])[0] == child.generate_state(1, dtype=np.uint64)[0]
    assert _rng.firm_keys(seed, [0, index])[1] == _rng.firm_keys(seed, [index])[0]


# -- seed normalisation (SPEC 7) --------------------------------------------------------------
def test_seed_normalisation():
    assert _rng.as_seed_sequence(5).entropy == 5
    assert _rng.as_seed_sequence(np.int64(5)).entropy == 5
    ss = np.random.SeedSequence(9)
    assert _rng.as_seed_sequence(ss) is ss
    a = _rng.as_seed_sequence(np.random.default_rng(3))
    b = _rng.as_seed_sequence(np.random.default_rng(3))
    assert a.entropy == b.entropy


@pytest.mark.parametrize("bad", [-1, True, 1.5, "7", None])
def test_bad_seeds_are_rejected(bad):
    with pytest.raises(ValueError, match="seed =="):
        _rng.as_seed_sequence(bad)


def test_seed_to_int():
    assert _rng.seed_to_int(12) == 12
    assert _rng.seed_to_int(np.random.SeedSequence(12)) == 12
    assert _rng.seed_to_int(np.random.default_rng(1)) == _rng.seed_to_int(np.random.default_rng(1))
    with pytest.raises(ValueError):
        _rng.seed_to_int(np.random.SeedSequence(12).spawn(1)[0])
