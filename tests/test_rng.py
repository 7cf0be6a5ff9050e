"""Counter-based random numbers (``orgsim._rng``, SPEC 7).

The statistical checks use fixed keys, so they are deterministic: each either always passes or
always fails. Tolerances are 4 standard errors, and KS tests require p > 1e-3.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from orgsim import _rng

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
    streams = {
        k: v for k, v in vars(_rng).items() if k.isupper() and not k.startswith("_") and isinstance(v, int)
    }
    assert {"DEMAND_NOISE", "DEMAND_SHOCK", "SUPPLY_DISRUPTION"} <= set(streams)
    assert len(set(streams.values())) == len(streams), streams


def test_streams_are_uncorrelated():
    a = uniforms(stream=_rng.DEMAND_NOISE)
    b = uniforms(stream=_rng.DEMAND_SHOCK)
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / math.sqrt(N)


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
