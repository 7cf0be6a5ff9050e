"""Management layer: accountability rules.

An accountability rule says which local metric a team is judged on, against which target, and
how much weight ``w`` the firm objective gets beside it::

    score = (1 − w) · local + w · firm

Both parts are normalised so that higher is better and 1 means "on target". Researchers can
subclass :class:`AccountabilityRule` (for example to judge a team on a different metric) and pass
it to the Mesa engine.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LOCAL_METRIC", "AccountabilityRule"]

#: the local metric that fits each function by default
LOCAL_METRIC = {
    "sales": "fill_rate",
    "retailer": "fill_rate",
    "distribution": "holding_backlog_cost",
    "wholesaler": "holding_backlog_cost",
    "distributor": "holding_backlog_cost",
    "production": "utilisation",
    "factory": "utilisation",
    "sourcing": "unit_cost",
}


@dataclass
class AccountabilityRule:
    """How a team is held to account.

    Parameters
    ----------
    metric : str
        Name of the local metric (a key of the team's metric history).
    target : float
        Target value of the metric; the normalised local score is 1 on target.
    weight : float
        ``w`` in [0, 1], the weight of the firm objective in the team's score.
    higher_is_better : bool
        Direction of the metric.
    """

    metric: str
    target: float
    weight: float = 0.0
    higher_is_better: bool = True

    def __post_init__(self):
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"accountability weight == {self.weight!r}, must be in [0, 1]")

    def local_score(self, value: float) -> float:
        """Normalised local performance: 1 on target, above 1 when better than target."""
        if self.higher_is_better:
            return value / self.target if self.target > 0 else value
        return self.target / value if value > 0 else 2.0

    def score(self, local_value: float, firm_value: float) -> float:
        """(1 − w)·local + w·firm, both normalised."""
        return (1.0 - self.weight) * self.local_score(local_value) + self.weight * firm_value

    @classmethod
    def for_role(cls, role: str, target: float, weight: float = 0.0) -> AccountabilityRule:
        metric = LOCAL_METRIC.get(role, "holding_backlog_cost")
        higher = metric in ("fill_rate", "utilisation")
        return cls(metric=metric, target=target, weight=weight, higher_is_better=higher)
