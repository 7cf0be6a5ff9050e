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
The member loops index with unsigned integers where the index is computed: Numba wraps
negative signed indices, and that check keeps LLVM from vectorising the loop.

All randomness is counter-based (:mod:`orgsim._rng`), so both engines draw the same numbers.
Both engines run a learning step with :func:`step` and read knowledge's effects on decisions
from :func:`supply_line_weight`, :func:`forecast_sd` and :func:`team_cost_factor` (which take the
firm's parameter vector ``p``, columns :class:`orgsim.schema.Param`).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from . import _numba_cache  # noqa: F401  (first: where Numba caches the kernels)
from ._rng import bits_at, stream_base, uniform_at
from .schema import Param

__all__ = [
    "act",
    "agreement",
    "code_knowledge",
    "code_learn",
    "cost_factor",
    "effective_beta",
    "forecast_sd",
    "init_beliefs",
    "init_reality",
    "knowledge",
    "learning_due",
    "lowest_bit",
    "mean_knowledge",
    "pack_trits",
    "plane_count",
    "popcount",
    "quality",
    "socialisation_rate",
    "socialise",
    "step",
    "supply_line_weight",
    "tally",
    "team_cost_factor",
    "team_knowledge",
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

#: length of the bit-sliced counter used by :func:`tally` (counts up to 2**64 − 1)
PLANES = 64

_ONE = np.uint64(1)
_ZERO = np.uint64(0)


def _as_i64(builder, x, value):
    """An LLVM integer argument of Numba type ``x`` widened to 64 bits."""
    return builder.zext(value, ir.IntType(64)) if x.bitwidth < 64 else value


@intrinsic
def _ctpop(typingctx, x):
    """LLVM's population count of a 64-bit integer (one POPCNT instruction where available)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(_as_i64(builder, x, args[0]))

    return types.uint64(x), codegen


@intrinsic
def _cttz(typingctx, x):
    """Index of the lowest set bit of a non-zero 64-bit integer (LLVM's cttz)."""
    if not isinstance(x, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(_as_i64(builder, x, args[0]), ir.Constant(ir.IntType(1), 0))

    return types.uint64(x), codegen


@njit(cache=True, inline="always")
def popcount(x):
    """Number of set bits of a uint64."""
    return np.int64(_ctpop(np.uint64(x)))


@njit(cache=True, inline="always")
def lowest_bit(x):
    """Index of the lowest set bit of a non-zero uint64."""
    return np.int64(_cttz(np.uint64(x)))


@njit(cache=True, inline="always")
def full_mask(m):
    """The mask of the ``m`` dimensions in use."""
    if m >= 64:
        return ~_ZERO
    return (_ONE << np.uint64(m)) - _ONE


@njit(cache=True, inline="always")
def _bit(d):
    return _ONE << np.uint64(d)


@njit(cache=True)
def _naive(base, offset, m):
    """A naive belief vector: (known, pos) from m uniform draws starting at ``offset``; belief
    d is −1 for U < 1/3, 0 for U < 2/3 and +1 otherwise (equal chances; no branches)."""
    known = _ZERO
    pos = _ZERO
    for d in range(m):
        u = uniform_at(base, offset + d)
        plus = np.uint64(u >= 2.0 / 3.0)
        known |= (np.uint64(u < 1.0 / 3.0) | plus) << np.uint64(d)
        pos |= plus << np.uint64(d)
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


@njit(cache=True, _nrt=False)
def init_beliefs(known, pos, m, key):
    """Naive beliefs of every member of the firm (drawn at period 0)."""
    base = stream_base(key, NAIVE, 0, 0)
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


@njit(cache=True, _nrt=False)
def mean_knowledge(known, pos, rpos, m):
    """Mean knowledge of a group of members."""
    total = 0
    for i in range(known.shape[0]):
        total += agreement(known[i], pos[i], rpos, m)
    return total / m / known.shape[0]


@njit(cache=True, _nrt=False)
def team_knowledge(known, pos, rpos, m, out):
    """Mean knowledge of each team into ``out`` (the member arrays hold the firm's members
    team by team, ``len(known) // len(out)`` per team; ``len(known)`` must be a multiple of
    ``len(out)``)."""
    members = known.shape[0] // out.shape[0]
    size = np.uint64(members)
    for i in range(out.shape[0]):
        total = 0
        first = np.uint64(i) * size
        for j in range(size):
            total += agreement(known[first + j], pos[first + j], rpos, m)
        out[i] = total / m / members


@njit(cache=True, inline="always")
def _next_success(base, k, i, n, p):
    """Index of the next success after trial ``i`` among ``n`` Bernoulli(p) trials (``n`` when
    there is none), from draw ``k`` of a stream: with V = 1 − U in (0, 1], the number of
    failures before it, ⌊log V / log(1 − p)⌋, is geometric. When ``V ≤ (1 − p)^r`` for the
    r trials left there is no success and the logarithms are skipped (the common case for
    small p)."""
    rest = n - 1 - i
    v = 1.0 - uniform_at(base, k)
    if v <= (1.0 - p) ** rest:
        return n
    if p >= 1.0:
        return i + 1
    return i + 1 + int(min(math.log(v) / math.log1p(-p), rest))


@njit(cache=True, _nrt=False)
def turnover(known, pos, m, p3, key, t):
    """Replace each member with probability p3 by a naive one.

    The leavers are found by skipping: the gaps between them are geometric, so a step costs
    one draw per leaver (plus one), not one per member.
    """
    if p3 <= 0.0:
        return
    n = known.shape[0]
    base = stream_base(key, TURNOVER, 0, t)
    i = _next_success(base, 0, -1, n, p3)
    naive = stream_base(key, NAIVE, 0, t) if i < n else _ZERO
    k = 1
    while i < n:
        known[i], pos[i] = _naive(naive, i * m, m)
        i = _next_success(base, k, i, n, p3)
        k += 1


@njit(cache=True)
def turbulence(rpos, m, p4, key, t):
    """Flip each dimension of reality with probability p4 (geometric skipping, as
    :func:`turnover`); returns the new rpos."""
    rpos = np.uint64(rpos)
    if p4 <= 0.0:
        return rpos
    base = stream_base(key, TURBULENCE, 0, t)
    d = _next_success(base, 0, -1, m, p4)
    k = 1
    while d < m:
        rpos ^= _bit(d)
        d = _next_success(base, k, d, m, p4)
        k += 1
    return rpos


@njit(cache=True, _nrt=False)
def act(known, pos, rpos, m, key, t, actions, performance):
    """Members act on their beliefs (a fair coin where a belief is 0).

    Fills ``actions`` (the mask of +1 actions) and ``performance`` (Σ action·reality).
    """
    base = stream_base(key, ACT, 0, t)
    rpos = np.uint64(rpos)
    full = full_mask(m)
    for i in range(known.shape[0]):
        k = known[i]
        a = pos[i] & k
        if k & full != full:  # coins only where the member has no belief
            a |= bits_at(base, i) & ~k
        a &= full
        actions[i] = a
        performance[i] = m - 2 * popcount((a ^ rpos) & full)


@njit(cache=True, _nrt=False)
def socialise(known, pos, code_known, code_pos, m, p1, key, t):
    """Gradual socialisation: with probability p1 a belief steps toward a non-zero code."""
    if p1 <= 0.0:
        return
    code_known = np.uint64(code_known)
    code_pos = np.uint64(code_pos)
    base = stream_base(key, SOCIALISE, 0, t)
    full = full_mask(m)
    # U < p1 for U = j·2^-53 (j the draw's top 53 bits) is j < ceil(p1·2^53): an integer test
    below = np.uint64(math.ceil(min(p1, 1.0) * 9007199254740992.0))
    dims = np.uint64(m)
    n = known.shape[0]
    for lo in range(0, n, 64):  # blocks of 64 members
        # the members with a differing belief, listed branch-free as the bits of one word
        # (unsigned indices: no negative-index wraparound, so the loop vectorises)
        listed = _ZERO
        first = np.uint64(lo)
        for j in range(np.uint64(min(n - lo, 64))):
            i = first + j
            differ = code_known & (~known[i] | (pos[i] ^ code_pos)) & full
            listed |= np.uint64(differ != _ZERO) << j
        while listed != _ZERO:
            i = first + _cttz(listed)
            listed &= listed - _ONE
            k = known[i]
            differ = code_known & (~k | (pos[i] ^ code_pos)) & full
            move = _ZERO  # the differing beliefs that take a step this period
            while differ != _ZERO:
                d = _cttz(differ)
                differ &= differ - _ONE
                move |= np.uint64((bits_at(base, i * dims + d) >> np.uint64(11)) < below) << d
            # an opposite belief (known) becomes 0; a 0 belief takes the code's sign
            known[i] = k ^ move
            pos[i] = (pos[i] & ~move) | (code_pos & move & ~k)


@njit(cache=True, _nrt=False)
def tally(actions, performance, code_score, heard, planes):
    """Count the +1 actions of the superior members on every dimension at once; returns how
    many members are superior.

    The superior members are those who outperform the code (``performance > code_score``)
    in the teams the code hears (``heard[i]`` for team i; the member arrays hold the members
    team by team, ``len(actions) // len(heard)`` per team).

    The counts are bit-sliced: on return, the count of dimension d is Σ_b (bit d of
    ``planes[b]``)·2^b (:func:`plane_count`), so one member costs a few word operations
    instead of one per dimension. The −1 actions on d are the superior members less the count.
    """
    planes[:] = 0
    members = actions.shape[0] // heard.shape[0]
    size = np.uint64(members)
    count = 0
    for team in range(heard.shape[0]):
        if not heard[team]:
            continue
        first = np.uint64(team) * size
        for j in range(size):
            i = first + j
            if performance[i] > code_score:
                count += 1
                carry = actions[i]
                b = 0
                while carry != _ZERO:
                    c = planes[b] & carry
                    planes[b] ^= carry
                    carry = c
                    b += 1
    return count


@njit(cache=True, _nrt=False)
def plane_count(planes, d, used=-1):
    """Dimension ``d``'s count in bit-sliced ``planes`` (see :func:`tally`), reading the first
    ``used`` planes (all by default; a count below 2^used has nothing above them)."""
    if used < 0:
        used = planes.shape[0]
    total = 0
    for b in range(used):
        total += np.int64((planes[b] >> np.uint64(d)) & _ONE) << b
    return total


@njit(cache=True, _nrt=False)
def _greater(planes, c, used):
    """Mask of the dimensions whose bit-sliced count, held in the first ``used`` planes,
    exceeds the constant 0 ≤ ``c`` < 2^used."""
    gt = _ZERO
    eq = ~_ZERO
    for b in range(used - 1, -1, -1):
        x = planes[b]
        if (c >> b) & 1:
            eq &= x
        else:
            gt |= eq & x
            eq &= ~x
    return gt


@njit(cache=True)
def code_learn(code_known, code_pos, planes, count, m, p2, key, t):
    """The code adopts a differing strict majority of the ``count`` superior members (their
    +1 actions counted in ``planes`` by :func:`tally`) with probability 1 − (1 − p2)^k,
    k = majority − minority. Returns the new ``(code_known, code_pos)``.
    """
    code_known = np.uint64(code_known)
    code_pos = np.uint64(code_pos)
    if count == 0:
        return code_known, code_pos
    full = full_mask(m)
    used = 0  # planes that can hold a count up to ``count``
    while count >> used:
        used += 1
    plus_major = _greater(planes, count // 2, used) & full  # 2·plus > count
    minus_major = ~_greater(planes, (count - 1) // 2, used) & full  # 2·plus < count
    differ = (plus_major & ~(code_known & code_pos)) | (minus_major & ~(code_known & ~code_pos))
    if differ == _ZERO:
        return code_known, code_pos
    base = stream_base(key, CODE, 0, t)
    while differ != _ZERO:
        d = lowest_bit(differ)
        b = _bit(d)
        differ ^= b
        k = 2 * plane_count(planes, d, used) - count
        if k < 0:
            k = -k
        if uniform_at(base, d) >= (1.0 - p2) ** k:
            code_known |= b
            if plus_major & b:
                code_pos |= b
            else:
                code_pos &= ~b
    return code_known, code_pos


@njit(cache=True, _nrt=False)
def step(p, s, p1, m, key, known, pos, actions, performance, rpos, code_known, code_pos, heard, planes):
    """One learning step ``s`` of March's dynamics for a firm, in Christensen's order (module
    docstring): turnover (p3), turbulence (p4), action, socialisation at rate ``p1``, and code
    learning (p2) from the members who outperform the code in the teams marked in ``heard``.
    The member arrays hold the firm's members team by team. Returns the new ``(rpos,
    code_known, code_pos)``."""
    turnover(known, pos, m, p[Param.p3], key, s)
    rpos = turbulence(rpos, m, p[Param.p4], key, s)
    act(known, pos, rpos, m, key, s, actions, performance)
    socialise(known, pos, code_known, code_pos, m, p1, key, s)
    code_score = agreement(code_known, code_pos, rpos, m)
    count = tally(actions, performance, code_score, heard, planes)
    code_known, code_pos = code_learn(code_known, code_pos, planes, count, m, p[Param.p2], key, s)
    return rpos, code_known, code_pos


@njit(cache=True, _nrt=False)
def learning_due(p, t):
    """Whether period ``t`` has a learning step (culture layer on, every ``culture.every``
    periods)."""
    return p[Param.culture_enabled] != 0.0 and t % int(p[Param.culture_every]) == 0


@njit(cache=True, _nrt=False)
def socialisation_rate(p, alignment):
    """p1 of a period's learning step: min(1, p1 + b_soc·a), raised by the culture
    programme's progress ``alignment``."""
    return min(1.0, p[Param.p1] + p[Param.socialisation_boost] * alignment)


@njit(cache=True, _nrt=False)
def code_knowledge(p, code_known, code_pos, rpos, m):
    """The KPI ``code_knowledge``: March's knowledge of the code (1.0 without the culture
    layer)."""
    return knowledge(code_known, code_pos, rpos, m) if p[Param.culture_enabled] != 0.0 else 1.0


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
@njit(cache=True, _nrt=False)
def quality(knowledge_score):
    """Decision quality q = clip(K, 0, 1) from March's knowledge score K in [−1, 1]."""
    return min(max(knowledge_score, 0.0), 1.0)


@njit(cache=True, _nrt=False)
def effective_beta(beta, q, sensitivity):
    """Supply-line weight of a team with decision quality q: β·(1 − λ_β·(1 − q)).

    Ignorant teams under-weight the supply line, the bias Sterman (1989) measured.
    """
    return beta * (1.0 - sensitivity * (1.0 - q))


@njit(cache=True, _nrt=False)
def cost_factor(q, sensitivity, gain):
    """Multiplier on process costs: (1 + κ·(1 − q))·(1 − g) for quality q and BPO gain g."""
    return (1.0 + sensitivity * (1.0 - q)) * (1.0 - gain)


@njit(cache=True, _nrt=False)
def _sensitivity(p, column):
    """A knowledge sensitivity, treated as 0 without the culture layer."""
    return p[column] if p[Param.culture_enabled] != 0.0 else 0.0


@njit(cache=True, _nrt=False)
def supply_line_weight(p, q):
    """β_eff of a team with decision quality ``q``: :func:`effective_beta` with λ_β
    (``culture.beta_sensitivity``)."""
    return effective_beta(p[Param.beta], q, _sensitivity(p, Param.beta_sensitivity))


@njit(cache=True, _nrt=False)
def forecast_sd(p, q):
    """Relative sd σ_F·(1 − q) of a team's forecast noise (0 without the culture layer)."""
    return p[Param.forecast_noise] * (1.0 - q) if p[Param.culture_enabled] != 0.0 else 0.0


@njit(cache=True, _nrt=False)
def team_cost_factor(p, knowledge_score, gain):
    """φ of a team with knowledge ``knowledge_score`` and BPO gain ``gain``: :func:`cost_factor`
    with κ_c (``culture.cost_sensitivity``)."""
    return cost_factor(quality(knowledge_score), _sensitivity(p, Param.cost_sensitivity), gain)
