"""Forecasting orgsim's KPIs: forecasters over firm series, backtests and scoring against the simulator.

Forecasters (one interface, scikit-learn-style estimators): :class:`ETS`, :class:`ARIMA`,
:class:`Theta`, :class:`UnobservedComponents` (statsmodels), :class:`GradientBoosting`
(scikit-learn), and the baselines :class:`Naive`, :class:`SeasonalNaive`, :class:`Drift`.
``fit(y)`` takes one firm's series, a panel of firms (long or wide DataFrame, or orgsim's KPI
table with ``kpi=``) or a group's pooled mean (:func:`pooled`); ``forecast(steps)`` gives points
and ``get_forecast(steps).summary_frame(alpha)`` statsmodels' columns ``mean, mean_se,
mean_ci_lower, mean_ci_upper``.

Evaluation: :func:`backtest` (rolling origin) and :func:`score_continuation` (fit on the first
T periods of simulated firms, score against the simulator's continuation of the same firms)
return a :class:`BacktestResult` with MASE, sMAPE, CRPS, pinball loss and interval coverage per
model, KPI and strategy. The metrics are public functions: :func:`mase`, :func:`smape`,
:func:`crps_gaussian`, :func:`pinball_loss`, :func:`interval_coverage`.

See ``docs/forecasting.md`` for the models, a runnable example and the validation figures.
"""

from __future__ import annotations

import warnings
from functools import cached_property, partial

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone

from ._forecast_base import (
    Forecaster,
    ForecastFitWarning,
    ForecastResults,
    Panel,
    as_panel,
    check_alpha,
    check_int,
    check_steps,
    entropy_of,
    failure_rows,
    key_label,
    reemit_warnings,
    run_tasks,
    select_strategy,
)
from ._forecast_models import (
    ARIMA,
    ETS,
    Drift,
    GradientBoosting,
    Naive,
    SeasonalNaive,
    Theta,
    UnobservedComponents,
)

__all__ = [
    "ARIMA",
    "ETS",
    "BacktestResult",
    "Drift",
    "ForecastFitWarning",
    "ForecastResults",
    "Forecaster",
    "GradientBoosting",
    "Naive",
    "SeasonalNaive",
    "Theta",
    "UnobservedComponents",
    "backtest",
    "crps_gaussian",
    "interval_coverage",
    "mase",
    "pinball_loss",
    "pooled",
    "score_continuation",
    "smape",
]

REFERENCE = "SeasonalNaive"


# -- a group's pooled mean -------------------------------------------------------------------
def pooled(kpis: pd.DataFrame, kpi: str, *, by: str = "family", strategy=None) -> pd.DataFrame:
    """The per-period mean of a KPI over the firms of each group, as a wide DataFrame.

    Parameters
    ----------
    kpis : pandas.DataFrame
        orgsim's KPI table (``orgsim.simulate(...).kpis``, or several concatenated), or any long
        frame with a ``period`` column.
    kpi : str
        The KPI column to average.
    by : str, default "family"
        The grouping column (``family``, ``strategy``, ...).
    strategy : str or list of str, optional
        Keep only these strategies first.

    Returns
    -------
    pandas.DataFrame
        Index ``period``, one column per group (the column axis is named ``by``), ready for a
        forecaster's ``fit``: the forecasts then have ``by`` as their key level.

    Examples
    --------
    >>> import orgsim
    >>> from orgsim.forecasting import pooled
    >>> kpis = orgsim.simulate(orgsim.compose(["n_orgs=3", "periods=20"]), engine="numba").kpis
    >>> pooled(kpis, "revenue").shape
    (20, 1)
    """
    if not isinstance(kpis, pd.DataFrame) or "period" not in kpis.columns:
        raise TypeError("kpis must be a long DataFrame with a 'period' column (orgsim.simulate(...).kpis)")
    if by not in kpis.columns:
        raise ValueError(f"by == {by!r}, must be a column of kpis: one of {list(kpis.columns)}")
    df = select_strategy(kpis, strategy, "kpis")
    allowed = [
        c
        for c in df.columns
        if c not in (by, "period", "org")
        and pd.api.types.is_numeric_dtype(df[c].dtype)
        and not pd.api.types.is_bool_dtype(df[c].dtype)
    ]
    if kpi not in allowed:
        raise ValueError(f"kpi == {kpi!r}, must be one of {allowed} (the numeric columns of kpis)")
    wide = df.groupby([by, "period"], observed=True)[kpi].mean().unstack(by)
    wide.columns = pd.Index([str(c) for c in wide.columns], name=by)
    return wide


# -- metrics ---------------------------------------------------------------------------------
def _arrays(*xs):
    return [np.asarray(x, dtype=np.float64) for x in xs]


def mase(y_true, y_pred, *, y_train, season_period: int = 1) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006, eq. for q_t).

    The forecast errors' mean absolute value over the in-sample MAE of the seasonal naive
    method, (1/(n−m)) Σ_{t=m+1..n} |y_t − y_{t−m}|, on ``y_train`` (m = ``season_period``;
    m = 1 is the naive method). Below 1: better than the in-sample seasonal naive forecast.
    """
    y_true, y_pred, y_train = _arrays(y_true, y_pred, y_train)
    m = check_int(season_period, "season_period", 1)
    if y_train.size <= m:
        raise ValueError(f"y_train has {y_train.size} values, must have more than season_period == {m}")
    scale = np.mean(np.abs(y_train[m:] - y_train[:-m]))
    return float(np.mean(np.abs(y_true - y_pred)) / scale)


def _sape(y_true, y_pred):
    den = np.abs(y_true) + np.abs(y_pred)
    num = 200.0 * np.abs(y_true - y_pred)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den == 0, 0.0, num / np.where(den == 0, 1.0, den))


def smape(y_true, y_pred) -> float:
    """Symmetric MAPE in percent, 200 |y − ŷ| / (|y| + |ŷ|) averaged (the M4 competition's).

    0/0 (both zero) counts as 0. Unstable for series that cross zero (free cash flow).
    """
    y_true, y_pred = _arrays(y_true, y_pred)
    return float(np.mean(_sape(y_true, y_pred)))


def _pinball(y_true, q_pred, quantile):
    d = y_true - q_pred
    return np.maximum(quantile * d, (quantile - 1.0) * d)


def pinball_loss(y_true, y_quantile, quantile: float) -> float:
    """Mean pinball (quantile) loss of the ``quantile``-level forecasts ``y_quantile``.

    max(τ (y − q), (τ − 1)(y − q)), averaged; τ = ``quantile`` in (0, 1).
    """
    y_true, y_quantile = _arrays(y_true, y_quantile)
    tau = check_alpha(quantile)
    return float(np.mean(_pinball(y_true, y_quantile, tau)))


def crps_gaussian(y_true, mean, sd) -> np.ndarray:
    """CRPS of normal forecasts N(mean, sd²) at the outcomes, elementwise (closed form).

    CRPS = σ [z (2Φ(z) − 1) + 2φ(z) − 1/√π] with z = (y − μ)/σ (Gneiting, Raftery, Westveld &
    Goldman 2005, Monthly Weather Review 133); σ = 0 gives |y − μ|. Same unit as y.
    """
    y, mu, sigma = _arrays(y_true, mean, sd)
    y, mu, sigma = np.broadcast_arrays(y, mu, sigma)
    out = np.abs(y - mu)
    pos = sigma > 0
    z = (y[pos] - mu[pos]) / sigma[pos]
    out = out.copy()
    out[pos] = sigma[pos] * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))
    return out


def interval_coverage(y_true, lower, upper) -> float:
    """Share of outcomes inside their interval, lower <= y <= upper."""
    y, lo, hi = _arrays(y_true, lower, upper)
    return float(np.mean((y >= lo) & (y <= hi)))


# -- backtests -------------------------------------------------------------------------------
def _named_models(model) -> dict[str, Forecaster]:
    if isinstance(model, Forecaster):
        items = [(type(model).__name__, model)]
    elif isinstance(model, dict):
        items = list(model.items())
    elif isinstance(model, list | tuple):
        items = [(type(m).__name__, m) for m in model]
    else:
        raise TypeError(
            f"model is a {type(model).__name__}, must be a forecaster, a list of forecasters or a dict "
            "{name: forecaster}"
        )
    out: dict[str, Forecaster] = {}
    for name, m in items:
        if not isinstance(m, Forecaster):
            raise TypeError(
                f"model {name!r} is a {type(m).__name__}, must be an orgsim.forecasting forecaster"
            )
        unique, k = str(name), 2
        while unique in out:
            unique, k = f"{name}#{k}", k + 1
        out[unique] = m
    if not out:
        raise ValueError("model is empty, must name at least one forecaster")
    return out


def _templates(models: dict[str, Forecaster], horizon: int, season_period: int) -> dict[str, Forecaster]:
    out = {}
    for name, m in models.items():
        t = clone(m)
        t._check_params()
        if isinstance(t, GradientBoosting) and t._horizon() < horizon:
            if t.horizon is not None:
                raise ValueError(
                    f"model {name!r} has horizon == {t.horizon}, must be >= the backtest's horizon == {horizon}"
                )
            t.set_params(horizon=horizon)
        out[name] = t
    if REFERENCE not in out:
        out[REFERENCE] = SeasonalNaive(season_period=season_period)
    return out


def _backtest_task(templates: list, alpha: float, steps: int, task):
    m, y, index, entropy, i = task
    est = templates[m]
    state = est._fit_one(y, index, entropy, i)
    return np.column_stack(est._predict_one(state, steps).frame(alpha))


def _kpi_list(kpi) -> list:
    if kpi is None or isinstance(kpi, str):
        return [kpi]
    out = list(kpi)
    if not out:
        raise ValueError("kpi == [], must name at least one KPI")
    return out


def backtest(
    model,
    y,
    *,
    horizon: int,
    initial: int | None = None,
    step: int | None = None,
    alpha: float = 0.05,
    season_period: int = 1,
    kpi=None,
    by=None,
    strategy=None,
    seed=None,
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> BacktestResult:
    """Rolling-origin evaluation of forecasters on one series or a panel.

    For each series and each origin o = ``initial``, ``initial + step``, ... (while
    ``o + horizon`` periods exist), every model is fitted on the first o periods and forecasts
    the next ``horizon``; the forecasts are scored against the held-out values.
    A :class:`SeasonalNaive` with ``season_period`` is added as the reference (named
    ``"SeasonalNaive"``) unless a model of that name is given.

    Parameters
    ----------
    model : forecaster, list of forecasters or dict {name: forecaster}
        Unfitted templates (each fit uses a fresh clone). A :class:`GradientBoosting` without
        a ``horizon`` is fitted for this backtest's ``horizon``.
    y : pandas.Series or pandas.DataFrame
        As for a forecaster's ``fit``; orgsim's KPI table with ``kpi=`` one or several KPIs.
    horizon : int
        Steps forecast from each origin.
    initial : int, optional
        Training periods at the first origin (default: the most any model needs, at least
        half the shortest series and more than ``season_period``).
    step : int, optional
        Periods between origins (default: ``horizon``, i.e. non-overlapping test windows).
    alpha : float, default 0.05
        Intervals are ``(1 - alpha)``; coverage is measured against that nominal level.
    season_period : int, default 1
        m of the MASE scale (the in-sample seasonal naive MAE, Hyndman & Koehler 2006) and of
        the reference model; 52 for orgsim's weekly KPIs.
    kpi : str or list of str, optional
        Value column(s) of a long DataFrame; each KPI is scored separately.
    by, strategy
        As for a forecaster's ``fit``. With a ``strategy`` key the tables have one row per
        strategy.
    seed : int, SeedSequence or Generator, optional
        Seeds the randomness of the fits (ETS simulated intervals, GradientBoosting); each fit
        draws from a stream of the seed and its position.
    n_jobs, progress
        Workers (default: every core) and progress bar (default: on a terminal).

    Returns
    -------
    BacktestResult
    """
    horizon = check_steps(horizon, "horizon")
    alpha = check_alpha(alpha)
    season_period = check_int(season_period, "season_period", 1, hint=" (52 for weekly data)")
    if step is not None:
        step = check_steps(step, "step")
    templates = _templates(_named_models(model), horizon, season_period)
    panels = {}
    for k in _kpi_list(kpi):
        panel = as_panel(y, kpi=k, by=by, strategy=strategy)
        panels[panel.kpi or "y"] = panel
    return _run_backtest(
        templates,
        panels,
        horizon=horizon,
        initial=initial,
        step=step or horizon,
        alpha=alpha,
        season_period=season_period,
        seed=seed,
        n_jobs=n_jobs,
        progress=progress,
    )


def score_continuation(
    model,
    kpis: pd.DataFrame,
    *,
    kpi,
    train_periods: int,
    horizon: int,
    alpha: float = 0.05,
    season_period: int = 52,
    by=None,
    strategy=None,
    seed=None,
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> BacktestResult:
    """Score forecasts against the simulator's own continuation of the same firms.

    Fits each model on periods 1..T (``train_periods``) of every firm in ``kpis`` (simulated to
    at least T + ``horizon``, e.g. ``orgsim.simulate(cfg.replace(periods=T + h))``), forecasts
    T+1..T+h and scores the forecasts against the simulated periods T+1..T+h: a backtest with
    one origin at T whose truth is the model's own future.

    Parameters
    ----------
    model, kpi, alpha, by, strategy, seed, n_jobs, progress
        As for :func:`backtest`.
    kpis : pandas.DataFrame
        orgsim's KPI table (or several concatenated, e.g. one per strategy).
    train_periods : int
        T, the periods the forecasters see.
    horizon : int
        h, the periods forecast and scored.
    season_period : int, default 52
        As for :func:`backtest` (orgsim's default scenario is weekly with 52-week seasons).

    Returns
    -------
    BacktestResult

    Examples
    --------
    >>> import orgsim
    >>> from orgsim import forecasting as fc
    >>> kpis = orgsim.simulate(orgsim.compose(["n_orgs=3", "periods=60"]), engine="numba").kpis
    >>> res = fc.score_continuation(fc.Naive(), kpis, kpi="revenue", train_periods=48, horizon=12,
    ...                             season_period=12, n_jobs=1)
    >>> res.summary_frame().loc[:, ["mase", "coverage", "n_series"]].shape
    (2, 3)
    """
    train_periods = check_steps(train_periods, "train_periods")
    horizon = check_steps(horizon, "horizon")
    alpha = check_alpha(alpha)
    season_period = check_int(season_period, "season_period", 1, hint=" (52 for weekly data)")
    if not isinstance(kpis, pd.DataFrame):
        raise TypeError(f"kpis is a {type(kpis).__name__}, must be orgsim's KPI table (a long DataFrame)")
    templates = _templates(_named_models(model), horizon, season_period)
    need = train_periods + horizon
    panels = {}
    for k in _kpi_list(kpi):
        panel = as_panel(kpis, kpi=k, by=by, strategy=strategy, what="kpis")
        lengths = [len(v) for v in panel.values]
        short = [i for i, n in enumerate(lengths) if n < need]
        if short:
            i = short[0]
            raise ValueError(
                f"kpis has {lengths[i]} periods for {panel.label(i)}, must have at least train_periods + horizon "
                f"== {need} (simulate the firms for {need} periods)"
            )
        panels[panel.kpi or "y"] = Panel(
            panel.names,
            panel.keys,
            [v[:need] for v in panel.values],
            [ix[:need] for ix in panel.index],
            panel.kpi,
        )
    return _run_backtest(
        templates,
        panels,
        horizon=horizon,
        initial=train_periods,
        step=horizon,
        alpha=alpha,
        season_period=season_period,
        seed=seed,
        n_jobs=n_jobs,
        progress=progress,
    )


#: the columns :func:`_run_backtest` writes beside the series keys (forecasts and failures tables):
#: a key column with one of these names would be overwritten or duplicated
_BACKTEST_COLUMNS = frozenset(
    {"model", "kpi", "origin", "h", "period", "actual", "mean", "mean_se", "mean_ci_lower", "mean_ci_upper",
     "scale", "kind", "message"}
)  # fmt: skip


def _run_backtest(templates, panels, *, horizon, initial, step, alpha, season_period, seed, n_jobs, progress):
    names = list(templates)
    models = [templates[n] for n in names]
    n_min = min(len(v) for p in panels.values() for v in p.values)
    needs = {n: t._min_length() for n, t in templates.items()}
    if initial is None:
        initial = max([need for need, _ in needs.values()] + [season_period + 1, n_min // 2])
    initial = check_steps(initial, "initial")
    for n, (need, why) in needs.items():
        if initial < need:
            raise ValueError(
                f"initial == {initial}, too short for model {n!r} ({templates[n]._describe()}): it needs {need} "
                f"training periods ({why})"
            )
    if initial <= season_period:
        raise ValueError(
            f"initial == {initial}, must be > season_period == {season_period} (the MASE scale needs a "
            "seasonal difference in the training window)"
        )
    key_names = list(next(iter(panels.values())).names)
    clash = sorted(set(key_names) & _BACKTEST_COLUMNS)
    if clash:
        raise ValueError(
            f"series key column {clash[0]!r} has the name of a column of the backtest tables; rename it "
            f"(reserved: {', '.join(sorted(_BACKTEST_COLUMNS))})"
        )
    entropy = entropy_of(seed)
    tasks, meta = [], []
    for kpi, panel in panels.items():
        for s, (values, index) in enumerate(zip(panel.values, panel.index)):
            origins = list(range(initial, len(values) - horizon + 1, step))
            if not origins:
                who = f" for {panel.label(s)}" if panel.is_panel else ""
                raise ValueError(
                    f"y has {len(values)} periods{who}, too short for a backtest with initial == {initial} and "
                    f"horizon == {horizon}: it needs initial + horizon == {initial + horizon}"
                )
            for o in origins:
                train = values[:o]
                m_ = season_period
                scale = float(np.mean(np.abs(train[m_:] - train[:-m_])))
                for j in range(len(models)):
                    tasks.append((j, train, index[:o], entropy, len(tasks)))
                    meta.append((kpi, s, o, scale))
    outcomes = run_tasks(
        partial(_backtest_task, models, alpha, horizon),
        tasks,
        n_jobs=n_jobs,
        progress=progress,
        desc="backtest fits",
    )
    labels = []
    rows, fails = [], []
    blocks = []
    for task, info, out in zip(tasks, meta, outcomes):
        j = task[0]
        kpi, s, o, scale = info
        panel = panels[kpi]
        index = panel.index[s]
        labels.append(
            f"{names[j]} on {kpi or 'y'}, {key_label(panel.names, panel.keys[s])}, origin {index[o - 1]}"
        )
        frame = out.value if out.error is None else np.full((horizon, 4), np.nan)
        blocks.append(frame)
        rows.append((names[j], kpi, *panel.keys[s], index[o - 1], o, s, scale))
    for i, kind, msg in failure_rows(outcomes):
        name, kpi, *rest = rows[i]
        keys = rest[: len(key_names)]
        fails.append((name, kpi, *keys, rows[i][2 + len(key_names)], kind, msg))
    reemit_warnings(outcomes, labels, "backtest")
    if fails:
        n_err = sum(1 for f in fails if f[-2] == "error")
        n_nc = len(fails) - n_err
        warnings.warn(
            f"backtest: {n_err} of {len(tasks)} fits failed (NaN forecasts, left out of the scores) and {n_nc} did "
            f"not converge (kept); first: {labels[failure_rows(outcomes)[0][0]]}: {fails[0][-1]}; see "
            "BacktestResult.failures",
            ForecastFitWarning,
            stacklevel=3,
        )
    # one row per forecast point
    n_tasks = len(tasks)
    h = np.tile(np.arange(1, horizon + 1), n_tasks)
    data = np.concatenate(blocks) if blocks else np.empty((0, 4))
    rep = np.repeat(np.arange(n_tasks), horizon)
    actual = np.empty(n_tasks * horizon)
    period = []
    for t, r in enumerate(rows):
        o, s = r[-3], r[-2]
        panel = panels[r[1]]
        actual[t * horizon : (t + 1) * horizon] = panel.values[s][o : o + horizon]
        period.append(np.asarray(panel.index[s][o : o + horizon]))
    cols = {
        "model": pd.Categorical(np.array([r[0] for r in rows], dtype=object)[rep], categories=names),
        "kpi": np.array([r[1] for r in rows], dtype=object)[rep],
    }
    for j, name in enumerate(key_names):
        cols[name] = pd.Index([r[2 + j] for r in rows], dtype=object)[rep].infer_objects()
    cols.update(
        origin=pd.Index([r[2 + len(key_names)] for r in rows], dtype=object)[rep].infer_objects(),
        h=h,
        period=np.concatenate(period) if period else np.empty(0),
        actual=actual,
        mean=data[:, 0],
        mean_se=data[:, 1],
        mean_ci_lower=data[:, 2],
        mean_ci_upper=data[:, 3],
        scale=np.array([r[-1] for r in rows])[rep] if rows else np.empty(0),
    )
    forecasts = pd.DataFrame(cols)
    failures = pd.DataFrame(fails, columns=["model", "kpi", *key_names, "origin", "kind", "message"])
    return BacktestResult(
        forecasts,
        failures,
        alpha=alpha,
        horizon=horizon,
        season_period=season_period,
        key_names=key_names,
        models={n: templates[n]._describe() for n in names},
    )


class BacktestResult:
    """Scores of forecasts against held-out (or simulated) truth.

    Attributes
    ----------
    forecasts : pandas.DataFrame
        One row per model, KPI, series, origin and step ``h``: the forecast (``mean``,
        ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper``), the ``actual`` value and the MASE
        ``scale`` of its training window.
    failures : pandas.DataFrame
        Fits that raised (``kind == "error"``: NaN forecasts, left out of the scores) or did not
        converge (kept), with the message.
    alpha, horizon, season_period
        The backtest's settings; intervals are ``(1 - alpha)``.
    models : dict
        Each model's name and full specification.
    """

    def __init__(self, forecasts, failures, *, alpha, horizon, season_period, key_names, models):
        self.forecasts = forecasts
        self.failures = failures
        self.alpha = alpha
        self.horizon = horizon
        self.season_period = season_period
        self.key_names = list(key_names)
        self.models = models
        # rows of the tables: model, KPI and every key level but the series' own (e.g. strategy)
        self.group_names = self.key_names[:-1]

    @cached_property
    def scored(self) -> pd.DataFrame:
        """:attr:`forecasts` with each point's scores: ``ase`` (|error| / scale), ``sape``,
        ``crps`` (normal N(mean, mean_se²)), ``pinball`` (mean of the two bounds' pinball
        losses at α/2 and 1 − α/2) and ``covered``."""
        f = self.forecasts
        y = f.actual.to_numpy()
        mu = f["mean"].to_numpy()
        err = np.abs(y - mu)
        scale = f.scale.to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            ase = np.where(scale > 0, err / np.where(scale > 0, scale, 1.0), np.nan)
        ok = np.isfinite(mu)
        a = self.alpha
        lo, hi = f.mean_ci_lower.to_numpy(), f.mean_ci_upper.to_numpy()
        crps = np.full(len(f), np.nan)
        crps[ok] = crps_gaussian(y[ok], mu[ok], f.mean_se.to_numpy()[ok])
        out = f.assign(
            ase=np.where(ok, ase, np.nan),
            sape=np.where(ok, _sape(y, np.where(ok, mu, 0.0)), np.nan),
            crps=crps,
            pinball=np.where(ok, 0.5 * (_pinball(y, lo, a / 2) + _pinball(y, hi, 1 - a / 2)), np.nan),
            covered=np.where(ok, ((y >= lo) & (y <= hi)).astype(float), np.nan),
        )
        return out

    def _levels(self, by) -> list[str]:
        if by is None:
            return list(self.group_names)
        levels = [by] if isinstance(by, str) else list(by)
        bad = [b for b in levels if b not in self.group_names]
        if bad:
            raise ValueError(
                f"by == {by!r}, must list levels among {self.group_names} (or be [] to pool them)"
            )
        return levels

    def _table(self, extra: list[str], by=None) -> pd.DataFrame:
        s = self.scored
        levels = self._levels(by)
        series = ["model", "kpi", *self.key_names]
        groups = ["model", "kpi", *levels, *extra]
        metrics = ["ase", "sape", "crps", "pinball", "covered"]
        g = s.groupby(groups, observed=True, sort=False)
        table = g[metrics].mean().rename(columns={"ase": "mase", "sape": "smape", "covered": "coverage"})
        # standard errors across series: each series' mean over its origins and horizons is
        # one observation (firms are simulated independently; points of one series are not)
        per_series = s.groupby(list(dict.fromkeys(series + groups)), observed=True, sort=False)[
            ["ase", "covered"]
        ].mean()
        by_group = per_series.groupby(groups, observed=True, sort=False)
        n = by_group["covered"].count()
        table["mase_se"] = by_group["ase"].std(ddof=1) / np.sqrt(by_group["ase"].count())
        table["coverage_se"] = by_group["covered"].std(ddof=1) / np.sqrt(n)
        table["nominal"] = 1 - self.alpha
        table["n_series"] = n
        table["n_origins"] = g["origin"].nunique()
        table["n_forecasts"] = g["covered"].count()
        table["n_mase"] = g["ase"].count()
        keys = table.index.droplevel(extra) if extra else table.index
        for kind, col in (("error", "n_failed"), ("not converged", "n_not_converged")):
            fail = self.failures[self.failures.kind == kind]
            counts = fail.groupby(["model", "kpi", *levels], observed=True).size()
            table[col] = counts.reindex(keys).fillna(0).astype(int).to_numpy() if len(fail) else 0
        return table

    def summary_frame(self, by=None) -> pd.DataFrame:
        """One row per model × KPI (× strategy): the scores, their standard errors and counts.

        ``by`` names the key levels kept as rows (default: every level but the series' own,
        e.g. ``strategy``); ``by=[]`` pools them.

        Columns: ``mase``, ``smape`` (percent), ``crps`` (KPI units), ``pinball`` (KPI units),
        ``coverage`` (share of actuals inside the interval) and ``nominal`` (1 − α);
        ``mase_se`` and ``coverage_se`` (standard errors across series); ``n_series``,
        ``n_origins``, ``n_forecasts``, ``n_mase`` (forecasts with a non-zero MASE scale; a
        training window whose seasonal differences are all 0 has none), ``n_failed``,
        ``n_not_converged``; ``mase_ratio`` (MASE over the reference's) and
        ``beats_seasonal_naive`` (lower MASE than the reference ``SeasonalNaive`` on the same
        KPI and strategy).
        """
        table = self._table([], by)
        ref = table.xs(REFERENCE, level="model")["mase"]
        inner = table.index.droplevel("model")
        ref_mase = ref.reindex(inner).to_numpy()
        table["mase_ratio"] = table["mase"].to_numpy() / ref_mase
        table["beats_seasonal_naive"] = table["mase"].to_numpy() < ref_mase
        return table

    def by_horizon(self, by=None) -> pd.DataFrame:
        """The scores per step ``h`` (rows model × KPI × strategy × h; ``by`` as in :meth:`summary_frame`)."""
        return self._table(["h"], by).drop(columns=["n_failed", "n_not_converged"], errors="ignore")

    def beats_seasonal_naive(self, by=None) -> pd.DataFrame:
        """Per KPI (and strategy): the models with a lower MASE than ``SeasonalNaive``."""
        t = self.summary_frame(by)
        levels = self._levels(by)
        rows = []
        for key, part in t.groupby(level=["kpi", *levels], observed=True, sort=False):
            key = key if isinstance(key, tuple) else (key,)
            beats = part["beats_seasonal_naive"].to_numpy()
            models = part.index.get_level_values("model")
            winners = [m for m, b in zip(models, beats) if b and m != REFERENCE]
            rows.append((*key, winners, float(part.xs(REFERENCE, level="model")["mase"].iloc[0])))
        return pd.DataFrame(rows, columns=["kpi", *levels, "models", "seasonal_naive_mase"])

    def plot(self, *, metric: str = "mase"):
        """Per KPI: ``metric`` by step and interval coverage by step, one line per model (and strategy).

        Returns a matplotlib ``Figure`` (built without pyplot, so no backend is switched; save
        it with ``fig.savefig``; JupyterLab shows it).
        """
        from matplotlib.figure import Figure

        from .plots import KPI_UNITS

        names = {"mase": "MASE (error / in-sample seasonal naive MAE)", "smape": "sMAPE (%)"}
        if metric not in (*names, "crps", "pinball"):
            raise ValueError(f"metric == {metric!r}, must be one of ['mase', 'smape', 'crps', 'pinball']")
        t = self.by_horizon().reset_index()
        kpis = list(dict.fromkeys(t.kpi))
        fig = Figure(figsize=(11, 3.2 * len(kpis)), layout="constrained")
        axes = fig.subplots(len(kpis), 2, squeeze=False)
        for r, kpi in enumerate(kpis):
            unit = KPI_UNITS.get(kpi, "KPI units")
            ylabel = names.get(metric) or f"{metric.upper() if metric == 'crps' else 'pinball loss'} ({unit})"
            part = t[t.kpi == kpi]
            for label, sub in part.groupby(["model", *self.group_names], observed=True, sort=False):
                name = " / ".join(str(x) for x in (label if isinstance(label, tuple) else (label,)))
                axes[r, 0].plot(sub.h, sub[metric], label=name)
                axes[r, 1].plot(sub.h, 100 * sub.coverage, label=name)
            axes[r, 1].axhline(100 * (1 - self.alpha), color="black", ls="--", lw=1, label="nominal")
            axes[r, 0].set(title=f"{kpi}: {metric} by horizon", xlabel="horizon h (periods)", ylabel=ylabel)
            axes[r, 1].set(
                title=f"{kpi}: {100 * (1 - self.alpha):g}% interval coverage by horizon",
                xlabel="horizon h (periods)",
                ylabel="coverage (% of actuals inside)",
            )
        axes[0, 0].legend(fontsize=7, loc="best")
        axes[0, 1].legend(fontsize=7, loc="lower left")
        return fig

    def summary(self):
        """A statsmodels ``Summary`` of :meth:`summary_frame` (text with ``print``, HTML in JupyterLab)."""
        from statsmodels.iolib.summary2 import Summary

        t = self.summary_frame()
        s = Summary()
        s.add_dict(
            {
                "Models": f"{len(self.models)}",
                "Horizon": f"{self.horizon}",
                "Interval": f"{100 * (1 - self.alpha):g}%",
                "Season period": f"{self.season_period}",
                "Forecasts": f"{len(self.forecasts)}",
                "Failed fits": f"{int((self.failures.kind == 'error').sum()) if len(self.failures) else 0}",
            },
            ncols=2,
        )
        shown = t[["mase", "smape", "crps", "coverage", "n_series", "n_origins", "beats_seasonal_naive"]]
        shown = shown.astype({"n_series": str, "n_origins": str, "beats_seasonal_naive": str})
        s.add_df(shown.reset_index(), index=False, float_format="%.4f")
        return s

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __repr__(self) -> str:
        return (
            f"<BacktestResult models={list(self.models)} horizon={self.horizon} "
            f"forecasts={len(self.forecasts)} alpha={self.alpha}>"
        )
