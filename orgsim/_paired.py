"""The numerical core of :mod:`orgsim.comparison`: per-firm outcomes from KPI arrays, intervals of
a mean paired difference and of a difference of proportions, and the crossover period with its
bootstrap over firms.

Pure functions over NumPy arrays; the intervals come from statsmodels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from statsmodels.stats.proportion import confint_proportions_2indep
from statsmodels.stats.weightstats import DescrStatsW

__all__ = [
    "ARRAY_KPIS",
    "DIAGNOSTICS",
    "INTERVALS",
    "OUTCOMES",
    "Outcome",
    "bootstrap_crossover",
    "check_alpha",
    "first_crossover",
    "newcombe_difference",
    "paired_difference",
    "resample_counts",
]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A per-firm outcome: its label, its unit, and whether it is a proportion (0/1 per firm)."""

    label: str
    unit: str
    proportion: bool = False


#: outcomes with effects in ``summary_frame``, each at each horizon (see docs/comparison.md)
OUTCOMES: dict[str, Outcome] = {
    "cumulative_fcf": Outcome("cumulative free cash flow", "MU"),
    "npv_fcf": Outcome("NPV of free cash flow", "MU"),
    "survival": Outcome("survival (solvent at the horizon)", "share of firms", proportion=True),
    "ending_cash": Outcome("ending cash", "MU"),
    "credit_headroom": Outcome("credit headroom", "MU"),
    "revenue_growth": Outcome("revenue growth", "fraction"),
    "fill_rate": Outcome("mean fill rate over solvent periods", "share of demand"),
}
#: further per-firm values in ``outcomes()`` (effects on request, via ``contrast``)
DIAGNOSTICS: dict[str, Outcome] = {
    "credit_headroom_recorded": Outcome("credit headroom as recorded (insolvent firms too)", "MU"),
    "insolvent_period": Outcome("first insolvent period (NaN: solvent throughout)", "periods"),
    "periods_solvent": Outcome("periods solvent", "periods"),
    "cum_revenue": Outcome("cumulative revenue", "MU"),
    "cum_operating_cost": Outcome("cumulative operating cost", "MU"),
    "cum_programme_cost": Outcome("cumulative programme cost", "MU"),
    "cum_demand": Outcome("cumulative end-customer demand", "units"),
    "mean_knowledge": Outcome("teams' mean knowledge at the horizon", "share of reality"),
    "code_knowledge": Outcome("code knowledge at the horizon", "share of reality"),
    "mean_maturity": Outcome("mean process maturity at the horizon", "0-1"),
}
#: KPI arrays kept on a result, each [environment, strategy, firm, period] (the contract's names)
ARRAY_KPIS = (
    "demand",
    "revenue",
    "operating_cost",
    "programme_cost",
    "free_cash_flow",
    "cash",
    "debt",
    "credit_headroom",
    "fill_rate",
    "mean_knowledge",
    "code_knowledge",
    "mean_maturity",
    "solvent",
)
_ENGINE_NAMES = {"demand": "demand_total"}  # the engines' name of a KPI, where it differs


def _discount_factors(periods: int, rate: float, periods_per_year: float) -> np.ndarray:
    """(1 + r)^(−t / periods_per_year) for t = 1..periods: a period's flow is discounted from its end."""
    t = np.arange(1, periods + 1, dtype=float)
    return (1.0 + rate) ** (-t / periods_per_year)


def _cell_outcomes(
    a: Mapping[str, np.ndarray], horizons: Sequence[int], factors: np.ndarray, growth_window: int
) -> dict[str, np.ndarray]:
    """Outcomes and diagnostics of one cell's firms, each [horizon, firm], from its KPI arrays
    (each [firm, period]).

    The sums are taken over ``[:, :h]`` slices exactly as ``experiments/strategy_families.py``
    took them, so its report's figures do not move.
    """
    fcf, solvent, headroom = a["free_cash_flow"], np.asarray(a["solvent"]).astype(bool), a["credit_headroom"]
    revenue, fill = a["revenue"], a["fill_rate"]
    n = fcf.shape[0]
    out = {k: np.empty((len(horizons), n)) for k in (*OUTCOMES, *DIAGNOSTICS)}
    w = growth_window
    for j, h in enumerate(horizons):
        last = h - 1
        alive = solvent[:, :h]
        alive_periods = alive.sum(axis=1)
        recorded = headroom[:, last]
        out["cumulative_fcf"][j] = fcf[:, :h].sum(axis=1)
        out["npv_fcf"][j] = (fcf[:, :h] * factors[:h]).sum(axis=1)
        out["survival"][j] = solvent[:, last]
        out["ending_cash"][j] = a["cash"][:, last]
        # an insolvent firm has no unused credit (its frozen value is <= 0 anyway)
        out["credit_headroom"][j] = np.where(solvent[:, last], recorded, np.minimum(recorded, 0.0))
        if h >= w:
            first = revenue[:, :w].sum(axis=1)
            latest = revenue[:, h - w : h].sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                growth = latest / first - 1.0
            out["revenue_growth"][j] = np.where(first > 0, growth, np.nan)  # no revenue to grow from
        else:
            out["revenue_growth"][j] = np.nan
        out["fill_rate"][j] = np.where(
            alive_periods > 0, (fill[:, :h] * alive).sum(axis=1) / np.maximum(alive_periods, 1), np.nan
        )
        out["credit_headroom_recorded"][j] = recorded
        out["insolvent_period"][j] = np.where(alive.all(axis=1), np.nan, np.argmin(alive, axis=1) + 1.0)
        out["periods_solvent"][j] = alive_periods
        out["cum_revenue"][j] = revenue[:, :h].sum(axis=1)
        out["cum_operating_cost"][j] = a["operating_cost"][:, :h].sum(axis=1)
        out["cum_programme_cost"][j] = a["programme_cost"][:, :h].sum(axis=1)
        out["cum_demand"][j] = a["demand"][:, :h].sum(axis=1)
        for k in ("mean_knowledge", "code_knowledge", "mean_maturity"):
            out[k][j] = a[k][:, last]
    return out


#: the interval methods, as named in ``summary_frame``'s ``interval`` column
INTERVALS = {
    "paired_t": "paired t (statsmodels DescrStatsW.tconfint_mean on the per-firm differences)",
    "newcombe": (
        "Newcombe's hybrid score interval for a difference of two proportions "
        "(statsmodels confint_proportions_2indep, method='newcomb'); it treats the arms as "
        "independent samples"
    ),
    "bootstrap_percentile": "bootstrap percentile interval, firms resampled with replacement",
}


def check_alpha(alpha) -> float:
    """``alpha`` as a float in (0, 1), or a ValueError naming it."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.integer | np.floating):
        raise TypeError(f"alpha == {alpha!r}, must be a number in (0, 1), e.g. 0.05 for 95% intervals")
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha == {alpha!r}, must be in (0, 1), e.g. 0.05 for 95% intervals")
    return float(alpha)


def paired_difference(d, alpha: float = 0.05) -> dict[str, float]:
    """Mean of per-firm paired differences with its standard error and a paired t interval.

    Parameters
    ----------
    d : array_like
        One difference per firm (arm a − arm b). Non-finite values (an outcome undefined for a
        firm, such as the fill rate of a firm never solvent) are left out; ``n`` counts the rest.
    alpha : float
        ``1 − alpha`` is the interval's coverage.

    Returns
    -------
    dict
        ``mean, mean_se, mean_ci_lower, mean_ci_upper, n`` (statsmodels' names). The interval is
        ``DescrStatsW(d).tconfint_mean(alpha)``: mean ± t(1 − alpha/2, n − 1) · s/√n. When every
        firm differs by the same amount the standard error is 0 and the interval is that amount;
        with fewer than two firms the standard error and interval are NaN.

    Examples
    --------
    >>> from orgsim.comparison import paired_difference
    >>> r = paired_difference([1.0, 2.0, 3.0, 4.0])
    >>> r["mean"], round(r["mean_se"], 4), r["n"]
    (2.5, 0.6455, 4)
    """
    alpha = check_alpha(alpha)
    d = np.asarray(d, dtype=float).ravel()
    d = d[np.isfinite(d)]
    n = int(d.size)
    nan = float("nan")
    if n == 0:
        return {"mean": nan, "mean_se": nan, "mean_ci_lower": nan, "mean_ci_upper": nan, "n": 0}
    if np.ptp(d) == 0.0:  # every firm differs by the same amount: no sampling variation seen
        m = float(d.mean())
        se, lo, hi = (0.0, m, m) if n >= 2 else (nan, nan, nan)
        return {"mean": m, "mean_se": se, "mean_ci_lower": lo, "mean_ci_upper": hi, "n": n}
    stats = DescrStatsW(d)
    lo, hi = stats.tconfint_mean(alpha=alpha)
    return {
        "mean": float(stats.mean),
        "mean_se": float(stats.std_mean),
        "mean_ci_lower": float(lo),
        "mean_ci_upper": float(hi),
        "n": n,
    }


def newcombe_difference(a, b, alpha: float = 0.05) -> dict[str, float]:
    """Difference of two proportions, mean(a) − mean(b), with Newcombe's hybrid score interval.

    ``a`` and ``b`` hold one value in [0, 1] per firm (1 = the firm survived; a pooled family's
    value is the share of its strategies under which the firm survived), paired by position.
    The interval is ``confint_proportions_2indep(mean(a)·n, n, mean(b)·n, n, method="newcomb")``:
    it treats the arms as independent samples of n firms, which is conservative where common
    random numbers correlate the arms positively (docs/comparison.md measures how much they do). ``mean_se`` is the standard error of the
    mean paired difference (as in :func:`paired_difference`), for reference; the interval is not
    built from it.
    """
    alpha = check_alpha(alpha)
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"a and b must have one value per firm each, got {a.size} and {b.size}")
    n = int(a.size)
    paired = paired_difference(a - b, alpha)
    if n < 2:
        return {**paired, "mean": float(a.mean() - b.mean()) if n else float("nan")}
    pa, pb = a.mean(), b.mean()
    lo, hi = confint_proportions_2indep(pa * n, n, pb * n, n, method="newcomb", compare="diff", alpha=alpha)
    return {
        "mean": float(pa - pb),
        "mean_se": paired["mean_se"],
        "mean_ci_lower": float(lo),
        "mean_ci_upper": float(hi),
        "n": n,
    }


def first_crossover(series) -> np.ndarray:
    """The first period from which ``series`` is positive and stays positive to its end.

    Parameters
    ----------
    series : array_like, shape (..., T)
        Values at periods 1..T along the last axis (e.g. a mean cumulative-FCF advantage).

    Returns
    -------
    numpy.ndarray of float, shape (...)
        The period t (1-based) such that ``series[..., s] > 0`` for every s ≥ t and
        ``series[..., t − 2] <= 0`` (or t = 1); ``inf`` where the series is not positive at its
        last period, i.e. it never crosses within the horizon.

    Examples
    --------
    >>> from orgsim.comparison import first_crossover
    >>> first_crossover([-3.0, -1.0, 2.0, -0.5, 1.0, 4.0])
    array(5.)
    >>> first_crossover([1.0, 2.0, -1.0])
    array(inf)
    """
    x = np.asarray(series, dtype=float)
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"series has shape {x.shape}, must have at least one period on its last axis")
    t = x.shape[-1]
    not_positive = ~(x > 0)  # NaN counts as not positive
    # index of the last period that is not positive (−1 if none)
    last_bad = np.where(not_positive.any(axis=-1), t - 1 - np.argmax(not_positive[..., ::-1], axis=-1), -1)
    # the period after it (1-based), or never when that is the last period
    return np.where(last_bad == t - 1, np.inf, last_bad + 2.0)


def resample_counts(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``n`` firms is drawn in each of ``n_boot`` resamples of ``n`` firms with
    replacement: an integer array [n_boot, n] whose rows sum to ``n``."""
    draws = rng.integers(0, n, size=(n_boot, n))
    return np.stack([np.bincount(row, minlength=n) for row in draws])


def bootstrap_crossover(differences: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Crossover periods of bootstrap resamples of firms.

    Parameters
    ----------
    differences : numpy.ndarray, shape (C, N, T)
        Per-firm cumulative differences of C contrasts (N firms, T periods), paired by firm.
    counts : numpy.ndarray, shape (B, N)
        :func:`resample_counts`: how often each firm is drawn in each of B resamples (the same
        resamples serve every contrast, so two contrasts' draws are as dependent as their
        estimates).

    Returns
    -------
    numpy.ndarray, shape (C, B)
        :func:`first_crossover` of each resample's mean over firms (``inf``: never).
    """
    c, n, t = differences.shape
    b = counts.shape[0]
    # the mean over a resample is a weighted sum over firms: one matrix product for all of them
    means = (counts.astype(float) @ differences.transpose(1, 0, 2).reshape(n, c * t)) / n  # [B, C*T]
    return first_crossover(means.reshape(b, c, t)).T
