"""orgsim.surrogate: where each family wins.

The surrogate is checked on planted signals with known truth: its cross-validated R² against the
best any model can do (the R² of the true mean function), grouped folds against leakage between
replicates of one design point, the signs of its win map against the true sign, and its
intervals against their definition (percentile of the bootstrap refits). Training tables are
checked against per-firm differences computed here from compare and simulate.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.inspection import partial_dependence
from sklearn.tree import DecisionTreeRegressor

import orgsim
from orgsim.comparison import compare
from orgsim.sensitivity import morris
from orgsim.surrogate import FamilySurrogate, WinMap, _average_prediction, training_data

G, R, SD = 150, 4, 1.0


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread():
    """scikit-learn's OpenMP threads limited to one for the calls the tests make directly (the
    surrogate limits its own): on a loaded two-core machine, a gradient boosting predict on
    7 rows took 1.4 s with OpenMP's threads and 0.01 s on one."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="openmp"):
        yield


def truth(d: pd.DataFrame) -> np.ndarray:
    """The planted mean difference: culture-aligned ahead where a > b."""
    return 3.0 * (d["a"].to_numpy() - d["b"].to_numpy())


def planted(seed: int = 1, g: int = G, r: int = R, sd: float = SD):
    rng = np.random.default_rng(seed)
    points = pd.DataFrame(
        {"a": rng.uniform(size=g), "b": rng.uniform(size=g), "nuisance": rng.uniform(size=g)}
    )
    X = points.loc[np.repeat(np.arange(g), r)].reset_index(drop=True)
    y = pd.Series(truth(X) + rng.normal(0.0, sd, len(X)), name="Δ planted")
    return X, y, np.repeat(np.arange(g), r)


@pytest.fixture(scope="module")
def fitted():
    X, y, groups = planted()
    return FamilySurrogate(cv=3, n_bootstrap=20, random_state=0).fit(X, y, groups, unit="MU"), X, y, groups


def test_cv_on_a_planted_signal_reaches_the_noise_ceiling(fitted):
    s, X, y, _ = fitted
    m = truth(X)
    oracle = 1 - np.sum((y - m) ** 2) / np.sum((y - y.mean()) ** 2)  # the R² of the true mean function
    assert s.cv_r2_ <= oracle + 4 * s.cv_r2_se_  # no model beats the noise (4 SE over folds)
    assert s.cv_r2_ >= oracle - 0.1  # tolerance: the trees' approximation error of a linear surface
    # the ceiling estimated from the replicates: the within-point variance has G(R − 1) dof
    tol = 4 * (1 - oracle) * math.sqrt(2 / (G * (R - 1)))
    assert abs(s.r2_ceiling_ - oracle) <= tol
    assert SD * 0.9 <= s.cv_rmse_ <= SD * 1.3  # the noise SD is the floor of the RMSE
    assert s.cv_r2_group_means_ > s.cv_r2_  # means of R replicates are less noisy targets
    # grouped folds: every fold holds whole design points
    assert (s.cv_scores_.n_test % R == 0).all() and s.cv_scores_.n_test.sum() == len(X)
    frame = s.score_frame().set_index("metric")
    assert frame.loc["r2", "mean"] == s.cv_r2_ and frame.loc["r2_ceiling", "mean"] == s.r2_ceiling_


def test_grouped_cv_does_not_leak_replicates_of_a_design_point():
    rng = np.random.default_rng(5)
    g, r = 60, 20
    points = pd.DataFrame({"a": rng.uniform(size=g), "b": rng.uniform(size=g)})
    effect = rng.normal(0.0, 2.0, g)  # each point's own mean, unrelated to a and b
    X = points.loc[np.repeat(np.arange(g), r)].reset_index(drop=True)
    y = np.repeat(effect, r) + rng.normal(0.0, 1.0, g * r)
    groups = np.repeat(np.arange(g), r)
    # any estimator shows it; a tree that can isolate a design point's replicates is quick to fit
    tree = DecisionTreeRegressor(min_samples_leaf=5, random_state=0)
    grouped = FamilySurrogate(tree, cv=3, n_bootstrap=0, random_state=0).fit(X, y, groups)
    rows = FamilySurrogate(tree, cv=3, n_bootstrap=0, random_state=0).fit(X, y)
    assert isinstance(grouped.estimator_, DecisionTreeRegressor)
    assert rows.cv_r2_ > 0.3  # ungrouped folds score the memorised replicates of a seen point
    assert grouped.cv_r2_ < 0.1  # a new design point is not predictable: nothing to learn


def test_win_map_signs_agree_with_the_planted_truth(fitted):
    s = fitted[0]
    wm = s.win_map("a", "b", grid=21)
    assert isinstance(wm, WinMap) and wm.mean.shape == (21, 21)
    gx, gy = np.meshgrid(wm.xs, wm.ys)
    m = 3.0 * (gx - gy)
    winner = wm.winner
    decided = winner != "undecided"
    sign = np.where(winner == "culture_aligned", 1.0, -1.0)
    clear = np.abs(m) >= 1.0  # a third of the planted range from the boundary
    assert not (decided & clear & (sign != np.sign(m))).any()
    assert (decided & clear).sum() >= 0.9 * clear.sum()
    assert (winner[np.abs(m) < 0.05] == "undecided").mean() > 0.5  # on the boundary: mostly undecided
    frame = wm.frame()
    assert list(frame.columns) == ["a", "b", "mean", "mean_ci_lower", "mean_ci_upper", "winner"]
    assert ((frame.winner == "culture_aligned") == (frame.mean_ci_lower > 0)).all()
    assert sum(wm.shares().values()) == pytest.approx(1.0)
    assert wm.fixed == {"nuisance": pytest.approx(float(fitted[1].nuisance.median()))}


def test_predict_interval_is_the_percentile_of_the_bootstrap_refits(fitted):
    s, X = fitted[0], fitted[1]
    rows = X.head(7)
    out = s.predict_interval(rows, alpha=0.2)
    draws = np.stack([e.predict(rows) for e in s.bootstrap_estimators_])
    np.testing.assert_allclose(out.mean_ci_lower, np.quantile(draws, 0.1, axis=0))
    np.testing.assert_allclose(out.mean_ci_upper, np.quantile(draws, 0.9, axis=0))
    np.testing.assert_allclose(out["mean"], s.predict(rows))
    assert len(s.bootstrap_estimators_) == 20


def test_partial_dependence_plot_uses_sklearn_partial_dependence(fitted):
    s, X = fitted[0], fitted[1]
    fig = s.partial_dependence_plot(grid=12, max_rows=150)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_xlabel() for ax in axes] == ["a", "b", "nuisance"]
    for ax in axes:
        assert ax.get_title().startswith("Partial dependence on") and "MU" in ax.get_ylabel()
        assert ax.get_legend() is not None
    line = next(ln for ln in axes[0].get_lines() if ln.get_label() == "partial dependence")
    direct = partial_dependence(
        s.estimator_,
        s._rows_sample(150),  # the rows the plot averages over
        ["a"],
        custom_values={"a": np.linspace(X.a.min(), X.a.max(), 12)},
        kind="average",
        method="brute",
    )
    np.testing.assert_allclose(line.get_ydata(), direct["average"][0])
    spread = {
        ax.get_xlabel(): np.ptp(
            next(ln for ln in ax.get_lines() if ln.get_label() == "partial dependence").get_ydata()
        )
        for ax in axes
    }
    assert spread["nuisance"] < 0.3 * spread["a"]  # the planted signal ignores the nuisance


def test_average_prediction_is_sklearns_brute_partial_dependence(fitted):
    s, X = fitted[0], fitted[1]
    rows = X.head(40)
    xs, ys = np.linspace(0, 1, 5), np.linspace(0.2, 0.8, 4)
    est = s.bootstrap_estimators_[3]
    one = partial_dependence(est, rows, ["b"], custom_values={"b": xs}, kind="average", method="brute")
    np.testing.assert_allclose(_average_prediction(est, rows, {"b": xs}), one["average"][0], rtol=1e-12)
    two = partial_dependence(
        est, rows, ["a", "nuisance"], custom_values={"a": xs, "nuisance": ys}, kind="average", method="brute"
    )
    got = _average_prediction(est, rows, {"a": xs, "nuisance": ys})
    assert got.shape == (5, 4)
    np.testing.assert_allclose(got, two["average"][0], rtol=1e-12)


def test_win_map_averaged_and_its_figure(fitted):
    s = fitted[0]
    wm = s.win_map("a", "b", grid=9, at="average")
    assert "(others)" in wm.fixed
    fig = s.win_map("a", "b", grid=9).plot()
    ax = fig.axes[0]
    assert (
        ax.get_title().startswith("Where each family wins")
        and ax.get_xlabel() == "a"
        and ax.get_ylabel() == "b"
    )
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("culture-aligned" in x for x in labels) and any("undecided" in x for x in labels)
    assert any("MU" in a.get_ylabel() for a in fig.axes[1:])  # the colour bar names the unit


def test_a_categorical_environment_feature():
    rng = np.random.default_rng(3)
    n = 400
    X = pd.DataFrame({"a": rng.uniform(size=n), "environment": rng.choice(["stable", "volatile"], n)})
    y = np.where(X.environment == "stable", 1.0, -1.0) + 0.5 * X.a + rng.normal(0, 0.3, n)
    s = FamilySurrogate(cv=3, n_bootstrap=3, random_state=1).fit(X, y)
    assert isinstance(s.X_fit_["environment"].dtype, pd.CategoricalDtype)
    q = pd.DataFrame({"a": [0.5, 0.5], "environment": ["stable", "volatile"]})
    p = s.predict(q)
    assert p[0] > 0.5 and p[1] < -0.2
    with pytest.raises(ValueError, match=r"X column 'environment' has categories \['calm'\] not seen in fit"):
        s.predict(pd.DataFrame({"a": [0.5], "environment": ["calm"]}))
    fig = s.partial_dependence_plot(["environment"])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["stable", "volatile"]


def test_estimator_api():
    s = FamilySurrogate(cv=3, n_bootstrap=2, alpha=0.2, random_state=7)
    assert s.get_params()["cv"] == 3 and clone(s).get_params() == s.get_params()
    with pytest.raises(NotFittedError):
        s.predict(pd.DataFrame({"a": [0.0]}))
    X, y, groups = planted(g=30, r=2)
    assert s.fit(X, y, groups) is s
    learned = [k for k in vars(s) if k.endswith("_") and not k.startswith("_")]
    assert {"estimator_", "cv_r2_", "r2_ceiling_", "bootstrap_estimators_", "n_features_in_"} <= set(learned)
    again = FamilySurrogate(cv=3, n_bootstrap=2, alpha=0.2, random_state=7).fit(X, y, groups)
    np.testing.assert_array_equal(again.predict(X), s.predict(X))  # seeded: the same fit


# ----------------------------------------------------------------------------------------------
# training data
# ----------------------------------------------------------------------------------------------
def test_training_data_from_a_sensitivity_analysis():
    res = morris(
        {"a": [0, 1], "b": [0, 1]},
        model=lambda X, rng: X["a"].to_numpy() - X["b"].to_numpy() + rng.normal(0, 0.1, len(X)),
        trajectories=10,
        replicates=3,
    )
    X, y, groups = training_data(res)
    assert list(X.columns) == ["a", "b"] and len(X) == res.responses.size
    np.testing.assert_array_equal(y, res.responses.reshape(-1))
    np.testing.assert_array_equal(groups, np.repeat(np.arange(res.design.shape[0]), 3))
    assert FamilySurrogate(n_bootstrap=0, cv=3).fit(X, y, groups).cv_r2_ > 0.5


def test_training_data_from_a_comparison():
    res = compare(
        strategies=["bpo", "bpm", "bpo_bpm", "bso"], environments=["stable", "volatile"], n_orgs=3, periods=20
    )
    X, y, groups = training_data(res, features=["environment", "demand.cv"])
    assert list(X.environment) == ["stable"] * 3 + ["volatile"] * 3
    assert list(X["demand.cv"]) == [0.1] * 3 + [0.2] * 3
    for env in ("stable", "volatile"):
        d = res.values(env, ["bso"], "cumulative_fcf", 20) - res.values(
            env, ["bpo", "bpm", "bpo_bpm"], "cumulative_fcf", 20
        )
        np.testing.assert_allclose(y[(X.environment == env).to_numpy()], d)
    assert list(groups) == [0] * 3 + [1] * 3


def _sweep_kpis() -> pd.DataFrame:
    """A sweep's kpis table as the command line writes it: strategy × demand.cv, one seed."""
    parts = []
    for cv in (0.1, 0.3):
        for strategy in ("bpo", "bpm", "bpo_bpm", "bso"):
            cfg = orgsim.compose(
                ["environment=volatile", f"strategy={strategy}", f"demand.cv={cv}", "n_orgs=3", "periods=20"]
            )
            k = orgsim.simulate(cfg, engine="numba").kpis
            parts.append(k.assign(environment="volatile", seed=0, **{"demand.cv": cv}))
    return pd.concat(parts, ignore_index=True)


def test_training_data_from_a_sweep_pairs_each_design_point():
    kpis = _sweep_kpis()
    X, y, groups = training_data(kpis)
    assert list(X.columns) == ["environment", "demand.cv"]
    assert sorted(set(X["demand.cv"])) == [0.1, 0.3] and len(X) == 6
    for cv in (0.1, 0.3):
        sub = kpis[kpis["demand.cv"] == cv]
        total = sub.groupby(["strategy", "org"], observed=True).free_cash_flow.sum().unstack("strategy")
        d = total["bso"] - total[["bpo", "bpm", "bpo_bpm"]].mean(axis=1)
        np.testing.assert_allclose(y[(X["demand.cv"] == cv).to_numpy()], d.to_numpy())
    assert len(set(groups)) == 2
    with pytest.raises(ValueError, match=r"varies no parameter besides strategy, seed and environment"):
        training_data(kpis.drop(columns="demand.cv")[kpis["demand.cv"] == 0.1])
    with pytest.raises(ValueError, match=r"the runs with demand.cv = 0.3: the comparison has strategies"):
        training_data(kpis[~((kpis.strategy == "bso") & (kpis["demand.cv"] == 0.3))])
    with pytest.raises(ValueError, match=r"the runs with demand.cv = 0.1: runs are not paired: the firms"):
        training_data(kpis[~((kpis.strategy == "bso") & (kpis["demand.cv"] == 0.1) & (kpis.org == 2))])


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "fit_args", "error", "match"),
    [
        ({}, {"y": np.zeros(3)}, ValueError, r"y has \(3,\), must be one number per row of X \(40\)"),
        ({}, {"y": np.r_[np.nan, np.zeros(39)]}, ValueError, r"y has 1 non-finite values"),
        ({}, {"groups": np.zeros(3)}, ValueError, r"groups has shape \(3,\), must be \(40,\)"),
        (
            {"cv": 25},
            {"groups": np.repeat(np.arange(20), 2)},
            ValueError,
            r"cv == 25 folds, but there are only 20 design points",
        ),
        ({"cv": 1}, {}, ValueError, r"cv == 1, must be >= 2 folds"),
        ({"n_bootstrap": -1}, {}, ValueError, r"n_bootstrap == -1, must be >= 0"),
        ({"n_bootstrap": 2.5}, {}, TypeError, r"n_bootstrap == 2.5, must be an integer"),
        ({"alpha": 0}, {}, ValueError, r"alpha == 0, must be in \(0, 1\)"),
        ({}, {"X": np.zeros(40)}, ValueError, r"X has shape \(40,\), must be 2-D"),
        ({}, {"X": pd.DataFrame({"a": [np.nan] * 40})}, ValueError, r"X column 'a' has 40 missing values"),
    ],
)
def test_bad_fit_input_is_refused_naming_it(kwargs, fit_args, error, match):
    X, y, _ = planted(g=20, r=2)
    args = {"X": X, "y": y, "groups": None, **fit_args}
    with pytest.raises(error, match=match):
        FamilySurrogate(**{"n_bootstrap": 0, **kwargs}).fit(args["X"], args["y"], args["groups"])


def test_bad_map_and_prediction_input(fitted):
    s = fitted[0]
    with pytest.raises(ValueError, match=r"x == 'c', must be one of \['a', 'b', 'nuisance'\]"):
        s.win_map("c", "b")
    with pytest.raises(ValueError, match=r"x == y == 'a', must be two different features"):
        s.win_map("a", "a")
    with pytest.raises(ValueError, match=r"at names 'a', must name other features"):
        s.win_map("a", "b", at={"a": 0.5})
    with pytest.raises(ValueError, match=r"at == 'mean', must be None, 'average' or a mapping"):
        s.win_map("a", "b", at="mean")
    with pytest.raises(ValueError, match=r"grid == 1, must be an integer >= 2"):
        s.win_map("a", "b", grid=1)
    with pytest.raises(ValueError, match=r"X lacks feature\(s\) \['nuisance'\]"):
        s.predict(pd.DataFrame({"a": [0.1], "b": [0.2]}))
    with pytest.raises(ValueError, match=r"features item 'z', must be one of"):
        s.partial_dependence_plot(["z"])
    X, y, groups = planted(g=20, r=2)
    plain = FamilySurrogate(n_bootstrap=0, cv=3).fit(X, y, groups)
    with pytest.raises(ValueError, match=r"n_bootstrap == 0: the map needs intervals"):
        plain.win_map("a", "b")
    with pytest.raises(ValueError, match=r"n_bootstrap == 0: intervals need bootstrap refits"):
        plain.predict_interval(X)
    env = FamilySurrogate(n_bootstrap=2, cv=3).fit(X.assign(environment=["s", "v"] * 20), y)
    with pytest.raises(ValueError, match=r"x == 'environment' is categorical, must be a numeric feature"):
        env.win_map("environment", "a")


def test_bad_training_sources():
    with pytest.raises(ValueError, match=r"the kpis table lacks 'strategy' or 'environment'"):
        training_data(pd.DataFrame({"org": [0], "period": [1]}))
    res = morris({"a": [0, 1]}, model=lambda X, rng: X["a"].to_numpy(), trajectories=2, replicates=2)
    with pytest.raises(ValueError, match=r"features item 'b', must be one of \['a'\]"):
        training_data(res, features=["b"])


def test_docstring_examples_run():
    import doctest

    import orgsim.surrogate

    failures, tried = doctest.testmod(orgsim.surrogate, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0
