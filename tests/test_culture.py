"""The culture and learning layer (``orgsim.culture``): March's (1991) kernels, the mapping from
knowledge to decisions, and the mechanism "too-fast socialisation lowers the code's knowledge".

Kernel tests call the Numba functions directly on small arrays of bit masks (a belief vector is
a ``(known, pos)`` pair of uint64 masks, reality the mask ``rpos`` of its +1 dimensions); the
member arrays stand for a whole firm's members, team by team, and a member's draws are indexed by
its position in them. Where a property is about −1/0/+1 beliefs, the test states it on trit
arrays and converts with :func:`~orgsim.culture.pack_trits` and
:func:`~orgsim.culture.unpack_trits`; the superior members' +1 actions are counted bit-sliced by
:func:`~orgsim.culture.tally` and read back with :func:`~orgsim.culture.plane_count`.
Frequencies of random events are checked against their probabilities within 4 binomial standard
errors (a false alarm about once in 16,000 runs; 5 SE where one test makes tens of comparisons;
the draws are counter-based, so each test is deterministic anyway). The two mechanism tests
compare population means with a margin of 4 standard errors of the difference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import orgsim
from orgsim import _rng
from orgsim import culture as cult

PROPERTY = settings(max_examples=40, deadline=None)

keys = st.integers(min_value=0, max_value=2**64 - 1).map(np.uint64)
trits = st.sampled_from([-1, 0, 1])
MAX_DIMS = 64  # culture.dims <= 64: a belief vector is one 64-bit mask pair


def belief_arrays(max_members=8, max_dims=MAX_DIMS):
    shapes = st.tuples(st.integers(1, max_members), st.integers(1, max_dims))
    return shapes.flatmap(lambda s: hnp.arrays(np.int64, s, elements=trits))


def reality_trits(data, m: int) -> np.ndarray:
    return np.array(data.draw(st.lists(st.sampled_from([-1, 1]), min_size=m, max_size=m)), dtype=np.int64)


def code_trits(data, m: int) -> np.ndarray:
    return np.array(data.draw(st.lists(trits, min_size=m, max_size=m)), dtype=np.int64)


def rpos_of(reality) -> np.uint64:
    """The reality mask (the +1 dimensions) of a ±1 vector."""
    return cult.pack_trits(reality)[1][0]


def code_of(code) -> tuple[np.uint64, np.uint64]:
    """The code's (code_known, code_pos) masks of a −1/0/+1 vector."""
    known, pos = cult.pack_trits(code)
    return known[0], pos[0]


def reality_of(rpos, m: int) -> np.ndarray:
    """The ±1 vector of a reality mask."""
    return cult.unpack_trits(np.uint64(2**m - 1), rpos, m)[0]


def actions_of(actions, m: int) -> np.ndarray:
    """Members × m array of ±1 actions from masks of the +1 actions."""
    return cult.unpack_trits(np.full(len(actions), 2**m - 1, dtype=np.uint64), actions, m)


def assert_masks_valid(known, pos, m: int) -> None:
    """pos is a subset of known, and no bit at or above m is set."""
    known = np.atleast_1d(np.asarray(known, dtype=np.uint64))
    pos = np.atleast_1d(np.asarray(pos, dtype=np.uint64))
    assert not (pos & ~known).any(), "a +1 belief outside the known mask"
    if m < 64:
        assert not (known >> np.uint64(m)).any(), "a bit beyond the m dimensions"


def within(share: float, p: float, n: int, k: float = 4.0) -> bool:
    """Is an observed share of ``n`` Bernoulli(p) draws within ``k`` standard errors of p?"""
    return abs(share - p) <= k * math.sqrt(p * (1.0 - p) / n)


def mean_se(x) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def run_tally(actions, superior) -> tuple[np.ndarray, int]:
    """Bit-sliced tally of the superior members' +1 action masks: (planes, count). The members
    form one heard team, and a superior member outperforms the code score 0 by 1. The planes
    start as junk, so a tally that does not reset them shows."""
    planes = np.full(cult.PLANES, 0xDEADBEEFDEADBEEF, dtype=np.uint64)
    performance = np.asarray(superior, dtype=np.int64)
    heard = np.ones(1, dtype=np.bool_)
    count = cult.tally(np.asarray(actions, dtype=np.uint64), performance, 0, heard, planes)
    return planes, int(count)


def planes_of(plus, count: int) -> tuple[np.ndarray, int]:
    """(planes, count) of ``count`` superior members of whom ``plus[d]`` act +1 on dimension d
    (so ``count − plus[d]`` act −1), tallied from constructed action masks; a few non-superior
    members acting +1 everywhere are mixed in and must not count."""
    plus = np.asarray(plus, dtype=np.int64)
    weights = np.uint64(1) << np.arange(plus.size, dtype=np.uint64)
    rows = np.arange(count)[:, None] < plus[None, :]  # member j acts +1 on d iff j < plus[d]
    masks = (rows.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    outsiders = np.full(3, np.uint64(2**64 - 1), dtype=np.uint64)
    actions = np.concatenate([outsiders, masks, outsiders])
    superior = np.concatenate([np.zeros(3, bool), np.ones(count, bool), np.zeros(3, bool)])
    return run_tally(actions, superior)


# --------------------------------------------------------------------------------------------
# the representation: trits <-> (known, pos) masks, population count
# --------------------------------------------------------------------------------------------
@PROPERTY
@given(beliefs=belief_arrays())
def test_pack_then_unpack_gives_the_trits_back(beliefs):
    members, m = beliefs.shape
    known, pos = cult.pack_trits(beliefs)
    assert known.dtype == np.uint64 and pos.dtype == np.uint64
    assert known.shape == pos.shape == (members,)
    assert_masks_valid(known, pos, m)
    for i, row in enumerate(beliefs):
        assert int(known[i]) == sum(1 << d for d in range(m) if row[d] != 0)
        assert int(pos[i]) == sum(1 << d for d in range(m) if row[d] > 0)
    np.testing.assert_array_equal(cult.unpack_trits(known, pos, m), beliefs)


@PROPERTY
@given(m=st.integers(1, MAX_DIMS), data=st.data())
def test_unpack_then_pack_gives_the_masks_back(m, data):
    """Any pair with pos a subset of known, within m bits, survives the round trip."""
    words = st.lists(st.integers(0, 2**m - 1), min_size=1, max_size=8)
    known = np.array(data.draw(words), dtype=np.uint64)
    same_length = st.lists(st.integers(0, 2**m - 1), min_size=known.size, max_size=known.size)
    pos = known & np.array(data.draw(same_length), dtype=np.uint64)
    trit_rows = cult.unpack_trits(known, pos, m)
    assert trit_rows.shape == (known.size, m)
    assert set(np.unique(trit_rows)) <= {-1, 0, 1}
    back_known, back_pos = cult.pack_trits(trit_rows)
    np.testing.assert_array_equal(back_known, known)
    np.testing.assert_array_equal(back_pos, pos)


def test_pack_trits_of_one_vector_and_the_top_bit():
    """A 1-D vector packs as one member; dimension 63 is bit 63 (2**63, beyond int64)."""
    vector = np.zeros(64, dtype=np.int64)
    vector[63] = 1
    vector[0] = -1
    known, pos = cult.pack_trits(vector)
    assert known.shape == (1,)
    assert int(known[0]) == 2**63 + 1 and int(pos[0]) == 2**63
    np.testing.assert_array_equal(cult.unpack_trits(known[0], pos[0], 64), [vector])


@settings(max_examples=200, deadline=None)
@given(x=st.integers(0, 2**64 - 1))
def test_popcount_counts_set_bits(x):
    assert cult.popcount(np.uint64(x)) == x.bit_count()


@pytest.mark.parametrize("x", [0, 1, 2**63, 2**63 - 1, 2**64 - 1, 0x5555555555555555, 0xAAAAAAAAAAAAAAAA])
def test_popcount_edge_words(x):
    assert cult.popcount(np.uint64(x)) == x.bit_count()


@settings(max_examples=200, deadline=None)
@given(x=st.integers(1, 2**64 - 1))
def test_lowest_bit_is_the_index_of_the_lowest_set_bit(x):
    d = cult.lowest_bit(np.uint64(x))
    assert d == (x & -x).bit_length() - 1
    assert (x >> d) & 1 and x % (1 << d) == 0


@pytest.mark.parametrize(
    ("x", "d"), [(1, 0), (2, 1), (2**63, 63), (2**64 - 1, 0), (2**63 + 2**62, 62), (2**32, 32), (0xA0, 5)]
)
def test_lowest_bit_edge_words(x, d):
    assert cult.lowest_bit(np.uint64(x)) == d


@pytest.mark.parametrize("m", [1, 2, 30, 63, 64])
def test_full_mask_has_the_m_low_bits(m):
    assert int(cult.full_mask(m)) == 2**m - 1


# --------------------------------------------------------------------------------------------
# initial state
# --------------------------------------------------------------------------------------------
def test_init_reality_is_plus_or_minus_one_with_equal_chance():
    """100 firms × 64 dimensions: share of +1 within 4 SE of 1/2, and no bit beyond m;
    same key, same reality; another key, another reality."""
    m, firms = 64, 100
    rpos = np.array([cult.init_reality(m, np.uint64(key)) for key in range(firms)], dtype=np.uint64)
    plus = sum(cult.popcount(r) for r in rpos)
    assert within(plus / (m * firms), 0.5, m * firms)
    assert all(int(cult.init_reality(30, np.uint64(key))) < 2**30 for key in range(firms))
    assert cult.init_reality(m, np.uint64(7)) == cult.init_reality(m, np.uint64(7))
    assert cult.init_reality(m, np.uint64(7)) != cult.init_reality(m, np.uint64(8))
    # the first m' dimensions do not depend on m
    assert cult.init_reality(30, np.uint64(7)) == int(cult.init_reality(64, np.uint64(7))) & (2**30 - 1)


def naive_beliefs(members: int, m: int, key: int) -> np.ndarray:
    """Trits of ``members`` naive members drawn by :func:`~orgsim.culture.init_beliefs`."""
    known = np.zeros(members, dtype=np.uint64)
    pos = np.zeros(members, dtype=np.uint64)
    cult.init_beliefs(known, pos, m, np.uint64(key))
    assert_masks_valid(known, pos, m)
    return cult.unpack_trits(known, pos, m)


def test_init_beliefs_are_naive_trits_in_equal_shares():
    """200 members × 30 dimensions: −1, 0, +1 each within 4 SE of 1/3; members draw
    differently, and so does another key."""
    m = 30
    beliefs = naive_beliefs(200, m, 3)
    assert set(np.unique(beliefs)) == {-1, 0, 1}
    for value in (-1, 0, 1):
        assert within(float(np.mean(beliefs == value)), 1 / 3, beliefs.size), value
    assert len({row.tobytes() for row in beliefs}) == len(beliefs), "two members drew alike"
    assert not np.array_equal(naive_beliefs(200, m, 4), beliefs)
    np.testing.assert_array_equal(naive_beliefs(200, m, 3), beliefs)


def test_init_beliefs_are_indexed_by_position_in_the_firm():
    """A member's draws depend on its position in the firm's arrays, not on how many follow: the
    first 50 of 200 members are the 50 of a 50-member firm."""
    np.testing.assert_array_equal(naive_beliefs(200, 30, 3)[:50], naive_beliefs(50, 30, 3))


def test_naive_beliefs_know_nothing_on_average():
    """March: naive members have knowledge 0 on average (200 members, within 4 SE)."""
    m = 30
    rpos = np.uint64(cult.init_reality(m, np.uint64(11)))
    known = np.zeros(200, dtype=np.uint64)
    pos = np.zeros(200, dtype=np.uint64)
    cult.init_beliefs(known, pos, m, np.uint64(11))
    scores = [cult.knowledge(k, p, rpos, m) for k, p in zip(known, pos)]
    mean, se = mean_se(scores)
    assert abs(mean) < 4 * se


# --------------------------------------------------------------------------------------------
# knowledge and agreement
# --------------------------------------------------------------------------------------------
def test_agreement_and_knowledge_by_hand():
    m = 4
    reality = np.array([1, -1, 1, -1], dtype=np.int64)
    rpos = rpos_of(reality)
    vector = np.array([1, 1, 0, -1], dtype=np.int64)  # right, wrong, unknown, right

    def score(fn, trit_vector):
        known, pos = cult.pack_trits(trit_vector)
        return fn(known[0], pos[0], rpos, m)

    assert score(cult.agreement, vector) == 1
    assert score(cult.knowledge, vector) == pytest.approx(0.25)
    assert score(cult.knowledge, reality) == 1.0
    assert score(cult.knowledge, -reality) == -1.0
    assert score(cult.knowledge, np.zeros(m, dtype=np.int64)) == 0.0
    known, pos = cult.pack_trits(np.stack([reality, -reality, vector]))
    assert cult.mean_knowledge(known, pos, rpos, m) == pytest.approx((1.0 - 1.0 + 0.25) / 3)


@PROPERTY
@given(beliefs=belief_arrays(), data=st.data())
def test_knowledge_is_right_minus_wrong_over_m(beliefs, data):
    m = beliefs.shape[1]
    reality = reality_trits(data, m)
    rpos = rpos_of(reality)
    known, pos = cult.pack_trits(beliefs)
    for row, k, p in zip(beliefs, known, pos):
        right = int(np.sum(row == reality))
        wrong = int(np.sum(row == -reality))
        assert cult.agreement(k, p, rpos, m) == right - wrong
        assert -1.0 <= cult.knowledge(k, p, rpos, m) <= 1.0
        assert cult.knowledge(k, p, rpos, m) == pytest.approx((right - wrong) / m)
    expected = np.mean([cult.knowledge(k, p, rpos, m) for k, p in zip(known, pos)])
    assert cult.mean_knowledge(known, pos, rpos, m) == pytest.approx(expected)


@PROPERTY
@given(beliefs=belief_arrays(), data=st.data())
def test_agreement_ignores_bits_beyond_m(beliefs, data):
    """Bits above the m dimensions in any mask do not count."""
    m = beliefs.shape[1]
    if m == 64:
        return
    rpos = rpos_of(reality_trits(data, m))
    known, pos = cult.pack_trits(beliefs)
    junk = np.uint64(~np.uint64(2**m - 1))
    for k, p in zip(known, pos):
        assert cult.agreement(k | junk, p | junk, rpos | junk, m) == cult.agreement(k, p, rpos, m)
        assert cult.agreement(k | junk, p, rpos, m) == cult.agreement(k, p, rpos, m)


@PROPERTY
@given(
    teams=st.integers(1, 6),
    members=st.integers(1, 8),
    m=st.integers(1, MAX_DIMS),
    data=st.data(),
)
def test_team_knowledge_is_the_mean_knowledge_of_each_team(teams, members, m, data):
    """The firm's members lie team by team in one array; each team's entry equals
    mean_knowledge of its slice exactly (and March's Σ v·r / m averaged over the team)."""
    beliefs = data.draw(hnp.arrays(np.int64, (teams * members, m), elements=trits))
    reality = reality_trits(data, m)
    rpos = rpos_of(reality)
    known, pos = cult.pack_trits(beliefs)
    out = np.full(teams, np.nan)
    cult.team_knowledge(known, pos, rpos, m, out)
    for i in range(teams):
        team = slice(i * members, (i + 1) * members)
        assert out[i] == cult.mean_knowledge(known[team], pos[team], rpos, m), i
        assert out[i] == pytest.approx(float(np.mean(beliefs[team] @ reality)) / m), i


# --------------------------------------------------------------------------------------------
# socialisation (p1)
# --------------------------------------------------------------------------------------------
def run_socialise(beliefs, code, p1, key, t) -> np.ndarray:
    """Socialise −1/0/+1 beliefs toward a −1/0/+1 code through the mask kernel."""
    m = beliefs.shape[1]
    known, pos = cult.pack_trits(beliefs)
    code_known, code_pos = code_of(code)
    cult.socialise(known, pos, code_known, code_pos, m, p1, key, t)
    assert_masks_valid(known, pos, m)
    return cult.unpack_trits(known, pos, m)


@PROPERTY
@given(
    members=st.integers(1, 150),
    m=st.integers(1, MAX_DIMS),
    p1=st.floats(0, 1),
    key=keys,
    t=st.integers(0, 10_000),
    data=st.data(),
)
def test_socialise_moves_exactly_the_differing_beliefs_whose_draw_is_below_p1(members, m, p1, key, t, data):
    """The documented stream: belief d of member g moves iff it differs from a non-zero code
    and the SOCIALISE uniform at counter g·m + d is below p1 (the kernel's integer test of the
    draw's bits, and its listing of members in blocks of 64, give exactly this)."""
    beliefs = data.draw(hnp.arrays(np.int64, (members, m), elements=trits))
    code = code_trits(data, m)
    after = run_socialise(beliefs, code, p1, key, t)
    base = np.uint64(_rng.stream_base(key, cult.SOCIALISE, 0, t))  # a uint64 for Numba
    differ = (code != 0) & (beliefs != code)
    draws = np.array([[_rng.uniform_at(base, g * m + d) for d in range(m)] for g in range(members)])
    np.testing.assert_array_equal(after != beliefs, differ & (draws < p1))


@PROPERTY
@given(beliefs=belief_arrays(), data=st.data(), p1=st.floats(0, 1), key=keys, t=st.integers(0, 10_000))
def test_socialise_steps_toward_a_nonzero_code_only(beliefs, data, p1, key, t):
    """Every change is one step toward the code; nothing moves where the code is 0."""
    m = beliefs.shape[1]
    code = code_trits(data, m)
    before = beliefs.copy()
    beliefs = run_socialise(beliefs, code, p1, key, t)
    assert set(np.unique(beliefs)) <= {-1, 0, 1}
    changed = beliefs != before
    np.testing.assert_array_equal(
        beliefs[changed] - before[changed], np.broadcast_to(code, beliefs.shape)[changed]
    )
    assert not changed[:, code == 0].any()
    assert not changed[before == code].any()


@PROPERTY
@given(beliefs=belief_arrays(), data=st.data(), key=keys)
def test_socialise_p1_zero_changes_nothing_and_p1_one_moves_every_differing_belief(beliefs, data, key):
    m = beliefs.shape[1]
    code = code_trits(data, m)
    still = run_socialise(beliefs, code, 0.0, key, 1)
    np.testing.assert_array_equal(still, beliefs)
    moved = run_socialise(beliefs, code, 1.0, key, 1)
    differing = (beliefs != code) & (code != 0)
    np.testing.assert_array_equal(moved[differing], (beliefs + code)[differing])
    np.testing.assert_array_equal(moved[~differing], beliefs[~differing])


def test_socialisation_is_gradual():
    """Christensen (2015): a belief opposite to the code passes through 0 before agreeing."""
    beliefs = np.full((1, 2), -1, dtype=np.int64)
    code = np.array([1, 1], dtype=np.int64)
    beliefs = run_socialise(beliefs, code, 1.0, np.uint64(1), 1)
    np.testing.assert_array_equal(beliefs, [[0, 0]])
    beliefs = run_socialise(beliefs, code, 1.0, np.uint64(1), 2)
    np.testing.assert_array_equal(beliefs, [[1, 1]])


def test_socialisation_rate_is_p1():
    """6,000 beliefs opposite to the code: the share that moves is within 4 SE of p1 = 0.3;
    the same for 6,000 zero beliefs toward a code of −1 (they take the code's −1)."""
    beliefs = run_socialise(
        np.full((200, 30), -1, dtype=np.int64), np.ones(30, dtype=np.int64), 0.3, np.uint64(5), 1
    )
    assert set(np.unique(beliefs)) <= {-1, 0}
    assert within(float(np.mean(beliefs == 0)), 0.3, beliefs.size)
    beliefs = run_socialise(
        np.zeros((200, 30), dtype=np.int64), -np.ones(30, dtype=np.int64), 0.3, np.uint64(5), 1
    )
    assert set(np.unique(beliefs)) <= {-1, 0}
    assert within(float(np.mean(beliefs == -1)), 0.3, beliefs.size)


# --------------------------------------------------------------------------------------------
# code learning (p2): the superior members' actions tallied bit-sliced, then adopted
# --------------------------------------------------------------------------------------------
@PROPERTY
@given(members=st.integers(0, 300), m=st.integers(1, MAX_DIMS), data=st.data())
def test_tally_counts_the_superior_members_plus_actions(members, m, data):
    """Up to 300 members (9 bit planes): on every dimension plane_count is numpy's count of +1
    actions among the superior members; the count returned is the number of superior members;
    the dimensions beyond the actions' bits count 0."""
    actions = data.draw(hnp.arrays(np.uint64, members, elements=st.integers(0, 2**m - 1)))
    superior = data.draw(hnp.arrays(np.bool_, members))
    planes, count = run_tally(actions, superior)
    assert count == int(superior.sum())
    plus = ((actions[superior][:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).sum(axis=0)
    for d in range(64):
        assert cult.plane_count(planes, d) == plus[d], d
    assert plus[m:].sum() == 0


@PROPERTY
@given(
    teams=st.integers(1, 6),
    members=st.integers(1, 12),
    code_score=st.integers(-30, 30),
    data=st.data(),
)
def test_tally_hears_only_the_members_of_heard_teams_who_beat_the_code(teams, members, code_score, data):
    """The superior group is the members of the heard teams (the member arrays hold them team
    by team) whose performance is strictly above the code's score: a member of an unheard team,
    or one who only equals the code, does not count."""
    n = teams * members
    actions = data.draw(hnp.arrays(np.uint64, n, elements=st.integers(0, 2**64 - 1)))
    performance = data.draw(hnp.arrays(np.int64, n, elements=st.integers(-30, 30)))
    heard = data.draw(hnp.arrays(np.bool_, teams))
    planes = np.full(cult.PLANES, 0xDEADBEEFDEADBEEF, dtype=np.uint64)
    count = cult.tally(actions, performance, code_score, heard, planes)
    superior = np.repeat(heard, members) & (performance > code_score)
    assert count == int(superior.sum())
    plus = ((actions[superior][:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).sum(axis=0)
    assert [cult.plane_count(planes, d) for d in range(64)] == plus.tolist()


def test_tally_of_every_bit_of_many_members():
    """300 members acting +1 on all 64 dimensions (the top bit is 2**63) and 100 acting −1
    everywhere: every dimension counts 300 of 400 (binary 100101100: several planes)."""
    actions = np.concatenate([np.full(300, 2**64 - 1, dtype=np.uint64), np.zeros(100, dtype=np.uint64)])
    planes, count = run_tally(actions, np.ones(400, dtype=np.bool_))
    assert count == 400
    assert [cult.plane_count(planes, d) for d in range(64)] == [300] * 64
    assert (planes[9:] == 0).all()
    planes, count = run_tally(actions, np.zeros(400, dtype=np.bool_))
    assert count == 0 and (planes == 0).all()


def run_code_learn(code, planes, count, p2, key, t) -> np.ndarray:
    """Code learning on a −1/0/+1 code through the mask kernel; the new code as trits."""
    m = code.shape[0]
    code_known, code_pos = cult.code_learn(*code_of(code), planes, count, m, p2, key, t)
    assert_masks_valid(code_known, code_pos, m)
    return cult.unpack_trits(np.uint64(code_known), np.uint64(code_pos), m)[0]


def test_code_learn_adopts_a_strict_majority_with_p2_one():
    """6 superior members; +1 actions 5, 1, 4, 3, 6, 2 of 6 on the six dimensions."""
    code = np.array([0, 1, -1, 0, 1, 0], dtype=np.int64)
    planes, count = planes_of([5, 1, 4, 3, 6, 2], 6)
    assert count == 6
    new = run_code_learn(code, planes, count, 1.0, np.uint64(1), 1)
    # majority +1, −1, +1, tie, +1 (already), −1
    np.testing.assert_array_equal(new, [1, -1, 1, 0, 1, -1])
    assert int((new != code).sum()) == 4


@PROPERTY
@given(
    data=st.data(),
    m=st.integers(1, MAX_DIMS),
    members=st.integers(0, 12),
    p2=st.floats(0, 1),
    key=keys,
    t=st.integers(0, 10_000),
)
def test_code_learn_only_ever_adopts_the_majority(data, m, members, p2, key, t):
    """Random action masks (also with bits beyond m, which must not count) and superior groups
    of up to 12: a change is always to the superior members' strict majority, a tie never
    changes the code, p2 = 0 changes nothing, and p2 = 1 adopts every differing majority."""
    actions = data.draw(hnp.arrays(np.uint64, members, elements=st.integers(0, 2**64 - 1)))
    superior = data.draw(hnp.arrays(np.bool_, members))
    planes, count = run_tally(actions, superior)
    bits = (actions[superior][:, None] >> np.arange(m, dtype=np.uint64)) & np.uint64(1)
    plus = bits.sum(axis=0).astype(np.int64)
    majority = np.sign(plus - (count - plus))  # 0 on a tie (and when nobody is superior)
    code = code_trits(data, m)
    new = run_code_learn(code, planes, count, p2, key, t)
    moved = new != code
    np.testing.assert_array_equal(new[moved], majority[moved])
    assert not moved[majority == 0].any(), "a tie never changes the code"
    np.testing.assert_array_equal(run_code_learn(code, planes, count, 0.0, key, t), code)
    sure = run_code_learn(code, planes, count, 1.0, key, t)
    np.testing.assert_array_equal(sure, np.where(majority != 0, majority, code))


@PROPERTY
@given(data=st.data(), m=st.integers(1, MAX_DIMS), count=st.integers(1, 300), key=keys)
def test_code_learn_majority_boundary_with_many_members(data, m, count, key):
    """Up to 300 superior members with +1 counts within one of a tie: with p2 = 1 from an
    empty code, exactly the dimensions with 2·plus > count become +1 and those with
    2·plus < count become −1 (the bit-sliced comparison at its boundary)."""
    half = st.integers(max(0, (count - 1) // 2), min(count, count // 2 + 1))
    plus = np.array(data.draw(st.lists(half, min_size=m, max_size=m)), dtype=np.int64)
    planes, tallied = planes_of(plus, count)
    assert tallied == count
    assert [cult.plane_count(planes, d) for d in range(m)] == plus.tolist()
    new = run_code_learn(np.zeros(m, dtype=np.int64), planes, count, 1.0, key, 1)
    np.testing.assert_array_equal(new, np.sign(2 * plus - count))


@pytest.mark.parametrize(
    ("p2", "plus", "count"),
    [(0.5, 1, 1), (0.5, 2, 2), (0.1, 3, 3), (0.3, 1, 4), (0.5, 4, 6), (0.5, 128, 255), (0.2, 150, 298)],
)
def test_code_learning_probability_is_one_minus_one_minus_p2_to_the_k(p2, plus, count):
    """March's footnote 1: a differing majority of margin k = |plus − minus| is adopted with
    1 − (1 − p2)^k (64 dimensions × 100 periods from an empty code, within 4 SE); +1 and −1
    majorities, with and without a minority, up to 298 superior members."""
    m, periods = 64, 100
    k = abs(2 * plus - count)
    planes, count = planes_of(np.full(m, plus), count)
    adopted = 0
    for t in range(1, periods + 1):
        code_known, code_pos = cult.code_learn(
            np.uint64(0), np.uint64(0), planes, count, m, p2, np.uint64(9), t
        )
        if 2 * plus > count:
            assert code_known == code_pos, "only the +1 majority is adopted"
        else:
            assert code_pos == 0, "only the −1 majority is adopted"
        adopted += cult.popcount(np.uint64(code_known))
    assert within(adopted / (m * periods), 1 - (1 - p2) ** k, m * periods)


def test_code_learn_with_nobody_superior_changes_nothing():
    planes, count = run_tally(np.full(5, 2**64 - 1, dtype=np.uint64), np.zeros(5, dtype=np.bool_))
    code = np.array([1, 0, -1, 0], dtype=np.int64)
    np.testing.assert_array_equal(run_code_learn(code, planes, count, 1.0, np.uint64(3), 1), code)


# --------------------------------------------------------------------------------------------
# turnover (p3), turbulence (p4), action
# --------------------------------------------------------------------------------------------
#: not a belief vector for m = 30: every bit set, also the 34 above the dimensions in use; a
#: naive member never has a bit beyond m, so this shows which members were replaced
SENTINEL = np.uint64(2**64 - 1)


def leavers(members: int, p3: float, key: int, t: int, m: int = 30) -> np.ndarray:
    """Which of ``members`` sentinel members turnover replaced at period ``t`` (booleans);
    every replaced member is wholly naive (both masks redrawn, no bit beyond m)."""
    known = np.full(members, SENTINEL, dtype=np.uint64)
    pos = np.full(members, SENTINEL, dtype=np.uint64)
    cult.turnover(known, pos, m, p3, np.uint64(key), t)
    kept = (known == SENTINEL) & (pos == SENTINEL)
    assert_masks_valid(known[~kept], pos[~kept], m)
    return ~kept


@pytest.mark.parametrize(("p3", "share"), [(0.0, 0.0), (1.0, 1.0), (0.4, 0.4)])
def test_turnover_replaces_whole_members_with_probability_p3(p3, share):
    """2,000 members: p3 = 0 replaces nobody, p3 = 1 everyone, p3 = 0.4 within 4 SE; each
    leaver is replaced as a whole by a naive member (both masks redrawn, no bit beyond m,
    shares 1/3)."""
    m = 30
    known = np.full(2000, SENTINEL, dtype=np.uint64)
    pos = np.full(2000, SENTINEL, dtype=np.uint64)
    cult.turnover(known, pos, m, p3, np.uint64(2), 5)
    kept = (known == SENTINEL) & (pos == SENTINEL)
    rows = ~kept
    assert_masks_valid(known[rows], pos[rows], m)  # a replaced member is wholly naive
    if share in (0.0, 1.0):
        assert rows.mean() == share
    else:
        assert within(float(rows.mean()), share, rows.size)
    if p3 == 1.0:
        new = cult.unpack_trits(known[rows], pos[rows], m)
        for value in (-1, 0, 1):
            assert within(float(np.mean(new == value)), 1 / 3, new.size), value


def test_turnover_at_a_small_rate():
    """p3 = 0.004 (the skipping's long gaps): 5,000 members × 100 periods, the share of
    leavers within 4 SE of p3."""
    members, periods, p3 = 5000, 100, 0.004
    left = sum(int(leavers(members, p3, 12, t).sum()) for t in range(1, periods + 1))
    assert within(left / (members * periods), p3, members * periods)


def test_turnover_has_no_positional_bias():
    """Skipping must not favour any part of the firm's array: 2,000 members × 200 periods at
    p3 = 0.01, the leaver share of every tenth of the array within 5 SE of p3 (10
    comparisons); and in a 3-member firm over 4,000 periods at p3 = 0.5, the first, middle and
    last member each leave in a share within 4 SE of 1/2."""
    members, periods, p3 = 2000, 200, 0.01
    left = np.zeros(members, dtype=np.int64)
    for t in range(1, periods + 1):
        left += leavers(members, p3, 13, t)
    trials = members // 10 * periods
    for tenth, n in enumerate(left.reshape(10, -1).sum(axis=1)):
        assert within(n / trials, p3, trials, k=5.0), tenth
    small = np.array([leavers(3, 0.5, 13, t) for t in range(1, 4001)])
    for i in range(3):
        assert within(float(small[:, i].mean()), 0.5, small.shape[0]), i


def test_turnover_leavers_are_independent_bernoulli_draws():
    """1,000 members × 400 periods at p3 = 0.1: the number of leavers per period has the
    binomial variance n·p3·(1 − p3) (within 4 SE of a sample variance, ≈ σ²·√(2/(T − 1)));
    both members of a disjoint neighbouring pair leave in a share within 4 SE of p3²."""
    members, periods, p3 = 1000, 400, 0.1
    left = np.array([leavers(members, p3, 14, t) for t in range(1, periods + 1)])
    variance = members * p3 * (1 - p3)
    sample = float(left.sum(axis=1).var(ddof=1))
    assert abs(sample - variance) <= 4 * variance * math.sqrt(2 / (periods - 1))
    pairs = left[:, 0::2] & left[:, 1::2]
    assert within(float(pairs.mean()), p3**2, pairs.size)


def test_turnover_draws_differ_between_periods_and_keys():
    first = leavers(500, 0.3, 15, 1)
    np.testing.assert_array_equal(first, leavers(500, 0.3, 15, 1))
    assert not np.array_equal(first, leavers(500, 0.3, 15, 2))
    assert not np.array_equal(first, leavers(500, 0.3, 16, 1))


def flip_counts(m: int, p4: float, key: int, periods: int) -> np.ndarray:
    """How often turbulence flipped each of the m dimensions over ``periods`` periods; it never
    touches a bit beyond m."""
    rpos = np.uint64(cult.init_reality(m, np.uint64(key)))
    flips = np.zeros(m, dtype=np.int64)
    for t in range(1, periods + 1):
        new = np.uint64(cult.turbulence(rpos, m, p4, np.uint64(key), t))
        assert m == 64 or int(new) >> m == 0, "a bit beyond m"
        flips += ((np.uint64(new ^ rpos) >> np.arange(m, dtype=np.uint64)) & np.uint64(1)).astype(np.int64)
        rpos = new
    return flips


@pytest.mark.parametrize(("p4", "share"), [(0.0, 0.0), (1.0, 1.0), (0.25, 0.25)])
def test_turbulence_flips_dimensions_with_probability_p4(p4, share):
    """64 dimensions × 100 periods: p4 = 0 flips nothing, p4 = 1 everything, p4 = 0.25 within
    4 SE; turbulence returns the new reality mask and touches no bit beyond m."""
    m, periods = 64, 100
    rpos = np.uint64(cult.init_reality(m, np.uint64(4)))
    flips = 0
    for t in range(1, periods + 1):
        new = np.uint64(cult.turbulence(rpos, m, p4, np.uint64(4), t))
        flips += cult.popcount(new ^ rpos)
        rpos = new
    if share in (0.0, 1.0):
        assert flips == share * m * periods
    else:
        assert within(flips / (m * periods), share, m * periods)
    short = np.uint64(cult.init_reality(30, np.uint64(4)))
    assert int(cult.turbulence(short, 30, 1.0, np.uint64(4), 1)) == int(short) ^ (2**30 - 1)


def test_turbulence_at_a_small_rate():
    """p4 = 0.01: 64 dimensions × 5,000 periods, the share of flips within 4 SE of p4; at
    m = 30 likewise over 10,000 periods, with no bit beyond m."""
    for m, periods in ((64, 5000), (30, 10_000)):
        flips = flip_counts(m, 0.01, 17, periods)
        assert within(flips.sum() / (m * periods), 0.01, m * periods), m


def test_turbulence_has_no_positional_bias():
    """Every one of 64 dimensions flips in a share within 5 SE of p4 = 0.25 over 2,000 periods
    (64 comparisons), the first and the last (bit 63) included."""
    periods = 2000
    flips = flip_counts(64, 0.25, 18, periods)
    for d in range(64):
        assert within(flips[d] / periods, 0.25, periods, k=5.0), d


def run_act(beliefs, reality, key, t) -> tuple[np.ndarray, np.ndarray]:
    """Act on −1/0/+1 beliefs through the mask kernel: (±1 actions, performance)."""
    members, m = beliefs.shape
    known, pos = cult.pack_trits(beliefs)
    actions = np.zeros(members, dtype=np.uint64)
    performance = np.zeros(members, dtype=np.int64)
    cult.act(known, pos, rpos_of(reality), m, key, t, actions, performance)
    assert_masks_valid(actions, actions, m)
    return actions_of(actions, m), performance


@PROPERTY
@given(beliefs=belief_arrays(), data=st.data(), key=keys, t=st.integers(0, 10_000))
def test_act_follows_beliefs_and_scores_against_reality(beliefs, data, key, t):
    m = beliefs.shape[1]
    reality = reality_trits(data, m)
    actions, performance = run_act(beliefs, reality, key, t)
    assert set(np.unique(actions)) <= {-1, 1}
    sure = beliefs != 0
    np.testing.assert_array_equal(actions[sure], beliefs[sure])
    np.testing.assert_array_equal(performance, actions @ reality)


def test_act_flips_a_fair_coin_where_a_belief_is_zero():
    """200 members × 64 dimensions × 20 periods, beliefs naive (a third zero): on the zero
    beliefs the share of +1 actions is within 4 SE of 1/2; every dimension's share is within
    5 SE (64 bits of one random word per member; 5 SE for 64 comparisons)."""
    members, m, periods = 200, 64, 20
    beliefs = naive_beliefs(members, m, 6)
    zero = beliefs == 0
    reality = np.ones(m, dtype=np.int64)
    plus = np.zeros(m, dtype=np.int64)
    for t in range(1, periods + 1):
        actions, _ = run_act(beliefs, reality, np.uint64(6), t)
        plus += ((actions == 1) & zero).sum(axis=0)
    n_dim = zero.sum(axis=0) * periods
    assert within(plus.sum() / n_dim.sum(), 0.5, int(n_dim.sum()))
    for d in range(m):
        assert within(plus[d] / n_dim[d], 0.5, int(n_dim[d]), k=5.0), d


def test_act_draws_differ_between_members_positions_and_periods():
    """The coin flips of one member, another member and another period differ; they are indexed
    by the member's position in the firm's arrays: the first two of a 4-member firm flip the
    coins of a 2-member firm, the members at positions 2 and 3 flip others."""
    beliefs = np.zeros((4, 64), dtype=np.int64)
    reality = np.ones(64, dtype=np.int64)
    first, _ = run_act(beliefs[:2], reality, np.uint64(6), 1)
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first, run_act(beliefs[:2], reality, np.uint64(6), 2)[0])
    assert not np.array_equal(first, run_act(beliefs[:2], reality, np.uint64(7), 1)[0])
    np.testing.assert_array_equal(first, run_act(beliefs[:2], reality, np.uint64(6), 1)[0])
    firm, _ = run_act(beliefs, reality, np.uint64(6), 1)
    np.testing.assert_array_equal(firm[:2], first)
    assert not np.array_equal(firm[2:], first)


# --------------------------------------------------------------------------------------------
# configuration: at most 64 dimensions
# --------------------------------------------------------------------------------------------
def test_dims_is_at_most_64():
    with pytest.raises(orgsim.ConfigError, match=r"^culture\.dims == 65, must be <= 64$"):
        orgsim.compose(["culture.dims=65"])


def test_a_run_with_64_dimensions_uses_every_bit():
    """March's scenario at m = 64 (the top bit is 2**63): 4 firms × 60 periods; the code
    learns (its knowledge rises from 0 and stays in [−1, 1]) and both engines give the same
    numbers."""
    cfg = orgsim.compose(["scenario=march1991", "culture.dims=64", "n_orgs=4", "periods=60"])
    mesa = orgsim.simulate(cfg, engine="mesa", teams=False).kpis
    fast = orgsim.simulate(cfg, engine="numba", teams=False).kpis
    np.testing.assert_array_equal(mesa.code_knowledge.to_numpy(), fast.code_knowledge.to_numpy())
    knowledge = mesa.code_knowledge.to_numpy()
    assert ((knowledge >= -1) & (knowledge <= 1)).all()
    last = mesa.loc[mesa.period == cfg.periods, "code_knowledge"].to_numpy()
    assert (last > 0.5).all()


# --------------------------------------------------------------------------------------------
# knowledge drives decisions
# --------------------------------------------------------------------------------------------
def test_quality_is_knowledge_clipped_to_unit_interval():
    assert cult.quality(-0.4) == 0.0
    assert cult.quality(0.0) == 0.0
    assert cult.quality(0.3) == pytest.approx(0.3)
    assert cult.quality(1.0) == 1.0
    assert cult.quality(1.5) == 1.0


@PROPERTY
@given(beta=st.floats(0, 1), q=st.floats(0, 1), q2=st.floats(0, 1), lam=st.floats(0, 1))
def test_effective_beta(beta, q, q2, lam):
    """q = 1 leaves β unchanged; q = 0 gives β(1 − λ); more knowledge never lowers β."""
    assert cult.effective_beta(beta, 1.0, lam) == pytest.approx(beta)
    assert cult.effective_beta(beta, 0.0, lam) == pytest.approx(beta * (1 - lam))
    lo, hi = sorted((q, q2))
    assert cult.effective_beta(beta, lo, lam) <= cult.effective_beta(beta, hi, lam) + 1e-15
    assert beta * (1 - lam) - 1e-15 <= cult.effective_beta(beta, q, lam) <= beta + 1e-15


@PROPERTY
@given(q=st.floats(0, 1), kappa=st.floats(0, 2), gain=st.floats(0, 1))
def test_cost_factor(q, kappa, gain):
    """q = 1 and no BPO gain leave costs unchanged; ignorance raises and gains cut costs."""
    assert cult.cost_factor(1.0, kappa, 0.0) == 1.0
    assert cult.cost_factor(q, kappa, gain) == pytest.approx((1 + kappa * (1 - q)) * (1 - gain))
    assert cult.cost_factor(q, kappa, 0.0) >= 1.0
    assert cult.cost_factor(q, kappa, gain) <= cult.cost_factor(q, kappa, 0.0)


def test_knowledge_reaches_operations_only_through_the_documented_mapping():
    """With λ_β = σ_F = κ = 0 the culture layer is invisible to operations: 2 firms × 60
    periods, volatile environment, every operational KPI identical to the layer switched off;
    with the scenario's sensitivities it changes them."""
    base = ["n_orgs=2", "periods=60", "environment=volatile"]
    off = orgsim.simulate(orgsim.compose([*base, "culture.enabled=false"])).kpis
    mute = orgsim.simulate(
        orgsim.compose(
            [*base, "culture.beta_sensitivity=0", "culture.forecast_noise=0", "culture.cost_sensitivity=0"]
        )
    ).kpis
    live = orgsim.simulate(orgsim.compose(base)).kpis
    ops = ["revenue", "operating_cost", "free_cash_flow", "cash", "inventory_units", "backlog_units"]
    np.testing.assert_array_equal(off[ops].to_numpy(), mute[ops].to_numpy())
    assert (off.code_knowledge == 1.0).all() and (mute.code_knowledge < 1.0).any()
    assert not np.array_equal(off[ops].to_numpy(), live[ops].to_numpy())


# --------------------------------------------------------------------------------------------
# mechanism: too-fast socialisation lowers the code's knowledge (March 1991)
# --------------------------------------------------------------------------------------------
def _final_code_knowledge(overrides: list[str]) -> np.ndarray:
    """The code's knowledge in the last period, per firm. On the Numba engine: it gives the Mesa
    engine's numbers on these scenarios (``test_engine_numba.py::test_engines_agree`` runs
    march1991 and multinational in every strategy and environment), in a fraction of the time."""
    cfg = orgsim.compose(overrides)
    kpis = orgsim.simulate(cfg, engine="numba", teams=False).kpis
    return kpis.loc[kpis.period == cfg.periods, "code_knowledge"].to_numpy()


def _assert_slow_beats_fast(slow: np.ndarray, fast: np.ndarray, k: float = 4.0) -> None:
    (m_slow, se_slow), (m_fast, se_fast) = mean_se(slow), mean_se(fast)
    diff, se = m_slow - m_fast, math.hypot(se_slow, se_fast)
    assert diff > k * se, f"p1=0.1: {m_slow:.3f}±{se_slow:.3f}, p1=0.9: {m_fast:.3f}±{se_fast:.3f}"


def test_fast_socialisation_lowers_code_knowledge_march1991():
    """March (1991) Figure 1 in miniature: 30 firms × 200 periods (equilibrium), p2 = 0.5;
    the code knows more at p1 = 0.1 than at p1 = 0.9 by more than 4 SE of the difference
    (published: about 0.95 against 0.74)."""
    base = ["scenario=march1991", "n_orgs=30", "periods=200", "culture.p2=0.5"]
    _assert_slow_beats_fast(
        _final_code_knowledge([*base, "culture.p1=0.1"]),
        _final_code_knowledge([*base, "culture.p1=0.9"]),
    )


def test_fast_socialisation_lowers_code_knowledge_in_the_multinational():
    """Inside the multinational firm (10 teams × 5 members, superior group by accountability
    score, 200 burn-in periods, stable environment): 40 firms × 52 periods; the code's
    knowledge at the end is higher with culture.p1 = 0.1 than 0.9 by more than 4 SE of the
    difference (observed about 0.89 against 0.72)."""
    base = ["scenario=multinational", "environment=stable", "n_orgs=40", "periods=52"]
    _assert_slow_beats_fast(
        _final_code_knowledge([*base, "culture.p1=0.1"]),
        _final_code_knowledge([*base, "culture.p1=0.9"]),
    )


def test_turbulence_takes_a_plain_int_reality():
    """A reality passed as a Python int is a uint64 mask: p4 = 1 flips all 64 bits, the top one
    included (a signed int64 would have come back negative)."""
    flipped = cult.turbulence(5, 64, 1.0, np.uint64(3), 2)
    assert int(flipped) == 5 ^ (2**64 - 1)
