"""Management layer: accountability, adaptation and the management programmes.

**Accountability.** Each team is judged on a local metric that fits its function and on its
contribution to the firm objective, both normalised so that 1 means "on target" (the metric's
steady-state value) and clipped to [0, 2]::

    score = (1 − w_t) · local + w_t · firm,    w_t = w + (w_align − w) · a_t

where w is the rule's weight and a_t the culture programme's progress.

The local metrics (higher or lower is better) are ``fill_rate`` (shipped / requested),
``utilisation`` (shipped / capacity), ``unit_cost`` (cost / unit shipped) and
``holding_backlog_cost``; the firm part is the team's cost to the firm, its operating cost plus
the unit margin on the backlog it owes (late or lost revenue), against its steady-state cost.

**Adaptation.** Every ``adapt_every`` periods each team compares its mean score over the last
``score_window`` periods with the previous comparison and keeps moving its stock bias ``b``
(a multiplier on its desired stock S') in the same direction unless the score fell, in which
case it reverses (win-stay, lose-shift hill climbing): b ← clip(b·exp(±step), b_min, b_max).
A metric that saturates (a fill rate of 1 whatever the stock) gives no signal, so the bias
keeps drifting in its first direction until a worse score turns it.

**Programmes.** BPO: every ``bpo_every`` periods an improvement project (cost ``bpo_cost``) cuts
the process cost of one team — the one with the worst local score, or the firm's constraint
(worst firm score) — by g ← g + size·(1 − g); gains erode each period by
g ← g·(1 − erosion·(1 − maturity)). BPM: maturity grows m ← m + rate·(1 − m) at ``bpm_cost``
per team and period, uniformly or focused on the constraint; maturity damps execution noise
σ_E·(1 − m) and erosion. Culture programme (BSO): alignment progress a ← a + rate·(1 − a) at
``alignment_cost`` per period moves w toward ``alignment_weight`` and raises socialisation p1 by
``socialisation_boost``·a.

The numbered functions are Numba kernels shared by both engines; :class:`AccountabilityRule`
is the object a Mesa team holds, which researchers can subclass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from numba import njit

from . import _numba_cache  # noqa: F401  (first: where Numba caches the kernels)

__all__ = [
    "LOCAL_METRIC",
    "METRICS",
    "AccountabilityRule",
    "adapt_bias",
    "erode",
    "firm_value",
    "improve",
    "local_value",
    "mature",
    "normalised",
    "select_top",
]

#: metric names, their kernel codes and direction (True: higher is better)
METRICS = {
    "fill_rate": (0, True),
    "utilisation": (1, True),
    "unit_cost": (2, False),
    "holding_backlog_cost": (3, False),
}

#: the local metric that fits each function by default
LOCAL_METRIC = {
    "sales": "fill_rate",
    "retailer": "fill_rate",
    "distribution": "holding_backlog_cost",
    "wholesaler": "holding_backlog_cost",
    "distributor": "holding_backlog_cost",
    "production": "utilisation",
    "factory": "utilisation",
    "manufacturer": "utilisation",
    "sourcing": "unit_cost",
}


@njit(cache=True)
def local_value(metric, shipped, requested, scale, cost, holding_backlog_cost):
    """Value of local metric ``metric`` (a code of :data:`METRICS`) in one period.

    ``scale`` is the team's capacity (or steady-state throughput when uncapacitated).
    """
    if metric == 0:
        return shipped / requested if requested > 0.0 else 1.0
    if metric == 1:
        return shipped / scale if scale > 0.0 else 0.0
    if metric == 2:
        return cost / shipped if shipped > 0.0 else cost
    return holding_backlog_cost


@njit(cache=True)
def firm_value(cost, backlog, unit_margin):
    """The team's cost to the firm: its operating cost plus the margin on the backlog it owes."""
    return cost + max(unit_margin, 0.0) * backlog


@njit(cache=True)
def normalised(value, target, higher_is_better):
    """Performance against target, 1 on target, clipped to [0, 2]."""
    if higher_is_better:
        num, den = value, target
    else:
        num, den = target, value
    if den <= 1e-12:
        r = 2.0 if num > 1e-12 else 1.0
    else:
        r = num / den
    return min(max(r, 0.0), 2.0)


@njit(cache=True)
def adapt_bias(bias, direction, score_now, score_prev, step, lo, hi):
    """Win-stay, lose-shift: returns the new ``(bias, direction)``."""
    if score_now < score_prev:
        direction = -direction
    bias = bias * math.exp(step * direction)
    return min(max(bias, lo), hi), direction


@njit(cache=True)
def erode(gain, erosion, maturity):
    """Improvement gains decay unless processes are mature."""
    return gain * (1.0 - erosion * (1.0 - maturity))


@njit(cache=True)
def improve(gain, size):
    """An improvement project closes a share ``size`` of the remaining gap."""
    return gain + size * (1.0 - gain)


@njit(cache=True)
def mature(maturity, rate):
    """Process maturity grows toward 1."""
    return maturity + rate * (1.0 - maturity)


@njit(cache=True, _nrt=False)
def select_top(scores, share, out):
    """Mark in ``out`` the ceil(share·n) highest ``scores`` (ties: lower index first)."""
    n = scores.shape[0]
    k = int(math.ceil(share * n - 1e-9))  # noqa: RUF046 - an int for Numba
    if k < 1:
        k = 1
    for i in range(n):
        out[i] = False
    for _ in range(k):
        best = -1
        for i in range(n):
            if not out[i] and (best < 0 or scores[i] > scores[best]):
                best = i
        out[best] = True


@njit(cache=True, _nrt=False)
def argmin_first(values):
    """Index of the smallest value (the first one on ties)."""
    best = 0
    for i in range(1, values.shape[0]):
        if values[i] < values[best]:
            best = i
    return best


@dataclass
class AccountabilityRule:
    """How a team is held to account.

    Parameters
    ----------
    metric : str
        Local metric, one of :data:`METRICS`.
    weight : float
        ``w`` in [0, 1], the weight of the firm objective in the team's score.

    Subclass and override :meth:`score` (or :meth:`local_score`) to study another rule; pass
    instances to :class:`orgsim.engine_mesa.Firm` through ``rules``.
    """

    metric: str
    weight: float = 0.0

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValueError(f"metric == {self.metric!r}, must be one of {', '.join(map(repr, METRICS))}")
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"accountability weight == {self.weight!r}, must be in [0, 1]")

    @property
    def code(self) -> int:
        return METRICS[self.metric][0]

    @property
    def higher_is_better(self) -> bool:
        return METRICS[self.metric][1]

    def local_score(self, value: float, target: float) -> float:
        """Normalised local performance (1 on target)."""
        return normalised(value, target, self.higher_is_better)

    def score(self, local: float, firm: float, weight: float | None = None) -> float:
        """(1 − w)·local + w·firm from the two normalised scores."""
        w = self.weight if weight is None else weight
        return (1.0 - w) * local + w * firm

    @classmethod
    def for_role(cls, role: str, weight: float = 0.0) -> AccountabilityRule:
        return cls(metric=LOCAL_METRIC.get(role, "holding_backlog_cost"), weight=weight)
