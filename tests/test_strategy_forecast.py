"""Strategy forecasts (orgsim._strategy_forecast, ``ComparisonResult.forecast``).

Most tests use hand-built comparisons (KPI arrays made here, no simulation): the pooled series
are checked against NumPy, the forecasts against orgsim.forecasting and statsmodels called
directly on the same series, and the truth-check machinery (``evaluate``, ``winner``,
``ForecastCheck``) on cases whose answer is known. One small ``compare`` run checks the method
end to end, its summary and its figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from orgsim import forecasting as fc
from orgsim._strategy_forecast import default_model
from orgsim.comparison import ARRAY_KPIS, FAMILY_CONTRAST, ComparisonResult, ForecastCheck, compare

STRATEGIES = ["bpo", "bpm", "bso"]
FAMILIES = {"bpo": "efficiency_only", "bpm": "efficiency_only", "bso": "culture_aligned"}


@pytest.fixture(autouse=True)
def one_thread():
    """The library fits with one BLAS thread; so do the direct statsmodels calls here."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def hand_built(fcf: np.ndarray, *, strategies=STRATEGIES, families=FAMILIES, periods_per_year=4, **kpis):
    """A comparison from per-firm FCF ``fcf`` [environment, strategy, firm, period] (other KPIs
    zero unless given), solvent throughout."""
    arrays = {k: np.zeros(fcf.shape) for k in ARRAY_KPIS}
    arrays["free_cash_flow"] = np.asarray(fcf, dtype=float)
    arrays["solvent"] = np.ones(fcf.shape, dtype=bool)
    arrays.update(kpis)
    return ComparisonResult(
        arrays,
        environments=[f"env{i}" for i in range(fcf.shape[0])],
        strategies=strategies,
        families=families,
        periods_per_year=periods_per_year,
    )


def noisy(shape, seed=0):
    rng = np.random.default_rng(seed)
    _, s, _, t = shape
    season = 3 * np.sin(2 * np.pi * np.arange(t) / 4)
    return 50 + 0.2 * np.arange(t) + season + rng.normal(0, 2, shape) + np.arange(s)[None, :, None, None]


def test_pooled_series_are_the_arms_families_and_paired_difference_means():
    fcf = noisy((2, 3, 5, 30))
    res = hand_built(fcf, revenue=2 * fcf)
    f = res.forecast(
        ["free_cash_flow", "cumulative_fcf", "revenue"], steps=3, model=fc.Naive(), contrasts="all"
    )
    obs = f.observed().set_index(["environment", "kpi", "series", "kind", "period"]).value
    for e, env in enumerate(res.environments):
        for kpi, x in (("free_cash_flow", fcf[e]), ("cumulative_fcf", np.cumsum(fcf[e], axis=-1)),
                       ("revenue", 2 * fcf[e])):  # fmt: skip

            def got(series, kind, env=env, kpi=kpi):
                return obs.xs((env, kpi, series, kind), level=[0, 1, 2, 3]).to_numpy()

            for s, name in enumerate(STRATEGIES):
                np.testing.assert_allclose(got(name, "strategy"), x[s].mean(axis=0), rtol=1e-12)
            eff = (x[0].mean(axis=0) + x[1].mean(axis=0)) / 2  # equal weight per strategy
            np.testing.assert_allclose(got("efficiency_only", "family"), eff, rtol=1e-12)
            np.testing.assert_allclose(got("culture_aligned", "family"), x[2].mean(axis=0), rtol=1e-12)
            per_firm = x[2] - (x[0] + x[1]) / 2  # the paired difference of each firm
            np.testing.assert_allclose(got(FAMILY_CONTRAST, "difference"), per_firm.mean(axis=0), rtol=1e-12)
            np.testing.assert_allclose(got("bso − bpo", "difference"), (x[2] - x[0]).mean(axis=0), rtol=1e-12)
    # by default the difference series are the family contrast's only
    assert set(res.forecast(steps=2, model=fc.Naive()).series.query("kind == 'difference'").series) == {
        FAMILY_CONTRAST
    }


def test_forecasts_equal_the_forecaster_and_statsmodels_called_directly():
    fcf = noisy((1, 3, 4, 40), seed=1)
    res = hand_built(fcf)
    model = fc.ETS(trend="add", seasonal="add", seasonal_periods=4)
    f = res.forecast("free_cash_flow", steps=6, model=model, alpha=0.1)
    frame = f.summary_frame().set_index(["series", "kind", "period"])
    assert list(frame.columns[-4:]) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    for (name, kind), values in f.observed().groupby(["series", "kind"]):
        y = pd.Series(values.value.to_numpy(), index=pd.RangeIndex(1, 41, name="period"))
        direct = (
            fc.ETS(trend="add", seasonal="add", seasonal_periods=4).fit(y).get_forecast(6).summary_frame(0.1)
        )
        mine = frame.xs((name, kind), level=[0, 1])[["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]]
        np.testing.assert_allclose(mine.to_numpy(), direct.to_numpy(), rtol=1e-10, atol=1e-10)
        sm = ETSModel(pd.Series(y.to_numpy()), error="add", trend="add", seasonal="add", seasonal_periods=4)
        pred = sm.fit(disp=False).get_prediction(start=40, end=45).summary_frame(alpha=0.1)
        np.testing.assert_allclose(mine["mean"], pred["mean"], rtol=1e-8)
        np.testing.assert_allclose(mine.mean_ci_lower, pred["pi_lower"], rtol=1e-8)
        np.testing.assert_allclose(mine.mean_ci_upper, pred["pi_upper"], rtol=1e-8)
    assert model.get_params()["n_jobs"] is None and not hasattr(
        model, "states_"
    )  # the template is not touched


def test_other_alphas_and_the_default_model():
    fcf = noisy((1, 3, 4, 14))
    res = hand_built(fcf, periods_per_year=4)
    f = res.forecast(steps=4, model=fc.Drift(), alpha=0.2)
    wide, narrow = f.summary_frame(0.01), f.summary_frame()
    assert ((wide.mean_ci_upper - wide.mean_ci_lower) > (narrow.mean_ci_upper - narrow.mean_ci_lower)).all()
    np.testing.assert_array_equal(wide["mean"], narrow["mean"])
    # the default: ETS(A,A,A) on two seasons and the 10 + 2 * (m // 2) periods statsmodels' heuristic
    # initialisation needs (14 for m = 4; 104 for m = 52), else Holt's ETS(A,A,N)
    seasonal, holt = default_model(14, 4), default_model(13, 4)
    assert default_model(104, 52).seasonal == "add" and default_model(103, 52).seasonal is None
    assert (seasonal.trend, seasonal.seasonal, seasonal.seasonal_periods, seasonal.damped_trend) == (
        "add",
        "add",
        4,
        False,
    )
    assert (holt.trend, holt.seasonal) == ("add", None)
    assert "seasonal_periods=4" in res.forecast(steps=2).model


def test_identical_arms_give_a_difference_forecast_of_exactly_zero():
    fcf = noisy((1, 2, 3, 20))
    fcf[:, 1] = fcf[:, 0]  # a strategy copied under another name
    res = hand_built(
        fcf,
        strategies=["bso", "bso_copy"],
        families={"bso": "culture_aligned", "bso_copy": "culture_aligned"},
    )
    f = res.forecast(
        ["free_cash_flow", "cumulative_fcf"], steps=5, series="difference", model=fc.ETS(trend="add")
    )
    assert f.series.constant.all() and f.fitted_ is None
    frame = f.summary_frame()
    assert (frame[["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]].to_numpy() == 0.0).all()


def test_evaluate_compares_with_the_simulated_continuation():
    fcf = noisy((2, 3, 4, 30), seed=3)
    res = hand_built(fcf)
    f = res.forecast(["free_cash_flow", "cumulative_fcf"], steps=8, train_periods=25, model=fc.Naive())
    assert f.known_periods == 5  # periods 26..30 of 33 forecast are simulated
    ev = f.evaluate()
    assert set(ev.h) == {1, 2, 3, 4, 5} and set(ev.period) == set(range(26, 31))
    truth = f.actual().set_index(["environment", "kpi", "series", "kind", "period"]).value
    np.testing.assert_array_equal(
        ev.actual, truth.loc[list(zip(ev.environment, ev.kpi, ev.series, ev.kind, ev.period))]
    )
    row = ev[(ev.kind == "strategy") & (ev.series == "bso") & (ev.kpi == "free_cash_flow")].iloc[0]
    assert (
        row.actual == fcf[0, 2, :, 25].mean() and row["mean"] == fcf[0, 2, :, 24].mean()
    )  # naive: the last value
    np.testing.assert_array_equal(
        ev.covered, (ev.mean_ci_lower <= ev.actual) & (ev.actual <= ev.mean_ci_upper)
    )
    np.testing.assert_allclose(ev.error, ev.actual - ev["mean"])


def test_an_exact_model_covers_every_simulated_period_with_zero_error():
    """A straight line is what Drift extrapolates: any misalignment of forecast and truth shows."""
    t = np.arange(1, 41, dtype=float)
    fcf = np.zeros((1, 3, 2, 40))
    fcf[0, 2] = 3.0 + 0.5 * t  # culture-aligned: a rising line; efficiency-only: 0
    f = hand_built(fcf).forecast(series="difference", steps=10, train_periods=30, model=fc.Drift())
    ev = f.evaluate()
    np.testing.assert_allclose(ev.error, 0.0, atol=1e-9)
    assert ev.covered.all()


def known_winner(after: float):
    """Culture-aligned gains 1 MU a period for 30 periods, then ``after`` a period."""
    fcf = np.zeros((1, 3, 2, 50))
    fcf[0, 2, :, :30], fcf[0, 2, :, 30:] = 1.0, after
    return hand_built(fcf).forecast(
        "cumulative_fcf", steps=20, train_periods=30, series="difference", model=fc.Drift()
    )


def test_winner_on_series_with_a_known_answer():
    keep, flip = known_winner(1.0).winner(), known_winner(-10.0).winner()
    for w in (keep, flip):  # the forecast extrapolates the gain: ahead, interval clear of 0, like week 30
        assert list(w.period) == [50] and list(w.sign) == [1] and w.excludes_zero.all()
        assert w.same_sign_as_last_observed.all() and list(w.last_observed) == [30.0]
    assert list(keep.actual) == [50.0] and keep.agrees.all()
    assert list(flip.actual) == [30.0 - 200.0] and list(flip.actual_sign) == [-1] and not flip.agrees.any()
    past = known_winner(1.0)
    fcf = np.zeros((1, 3, 2, 50))
    fcf[0, 2] = 1.0
    beyond = (
        hand_built(fcf).forecast("cumulative_fcf", steps=20, series="difference", model=fc.Drift()).winner()
    )
    assert beyond.period.iloc[0] == 70 and beyond.actual.isna().all() and beyond.agrees.isna().all()
    assert past.winner(period=35).period.iloc[0] == 35


def random_walk_replications(r: int, n_periods=60, train=40, drift=0.0):
    """Replications whose family difference is a Gaussian random walk with unit steps (every
    firm the same walk), the other arms 0."""
    rng = np.random.default_rng(12345)
    out = []
    for _ in range(r):
        walk = np.cumsum(drift + rng.normal(0.0, 1.0, n_periods))
        fcf = np.zeros((1, 3, 2, n_periods))
        fcf[0, 2] = walk
        out.append(
            hand_built(fcf).forecast(
                series="difference", steps=n_periods - train, train_periods=train, model=fc.Naive()
            )
        )
    return out


def test_forecast_check_coverage_on_a_random_walk_with_known_coverage():
    """For a Gaussian random walk with unit steps, Naive's interval y_T ± z σ̂ √h, with
    σ̂² = Σe²/39 over the 39 training steps, covers y_{T+h} with probability
    P(|Z| ≤ z σ̂) = P(|t₃₉| ≤ z) at every h (Z and σ̂ are independent and 39 σ̂² ~ χ²₃₉):
    94.3%. Checked to 4 Monte Carlo standard errors (200 replications: about ±6.6 points for
    one h, less for the pooled bins)."""
    expected = 2 * stats.t.cdf(stats.norm.ppf(0.975), 39) - 1
    check = ForecastCheck(random_walk_replications(200))
    assert check.n_replications == 200 and check.known_periods == 20
    by_h = check.coverage()
    assert list(by_h.h) == list(range(1, 21)) and (by_h.n == 200).all() and (by_h.nominal == 0.95).all()
    p = by_h.coverage.to_numpy()
    np.testing.assert_allclose(by_h.mc_se, np.sqrt(p * (1 - p) / 199), rtol=1e-12)  # binomial, ddof=1
    h1 = by_h.iloc[0]
    assert abs(h1.coverage - expected) < 4 * h1.mc_se
    pooled = check.coverage(bins=[1, 5, 20])
    assert list(zip(pooled.h_from, pooled.h_to)) == [(1, 1), (2, 5), (6, 20)]
    for row in pooled.itertuples():
        assert abs(row.coverage - expected) < 4 * row.mc_se + 1e-12, row


def test_winner_agreement_counts_and_its_wilson_interval():
    up = ForecastCheck(random_walk_replications(20, drift=3.0))  # a strong drift: always ahead
    agree = up.winner_agreement()
    assert list(agree[["agree", "n", "share", "simulated_positive"]].iloc[0]) == [20, 20, 1.0, 20]
    lo, hi = proportion_confint(20, 20, alpha=0.05, method="wilson")
    assert agree.ci_lower.iloc[0] == pytest.approx(lo) and agree.ci_upper.iloc[0] == pytest.approx(hi)
    flat = ForecastCheck(random_walk_replications(40))
    w = flat.winners()
    k = int((np.sign(w["mean"]) == np.sign(w.actual)).sum())
    assert 0 < k < 40  # a driftless walk: the sign after 20 more steps is not always the last one's
    row = flat.winner_agreement(alpha=0.1).iloc[0]
    assert row.agree == k and row.n == 40
    assert (row.ci_lower, row.ci_upper) == pytest.approx(
        proportion_confint(k, 40, alpha=0.1, method="wilson")
    )


def test_gradient_boosting_is_fitted_for_the_steps_and_seeded():
    fcf = noisy((1, 3, 2, 60))
    res = hand_built(fcf)
    model = fc.GradientBoosting(lags=4, max_iter=10, min_samples_leaf=5)
    f = res.forecast(steps=12, model=model, series="difference", seed=3)
    assert f.fitted_.horizon == 12 and f.fitted_.seed == 3 and model.horizon is None
    again = res.forecast(steps=12, model=model, series="difference", seed=3).summary_frame()
    pd.testing.assert_frame_equal(f.summary_frame(), again)


@pytest.fixture(scope="module")
def small():
    return compare(strategies=["bpo", "bso"], environments=["stable", "volatile"], n_orgs=4, periods=60)


def test_the_method_on_a_compare_run_with_summary_and_figure(small, tmp_path):
    f = small.forecast(["cumulative_fcf", "revenue"], steps=30, train_periods=40)
    assert f.model.startswith("ETS(") and "seasonal" not in f.model  # 40 weeks: Holt's method
    frame = f.summary_frame()
    assert (
        len(frame) == 2 * 2 * 5 * 30
    )  # environments × KPIs × (2 strategies, 2 families, 1 difference) × steps
    assert (
        set(frame.kind) == {"strategy", "family", "difference"} and frame.h.min() == 1 and frame.h.max() == 30
    )
    assert np.isfinite(frame[["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]].to_numpy()).all()
    text = str(f.summary())
    assert "Strategy forecasts past the simulated horizon" in text and "simulated" in text
    assert "<table" in f._repr_html_()
    fig = f.plot()
    axes = fig.axes
    assert len(axes) == 4  # two environments × (families, difference)
    for ax in axes:
        assert ax.get_title() and "(weeks)" in ax.get_xlabel() and "(MU)" in ax.get_ylabel()
        labels = ax.get_legend().get_texts()
        assert "simulated continuation" in [t.get_text() for t in labels]
    fig.savefig(tmp_path / "fans.png")
    assert f.plot("revenue", arms="strategy").axes[0].get_ylabel() == "revenue (MU/week)"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kpi": "profit"}, ValueError, "kpi == 'profit', must be one of ['demand', 'revenue'"),
        ({"kpi": []}, ValueError, "kpi == [], must be a KPI name or a non-empty list"),
        ({"steps": 0}, ValueError, "steps == 0, must be an integer >= 1"),
        ({"alpha": 1.5}, ValueError, "alpha == 1.5, must be a number in (0, 1)"),
        ({"train_periods": 0}, ValueError, "train_periods == 0, must be in 3..30"),
        ({"train_periods": 31}, ValueError, "train_periods == 31, must be in 3..30"),
        ({"train_periods": 2.5}, TypeError, "train_periods == 2.5, must be an integer"),
        (
            {"train_periods": 7, "model": fc.ETS(seasonal="add", seasonal_periods=4)},
            ValueError,
            "train_periods == 7, too short for ETS(seasonal='add', seasonal_periods=4",
        ),
        (
            {"series": "arm"},
            ValueError,
            "series == 'arm', must be one or more of ['strategy', 'family', 'difference']",
        ),
        ({"contrasts": ["bso − x"]}, ValueError, "contrast == 'bso − x', must be one of"),
        ({"contrasts": []}, ValueError, "contrasts == [], must name at least one contrast"),
        ({"environments": ["mars"]}, ValueError, "environment == 'mars', must be one of ['env0']"),
        ({"model": "ETS"}, TypeError, "model is a str, must be an orgsim.forecasting forecaster"),
        (
            {"model": fc.GradientBoosting(horizon=3), "steps": 5},
            ValueError,
            "steps == 5, must be <= horizon == 3",
        ),
    ],
)
def test_bad_input_names_the_argument_the_value_and_the_rule(kwargs, error, message):
    res = hand_built(noisy((1, 3, 2, 30)))
    kwargs = {"model": fc.Naive(), **kwargs}
    with pytest.raises(error) as info:
        res.forecast(**kwargs)
    assert message in str(info.value)


def test_bad_input_to_the_results_and_the_check():
    res = hand_built(noisy((1, 3, 2, 30)))
    whole = res.forecast(steps=4, model=fc.Naive())
    with pytest.raises(ValueError, match="train_periods == 30 leaves no simulated continuation"):
        whole.evaluate()
    with pytest.raises(ValueError, match=r"period == 30, must be a forecast period in 31..34"):
        whole.winner(period=30)
    with pytest.raises(ValueError, match="kpi == 'revenue', must be one of the forecast's KPIs"):
        whole.winner(kpi="revenue")
    with pytest.raises(ValueError, match="no difference series"):
        res.forecast(steps=4, model=fc.Naive(), series="family").winner()
    with pytest.raises(ValueError, match="arms == 'x', must be 'family' or 'strategy'"):
        whole.plot(arms="x")
    part = res.forecast(steps=4, model=fc.Naive(), train_periods=20)
    with pytest.raises(ValueError, match="forecasts has 1 replication"):
        ForecastCheck([part])
    with pytest.raises(ValueError, match="leaves no simulated continuation"):
        ForecastCheck([part, whole])
    other = res.forecast(steps=4, model=fc.Naive(), train_periods=22)
    with pytest.raises(ValueError, match=r"forecasts\[1\] has train_periods 22"):
        ForecastCheck([part, other])
    with pytest.raises(ValueError, match=r"period == 30, must be a period with a simulated value in 21..24"):
        ForecastCheck([part, part]).winners(period=30)
    with pytest.raises(ValueError, match="bins == \\[0\\], must be increasing horizons >= 1"):
        ForecastCheck([part, part]).coverage(bins=[0])


def test_the_summary_shows_the_difference_at_each_forecast_year_end_and_the_last_step():
    res = hand_built(noisy((1, 3, 2, 20)), periods_per_year=4)
    f = res.forecast(steps=10, model=fc.Naive(), train_periods=16)
    table = f.summary().tables[1]
    assert list(table.period) == ["20", "24", "26"]  # h = 4 and 8 (year ends), 10 (the last step)
    assert list(table.series) == [FAMILY_CONTRAST] * 3
    d = f.summary_frame().query("kind == 'difference' and period == 20").iloc[0]
    assert table["mean"].iloc[0] == f"{d['mean']:,.1f}"
    simulated = f.actual().query("kind == 'difference' and period == 20").value.iloc[0]
    assert table["simulated"].iloc[0] == f"{simulated:,.1f}"
    assert table["simulated"].iloc[1] == "-"  # week 24 was not simulated
