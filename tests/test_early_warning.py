"""orgsim.early_warning: predicting a firm's long-run outcome from its first k periods.

The comparison is small (2 strategies, 1 environment, 60 firms, 60 weeks); planted-signal and
single-class cases use synthetic per-firm tables whose outcome is a known function of one early
feature. Scores and importances are checked against scikit-learn and scipy called directly on
the per-split values, and the features against numpy/scipy on the raw KPI arrays.
"""

from __future__ import annotations

import doctest
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats as sps
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeCV
from sklearn.model_selection import GroupKFold, KFold

from orgsim.comparison import compare
from orgsim.early_warning import (
    DEFAULT_FEATURES,
    DEFAULT_STATS,
    STATS,
    EarlyWarning,
    EarlyWarningResult,
    _splits,
    window_features,
)

N, T, K = 60, 60, 13
#: tests of the shared comparison run on one xdist worker (pyproject: --dist loadgroup), which builds
#: the module's fixtures once
comparison_group = pytest.mark.xdist_group("early_warning_comparison")
FEATURES = ["free_cash_flow", "cash", "demand"]  # a few KPIs keep the permutation importance quick


@pytest.fixture(scope="module")
def res():
    return compare(
        strategies=["bpo_bpm", "bso"], environments=["volatile"], n_orgs=N, periods=T, horizons=[30, T]
    )


@pytest.fixture(scope="module")
def ew_fcf(res) -> EarlyWarning:
    """The default model (gradient boosting) on the comparison: cumulative FCF at week 60."""
    return EarlyWarning(k=K, outcome="cumulative_fcf", features=FEATURES, n_repeats=2, random_state=0).fit(
        res
    )


def synthetic(
    n_firms: int = 120,
    periods: int = 12,
    k: int = 6,
    *,
    outcome: str = "cumulative_fcf",
    signal: float = 3.0,
    noise: float = 0.5,
    seed: int = 0,
    strategies: tuple[str, ...] = ("bpo", "bso"),
    survivors: str | None = None,
) -> pd.DataFrame:
    """A per-firm table: per unit, KPI series x_t = level + e_t (level, e_t ~ N(0, 1)).

    The outcome is planted on one early feature, ``cash:mean`` (the mean of cash over the
    first ``k`` periods): cumulative_fcf = signal · cash:mean + noise · N(0, 1); survival =
    1{signal · cash:mean + noise · N(0, 1) > −0.5} (about 40% fail at signal 3), except that
    every firm of strategy ``survivors`` survives. ``demand`` (the same for a firm in every
    arm, as under common random numbers) and ``fill_rate`` carry no information.
    """
    rng = np.random.default_rng(seed)
    demand = rng.normal(size=(n_firms, 1)) + rng.normal(size=(n_firms, periods))
    frames = []
    for s in strategies:
        cash = rng.normal(size=(n_firms, 1)) + rng.normal(size=(n_firms, periods))
        fill = rng.normal(size=(n_firms, 1)) + rng.normal(size=(n_firms, periods))
        latent = signal * cash[:, :k].mean(axis=1) + noise * rng.normal(size=n_firms)
        if outcome == "survival":
            y = (latent > -0.5).astype(float)
            if s == survivors:
                y[:] = 1.0
        else:
            y = latent
        frames.append(
            pd.DataFrame(
                {
                    "strategy": s,
                    "family": "culture_aligned" if s == "bso" else "efficiency_only",
                    "org": np.repeat(np.arange(n_firms), periods),
                    "period": np.tile(np.arange(1, periods + 1), n_firms),
                    "cash": cash.ravel(),
                    "demand": demand.ravel(),
                    "fill_rate": fill.ravel(),
                    outcome: np.repeat(y, periods),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


SYN = ["cash", "demand", "fill_rate"]


def row(frame: pd.DataFrame, subset: str, model: str, metric: str) -> pd.Series:
    part = frame[(frame.subset == subset) & (frame.model == model) & (frame.metric == metric)]
    assert len(part) == 1
    return part.iloc[0]


# ----------------------------------------------------------------------------------------------
# features and outcome from a comparison
# ----------------------------------------------------------------------------------------------
@comparison_group
def test_design_and_outcome_come_from_the_first_k_periods_and_the_horizon(res, ew_fcf):
    r = ew_fcf.result_
    assert r.horizon == T and ew_fcf.horizon_ == T  # 5 years is not a horizon here: the last one
    n_units = len(res.environments) * len(res.strategies) * N
    assert r.n_units == n_units and r.n_firms == N
    for u in (0, 7, N + 3, 2 * N - 1):  # units: environment, strategy, firm
        s, f = divmod(u, N)
        window = res.arrays["cash"][0, s, f, :K]
        assert r.design.loc[u, "cash:last"] == window[-1]
        assert r.design.loc[u, "cash:mean"] == pytest.approx(window.mean(), rel=1e-12)
        assert r.design.loc[u, "cash:slope"] == pytest.approx(
            sps.linregress(np.arange(K), window).slope, rel=1e-9
        )
        assert r.design.loc[u, "strategy"] == res.strategies[s]
        assert r.design.loc[u, "family"] == res.families[res.strategies[s]]
        assert r.units.loc[u, "group"] == f
    outcomes = (
        res.outcomes().query("horizon == @T").sort_values(["strategy", "firm"], key=_strategy_order(res))
    )
    np.testing.assert_array_equal(r.y, outcomes.cumulative_fcf.to_numpy())
    assert list(ew_fcf.feature_names_in_) == [
        f"{kpi}:{stat}" for kpi in FEATURES for stat in DEFAULT_STATS
    ] + ["strategy", "family", "environment"]


@comparison_group
def test_the_default_model_is_gradient_boosting_with_the_context_as_native_categories(ew_fcf):
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = ew_fcf.model_.named_steps["model"]
    assert isinstance(model, HistGradientBoostingRegressor)
    n_signals = len(FEATURES) * len(DEFAULT_STATS)
    assert list(model.categorical_features) == [n_signals, n_signals + 1, n_signals + 2]
    assert model.get_params()["max_iter"] == 100  # scikit-learn's defaults otherwise
    assert ew_fcf.categories_["strategy"] == ["bpo_bpm", "bso"]


def _strategy_order(res):
    return lambda s: s.map({x: i for i, x in enumerate(res.strategies)}) if s.name == "strategy" else s


def test_default_features_leave_out_the_strategy_label_in_disguise():
    assert "programme_cost" not in DEFAULT_FEATURES and "solvent" not in DEFAULT_FEATURES
    assert "free_cash_flow" in DEFAULT_FEATURES and "fill_rate" in DEFAULT_FEATURES


@comparison_group
def test_a_table_gives_the_same_fit_as_the_comparison(res):
    """The per-firm table route and the comparison route agree exactly on the same data."""
    e, rows = 0, []
    for s, strategy in enumerate(res.strategies):
        y = res.values(res.environments[e], strategy, "cumulative_fcf", T)
        for f in range(N):
            rows.append(
                pd.DataFrame(
                    {
                        "environment": res.environments[e],
                        "strategy": strategy,
                        "family": res.families[strategy],
                        "seed": 0,
                        "org": f,
                        "period": np.arange(1, K + 2),
                        **{kpi: res.arrays[kpi][e, s, f, : K + 1] for kpi in FEATURES},
                        "cumulative_fcf": y[f],
                    }
                )
            )
    table = pd.concat(rows, ignore_index=True).sample(frac=1.0, random_state=1)  # row order must not matter
    kw = dict(
        k=K,
        outcome="cumulative_fcf",
        features=FEATURES,
        model=RidgeCV(),
        n_repeats=1,
        by=None,
        random_state=4,
    )
    a = EarlyWarning(**kw).fit(res)
    b = EarlyWarning(**kw, horizon=T).fit(table)
    pd.testing.assert_frame_equal(a.summary_frame(), b.summary_frame())
    pd.testing.assert_frame_equal(a.importance_frame(), b.importance_frame())


@given(
    x=arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(3, 12)), elements=st.floats(-1e3, 1e3)),
)
def test_window_statistics_match_numpy_and_scipy(x):
    f = window_features({"cash": x}, list(STATS))
    t = np.arange(x.shape[1])
    for i, w in enumerate(x):
        assert f.loc[i, "cash:last"] == w[-1]
        assert f.loc[i, "cash:min"] == w.min() and f.loc[i, "cash:max"] == w.max()
        assert f.loc[i, "cash:mean"] == pytest.approx(w.mean(), rel=1e-9, abs=1e-9)
        assert f.loc[i, "cash:slope"] == pytest.approx(sps.linregress(t, w).slope, rel=1e-7, abs=1e-7)
        assert f.loc[i, "cash:std"] == pytest.approx(np.std(w, ddof=1), rel=1e-7, abs=1e-7)
        assert f.loc[i, "cash:volatility"] == pytest.approx(np.std(np.diff(w), ddof=1), rel=1e-7, abs=1e-7)


# ----------------------------------------------------------------------------------------------
# grouped cross-validation
# ----------------------------------------------------------------------------------------------
@comparison_group
def test_cv_never_puts_a_firm_index_in_both_training_and_test_folds(res):
    ew = EarlyWarning(
        k=K, outcome="cumulative_fcf", features=FEATURES, model=RidgeCV(), cv=4, cv_repeats=2, n_repeats=0
    ).fit(res)
    pred = ew.result_.predictions
    assert ew.n_splits_ == 8
    for _, part in pred.groupby("repeat"):
        # each repeat is a partition of the units, and every unit of a firm is in the same test fold
        assert sorted(part.unit) == list(range(ew.result_.n_units))
        assert (part.groupby("firm").split.nunique() == 1).all()
    assert len(pred.split.unique()) == 8
    # in each split, no firm of the test fold is among the training units
    for _, part in pred.groupby("split"):
        test_firms = set(part.firm)
        train_firms = set(ew.result_.units.firm[~ew.result_.units.index.isin(part.unit)])
        assert not test_firms & train_firms


@pytest.mark.filterwarnings("ignore:The least populated class")
@given(
    n_groups=st.integers(10, 30),
    arms=st.integers(1, 4),
    cv=st.integers(2, 5),
    classification=st.booleans(),
    seed=st.integers(0, 2**31 - 2),
)
def test_splits_hold_out_whole_groups(n_groups, arms, cv, classification, seed):
    rng = np.random.default_rng(seed)
    groups = np.tile(np.arange(n_groups), arms)
    if classification:  # both classes at least cv times, as fit requires
        y = rng.integers(0, 2, groups.size)
        y[:cv], y[cv : 2 * cv] = 0, 1
    else:
        y = rng.normal(size=groups.size)
    task = "classification" if classification else "regression"
    splits = _splits(cv, 2, y, groups, task, np.array([seed, seed + 1]))
    assert len(splits) == 2 * cv
    for r in (0, 1):
        tests = np.concatenate([te for rep, _, te in splits if rep == r])
        assert np.array_equal(np.sort(tests), np.arange(groups.size))  # a partition
    for _, tr, te in splits:
        assert not set(groups[tr]) & set(groups[te])


@comparison_group
@pytest.mark.filterwarnings("ignore:The groups parameter is ignored by KFold")
def test_a_splitter_that_splits_a_firm_is_refused_and_a_group_splitter_is_accepted(res):
    kw = dict(k=K, outcome="cumulative_fcf", features=FEATURES, model=RidgeCV(), n_repeats=0)
    with pytest.raises(
        ValueError, match=r"cv split 0 puts firm index \d+ .* in both the training and the test"
    ):
        EarlyWarning(**kw, cv=KFold(5, shuffle=True, random_state=0)).fit(res)
    ew = EarlyWarning(**kw, cv=GroupKFold(3)).fit(res)
    assert ew.n_splits_ == 3 and ew.result_.cv == "GroupKFold"


# ----------------------------------------------------------------------------------------------
# reproducibility (SPEC 7)
# ----------------------------------------------------------------------------------------------
def _folds(ew: EarlyWarning) -> np.ndarray:
    """The test fold of each unit."""
    return ew.result_.predictions.sort_values("unit").split.to_numpy()


def test_results_are_reproducible_with_random_state_and_do_not_depend_on_n_jobs():
    table = synthetic(n_firms=40, seed=3)
    kw = dict(k=6, outcome="cumulative_fcf", features=SYN, n_repeats=2, by=None)
    a = EarlyWarning(**kw, random_state=7).fit(table)
    b = EarlyWarning(**kw, random_state=7, n_jobs=2).fit(table)
    pd.testing.assert_frame_equal(a.result_.cv_results, b.result_.cv_results)
    pd.testing.assert_frame_equal(a.result_.importances, b.result_.importances)
    pd.testing.assert_frame_equal(a.result_.predictions, b.result_.predictions)
    np.testing.assert_array_equal(a.predict(table), b.predict(table))
    quick = kw | {"model": RidgeCV(), "n_repeats": 0}
    c = EarlyWarning(**quick, random_state=8).fit(table)
    assert not np.array_equal(_folds(a), _folds(c))  # another seed, other folds
    d = EarlyWarning(**quick, random_state=7).fit(table)
    np.testing.assert_array_equal(_folds(a), _folds(d))  # the folds do not depend on the model
    e = EarlyWarning(**quick, random_state=np.random.SeedSequence(7)).fit(table)
    pd.testing.assert_frame_equal(d.result_.cv_results, e.result_.cv_results)  # default_rng normalises both
    with pytest.raises(
        ValueError, match=r"random_state == -1, must be None, an int >= 0, a numpy SeedSequence"
    ):
        EarlyWarning(**quick, random_state=-1).fit(table)
    with pytest.raises(TypeError, match=r"random_state == 'abc', must be None, an int >= 0"):
        EarlyWarning(**quick, random_state="abc").fit(table)


def test_estimator_follows_scikit_learn_conventions():
    ew = EarlyWarning(k=-3, outcome="nonsense", cv=1)  # __init__ stores, fit validates
    assert ew.get_params()["k"] == -3
    twin = clone(EarlyWarning(k=5, outcome="survival", n_repeats=3))
    assert twin.get_params()["k"] == 5 and twin.get_params()["outcome"] == "survival"
    with pytest.raises(AttributeError, match="not fitted yet"):
        EarlyWarning().summary_frame()
    with pytest.raises(AttributeError, match="not fitted yet"):
        EarlyWarning().predict(synthetic(n_firms=5))


# ----------------------------------------------------------------------------------------------
# planted signal and an uninformative feature
# ----------------------------------------------------------------------------------------------
def test_a_planted_signal_is_found_and_an_uninformative_feature_gets_importance_near_zero():
    """cumulative_fcf = 3 · cash:mean + 0.5 · noise, 240 units of 120 firms.

    The best possible R² is 9 · Var(cash:mean) / (9 · Var(cash:mean) + 0.25) with
    Var(cash:mean) = 1 + 1/6: 0.977. Gradient boosting approximates the line by steps from ~190
    training units; R² > 0.85 leaves room for that (0.92-0.95 over seeds 0-3 when this test was
    written). Uninformative features (demand, fill_rate) must have |importance| < 0.02 in R²
    units: 1.3% of the planted feature's (about 1.5), and 4× the largest |mean importance| of
    such a feature seen over seeds 0-3 (0.0045).
    """
    ew = EarlyWarning(k=6, outcome="cumulative_fcf", features=SYN, n_repeats=3, by=None, random_state=0)
    ew.fit(synthetic(seed=0))
    r2 = row(ew.summary_frame(), "all", "main", "r2")
    assert r2["mean"] > 0.85
    imp = ew.importance_frame()
    assert imp.feature.iloc[0] == "cash:mean" and imp["rank"].iloc[0] == 1
    assert imp["mean"].iloc[0] > 1.0
    assert imp["mean"].iloc[0] > 20 * imp["mean"].iloc[1]
    noise = imp[imp.feature.str.startswith(("demand:", "fill_rate:"))]
    assert len(noise) == 2 * len(DEFAULT_STATS)
    assert (noise["mean"].abs() < 0.02).all(), noise[["feature", "mean"]]
    # early signals add what context cannot: the strategy says nothing about this outcome
    gain = row(ew.summary_frame(), "all", "main − context", "r2")
    assert gain.mean_ci_lower > 0.5
    assert row(ew.summary_frame(), "all", "context", "r2")["mean"] < 0.05


def test_a_planted_signal_is_found_in_a_classification():
    ew = EarlyWarning(
        k=6,
        outcome="survival",
        features=SYN,
        model=LogisticRegression(),
        n_repeats=2,
        by=None,
        random_state=0,
    ).fit(synthetic(outcome="survival", seed=1))
    auc = row(ew.summary_frame(), "all", "main", "auc")
    assert auc.mean_ci_lower > 0.9  # the latent has signal-to-noise 3·1.08/0.5: nearly separable
    assert auc.mean_ci_upper <= 1.0  # a score's interval is clipped to the metric's range
    assert row(ew.summary_frame(), "all", "prior", "auc")["mean"] == 0.5  # a constant prediction
    assert ew.importance_frame().feature.iloc[0] == "cash:mean"
    proba = ew.predict_proba(synthetic(outcome="survival", seed=2))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_no_signal_is_reported_plainly():
    table = synthetic(signal=0.0, noise=1.0, seed=5)  # the outcome is pure noise
    ew = EarlyWarning(k=6, outcome="cumulative_fcf", features=SYN, model=RidgeCV(), n_repeats=0, by=None)
    ew.fit(table)
    r2 = row(ew.summary_frame(), "all", "main", "r2")
    assert r2["mean"] < 0.1
    (line,) = ew.result_.verdict()
    assert ("NOT distinguishable from chance" in line) == (r2.mean_ci_lower <= 0)
    assert r2.mean_ci_lower <= 0
    assert "NOT distinguishable from chance" in str(ew.summary())


# ----------------------------------------------------------------------------------------------
# scores, intervals, importances
# ----------------------------------------------------------------------------------------------
@comparison_group
def test_scores_and_corrected_interval_from_the_per_split_values(ew_fcf):
    """mean over splits; se = √(1/J + n_test/n_train) · sd (Nadeau & Bengio 2003); t with J − 1 df."""
    r = ew_fcf.result_
    cv = r.cv_results
    part = cv[(cv.subset == "all") & (cv.model == "main") & (cv.metric == "r2")].sort_values("split")
    pred = r.predictions
    for j, value in zip(part.split, part.value):
        p = pred[pred.split == j]
        assert value == pytest.approx(1 - ((p.y - p["main"]) ** 2).sum() / ((p.y - p.y.mean()) ** 2).sum())
    j = len(part)
    ratio = (part.n_test / part.n_train).mean()
    sd = part.value.std(ddof=1)
    se = np.sqrt(1 / j + ratio) * sd
    q = sps.t.ppf(0.975, j - 1)
    got = row(r.summary_frame(0.05), "all", "main", "r2")
    assert got["mean"] == pytest.approx(part.value.mean())
    assert got["std"] == pytest.approx(sd) and got["mean_se"] == pytest.approx(se)
    assert got.mean_ci_lower == pytest.approx(part.value.mean() - q * se)
    assert got.mean_ci_upper == pytest.approx(min(1.0, part.value.mean() + q * se))  # R² <= 1: clipped
    assert got.interval == "nadeau_bengio_t" and got.n_splits == 5
    narrow = row(r.summary_frame(0.5), "all", "main", "r2")
    assert narrow.mean_ci_upper - narrow.mean_ci_lower < got.mean_ci_upper - got.mean_ci_lower
    gain = row(r.summary_frame(), "all", "main − context", "r2")
    wide = cv[(cv.subset == "all") & (cv.metric == "r2")].pivot(
        index="split", columns="model", values="value"
    )
    assert gain["mean"] == pytest.approx((wide["main"] - wide["context"]).mean())
    linear_gain = row(r.summary_frame(), "all", "linear − context", "r2")
    assert linear_gain["mean"] == pytest.approx((wide["linear"] - wide["context"]).mean())
    assert linear_gain["std"] == pytest.approx((wide["linear"] - wide["context"]).std(ddof=1))


@comparison_group
def test_summary_frame_columns_and_subsets(ew_fcf):
    frame = ew_fcf.summary_frame()
    assert list(frame.columns) == [
        "subset",
        "model",
        "kind",
        "metric",
        "mean",
        "std",
        "mean_se",
        "mean_ci_lower",
        "mean_ci_upper",
        "n_splits",
        "n",
        "interval",
        "note",
    ]
    assert list(dict.fromkeys(frame.subset)) == ["all", "efficiency_only", "culture_aligned"]
    assert set(frame.model) == {
        "prior",
        "context",
        "linear",
        "main",
        "main − prior",
        "main − context",
        "main − linear",
        "linear − context",
    }
    assert row(frame, "efficiency_only", "main", "r2").n == N
    with pytest.raises(ValueError, match=r"alpha == 1.5, must be in \(0, 1\)"):
        ew_fcf.summary_frame(1.5)


@comparison_group
def test_importance_is_sklearns_permutation_importance_on_held_out_units(ew_fcf):
    r = ew_fcf.result_
    imp = r.importance_frame()
    assert set(imp.subset) == {"all", "efficiency_only", "culture_aligned"}
    raw = r.importances
    assert len(raw) == 3 * 5 * 2 * len(r.features)  # subsets × splits × permutations × features
    for (subset, feature), part in raw.groupby(["subset", "feature"]):
        got = imp[(imp.subset == subset) & (imp.feature == feature)].iloc[0]
        assert got["mean"] == pytest.approx(part.value.mean())
        assert got["std"] == pytest.approx(part.value.std(ddof=1))
        assert got.std_repeats == pytest.approx(part.groupby("split").value.std(ddof=1).mean())
    # within a family the family column is constant: permuting it changes nothing
    fam = imp[(imp.subset == "culture_aligned") & (imp.feature == "family")].iloc[0]
    assert fam["mean"] == 0.0 and fam["std"] == 0.0
    ranks = imp[imp.subset == "all"]
    assert list(ranks["rank"]) == list(range(1, len(r.features) + 1))
    assert (np.diff(ranks["mean"]) <= 0).all()


# ----------------------------------------------------------------------------------------------
# a single class
# ----------------------------------------------------------------------------------------------
def test_a_single_class_overall_is_a_clear_error():
    stable = compare(strategies=["bpo", "bso"], environments=["stable"], n_orgs=10, periods=30)
    with pytest.raises(
        ValueError, match=r"'survival' at horizon 30 has a single class: every one of the 20 units survives"
    ):
        EarlyWarning(k=5, outcome="survival").fit(stable)


def test_a_family_without_failures_is_skipped_and_documented():
    table = synthetic(outcome="survival", survivors="bso", seed=2)
    ew = EarlyWarning(
        k=6, outcome="survival", features=SYN, model=LogisticRegression(), n_repeats=1, random_state=0
    )
    with pytest.warns(
        UserWarning, match=r"AUC skipped for culture_aligned \(a single class: all 120 units survive\)"
    ):
        ew.fit(table)
    frame = ew.summary_frame()
    auc = row(frame, "culture_aligned", "main", "auc")
    assert np.isnan(auc["mean"]) and auc.n_splits == 0 and "single class" in auc.note
    assert np.isfinite(row(frame, "culture_aligned", "main", "brier")["mean"])  # defined with one class
    assert np.isfinite(row(frame, "efficiency_only", "main", "auc")["mean"])
    # no silent NaN: every missing value says why
    missing = frame[frame[["mean", "mean_ci_lower"]].isna().any(axis=1)]
    assert len(missing) and (missing.note != "").all()
    imp = ew.importance_frame()
    skipped = imp[imp.subset == "culture_aligned"]
    assert len(skipped) == 1 and skipped.feature.iloc[0] == "—" and "skipped" in skipped.note.iloc[0]
    text = str(ew.summary())
    assert "culture_aligned: AUC undefined (a single class: all 120 units survive)" in text
    assert ew.result_.skipped_subsets() == {"culture_aligned": "a single class: all 120 units survive"}


# ----------------------------------------------------------------------------------------------
# reports and figures
# ----------------------------------------------------------------------------------------------
@comparison_group
def test_summary_renders_text_and_html(ew_fcf):
    text = str(ew_fcf.summary())
    assert "Early warning: cumulative_fcf at period 60 from the first 13 periods" in text
    assert "corrected resampled t (Nadeau & Bengio 2003)" in text
    assert re.search(r"all: out-of-sample R² -?\d\.\d{3} \[", text)
    html = ew_fcf.result_._repr_html_()
    assert "<table" in html and "<h4>Early warning: cumulative_fcf at period 60" in html
    assert "EarlyWarningResult" in repr(ew_fcf.result_) and isinstance(ew_fcf.result_, EarlyWarningResult)


def _check_axes(fig, n):
    axes = fig.axes
    assert len(axes) == n
    for ax in axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
        assert ax.get_legend() is not None
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"


@comparison_group
def test_figures_regression(ew_fcf):
    _check_axes(ew_fcf.plot(top=5), 2)
    ax = ew_fcf.result_.plot_importance(subsets=["culture_aligned"], top=4)
    assert len(ax.get_yticklabels()) == 4
    with pytest.raises(ValueError, match="plot_roc is for a classification"):
        ew_fcf.result_.plot_roc()


def test_figures_classification():
    table = synthetic(outcome="survival", survivors="bso", seed=2)
    with pytest.warns(UserWarning):
        ew = EarlyWarning(
            k=6, outcome="survival", features=SYN, model=LogisticRegression(), n_repeats=1, random_state=0
        ).fit(table)
    _check_axes(ew.plot(top=5), 3)
    assert "AUC" in ew.result_.plot_roc(subset="efficiency_only").get_legend().get_texts()[0].get_text()
    with pytest.raises(ValueError, match="subset 'culture_aligned' has a single class"):
        ew.result_.plot_roc(subset="culture_aligned")


@comparison_group
def test_predict_new_firms(res, ew_fcf):
    pred = ew_fcf.predict(res)
    assert pred.shape == (2 * N,) and np.isfinite(pred).all()
    other = compare(strategies=["bpo_bpm", "bso"], environments=["volatile"], n_orgs=5, periods=K, seed=9)
    assert ew_fcf.predict(other).shape == (10,)  # only the first k periods are needed
    short = compare(strategies=["bpo_bpm", "bso"], environments=["volatile"], n_orgs=2, periods=K - 1)
    with pytest.raises(ValueError, match=r"k == 13, must be <= the run's 12 periods to predict from them"):
        ew_fcf.predict(short)
    with pytest.raises(AttributeError, match="predict_proba is for outcome='survival'"):
        ew_fcf.predict_proba(res)


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------
@comparison_group
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"k": 0}, ValueError, r"k == 0, must be >= 1 \(periods in the early window\)"),
        ({"k": -2}, ValueError, r"k == -2, must be >= 1"),
        ({"k": 60}, ValueError, r"k == 60, must be < 60 \(the run's 60 periods and horizon 60\)"),
        (
            {"k": 30, "horizon": 30},
            ValueError,
            r"k == 30, must be < 30 \(the run's 60 periods and horizon 30\)",
        ),
        ({"k": 2.5}, TypeError, r"k == 2.5, must be an integer number of periods >= 1"),
        ({"k": True}, TypeError, r"k == True, must be an integer"),
        (
            {"outcome": "profit"},
            ValueError,
            r"outcome == 'profit', must be one of 'cumulative_fcf', 'npv_fcf', 'survival'",
        ),
        (
            {"features": ["cash", "profit"]},
            ValueError,
            r"features == \['cash', 'profit'\]: 'profit' is not a KPI, must be names from 'demand'",
        ),
        ({"features": "cash"}, TypeError, r"features == 'cash', must be a list of KPI names"),
        (
            {"stats": ["mean", "median"]},
            ValueError,
            r"'median' is not a window statistic, must be one of 'last', 'mean'",
        ),
        (
            {"k": 1, "stats": ["last", "slope"]},
            ValueError,
            r"stats includes 'slope', which needs k >= 2 periods; k == 1",
        ),
        ({"horizon": 45}, ValueError, r"horizon == 45, must be one of the comparison's horizons \[30, 60\]"),
        ({"cv": 1}, ValueError, r"cv == 1, must be >= 2 folds"),
        ({"cv": "five"}, TypeError, r"cv == 'five', must be an int >= 2 or a scikit-learn splitter"),
        (
            {"cv": GroupKFold(3), "cv_repeats": 2},
            ValueError,
            r"cv_repeats == 2, must be 1 when cv is a splitter",
        ),
        ({"n_repeats": -1}, ValueError, r"n_repeats == -1, must be an integer >= 1"),
        ({"context": ["region"]}, ValueError, r"context == \['region'\]: 'region' is not one of"),
        ({"by": "seed"}, ValueError, r"by == 'seed', must be None or a column of the data among"),
        (
            {"model": LinearRegression(), "outcome": "survival"},
            TypeError,
            r"must be a scikit-learn classifier with predict_proba for outcome 'survival'",
        ),
        (
            {"model": LogisticRegression()},
            TypeError,
            r"must be a scikit-learn regressor for outcome 'cumulative_fcf'",
        ),
        ({"model": "hgb"}, TypeError, r"model == 'hgb', must be a scikit-learn estimator"),
    ],
)
def test_bad_parameters_name_the_argument_the_value_and_what_is_allowed(res, kwargs, error, message):
    kw = {"k": K, "outcome": "cumulative_fcf", "features": FEATURES, "n_repeats": 0} | kwargs
    with pytest.raises(error, match=message):
        EarlyWarning(**kw).fit(res)


@comparison_group
def test_too_few_firms_for_the_folds(res):
    with pytest.raises(
        ValueError, match=r"the data hold 3 firms \(firm indices, the CV groups\), must hold at least cv == 5"
    ):
        EarlyWarning(k=K, features=FEATURES).fit(res.select(firms=[0, 1, 2]))
    table = synthetic(n_firms=12, outcome="survival", signal=3.0, seed=0)
    table.loc[:, "survival"] = 1.0
    table.loc[table.org.isin([0, 1]), "survival"] = 0.0  # two firms fail, in both arms
    with pytest.raises(
        ValueError, match=r"only 2 firm\(s\) fail, must be >= cv == 5 so that every test fold"
    ):
        EarlyWarning(k=6, outcome="survival", features=SYN).fit(table)


@comparison_group
def test_bad_tables_and_data(res):
    table = synthetic(n_firms=10)
    with pytest.raises(ValueError, match=r"the table lacks column\(s\) \['survival'\]"):
        EarlyWarning(k=6, outcome="survival", features=SYN).fit(table)
    with pytest.raises(
        ValueError, match=r"lacks column\(s\) \['revenue'\].*or leave \['revenue'\] out of features"
    ):
        EarlyWarning(k=6, features=["cash", "revenue"]).fit(table)
    with pytest.raises(ValueError, match=r"k == 12, must be < 12 \(the table's 12 periods\)"):
        EarlyWarning(k=12, features=SYN).fit(table)
    varying = table.copy()
    varying.loc[0, "cumulative_fcf"] += 1.0
    with pytest.raises(ValueError, match=r"column 'cumulative_fcf' changes within a unit"):
        EarlyWarning(k=6, features=SYN).fit(varying)
    ragged = table.drop(index=[0])
    with pytest.raises(ValueError, match=r"must each have one row per period and the same periods"):
        EarlyWarning(k=6, features=SYN).fit(ragged)
    nan = table.copy()
    nan.loc[3, "cash"] = np.nan
    with pytest.raises(ValueError, match=r"column 'cash' has NaN or inf in the first 6 periods"):
        EarlyWarning(k=6, features=SYN).fit(nan)
    with pytest.raises(
        TypeError, match=r"data is a ndarray, must be an orgsim ComparisonResult or a pandas DataFrame"
    ):
        EarlyWarning(k=6).fit(np.zeros((3, 3)))
    with pytest.raises(
        TypeError, match=r"y == ndarray, must be None: the outcome 'cumulative_fcf' comes from data"
    ):
        EarlyWarning(k=K, features=FEATURES).fit(res, np.zeros(3))


def test_docstring_and_docs_examples_run():
    """The Examples of the module's docstrings and the doctest in docs/early_warning.md."""
    import orgsim.early_warning

    failures, tried = doctest.testmod(orgsim.early_warning, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0
    docs = Path(__file__).resolve().parents[1] / "docs" / "early_warning.md"
    failures, tried = doctest.testfile(
        str(docs), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert tried > 0 and failures == 0
