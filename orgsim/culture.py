"""Culture and learning layer: March's (1991) mutual learning between individuals and a code.

Reality is a vector of ``m`` dimensions, each +1 or −1. Every team has ``members`` individuals
whose beliefs are −1, 0 or +1 on each dimension; the firm holds a code of received truth,
initially all 0. Each period, in the order of Christensen's (2015) note on March's original
program, as recreated by Workiewicz (2019):

1. **turnover** (p3): each member leaves with probability p3 and is replaced by a naive one
   whose beliefs are −1, 0, +1 with equal probability;
2. **turbulence** (p4): each dimension of reality flips with probability p4;
3. **act**: each member acts on each dimension by its belief, or by a fair coin where the belief
   is 0; its performance is Σ action·reality;
4. **socialise** (p1): on each dimension where the code is non-zero, with probability p1 a
   member's belief moves one step toward the code (−1 → 0 → +1 or the reverse; gradual
   socialisation, Christensen 2015);
5. **code learning** (p2): on each dimension where the superior group's actions have a strict
   majority that differs from the code, the code adopts it with probability 1 − (1 − p2)^k,
   k = majority − minority count.

Who is superior is decided outside this module: by individual performance above the code's score
Σ code·reality (March's model) or, in firms, by the accountability scores of teams (see
:mod:`orgsim.management`). Knowledge of a belief vector is Σ belief·reality / m, in [−1, 1]
(March's measure: 1 is complete knowledge, 0 is what naive beliefs give on average).

All randomness is counter-based (:mod:`orgsim._rng`), so both engines draw the same numbers.
"""

from __future__ import annotations

from numba import njit

from ._rng import stream_base, uniform, uniform_at

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
    "quality",
    "socialise",
    "tally_actions",
    "turbulence",
    "turnover",
]

# streams of the culture layer (distinct from the other layers' streams in _rng)
NAIVE = 21
TURNOVER = 22
TURBULENCE = 23
ACT = 24
SOCIALISE = 25
CODE = 26


@njit(cache=True)
def _trit(u):
    """−1, 0 or +1 with equal probability from a uniform draw."""
    if u < 1.0 / 3.0:
        return -1
    if u < 2.0 / 3.0:
        return 0
    return 1


@njit(cache=True)
def init_reality(reality, key):
    """Reality: each dimension +1 or −1 with probability 1/2 (drawn at period 0)."""
    for d in range(reality.shape[0]):
        reality[d] = 1 if uniform(key, TURBULENCE, 0, 0, d) < 0.5 else -1


@njit(cache=True)
def init_beliefs(beliefs, key, team):
    """Naive beliefs of every member of ``team`` (drawn at period 0)."""
    members, m = beliefs.shape
    base = stream_base(key, NAIVE, team, 0)
    for i in range(members):
        for d in range(m):
            beliefs[i, d] = _trit(uniform_at(base, i * m + d))


@njit(cache=True)
def agreement(vector, reality):
    """Σ v·r: dimensions right minus dimensions wrong (an integer)."""
    total = 0
    for d in range(reality.shape[0]):
        total += vector[d] * reality[d]
    return total


@njit(cache=True)
def knowledge(vector, reality):
    """March's knowledge score Σ v·r / m of one belief vector (or of the code)."""
    return agreement(vector, reality) / reality.shape[0]


@njit(cache=True)
def mean_knowledge(beliefs, reality):
    """Mean knowledge of a team's members."""
    members = beliefs.shape[0]
    total = 0.0
    for i in range(members):
        total += knowledge(beliefs[i], reality)
    return total / members


@njit(cache=True)
def turnover(beliefs, p3, key, team, t):
    """Replace each member with probability p3 by a naive one."""
    if p3 <= 0.0:
        return
    members, m = beliefs.shape
    leave = stream_base(key, TURNOVER, team, t)
    naive = stream_base(key, NAIVE, team, t)
    for i in range(members):
        if uniform_at(leave, i) < p3:
            for d in range(m):
                beliefs[i, d] = _trit(uniform_at(naive, i * m + d))


@njit(cache=True)
def turbulence(reality, p4, key, t):
    """Flip each dimension of reality with probability p4."""
    if p4 <= 0.0:
        return
    base = stream_base(key, TURBULENCE, 0, t)
    for d in range(reality.shape[0]):
        if uniform_at(base, d) < p4:
            reality[d] = -reality[d]


@njit(cache=True)
def act(beliefs, reality, key, team, t, actions, performance):
    """Members act on their beliefs (a fair coin where a belief is 0); fill ``actions`` and
    ``performance`` (Σ action·reality per member)."""
    members, m = beliefs.shape
    base = stream_base(key, ACT, team, t)
    for i in range(members):
        score = 0
        for d in range(m):
            b = beliefs[i, d]
            if b == 0:
                b = 1 if uniform_at(base, i * m + d) < 0.5 else -1
            actions[i, d] = b
            score += b * reality[d]
        performance[i] = score


@njit(cache=True)
def socialise(beliefs, code, p1, key, team, t):
    """Gradual socialisation: with probability p1 a belief steps toward a non-zero code."""
    if p1 <= 0.0:
        return
    members, m = beliefs.shape
    base = stream_base(key, SOCIALISE, team, t)
    for i in range(members):
        for d in range(m):
            c = code[d]
            if c != 0 and beliefs[i, d] != c and uniform_at(base, i * m + d) < p1:
                beliefs[i, d] += c  # −1 → 0 → +1 (or the reverse): one step toward the code


@njit(cache=True)
def tally_actions(actions, superior, plus, minus):
    """Add the superior members' actions to per-dimension counts of +1 and −1."""
    members, m = actions.shape
    for i in range(members):
        if superior[i]:
            for d in range(m):
                if actions[i, d] > 0:
                    plus[d] += 1
                else:
                    minus[d] += 1


@njit(cache=True)
def code_learn(code, plus, minus, p2, key, t):
    """The code adopts a differing strict majority with probability 1 − (1 − p2)^k."""
    changed = 0
    base = stream_base(key, CODE, 0, t)
    for d in range(code.shape[0]):
        k = plus[d] - minus[d]
        majority = 1 if k > 0 else -1
        if k < 0:
            k = -k
        if k > 0 and code[d] != majority:
            if uniform_at(base, d) >= (1.0 - p2) ** k:
                code[d] = majority
                changed += 1
    return changed


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
