"""Culture and learning layer: March's (1991) mutual learning between individuals and a code.

Reality is a vector of ``m`` dimensions, each +1 or −1. Every team has ``members`` individuals
whose beliefs are −1, 0 or +1 on each dimension; the firm holds a code of received truth,
initially all 0. Each learning step, in the order of Christensen's (2015) note on March's
original program, as recreated by Workiewicz (2019):

1. **turnover** (p3): each member leaves with probability p3 and is replaced by a naive one
   whose beliefs are −1, 0, +1 with equal probability;
2. **turbulence** (p4): each dimension of reality flips with probability p4;
3. **act**: each member acts on each dimension by its belief, or by a fair coin where the belief
   is 0; its performance is Σ action·reality;
4. **socialise** (p1): on each dimension where the code is non-zero and the belief differs, with
   probability p1 the belief moves one step toward the code (−1 → 0 → +1 or the reverse;
   gradual socialisation, Christensen 2015);
5. **code learning** (p2): on each dimension where the superior group's actions have a strict
   majority that differs from the code, the code adopts it with probability 1 − (1 − p2)^k,
   k = majority − minority count.

Who is superior is decided outside this module: by individual performance above the code's score
Σ code·reality (March's model) or, in firms, by the accountability scores of teams (see
:mod:`orgsim.management`). Knowledge of a belief vector is Σ belief·reality / m, in [−1, 1]
(March's measure: 1 is complete knowledge, 0 is what naive beliefs give on average).

**Representation.** A belief vector (m ≤ 64) is two bit masks: ``known`` (the belief is
non-zero) and ``pos`` (the belief is +1; a subset of ``known``); reality is one mask ``rpos`` of
the +1 dimensions, the code a pair ``(code_known, code_pos)``. Agreement is then a population
count, and a member's coin flips are the bits of one random word — the same rules at a small
fraction of the cost of arrays of −1/0/+1. :func:`pack_trits` and :func:`unpack_trits` convert.

All randomness is counter-based (:mod:`orgsim._rng`), so both engines draw the same numbers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._rng import bits_at, stream_base, uniform_at

__all__ = [
    "act",
    "agreement",
    "code_learn",
    "cost_factor",
    "effective_beta",
    "init_beliefs",
    "init_reality",
    "knowledge",
    "mean_knowledge",
    "pack_trits",
    "popcount",
    "quality",
    "socialise",
    "tally_actions",
    "turbulence",
    "turnover",
    "unpack_trits",
]

# streams of the culture layer (distinct from the other layers' streams in _rng)
NAIVE = 21
TURNOVER = 22
TURBULENCE = 23
ACT = 24
SOCIALISE = 25
CODE = 26

_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@njit(cache=True, inline="always")
def popcount(x):
    """Number of set bits of a uint64."""
    x = x - ((x >> _ONE) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


@njit(cache=True, inline="always")
def full_mask(m):
    """The mask of the ``m`` dimensions in use."""
    if m >= 64:
        return ~_ZERO
    return (_ONE << np.uint64(m)) - _ONE


@njit(cache=True, inline="always")
def _bit(d):
    return _ONE << np.uint64(d)


@njit(cache=True, inline="always")
def _trit(u):
    """−1, 0 or +1 with equal probability from a uniform draw."""
    if u < 1.0 / 3.0:
        return -1
    if u < 2.0 / 3.0:
        return 0
    return 1


@njit(cache=True)
def _naive(base, offset, m):
    """A naive belief vector: (known, pos) from m uniform draws starting at ``offset``."""
    known = _ZERO
    pos = _ZERO
    for d in range(m):
        tr = _trit(uniform_at(base, offset + d))
        if tr != 0:
            known |= _bit(d)
            if tr > 0:
                pos |= _bit(d)
    return known, pos


@njit(cache=True)
def init_reality(m, key):
    """Reality: each dimension +1 or −1 with probability 1/2 (drawn at period 0); returns rpos."""
    base = stream_base(key, TURBULENCE, 0, 0)
    rpos = _ZERO
    for d in range(m):
        if uniform_at(base, d) < 0.5:
            rpos |= _bit(d)
    return rpos


@njit(cache=True)
def init_beliefs(known, pos, m, key, team):
    """Naive beliefs of every member of ``team`` (drawn at period 0)."""
    base = stream_base(key, NAIVE, 0 + team, 0)
    for i in range(known.shape[0]):
        known[i], pos[i] = _naive(base, i * m, m)


@njit(cache=True)
def agreement(known, pos, rpos, m):
    """Σ belief·reality: dimensions right minus dimensions wrong (an integer)."""
    wrong = known & (pos ^ rpos) & full_mask(m)
    return popcount(known & full_mask(m)) - 2 * popcount(wrong)


@njit(cache=True)
def knowledge(known, pos, rpos, m):
    """March's knowledge score Σ v·r / m of one belief vector (or of the code)."""
    return agreement(known, pos, rpos, m) / m


@njit(cache=True)
def mean_knowledge(known, pos, rpos, m):
    """Mean knowledge of a team's members."""
    total = 0.0
    for i in range(known.shape[0]):
        total += knowledge(known[i], pos[i], rpos, m)
    return total / known.shape[0]


@njit(cache=True)
def turnover(known, pos, m, p3, key, team, t):
    """Replace each member with probability p3 by a naive one."""
    if p3 <= 0.0:
        return
    leave = stream_base(key, TURNOVER, team, t)
    for i in range(known.shape[0]):
        if uniform_at(leave, i) < p3:
            known[i], pos[i] = _naive(stream_base(key, NAIVE, team, t), i * m, m)


@njit(cache=True)
def turbulence(rpos, m, p4, key, t):
    """Flip each dimension of reality with probability p4; returns the new rpos."""
    if p4 <= 0.0:
        return rpos
    base = stream_base(key, TURBULENCE, 0, t)
    for d in range(m):
        if uniform_at(base, d) < p4:
            rpos ^= _bit(d)
    return rpos


@njit(cache=True)
def act(known, pos, rpos, m, key, team, t, actions, performance):
    """Members act on their beliefs (a fair coin where a belief is 0).

    Fills ``actions`` (the mask of +1 actions) and ``performance`` (Σ action·reality).
    """
    base = stream_base(key, ACT, team, t)
    full = full_mask(m)
    for i in range(known.shape[0]):
        a = pos[i] & known[i]
        if known[i] & full != full:  # coins only where the member has no belief
            a |= bits_at(base, i) & ~known[i]
        a &= full
        actions[i] = a
        performance[i] = m - 2 * popcount((a ^ rpos) & full)


@njit(cache=True)
def socialise(known, pos, code_known, code_pos, m, p1, key, team, t):
    """Gradual socialisation: with probability p1 a belief steps toward a non-zero code."""
    if p1 <= 0.0:
        return
    base = stream_base(key, SOCIALISE, team, t)
    full = full_mask(m)
    for i in range(known.shape[0]):
        k = known[i]
        p = pos[i]
        differ = code_known & (~k | (p ^ code_pos)) & full
        while differ != _ZERO:
            low = differ & (~differ + _ONE)
            d = popcount(low - _ONE)
            differ ^= low
            if uniform_at(base, i * m + d) < p1:
                if k & low:  # opposite belief: becomes 0
                    k &= ~low
                    p &= ~low
                else:  # no belief: takes the code's
                    k |= low
                    p |= code_pos & low
        known[i] = k
        pos[i] = p


@njit(cache=True)
def tally_actions(actions, superior, m, plus, minus):
    """Add the superior members' actions to per-dimension counts of +1 and −1."""
    for i in range(actions.shape[0]):
        if superior[i]:
            a = actions[i]
            for d in range(m):
                if (a >> np.uint64(d)) & _ONE:
                    plus[d] += 1
                else:
                    minus[d] += 1


@njit(cache=True)
def code_learn(code_known, code_pos, plus, minus, p2, key, t):
    """The code adopts a differing strict majority with probability 1 − (1 − p2)^k.

    Returns the new ``(code_known, code_pos)``.
    """
    base = stream_base(key, CODE, 0, t)
    for d in range(plus.shape[0]):
        k = plus[d] - minus[d]
        if k == 0:
            continue
        b = _bit(d)
        majority_pos = k > 0
        if k < 0:
            k = -k
        differs = not (code_known & b) or (((code_pos & b) != _ZERO) != majority_pos)
        if differs and uniform_at(base, d) >= (1.0 - p2) ** k:
            code_known |= b
            if majority_pos:
                code_pos |= b
            else:
                code_pos &= ~b
    return code_known, code_pos


def pack_trits(trits) -> tuple[np.ndarray, np.ndarray]:
    """(known, pos) masks from an array of −1/0/+1 beliefs (members × m, m ≤ 64)."""
    trits = np.atleast_2d(np.asarray(trits))
    weights = np.uint64(1) << np.arange(trits.shape[1], dtype=np.uint64)
    known = ((trits != 0).astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    pos = ((trits > 0).astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    return known, pos


def unpack_trits(known, pos, m: int) -> np.ndarray:
    """Array of −1/0/+1 beliefs (members × m) from (known, pos) masks."""
    known = np.atleast_1d(np.asarray(known, dtype=np.uint64))
    pos = np.atleast_1d(np.asarray(pos, dtype=np.uint64))
    bits = np.arange(m, dtype=np.uint64)
    k = (known[:, None] >> bits) & np.uint64(1)
    p = (pos[:, None] >> bits) & np.uint64(1)
    return np.where(k == 1, np.where(p == 1, 1, -1), 0).astype(np.int64)


# --------------------------------------------------------------------------------------------
# knowledge drives decisions
# --------------------------------------------------------------------------------------------
@njit(cache=True)
def quality(knowledge_score):
    """Decision quality q = clip(K, 0, 1) from March's knowledge score K in [−1, 1]."""
    return min(max(knowledge_score, 0.0), 1.0)


@njit(cache=True)
def effective_beta(beta, q, sensitivity):
    """Supply-line weight of a team with decision quality q: β·(1 − λ_β·(1 − q)).

    Ignorant teams under-weight the supply line, the bias Sterman (1989) measured.
    """
    return beta * (1.0 - sensitivity * (1.0 - q))


@njit(cache=True)
def cost_factor(q, sensitivity, gain):
    """Multiplier on process costs: (1 + κ·(1 − q))·(1 − g) for quality q and BPO gain g."""
    return (1.0 + sensitivity * (1.0 - q)) * (1.0 - gain)
