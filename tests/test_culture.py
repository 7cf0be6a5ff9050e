"""The culture and learning layer (``orgsim.culture``): March's (1991) kernels, the mapping from
knowledge to decisions, and the mechanism "too-fast socialisation lowers the code's knowledge".

Kernel tests call the Numba functions directly on small arrays of bit masks (a belief vector is
a ``(known, pos)`` pair of uint64 masks, reality the mask ``rpos`` of its +1 dimensions); where a
property is about −1/0/+1 beliefs, the test states it on trit arrays and converts with
:func:`~orgsim.culture.pack_trits` and :func:`~orgsim.culture.unpack_trits`. Frequencies of
random events are checked against their probabilities within 4 binomial standard errors (a false
alarm about once in 16,000 runs; the draws are counter-based, so each test is deterministic
anyway). The two
mechanism tests compare population means with a margin of 4 standard errors of the difference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import orgsim
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


def test_init_beliefs_are_naive_trits_in_equal_shares():
    """200 members × 30 dimensions: −1, 0, +1 each within 4 SE of 1/3; teams draw differently."""
    m = 30
    known = np.zeros(200, dtype=np.uint64)
    pos = np.zeros(200, dtype=np.uint64)
    cult.init_beliefs(known, pos, m, np.uint64(3), 0)
    assert_masks_valid(known, pos, m)
    beliefs = cult.unpack_trits(known, pos, m)
    assert set(np.unique(beliefs)) == {-1, 0, 1}
    for value in (-1, 0, 1):
        assert within(float(np.mean(beliefs == value)), 1 / 3, beliefs.size), value
    other_known = np.zeros_like(known)
    other_pos = np.zeros_like(pos)
    cult.init_beliefs(other_known, other_pos, m, np.uint64(3), 1)
    assert not np.array_equal(cult.unpack_trits(other_known, other_pos, m), beliefs)


def test_naive_beliefs_know_nothing_on_average():
    """March: naive members have knowledge 0 on average (200 members, within 4 SE)."""
    m = 30
    rpos = np.uint64(cult.init_reality(m, np.uint64(11)))
    known = np.zeros(200, dtype=np.uint64)
    pos = np.zeros(200, dtype=np.uint64)
    cult.init_beliefs(known, pos, m, np.uint64(11), 0)
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


# --------------------------------------------------------------------------------------------
# socialisation (p1)
# --------------------------------------------------------------------------------------------
def run_socialise(beliefs, code, p1, key, team, t) -> np.ndarray:
    """Socialise −1/0/+1 beliefs toward a −1/0/+1 code through the mask kernel."""
    m = beliefs.shape[1]
    known, pos = cult.pack_trits(beliefs)
    code_known, code_pos = code_of(code)
    cult.socialise(known, pos, code_known, code_pos, m, p1, key, team, t)
    assert_masks_valid(known, pos, m)
    return cult.unpack_trits(known, pos, m)


@PROPERTY
@given(beliefs=belief_arrays(), data=st.data(), p1=st.floats(0, 1), key=keys, t=st.integers(0, 10_000))
def test_socialise_steps_toward_a_nonzero_code_only(beliefs, data, p1, key, t):
    """Every change is one step toward the code; nothing moves where the code is 0."""
    m = beliefs.shape[1]
    code = code_trits(data, m)
    before = beliefs.copy()
    beliefs = run_socialise(beliefs, code, p1, key, 0, t)
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
    still = run_socialise(beliefs, code, 0.0, key, 0, 1)
    np.testing.assert_array_equal(still, beliefs)
    moved = run_socialise(beliefs, code, 1.0, key, 0, 1)
    differing = (beliefs != code) & (code != 0)
    np.testing.assert_array_equal(moved[differing], (beliefs + code)[differing])
    np.testing.assert_array_equal(moved[~differing], beliefs[~differing])


def test_socialisation_is_gradual():
    """Christensen (2015): a belief opposite to the code passes through 0 before agreeing."""
    beliefs = np.full((1, 2), -1, dtype=np.int64)
    code = np.array([1, 1], dtype=np.int64)
    beliefs = run_socialise(beliefs, code, 1.0, np.uint64(1), 0, 1)
    np.testing.assert_array_equal(beliefs, [[0, 0]])
    beliefs = run_socialise(beliefs, code, 1.0, np.uint64(1), 0, 2)
    np.testing.assert_array_equal(beliefs, [[1, 1]])


def test_socialisation_rate_is_p1():
    """6,000 beliefs opposite to the code: the share that moves is within 4 SE of p1 = 0.3;
    the same for 6,000 zero beliefs toward a code of −1 (they take the code's −1)."""
    beliefs = run_socialise(
        np.full((200, 30), -1, dtype=np.int64), np.ones(30, dtype=np.int64), 0.3, np.uint64(5), 0, 1
    )
    assert set(np.unique(beliefs)) <= {-1, 0}
    assert within(float(np.mean(beliefs == 0)), 0.3, beliefs.size)
    beliefs = run_socialise(
        np.zeros((200, 30), dtype=np.int64), -np.ones(30, dtype=np.int64), 0.3, np.uint64(5), 0, 1
    )
    assert set(np.unique(beliefs)) <= {-1, 0}
    assert within(float(np.mean(beliefs == -1)), 0.3, beliefs.size)


# --------------------------------------------------------------------------------------------
# code learning (p2)
# --------------------------------------------------------------------------------------------
def run_code_learn(code, plus, minus, p2, key, t) -> np.ndarray:
    """Code learning on a −1/0/+1 code through the mask kernel; the new code as trits."""
    m = code.shape[0]
    code_known, code_pos = cult.code_learn(*code_of(code), plus, minus, p2, key, t)
    assert_masks_valid(code_known, code_pos, m)
    return cult.unpack_trits(np.uint64(code_known), np.uint64(code_pos), m)[0]


def test_code_learn_adopts_a_strict_majority_with_p2_one():
    code = np.array([0, 1, -1, 0, 1, 0], dtype=np.int64)
    plus = np.array([3, 0, 5, 2, 4, 2], dtype=np.int64)
    minus = np.array([1, 2, 1, 2, 1, 3], dtype=np.int64)
    new = run_code_learn(code, plus, minus, 1.0, np.uint64(1), 1)
    # majority +1, −1, +1, tie, +1 (already), −1
    np.testing.assert_array_equal(new, [1, -1, 1, 0, 1, -1])
    assert int((new != code).sum()) == 4


@PROPERTY
@given(
    data=st.data(),
    m=st.integers(1, MAX_DIMS),
    p2=st.floats(0, 1),
    key=keys,
    t=st.integers(0, 10_000),
)
def test_code_learn_only_ever_adopts_the_majority(data, m, p2, key, t):
    counts = st.lists(st.integers(0, 6), min_size=m, max_size=m)
    code = code_trits(data, m)
    plus = np.array(data.draw(counts), dtype=np.int64)
    minus = np.array(data.draw(counts), dtype=np.int64)
    new = run_code_learn(code, plus, minus, p2, key, t)
    moved = new != code
    np.testing.assert_array_equal(new[moved], np.sign(plus - minus)[moved])
    assert not moved[plus == minus].any(), "a tie never changes the code"
    np.testing.assert_array_equal(run_code_learn(code, plus, minus, 0.0, key, t), code)


@pytest.mark.parametrize(("p2", "k"), [(0.5, 1), (0.5, 2), (0.1, 3)])
def test_code_learning_probability_is_one_minus_one_minus_p2_to_the_k(p2, k):
    """March's footnote 1: a differing majority of margin k is adopted with 1 − (1 − p2)^k
    (64 dimensions × 100 periods from an empty code, within 4 SE)."""
    m, periods = 64, 100
    plus = np.full(m, k, dtype=np.int64)
    minus = np.zeros(m, dtype=np.int64)
    adopted = 0
    for t in range(1, periods + 1):
        code_known, code_pos = cult.code_learn(np.uint64(0), np.uint64(0), plus, minus, p2, np.uint64(9), t)
        assert code_known == code_pos, "only the +1 majority is adopted"
        adopted += cult.popcount(np.uint64(code_pos))
    assert within(adopted / (m * periods), 1 - (1 - p2) ** k, m * periods)


@PROPERTY
@given(
    actions=belief_arrays().map(lambda a: np.where(a == 0, 1, a)),
    data=st.data(),
)
def test_tally_counts_the_superior_members_actions(actions, data):
    members, m = actions.shape
    superior = np.array(data.draw(st.lists(st.booleans(), min_size=members, max_size=members)))
    plus = np.zeros(m, dtype=np.int64)
    minus = np.zeros(m, dtype=np.int64)
    masks = cult.pack_trits(actions)[1]  # the +1 actions
    cult.tally_actions(masks, superior, m, plus, minus)
    np.testing.assert_array_equal(plus, (actions[superior] == 1).sum(axis=0))
    np.testing.assert_array_equal(minus, (actions[superior] == -1).sum(axis=0))


# --------------------------------------------------------------------------------------------
# turnover (p3), turbulence (p4), action
# --------------------------------------------------------------------------------------------
#: not a belief vector for m = 30: every bit set, also the 34 above the dimensions in use; a
#: naive member never has a bit beyond m, so this shows which members were replaced
SENTINEL = np.uint64(2**64 - 1)


@pytest.mark.parametrize(("p3", "share"), [(0.0, 0.0), (1.0, 1.0), (0.4, 0.4)])
def test_turnover_replaces_whole_members_with_probability_p3(p3, share):
    """2,000 members: p3 = 0 replaces nobody, p3 = 1 everyone, p3 = 0.4 within 4 SE; each
    leaver is replaced as a whole by a naive member (both masks redrawn, no bit beyond m,
    shares 1/3)."""
    m = 30
    known = np.full(2000, SENTINEL, dtype=np.uint64)
    pos = np.full(2000, SENTINEL, dtype=np.uint64)
    cult.turnover(known, pos, m, p3, np.uint64(2), 0, 5)
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


def run_act(beliefs, reality, key, team, t) -> tuple[np.ndarray, np.ndarray]:
    """Act on −1/0/+1 beliefs through the mask kernel: (±1 actions, performance)."""
    members, m = beliefs.shape
    known, pos = cult.pack_trits(beliefs)
    actions = np.zeros(members, dtype=np.uint64)
    performance = np.zeros(members, dtype=np.int64)
    cult.act(known, pos, rpos_of(reality), m, key, team, t, actions, performance)
    assert_masks_valid(actions, actions, m)
    return actions_of(actions, m), performance


@PROPERTY
@given(beliefs=belief_arrays(), data=st.data(), key=keys, t=st.integers(0, 10_000))
def test_act_follows_beliefs_and_scores_against_reality(beliefs, data, key, t):
    m = beliefs.shape[1]
    reality = reality_trits(data, m)
    actions, performance = run_act(beliefs, reality, key, 0, t)
    assert set(np.unique(actions)) <= {-1, 1}
    sure = beliefs != 0
    np.testing.assert_array_equal(actions[sure], beliefs[sure])
    np.testing.assert_array_equal(performance, actions @ reality)


def test_act_flips_a_fair_coin_where_a_belief_is_zero():
    """200 members × 64 dimensions × 20 periods, beliefs naive (a third zero): on the zero
    beliefs the share of +1 actions is within 4 SE of 1/2; every dimension's share is within
    5 SE (64 bits of one random word per member; 5 SE for 64 comparisons)."""
    members, m, periods = 200, 64, 20
    known = np.zeros(members, dtype=np.uint64)
    pos = np.zeros(members, dtype=np.uint64)
    cult.init_beliefs(known, pos, m, np.uint64(6), 0)
    beliefs = cult.unpack_trits(known, pos, m)
    zero = beliefs == 0
    reality = np.ones(m, dtype=np.int64)
    plus = np.zeros(m, dtype=np.int64)
    for t in range(1, periods + 1):
        actions, _ = run_act(beliefs, reality, np.uint64(6), 0, t)
        plus += ((actions == 1) & zero).sum(axis=0)
    n_dim = zero.sum(axis=0) * periods
    assert within(plus.sum() / n_dim.sum(), 0.5, int(n_dim.sum()))
    for d in range(m):
        assert within(plus[d] / n_dim[d], 0.5, int(n_dim[d]), k=5.0), d


def test_act_draws_differ_between_members_teams_and_periods():
    """The coin flips of one member, another member, another team and another period differ."""
    beliefs = np.zeros((2, 64), dtype=np.int64)
    reality = np.ones(64, dtype=np.int64)
    first, _ = run_act(beliefs, reality, np.uint64(6), 0, 1)
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first, run_act(beliefs, reality, np.uint64(6), 1, 1)[0])
    assert not np.array_equal(first, run_act(beliefs, reality, np.uint64(6), 0, 2)[0])
    np.testing.assert_array_equal(first, run_act(beliefs, reality, np.uint64(6), 0, 1)[0])


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
    cfg = orgsim.compose(overrides)
    kpis = orgsim.simulate(cfg, teams=False).kpis
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
