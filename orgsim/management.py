"""Management layer: accountability, adaptation and the management programmes.

**Accountability.** Each team is judged on a local metric that fits its function and on its
contribution to the firm objective, both normalised so that 1 means "on target" (the metric's
steady-state value) and clipped to [0, 2]::

    score = (1 − w_t) · local + w_t · firm,    w_t = w + (w_align − w) · a_t

where w is the rule's weight and a_t the culture programme's progress.

The built-in local metrics are one table, :data:`METRICS` (name → kernel code and whether
higher is better); :func:`local_value` computes a metric's value and :func:`metric_target`
its steady-state target from the code, and :data:`HIGHER_IS_BETTER` gives the direction to
the kernels. Both engines read them. The metrics are ``fill_rate`` (shipped / requested),
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

The functions are Numba kernels that both engines call: the phase kernels
(:func:`culture_programme`, :func:`measure_metric`, :func:`firm_score`, :func:`window_slot` and
:func:`window_push`, :func:`develop_maturity`, :func:`improve_processes`, :func:`adapt_due` and
:func:`adapt`, :func:`execution_sd`) take
the firm's parameter vector ``p`` (columns :class:`orgsim.schema.Param`) and a team's parameter
row ``tp`` (:class:`orgsim.schema.TeamParam`). :class:`AccountabilityRule` is the object a Mesa
team holds; researchers subclass it to define another metric, target, score or weight schedule
(``docs/custom_rules.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from . import _numba_cache  # noqa: F401  (first: where Numba caches the kernels)
from ._rng import MANAGEMENT, uniform
from .schema import Param, TeamParam

__all__ = [
    "HIGHER_IS_BETTER",
    "LOCAL_METRIC",
    "METRICS",
    "AccountabilityRule",
    "accountability_weight",
    "adapt",
    "adapt_bias",
    "adapt_due",
    "argmin_first",
    "culture_programme",
    "develop_maturity",
    "erode",
    "execution_sd",
    "firm_score",
    "firm_value",
    "improve",
    "improve_processes",
    "initial_direction",
    "local_value",
    "mature",
    "measure_metric",
    "metric_target",
    "normalised",
    "select_top",
    "weighted_score",
    "window_push",
    "window_slot",
]

#: the built-in local metrics: name -> (kernel code, True if higher is better). The code is what
#: :func:`local_value` and :func:`metric_target` dispatch on and what the batch engine stores
METRICS = {
    "fill_rate": (0, True),
    "utilisation": (1, True),
    "unit_cost": (2, False),
    "holding_backlog_cost": (3, False),
}
#: the direction of each metric code, for the kernels (``HIGHER_IS_BETTER[code]``)
HIGHER_IS_BETTER = np.array([higher for _, higher in sorted(METRICS.values())], dtype=np.bool_)

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


@njit(cache=True, _nrt=False)
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
def metric_target(metric, throughput, scale, steady_cost, steady_holding):
    """The value of local metric ``metric`` (a code of :data:`METRICS`) at the steady state:
    1 (fill rate), x̄/scale (utilisation), c^ss/x̄ (unit cost), h·I₀ (holding and backlog)."""
    if metric == 0:
        return 1.0
    if metric == 1:
        return throughput / scale if scale > 0 else 0.0
    if metric == 2:
        return steady_cost / throughput if throughput > 0 else steady_cost
    return steady_holding


@njit(cache=True, _nrt=False)
def measure_metric(metric, tp, shipped, requested, cost, inventory, backlog):
    """Phase 6: this period's value of a team's built-in local metric ``metric`` from its
    flows, cost and stocks (``tp``: the team's parameter row)."""
    holding_backlog = tp[TeamParam.holding] * max(inventory, 0.0) + tp[TeamParam.backlog_cost] * backlog
    return local_value(metric, shipped, requested, tp[TeamParam.metric_scale], cost, holding_backlog)


@njit(cache=True, _nrt=False)
def firm_value(cost, backlog, unit_margin):
    """The team's cost to the firm: its operating cost plus the margin on the backlog it owes."""
    return cost + max(unit_margin, 0.0) * backlog


@njit(cache=True, _nrt=False)
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


@njit(cache=True, _nrt=False)
def firm_score(p, tp, cost, backlog):
    """Phase 6: a team's normalised firm score F, its cost to the firm against its
    steady-state cost (lower is better)."""
    return normalised(firm_value(cost, backlog, p[Param.unit_margin]), tp[TeamParam.steady_cost], False)


@njit(cache=True, _nrt=False)
def window_slot(t, w):
    """Where period ``t``'s score goes in a ring of the last ``w`` scores, and how many periods
    its mean covers: ``((t − 1) mod w, min(t, w))`` (the same for every team of a firm)."""
    return (t - 1) % w, min(t, w)


@njit(cache=True, _nrt=False)
def window_push(ring, slot, count, value, total):
    """Enter a period's score ``value`` into slot ``slot`` of the ring of the last scores whose
    sum is ``total`` (:func:`window_slot`); returns ``(total, mean)``, the mean over the last
    ``count`` periods."""
    total += value - ring[slot]
    ring[slot] = value
    return total, total / count


@njit(cache=True, _nrt=False)
def accountability_weight(weight, aligned_weight, alignment):
    """w_t = w + (w_align − w)·a_t: the weight of the firm part as the culture programme
    progresses."""
    return weight + (aligned_weight - weight) * alignment


@njit(cache=True, _nrt=False)
def weighted_score(local, firm, weight):
    """Σ = (1 − w)·L̄ + w·F̄."""
    return (1.0 - weight) * local + weight * firm


@njit(cache=True, _nrt=False)
def culture_programme(p, alignment):
    """Phase 6 step 1, the culture programme (BSO): returns the new progress
    a ← a + rate·(1 − a) and its cost this period (0 without the programme)."""
    rate = p[Param.alignment_rate]
    if rate > 0.0:
        return alignment + rate * (1.0 - alignment), p[Param.alignment_cost]
    return alignment, 0.0


@njit(cache=True, _nrt=False)
def adapt_bias(bias, direction, score_now, score_prev, step, lo, hi):
    """Win-stay, lose-shift: returns the new ``(bias, direction)``."""
    if score_now < score_prev:
        direction = -direction
    bias = bias * math.exp(step * direction)
    return min(max(bias, lo), hi), direction


@njit(cache=True, _nrt=False)
def initial_direction(key, team):
    """The random first direction (+1 or −1, even odds) of a team's stock-bias adaptation."""
    return 1.0 if uniform(key, MANAGEMENT, team, 0, 0) < 0.5 else -1.0


@njit(cache=True, _nrt=False)
def adapt_due(p, t):
    """Phase 6 step 6: whether period ``t`` is on the ``adapt_every`` cadence (0: never)."""
    every = int(p[Param.adapt_every])
    return every > 0 and t % every == 0


@njit(cache=True, _nrt=False)
def adapt(p, bias, direction, score, score_prev):
    """Phase 6 step 6, in a period :func:`adapt_due`: win-stay, lose-shift on the stock bias;
    returns ``(bias, direction, score_prev)``, the period's score becoming the one the next
    adaptation compares with."""
    bias, direction = adapt_bias(
        bias, direction, score, score_prev, p[Param.adapt_step], p[Param.bias_min], p[Param.bias_max]
    )
    return bias, direction, score


@njit(cache=True, _nrt=False)
def erode(gain, erosion, maturity):
    """Improvement gains decay unless processes are mature."""
    return gain * (1.0 - erosion * (1.0 - maturity))


@njit(cache=True, _nrt=False)
def improve(gain, size):
    """An improvement project closes a share ``size`` of the remaining gap."""
    return gain + size * (1.0 - gain)


@njit(cache=True, _nrt=False)
def mature(maturity, rate):
    """Process maturity grows toward 1."""
    return maturity + rate * (1.0 - maturity)


@njit(cache=True, _nrt=False)
def develop_maturity(p, maturity, mean_firm):
    """Phase 6 step 4, BPM: raise the teams' ``maturity`` in place — every team at
    ``bpm_rate``, or (``bpm_focus = constraint``) the team with the worst mean firm score at
    min(1, N·rate) — and return the programme's cost this period (0 without BPM)."""
    rate = p[Param.bpm_rate]
    if rate <= 0.0:
        return 0.0
    n = maturity.shape[0]
    if p[Param.bpm_constraint] == 0.0:
        for i in range(n):
            maturity[i] = mature(maturity[i], rate)
    else:
        worst = argmin_first(mean_firm)
        maturity[worst] = mature(maturity[worst], min(1.0, rate * n))
    return p[Param.bpm_cost] * n


@njit(cache=True, _nrt=False)
def improve_processes(p, t, gain, mean_local, mean_firm):
    """Phase 6 step 5, BPO: on the ``bpo_every`` cadence one project raises the ``gain`` of the
    team with the worst mean local score (or, ``bpo_target = constraint``, the worst mean firm
    score; the first on ties), in place; returns the project's cost (0 in other periods)."""
    every = int(p[Param.bpo_every])
    if every <= 0 or t % every != 0:
        return 0.0
    target = argmin_first(mean_local) if p[Param.bpo_constraint] == 0.0 else argmin_first(mean_firm)
    gain[target] = improve(gain[target], p[Param.bpo_size])
    return p[Param.bpo_cost]


@njit(cache=True, _nrt=False)
def execution_sd(p, maturity):
    """Relative sd σ_E·(1 − m) of the execution noise on a team's order: process variability
    that BPM maturity damps."""
    return p[Param.execution_noise] * (1.0 - maturity)


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
    """How a team is held to account: its local metric, the metric's target, the score and the
    weight of the firm objective over time.

    Parameters
    ----------
    metric : str
        Local metric: one of :data:`METRICS`, or the name of a subclass's own metric (a
        subclass that defines :meth:`measure`).
    weight : float
        ``w`` in [0, 1], the weight of the firm objective in the team's score.

    Subclass to study another rule on the Mesa engine and override any of :meth:`measure`
    (the local metric's value this period, with :attr:`higher_is_better` and :meth:`target`),
    :meth:`local_score`, :meth:`score` or :meth:`weight_at` (the weight schedule); run it with
    ``orgsim.simulate(cfg, engine="mesa", rules=MyRule)`` (every team) or
    ``rules={"sales_0": MyRule("fill_rate")}`` (some teams), or ``orgsim +rules=module.MyRule``
    on the command line. See ``docs/custom_rules.md``.

    Examples
    --------
    >>> rule = AccountabilityRule("fill_rate", weight=0.25)
    >>> rule.score(0.5, 1.5)  # 0.75 · 0.5 + 0.25 · 1.5
    0.75
    >>> rule.weight_at(t=10, alignment=0.5, aligned_weight=0.75)  # halfway from 0.25 to 0.75
    0.5
    """

    metric: str
    weight: float = 0.0

    def __post_init__(self):
        if self.metric not in METRICS and not self.defines_metric():
            raise ValueError(
                f"metric == {self.metric!r}, must be one of {', '.join(map(repr, METRICS))} (or the name "
                "of a metric the rule's subclass measures: override measure, higher_is_better and target)"
            )
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"accountability weight == {self.weight!r}, must be in [0, 1]")

    @classmethod
    def defines_metric(cls) -> bool:
        """Whether the class measures its own metric (overrides :meth:`measure`)."""
        return cls.measure is not AccountabilityRule.measure

    @property
    def code(self) -> int | None:
        """The built-in metric's kernel code (``None`` for a subclass's own metric)."""
        entry = METRICS.get(self.metric)
        return None if entry is None or self.defines_metric() else entry[0]

    @property
    def higher_is_better(self) -> bool:
        """The metric's direction (from :data:`METRICS`; a rule with its own metric sets it)."""
        if self.metric not in METRICS:
            raise NotImplementedError(
                f"{type(self).__name__} measures {self.metric!r}: define higher_is_better"
            )
        return METRICS[self.metric][1]

    def measure(self, team) -> float:
        """The local metric's value for ``team`` this period (phase 6, after its costs are
        recorded): the built-in metric from the team's flows, cost and stocks."""
        return measure_metric(
            self.code, team.params, team.shipped, team.requested, team.cost, team.inventory, team.backlog
        )

    def target(self, team) -> float:
        """The metric's value when ``team`` is on target: the built-in metric's value at the
        team's steady state (:func:`metric_target`). Called once, when the team is made."""
        if self.code is None:
            raise NotImplementedError(f"{type(self).__name__} measures {self.metric!r}: define target")
        tp = team.params
        return metric_target(
            self.code,
            tp[TeamParam.throughput],
            tp[TeamParam.metric_scale],
            tp[TeamParam.steady_cost],
            tp[TeamParam.holding] * tp[TeamParam.initial_inventory],
        )

    def local_score(self, value: float, target: float) -> float:
        """Normalised local performance (1 on target)."""
        return normalised(value, target, self.higher_is_better)

    def score(self, local: float, firm: float, weight: float | None = None) -> float:
        """(1 − w)·local + w·firm from the two normalised scores."""
        return weighted_score(local, firm, self.weight if weight is None else weight)

    def weight_at(self, t: int, alignment: float, aligned_weight: float) -> float:
        """The weight of the firm part in period ``t``: the rule's own ``w``, moved toward
        ``management.alignment_weight`` by the culture programme's progress ``alignment``."""
        return accountability_weight(self.weight, aligned_weight, alignment)

    @classmethod
    def for_role(cls, role: str, weight: float = 0.0) -> AccountabilityRule:
        """The rule for a team of function ``role`` with weight ``w``: the role's default metric
        (:data:`LOCAL_METRIC`), or a subclass's own metric (the default of its ``metric``
        field) when the subclass measures one."""
        if cls.defines_metric():
            return cls(weight=weight)
        return cls(metric=LOCAL_METRIC.get(role, "holding_backlog_cost"), weight=weight)
