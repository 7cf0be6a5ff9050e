"""The forecasters of :mod:`orgsim.forecasting` (private: import them from there).

Each wraps one statsmodels or scikit-learn model, or computes a textbook baseline, on one
series; :class:`orgsim._forecast_base.Forecaster` gives them the panel interface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import clone

from ._forecast_base import (
    Forecaster,
    GaussianPrediction,
    check_int,
    child_rng,
    run_tasks,
    time_codes,
)

__all__ = [
    "ARIMA",
    "ETS",
    "Drift",
    "GradientBoosting",
    "Naive",
    "SeasonalNaive",
    "Theta",
    "UnobservedComponents",
]


# -- statsmodels models ----------------------------------------------------------------------
@dataclass(slots=True)
class _SMState:
    results: object
    rng_key: tuple = ()


class _SMPrediction:
    """A statsmodels prediction, read through statsmodels' own summary_frame."""

    __slots__ = ("mean", "pred")

    def __init__(self, pred, mean):
        self.pred = pred
        self.mean = np.asarray(mean, dtype=np.float64)

    def frame(self, alpha: float):
        f = self.pred.summary_frame(alpha=alpha)
        return (
            self.mean,
            f["mean_se"].to_numpy(np.float64),
            f["mean_ci_lower"].to_numpy(np.float64),
            f["mean_ci_upper"].to_numpy(np.float64),
        )


class ETS(Forecaster):
    """Exponential smoothing state space model: statsmodels ``ETSModel`` on each series.

    Parameters
    ----------
    error, trend, damped_trend, seasonal, seasonal_periods, initialization_method
        Passed to :class:`statsmodels.tsa.exponential_smoothing.ets.ETSModel` (its names and
        defaults). For long seasons (52 weeks) ``initialization_method="heuristic"`` is ~100x
        faster than ``"estimated"``, which optimises 51 initial seasonal states.
    maxiter : int, default 1000
        ``ETSModel.fit(maxiter=...)`` (statsmodels' default).
    simulate_repetitions : int, default 1000
        Paths simulated for the intervals of models without an analytic forecast variance.
    seed : int, SeedSequence or Generator, optional
        Seeds those simulations (series ``i`` draws from a stream of the seed and ``i``).
    n_jobs : int, optional
        Workers for a panel (default: every core).
    progress : bool, optional
        Progress bar for a panel (default: on a terminal).

    Notes
    -----
    Intervals are statsmodels': analytic (``var = mse * relative variance``, Hyndman et al.
    2008, Table 6.1) for the models with a closed form (ANN, AAN, AAdN, ANA, AAA, AAdA), else
    quantiles of simulated paths (``mean_se`` is then the paths' standard deviation and the
    interval need not be symmetric). ``mean`` is always statsmodels' point forecast.
    """

    def __init__(
        self,
        *,
        error: str = "add",
        trend: str | None = None,
        damped_trend: bool = False,
        seasonal: str | None = None,
        seasonal_periods: int | None = None,
        initialization_method: str = "estimated",
        maxiter: int = 1000,
        simulate_repetitions: int = 1000,
        seed=None,
        n_jobs: int | None = None,
        progress: bool | None = None,
    ):
        self.error = error
        self.trend = trend
        self.damped_trend = damped_trend
        self.seasonal = seasonal
        self.seasonal_periods = seasonal_periods
        self.initialization_method = initialization_method
        self.maxiter = maxiter
        self.simulate_repetitions = simulate_repetitions
        self.seed = seed
        self.n_jobs = n_jobs
        self.progress = progress

    def _check_params(self) -> None:
        check_int(self.simulate_repetitions, "simulate_repetitions", 1)
        check_int(self.maxiter, "maxiter", 1)
        if self.seasonal is not None:
            check_int(
                self.seasonal_periods, "seasonal_periods", 2, hint=f" when seasonal == {self.seasonal!r}"
            )

    def _min_length(self):
        if self.seasonal is not None:
            m = self.seasonal_periods
            heuristic = 10 + 2 * (m // 2)  # statsmodels' heuristic initialisation needs this many too
            if self.initialization_method == "heuristic" and heuristic > 2 * m:
                return (
                    heuristic,
                    f"10 + 2 * (seasonal_periods // 2) for the heuristic initialisation, m = {m}",
                )
            return max(10, 2 * m), f"2 seasonal periods of {m}"
        return 10, "at least 10 observations"

    def _model(self, y):
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        # a pandas endog: statsmodels' ETS prediction results need one
        return ETSModel(
            pd.Series(y),
            error=self.error,
            trend=self.trend,
            damped_trend=self.damped_trend,
            seasonal=self.seasonal,
            seasonal_periods=self.seasonal_periods,
            initialization_method=self.initialization_method,
        )

    def _check_spec(self, y, index):
        self._model(y)

    def _fit_one(self, y, index, entropy, i):
        return _SMState(self._model(y).fit(disp=False, maxiter=self.maxiter), (entropy, i))

    def _point_one(self, state, steps):
        return state.results.forecast(steps).to_numpy(np.float64)

    def _predict_one(self, state, steps):
        res = state.results
        n = res.nobs
        pred = res.get_prediction(
            start=n,
            end=n + steps - 1,
            simulate_repetitions=self.simulate_repetitions,
            rng=child_rng(*state.rng_key),
        )
        return _ETSPrediction(pred)


class _ETSPrediction:
    __slots__ = ("mean", "pred")

    def __init__(self, pred):
        self.pred = pred
        self.mean = np.asarray(pred.predicted_mean, dtype=np.float64)

    def frame(self, alpha: float):
        f = self.pred.summary_frame(alpha=alpha)
        se = np.sqrt(np.asarray(self.pred.var_pred_mean, dtype=np.float64))
        return self.mean, se, f["pi_lower"].to_numpy(np.float64), f["pi_upper"].to_numpy(np.float64)


def _max_lag(order) -> int:
    if isinstance(order, int | np.integer):
        return int(order)
    order = list(order)
    return int(max(order)) if order else 0


class _StateSpace(Forecaster):
    """A statsmodels state-space model fitted to each series (``self._model(y)`` builds it):
    points from the results' ``forecast``, intervals from ``get_forecast``."""

    _fit_kwargs: dict = {}  # noqa: RUF012 - read only

    def _check_spec(self, y, index):
        self._model(y)

    def _fit_one(self, y, index, entropy, i):
        return _SMState(self._model(y).fit(**self._fit_kwargs))

    def _point_one(self, state, steps):
        return np.asarray(state.results.forecast(steps), dtype=np.float64)

    def _predict_one(self, state, steps):
        pred = state.results.get_forecast(steps)
        return _SMPrediction(pred, pred.predicted_mean)


class ARIMA(_StateSpace):
    """(Seasonal) ARIMA: statsmodels ``statsmodels.tsa.arima.model.ARIMA`` on each series.

    Parameters
    ----------
    order, seasonal_order, trend, enforce_stationarity, enforce_invertibility, concentrate_scale, trend_offset
        Passed to statsmodels' ``ARIMA`` (its names and defaults: ``order=(0, 0, 0)``,
        ``seasonal_order=(0, 0, 0, 0)``, ``trend=None``, i.e. a constant without integration).
    n_jobs, progress
        As for :class:`ETS`.

    Notes
    -----
    Fitted by statsmodels' default (state space maximum likelihood); forecasts and intervals are
    ``results.get_forecast(steps).summary_frame(alpha)`` unchanged. A seasonal order with
    ``s = 52`` makes a 52-lag state vector: fits take tens of seconds per series.
    """

    def __init__(
        self,
        *,
        order=(0, 0, 0),
        seasonal_order=(0, 0, 0, 0),
        trend=None,
        enforce_stationarity: bool = True,
        enforce_invertibility: bool = True,
        concentrate_scale: bool = False,
        trend_offset: int = 1,
        n_jobs: int | None = None,
        progress: bool | None = None,
    ):
        self.order = order
        self.seasonal_order = seasonal_order
        self.trend = trend
        self.enforce_stationarity = enforce_stationarity
        self.enforce_invertibility = enforce_invertibility
        self.concentrate_scale = concentrate_scale
        self.trend_offset = trend_offset
        self.n_jobs = n_jobs
        self.progress = progress

    seed = None  # no randomness; the interface reads self.seed

    def _check_params(self) -> None:
        for name, value, size in (("order", self.order, 3), ("seasonal_order", self.seasonal_order, 4)):
            if not isinstance(value, tuple | list) or len(value) != size:
                raise ValueError(
                    f"{name} == {value!r}, must be a tuple of {size} (statsmodels' ARIMA {name})"
                )

    def _min_length(self):
        p, d, q = self.order
        pp, dd, qq, s = self.seasonal_order
        p, q, pp, qq = (_max_lag(x) for x in (p, q, pp, qq))
        need = int(d) + int(dd) * int(s) + max(p + pp * s, q + qq * s, 1) + 2
        why = f"d + D*s + max(p + P*s, q + Q*s, 1) + 2 for order={self.order}, seasonal_order={self.seasonal_order}"
        if s and s > 1 and (pp or dd or qq):
            if 2 * s > need:
                need, why = 2 * int(s), f"2 seasonal periods of {s}"
        return need, why

    def _model(self, y):
        from statsmodels.tsa.arima.model import ARIMA as _SMARIMA

        return _SMARIMA(
            y,
            order=self.order,
            seasonal_order=self.seasonal_order,
            trend=self.trend,
            enforce_stationarity=self.enforce_stationarity,
            enforce_invertibility=self.enforce_invertibility,
            concentrate_scale=self.concentrate_scale,
            trend_offset=self.trend_offset,
        )


class UnobservedComponents(_StateSpace):
    """Structural time series: statsmodels ``UnobservedComponents`` on each series.

    Parameters
    ----------
    level, trend, seasonal, freq_seasonal, cycle, autoregressive, irregular, stochastic_level, stochastic_trend, stochastic_seasonal, stochastic_freq_seasonal, stochastic_cycle, damped_cycle, cycle_period_bounds, use_exact_diffuse
        Passed to :class:`statsmodels.tsa.statespace.structural.UnobservedComponents` (its
        names and defaults); e.g. ``level="local level"``, or
        ``freq_seasonal=[{"period": 52, "harmonics": 2}]`` for a cheap weekly season.
    n_jobs, progress
        As for :class:`ETS`.
    """

    def __init__(
        self,
        *,
        level=False,
        trend: bool = False,
        seasonal: int | None = None,
        freq_seasonal=None,
        cycle: bool = False,
        autoregressive: int | None = None,
        irregular: bool = False,
        stochastic_level: bool = False,
        stochastic_trend: bool = False,
        stochastic_seasonal: bool = True,
        stochastic_freq_seasonal=None,
        stochastic_cycle: bool = False,
        damped_cycle: bool = False,
        cycle_period_bounds=None,
        use_exact_diffuse: bool = False,
        n_jobs: int | None = None,
        progress: bool | None = None,
    ):
        self.level = level
        self.trend = trend
        self.seasonal = seasonal
        self.freq_seasonal = freq_seasonal
        self.cycle = cycle
        self.autoregressive = autoregressive
        self.irregular = irregular
        self.stochastic_level = stochastic_level
        self.stochastic_trend = stochastic_trend
        self.stochastic_seasonal = stochastic_seasonal
        self.stochastic_freq_seasonal = stochastic_freq_seasonal
        self.stochastic_cycle = stochastic_cycle
        self.damped_cycle = damped_cycle
        self.cycle_period_bounds = cycle_period_bounds
        self.use_exact_diffuse = use_exact_diffuse
        self.n_jobs = n_jobs
        self.progress = progress

    seed = None

    def _check_params(self) -> None:
        check_int(self.seasonal, "seasonal", 2, none_ok=True, hint=" (the seasonal period) or None")

    def _min_length(self):
        periods = [self.seasonal or 0] + [int(f.get("period", 0)) for f in (self.freq_seasonal or [])]
        m = max(periods)
        if m > 1:
            return 2 * m, f"2 seasonal periods of {m}"
        return 3, "at least 3 observations"

    def _model(self, y):
        from statsmodels.tsa.statespace.structural import UnobservedComponents as _UC

        return _UC(
            y,
            level=self.level,
            trend=self.trend,
            seasonal=self.seasonal,
            freq_seasonal=self.freq_seasonal,
            cycle=self.cycle,
            autoregressive=self.autoregressive,
            irregular=self.irregular,
            stochastic_level=self.stochastic_level,
            stochastic_trend=self.stochastic_trend,
            stochastic_seasonal=self.stochastic_seasonal,
            stochastic_freq_seasonal=self.stochastic_freq_seasonal,
            stochastic_cycle=self.stochastic_cycle,
            damped_cycle=self.damped_cycle,
            cycle_period_bounds=self.cycle_period_bounds,
            use_exact_diffuse=self.use_exact_diffuse,
        )

    _fit_kwargs = {"disp": False}  # noqa: RUF012 - read only


class Theta(Forecaster):
    """The Theta method: statsmodels ``ThetaModel`` on each series.

    Parameters
    ----------
    period, deseasonalize, use_test, method, difference
        Passed to :class:`statsmodels.tsa.forecasting.theta.ThetaModel`. ``period`` is
        required when ``deseasonalize`` (orgsim's integer periods carry no frequency to infer
        it from; a DatetimeIndex/PeriodIndex with a frequency does).
    theta : float, default 2
        The θ of ``forecast`` and ``prediction_intervals``.
    use_mle : bool, default False
        ``ThetaModel.fit(use_mle=...)``.
    n_jobs, progress
        As for :class:`ETS`.

    Notes
    -----
    Intervals are statsmodels' ``prediction_intervals(steps, theta, alpha)`` (normal, variance
    σ²(1 + (h-1)(1 + (α-1)²))); ``mean_se`` is their half-width over z_{1-α/2}, which does not
    depend on α.
    """

    def __init__(
        self,
        *,
        period: int | None = None,
        deseasonalize: bool = True,
        use_test: bool = True,
        method: str = "auto",
        difference: bool = False,
        theta: float = 2.0,
        use_mle: bool = False,
        n_jobs: int | None = None,
        progress: bool | None = None,
    ):
        self.period = period
        self.deseasonalize = deseasonalize
        self.use_test = use_test
        self.method = method
        self.difference = difference
        self.theta = theta
        self.use_mle = use_mle
        self.n_jobs = n_jobs
        self.progress = progress

    seed = None

    def _check_params(self) -> None:
        check_int(self.period, "period", 1, none_ok=True)
        if isinstance(self.theta, bool) or not isinstance(self.theta, int | float) or not self.theta >= 1:
            raise ValueError(f"theta == {self.theta!r}, must be a number >= 1")

    def _period(self, index):
        if self.period is not None or not self.deseasonalize:
            return self.period
        freq = getattr(index, "freq", None)
        if freq is None:
            raise ValueError(
                "period == None, must be an integer >= 1 when deseasonalize=True: integer periods carry no "
                "frequency to infer it from (period=52 for orgsim's weekly KPIs), or pass deseasonalize=False"
            )
        from statsmodels.tsa.tsatools import freq_to_period

        return freq_to_period(freq)

    def _min_length(self):
        if self.deseasonalize and self.period and self.period > 1:
            return 2 * self.period, f"2 seasonal periods of {self.period}"
        return 4, "at least 4 observations"

    def _model(self, y, index):
        from statsmodels.tsa.forecasting.theta import ThetaModel

        return ThetaModel(
            y,
            period=self._period(index),
            deseasonalize=self.deseasonalize,
            use_test=self.use_test,
            method=self.method,
            difference=self.difference,
        )

    def _check_spec(self, y, index):
        self._model(y, index)

    def _fit_one(self, y, index, entropy, i):
        return _SMState(self._model(y, index).fit(use_mle=self.use_mle))

    def _point_one(self, state, steps):
        return state.results.forecast(steps, theta=self.theta).to_numpy(np.float64)

    def _predict_one(self, state, steps):
        return _ThetaPrediction(state.results, steps, self.theta)


class _ThetaPrediction:
    __slots__ = ("mean", "res", "steps", "theta")

    def __init__(self, res, steps, theta):
        self.res, self.steps, self.theta = res, steps, theta
        self.mean = res.forecast(steps, theta=theta).to_numpy(np.float64)

    def frame(self, alpha: float):
        pi = self.res.prediction_intervals(self.steps, theta=self.theta, alpha=alpha)
        lower, upper = pi["lower"].to_numpy(np.float64), pi["upper"].to_numpy(np.float64)
        se = (upper - lower) / (2 * stats.norm.ppf(1 - alpha / 2))
        return self.mean, se, lower, upper


# -- baselines (Hyndman & Athanasopoulos, FPP3 §5.2 and §5.5) --------------------------------
@dataclass(slots=True)
class _BaselineState:
    y: np.ndarray
    sigma: float  # residual standard deviation, sqrt(sum e² / (T - K - M)) (FPP3 eq. 5.1)


class _Baseline(Forecaster):
    seed = None

    def _check_params(self) -> None:
        pass

    def _predict_one(self, state, steps):
        h = np.arange(1, steps + 1, dtype=np.float64)
        return GaussianPrediction(self._points(state.y, h), state.sigma * self._spread(state, h))

    def _point_one(self, state, steps):
        return self._points(state.y, np.arange(1, steps + 1, dtype=np.float64))


class Naive(_Baseline):
    """Naive forecasts: the last value, ŷ_{T+h} = y_T (FPP3 §5.2).

    The h-step standard deviation is σ̂√h (FPP3 Table 5.2), with σ̂ from the residuals
    e_t = y_t − y_{t−1}: σ̂ = sqrt(Σe² / (T − 1)) (FPP3 eq. 5.1 with K = 0, M = 1).
    Intervals are normal: mean ± z_{1−α/2} σ̂_h.

    Parameters
    ----------
    n_jobs, progress
        As for :class:`ETS`.
    """

    def __init__(self, *, n_jobs: int | None = None, progress: bool | None = None):
        self.n_jobs = n_jobs
        self.progress = progress

    def _fit_one(self, y, index, entropy, i):
        e = np.diff(y)
        return _BaselineState(y.copy(), float(np.sqrt(np.sum(e**2) / (len(y) - 1))))

    def _points(self, y, h):
        return np.full(len(h), y[-1])

    def _spread(self, state, h):
        return np.sqrt(h)


class SeasonalNaive(_Baseline):
    """Seasonal naive forecasts: the value one season earlier, ŷ_{T+h} = y_{T+h−m(k+1)} (FPP3 §5.2).

    k = ⌊(h − 1)/m⌋; the h-step standard deviation is σ̂√(k + 1) (FPP3 Table 5.2), with σ̂ from
    e_t = y_t − y_{t−m}: σ̂ = sqrt(Σe² / (T − m)) (K = 0, M = m). ``season_period=1`` is
    :class:`Naive`.

    Parameters
    ----------
    season_period : int
        m, the periods in a season (52 for orgsim's weekly KPIs). Required.
    n_jobs, progress
        As for :class:`ETS`.
    """

    def __init__(
        self, *, season_period: int | None = None, n_jobs: int | None = None, progress: bool | None = None
    ):
        self.season_period = season_period
        self.n_jobs = n_jobs
        self.progress = progress

    def _check_params(self) -> None:
        check_int(self.season_period, "season_period", 1, hint=" (e.g. 52 for weekly data)")

    def _min_length(self):
        m = self.season_period
        return m + 1, f"one season of {m} plus one period to estimate the residual spread"

    def _fit_one(self, y, index, entropy, i):
        m = self.season_period
        e = y[m:] - y[:-m]
        return _BaselineState(y.copy(), float(np.sqrt(np.sum(e**2) / (len(y) - m))))

    def _points(self, y, h):
        m = self.season_period
        hi = h.astype(np.int64)
        return y[len(y) - m + (hi - 1) % m]

    def _spread(self, state, h):
        k = np.floor((h - 1) / self.season_period)
        return np.sqrt(k + 1)


class Drift(_Baseline):
    """The drift method: ŷ_{T+h} = y_T + h (y_T − y_1)/(T − 1) (FPP3 §5.2).

    The h-step standard deviation is σ̂ √(h (1 + h/(T − 1))) (FPP3 Table 5.2), with σ̂ from
    e_t = y_t − y_{t−1} − (y_T − y_1)/(T − 1): σ̂ = sqrt(Σe² / (T − 2)) (K = 1, M = 1).

    Parameters
    ----------
    n_jobs, progress
        As for :class:`ETS`.
    """

    def __init__(self, *, n_jobs: int | None = None, progress: bool | None = None):
        self.n_jobs = n_jobs
        self.progress = progress

    def _min_length(self):
        return 3, "3 observations: a slope and one degree of freedom for the residual spread"

    def _fit_one(self, y, index, entropy, i):
        t = len(y)
        slope = (y[-1] - y[0]) / (t - 1)
        e = np.diff(y) - slope
        return _BaselineState(y.copy(), float(np.sqrt(np.sum(e**2) / (t - 2))))

    def _points(self, y, h):
        return y[-1] + h * (y[-1] - y[0]) / (len(y) - 1)

    def _spread(self, state, h):
        return np.sqrt(h * (1 + h / (len(state.y) - 1)))


# -- gradient boosting -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Design:
    """Rows of the direct multi-horizon model: origin ``t`` × horizon ``k``, ordered by k then t."""

    x: np.ndarray  # features
    target: np.ndarray  # y[t+k] - y[t], NaN where t + k is past the series (forecast rows)
    base: np.ndarray  # y[t]
    k: np.ndarray
    t: np.ndarray


def gb_design(
    y: np.ndarray, codes: np.ndarray, *, lags: int, season_period: int | None, horizon: int, origins=None
) -> Design:
    """Features and targets of :class:`GradientBoosting` (the columns its docstring lists).

    ``origins`` defaults to every origin with a target at each horizon; pass
    ``[len(y) - 1]`` for the rows that forecast from the last period.
    """
    n = len(y)
    m = season_period or 0
    window = m if m else lags
    t_min = max(lags, m - 1, window - 1)
    cum = np.concatenate([[0.0], np.cumsum(y)])
    blocks, targets, bases, ks, ts_all = [], [], [], [], []
    for k in range(1, horizon + 1):
        ts = np.arange(t_min, n - k) if origins is None else np.asarray(origins, dtype=np.int64)
        if ts.size == 0:
            continue
        base = y[ts]
        cols = [np.full(ts.size, float(k))]
        if m:
            cols.append(((codes[ts] + k) % m).astype(np.float64))
        for j in range(1, lags + 1):
            cols.append(base - y[ts - j])
        if m:
            cols.append(y[ts + k - m * math.ceil(k / m)] - base)
        cols.append((cum[ts + 1] - cum[ts + 1 - window]) / window - base)
        blocks.append(np.column_stack(cols))
        tgt = np.full(ts.size, np.nan)
        inside = ts + k < n
        tgt[inside] = y[ts[inside] + k] - base[inside]
        targets.append(tgt)
        bases.append(base)
        ks.append(np.full(ts.size, k))
        ts_all.append(ts)
    return Design(*(np.concatenate(a) for a in (blocks, targets, bases, ks, ts_all)))


def conformal_offsets(scores: np.ndarray, k: np.ndarray, horizon: int, alpha: float) -> np.ndarray:
    """Per horizon, the ⌈(n+1)(1−α)⌉-th smallest of the n conformity scores (Romano et al. 2019).

    With fewer than 1/α − 1 scores that rank exceeds n and the largest score is used.
    """
    out = np.zeros(horizon)
    for h in range(1, horizon + 1):
        e = np.sort(scores[k == h])
        if e.size:
            rank = math.ceil((e.size + 1) * (1 - alpha))
            out[h - 1] = e[min(rank, e.size) - 1]
    return out


@dataclass(slots=True)
class _GBState:
    y: np.ndarray
    codes: np.ndarray
    mean_model: object
    rng_key: tuple
    quantile_models: dict = field(default_factory=dict)  # alpha -> (lower, upper, offsets per horizon)


INTERVALS = ("conformal", "quantile")


class GradientBoosting(Forecaster):
    """Direct multi-horizon gradient boosting (scikit-learn ``HistGradientBoostingRegressor``).

    One model per series for all horizons, the horizon being a feature ("horizon as a
    feature"): a row is a forecast origin t (a period of the training series) and a horizon
    k = 1..``horizon``; its target is the change y_{t+k} − y_t and its features are

    1. ``k``;
    2. the calendar position of the target period, (period_{t+k}) mod m ("week of year" for
       weekly data; only with ``season_period`` m);
    3. the recent changes y_t − y_{t−j}, j = 1..``lags``;
    4. the seasonal analogue y_{t+k−m⌈k/m⌉} − y_t, the value one season before the target
       (only with ``season_period``);
    5. the mean of the last m (or ``lags``) values minus y_t.

    Every feature and the target are differences, so a forecast moves with the series' level
    (trees do not extrapolate levels). The forecast from the last period T is
    y_T + the model's prediction; the point forecast (``mean``) comes from the squared-error
    model.

    Intervals: two models with quantile loss at α/2 and 1 − α/2 give the bounds, fitted when an
    interval at that α is first asked for and cached per α. Fitted in sample they are too
    narrow (the rows of one series overlap heavily: the same periods at many horizons), so by
    default (``interval="conformal"``) each bound is widened by a split-conformal offset per
    horizon (conformalized quantile regression, Romano, Patterson & Candès 2019): the two
    quantile models are also fitted on the series without its last ``calibration_size``
    periods, and for every horizon k the offset is the ⌈(n+1)(1−α)⌉-th smallest of the n
    scores max(q_lo − y, y − q_hi) of the held-out targets at that horizon. The offsets are
    added to the models fitted on the whole series (which loses the finite-sample guarantee;
    exchangeability does not hold for a time series anyway: coverage is what the validation in
    docs/forecasting.md measures). ``interval="quantile"`` uses the raw quantile models. The
    bounds are sorted (lower <= upper); ``mean_se`` is (upper − lower) / (2 z_{1−α/2}): the
    standard deviation of a normal distribution with that central interval, not a model
    standard error; it depends on α.

    Parameters
    ----------
    lags : int, default 8
        Recent changes used as features.
    season_period : int, optional
        m, the periods in a season (52 for orgsim's weekly KPIs).
    horizon : int, optional
        The longest forecast the model is fitted for (default: ``season_period``, else 10);
        ``forecast(steps)`` needs ``steps <= horizon``.
    interval : {"conformal", "quantile"}, default "conformal"
        How the interval bounds are made (see above).
    calibration_size : int, optional
        Periods held out to calibrate the conformal offsets (default: ``horizon``).
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization
        Passed to every ``HistGradientBoostingRegressor`` (early stopping is off, so fits are
        deterministic). The defaults are fewer iterations and fewer, larger leaves than
        scikit-learn's (50 iterations, 8 leaves of at least 100 rows): on orgsim's KPIs they gave
        lower MASE and better-covering intervals than scikit-learn's defaults, at a third of the
        cost.
    seed : int, SeedSequence or Generator, optional
        Seeds each regressor's ``random_state`` (series ``i`` from the seed and ``i``).
    n_jobs, progress
        As for :class:`ETS`.
    """

    def __init__(
        self,
        *,
        lags: int = 8,
        season_period: int | None = None,
        horizon: int | None = None,
        interval: str = "conformal",
        calibration_size: int | None = None,
        max_iter: int = 50,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 8,
        min_samples_leaf: int = 100,
        l2_regularization: float = 0.0,
        seed=None,
        n_jobs: int | None = None,
        progress: bool | None = None,
    ):
        self.lags = lags
        self.season_period = season_period
        self.horizon = horizon
        self.interval = interval
        self.calibration_size = calibration_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.seed = seed
        self.n_jobs = n_jobs
        self.progress = progress

    def _check_params(self) -> None:
        check_int(self.lags, "lags", 1)
        check_int(self.season_period, "season_period", 2, none_ok=True, hint=" or None")
        check_int(self.horizon, "horizon", 1, none_ok=True, hint=" or None")
        check_int(self.calibration_size, "calibration_size", 1, none_ok=True, hint=" or None")
        check_int(self.max_iter, "max_iter", 1)
        if self.interval not in INTERVALS:
            raise ValueError(f"interval == {self.interval!r}, must be one of {list(INTERVALS)}")

    def _horizon(self) -> int:
        return self.horizon if self.horizon is not None else (self.season_period or 10)

    def _calibration(self) -> int:
        if self.interval != "conformal":
            return 0
        return self.calibration_size if self.calibration_size is not None else self._horizon()

    def _t_min(self) -> int:
        m = self.season_period or 0
        return max(self.lags, m - 1)

    def _min_length(self):
        h, c = self._horizon(), self._calibration()
        need = self._t_min() + h + 10 + c
        why = f"{self._t_min()} periods of features, the horizon {h} and 10 training origins at that horizon"
        return need, why + (f", plus {c} held out to calibrate the interval" if c else "")

    def _check_steps(self, steps: int) -> None:
        if steps > self._horizon():
            raise ValueError(
                f"steps == {steps}, must be <= horizon == {self._horizon()} (the horizons this GradientBoosting "
                "was fitted for; refit with a larger horizon=)"
            )

    def _regressor(self, rng: np.random.Generator, **loss):
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=int(rng.integers(0, 2**31 - 1)),
            **loss,
        )

    def _design(self, y, codes, origins=None) -> Design:
        return gb_design(
            y,
            codes,
            lags=self.lags,
            season_period=self.season_period,
            horizon=self._horizon(),
            origins=origins,
        )

    def _fit_one(self, y, index, entropy, i):
        codes = time_codes(index)
        d = self._design(y, codes)
        model = self._regressor(child_rng(entropy, i, 0)).fit(d.x, d.target)
        return _GBState(y.copy(), codes, model, (entropy, i))

    def _quantile_pair(self, d: Design, alpha: float, stream: int, state: _GBState):
        entropy, i = state.rng_key
        key = round(alpha * 1e9)  # one stream per alpha
        lo = self._regressor(child_rng(entropy, i, stream, key), loss="quantile", quantile=alpha / 2)
        hi = self._regressor(child_rng(entropy, i, stream + 1, key), loss="quantile", quantile=1 - alpha / 2)
        return lo.fit(d.x, d.target), hi.fit(d.x, d.target)

    def _fit_quantiles(self, state: _GBState, alpha: float):
        full = self._design(state.y, state.codes)
        lo, hi = self._quantile_pair(full, alpha, 1, state)
        offsets = np.zeros(self._horizon())
        c = self._calibration()
        if c:
            cut = len(state.y) - c
            early = self._design(state.y[:cut], state.codes[:cut])
            lo_c, hi_c = self._quantile_pair(early, alpha, 3, state)
            held = full.t + full.k >= cut  # rows whose target lies in the held-out periods
            x, target = full.x[held], full.target[held]
            scores = np.maximum(lo_c.predict(x) - target, target - hi_c.predict(x))
            offsets = conformal_offsets(scores, full.k[held], self._horizon(), alpha)
        return lo, hi, offsets

    def _forecast_rows(self, state: _GBState, steps: int):
        d = self._design(state.y, state.codes, origins=[len(state.y) - 1])
        return d.x[:steps], d.base[:steps]

    def _point_one(self, state, steps):
        x, base = self._forecast_rows(state, steps)
        return base + state.mean_model.predict(x)

    def _predict_one(self, state, steps):
        return _GBPrediction(self, state, steps)

    def _prepare_alpha(self, states: list, alpha: float) -> None:
        todo = [i for i, s in enumerate(states) if s is not None and alpha not in s.quantile_models]
        if len(todo) <= 1:
            return
        outcomes = run_tasks(
            partial(_quantile_task, clone(self), alpha),
            [states[i] for i in todo],
            n_jobs=self.n_jobs,
            progress=self.progress,
            desc=f"quantile models (alpha={alpha:g})",
        )
        for i, o in zip(todo, outcomes):
            if o.error is not None:
                raise o.error
            states[i].quantile_models[alpha] = o.value


def _quantile_task(template: GradientBoosting, alpha: float, state: _GBState):
    return template._fit_quantiles(state, alpha)


class _GBPrediction:
    __slots__ = ("base", "mean", "model", "state", "steps", "x")

    def __init__(self, model: GradientBoosting, state: _GBState, steps: int):
        self.model, self.state, self.steps = model, state, steps
        self.x, self.base = model._forecast_rows(state, steps)
        self.mean = self.base + state.mean_model.predict(self.x)

    def frame(self, alpha: float):
        cache = self.state.quantile_models
        if alpha not in cache:  # called under one_thread() by ForecastResults.summary_frame
            cache[alpha] = self.model._fit_quantiles(self.state, alpha)
        lo_model, hi_model, offsets = cache[alpha]
        a = self.base + lo_model.predict(self.x) - offsets[: self.steps]
        b = self.base + hi_model.predict(self.x) + offsets[: self.steps]
        lower, upper = np.minimum(a, b), np.maximum(a, b)
        se = (upper - lower) / (2 * stats.norm.ppf(1 - alpha / 2))
        return self.mean, se, lower, upper
