"""Early warning: predict a firm's long-run outcome from its first k periods (scikit-learn).

:class:`EarlyWarning` turns the first ``k`` periods of each firm's KPIs into window statistics
(per KPI: last value, mean, slope, minimum, volatility, …), adds the firm's strategy, family
and environment, and fits a scikit-learn pipeline to its outcome at the horizon: survival
(classification) or cumulative free cash flow (regression), or any other outcome of
:mod:`orgsim.comparison`. It reports cross-validated, out-of-sample scores (AUC and Brier score,
or R² and MAE) with their fold-to-fold spread, against baselines (the prevalence or the mean, a
model that knows only the strategy, family and environment, and a logistic or ridge model), and
the permutation importance of each early signal on held-out firms, per family.

Grouped cross-validation. Under common random numbers firm *i* meets the same demand, shocks
and turnover draws in every arm and environment of a comparison, so its outcomes under
different strategies are correlated, and its early demand window is identical across arms. The
folds therefore hold out whole firm indices (the groups): no firm index is ever in both a
training and a test fold. ``docs/early_warning.md`` has the definitions and results for the
default firm.

Examples
--------
>>> from orgsim.comparison import compare
>>> from orgsim.early_warning import EarlyWarning
>>> res = compare(strategies=["bpo_bpm", "bso"], environments=["volatile"], n_orgs=20, periods=60)
>>> ew = EarlyWarning(k=13, outcome="cumulative_fcf", features=["cash", "free_cash_flow"], cv=4, n_repeats=1)
>>> frame = ew.fit(res).summary_frame()
>>> list(frame.columns[:9])
['subset', 'model', 'kind', 'metric', 'mean', 'std', 'mean_se', 'mean_ci_lower', 'mean_ci_upper']
>>> sorted(frame.metric.unique())
['mae', 'r2']
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats as sps
from sklearn.base import BaseEstimator, clone, is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import brier_score_loss, mean_absolute_error, r2_score, roc_auc_score
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, QuantileTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from ._paired import ARRAY_KPIS, OUTCOMES, check_alpha

__all__ = [
    "CONTEXT",
    "DEFAULT_FEATURES",
    "DEFAULT_STATS",
    "KPI_FEATURES",
    "STATS",
    "EarlyWarning",
    "EarlyWarningResult",
    "window_features",
]

#: KPIs whose early window can be a feature (the arrays a ComparisonResult keeps)
KPI_FEATURES = tuple(ARRAY_KPIS)
#: the default early signals: every KPI but ``programme_cost`` (set by the strategy's programme, the
#: same for every firm of a strategy and environment: a strategy label in disguise, which would
#: take the credit that belongs to the strategy) and ``solvent`` (1 in the early window of almost
#: every firm)
DEFAULT_FEATURES = tuple(k for k in KPI_FEATURES if k not in ("programme_cost", "solvent"))
#: categorical context of a firm: what a manager knows without looking at its KPIs
CONTEXT = ("strategy", "family", "environment")


@dataclass(frozen=True, slots=True)
class _Stat:
    meaning: str
    min_k: int


#: statistics of a KPI's early window x_1 … x_k (the name is the feature's suffix)
STATS: dict[str, _Stat] = {
    "last": _Stat("x_k, the value in the last period of the window", 1),
    "mean": _Stat("mean of x_1 … x_k", 1),
    "slope": _Stat("least-squares slope of x_t on t (KPI units per period)", 2),
    "min": _Stat("smallest value in the window", 1),
    "max": _Stat("largest value in the window", 1),
    "std": _Stat("sample standard deviation of the levels x_1 … x_k", 2),
    "volatility": _Stat("sample standard deviation of the changes x_t − x_(t−1)", 3),
}
DEFAULT_STATS = ("last", "mean", "slope", "min", "volatility")

#: the models fitted on the same folds: key -> what it sees
_MODEL_KEYS = ("prior", "context", "linear", "main")
_METRICS = {
    "classification": {"auc": "AUC (higher is better)", "brier": "Brier score (lower is better)"},
    "regression": {"r2": "R² (higher is better)", "mae": "MAE (lower is better)"},
}
_SCORING = {"classification": "roc_auc", "regression": "r2"}
#: the range of each metric: a score's interval is clipped to it (not a gain's)
_RANGE = {
    "auc": (0.0, 1.0),
    "brier": (0.0, 1.0),
    "r2": (-np.inf, 1.0),
    "mae": (0.0, np.inf),
}
ALL = "all"  # the subset of every unit


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool | np.bool_)


def _feature_name(kpi: str, stat: str) -> str:
    return f"{kpi}:{stat}"


# ----------------------------------------------------------------------------------------------
# window statistics
# ----------------------------------------------------------------------------------------------
def window_features(windows: Mapping[str, np.ndarray], stats: Sequence[str] = DEFAULT_STATS) -> pd.DataFrame:
    """Statistics of early KPI windows, one column per KPI and statistic (``"cash:slope"``).

    Parameters
    ----------
    windows : mapping of str to array of shape (units, k)
        Each KPI's first ``k`` periods, one row per unit (a firm under a strategy in an
        environment).
    stats : sequence of str
        Names from :data:`STATS`: ``last, mean, slope, min, max, std, volatility``.

    Returns
    -------
    pandas.DataFrame
        One row per unit, columns ``f"{kpi}:{stat}"`` in the order of ``windows``, then ``stats``.

    Examples
    --------
    >>> import numpy as np
    >>> window_features({"cash": np.array([[1.0, 2.0, 4.0]])}, ["last", "slope", "volatility"])
       cash:last  cash:slope  cash:volatility
    0        4.0         1.5         0.707107
    """
    stats = _check_stats(stats)
    cols: dict[str, np.ndarray] = {}
    for kpi, x in windows.items():
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] < 1:
            raise ValueError(f"windows[{kpi!r}] has shape {x.shape}, must be (units, k) with k >= 1")
        k = x.shape[1]
        for stat in stats:
            need = STATS[stat].min_k
            if k < need:
                raise ValueError(
                    f"stats includes {stat!r}, which needs k >= {need} periods; k == {k} "
                    f"(drop {stat!r} from stats or raise k)"
                )
            cols[_feature_name(kpi, stat)] = _stat(x, stat)
    return pd.DataFrame(cols)


def _stat(x: np.ndarray, stat: str) -> np.ndarray:
    if stat == "last":
        return x[:, -1].copy()
    if stat == "mean":
        return x.mean(axis=1)
    if stat == "min":
        return x.min(axis=1)
    if stat == "max":
        return x.max(axis=1)
    if stat == "std":
        return x.std(axis=1, ddof=1)
    if stat == "volatility":
        return np.diff(x, axis=1).std(axis=1, ddof=1)
    # slope: Σ (t − t̄)(x_t − x̄) / Σ (t − t̄)²
    t = np.arange(x.shape[1], dtype=float)
    t -= t.mean()
    return (x - x.mean(axis=1, keepdims=True)) @ t / (t @ t)


def _check_stats(stats) -> tuple[str, ...]:
    allowed = ", ".join(repr(s) for s in STATS)
    if isinstance(stats, str) or not isinstance(stats, Sequence):
        raise TypeError(f"stats == {stats!r}, must be a list of names from {allowed}")
    out = tuple(stats)
    if not out:
        raise ValueError(f"stats == [], must name at least one of {allowed}")
    for s in out:
        if s not in STATS:
            raise ValueError(
                f"stats == {list(out)!r}: {s!r} is not a window statistic, must be one of {allowed}"
            )
    if len(set(out)) != len(out):
        raise ValueError(f"stats == {list(out)!r}, must not repeat a name")
    return out


# ----------------------------------------------------------------------------------------------
# the per-unit data set: early windows, context, outcome and CRN groups
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Data:
    windows: dict[str, np.ndarray]  # each [unit, k]
    units: pd.DataFrame  # environment, strategy, family, seed, org, group (those present)
    y: np.ndarray | None  # the outcome per unit (None when predicting)
    periods: int
    horizon: int | None
    source: str  # "comparison" or "table"


def _check_k(k, periods: int, horizon: int | None, source: str, need_y: bool = True) -> int:
    if not _is_int(k):
        raise TypeError(f"k == {k!r}, must be an integer number of periods >= 1 (the early window)")
    if k < 1:
        raise ValueError(f"k == {k!r}, must be >= 1 (periods in the early window)")
    if not need_y:  # predicting: the data need only hold the early window
        if k > periods:
            raise ValueError(f"k == {k}, must be <= the {source}'s {periods} periods to predict from them")
        return int(k)
    limit = periods if horizon is None else min(periods, horizon)
    if k >= limit:
        where = f"the {source}'s {periods} periods" + ("" if horizon is None else f" and horizon {horizon}")
        raise ValueError(
            f"k == {k!r}, must be < {limit} ({where}): the early window must end before the outcome is measured"
        )
    return int(k)


def _check_outcome(outcome) -> str:
    if outcome not in OUTCOMES:
        raise ValueError(
            f"outcome == {outcome!r}, must be one of {', '.join(repr(o) for o in OUTCOMES)} "
            "('survival' is a classification, the others regressions)"
        )
    return outcome


def _check_features(features) -> tuple[str, ...]:
    allowed = ", ".join(repr(f) for f in KPI_FEATURES)
    if features is None:
        return DEFAULT_FEATURES
    if isinstance(features, str) or not isinstance(features, Sequence):
        raise TypeError(f"features == {features!r}, must be a list of KPI names from {allowed}")
    out = tuple(features)
    for f in out:
        if f not in KPI_FEATURES:
            raise ValueError(f"features == {list(out)!r}: {f!r} is not a KPI, must be names from {allowed}")
    if len(set(out)) != len(out):
        raise ValueError(f"features == {list(out)!r}, must not repeat a KPI")
    return out


def _default_horizon(res) -> int:
    five = round(5 * res.periods_per_year)
    return five if five in res.horizons else res.horizons[-1]


def _from_comparison(res, k, outcome, horizon, features, need_y: bool) -> _Data:
    if not need_y:
        horizon = None
    elif horizon is None:
        horizon = _default_horizon(res)
    elif horizon not in res.horizons:
        raise ValueError(
            f"horizon == {horizon!r}, must be one of the comparison's horizons {list(res.horizons)} "
            "(pass horizons= to compare to measure others)"
        )
    k = _check_k(k, res.periods, horizon, "run", need_y)
    n = res.n_firms
    cells = [(e, s) for e in res.environments for s in res.strategies]
    windows = {
        f: res.arrays[f][:, :, :, :k].reshape(len(cells) * n, k).astype(float, copy=False) for f in features
    }
    env = np.repeat([e for e, _ in cells], n)
    strat = np.repeat([s for _, s in cells], n)
    firm = np.tile(np.arange(n), len(cells))
    units = pd.DataFrame(
        {
            "environment": env.astype(object),
            "strategy": strat.astype(object),
            "family": np.array([res.families[s] for s in strat], dtype=object),
            "seed": res.firms["seed"].to_numpy()[firm],
            "org": res.firms["org"].to_numpy()[firm],
            "firm": firm,
            "group": firm,  # a firm position meets the same random numbers in every cell
        }
    )
    y = None
    if need_y:
        y = np.concatenate([res.values(e, s, outcome, horizon) for e, s in cells]).astype(float)
    return _Data(windows, units, y, res.periods, horizon, "comparison")


#: identifying columns a per-firm table may carry (``org`` is required)
_KEYS = ("environment", "strategy", "family", "seed", "org")


def _from_table(df: pd.DataFrame, k, outcome, horizon, features, need_y: bool) -> _Data:
    need = ["org", "period", *features] + ([outcome] if need_y else [])
    lacking = [c for c in need if c not in df.columns]
    if lacking:
        kpis = [c for c in lacking if c in KPI_FEATURES]
        hint = f" (or leave {kpis} out of features=)" if kpis else ""
        raise ValueError(
            f"the table lacks column(s) {lacking}, must have 'org' (the firm index, the CV group), 'period', "
            f"the outcome {outcome!r} and each KPI in features{hint}"
        )
    if df.empty:
        raise ValueError("the table has no rows, must hold one row per firm and period")
    keys = [c for c in _KEYS if c in df.columns]
    ordered = df.sort_values([*keys, "period"], kind="stable")
    sizes = ordered.groupby(keys, sort=False, observed=True, dropna=False).size()
    if sizes.nunique() != 1:
        raise ValueError(
            f"units ({', '.join(keys)}) have {sizes.min()} to {sizes.max()} rows, must each have one row per "
            "period and the same periods"
        )
    n_units, periods = len(sizes), int(sizes.iloc[0])
    period = ordered["period"].to_numpy().reshape(n_units, periods)
    if not (period == period[:1]).all() or (periods > 1 and not (np.diff(period[0]) > 0).all()):
        raise ValueError(
            "every unit must have the same periods, each once (check for duplicated or missing rows)"
        )
    k = _check_k(k, periods, None, "table", need_y)
    windows = {}
    for f in features:
        x = ordered[f].to_numpy(dtype=float).reshape(n_units, periods)[:, :k]
        if not np.isfinite(x).all():
            raise ValueError(f"column {f!r} has NaN or inf in the first {k} periods, must be finite")
        windows[f] = x
    first = ordered.iloc[::periods]
    units = pd.DataFrame({c: first[c].to_numpy() for c in keys})
    for c in ("environment", "strategy", "family"):
        if c in units:
            units[c] = units[c].astype(str).astype(object)
    units["firm"] = pd.factorize(pd.MultiIndex.from_frame(units[[c for c in ("seed", "org") if c in units]]))[
        0
    ]
    units["group"] = units["firm"]
    y = None
    if need_y:
        values = ordered[outcome].to_numpy(dtype=float).reshape(n_units, periods)
        same = (values == values[:, :1]) | (np.isnan(values) & np.isnan(values[:, :1]))
        if not same.all():
            raise ValueError(
                f"column {outcome!r} changes within a unit ({', '.join(keys)}), must be the unit's outcome at the "
                "horizon, the same in each of its rows"
            )
        y = values[:, 0]
    return _Data(windows, units, y, periods, horizon, "table")


def _load(data, k, outcome, horizon, features, need_y: bool) -> _Data:
    from .comparison import ComparisonResult

    if isinstance(data, ComparisonResult):
        return _from_comparison(data, k, outcome, horizon, features, need_y)
    if isinstance(data, pd.DataFrame):
        return _from_table(data, k, outcome, horizon, features, need_y)
    raise TypeError(
        f"data is a {type(data).__name__}, must be an orgsim ComparisonResult or a pandas DataFrame with one row "
        "per firm and period"
    )


# ----------------------------------------------------------------------------------------------
# pipelines and folds
# ----------------------------------------------------------------------------------------------
def _pipeline(
    estimator, numeric: Sequence[int], categorical: Sequence[int], *, quantile: int = 0
) -> Pipeline:
    """Scaled window statistics and one-hot context (columns by position in the design matrix:
    scikit-learn's checks on a DataFrame cost ~10× more than the model's predict at these sizes).

    ``quantile``: if > 0, normal scores of the training distribution (``QuantileTransformer`` with
    that many quantiles, at most the smallest training fold) instead of z-scores. A linear model on z-scores extrapolates from firms whose early window lies far out
    (a credit line drawn in week 20: z ≈ −6); normal scores stay within the training range.
    """
    parts = []
    if numeric:
        scaler = (
            QuantileTransformer(output_distribution="normal", n_quantiles=quantile)
            if quantile
            else StandardScaler()
        )
        parts.append(("signals", scaler, list(numeric)))
    if categorical:
        parts.append(
            ("context", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(categorical))
        )
    pre = ColumnTransformer(parts, remainder="drop", verbose_feature_names_out=False)
    return Pipeline([("features", pre), ("model", estimator)])


def _native_pipeline(
    estimator, columns: Sequence[int], categorical: Sequence[int], n_columns: int
) -> Pipeline:
    """A histogram gradient boosting model on the design's ``columns``, the context codes as its
    native categorical features (no encoder: permutation importance calls predict thousands of
    times, and a ColumnTransformer costs more than the model's own predict at these sizes)."""
    columns, categorical = list(columns), list(categorical)
    est = clone(estimator).set_params(categorical_features=[columns.index(c) for c in categorical] or None)
    if len(columns) == n_columns:
        return Pipeline([("model", est)])
    pre = ColumnTransformer([("select", "passthrough", columns)], remainder="drop")
    return Pipeline([("features", pre), ("model", est)])


def _set_seed(estimator, seed: int):
    """The estimator (a clone) with ``random_state`` set where it has one and it is unset."""
    est = clone(estimator)
    params = est.get_params()
    changes = {
        p: seed
        for p, v in params.items()
        if (p == "random_state" or p.endswith("__random_state")) and v is None
    }
    return est.set_params(**changes) if changes else est


def _splits(
    cv, repeats: int, y, groups, task: str, seeds: np.ndarray
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(repeat, train, test) for every split; each int ``cv`` repeat reshuffles the groups."""
    out = []
    if _is_int(cv):
        for r in range(repeats):
            if task == "classification":
                splitter = StratifiedGroupKFold(n_splits=cv, shuffle=True, random_state=int(seeds[r]))
            else:
                splitter = GroupKFold(n_splits=cv, shuffle=True, random_state=int(seeds[r]))
            out += [(r, tr, te) for tr, te in splitter.split(np.zeros(len(y)), y, groups)]
    else:
        out = [(0, tr, te) for tr, te in cv.split(np.zeros(len(y)), y, groups)]
    for j, (_, tr, te) in enumerate(out):
        shared = np.intersect1d(groups[tr], groups[te])
        if shared.size:
            raise ValueError(
                f"cv split {j} puts firm index {int(shared[0])} (and {shared.size - 1} more) in both the training "
                "and the test fold, must hold out whole firms: pass an int or a group splitter such as "
                "sklearn.model_selection.GroupKFold (a firm meets the same random numbers in every arm)"
            )
        if not len(tr) or not len(te):
            raise ValueError(f"cv split {j} has an empty training or test fold, must have both")
    return out


def _scores(task: str, y: np.ndarray, pred: np.ndarray) -> dict[str, tuple[float, str]]:
    """Each metric's value on one test subset, with a note where it is undefined."""
    if task == "classification":
        out = {"brier": (float(brier_score_loss(y, pred, pos_label=1)), "")}
        if np.unique(y).size < 2:
            out["auc"] = (np.nan, _single_class(y))
        else:
            out["auc"] = (float(roc_auc_score(y, pred)), "")
        return out
    out = {"mae": (float(mean_absolute_error(y, pred)), "")}
    if y.size < 2 or np.ptp(y) == 0:
        out["r2"] = (np.nan, f"the outcome is the same for all {y.size} test units")
    else:
        out["r2"] = (float(r2_score(y, pred)), "")
    return out


def _single_class(y: np.ndarray) -> str:
    word = "survive" if y.size and y[0] == 1 else "fail"
    return f"a single class: all {y.size} units {word}"


# ----------------------------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------------------------
class EarlyWarning(BaseEstimator):
    """Predict a firm's long-run outcome from its first ``k`` periods of KPIs.

    Parameters
    ----------
    k : int
        Periods in the early window (26: the first half year of weeks). Must be >= 1 and below
        the run's periods and the horizon.
    outcome : str
        A per-firm outcome of :mod:`orgsim.comparison` (:data:`orgsim.comparison.OUTCOMES`):
        ``"survival"`` (solvent at the horizon; a classification) or ``"cumulative_fcf"``
        (a regression), or ``npv_fcf``, ``ending_cash``, ``credit_headroom``,
        ``revenue_growth``, ``fill_rate`` (regressions; units whose outcome is undefined are
        left out).
    horizon : int, optional
        The period at which the outcome is measured, one of the comparison's horizons; default
        5 years (week 260) where it is one, else the last. A table carries its outcome, and
        ``horizon`` only labels it.
    model : scikit-learn estimator, optional
        The main model (a classifier with ``predict_proba`` for survival, a regressor
        otherwise), fitted behind a scaler and a one-hot encoder of the context. Default
        ``HistGradientBoostingClassifier()`` / ``HistGradientBoostingRegressor()``.
    features : list of str, optional
        KPIs whose early windows are signals (:data:`KPI_FEATURES`); default every KPI but
        ``programme_cost`` and ``solvent`` (:data:`DEFAULT_FEATURES`).
    stats : list of str
        Window statistics per KPI (:data:`STATS`); default last, mean, slope, min, volatility.
    context : list of str, optional
        Categorical columns the models also see (:data:`CONTEXT`); default those of strategy,
        family and environment the data have. ``[]``: early signals only.
    by : str or None
        Scores and importances are reported for all units and for each value of this context
        column (default ``"family"``); None: all units only.
    cv : int or splitter
        Folds of grouped cross-validation (``StratifiedGroupKFold`` for survival,
        ``GroupKFold`` otherwise, groups shuffled), or a scikit-learn group splitter; splits
        that put one firm index in both folds are refused.
    cv_repeats : int
        Repetitions of an int ``cv`` with reshuffled groups (repeated grouped K-fold).
    n_repeats : int
        Permutations per feature and split in the permutation importance (0: no importance,
        scores only).
    baselines : bool
        Also fit, on the same folds, the prevalence/mean (``DummyClassifier``/
        ``DummyRegressor``), a context-only model (the main model on strategy, family and
        environment alone) and a linear model on every feature (``LogisticRegression`` /
        ``RidgeCV`` on the normal scores of the window statistics, ``QuantileTransformer``,
        and the one-hot context).
    n_jobs : int, optional
        Worker processes over the splits (joblib; -1: all cores). Each split runs
        single-threaded; the results do not depend on ``n_jobs``.
    random_state : int, SeedSequence, Generator or None
        Seeds the folds, the models' ``random_state`` (where unset) and the permutations,
        normalised once with ``numpy.random.default_rng`` (SPEC 7). An int (default 0) gives
        identical results on every fit; a Generator is consumed.

    Attributes
    ----------
    task_ : str
        ``"classification"`` or ``"regression"``.
    horizon_ : int or None
        The horizon of the outcome.
    feature_names_in_ : ndarray of str
        The columns the models see: window statistics, then context.
    model_ : sklearn.pipeline.Pipeline
        The main pipeline refitted on every unit (for :meth:`predict`).
    result_ : EarlyWarningResult
        Cross-validated scores, importances and out-of-fold predictions.
    n_splits_ : int
        Train/test splits (folds × repeats).

    Examples
    --------
    >>> from orgsim.comparison import compare
    >>> res = compare(strategies=["bpo", "bso"], environments=["volatile"], n_orgs=20, periods=60)
    >>> ew = EarlyWarning(k=10, outcome="cumulative_fcf", cv=4, n_repeats=0).fit(res)
    >>> ew.task_, ew.n_splits_
    ('regression', 4)
    >>> ew.predict(res).shape
    (40,)
    """

    def __init__(
        self,
        k: int = 26,
        outcome: str = "cumulative_fcf",
        *,
        horizon: int | None = None,
        model=None,
        features: Sequence[str] | None = None,
        stats: Sequence[str] = DEFAULT_STATS,
        context: Sequence[str] | None = None,
        by: str | None = "family",
        cv=5,
        cv_repeats: int = 1,
        n_repeats: int = 5,
        baselines: bool = True,
        n_jobs: int | None = None,
        random_state=0,
    ):
        self.k = k
        self.outcome = outcome
        self.horizon = horizon
        self.model = model
        self.features = features
        self.stats = stats
        self.context = context
        self.by = by
        self.cv = cv
        self.cv_repeats = cv_repeats
        self.n_repeats = n_repeats
        self.baselines = baselines
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- validation ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        _check_outcome(self.outcome)
        _check_features(self.features)
        _check_stats(self.stats)
        if self.horizon is not None and (not _is_int(self.horizon) or self.horizon < 1):
            raise ValueError(f"horizon == {self.horizon!r}, must be None or a period >= 1")
        if _is_int(self.cv):
            if self.cv < 2:
                raise ValueError(f"cv == {self.cv!r}, must be >= 2 folds (or a group splitter)")
        elif not (hasattr(self.cv, "split") and hasattr(self.cv, "get_n_splits")):
            raise TypeError(
                f"cv == {self.cv!r}, must be an int >= 2 or a scikit-learn splitter taking groups"
            )
        if not _is_int(self.cv_repeats) or self.cv_repeats < 1:
            raise ValueError(f"cv_repeats == {self.cv_repeats!r}, must be an integer >= 1")
        if self.cv_repeats > 1 and not _is_int(self.cv):
            raise ValueError(
                f"cv_repeats == {self.cv_repeats}, must be 1 when cv is a splitter (it makes its own splits)"
            )
        if not _is_int(self.n_repeats) or self.n_repeats < 0:
            raise ValueError(
                f"n_repeats == {self.n_repeats!r}, must be an integer >= 1 (permutations per feature), or 0 to skip the importance"
            )
        if not isinstance(self.baselines, bool | np.bool_):
            raise TypeError(f"baselines == {self.baselines!r}, must be True or False")
        if self.context is not None:
            if isinstance(self.context, str) or not isinstance(self.context, Sequence):
                raise TypeError(f"context == {self.context!r}, must be a list of names from {list(CONTEXT)}")
            bad = [c for c in self.context if c not in CONTEXT]
            if bad:
                raise ValueError(
                    f"context == {list(self.context)!r}: {bad[0]!r} is not one of {list(CONTEXT)}"
                )

    def _task(self) -> str:
        return "classification" if OUTCOMES[self.outcome].proportion else "regression"

    def _main_estimator(self, task: str):
        if self.model is None:
            return (
                HistGradientBoostingClassifier()
                if task == "classification"
                else HistGradientBoostingRegressor()
            )
        if not hasattr(self.model, "fit") or not hasattr(self.model, "get_params"):
            raise TypeError(f"model == {self.model!r}, must be a scikit-learn estimator")
        if task == "classification":
            if not is_classifier(self.model) or not hasattr(self.model, "predict_proba"):
                raise TypeError(
                    f"model == {self.model!r}, must be a scikit-learn classifier with predict_proba for "
                    f"outcome {self.outcome!r} (a classification)"
                )
        elif not is_regressor(self.model):
            raise TypeError(
                f"model == {self.model!r}, must be a scikit-learn regressor for outcome {self.outcome!r} "
                "(a regression; 'survival' is the classification)"
            )
        return self.model

    def _rng(self) -> np.random.Generator:
        try:
            return np.random.default_rng(self.random_state)
        except (TypeError, ValueError) as exc:
            raise type(exc)(
                f"random_state == {self.random_state!r}, must be None, an int >= 0, a numpy SeedSequence or "
                "Generator (SPEC 7)"
            ) from None

    def _design(self, data: _Data) -> pd.DataFrame:
        """Window statistics, then the context labels: one row per unit."""
        signals = window_features(data.windows, self.stats)
        ctx = pd.DataFrame(
            {c: data.units[c].to_numpy(dtype=object) for c in self.context_}, index=signals.index
        )
        return pd.concat([signals, ctx], axis=1)

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        """The design as floats, each context label as its position in ``categories_`` (an
        unseen label is -1, which the one-hot encoder ignores)."""
        out = np.empty(X.shape, dtype=float)
        for i, c in enumerate(X.columns):
            if c in self.categories_:
                codes = {v: n for n, v in enumerate(self.categories_[c])}
                out[:, i] = [codes.get(v, -1) for v in X[c]]
            else:
                out[:, i] = X[c].to_numpy(dtype=float)
        return out

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, data, y=None) -> EarlyWarning:
        """Cross-validate the models on ``data`` and refit the main one on every unit.

        Parameters
        ----------
        data : ComparisonResult or pandas.DataFrame
            A comparison (every firm under every strategy in every environment), or a per-firm
            table: one row per unit and period with ``org`` (the firm index: units with the same
            ``seed`` and ``org`` share random numbers and are kept in one fold), ``period``, the
            KPI columns in ``features``, the outcome column named ``outcome`` (the same in each
            of a unit's rows) and, optionally, ``seed``, ``strategy``, ``family``,
            ``environment``. The early window is each unit's first ``k`` periods.
        y : None
            Unused: the outcome comes from ``data``.

        Returns
        -------
        EarlyWarning
            self, fitted.
        """
        if y is not None:
            raise TypeError(
                f"y == {type(y).__name__}, must be None: the outcome {self.outcome!r} comes from data"
            )
        self._check_params()
        task = self._task()
        features = _check_features(self.features)
        main = self._main_estimator(task)
        data = _load(data, self.k, self.outcome, self.horizon, features, need_y=True)
        rng = self._rng()

        keep = np.isfinite(data.y)
        n_dropped = int((~keep).sum())
        if n_dropped:
            data = _Data(
                {f: w[keep] for f, w in data.windows.items()},
                data.units[keep].reset_index(drop=True),
                data.y[keep],
                data.periods,
                data.horizon,
                data.source,
            )
        if not len(data.y):
            raise ValueError(
                f"outcome {self.outcome!r} is undefined for every unit, must be defined for some"
            )

        present = [c for c in CONTEXT if c in data.units]
        if self.context is None:
            self.context_ = tuple(present)
        else:
            missing = [c for c in self.context if c not in present]
            if missing:
                raise ValueError(f"context == {list(self.context)!r}: the data have no column {missing[0]!r}")
            self.context_ = tuple(self.context)
        if self.by is not None and self.by not in present:
            raise ValueError(f"by == {self.by!r}, must be None or a column of the data among {present}")

        y_all = data.y
        if task == "classification":
            if not np.isin(y_all, (0.0, 1.0)).all():
                raise ValueError(f"outcome {self.outcome!r} must be 0 or 1 per unit for a classification")
            y_all = y_all.astype(int)
        groups = data.units["group"].to_numpy()
        self._check_enough(task, y_all, groups, data)

        X = self._design(data)
        signal_cols = [i for i, c in enumerate(X.columns) if c not in self.context_]
        context_cols = [i for i, c in enumerate(X.columns) if c in self.context_]
        self.task_ = task
        self.horizon_ = data.horizon
        self.features_ = features
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]

        seeds = rng.integers(0, 2**31 - 1, size=3 + self.cv_repeats)
        model_seed, perm_seed = int(seeds[0]), int(seeds[1])
        main = _set_seed(main, model_seed)
        splits = _splits(self.cv, self.cv_repeats, y_all, groups, task, seeds[3:])
        self.n_splits_ = len(splits)
        # quantiles of the linear model's normal scores: 200, or fewer when a training fold is smaller
        n_quantiles = min(200, min(len(tr) for _, tr, _ in splits))
        n_columns = len(X.columns)
        if self.model is None:  # the default: native categorical context
            templates = {"main": _native_pipeline(main, range(n_columns), context_cols, n_columns)}
        else:
            templates = {"main": _pipeline(main, signal_cols, context_cols)}
        names = {"main": _model_label(main, self.model is None)}
        if self.baselines:
            dummy = DummyClassifier(strategy="prior") if task == "classification" else DummyRegressor()
            templates["prior"] = Pipeline([("model", dummy)])
            names["prior"] = "prevalence" if task == "classification" else "mean"
            if self.context_:
                if self.model is None:
                    templates["context"] = _native_pipeline(main, context_cols, context_cols, n_columns)
                else:
                    templates["context"] = _pipeline(main, [], context_cols)
                names["context"] = f"{names['main']}, context only ({', '.join(self.context_)})"
            linear = (
                LogisticRegression(max_iter=5000)
                if task == "classification"
                else RidgeCV(np.logspace(-3, 4, 15))
            )
            templates["linear"] = _pipeline(linear, signal_cols, context_cols, quantile=n_quantiles)
            names["linear"] = "logistic regression" if task == "classification" else "ridge regression"
        order = [m for m in _MODEL_KEYS if m in templates]

        subsets = {ALL: np.ones(len(y_all), dtype=bool)}
        if self.by is not None:
            for v in pd.unique(data.units[self.by]):
                subsets[str(v)] = (data.units[self.by] == v).to_numpy()

        self.categories_ = {c: sorted(pd.unique(X[c])) for c in self.context_}
        matrix = self._matrix(X)
        perm_seeds = np.random.default_rng(perm_seed).integers(0, 2**31 - 1, size=(len(splits), len(subsets)))
        work = (
            delayed(_run_split)(
                j, rep, tr, te, matrix, y_all, templates, order, task, subsets, self.n_repeats, perm_seeds[j]
            )
            for j, (rep, tr, te) in enumerate(splits)
        )
        parts = Parallel(n_jobs=self.n_jobs)(work)
        metric_rows = [row for p in parts for row in p[0]]
        imp = [p[1] for p in parts]
        pred_parts = [p[2] for p in parts]
        skipped = [row for p in parts for row in p[3]]
        with threadpool_limits(1):
            self.model_ = clone(templates["main"]).fit(matrix, y_all)
        predictions = pd.concat(pred_parts, ignore_index=True)
        predictions = pd.concat(
            [data.units.iloc[predictions.unit].reset_index(drop=True), predictions.reset_index(drop=True)],
            axis=1,
        )
        self.result_ = EarlyWarningResult(
            task=task,
            outcome=self.outcome,
            horizon=data.horizon,
            k=int(self.k),
            by=self.by,
            subsets={name: int(mask.sum()) for name, mask in subsets.items()},
            subset_prevalence={name: float(y_all[mask].mean()) for name, mask in subsets.items()},
            cv_results=pd.DataFrame(metric_rows),
            importances=_importance_table(imp, list(X.columns)),
            predictions=predictions,
            skipped=pd.DataFrame(skipped, columns=["split", "subset", "reason"]),
            models=names,
            features=list(X.columns),
            n_units=len(y_all),
            n_firms=int(np.unique(groups).size),
            n_dropped=n_dropped,
            n_splits=len(splits),
            cv=self.cv if _is_int(self.cv) else type(self.cv).__name__,
            cv_repeats=self.cv_repeats,
            n_repeats=self.n_repeats,
            design=X,
            y=y_all,
            groups=groups,
            units=data.units,
        )
        never = self.result_.skipped_subsets()
        if never:
            warnings.warn(
                f"{self.outcome}: permutation importance and {_METRIC_KEY[task]} skipped for "
                + "; ".join(f"{s} ({why})" for s, why in never.items()),
                UserWarning,
                stacklevel=2,
            )
        return self

    def _check_enough(self, task: str, y: np.ndarray, groups: np.ndarray, data: _Data) -> None:
        n_groups = np.unique(groups).size
        folds = self.cv if _is_int(self.cv) else None  # a splitter checks its own groups
        if folds is not None and n_groups < folds:
            raise ValueError(
                f"the data hold {n_groups} firms (firm indices, the CV groups), must hold at least cv == {folds}: "
                "each fold holds out whole firms (add firms or lower cv)"
            )
        if task != "classification":
            return
        where = f" at horizon {data.horizon}" if data.horizon is not None else ""
        counts = {c: np.unique(groups[y == c]).size for c in (0, 1)}
        if min(counts.values()) == 0:
            word = "survives" if counts[0] == 0 else "fails"
            raise ValueError(
                f"outcome {self.outcome!r}{where} has a single class: every one of the {len(y)} units {word}, so "
                "there is nothing to classify (choose environments or a horizon with insolvencies, e.g. "
                "'volatile', or a regression outcome such as 'cumulative_fcf')"
            )
        rare, n_rare = min(counts.items(), key=lambda kv: kv[1])
        if folds is not None and n_rare < folds:
            word = "fail" if rare == 0 else "survive"
            raise ValueError(
                f"outcome {self.outcome!r}{where}: only {n_rare} firm(s) {word}, must be >= cv == {folds} so that "
                "every test fold can hold both classes (lower cv, add firms, or choose a harsher environment)"
            )

    # -- prediction -----------------------------------------------------------------------------
    def _new_design(self, data) -> pd.DataFrame:
        loaded = _load(data, self.k, self.outcome, self.horizon_, self.features_, need_y=False)
        missing = [c for c in self.context_ if c not in loaded.units]
        if missing:
            raise ValueError(f"data lacks context column(s) {missing}, which the model was fitted with")
        return self._design(loaded)

    def predict(self, data) -> np.ndarray:
        """The main model's prediction per unit of ``data`` (a comparison or a per-firm table; no
        outcome needed): the predicted class (1: survives) or the predicted outcome."""
        self._result()
        with threadpool_limits(1):
            return self.model_.predict(self._matrix(self._new_design(data)))

    def predict_proba(self, data) -> np.ndarray:
        """Probabilities of [failure, survival] per unit (classification only)."""
        self._result()
        if self.task_ != "classification":
            raise AttributeError("predict_proba is for outcome='survival' (a classification)")
        with threadpool_limits(1):
            return self.model_.predict_proba(self._matrix(self._new_design(data)))

    # -- reports (the fitted result's) -------------------------------------------------------------
    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """See :meth:`EarlyWarningResult.summary_frame`."""
        return self._result().summary_frame(alpha)

    def importance_frame(self) -> pd.DataFrame:
        """See :meth:`EarlyWarningResult.importance_frame`."""
        return self._result().importance_frame()

    def summary(self, alpha: float = 0.05):
        """See :meth:`EarlyWarningResult.summary`."""
        return self._result().summary(alpha)

    def plot(self, **kwargs):
        """See :meth:`EarlyWarningResult.plot`."""
        return self._result().plot(**kwargs)

    def _result(self) -> EarlyWarningResult:
        if not hasattr(self, "result_"):
            raise AttributeError("this EarlyWarning is not fitted yet: call fit(data) first")
        return self.result_


_METRIC_KEY = {"classification": "AUC", "regression": "R²"}


def _run_split(j, rep, tr, te, X, y, templates, order, task, subsets, n_repeats, seeds):
    """Fit every model on one split's training folds; score it on the test units of each subset;
    the main model's permutation importance on each subset's test units.

    Runs single-threaded (OpenMP and BLAS limited with threadpoolctl): at these sizes threads cost
    more than they save (ten times slower on a shared two-core machine); ``n_jobs`` parallelises
    over splits instead. Returns metric rows, importances [subset, feature, permutation], the
    test predictions and the skipped subsets.
    """
    metric_rows, skipped = [], []
    importances = {}
    with threadpool_limits(1):
        preds, fitted = {}, {}
        for m in order:
            fitted[m] = clone(templates[m]).fit(X[tr], y[tr])
            preds[m] = (
                fitted[m].predict_proba(X[te])[:, 1] if task == "classification" else fitted[m].predict(X[te])
            )
        for s, (name, mask) in enumerate(subsets.items()):
            sub = mask[te]
            if not sub.any():
                continue
            ys = y[te][sub]
            for m in order:
                for metric, (value, note) in _scores(task, ys, preds[m][sub]).items():
                    metric_rows.append(
                        {
                            "split": j,
                            "repeat": rep,
                            "subset": name,
                            "model": m,
                            "metric": metric,
                            "value": value,
                            "n_test": int(sub.sum()),
                            "n_train": len(tr),
                            "note": note,
                        }
                    )
            reason = _score_undefined(task, ys)
            if reason:
                skipped.append({"split": j, "subset": name, "reason": reason})
                continue
            if not n_repeats:
                continue
            pi = permutation_importance(
                fitted["main"],
                X[te[sub]],
                ys,
                scoring=_SCORING[task],
                n_repeats=n_repeats,
                random_state=int(seeds[s]),
            )
            importances[name] = pi.importances
    pred = pd.DataFrame({"split": j, "repeat": rep, "unit": te, "y": y[te], **{m: preds[m] for m in order}})
    return metric_rows, (j, importances), pred, skipped


def _importance_table(parts, features: list[str]) -> pd.DataFrame:
    """Long table of permutation importances: split, subset, feature, permutation, value."""
    frames = []
    for j, by_subset in parts:
        for name, values in by_subset.items():
            n_f, n_r = values.shape
            frames.append(
                pd.DataFrame(
                    {
                        "split": j,
                        "subset": name,
                        "feature": np.repeat(features, n_r),
                        "permutation": np.tile(np.arange(n_r), n_f),
                        "value": values.reshape(-1),
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=["split", "subset", "feature", "permutation", "value"])
    return pd.concat(frames, ignore_index=True)


def _score_undefined(task: str, y: np.ndarray) -> str:
    if task == "classification":
        return _single_class(y) if np.unique(y).size < 2 else ""
    return f"the outcome is the same for all {y.size} test units" if y.size < 2 or np.ptp(y) == 0 else ""


def _model_label(est, default: bool) -> str:
    return "gradient boosting" if default else type(est).__name__


# ----------------------------------------------------------------------------------------------
# the results object
# ----------------------------------------------------------------------------------------------
def _corrected_t(values: np.ndarray, ratio: float, alpha: float) -> dict[str, float]:
    """Mean over splits with the corrected resampled t interval of Nadeau & Bengio (2003):
    variance (1/J + n_test/n_train)·s² with J splits, t quantile with J − 1 degrees of freedom."""
    j = values.size
    mean = float(values.mean()) if j else np.nan
    if j < 2:
        return {
            "mean": mean,
            "std": np.nan,
            "mean_se": np.nan,
            "mean_ci_lower": np.nan,
            "mean_ci_upper": np.nan,
        }
    sd = float(values.std(ddof=1))
    se = float(np.sqrt(1.0 / j + ratio) * sd)
    q = float(sps.t.ppf(1 - alpha / 2, j - 1))
    return {
        "mean": mean,
        "std": sd,
        "mean_se": se,
        "mean_ci_lower": mean - q * se,
        "mean_ci_upper": mean + q * se,
    }


class EarlyWarningResult:
    """Cross-validated scores, permutation importances and out-of-fold predictions of an
    :class:`EarlyWarning` fit (its ``result_``).

    Attributes
    ----------
    cv_results : pandas.DataFrame
        One row per split, subset, model and metric: ``split, repeat, subset, model, metric,
        value, n_test, n_train, note`` (``note`` says why a value is undefined).
    importances : pandas.DataFrame
        One row per split, subset, feature and permutation: the drop in the score (AUC or R²)
        when the feature is permuted in the held-out units of the subset.
    predictions : pandas.DataFrame
        Out-of-fold predictions: one row per split and test unit, with the unit's columns,
        ``y`` and one column per model (a probability of survival, or the outcome).
    skipped : pandas.DataFrame
        Splits and subsets where AUC/R² and the importance are undefined, with the reason.
    design, y, groups, units
        The design matrix (window statistics and context per unit), the outcome, the CV groups
        (firm indices) and the units' labels.
    """

    def __init__(self, **kw: Any):
        self.task: str = kw["task"]
        self.outcome: str = kw["outcome"]
        self.horizon = kw["horizon"]
        self.k: int = kw["k"]
        self.by = kw["by"]
        self.subsets: dict[str, int] = kw["subsets"]
        self.subset_prevalence: dict[str, float] = kw["subset_prevalence"]
        self.cv_results: pd.DataFrame = kw["cv_results"]
        self.importances: pd.DataFrame = kw["importances"]
        self.predictions: pd.DataFrame = kw["predictions"]
        self.skipped: pd.DataFrame = kw["skipped"]
        self.models: dict[str, str] = kw["models"]
        self.features: list[str] = kw["features"]
        self.n_units: int = kw["n_units"]
        self.n_firms: int = kw["n_firms"]
        self.n_dropped: int = kw["n_dropped"]
        self.n_splits: int = kw["n_splits"]
        self.cv = kw["cv"]
        self.cv_repeats: int = kw["cv_repeats"]
        self.n_repeats: int = kw["n_repeats"]
        self.design: pd.DataFrame = kw["design"]
        self.y: np.ndarray = kw["y"]
        self.groups: np.ndarray = kw["groups"]
        self.units: pd.DataFrame = kw["units"]
        self._frames: dict[Any, pd.DataFrame] = {}

    @property
    def metrics(self) -> dict[str, str]:
        """The metrics of this task, with their meaning."""
        return _METRICS[self.task]

    def _ratio(self) -> float:
        split = self.cv_results[self.cv_results.subset == ALL].groupby("split").first()
        return float((split.n_test / split.n_train).mean())

    def skipped_subsets(self) -> dict[str, str]:
        """Subsets whose AUC/R² and importance are undefined in every split, with the reason."""
        out = {}
        for name, part in self.skipped.groupby("subset", sort=False):
            if part.split.nunique() == self.n_splits:
                out[str(name)] = _reason(self, str(name))
        return out

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Cross-validated scores: one row per subset × model × metric, and gains of the main model.

        Columns ``subset`` (``all`` or a value of ``by``), ``model`` (``prior``, ``context``,
        ``linear``, ``main``, or ``main − X`` and ``linear − context`` for a gain), ``kind``
        (``model`` or ``gain``),
        ``metric``, then ``mean`` (over splits), ``std`` (the fold-to-fold spread, ddof 1),
        ``mean_se`` and ``mean_ci_lower``/``mean_ci_upper``: the corrected resampled t interval
        of Nadeau & Bengio (2003), standard error √(1/J + n_test/n_train)·std over J splits and
        a t quantile with J − 1 degrees of freedom, clipped to the metric's range (AUC and
        Brier in [0, 1], R² ≤ 1, MAE ≥ 0). A gain ``A − B`` is the per-split
        difference of the two models' scores on the same test units (positive: A scores
        higher; for Brier and MAE lower is better); ``main − context`` and ``linear − context``
        are what the early signals add to the context for each model. ``n_splits`` counts the splits where
        the metric is defined, ``n`` the units of the subset, ``interval`` names the method
        and ``note`` says why a value is missing (e.g. a single class in the subset).
        """
        alpha = check_alpha(alpha)
        if alpha in self._frames:
            return self._frames[alpha].copy()
        ratio = self._ratio()
        cv = self.cv_results
        rows = []
        for name in self.subsets:
            part = cv[cv.subset == name]
            for metric in self.metrics:
                pm = part[part.metric == metric]
                wide = pm.pivot(index="split", columns="model", values="value")
                models = [m for m in _MODEL_KEYS if m in wide.columns]
                for m in models:
                    values = wide[m].to_numpy()
                    rows.append(self._row(name, m, "model", metric, values, ratio, alpha, pm[pm.model == m]))
                for m in models:
                    if m == "main":
                        continue
                    diff = (wide["main"] - wide[m]).to_numpy()
                    rows.append(
                        self._row(name, f"main − {m}", "gain", metric, diff, ratio, alpha, pm[pm.model == m])
                    )
                if "linear" in models and "context" in models:  # the early signals, for the linear model
                    diff = (wide["linear"] - wide["context"]).to_numpy()
                    rows.append(
                        self._row(
                            name,
                            "linear − context",
                            "gain",
                            metric,
                            diff,
                            ratio,
                            alpha,
                            pm[pm.model == "context"],
                        )
                    )
        frame = pd.DataFrame(rows)
        self._frames[alpha] = frame
        return frame.copy()

    def _row(self, subset, model, kind, metric, values, ratio, alpha, part) -> dict[str, Any]:
        ok = values[np.isfinite(values)]
        stats = _corrected_t(ok, ratio, alpha)
        if kind == "model":
            lo, hi = _RANGE[metric]
            stats["mean_ci_lower"] = float(np.clip(stats["mean_ci_lower"], lo, hi))
            stats["mean_ci_upper"] = float(np.clip(stats["mean_ci_upper"], lo, hi))
        note = ""
        if ok.size < values.size:
            reasons = sorted(set(part.note[part.note != ""]))
            note = f"undefined in {values.size - ok.size} of {values.size} splits ({'; '.join(reasons)})"
        if ok.size == 1:
            note = (note + "; " if note else "") + "one split scored: no spread or interval"
        if model == "prior" and metric == "auc" and ok.size:
            note = (note + "; " if note else "") + "a constant prediction: AUC 0.5 by definition"
        return {
            "subset": subset,
            "model": model,
            "kind": kind,
            "metric": metric,
            **stats,
            "n_splits": int(ok.size),
            "n": self.subsets[subset],
            "interval": "nadeau_bengio_t",
            "note": note,
        }

    def importance_frame(self) -> pd.DataFrame:
        """Permutation importance of each feature, per subset, on held-out units.

        For each split the main model (fitted on the training folds) scores the test units of
        the subset, then again with one feature's values permuted among them
        (``sklearn.inspection.permutation_importance``, ``n_repeats`` permutations); the
        importance is the drop in AUC (survival) or R² (regressions). Columns ``subset,
        feature, mean`` (over splits and permutations), ``std`` (their spread), ``std_repeats``
        (the spread over permutations within a split, averaged over splits, what scikit-learn
        reports as ``importances_std``), ``std_splits`` (the spread of the split means),
        ``n_splits``, ``rank`` (1: the largest mean in the subset) and ``note``. A subset whose
        score is undefined in every split (a single class) has one row with feature ``—`` and
        the reason.
        """
        if "importance" in self._frames:
            return self._frames["importance"].copy()
        imp = self.importances
        rows = []
        for name in self.subsets:
            part = imp[imp.subset == name]
            if part.empty:
                rows.append(
                    {
                        "subset": name,
                        "feature": "—",
                        "mean": np.nan,
                        "std": np.nan,
                        "std_repeats": np.nan,
                        "std_splits": np.nan,
                        "n_splits": 0,
                        "rank": pd.NA,
                        "note": f"skipped: {_reason(self, name)}",
                    }
                )
                continue
            n_skip = int((self.skipped.subset == name).sum())
            g = part.groupby("feature", sort=False)["value"]
            by_split = part.groupby(["feature", "split"], sort=False)["value"]
            frame = pd.DataFrame(
                {
                    "subset": name,
                    "mean": g.mean(),
                    "std": g.std(ddof=1),
                    "std_repeats": by_split.std(ddof=1).groupby(level=0, sort=False).mean(),
                    "std_splits": by_split.mean().groupby(level=0, sort=False).std(ddof=1),
                    "n_splits": by_split.ngroups // max(1, g.ngroups),
                }
            ).reset_index(names="feature")[
                ["subset", "feature", "mean", "std", "std_repeats", "std_splits", "n_splits"]
            ]
            frame = frame.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)
            frame["rank"] = np.arange(1, len(frame) + 1)
            frame["note"] = (
                f"skipped in {n_skip} of {self.n_splits} splits (a single class)" if n_skip else ""
            )
            rows.extend(frame.to_dict("records"))
        out = pd.DataFrame(rows)
        out["rank"] = out["rank"].astype("Int64")
        self._frames["importance"] = out
        return out.copy()

    # -- text ---------------------------------------------------------------------------------
    def verdict(self, alpha: float = 0.05) -> list[str]:
        """Plain sentences: does the model predict better than chance, and do the early signals
        add to the context? (from the intervals of :meth:`summary_frame`)."""
        frame = self.summary_frame(alpha)
        level = f"{100 * (1 - alpha):g}%"
        key = "auc" if self.task == "classification" else "r2"
        null = 0.5 if key == "auc" else 0.0
        label = "AUC" if key == "auc" else "R²"
        out = []
        for name in self.subsets:
            rows = frame[(frame.subset == name) & (frame.metric == key)].set_index("model")
            if "main" not in rows.index or not np.isfinite(rows.loc["main", "mean"]):
                out.append(f"{name}: {label} undefined ({_reason(self, name)}); nothing to predict.")
                continue
            r = rows.loc["main"]
            lo, hi = r.mean_ci_lower, r.mean_ci_upper
            if np.isfinite(lo) and lo > null:
                text = f"{name}: out-of-sample {label} {r['mean']:.3f} [{lo:.3f}, {hi:.3f}], better than chance ({null:g})"
            elif np.isfinite(lo):
                text = (
                    f"{name}: out-of-sample {label} {r['mean']:.3f} [{lo:.3f}, {hi:.3f}]: NOT distinguishable from "
                    f"chance ({null:g}) at {level}"
                )
            else:
                text = f"{name}: out-of-sample {label} {r['mean']:.3f} (no interval)"
            if "main − context" in rows.index and np.isfinite(rows.loc["main − context", "mean_ci_lower"]):
                g = rows.loc["main − context"]
                if g.mean_ci_lower > 0:
                    text += f"; early signals add {g['mean']:+.3f} [{g.mean_ci_lower:+.3f}, {g.mean_ci_upper:+.3f}] over context alone"
                else:
                    text += (
                        f"; early signals add {g['mean']:+.3f} [{g.mean_ci_lower:+.3f}, {g.mean_ci_upper:+.3f}] over "
                        "context alone, not distinguishable from 0"
                    )
            if "linear − context" in rows.index and np.isfinite(
                rows.loc["linear − context", "mean_ci_lower"]
            ):
                g = rows.loc["linear − context"]
                text += (
                    f"; for the {self.models['linear']}: {g['mean']:+.3f} [{g.mean_ci_lower:+.3f}, "
                    f"{g.mean_ci_upper:+.3f}]"
                    + ("" if g.mean_ci_lower > 0 else ", not distinguishable from 0")
                )
            out.append(text + ".")
        return out

    def summary(self, alpha: float = 0.05):
        """A statsmodels ``Summary`` (text with ``str()``, HTML in JupyterLab): the set-up, the
        cross-validated scores of each model per subset with their intervals, the gains of the
        main model, the top five early signals per subset, and a plain verdict."""
        from statsmodels.iolib.summary2 import Summary

        alpha = check_alpha(alpha)
        level = f"{100 * (1 - alpha):g}%"
        s = Summary()
        s.add_title(self._title())
        prevalence = (
            ", ".join(f"{n}: {self.subset_prevalence[n]:.3f}" for n in self.subsets)
            if self.task == "classification"
            else ""
        )
        info = {
            "Task:": self.task,
            "Units (firm × strategy × environment):": str(self.n_units)
            + (f" ({self.n_dropped} left out: outcome undefined)" if self.n_dropped else ""),
            "Firms (CV groups):": str(self.n_firms),
            "Cross-validation:": f"grouped {self.cv}-fold × {self.cv_repeats} = {self.n_splits} splits"
            if isinstance(self.cv, int)
            else f"{self.cv}, {self.n_splits} splits",
            "Features:": f"{len(self.features)} ({', '.join(self.features[:3])}, …)",
            "Models:": "; ".join(f"{k} = {v}" for k, v in self.models.items()),
            "Permutations per feature and split:": str(self.n_repeats),
        }
        if prevalence:
            info["Share surviving:"] = prevalence
        s.add_dict(info, ncols=1)
        frame = self.summary_frame(alpha)
        s.add_df(
            pd.DataFrame(
                {
                    "subset": frame.subset,
                    "model": frame.model,
                    "metric": frame.metric,
                    "mean": frame["mean"].map(_fmt),
                    "std (folds)": frame["std"].map(_fmt),
                    f"{level} interval": [
                        f"[{_fmt(a)}, {_fmt(b)}]" for a, b in zip(frame.mean_ci_lower, frame.mean_ci_upper)
                    ],
                    "splits": frame.n_splits.astype(str),
                    "note": frame.note,
                }
            ),
            index=False,
        )
        imp = self.importance_frame()
        top = imp[(imp["rank"].fillna(0) <= 5)]
        s.add_df(
            pd.DataFrame(
                {
                    "subset": top.subset,
                    "rank": top["rank"].astype(str),
                    "early signal": top.feature,
                    f"drop in {_METRIC_KEY[self.task]}": top["mean"].map(_fmt),
                    "std (folds × permutations)": top["std"].map(_fmt),
                    "note": top.note,
                }
            ),
            index=False,
        )
        s.add_text(
            f"Scores: out-of-fold over {self.n_splits} grouped splits (no firm index in both folds); interval: "
            "corrected resampled t (Nadeau & Bengio 2003); its coverage was measured in one setting only "
            "(docs/early_warning.md). "
            f"Importance: permutation on held-out units (drop in {_METRIC_KEY[self.task]})."
        )
        for line in self.verdict(alpha):
            s.add_text(line)
        return s

    def _repr_html_(self) -> str:
        return f"<h4>{self._title()}</h4>\n" + self.summary().as_html()

    def _title(self) -> str:
        return f"Early warning: {self.outcome} {self._at()} from the first {self.k} periods"

    def _at(self) -> str:
        return "at the horizon" if self.horizon is None else f"at period {self.horizon}"

    def __repr__(self) -> str:
        return (
            f"<EarlyWarningResult outcome={self.outcome!r} horizon={self.horizon} k={self.k} task={self.task!r} "
            f"units={self.n_units} firms={self.n_firms} splits={self.n_splits}>"
        )

    # -- figures --------------------------------------------------------------------------------
    def plot_roc(self, subset: str = ALL, ax=None):
        """Out-of-fold ROC curves of each model (predictions pooled over splits), AUC in the legend."""
        from sklearn.metrics import roc_curve

        self._need("classification", "plot_roc")
        ax = _axes(ax, (5.0, 4.5))
        pred = self._subset_predictions(subset)
        if pred.y.nunique() < 2:
            raise ValueError(f"subset {subset!r} has {_reason(self, subset)}: no ROC curve")
        for m in self._plotted_models():
            fpr, tpr, _ = roc_curve(1 - pred.y, 1 - pred[m])  # failure is the event to warn of
            ax.plot(fpr, tpr, label=f"{self._short(m)} (AUC {roc_auc_score(pred.y, pred[m]):.3f})")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("false alarm rate (share of survivors flagged)")
        ax.set_ylabel("hit rate (share of failures flagged)")
        ax.set_title(f"ROC, {self.outcome} {self._at()} from {self.k} periods ({subset})")
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3)
        return ax

    def plot_calibration(self, subset: str = ALL, n_bins: int = 10, ax=None):
        """Reliability diagram: mean predicted probability of survival against the observed
        share surviving, in quantile bins of the out-of-fold predictions."""
        from sklearn.calibration import calibration_curve

        self._need("classification", "plot_calibration")
        ax = _axes(ax, (5.0, 4.5))
        pred = self._subset_predictions(subset)
        lo = 1.0
        for m in self._plotted_models():
            prob_true, prob_pred = calibration_curve(pred.y, pred[m], n_bins=n_bins, strategy="quantile")
            ax.plot(prob_pred, prob_true, marker="o", markersize=3, label=self._short(m))
            lo = min(lo, prob_true.min(), prob_pred.min())
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect calibration")
        lo = max(0.0, lo - 0.05 * (1.0 - lo) - 0.01)  # the bins' range: survival is usually near 1
        ax.set_xlim(lo, 1.0 + 0.02 * (1.0 - lo))
        ax.set_ylim(lo, 1.0 + 0.02 * (1.0 - lo))
        ax.set_xlabel("predicted probability of survival (bin mean)")
        ax.set_ylabel("observed share surviving")
        ax.set_title(f"Calibration, out of fold ({subset}, {n_bins} quantile bins)")
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
        return ax

    def _short(self, model: str) -> str:
        """A model's label for a legend."""
        return "context only" if model == "context" else self.models[model]

    def plot_predicted(self, subset: str = ALL, ax=None):
        """Out-of-fold predicted against observed outcome (regressions), one colour per value of
        ``by``, with the 45° line."""
        self._need("regression", "plot_predicted")
        ax = _axes(ax, (5.0, 4.5))
        pred = self._subset_predictions(subset)
        first = pred[pred.split.isin(pred.split[pred.repeat == 0].unique())]  # each unit once
        colour_by = self.by if self.by is not None and subset == ALL else None
        groups = first.groupby(colour_by, sort=False) if colour_by else [(subset, first)]
        for name, part in groups:
            ax.scatter(part.y, part["main"], s=4, alpha=0.4, label=str(name))
        lims = [
            float(min(first.y.min(), first["main"].min())),
            float(max(first.y.max(), first["main"].max())),
        ]
        ax.plot(lims, lims, color="black", linewidth=0.8, label="predicted = observed")
        unit = OUTCOMES[self.outcome].unit
        ax.set_xlabel(f"observed {OUTCOMES[self.outcome].label} {self._at()} ({unit})")
        ax.set_ylabel(f"predicted from the first {self.k} periods ({unit})")
        r2 = (
            self.summary_frame()
            .query("subset == @subset and model == 'main' and metric == 'r2'")["mean"]
            .iloc[0]
        )
        ax.set_title(f"{self.models['main']}, out of fold ({subset}): R² {r2:.3f}")
        ax.legend(title=colour_by, fontsize=7, markerscale=3)
        ax.grid(alpha=0.3)
        return ax

    def plot_importance(self, subsets: Sequence[str] | None = None, top: int = 10, ax=None):
        """Permutation importance of the ``top`` features (by their largest mean over the
        subsets), bars per subset with ±1 s.d. over splits × permutations."""
        ax = _axes(ax, (6.5, 1.5 + 0.35 * top))
        subsets_asked = subsets
        imp = self.importance_frame()
        imp = imp[imp.feature != "—"]
        subsets = [
            s for s in (list(self.subsets) if subsets is None else list(subsets)) if s in set(imp.subset)
        ]
        if not subsets:
            raise ValueError(f"no subset with importances to plot; skipped: {self.skipped_subsets()}")
        best = imp[imp.subset.isin(subsets)].groupby("feature")["mean"].max().sort_values(ascending=False)
        names = list(best.index[:top])
        width = 0.8 / len(subsets)
        for i, s in enumerate(subsets):
            part = imp[imp.subset == s].set_index("feature").reindex(names)
            y = np.arange(len(names)) + (i - (len(subsets) - 1) / 2) * width
            ax.barh(
                y,
                part["mean"],
                height=width,
                xerr=part["std"],
                capsize=2,
                label=f"{s} (n = {self.subsets[s]})",
            )
        ax.set_yticks(np.arange(len(names)), names)
        ax.invert_yaxis()
        ax.axvline(0.0, color="black", linewidth=0.8)
        skipped = {
            s: why for s, why in self.skipped_subsets().items() if subsets_asked is None or s in subsets_asked
        }
        if skipped:  # say so on the figure: a missing colour is not an importance of zero
            note = "; ".join(f"{s} skipped ({why})" for s, why in skipped.items())
            ax.text(
                0.99, 0.01, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=7, style="italic"
            )
        ax.set_xlabel(f"drop in out-of-fold {_METRIC_KEY[self.task]} when permuted (±1 s.d.)")
        ax.set_title(f"Early signals for {self.outcome} {self._at()} (first {self.k} periods)")
        ax.set_ylabel("early signal (KPI:statistic) or context")
        ax.legend(title=self.by or "subset", fontsize=7)
        ax.grid(alpha=0.3, axis="x")
        return ax

    def plot(self, top: int = 10):
        """The main figures side by side (ROC and calibration, or predicted against observed;
        then the importances); returns the matplotlib Figure."""
        from matplotlib.figure import Figure

        if self.task == "classification":
            fig = Figure(figsize=(17.0, 5.0), layout="constrained")
            a, b, c = fig.subplots(1, 3, width_ratios=[1, 1, 1.4])
            self.plot_roc(ax=a)
            self.plot_calibration(ax=b)
        else:
            fig = Figure(figsize=(12.0, 5.0), layout="constrained")
            a, c = fig.subplots(1, 2, width_ratios=[1, 1.4])
            self.plot_predicted(ax=a)
        self.plot_importance(top=top, ax=c)
        return fig

    def _need(self, task: str, what: str) -> None:
        if self.task != task:
            raise ValueError(f"{what} is for a {task} (this result is a {self.task} of {self.outcome!r})")

    def _plotted_models(self) -> list[str]:
        return [m for m in ("main", "linear", "context") if m in self.models]

    def _subset_predictions(self, subset: str) -> pd.DataFrame:
        if subset not in self.subsets:
            raise ValueError(f"subset == {subset!r}, must be one of {list(self.subsets)}")
        pred = self.predictions
        return pred if subset == ALL else pred[pred[self.by].astype(str) == subset]


def _reason(res: EarlyWarningResult, subset: str) -> str:
    if res.task == "classification":
        p = res.subset_prevalence.get(subset, np.nan)
        n = res.subsets.get(subset, 0)
        if p == 1.0:
            return f"a single class: all {n} units survive"
        if p == 0.0:
            return f"a single class: all {n} units fail"
        return "a single class in every test fold"
    return "the outcome does not vary"


def _fmt(x) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4f}"


def _axes(ax, size):
    """``ax``, or the Axes of a new Figure (no pyplot state, so it renders headless with Agg)."""
    if ax is not None:
        return ax
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained").subplots()
