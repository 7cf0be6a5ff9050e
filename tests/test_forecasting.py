"""Tests of orgsim.forecasting: each forecaster against the library it wraps (or the textbook
formula), panels against loops over their series, n_jobs invariance, interval coverage on
simulated processes, the metrics against their definitions, backtests, and every bad input.

Series are short (at most a few hundred points) and panels small; n_jobs=1 unless the test is
about parallelism, so that worker start-up stays out of the suite's budget.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate, stats
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.exceptions import NotFittedError
from sklearn.metrics import mean_pinball_loss
from statsmodels.tsa.arima.model import ARIMA as SMARIMA
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.forecasting.theta import ThetaModel
from statsmodels.tsa.statespace.structural import UnobservedComponents as SMUC

import orgsim
from orgsim import forecasting as fc
from orgsim._forecast_base import child_rng, entropy_of

TIGHT = {"rtol": 1e-10, "atol": 1e-10}


@pytest.fixture(autouse=True)
def one_thread():
    """The library fits with one BLAS/OpenMP thread; so do the direct library calls here (the
    same numbers, and no oversubscribed threads on a busy machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def seasonal_series(n=60, m=4, seed=0, level=50.0):
    """A positive series with level, trend, a season of m and noise; index 1..n (periods)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = level + 0.1 * t + 3 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1, n)
    return pd.Series(y, index=pd.RangeIndex(1, n + 1, name="period"))


def long_panel(n_orgs=3, n=60, m=4):
    """A long frame like orgsim's KPIs: org, period, one value column."""
    parts = [
        pd.DataFrame(
            {"org": i, "period": np.arange(1, n + 1), "revenue": seasonal_series(n, m, seed=i).to_numpy()}
        )
        for i in range(n_orgs)
    ]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def kpis():
    """Two strategies of the default firm, 3 firms each, 40 weeks (numba engine)."""
    frames = []
    for s in ("bpo", "bso"):
        cfg = orgsim.compose([f"strategy={s}", "environment=stable", "n_orgs=3", "periods=40"])
        frames.append(orgsim.simulate(cfg, engine="numba").kpis)
    return pd.concat(frames, ignore_index=True)


# -- each wrapper equals the library called directly ------------------------------------------
def sf(model, y, steps, alpha):
    return model.fit(y).get_forecast(steps).summary_frame(alpha)


def test_ets_exact_intervals_equal_statsmodels():
    y = seasonal_series()
    kw = dict(error="add", trend="add", damped_trend=True, seasonal="add", seasonal_periods=4)
    got = sf(fc.ETS(**kw), y, 6, 0.1)
    res = ETSModel(y.reset_index(drop=True), **kw).fit(disp=False)
    pred = res.get_prediction(start=len(y), end=len(y) + 5)
    ref = pred.summary_frame(alpha=0.1)
    assert pred.method == "exact"
    np.testing.assert_allclose(got["mean"], ref["mean"], **TIGHT)
    np.testing.assert_allclose(got.mean_se, np.sqrt(pred.var_pred_mean), **TIGHT)
    np.testing.assert_allclose(got.mean_ci_lower, ref.pi_lower, **TIGHT)
    np.testing.assert_allclose(got.mean_ci_upper, ref.pi_upper, **TIGHT)
    np.testing.assert_allclose(fc.ETS(**kw).fit(y).forecast(6), res.forecast(6), **TIGHT)
    assert list(got.index) == list(range(61, 67))


def test_ets_simulated_intervals_equal_statsmodels_with_the_same_stream_and_are_reproducible():
    y = seasonal_series()
    kw = dict(error="mul", trend="add", seasonal="mul", seasonal_periods=4)
    model = fc.ETS(**kw, simulate_repetitions=200, seed=7).fit(y)
    got = model.get_forecast(5).summary_frame(0.2)
    res = ETSModel(y.reset_index(drop=True), **kw).fit(disp=False)
    # series 0 draws from the stream (normalised seed, 0): see orgsim._forecast_base.child_rng
    pred = res.get_prediction(
        start=len(y), end=len(y) + 4, simulate_repetitions=200, rng=child_rng(entropy_of(7), 0)
    )
    ref = pred.summary_frame(alpha=0.2)
    assert pred.method == "simulated"
    np.testing.assert_allclose(got["mean"], ref["mean"], **TIGHT)
    np.testing.assert_allclose(got.mean_ci_lower, ref.pi_lower, **TIGHT)
    np.testing.assert_allclose(got.mean_ci_upper, ref.pi_upper, **TIGHT)
    np.testing.assert_allclose(got.mean_se, np.sqrt(pred.var_pred_mean), **TIGHT)
    # reproducible: a second call, and a refit with the same seed, give the same numbers
    pd.testing.assert_frame_equal(model.get_forecast(5).summary_frame(0.2), got, check_exact=True)
    again = fc.ETS(**kw, simulate_repetitions=200, seed=7).fit(y).get_forecast(5).summary_frame(0.2)
    pd.testing.assert_frame_equal(again, got, check_exact=True)
    other = fc.ETS(**kw, simulate_repetitions=200, seed=8).fit(y).get_forecast(5).summary_frame(0.2)
    assert not np.allclose(other.mean_ci_upper, got.mean_ci_upper)


def test_arima_with_seasonal_order_equals_statsmodels():
    y = seasonal_series(n=80)
    kw = dict(order=(1, 0, 1), seasonal_order=(1, 0, 0, 4), trend="c")
    got = sf(fc.ARIMA(**kw), y, 8, 0.05)
    ref = SMARIMA(y.to_numpy(), **kw).fit().get_forecast(8).summary_frame(alpha=0.05)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-8, atol=1e-8)


def test_arima_defaults_are_statsmodels_defaults():
    import inspect

    sig = inspect.signature(SMARIMA)
    ours = fc.ARIMA().get_params()
    for name in ("order", "seasonal_order", "trend", "enforce_stationarity", "enforce_invertibility"):
        assert ours[name] == sig.parameters[name].default, name


def test_theta_equals_statsmodels():
    y = seasonal_series(n=48)
    got = sf(fc.Theta(period=4, theta=2.5), y, 6, 0.1)
    res = ThetaModel(y.to_numpy(), period=4).fit()
    pi = res.prediction_intervals(6, theta=2.5, alpha=0.1)
    np.testing.assert_allclose(got["mean"], res.forecast(6, theta=2.5), **TIGHT)
    np.testing.assert_allclose(got.mean_ci_lower, pi["lower"], **TIGHT)
    np.testing.assert_allclose(got.mean_ci_upper, pi["upper"], **TIGHT)
    # mean_se is the half-width over z: the same for every alpha
    se95 = fc.Theta(period=4, theta=2.5).fit(y).get_forecast(6).summary_frame(0.05).mean_se
    np.testing.assert_allclose(got.mean_se, se95, rtol=1e-9)


def test_unobserved_components_equals_statsmodels():
    y = seasonal_series(n=60)
    kw = dict(level="local level", freq_seasonal=[{"period": 4, "harmonics": 1}])
    got = sf(fc.UnobservedComponents(**kw), y, 5, 0.1)
    ref = SMUC(y.to_numpy(), **kw).fit(disp=False).get_forecast(5).summary_frame(alpha=0.1)
    np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-8, atol=1e-8)


def design_by_hand(y, periods, lags, m, horizon, origin=None):
    """GradientBoosting's documented features, written out row by row (independently of the code)."""
    rows, targets, bases = [], [], []
    n = len(y)
    t_min = max(lags, m - 1)
    for k in range(1, horizon + 1):
        origins = range(t_min, n - k) if origin is None else [origin]
        for t in origins:
            season_pos = (periods[t] + k) % m
            recent = [y[t] - y[t - j] for j in range(1, lags + 1)]
            analogue = y[t + k - m * int(np.ceil(k / m))] - y[t]
            window_mean = np.mean(y[t - m + 1 : t + 1]) - y[t]
            rows.append([k, season_pos, *recent, analogue, window_mean])
            targets.append(y[t + k] - y[t] if t + k < n else np.nan)
            bases.append(y[t])
    return np.array(rows), np.array(targets), np.array(bases)


GB_PARAMS = dict(lags=3, season_period=6, horizon=6, max_iter=20, min_samples_leaf=10, seed=3, n_jobs=1)


def hgb_like(model, **loss):
    p = model.get_params()
    keys = ("max_iter", "learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization")
    return HistGradientBoostingRegressor(**{k: p[k] for k in keys}, early_stopping=False, **loss)


def test_gradient_boosting_equals_sklearn_on_the_documented_features():
    y = seasonal_series(n=70, m=6)
    model = fc.GradientBoosting(**GB_PARAMS, interval="quantile").fit(y)
    x, target, _ = design_by_hand(y.to_numpy(), y.index.to_numpy(), 3, 6, 6)
    x_new, _, base = design_by_hand(y.to_numpy(), y.index.to_numpy(), 3, 6, 6, origin=len(y) - 1)
    mean_model = hgb_like(model).fit(x, target)
    np.testing.assert_allclose(model.forecast(6).to_numpy(), base + mean_model.predict(x_new), rtol=1e-12)
    frame = model.get_forecast(6).summary_frame(0.2)
    lo = hgb_like(model, loss="quantile", quantile=0.1).fit(x, target)
    hi = hgb_like(model, loss="quantile", quantile=0.9).fit(x, target)
    a, b = base + lo.predict(x_new), base + hi.predict(x_new)
    np.testing.assert_allclose(frame.mean_ci_lower, np.minimum(a, b), rtol=1e-12)
    np.testing.assert_allclose(frame.mean_ci_upper, np.maximum(a, b), rtol=1e-12)
    z = stats.norm.ppf(0.9)
    np.testing.assert_allclose(
        frame.mean_se, (frame.mean_ci_upper - frame.mean_ci_lower) / (2 * z), rtol=1e-12
    )


def test_gradient_boosting_conformal_offsets_follow_cqr():
    # conformalized quantile regression (Romano, Patterson & Candes 2019) with the last
    # calibration_size periods held out, written out by hand
    y = seasonal_series(n=80, m=6)
    c, alpha = 10, 0.2
    model = fc.GradientBoosting(**GB_PARAMS, calibration_size=c).fit(y)
    frame = model.get_forecast(6).summary_frame(alpha)
    v, periods = y.to_numpy(), y.index.to_numpy()
    x, target, _ = design_by_hand(v, periods, 3, 6, 6)
    x_new, _, base = design_by_hand(v, periods, 3, 6, 6, origin=len(v) - 1)
    x_early, t_early, _ = design_by_hand(v[:-c], periods[:-c], 3, 6, 6)
    lo = hgb_like(model, loss="quantile", quantile=alpha / 2).fit(x, target)
    hi = hgb_like(model, loss="quantile", quantile=1 - alpha / 2).fit(x, target)
    lo_c = hgb_like(model, loss="quantile", quantile=alpha / 2).fit(x_early, t_early)
    hi_c = hgb_like(model, loss="quantile", quantile=1 - alpha / 2).fit(x_early, t_early)
    cut, t_min = len(v) - c, 5  # max(lags, m - 1)
    lower, upper = [], []
    for k in range(1, 7):
        held = [t for t in range(t_min, len(v) - k) if t + k >= cut]  # targets in the last c periods
        rows = np.array([design_by_hand(v, periods, 3, 6, 6, origin=t)[0][k - 1] for t in held])
        truth = np.array([v[t + k] - v[t] for t in held])
        scores = np.sort(np.maximum(lo_c.predict(rows) - truth, truth - hi_c.predict(rows)))
        q = scores[min(int(np.ceil((len(held) + 1) * (1 - alpha))), len(held)) - 1]
        lower.append(base[k - 1] + lo.predict(x_new[k - 1 : k])[0] - q)
        upper.append(base[k - 1] + hi.predict(x_new[k - 1 : k])[0] + q)
    np.testing.assert_allclose(frame.mean_ci_lower, np.minimum(lower, upper), rtol=1e-12)
    np.testing.assert_allclose(frame.mean_ci_upper, np.maximum(lower, upper), rtol=1e-12)


def test_gradient_boosting_fits_quantile_models_once_per_alpha():
    y = seasonal_series(n=70, m=6)
    model = fc.GradientBoosting(season_period=6, max_iter=10, n_jobs=1).fit(y)
    state = model.states_[0]
    assert state.quantile_models == {}  # points need no quantile models
    res = model.get_forecast(4)
    first = res.summary_frame(0.1)
    fitted = state.quantile_models[0.1]
    model.get_forecast(4).summary_frame(0.1)
    assert state.quantile_models[0.1] is fitted  # cached
    res.summary_frame(0.3)
    assert set(state.quantile_models) == {0.1, 0.3}
    narrower = res.summary_frame(0.3)
    assert (narrower.mean_ci_upper - narrower.mean_ci_lower).mean() < (
        first.mean_ci_upper - first.mean_ci_lower
    ).mean()


@given(shift=st.integers(-5, 5).map(lambda k: 64.0 * k))
def test_gradient_boosting_forecasts_move_with_the_level(shift):
    # every feature and the target are differences: a shifted series gives shifted forecasts
    y = seasonal_series(n=50, m=4)
    a = fc.GradientBoosting(season_period=4, horizon=4, max_iter=10, n_jobs=1).fit(y).forecast(4)
    b = fc.GradientBoosting(season_period=4, horizon=4, max_iter=10, n_jobs=1).fit(y + shift).forecast(4)
    np.testing.assert_allclose(b.to_numpy(), a.to_numpy() + shift, atol=1e-8)


# -- baselines against the FPP3 formulas, by hand -------------------------------------------
def test_naive_by_hand():
    y = pd.Series([2.0, 4.0, 3.0, 7.0])
    f = fc.Naive().fit(y).get_forecast(3).summary_frame(0.05)
    # residuals 2, -1, 4: sigma^2 = 21 / (T - 1) = 7 (FPP3 eq. 5.1, K = 0, M = 1); sigma_h = sigma sqrt(h)
    np.testing.assert_allclose(f["mean"], [7.0, 7.0, 7.0])
    np.testing.assert_allclose(f.mean_se, np.sqrt(7.0 * np.array([1, 2, 3])))
    np.testing.assert_allclose(f.mean_ci_upper - f["mean"], 1.959963984540054 * f.mean_se)
    assert list(f.index) == [4, 5, 6]


def test_drift_by_hand():
    y = pd.Series([2.0, 4.0, 3.0, 7.0])
    f = fc.Drift().fit(y).get_forecast(2).summary_frame(0.05)
    # slope (7 - 2) / 3; residuals 1/3, -8/3, 7/3: sigma^2 = (114 / 9) / (T - 2) = 57 / 9 (K = 1, M = 1)
    np.testing.assert_allclose(f["mean"], [7 + 5 / 3, 7 + 10 / 3])
    h = np.array([1.0, 2.0])
    np.testing.assert_allclose(f.mean_se, np.sqrt(57 / 9 * h * (1 + h / 3)))


def test_seasonal_naive_by_hand():
    y = pd.Series([2.0, 4.0, 3.0, 7.0, 5.0])
    f = fc.SeasonalNaive(season_period=2).fit(y).get_forecast(3).summary_frame(0.05)
    # y_{T+h-m(k+1)}: y4, y5, y4; residuals y3-y1, y4-y2, y5-y3 = 1, 3, 2: sigma^2 = 14 / (T - m) = 14/3
    np.testing.assert_allclose(f["mean"], [7.0, 5.0, 7.0])
    np.testing.assert_allclose(f.mean_se, np.sqrt(14 / 3 * np.array([1, 1, 2])))


# -- panels -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "model",
    [
        fc.ETS(trend="add"),
        fc.Theta(period=4),
        fc.SeasonalNaive(season_period=4),
        # series i seeds its regressors from (seed, i); without early stopping they do not draw
        fc.GradientBoosting(season_period=4, max_iter=10, seed=1),
    ],
    ids=lambda m: type(m).__name__,
)
def test_panel_equals_a_loop_over_its_series(model):
    panel = long_panel()
    fitted = model.set_params(n_jobs=1).fit(panel)
    got = fitted.get_forecast(4).summary_frame(0.1)
    assert got.index.names == ["org", "period"]
    for i in range(3):
        y = panel[panel.org == i].set_index("period").revenue
        alone = type(model)(**model.get_params()).fit(y).get_forecast(4).summary_frame(0.1)
        np.testing.assert_allclose(got.xs(i, level="org").to_numpy(), alone.to_numpy(), **TIGHT)
    # the wide form gives the same numbers
    wide = panel.pivot(index="period", columns="org", values="revenue")
    again = type(model)(**model.get_params()).fit(wide).get_forecast(4).summary_frame(0.1)
    pd.testing.assert_frame_equal(again, got)


def test_kpi_table_with_strategies_is_keyed_by_strategy_and_org(kpis):
    model = fc.Naive(n_jobs=1).fit(kpis, kpi="revenue")
    f = model.forecast(3)
    assert f.index.names == ["strategy", "org", "period"]
    assert sorted(set(f.index.get_level_values("strategy"))) == ["bpo", "bso"]
    assert list(f.index.get_level_values("period")[:3]) == [41, 42, 43]
    last = kpis[kpis.period == 40].set_index(["strategy", "org"]).revenue
    np.testing.assert_allclose(f.xs(41, level="period").to_numpy(), last.sort_index().to_numpy())
    only = fc.Naive(n_jobs=1).fit(kpis, kpi="revenue", strategy="bso").forecast(1)
    assert set(only.index.get_level_values("strategy")) == {"bso"}


def test_pooled_is_the_per_period_group_mean(kpis):
    wide = fc.pooled(kpis, "cash", by="strategy")
    assert wide.columns.name == "strategy" and list(wide.columns) == ["bpo", "bso"]
    expected = kpis[kpis.strategy == "bso"].groupby("period").cash.mean()
    np.testing.assert_allclose(wide["bso"].to_numpy(), expected.to_numpy())
    f = fc.Drift(n_jobs=1).fit(wide).get_forecast(2).summary_frame()
    assert f.index.names == ["strategy", "period"]


def test_results_are_the_same_whatever_n_jobs():
    panel = long_panel(n_orgs=4)
    for model in (
        fc.ETS(
            error="mul", trend="add", seasonal="mul", seasonal_periods=4, simulate_repetitions=100, seed=5
        ),
        fc.GradientBoosting(season_period=4, max_iter=10, seed=5),
    ):
        one = model.set_params(n_jobs=1).fit(panel).get_forecast(4).summary_frame(0.1)
        two = clone_with(model, n_jobs=2).fit(panel).get_forecast(4).summary_frame(0.1)
        pd.testing.assert_frame_equal(one, two, check_exact=True)


def clone_with(model, **params):
    from sklearn.base import clone

    return clone(model).set_params(**params)


def test_a_failing_series_is_reported_not_dropped():
    panel = long_panel(n_orgs=3)
    panel.loc[panel.org == 1, "revenue"] -= 1000.0  # negative: a multiplicative error model cannot fit it
    with pytest.warns(fc.ForecastFitWarning, match=r"1 of 3 series failed to fit \(org 1\)"):
        model = fc.ETS(error="mul", n_jobs=1).fit(panel)
    assert list(model.fit_failures_.org) == [1] and list(model.fit_failures_.kind) == ["error"]
    f = model.get_forecast(3)
    frame = f.summary_frame()
    assert frame.xs(1, level="org").isna().all().all()
    assert frame.xs(0, level="org").notna().all().all()
    assert len(f.failures) == 1
    assert "Failed fits" in str(f.summary())


def test_non_convergence_is_reported_with_the_org_and_kept():
    panel = long_panel(n_orgs=3)
    panel.loc[panel.org == 2, "revenue"] = 1.0  # a constant series (a firm that never stocks out)
    with pytest.warns(fc.ForecastFitWarning, match=r"did not converge \(org 2\)"):
        model = fc.ETS(n_jobs=1).fit(panel)
    fails = model.fit_failures_
    assert list(fails.org) == [2] and list(fails.kind) == ["not converged"]
    assert model.forecast(2).notna().all()


class Broken(fc.Naive):
    """A forecaster whose every fit raises (the machinery's path for failures)."""

    def _fit_one(self, y, index, entropy, i):
        raise FloatingPointError(f"cannot fit a series of {len(y)}")


def test_every_series_failing_raises():
    with pytest.raises(
        RuntimeError, match=r"failed to fit every series \(3\); first, org 0: FloatingPointError"
    ):
        Broken(n_jobs=1).fit(long_panel())


def test_a_single_series_that_fails_raises_its_error():
    with pytest.raises(ValueError, match="strictly positive"):
        fc.ETS(error="mul").fit(seasonal_series() - 1000)


def test_date_indexes_carry_over_to_the_forecast():
    y = seasonal_series(n=36, m=12)
    y.index = pd.period_range("2020-01", periods=36, freq="M")
    f = fc.Theta().fit(y).forecast(3)  # the period (12) comes from the monthly frequency
    assert list(f.index.astype(str)) == ["2023-01", "2023-02", "2023-03"]


# -- interval coverage on simulated processes --------------------------------------------------
def test_naive_intervals_cover_a_gaussian_random_walk():
    # 400 independent random walks (T = 100, sigma = 1): the 95% naive interval is correct for a
    # random walk up to the estimation of sigma. Tolerance 4 Monte Carlo SE = 4 sqrt(.95 .05 / 400)
    rng = np.random.default_rng(11)
    n_series, t, h = 400, 100, 5
    paths = np.cumsum(rng.normal(size=(n_series, t + h)), axis=1)
    wide = pd.DataFrame(paths[:, :t].T, index=pd.RangeIndex(1, t + 1, name="period"))
    frame = fc.Naive(n_jobs=1).fit(wide).get_forecast(h).summary_frame(0.05)
    lo = frame.mean_ci_lower.to_numpy().reshape(n_series, h)
    hi = frame.mean_ci_upper.to_numpy().reshape(n_series, h)
    truth = paths[:, t:]
    tol = 4 * np.sqrt(0.95 * 0.05 / n_series)
    for step in (0, h - 1):  # each step on its own: the series are independent there
        cover = np.mean((truth[:, step] >= lo[:, step]) & (truth[:, step] <= hi[:, step]))
        assert abs(cover - 0.95) < tol, (step, cover)


@pytest.mark.slow
def test_arima_intervals_cover_a_gaussian_ar1():
    # 300 AR(1) series (phi = 0.6, T = 100): ARIMA(1,0,0) is the true model; its 90% interval at
    # h = 1 and h = 6 should cover 90% up to parameter-estimation error (under a point at this T).
    # Tolerance 4 Monte Carlo SE = 4 sqrt(.9 .1 / 300) = 0.069 (each step on its own: the series
    # are independent there)
    rng = np.random.default_rng(12)
    n_series, t, h, phi = 300, 100, 6, 0.6
    e = rng.normal(size=(n_series, t + h + 50))
    x = np.zeros_like(e)
    for j in range(1, e.shape[1]):
        x[:, j] = phi * x[:, j - 1] + e[:, j]
    x = x[:, 50:] + 10.0
    wide = pd.DataFrame(x[:, :t].T, index=pd.RangeIndex(1, t + 1, name="period"))
    tol = 4 * np.sqrt(0.9 * 0.1 / n_series)
    frame = fc.ARIMA(order=(1, 0, 0), n_jobs=1).fit(wide).get_forecast(h).summary_frame(0.1)
    lo = frame.mean_ci_lower.to_numpy().reshape(n_series, h)
    hi = frame.mean_ci_upper.to_numpy().reshape(n_series, h)
    for step in (0, h - 1):
        cover = np.mean((x[:, t + step] >= lo[:, step]) & (x[:, t + step] <= hi[:, step]))
        assert abs(cover - 0.9) < tol, (step, cover)


# -- metrics against their definitions ---------------------------------------------------------
def test_mase_by_hand():
    # scale (m = 1): mean |1|, |2|, |3| = 2; errors 1, 3: MASE = 2 / 2 = 1
    assert fc.mase([8, 10], [9, 7], y_train=[1, 2, 4, 7]) == pytest.approx(1.0)
    # m = 2: scale mean(|4 - 1|, |7 - 2|) = 4: MASE = 0.5
    assert fc.mase([8, 10], [9, 7], y_train=[1, 2, 4, 7], season_period=2) == pytest.approx(0.5)


def test_smape_by_hand():
    # 200 * 10 / 210 and 0/0 := 0
    assert fc.smape([100, 0], [110, 0]) == pytest.approx((2000 / 210) / 2)


@given(
    y=st.lists(st.floats(-100, 100), min_size=1, max_size=8),
    shift=st.floats(-5, 5),
    tau=st.floats(0.01, 0.99),
)
def test_pinball_loss_equals_sklearn(y, shift, tau):
    q = np.asarray(y) + shift
    assert fc.pinball_loss(y, q, tau) == pytest.approx(mean_pinball_loss(y, q, alpha=tau), abs=1e-9)


@given(y=st.floats(-10, 10), mu=st.floats(-10, 10), sd=st.floats(0.05, 5))
def test_crps_gaussian_equals_the_integral_of_its_definition(y, mu, sd):
    # CRPS(F, y) = integral of (F(x) - 1{x >= y})^2 dx
    def integrand(x):
        return (stats.norm.cdf(x, mu, sd) - (x >= y)) ** 2

    lo, hi = min(y, mu) - 12 * sd, max(y, mu) + 12 * sd
    left, _ = integrate.quad(integrand, lo, y, limit=200)
    right, _ = integrate.quad(integrand, y, hi, limit=200)
    assert fc.crps_gaussian([y], [mu], [sd])[0] == pytest.approx(left + right, rel=1e-6, abs=1e-8)


def test_crps_of_a_point_forecast_is_the_absolute_error():
    np.testing.assert_allclose(fc.crps_gaussian([3.0, -1.0], [1.0, 1.0], [0.0, 0.0]), [2.0, 2.0])


def test_interval_coverage_by_hand():
    assert fc.interval_coverage([1, 2, 3, 4], [0, 2.5, 3, 0], [2, 3, 3, 3]) == 0.5


# -- backtests --------------------------------------------------------------------------------
def test_backtest_scores_equal_their_definitions():
    rng = np.random.default_rng(3)
    y = pd.Series(np.cumsum(rng.normal(size=40)) + 20, index=pd.RangeIndex(1, 41))
    res = fc.backtest(fc.Naive(), y, horizon=4, initial=20, step=5, season_period=1, alpha=0.2, n_jobs=1)
    origins = [20, 25, 30, 35]
    table = res.summary_frame()
    row = table.loc[("Naive", "y")]
    assert row.n_origins == 4 and row.n_forecasts == 16 and row.nominal == pytest.approx(0.8)
    values = y.to_numpy()
    ase, sape, covered, crps, pin = [], [], [], [], []
    for o in origins:
        train, test = values[:o], values[o : o + 4]
        scale = np.mean(np.abs(np.diff(train)))
        sigma = np.sqrt(np.sum(np.diff(train) ** 2) / (o - 1))
        se = sigma * np.sqrt(np.arange(1, 5))
        f = np.full(4, train[-1])
        z = stats.norm.ppf(0.9)
        ase += list(np.abs(test - f) / scale)
        sape += list(200 * np.abs(test - f) / (np.abs(test) + np.abs(f)))
        covered += list((test >= f - z * se) & (test <= f + z * se))
        crps += list(fc.crps_gaussian(test, f, se))
        pin += list(
            0.5
            * (mean_pinball_loss_each(test, f - z * se, 0.1) + mean_pinball_loss_each(test, f + z * se, 0.9))
        )
    assert row.mase == pytest.approx(np.mean(ase))
    assert row.smape == pytest.approx(np.mean(sape))
    assert row.coverage == pytest.approx(np.mean(covered))
    assert row.crps == pytest.approx(np.mean(crps))
    assert row.pinball == pytest.approx(np.mean(pin))
    assert set(res.forecasts.origin) == {20, 25, 30, 35}  # the last training period


def mean_pinball_loss_each(y, q, tau):
    return np.array([mean_pinball_loss([a], [b], alpha=tau) for a, b in zip(y, q)])


def test_backtest_says_which_models_beat_seasonal_naive():
    rng = np.random.default_rng(4)
    t = np.arange(120)
    walk = pd.Series(np.cumsum(rng.normal(size=120)) + 50.0)  # naive is right, seasonal naive is not
    seasonal = pd.Series(10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.1, 120) + 50)
    models = {"Naive": fc.Naive(), "Drift": fc.Drift()}
    on_walk = fc.backtest(models, walk, horizon=6, initial=60, season_period=12, n_jobs=1)
    on_season = fc.backtest(models, seasonal, horizon=6, initial=60, season_period=12, n_jobs=1)
    assert on_walk.summary_frame().loc[("Naive", "y"), "beats_seasonal_naive"]
    assert not on_season.summary_frame().loc[("Naive", "y"), "beats_seasonal_naive"]
    assert not on_season.summary_frame().loc[("SeasonalNaive", "y"), "beats_seasonal_naive"]
    assert "Naive" in on_walk.beats_seasonal_naive().models.iloc[0]
    assert on_season.beats_seasonal_naive().models.iloc[0] == []


def test_backtest_per_kpi_and_strategy_with_plot_and_summary(kpis):
    res = fc.backtest(
        [fc.Naive(), fc.Drift()],
        kpis,
        kpi=["revenue", "cash"],
        horizon=4,
        initial=30,
        season_period=4,
        n_jobs=1,
    )
    table = res.summary_frame()
    assert table.index.names == ["model", "kpi", "strategy"]
    assert len(table) == 3 * 2 * 2  # models (with the reference) x KPIs x strategies
    assert (table.n_series == 3).all() and (table.n_origins == 2).all()  # origins 30, 34
    assert res.by_horizon().index.names == ["model", "kpi", "strategy", "h"]
    fig = res.plot()
    axes = fig.axes
    assert axes[0].get_xlabel() == "horizon h (periods)" and axes[0].get_title().startswith("revenue")
    assert axes[1].get_title() == "revenue: 95% interval coverage by horizon"
    assert axes[0].get_legend() is not None and axes[1].get_legend() is not None
    assert axes[1].get_ylabel() == "coverage (% of actuals inside)"
    text = str(res.summary())
    assert "Drift" in text and "beats_seasonal_naive" in text


def test_backtest_tables_pool_strategies_with_by(kpis):
    res = fc.backtest(fc.Naive(), kpis, kpi="revenue", horizon=4, initial=30, season_period=4, n_jobs=1)
    per = res.summary_frame()
    both = res.summary_frame(by=[])
    assert both.index.names == ["model", "kpi"]
    # org 0 under bpo and org 0 under bso are two series
    assert both.loc[("Naive", "revenue"), "n_series"] == 6
    assert both.loc[("Naive", "revenue"), "n_forecasts"] == per.xs("Naive", level="model").n_forecasts.sum()
    pooled_mase = np.average(
        per.xs("Naive", level="model").mase, weights=per.xs("Naive", level="model").n_mase
    )
    assert both.loc[("Naive", "revenue"), "mase"] == pytest.approx(pooled_mase)
    with pytest.raises(ValueError, match=r"by == \['org'\], must list levels among \['strategy'\]"):
        res.summary_frame(by=["org"])


def test_score_continuation_scores_against_the_simulated_continuation(kpis):
    res = fc.score_continuation(
        fc.Naive(), kpis, kpi="cash", train_periods=30, horizon=6, season_period=4, n_jobs=1
    )
    f = res.forecasts[res.forecasts.model == "Naive"]
    assert set(f.origin) == {30} and sorted(set(f.period)) == list(range(31, 37))
    truth = kpis.set_index(["strategy", "org", "period"]).cash
    keyed = f.set_index(["strategy", "org", "period"])
    np.testing.assert_allclose(keyed.actual.to_numpy(), truth.loc[keyed.index].to_numpy())
    last = truth.xs(30, level="period")
    np.testing.assert_allclose(keyed["mean"].to_numpy(), last.loc[keyed.index.droplevel("period")].to_numpy())
    assert (res.summary_frame().n_origins == 1).all()


def test_backtest_reports_failed_fits():
    panel = long_panel(n_orgs=2)
    panel.loc[panel.org == 1, "revenue"] -= 1000.0
    with pytest.warns(fc.ForecastFitWarning, match="fits failed"):
        res = fc.backtest(
            fc.ETS(error="mul"), panel, horizon=4, initial=40, step=10, season_period=4, n_jobs=1
        )
    fails = res.failures
    assert set(fails.org) == {1} and set(fails.model) == {"ETS"} and (fails.kind == "error").all()
    row = res.summary_frame().loc[("ETS", "revenue")]
    assert row.n_failed == len(fails) == 2  # two origins: 40, 50
    assert row.n_forecasts == 2 * 4  # org 0's forecasts only


# -- bad input ----------------------------------------------------------------------------------
def test_too_short_for_a_seasonal_model_names_the_numbers():
    y = seasonal_series(n=60, m=4)
    with pytest.raises(
        ValueError,
        match=r"y has 60 periods, too short for ETS\(.*\): it needs 104 \(2 seasonal periods of 52\)",
    ):
        fc.ETS(seasonal="add", seasonal_periods=52).fit(y)
    with pytest.raises(ValueError, match=r"org 0; 3 of 3 series.*needs 104"):
        fc.Theta(period=52).fit(long_panel())
    with pytest.raises(ValueError, match="needs 53"):
        fc.SeasonalNaive(season_period=52).fit(y.iloc[:40])


def test_heuristic_initialisation_needs_ten_plus_the_season():
    """statsmodels' heuristic initialisation needs 10 + 2 * (m // 2) observations (14 for m = 4),
    more than two seasons of 4: the check says so before statsmodels raises its own error."""
    model = fc.ETS(trend="add", seasonal="add", seasonal_periods=4, initialization_method="heuristic")
    with pytest.raises(
        ValueError, match=r"(?s)y has 13 periods, too short for ETS\(.*\): it needs 14 \(10 \+ 2"
    ):
        model.fit(seasonal_series(n=13, m=4))
    assert np.isfinite(model.fit(seasonal_series(n=14, m=4)).forecast(4)).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_name_the_position(bad):
    y = seasonal_series(n=30)
    y.iloc[6] = bad
    with pytest.raises(ValueError, match=rf"y has {bad} at period 7"):
        fc.Naive().fit(y)
    panel = long_panel()
    panel.loc[(panel.org == 2) & (panel.period == 11), "revenue"] = bad
    with pytest.raises(ValueError, match=rf"y\['revenue'\] \(org 2\) has {bad} at period 11"):
        fc.Naive().fit(panel)
    wide = panel.pivot(index="period", columns="org", values="revenue")
    with pytest.raises(ValueError, match=rf"\(org 2\) has {bad} at period 11"):
        fc.Naive().fit(wide)


def test_unknown_kpi_lists_the_allowed(kpis):
    with pytest.raises(ValueError, match=r"kpi == 'profit', must be one of \['demand', 'revenue'"):
        fc.Naive().fit(kpis, kpi="profit")
    with pytest.raises(ValueError, match=r"kpi == None, must name the value column: one of \['demand'"):
        fc.Naive().fit(kpis)
    with pytest.raises(ValueError, match="kpi == 'profit', must be one of"):
        fc.pooled(kpis, "profit")
    with pytest.raises(ValueError, match="kpi == 'profit', must be one of"):
        fc.backtest(fc.Naive(), kpis, kpi="profit", horizon=2)


def test_unknown_strategy_lists_the_allowed(kpis):
    with pytest.raises(ValueError, match=r"strategy == 'bsx', must be one of \['bpo', 'bso'\]"):
        fc.Naive().fit(kpis, kpi="cash", strategy="bsx")
    with pytest.raises(ValueError, match=r"strategy == 'bsx', must be one of \['bpo', 'bso'\]"):
        fc.pooled(kpis, "cash", strategy="bsx")
    with pytest.raises(ValueError, match="no 'strategy' column"):
        fc.Naive().fit(long_panel(), strategy="bso")


@pytest.mark.parametrize(
    ("steps", "error", "match"),
    [
        (0, ValueError, "steps == 0, must be an integer >= 1"),
        (-3, ValueError, "steps == -3, must be an integer >= 1"),
        (2.5, TypeError, "steps == 2.5, must be an integer >= 1"),
        (True, TypeError, "steps == True, must be an integer >= 1"),
        ("3", TypeError, "steps == '3', must be an integer >= 1"),
    ],
)
def test_bad_steps(steps, error, match):
    model = fc.Naive().fit(seasonal_series(n=20))
    with pytest.raises(error, match=match):
        model.forecast(steps)
    with pytest.raises(error, match=match):
        model.get_forecast(steps)


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.1, float("nan"), "0.05", True])
def test_bad_alpha(alpha):
    res = fc.Naive().fit(seasonal_series(n=20)).get_forecast(2)
    with pytest.raises(ValueError, match=r"alpha == .*, must be a number in \(0, 1\)"):
        res.summary_frame(alpha)
    with pytest.raises(ValueError, match=r"alpha == .*, must be a number in \(0, 1\)"):
        fc.backtest(fc.Naive(), seasonal_series(n=30), horizon=2, alpha=alpha)


@pytest.mark.parametrize("model", [fc.ETS(), fc.ARIMA(), fc.GradientBoosting(), fc.Naive()], ids=repr)
def test_forecast_before_fit(model):
    with pytest.raises(NotFittedError, match=r"is not fitted yet; call fit\(y\)"):
        model.forecast(3)
    with pytest.raises(NotFittedError, match="is not fitted yet"):
        model.get_forecast(3)


def test_duplicate_org_period_rows():
    panel = long_panel()
    dup = pd.concat([panel, panel[(panel.org == 1) & (panel.period == 9)]], ignore_index=True)
    with pytest.raises(ValueError, match=r"y \(org 1\) has duplicate rows for period 9"):
        fc.Naive().fit(dup)


def test_gaps_in_periods():
    panel = long_panel()
    gap = panel[~((panel.org == 2) & (panel.period == 15))]
    with pytest.raises(ValueError, match=r"y \(org 2\) has a gap in its periods: 14 is followed by 16"):
        fc.Naive().fit(gap)
    y = seasonal_series(n=20).drop(index=5)
    with pytest.raises(ValueError, match="y has a gap in its periods: 4 is followed by 6"):
        fc.Naive().fit(y)


def test_other_bad_arguments():
    y = seasonal_series(n=70, m=4)
    with pytest.raises(ValueError, match="season_period == None, must be an integer >= 1"):
        fc.SeasonalNaive().fit(y)
    with pytest.raises(ValueError, match="period == None, must be an integer >= 1 when deseasonalize=True"):
        fc.Theta().fit(y)
    with pytest.raises(ValueError, match="steps == 12, must be <= horizon == 4"):
        fc.GradientBoosting(season_period=4, max_iter=5).fit(y).forecast(12)
    with pytest.raises(ValueError, match=r"n_jobs == 0, must be None or a non-zero integer"):
        fc.Naive(n_jobs=0).fit(long_panel())
    with pytest.raises(ValueError, match="progress == 'yes', must be True, False or None"):
        fc.Naive(progress="yes").fit(long_panel())
    with pytest.raises(ValueError, match=r"by == \['firm'\]: no column 'firm'"):
        fc.Naive().fit(long_panel(), by=["firm"])
    with pytest.raises(ValueError, match="no 'org' column"):
        fc.Naive().fit(long_panel().drop(columns="org"))
    with pytest.raises(TypeError, match="must be a pandas Series"):
        fc.Naive().fit(y.to_numpy())
    with pytest.raises(ValueError, match=r"order == \(1, 0\), must be a tuple of 3"):
        fc.ARIMA(order=(1, 0)).fit(y)
    with pytest.raises(ValueError, match=r"initial == 20, too short for model 'ETS'"):
        fc.backtest(fc.ETS(seasonal="add", seasonal_periods=12), y, horizon=4, initial=20)
    with pytest.raises(ValueError, match="train_periods \\+ horizon == 60"):
        fc.score_continuation(
            fc.Naive(), long_panel(n=50), kpi="revenue", train_periods=48, horizon=12, season_period=4
        )
    with pytest.raises(ValueError, match="horizon == 0, must be an integer >= 1"):
        fc.backtest(fc.Naive(), y, horizon=0)


def test_progress_is_off_when_not_a_terminal(capsys):
    fc.Naive(n_jobs=1).fit(long_panel())
    assert "fitting" not in capsys.readouterr().err
    fc.Naive(n_jobs=1, progress=True).fit(long_panel())
    assert "fitting Naive" in capsys.readouterr().err


def test_forecast_results_render_text_and_html():
    res = fc.ETS(n_jobs=1).fit(long_panel()).get_forecast(3)
    text = str(res.summary())
    assert "ETS" in text and "mean_ci_lower" in text
    assert "<table" in res._repr_html_()
    assert res.predicted_mean.index.names == ["org", "period"]
    pd.testing.assert_series_equal(res.predicted_mean, fc.ETS(n_jobs=1).fit(long_panel()).forecast(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res.conf_int(0.1)


@pytest.mark.slow
def test_the_example_in_the_docs_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "forecasting.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/forecasting.md", "exec"), namespace)
    table = namespace["res"].summary_frame()
    assert set(table.index.get_level_values("kpi")) == {"revenue", "cash"}
    assert namespace["frame"].columns.tolist() == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]


@pytest.mark.parametrize("name", ["kind", "model", "mean"])
def test_backtest_refuses_a_key_column_named_like_one_of_its_own_columns(kpis, name):
    # a key called "kind" would duplicate the failures table's column (and "model" or "mean" would
    # overwrite the forecasts table's): refused by name instead of a table that cannot be read
    renamed = kpis.rename(columns={"org": name})
    with pytest.raises(ValueError, match=rf"series key column '{name}' has the name of a column"):
        fc.backtest(
            fc.Naive(), renamed, kpi="revenue", by=["strategy", name], horizon=4, initial=30,
            season_period=4, n_jobs=1,
        )  # fmt: skip
