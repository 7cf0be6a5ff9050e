"""Where each family wins: a scikit-learn surrogate of the paired family difference.

:class:`FamilySurrogate` learns the map from parameters and environment to the per-firm paired
difference of two arms (culture-aligned minus pooled efficiency-only, as :func:`orgsim.compare`
and :mod:`orgsim.sensitivity` define it), from a sensitivity analysis, a comparison or a sweep's
results store (:func:`training_data`). It reports its cross-validated error (R² and RMSE, folds
by design point when replicates share one), draws partial-dependence plots (the brute-force
partial dependence of ``sklearn.inspection.partial_dependence``, computed with one prediction
per model), and maps the regions of two parameters where each
family wins (:meth:`FamilySurrogate.win_map`): the sign of the predicted mean difference, with
the cells where its bootstrap interval covers 0 marked undecided.

What the surrogate predicts is the *mean* difference at given parameters: the per-firm
difference also carries the model's own noise, which no surrogate can predict. So its R² on
per-firm data is bounded by ``r2_ceiling_`` (one minus the share of the variance that is
within-design-point noise), and the intervals of :meth:`FamilySurrogate.predict_interval` are
for the mean, not for one firm: a percentile bootstrap over design points (the surrogate refit
on B resamples of whole design points). They reflect the sampling of design points and of
replicate noise; they do not include the surrogate's own approximation bias (a smooth boundary
fitted by trees is stepped), which is why ``docs/sensitivity.md`` measures their coverage on a
planted signal before the map is read.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from orgsim.surrogate import FamilySurrogate
>>> rng = np.random.default_rng(0)
>>> X = pd.DataFrame({"a": rng.uniform(size=400), "b": rng.uniform(size=400)})
>>> y = 3 * (X.a - X.b) + rng.normal(0, 0.3, 400)
>>> s = FamilySurrogate(cv=3, n_bootstrap=10, random_state=0).fit(X, y)
>>> bool(s.cv_r2_ > 0.8)
True
>>> m = s.win_map("a", "b", grid=11)
>>> sorted(m.shares())
['culture_aligned', 'efficiency_only', 'undecided']
"""

from __future__ import annotations

import numbers
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from ._paired import check_alpha

__all__ = ["FamilySurrogate", "WinMap", "training_data"]

WINNERS = ("culture_aligned", "efficiency_only", "undecided")


def _default_estimator(seed: int):
    from sklearn.ensemble import HistGradientBoostingRegressor

    # early stopping off: the fit does not hold out a random validation share, so a refit on
    # the same data gives the same model
    return HistGradientBoostingRegressor(
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        early_stopping=False,
        random_state=seed,
    )


def _one_thread():
    """scikit-learn's OpenMP threads limited to one: the surrogate makes many small fits, which
    threads do not speed up but which oversubscribe a shared machine (a 1,000-row gradient
    boosting fit took 2 s on one thread and 66 s on two of a loaded two-core machine);
    parallelism comes from ``n_jobs`` over the refits instead."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _single_threaded(method):
    """Run ``method`` under :func:`_one_thread`."""
    import functools

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        with _one_thread():
            return method(*args, **kwargs)

    return wrapper


def _seed_ints(random_state, n: int) -> list[int]:
    """``n`` integer seeds for scikit-learn objects from an int, SeedSequence or Generator
    (SPEC 7: normalised once with numpy.random.default_rng)."""
    gen = np.random.default_rng(random_state)
    return [int(x) for x in gen.integers(0, 2**31 - 1, size=n)]


class FamilySurrogate(RegressorMixin, BaseEstimator):
    """A surrogate of the paired family difference: parameters and environment -> Δ outcome.

    Parameters
    ----------
    estimator : scikit-learn regressor, optional
        Default ``HistGradientBoostingRegressor(max_iter=100, learning_rate=0.1,
        max_leaf_nodes=15, min_samples_leaf=20, early_stopping=False)``; categorical columns (an ``environment``)
        are used natively (``categorical_features="from_dtype"``).
    cv : int or cross-validation splitter
        Folds for the cross-validated error. An int k gives ``GroupKFold(k)`` when ``fit`` gets
        groups (all replicates of a design point in the same fold, so the error is that of
        predicting a new design point) and ``KFold(k, shuffle=True)`` otherwise.
    n_bootstrap : int
        B, refits on bootstrap resamples of whole design points (of rows without groups) for
        the intervals of the mean prediction; 0 switches intervals (and the win map) off.
    alpha : float
        Default 1 − coverage of the intervals (0.1: 90% intervals).
    n_jobs : int, optional
        joblib workers for the refits and the folds.
    random_state : int, SeedSequence or Generator, optional
        Seeds the folds, the resamples and the estimator (SPEC 7).

    Attributes
    ----------
    estimator_ : regressor
        Fitted on all data.
    bootstrap_estimators_ : list
        The B refits.
    feature_names_in_ : numpy.ndarray
    n_features_in_ : int
    cv_scores_ : pandas.DataFrame
        One row per fold: ``fold, n_test, r2, rmse``.
    cv_r2_, cv_rmse_ : float
        Mean over folds of R² and RMSE on per-firm values (out of fold).
    cv_r2_se_, cv_rmse_se_ : float
        Their standard errors over folds (s/√k).
    oof_predictions_ : numpy.ndarray
        Out-of-fold predictions, one per row.
    r2_ceiling_ : float
        1 − (pooled within-group variance) / Var(y): the R² of the true mean function, which
        no surrogate can beat on per-firm values in expectation (NaN without groups).
    cv_r2_group_means_ : float
        R² of the out-of-fold predictions averaged per design point against the design
        points' mean responses (NaN without groups).
    X_fit_ : pandas.DataFrame
        The training features (for the grids of the plots).
    target_name_, unit_ : str
    """

    def __init__(
        self,
        estimator=None,
        *,
        cv=5,
        n_bootstrap: int = 50,
        alpha: float = 0.1,
        n_jobs: int | None = None,
        random_state=0,
    ):
        self.estimator = estimator
        self.cv = cv
        self.n_bootstrap = n_bootstrap
        self.alpha = alpha
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- fitting ------------------------------------------------------------------------------
    def _check_X(self, X, *, fitting: bool) -> pd.DataFrame:
        if not fitting:
            check_is_fitted(self, "estimator_")
        if isinstance(X, pd.DataFrame):
            frame = X.copy()
        else:
            arr = np.asarray(X)
            if arr.ndim != 2:
                raise ValueError(
                    f"X has shape {arr.shape}, must be 2-D (one row per firm, one column per feature)"
                )
            names = (
                list(self.feature_names_in_) if not fitting and hasattr(self, "feature_names_in_") else None
            )
            frame = pd.DataFrame(arr, columns=names or [f"x{j}" for j in range(arr.shape[1])])
        if frame.shape[1] == 0:
            raise ValueError("X has no columns, must have at least one feature")
        for col in frame.columns:
            if not isinstance(col, str):
                raise TypeError(f"X column {col!r}, must be named by a string")
            s = frame[col]
            if isinstance(s.dtype, pd.CategoricalDtype):
                continue
            if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                frame[col] = s.astype(float)
            else:  # a label such as the environment: a categorical feature
                frame[col] = s.astype("category")
            if frame[col].isna().any():
                raise ValueError(
                    f"X column {col!r} has {int(frame[col].isna().sum())} missing values, must have none"
                )
            if not isinstance(frame[col].dtype, pd.CategoricalDtype) and not np.isfinite(frame[col]).all():
                raise ValueError(f"X column {col!r} has non-finite values, must be finite")
        if not fitting:
            check_is_fitted(self, "estimator_")  # before anything reads what fit learned
            missing = [c for c in self.feature_names_in_ if c not in frame.columns]
            if missing:
                raise ValueError(f"X lacks feature(s) {missing}, must have the columns seen in fit")
            frame = frame[list(self.feature_names_in_)]
            for col, dtype in self._dtypes.items():
                if isinstance(dtype, pd.CategoricalDtype):
                    unknown = set(frame[col].astype(str)) - set(dtype.categories.astype(str))
                    if unknown:
                        raise ValueError(f"X column {col!r} has categories {sorted(unknown)} not seen in fit")
                    frame[col] = pd.Categorical(frame[col].astype(str), categories=dtype.categories)
        return frame

    @_single_threaded
    def fit(self, X, y, groups=None, *, unit: str | None = None):
        """Fit the surrogate, its cross-validated error and its bootstrap refits.

        Parameters
        ----------
        X : pandas.DataFrame or array of shape (n, k)
            One row per firm: parameter values and, e.g., the environment (a categorical).
        y : array of shape (n,)
            Each firm's paired difference (a Series' name labels the plots).
        groups : array of shape (n,), optional
            The design point of each row (replicates share one): folds and resamples keep a
            design point's rows together.
        unit : str, optional
            The unit of ``y``, for labels.

        Returns
        -------
        self
        """
        from sklearn.model_selection import GroupKFold, KFold, cross_validate

        if not isinstance(self.n_bootstrap, numbers.Integral) or isinstance(self.n_bootstrap, bool):
            raise TypeError(f"n_bootstrap == {self.n_bootstrap!r}, must be an integer >= 0")
        if self.n_bootstrap < 0:
            raise ValueError(f"n_bootstrap == {self.n_bootstrap!r}, must be >= 0 (0: no intervals)")
        check_alpha(self.alpha)
        frame = self._check_X(X, fitting=True)
        n = len(frame)
        target = np.asarray(y, dtype=float).ravel() if not isinstance(y, str) else None
        if target is None or target.shape != (n,):
            raise ValueError(
                f"y has {None if target is None else target.shape}, must be one number per row of X ({n})"
            )
        if not np.isfinite(target).all():
            raise ValueError(f"y has {int((~np.isfinite(target)).sum())} non-finite values, must be finite")
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (n,):
                raise ValueError(f"groups has shape {groups.shape}, must be ({n},): one design point per row")
            if pd.isna(groups).any():
                raise ValueError("groups has missing values, must name a design point for every row")
        units = np.unique(groups, return_inverse=True)[1] if groups is not None else np.arange(n)
        n_units = int(units.max()) + 1
        if isinstance(self.cv, numbers.Integral) and not isinstance(self.cv, bool):
            if self.cv < 2:
                raise ValueError(f"cv == {self.cv!r}, must be >= 2 folds")
            if n_units < self.cv:
                what = "design points (groups)" if groups is not None else "rows"
                raise ValueError(
                    f"cv == {self.cv} folds, but there are only {n_units} {what}; must be <= {n_units}"
                )
        seeds = _seed_ints(self.random_state, 3 + self.n_bootstrap)
        base = clone(self.estimator) if self.estimator is not None else _default_estimator(seeds[0])
        self._dtypes = dict(frame.dtypes)
        self.feature_names_in_ = np.array(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.X_fit_ = frame
        self.target_name_ = str(y.name) if isinstance(y, pd.Series) and y.name is not None else "response"
        self.unit_ = unit or ""
        self.estimator_ = clone(base).fit(frame, target)

        if isinstance(self.cv, numbers.Integral):
            splitter = (
                GroupKFold(int(self.cv), shuffle=True, random_state=seeds[1])
                if groups is not None
                else KFold(int(self.cv), shuffle=True, random_state=seeds[1])
            )
        else:
            splitter = self.cv
        cvr = cross_validate(
            clone(base),
            frame,
            target,
            groups=units if groups is not None else None,
            cv=splitter,
            scoring={"r2": "r2", "rmse": "neg_root_mean_squared_error"},
            return_estimator=True,
            return_indices=True,
            n_jobs=self.n_jobs,
        )
        oof = np.full(n, np.nan)
        for est, test in zip(cvr["estimator"], cvr["indices"]["test"]):
            oof[test] = est.predict(frame.iloc[test])
        k = len(cvr["test_r2"])
        self.cv_scores_ = pd.DataFrame(
            {
                "fold": np.arange(k),
                "n_test": [len(t) for t in cvr["indices"]["test"]],
                "r2": cvr["test_r2"],
                "rmse": -cvr["test_rmse"],
            }
        )
        self.cv_r2_ = float(self.cv_scores_.r2.mean())
        self.cv_rmse_ = float(self.cv_scores_.rmse.mean())
        self.cv_r2_se_ = float(self.cv_scores_.r2.std(ddof=1) / np.sqrt(k)) if k > 1 else float("nan")
        self.cv_rmse_se_ = float(self.cv_scores_.rmse.std(ddof=1) / np.sqrt(k)) if k > 1 else float("nan")
        self.oof_predictions_ = oof
        self.r2_ceiling_, self.cv_r2_group_means_ = float("nan"), float("nan")
        if groups is not None:
            g = pd.DataFrame({"u": units, "y": target, "p": oof})
            sizes = g.groupby("u").y.size()
            dof = int((sizes - 1).sum())
            if dof > 0:
                within = float(g.groupby("u").y.var(ddof=1).fillna(0.0).mul(sizes - 1).sum() / dof)
                self.r2_ceiling_ = 1.0 - within / float(target.var(ddof=1))
            means = g.groupby("u")[["y", "p"]].mean()
            total = float(((means.y - means.y.mean()) ** 2).sum())
            if total > 0 and len(means) > 1:
                self.cv_r2_group_means_ = 1.0 - float(((means.y - means.p) ** 2).sum()) / total
        self.bootstrap_estimators_ = self._bootstrap(base, frame, target, units, n_units, seeds[3:])
        return self

    def _bootstrap(self, base, frame, target, units, n_units, seeds) -> list:
        from joblib import Parallel, delayed

        if not seeds:
            return []
        rows_of = pd.Series(np.arange(len(units))).groupby(units).agg(list).to_dict()

        @_single_threaded
        def one(seed):
            rng = np.random.default_rng(seed)
            picked = rng.integers(0, n_units, size=n_units)
            idx = np.concatenate([rows_of[u] for u in picked])
            est = clone(base)
            if "random_state" in est.get_params():
                est.set_params(random_state=seed)
            return est.fit(frame.iloc[idx], target[idx])

        return Parallel(n_jobs=self.n_jobs)(delayed(one)(s) for s in seeds)

    # -- prediction -----------------------------------------------------------------------------
    @_single_threaded
    def predict(self, X) -> np.ndarray:
        """The predicted mean difference at each row of ``X``."""
        frame = self._check_X(X, fitting=False)
        return self.estimator_.predict(frame)

    def _draws(self, frame: pd.DataFrame) -> np.ndarray:
        if not self.bootstrap_estimators_:
            raise ValueError("n_bootstrap == 0: intervals need bootstrap refits; fit with n_bootstrap >= 20")
        return np.stack([est.predict(frame) for est in self.bootstrap_estimators_])

    @_single_threaded
    def predict_interval(self, X, alpha: float | None = None) -> pd.DataFrame:
        """The predicted mean difference with a bootstrap percentile interval.

        Returns
        -------
        pandas.DataFrame
            ``mean`` (the fit on all data), ``mean_ci_lower, mean_ci_upper`` (the α/2 and
            1 − α/2 quantiles of the B refits' predictions: a percentile bootstrap over design
            points) and ``winner`` (``culture_aligned`` if the interval is above 0,
            ``efficiency_only`` if below, else ``undecided``).
        """
        alpha = check_alpha(self.alpha if alpha is None else alpha)
        frame = self._check_X(X, fitting=False)
        draws = self._draws(frame)
        lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=0)
        out = pd.DataFrame({"mean": self.estimator_.predict(frame), "mean_ci_lower": lo, "mean_ci_upper": hi})
        out["winner"] = _winner(lo, hi)
        return out

    # -- reports ------------------------------------------------------------------------------
    def score_frame(self) -> pd.DataFrame:
        """The cross-validated error: one row per metric with ``mean`` (over folds) and
        ``mean_se`` (s/√k over folds), and the R² ceiling set by the replicate noise."""
        check_is_fitted(self, "estimator_")
        return pd.DataFrame(
            {
                "metric": ["r2", "rmse", "r2_group_means", "r2_ceiling"],
                "mean": [self.cv_r2_, self.cv_rmse_, self.cv_r2_group_means_, self.r2_ceiling_],
                "mean_se": [self.cv_r2_se_, self.cv_rmse_se_, np.nan, np.nan],
                "what": [
                    "R² of out-of-fold predictions of per-firm values",
                    f"RMSE of out-of-fold predictions of per-firm values ({self.unit_ or 'units of y'})",
                    "R² of out-of-fold predictions averaged per design point, against the points' means",
                    "1 − within-point variance / variance: the R² of the true mean function",
                ],
            }
        )

    @_single_threaded
    def partial_dependence_plot(self, features: Sequence[str] | None = None, *, alpha: float | None = None,
                                grid: int = 30, max_rows: int = 500):  # fmt: skip
        """Partial dependence of the predicted difference on each feature (the brute-force,
        kind ``average`` partial dependence of ``sklearn.inspection.partial_dependence``: the
        mean prediction over up to ``max_rows`` training rows with the feature set to each grid
        value, see :func:`_average_prediction`), with the band of the bootstrap refits' partial
        dependence (percentile, level 1 − α) and the training data's deciles as a rug. Returns
        the Figure."""
        from matplotlib.figure import Figure

        check_is_fitted(self, "estimator_")
        alpha = check_alpha(self.alpha if alpha is None else alpha)
        names = list(self.feature_names_in_) if features is None else list(features)
        for name in names:
            if name not in self.feature_names_in_:
                raise ValueError(f"features item {name!r}, must be one of {list(self.feature_names_in_)}")
        rows = self._rows_sample(max_rows)
        ncols = min(3, len(names))
        nrows = -(-len(names) // ncols)
        fig = Figure(figsize=(4.6 * ncols, 3.6 * nrows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
        for ax, name in zip(axes, names):
            categorical = isinstance(self._dtypes[name], pd.CategoricalDtype)
            values = self._grid(name, grid)
            curves = np.stack(
                [
                    _average_prediction(est, rows, {name: values})
                    for est in [self.estimator_, *self.bootstrap_estimators_]
                ]
            )
            x = np.arange(len(values)) if categorical else np.asarray(values, dtype=float)
            if len(curves) > 1:
                lo, hi = np.quantile(curves[1:], [alpha / 2, 1 - alpha / 2], axis=0)
                ax.fill_between(x, lo, hi, alpha=0.3, color="tab:blue", step="mid" if categorical else None,
                                label=f"{100 * (1 - alpha):g}% bootstrap band")  # fmt: skip
            ax.plot(
                x,
                curves[0],
                color="tab:blue",
                marker="o" if categorical else None,
                label="partial dependence",
            )
            ax.axhline(0.0, color="black", linewidth=0.8)
            if categorical:
                ax.set_xticks(x, [str(v) for v in values])
            else:
                deciles = np.quantile(self.X_fit_[name], np.linspace(0.1, 0.9, 9))
                ax.plot(deciles, np.full(9, ax.get_ylim()[0]), "|", color="black", markersize=10,
                        label="deciles of the data")  # fmt: skip
            ax.set_xlabel(name)
            ax.set_ylabel(f"predicted difference ({self.unit_})" if self.unit_ else "predicted difference")
            ax.set_title(f"Partial dependence on {name}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        for ax in axes[len(names) :]:
            ax.set_visible(False)
        fig.suptitle(
            textwrap.fill(f"Partial dependence of the surrogate's prediction: {self.target_name_}", 110),
            fontsize=11,
        )
        return fig

    def _rows_sample(self, max_rows: int) -> pd.DataFrame:
        if not isinstance(max_rows, numbers.Integral) or max_rows < 1:
            raise ValueError(f"max_rows == {max_rows!r}, must be an integer >= 1")
        if len(self.X_fit_) <= max_rows:
            return self.X_fit_
        rng = np.random.default_rng(_seed_ints(self.random_state, 3)[2])
        return self.X_fit_.iloc[np.sort(rng.choice(len(self.X_fit_), max_rows, replace=False))]

    def _grid(self, name: str, grid: int):
        if not isinstance(grid, numbers.Integral) or isinstance(grid, bool) or grid < 2:
            raise ValueError(f"grid == {grid!r}, must be an integer >= 2 (points per axis)")
        col = self.X_fit_[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            return np.asarray(col.cat.categories, dtype=object)
        return np.linspace(float(col.min()), float(col.max()), int(grid))

    @_single_threaded
    def win_map(
        self,
        x: str,
        y: str,
        *,
        grid: int = 40,
        at: Mapping[str, Any] | str | None = None,
        alpha: float | None = None,
        max_rows: int = 200,
    ) -> WinMap:
        """Where each family wins over two numeric features.

        Parameters
        ----------
        x, y : str
            Two numeric features; the grid spans their range in the training data.
        grid : int
            Points per axis.
        at : mapping, "average" or None
            The other features: None holds them at their training medians (the most frequent
            category for a categorical), a mapping sets some of them (``{"environment":
            "volatile"}``), and ``"average"`` averages the prediction over up to ``max_rows``
            training rows (a two-way partial dependence, ``sklearn.inspection``).
        alpha : float, optional
            1 − the intervals' coverage (default the estimator's ``alpha``).

        Returns
        -------
        WinMap
        """
        check_is_fitted(self, "estimator_")
        alpha = check_alpha(self.alpha if alpha is None else alpha)
        for name, what in ((x, "x"), (y, "y")):
            if name not in self.feature_names_in_:
                raise ValueError(f"{what} == {name!r}, must be one of {list(self.feature_names_in_)}")
            if isinstance(self._dtypes[name], pd.CategoricalDtype):
                raise ValueError(f"{what} == {name!r} is categorical, must be a numeric feature")
        if x == y:
            raise ValueError(f"x == y == {x!r}, must be two different features")
        xs, ys = self._grid(x, grid), self._grid(y, grid)
        models = [self.estimator_, *self.bootstrap_estimators_]
        if len(models) == 1:
            raise ValueError("n_bootstrap == 0: the map needs intervals; fit with n_bootstrap >= 20")
        if isinstance(at, str):
            if at != "average":
                raise ValueError(f"at == {at!r}, must be None, 'average' or a mapping of feature values")
            rows = self._rows_sample(max_rows)
            surfaces = np.stack([_average_prediction(est, rows, {x: xs, y: ys}) for est in models]).transpose(
                0, 2, 1
            )  # [model, y, x]
            fixed: dict[str, Any] = {"(others)": f"averaged over {len(rows)} training rows"}
        else:
            fixed = self._fixed_values(x, y, at)
            gx, gy = np.meshgrid(xs, ys)
            points = pd.DataFrame({x: gx.ravel(), y: gy.ravel()})
            for name, value in fixed.items():
                points[name] = value
            points = self._check_X(points, fitting=False)
            surfaces = np.stack([est.predict(points).reshape(len(ys), len(xs)) for est in models])
        lo, hi = np.quantile(surfaces[1:], [alpha / 2, 1 - alpha / 2], axis=0)
        points_seen = self.X_fit_[[x, y]].drop_duplicates().to_numpy()
        return WinMap(
            x=x,
            y=y,
            xs=xs,
            ys=ys,
            mean=surfaces[0],
            lower=lo,
            upper=hi,
            alpha=alpha,
            fixed=fixed,
            target_name=self.target_name_,
            unit=self.unit_,
            data=points_seen,
            n_bootstrap=len(models) - 1,
        )

    def _fixed_values(self, x: str, y: str, at) -> dict[str, Any]:
        if at is not None and not isinstance(at, Mapping):
            raise TypeError(f"at == {at!r}, must be None, 'average' or a mapping of feature values")
        at = dict(at or {})
        for name in at:
            if name not in self.feature_names_in_ or name in (x, y):
                others = [c for c in self.feature_names_in_ if c not in (x, y)]
                raise ValueError(f"at names {name!r}, must name other features: {others}")
        out = {}
        for name in self.feature_names_in_:
            if name in (x, y):
                continue
            col = self.X_fit_[name]
            if name in at:
                out[name] = at[name]
            elif isinstance(col.dtype, pd.CategoricalDtype):
                out[name] = col.mode().iloc[0]
            else:
                out[name] = float(col.median())
        return out


def _average_prediction(estimator, rows: pd.DataFrame, values: Mapping[str, Any]) -> np.ndarray:
    """The brute-force partial dependence of ``sklearn.inspection.partial_dependence``
    (``method="brute", kind="average"``) at the grid ``values`` of one or two features: for
    each grid point, the mean prediction over ``rows`` with those features set to it; an array
    of shape ``(len(v1),)`` or ``(len(v1), len(v2))``, as sklearn's ``["average"][0]``.

    The same numbers as sklearn's (tested against it), from one ``predict`` call on the stacked
    grid instead of one call per grid point: the surrogate draws the curves of all B bootstrap
    refits, and sklearn's per-point calls (about 10 ms of input checks each) made a 30-point
    curve of 50 refits take seconds per feature."""
    names = list(values)
    cells = np.meshgrid(*[np.arange(len(values[n])) for n in names], indexing="ij")
    n_cells, n_rows = cells[0].size, len(rows)
    stacked = rows.iloc[np.tile(np.arange(n_rows), n_cells)].reset_index(drop=True)
    for name, cell in zip(names, cells):
        grid_values = np.asarray(values[name], dtype=object)[np.repeat(cell.ravel(), n_rows)]
        dtype = rows[name].dtype
        if isinstance(dtype, pd.CategoricalDtype):
            stacked[name] = pd.Categorical(grid_values, dtype=dtype)
        else:
            stacked[name] = grid_values.astype(float)
    predictions = np.asarray(estimator.predict(stacked), dtype=float).reshape(n_cells, n_rows)
    return predictions.mean(axis=1).reshape(cells[0].shape)


def _winner(lo, hi) -> np.ndarray:
    lo, hi = np.asarray(lo), np.asarray(hi)
    return np.where(lo > 0, WINNERS[0], np.where(hi < 0, WINNERS[1], WINNERS[2]))


@dataclass(frozen=True)
class WinMap:
    """The predicted mean difference over a grid of two features, with its bootstrap interval
    and the winner of each cell (:meth:`FamilySurrogate.win_map`). Arrays are [y, x]."""

    x: str
    y: str
    xs: np.ndarray
    ys: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    alpha: float
    fixed: dict
    target_name: str
    unit: str
    data: np.ndarray
    n_bootstrap: int

    @property
    def winner(self) -> np.ndarray:
        """``culture_aligned`` where the interval is above 0, ``efficiency_only`` where below,
        ``undecided`` where it covers 0; [y, x]."""
        return _winner(self.lower, self.upper)

    def frame(self) -> pd.DataFrame:
        """One row per grid cell: the two features, ``mean, mean_ci_lower, mean_ci_upper`` and
        ``winner``."""
        gx, gy = np.meshgrid(self.xs, self.ys)
        return pd.DataFrame(
            {
                self.x: gx.ravel(),
                self.y: gy.ravel(),
                "mean": self.mean.ravel(),
                "mean_ci_lower": self.lower.ravel(),
                "mean_ci_upper": self.upper.ravel(),
                "winner": self.winner.ravel(),
            }
        )

    def shares(self) -> dict[str, float]:
        """The share of the grid's cells won by each family and undecided."""
        w = self.winner.ravel()
        return {k: float((w == k).mean()) for k in WINNERS}

    def plot(self, ax=None):
        """The map: the predicted difference in colour (blue: culture-aligned ahead, red:
        efficiency-only ahead), its zero line, the undecided cells hatched and the design
        points; returns the Figure (or ``ax``'s figure)."""
        from matplotlib.colors import TwoSlopeNorm
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        if ax is None:
            ax = Figure(figsize=(7.8, 5.8), layout="constrained").subplots()
        bound = float(np.max(np.abs(self.mean))) or 1.0
        mesh = ax.pcolormesh(
            self.xs, self.ys, self.mean, cmap="RdBu", norm=TwoSlopeNorm(0.0, -bound, bound), shading="nearest"
        )
        label = f"predicted {self.target_name}" + (f" ({self.unit})" if self.unit else "")
        ax.figure.colorbar(mesh, ax=ax, label=textwrap.fill(label, 60))
        undecided = (self.winner == WINNERS[2]).astype(float)
        if undecided.any():
            ax.contourf(self.xs, self.ys, undecided, levels=[0.5, 1.5], hatches=["///"], colors="none")
        if self.mean.min() < 0 < self.mean.max():
            ax.contour(self.xs, self.ys, self.mean, levels=[0.0], colors="black", linewidths=1.2)
        ax.scatter(self.data[:, 0], self.data[:, 1], s=6, color="black", alpha=0.35)
        level = f"{100 * (1 - self.alpha):g}%"
        shares = self.shares()
        handles = [
            Patch(color=mesh.cmap(0.85), label=f"culture-aligned ahead ({shares[WINNERS[0]]:.0%} of cells)"),
            Patch(color=mesh.cmap(0.15), label=f"efficiency-only ahead ({shares[WINNERS[1]]:.0%})"),
            Patch(facecolor="none", hatch="///", label=f"undecided: the {level} interval covers 0 ({shares[WINNERS[2]]:.0%})"),
            Line2D([], [], color="black", label="predicted difference = 0"),
            Line2D([], [], marker="o", linestyle="none", color="black", alpha=0.35, markersize=3, label="design points"),
        ]  # fmt: skip
        ax.legend(handles=handles, fontsize=7, loc="upper right", framealpha=0.9)
        ax.set_xlabel(self.x)
        ax.set_ylabel(self.y)
        fixed = ", ".join(
            f"{k} = {v:.3g}" if isinstance(v, float) else f"{k} = {v}" for k, v in self.fixed.items()
        )
        ax.set_title(
            textwrap.fill(f"Where each family wins: {self.target_name}", 80)
            + f"\n{level} bootstrap intervals (B = {self.n_bootstrap})"
            + (f"\n{textwrap.fill(fixed, 100)}" if fixed else ""),
            fontsize=9,
        )
        return ax.figure


# ----------------------------------------------------------------------------------------------
# training data
# ----------------------------------------------------------------------------------------------
_DESCRIPTORS = {
    "org",
    "period",
    "strategy",
    "family",
    "environment",
    "seed",
    "run_id",
    "engine",
    "scenario",
    "kpis_file",
    "_run",
}


def training_data(
    source,
    *,
    features: Sequence[str] | None = None,
    outcome: str = "cumulative_fcf",
    horizon: int | None = None,
) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """``(X, y, groups)`` for :meth:`FamilySurrogate.fit` from analysis or sweep results.

    Parameters
    ----------
    source : SensitivityResult, ComparisonResult, path or pandas.DataFrame
        - a :class:`orgsim.sensitivity.MorrisResult` or ``SobolResult``: one row per firm
          (design point × replicate), X its parameters, y its response, groups its design point;
        - a :class:`orgsim.ComparisonResult`: one row per environment and firm, y the family
          difference (culture-aligned − pooled efficiency-only) of ``outcome`` at ``horizon``,
          X the ``environment`` (categorical) and any config keys named in ``features``, read
          from each environment's config; groups the environment;
        - a sweep's results store (a directory, or its kpis table): runs that differ in an
          override column besides strategy, seed and environment (e.g. ``demand.cv``) are
          design points; each is paired by :func:`orgsim.comparison.from_store`, and X holds
          the override columns and the environment.
    features : list of str, optional
        The columns of X (default: all of the above).
    outcome, horizon
        For a comparison or a sweep: the outcome (:data:`orgsim.comparison.OUTCOMES`) and
        the horizon (default the run's last period).
    """
    from .comparison import ComparisonResult
    from .sensitivity import _SensitivityResult

    if isinstance(source, _SensitivityResult):
        frame = source.training_frame()
        names = list(source.names)
        y = pd.Series(frame["response"].to_numpy(), name=source.target.describe())
        X = frame[_features(names, features)]
        return X, y, frame["design_point"].to_numpy()
    if isinstance(source, ComparisonResult):
        table = _comparison_rows(
            source, outcome, horizon, [f for f in features or [] if f != "environment"], {}
        )
        keys = ["environment", *(features or [])]
        X = table[_features(keys, features)]
        return (
            X,
            pd.Series(table["response"].to_numpy(), name=_label(source, outcome)),
            table["design_point"].to_numpy(),
        )
    if isinstance(source, pd.DataFrame):
        kpis = source
    else:
        from . import results

        kpis = results.load(source, table="kpis")
    return _sweep_rows(kpis, features, outcome, horizon)


def _features(available: list[str], features) -> list[str]:
    if features is None:
        return available
    if isinstance(features, str) or not isinstance(features, Sequence):
        raise TypeError(f"features == {features!r}, must be a list of column names")
    bad = [f for f in features if f not in available]
    if bad:
        raise ValueError(f"features item {bad[0]!r}, must be one of {available}")
    return list(features)


def _label(res, outcome: str) -> str:
    from .comparison import DIAGNOSTICS, OUTCOMES

    spec = OUTCOMES.get(outcome) or DIAGNOSTICS.get(outcome)
    return f"Δ {spec.label if spec else outcome} (culture-aligned − efficiency-only)"


def _comparison_rows(res, outcome: str, horizon, keys: list[str], extra: Mapping[str, Any]) -> pd.DataFrame:
    """One row per environment and firm: the family difference, the config keys, ``extra``."""
    from .comparison import CULTURE, DIAGNOSTICS, EFFICIENCY, OUTCOMES

    if outcome not in OUTCOMES and outcome not in DIAGNOSTICS:
        raise ValueError(f"outcome == {outcome!r}, must be one of {[*OUTCOMES, *DIAGNOSTICS]}")
    h = res.horizons[-1] if horizon is None else horizon
    if h not in res.horizons:
        raise ValueError(f"horizon == {h!r}, must be one of the comparison's horizons {list(res.horizons)}")
    first = [s for s in res.strategies if res.families[s] == CULTURE]
    second = [s for s in res.strategies if res.families[s] == EFFICIENCY]
    if not first or not second:
        raise ValueError(
            f"the comparison has strategies {dict(res.families)}, must have culture-aligned and efficiency-only ones"
        )
    parts = []
    for env in res.environments:
        d = res.values(env, first, outcome, h) - res.values(env, second, outcome, h)
        row = {"environment": env, **extra}
        for key in keys:
            cfg = res.configs.get((env, first[0]))
            if cfg is None:
                raise ValueError(f"features item {key!r}: the comparison keeps no config to read it from")
            value: Any = cfg.to_dict()
            for part in key.split("."):
                if not isinstance(value, Mapping) or part not in value:
                    raise ValueError(f"features item {key!r} is not a config key")
                value = value[part]
            row[key] = value
        part = pd.DataFrame({**{k: [v] * len(d) for k, v in row.items()}})
        part["seed"] = res.firms["seed"].to_numpy()
        part["org"] = res.firms["org"].to_numpy()
        part["response"] = d
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    table["environment"] = pd.Categorical(table["environment"], categories=list(res.environments))
    group_keys = ["environment", *extra]
    table["design_point"] = table.groupby(group_keys, observed=True, sort=False).ngroup().to_numpy()
    return table


def _sweep_rows(
    kpis: pd.DataFrame, features, outcome: str, horizon
) -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    from .comparison import from_store
    from .simulation import KPI_COLUMNS, KPI_EXTRA

    if "environment" not in kpis.columns or "strategy" not in kpis.columns:
        raise ValueError(
            "the kpis table lacks 'strategy' or 'environment', must be a sweep's (orgsim -m ...)"
        )
    known = {*_DESCRIPTORS, *KPI_COLUMNS, *KPI_EXTRA}
    params = [c for c in kpis.columns if c not in known]
    if not params:
        raise ValueError(
            "the sweep varies no parameter besides strategy, seed and environment (no override column in its kpis "
            "table); sweep over a parameter too, e.g. orgsim -m strategy=bpo,bpm,bpo_bpm,bso demand.cv=0.1,0.2,0.3"
        )
    for col in params:
        if kpis[col].isna().any():
            raise ValueError(f"column {col!r} is missing in some runs, must be set in every run of the sweep")
    parts = []
    for values, sub in kpis.groupby(params, sort=True, observed=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        extra = {p: v.item() if hasattr(v, "item") else v for p, v in zip(params, values)}
        try:
            res = from_store(sub.drop(columns=params))
            parts.append(_comparison_rows(res, outcome, horizon, [], extra))
        except ValueError as exc:
            point = ", ".join(f"{k} = {v!r}" for k, v in extra.items())
            raise ValueError(f"the runs with {point}: {exc}") from None
    table = pd.concat(parts, ignore_index=True)
    table["environment"] = pd.Categorical(table["environment"].astype(str))
    table["design_point"] = (
        table.groupby(["environment", *params], observed=True, sort=False).ngroup().to_numpy()
    )
    cols = _features(["environment", *params], features)
    X = table[cols]
    y = pd.Series(table["response"].to_numpy(), name=_label(None, outcome))
    return X, y, table["design_point"].to_numpy()
