"""orgsim.sensitivity: Morris screening and Sobol' indices (SALib), seed-aware.

The analyses are checked against SALib called directly on the same design (identical numbers),
against the analytic Sobol' indices of the Ishigami function, and against functions with known
noise (the noise report and the noise corrections). On orgsim, designs are small (3 parameters,
4 trajectories, 2 replicates, 60 periods): the checks there are of the plumbing (each arm's
per-firm outcome equals a direct simulate call, common random numbers, reproducibility) and of a
parameter the model does not use, whose effects must look like replicate noise.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from SALib.analyze import morris as salib_morris
from SALib.analyze import sobol as salib_sobol
from SALib.sample import morris as salib_morris_sample
from SALib.sample import sobol as salib_sobol_sample

import orgsim
from orgsim import ConfigError
from orgsim.comparison import firm_outcomes
from orgsim.sensitivity import (
    MorrisResult,
    Parameter,
    SobolResult,
    _run_values,
    check_parameters,
    load_settings,
    main,
    morris,
    sobol,
)

PI = math.pi
BOUNDS = [-PI, PI]
ISHIGAMI = {"x1": BOUNDS, "x2": BOUNDS, "x3": BOUNDS}
T = 60
BASE = ["periods=60", "environment=stable"]
# demand.shock_size: unused in the stable environment, whose demand.shock_prob is 0
MODEL_PARAMS = {
    "management.execution_noise": [0.0, 0.3],
    "culture.p3": [0.0, 0.01],
    "demand.shock_size": [-0.5, 0.5],
}


def ishigami(X: pd.DataFrame, rng, sd: float = 0.0) -> np.ndarray:
    """Ishigami & Homma (1990), a = 7, b = 0.1, plus N(0, sd²) noise."""
    x1, x2, x3 = X["x1"].to_numpy(), X["x2"].to_numpy(), X["x3"].to_numpy()
    y = np.sin(x1) + 7 * np.sin(x2) ** 2 + 0.1 * x3**4 * np.sin(x1)
    return y + rng.normal(0.0, sd, len(X)) if sd > 0 else y


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> dict[tuple[str, str], float]:
    """The analytic indices of the Ishigami function (Ishigami & Homma 1990; the variance
    decomposition as in Sobol' & Levitan 1999): V = a²/8 + bπ⁴/5 + b²π⁸/18 + 1/2,
    V1 = (1 + bπ⁴/5)²/2, V2 = a²/8, V13 = 8b²π⁸/225, V3 = 0."""
    v = a**2 / 8 + b * PI**4 / 5 + b**2 * PI**8 / 18 + 0.5
    v1, v2, v13 = 0.5 * (1 + b * PI**4 / 5) ** 2, a**2 / 8, 8 * b**2 * PI**8 / 225
    return {
        ("x1", "S1"): v1 / v,
        ("x2", "S1"): v2 / v,
        ("x3", "S1"): 0.0,
        ("x1", "ST"): (v1 + v13) / v,
        ("x2", "ST"): v2 / v,
        ("x3", "ST"): v13 / v,
    }


def problem(names, bounds):
    return {"num_vars": len(names), "names": list(names), "bounds": [list(b) for b in bounds]}


@pytest.fixture(scope="module")
def arms() -> dict[str, orgsim.Config]:
    return {s: orgsim.compose([*BASE, f"strategy={s}"]) for s in ("bso", "bpo", "bpm", "bpo_bpm")}


@pytest.fixture(scope="module")
def family_morris() -> MorrisResult:
    return morris(MODEL_PARAMS, overrides=BASE, trajectories=4, replicates=2, seed=3)


# ----------------------------------------------------------------------------------------------
# against SALib called directly, and known functions
# ----------------------------------------------------------------------------------------------
def test_morris_equals_salib_called_directly_on_the_same_design():
    def f(X, rng):
        return 2 * X["a"].to_numpy() + X["b"].to_numpy() ** 2 + np.sin(4 * X["c"].to_numpy())

    params = {"a": [0.0, 1.0], "b": [-1.0, 2.0], "c": [0.0, 3.0]}
    res = morris(params, model=f, trajectories=8, replicates=2, levels=6, resamples=200, seed=11)
    prob = problem(params, params.values())
    X = salib_morris_sample.sample(prob, 8, num_levels=6, seed=res.seeds["sample"])
    np.testing.assert_array_equal(res.design, X)
    y = f(pd.DataFrame(X, columns=list(params)), None)
    si = salib_morris.analyze(
        prob, X, y, num_resamples=200, conf_level=0.95, num_levels=6, seed=res.seeds["bootstrap"]
    )
    frame = res.summary_frame(0.05)
    for col, key in (("mean", "mu_star"), ("mu", "mu"), ("sigma", "sigma")):
        np.testing.assert_allclose(frame[col], np.asarray(si[key], dtype=float), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        frame.mean_ci_upper - frame["mean"],
        np.asarray(si["mu_star_conf"], dtype=float),
        rtol=1e-10,
        atol=1e-12,
    )
    # the elementary effects recomputed from the design give SALib's mean effect
    ee = res.elementary_effects.groupby("parameter", sort=False).effect.mean().reindex(list(params))
    np.testing.assert_allclose(ee, frame["mu"], rtol=1e-10, atol=1e-12)


def test_sobol_equals_salib_called_directly_on_the_same_design():
    res = sobol(ISHIGAMI, model=ishigami, base_samples=256, replicates=2, resamples=100, seed=5)
    prob = problem(ISHIGAMI, ISHIGAMI.values())
    X = salib_sobol_sample.sample(prob, 256, calc_second_order=False, scramble=True, seed=res.seeds["sample"])
    np.testing.assert_array_equal(res.design, X)
    y = ishigami(pd.DataFrame(X, columns=list(ISHIGAMI)), None)
    si = salib_sobol.analyze(prob, y, calc_second_order=False, num_resamples=100, seed=res.seeds["bootstrap"])
    frame = res.summary_frame(0.05).set_index(["parameter", "index"])
    for j, name in enumerate(ISHIGAMI):
        for index in ("S1", "ST"):
            assert frame.loc[(name, index), "mean"] == pytest.approx(si[index][j], rel=1e-12, abs=1e-12)
            half = frame.loc[(name, index), "mean_ci_upper"] - frame.loc[(name, index), "mean"]
            assert half == pytest.approx(si[index + "_conf"][j], rel=1e-10)
    # without noise the correction changes nothing
    np.testing.assert_allclose(frame.adjusted, frame["mean"], rtol=1e-12)


def test_sobol_recovers_the_analytic_ishigami_indices():
    res = sobol(ISHIGAMI, model=ishigami, base_samples=4096, replicates=2, resamples=200, seed=0)
    frame = res.summary_frame(0.05).set_index(["parameter", "index"])
    for key, truth in ishigami_indices().items():
        est, se = frame.loc[key, "mean"], frame.loc[key, "mean_se"]
        assert se < 0.03, f"{key}: bootstrap SE {se} too large for the check to have power"
        # tolerance: 4 bootstrap standard errors (SALib's)
        assert abs(est - truth) <= 4 * se, f"{key}: {est:.4f} vs analytic {truth:.4f} (SE {se:.4f})"


def test_second_order_indices_of_ishigami():
    res = sobol(
        ISHIGAMI, model=ishigami, base_samples=2048, replicates=2, second_order=True, resamples=100, seed=2
    )
    frame = res.summary_frame().set_index(["parameter", "index"])
    v = 7**2 / 8 + 0.1 * PI**4 / 5 + 0.01 * PI**8 / 18 + 0.5
    truth = {"x1 × x2": 0.0, "x1 × x3": 8 * 0.01 * PI**8 / 225 / v, "x2 × x3": 0.0}
    for pair, s2 in truth.items():
        est, se = frame.loc[(pair, "S2"), "mean"], frame.loc[(pair, "S2"), "mean_se"]
        assert abs(est - s2) <= 4 * se, f"{pair}: {est:.3f} vs {s2:.3f} (SE {se:.3f})"


def test_an_input_the_function_ignores_has_zero_effect_exactly():
    def f(X, rng):
        return 3 * X["a"].to_numpy() - X["b"].to_numpy() ** 3

    params = {"a": [0, 1], "b": [0, 1], "unused": [0, 1]}
    m = morris(params, model=f, trajectories=6, replicates=2).summary_frame().set_index("parameter")
    assert m.loc["unused", "mean"] == 0.0 and m.loc["unused", "sigma"] == 0.0
    assert m.loc["a", "mean"] == pytest.approx(3.0)  # linear: every effect is 3 per full range
    s = (
        sobol(params, model=f, base_samples=64, replicates=2)
        .summary_frame()
        .set_index(["parameter", "index"])
    )
    assert s.loc[("unused", "ST"), "mean"] == 0.0 and s.loc[("unused", "S1"), "mean"] == 0.0


# ----------------------------------------------------------------------------------------------
# the noise: a known function plus known noise
# ----------------------------------------------------------------------------------------------
def test_noise_report_estimates_the_known_replicate_variance():
    sd, r = 0.5, 5

    def f(X, rng):
        return 2 * X["a"].to_numpy() + rng.normal(0.0, sd, len(X))

    res = morris({"a": [0, 1], "u": [0, 1]}, model=f, trajectories=50, replicates=r, seed=4)
    n = res.noise
    p = res.design.shape[0]
    se = sd**2 * math.sqrt(2 / (p * (r - 1)))  # SE of the pooled variance (normal noise)
    assert abs(n.replicate_variance - sd**2) <= 4 * se
    assert n.replicates == r and n.points == p
    signal = np.var(2 * res.design[:, 0], ddof=1)
    # the variance of the means is signal + σ²/R, and the shares follow from it
    assert n.mean_variance == pytest.approx(np.var(res.means, ddof=1))
    assert n.noise_share == pytest.approx(n.replicate_variance / r / n.mean_variance)
    assert n.parameter_variance == pytest.approx(signal, rel=0.1)  # 4 SE of a variance from 100 means
    assert n.noise_share_per_firm == pytest.approx(sd**2 / (signal + sd**2), abs=0.05)


def test_morris_noise_floor_matches_a_pure_noise_input():
    sd, r, traj = 1.0, 2, 60

    def f(X, rng):
        return 2 * X["a"].to_numpy() + rng.normal(0.0, sd, len(X))

    res = morris({"a": [0, 1], "u": [0, 1]}, model=f, trajectories=traj, replicates=r, seed=8)
    frame = res.summary_frame().set_index("parameter")
    delta = res.delta
    v = 2 * sd**2 / (r * delta**2)  # variance of each effect of u: noise only
    # μ* of u is a mean of |N(0, v)|: its expectation is √(2v/π), its SE √(v(1 − 2/π)/r)
    se = math.sqrt(v * (1 - 2 / math.pi) / traj)
    assert abs(frame.loc["u", "noise_floor"] - math.sqrt(2 * v / math.pi)) <= 4 * se
    assert abs(frame.loc["u", "mean"] - frame.loc["u", "noise_floor"]) <= 4 * se
    assert not frame.loc["u", "above_noise"]
    assert frame.loc["a", "above_noise"]
    # μ is unbiased: its SE is √(v / r)
    assert abs(frame.loc["u", "mu"]) <= 4 * math.sqrt(v / traj)
    # σ of a linear input is noise only: √(v) within 4 SE of a sample SD (≈ σ / √(2(r − 1)))
    assert abs(frame.loc["a", "sigma"] - math.sqrt(v)) <= 4 * math.sqrt(v) / math.sqrt(2 * (traj - 1))
    assert frame.loc["a", "sigma_noise"] == pytest.approx(math.sqrt(v), rel=4 / math.sqrt(2 * traj * (r - 1)))


def test_morris_noise_floor_is_unbiased_with_few_replicates():
    # R = 2: the square root of each effect's estimated noise variance (2 dof) is 11% low on
    # average (E[√(χ²₂/2)] = 0.886); the floor divides that out
    sd, r, traj = 1.0, 2, 2000

    def f(X, rng):
        return X["a"].to_numpy() + rng.normal(0.0, sd, len(X))

    res = morris({"a": [0, 1], "u": [0, 1]}, model=f, trajectories=traj, replicates=r, resamples=50, seed=9)
    floor = res.summary_frame().set_index("parameter").loc["u", "noise_floor"]
    truth = math.sqrt(2 / math.pi * 2 * sd**2 / (r * res.delta**2))
    # tolerance: 4 SE; one effect's √(χ²₂/2)/0.886 has relative SD √(1/0.886² − 1) = 0.52
    assert abs(floor / truth - 1) <= 4 * 0.52 / math.sqrt(traj)


def test_sobol_noise_bias_and_its_correction_on_ishigami_plus_noise():
    sd, r = 3.0, 4
    res = sobol(
        ISHIGAMI,
        model=lambda X, rng: ishigami(X, rng, sd),
        base_samples=4096,
        replicates=r,
        resamples=200,
        seed=6,
    )
    frame = res.summary_frame().set_index(["parameter", "index"])
    v_true = 7**2 / 8 + 0.1 * PI**4 / 5 + 0.01 * PI**8 / 18 + 0.5
    noise = sd**2 / r
    for key, truth in ishigami_indices().items():
        raw, se = frame.loc[key, "mean"], frame.loc[key, "mean_se"]
        # the bias the docs derive: S1 -> S1·V/(V + σ²/R), ST -> (ST·V + σ²/R)/(V + σ²/R)
        biased = (
            truth * v_true / (v_true + noise)
            if key[1] == "S1"
            else (truth * v_true + noise) / (v_true + noise)
        )
        assert abs(raw - biased) <= 4 * se, f"{key}: raw {raw:.3f}, predicted biased value {biased:.3f}"
        adj = frame.loc[key, "adjusted"]
        adj_se = (frame.loc[key, "adjusted_ci_upper"] - adj) / 1.959963984540054
        assert abs(adj - truth) <= 4 * adj_se, f"{key}: adjusted {adj:.3f} vs analytic {truth:.3f}"
    # ST of x3 is biased upwards by noise: the raw estimate is out of reach of the truth
    assert (
        frame.loc[("x3", "ST"), "mean"] - ishigami_indices()[("x3", "ST")]
        > 4 * frame.loc[("x3", "ST"), "mean_se"]
    )


# ----------------------------------------------------------------------------------------------
# orgsim: arms, common random numbers, reproducibility, an unused parameter
# ----------------------------------------------------------------------------------------------
def test_each_arm_is_one_simulate_call_with_a_row_per_firm(family_morris):
    res = family_morris
    rows = res.training_frame()[list(MODEL_PARAMS)]
    assert len(rows) == res.design.shape[0] * 2
    assert set(res.arm_values) == {"bso", "bpo", "bpm", "bpo_bpm"}
    for arm in ("bso", "bpm"):
        cfg = orgsim.compose([*BASE, f"strategy={arm}"])
        direct = orgsim.simulate(cfg, engine="numba", seed=res.seeds["seed"], params=rows, progress=False)
        expected = firm_outcomes(direct, horizons=[T])["cumulative_fcf"].to_numpy()
        np.testing.assert_array_equal(res.arm_values[arm].reshape(-1), expected)


def test_family_response_is_culture_minus_pooled_efficiency(family_morris):
    res = family_morris
    a = res.arm_values
    np.testing.assert_allclose(res.responses, a["bso"] - (a["bpo"] + a["bpm"] + a["bpo_bpm"]) / 3, rtol=1e-12)
    assert res.crn_verified is True
    assert res.target.horizon == T and res.target.unit == "MU"


def test_same_seed_same_analysis_and_another_seed_another(family_morris):
    # the same seed as an int (the fixture) and as a SeedSequence: the same analysis
    again = morris(MODEL_PARAMS, overrides=BASE, trajectories=4, replicates=2, seed=np.random.SeedSequence(3))
    np.testing.assert_array_equal(again.responses, family_morris.responses)
    pd.testing.assert_frame_equal(again.summary_frame(), family_morris.summary_frame())
    other = morris(MODEL_PARAMS, overrides=BASE, trajectories=4, replicates=2, seed=4)
    assert not np.array_equal(other.design, family_morris.design)
    assert not np.array_equal(other.responses, family_morris.responses)


def test_a_parameter_the_model_does_not_use_looks_like_replicate_noise(family_morris):
    res = family_morris
    rows = res.training_frame()[list(MODEL_PARAMS)].head(4)
    cfg = orgsim.compose([*BASE, "strategy=bso"])
    # precondition: with demand.shock_prob == 0 the model does not use demand.shock_size
    low = orgsim.simulate(
        cfg, engine="numba", params=rows.assign(**{"demand.shock_size": -0.5}), progress=False
    )
    high = orgsim.simulate(
        cfg, engine="numba", params=rows.assign(**{"demand.shock_size": 0.5}), progress=False
    )
    np.testing.assert_array_equal(low.kpi_arrays["free_cash_flow"], high.kpi_arrays["free_cash_flow"])
    ee = res.elementary_effects[res.elementary_effects.parameter == "demand.shock_size"]
    r = len(ee)
    f = res.summary_frame().set_index("parameter").loc["demand.shock_size"]
    # its effects are differences of replicate noise: μ = 0 and μ* = the noise floor, each within 4 SE
    assert abs(f["mu"]) <= 4 * math.sqrt(ee.noise_variance.sum()) / r
    se_star = math.sqrt(ee.noise_variance.mean() * (1 - 2 / math.pi) / r)
    assert abs(f["mean"] - f["noise_floor"]) <= 4 * se_star + 1e-9
    assert f["noise_floor"] > 0  # the firms are stochastic: the floor is not zero


def test_unused_parameter_has_total_index_near_zero_once_noise_is_removed():
    res = sobol(
        {"management.execution_noise": [0.0, 0.3], "demand.shock_size": [-0.5, 0.5]},
        strategy="bso",
        overrides=BASE,
        base_samples=32,
        replicates=2,
        resamples=200,
        seed=1,
    )
    f = res.summary_frame().set_index(["parameter", "index"])
    adj, upper = (
        f.loc[("demand.shock_size", "ST"), "adjusted"],
        f.loc[("demand.shock_size", "ST"), "adjusted_ci_upper"],
    )
    se = (upper - adj) / 1.959963984540054
    assert abs(adj) <= 4 * se  # tolerance: 4 bootstrap SE (scaled by the correction)
    # the raw estimate carries the noise share instead
    v, nu = res._noise_scale
    assert (
        abs(f.loc[("demand.shock_size", "ST"), "mean"] - nu / v)
        <= 4 * f.loc[("demand.shock_size", "ST"), "mean_se"]
    )


def test_strategy_outcome_and_integer_parameter():
    res = morris(
        {"management.bpo_every": [1, 26], "culture.p3": [0.0, 0.01]},
        strategy="bpo",
        overrides=BASE,
        outcome="ending_cash",
        horizon=30,
        trajectories=2,
        replicates=2,
    )
    assert res.target.kind == "strategy" and list(res.arm_values) == ["bpo"]
    every = res.run_values["management.bpo_every"]
    assert every.dtype == np.int64 and every.between(1, 26).all()
    np.testing.assert_array_equal(every, np.clip(np.floor(res.design[:, 0] + 0.5), 1, 26))
    np.testing.assert_array_equal(res.responses, res.arm_values["bpo"])
    assert "ending cash at period 30 of bpo" in res.target.describe()


def test_a_contrast_of_two_strategies():
    res = morris(
        {"culture.p3": [0.0, 0.01]}, contrast=["bso", "bpo_bpm"], overrides=BASE, trajectories=2, replicates=2
    )
    np.testing.assert_allclose(res.responses, res.arm_values["bso"] - res.arm_values["bpo_bpm"], rtol=1e-12)
    assert res.target.name == "bso − bpo_bpm"


# ----------------------------------------------------------------------------------------------
# results objects, figures, files
# ----------------------------------------------------------------------------------------------
def test_summary_frames_have_statsmodels_columns_and_alpha_rescales(family_morris):
    f95, f80 = family_morris.summary_frame(0.05), family_morris.summary_frame(0.2)
    for col in ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper"):
        assert col in f95
    ratio = (f80.mean_ci_upper - f80["mean"]) / (f95.mean_ci_upper - f95["mean"])
    np.testing.assert_allclose(ratio, 1.2815515655446004 / 1.959963984540054, rtol=1e-12)
    s = sobol({"a": [0, 1]}, model=lambda X, rng: X["a"].to_numpy(), base_samples=16, replicates=2)
    assert list(s.summary_frame().columns[:6]) == [
        "parameter",
        "index",
        "mean",
        "mean_se",
        "mean_ci_lower",
        "mean_ci_upper",
    ]
    with pytest.raises(ValueError, match=r"alpha == 1\.5"):
        family_morris.summary_frame(1.5)


def test_summary_text_and_html_name_parameters_noise_and_design(family_morris):
    text = str(family_morris.summary())
    html = family_morris._repr_html_()
    for name in MODEL_PARAMS:
        assert name in text and name in html
    assert "Replicate noise" in text and "of one firm's variance" in text
    assert "4 trajectories" in text


def test_figures_have_titles_labels_and_legends(family_morris):
    fig = family_morris.plot()
    ax = fig.axes[0]
    assert "Morris" in ax.get_title() and "μ*" in ax.get_xlabel() and "MU" in ax.get_xlabel()
    assert ax.get_ylabel() and ax.get_legend() is not None
    assert {t.get_text() for t in ax.texts} == set(MODEL_PARAMS)
    s = sobol(ISHIGAMI, model=ishigami, base_samples=64, replicates=2)
    ax = s.plot().axes[0]
    assert "Sobol" in ax.get_title() and ax.get_ylabel() and ax.get_xlabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("S1" in x for x in labels) and any("ST" in x for x in labels)


def test_to_files_writes_tables_figure_and_a_verified_meta(family_morris, tmp_path):
    from orgsim._io import check_files

    written = family_morris.to_files(tmp_path / "out", name="demo")
    assert {"indices.csv", "noise.csv", "design.parquet", "summary.txt", "morris.png", "meta.json"} == set(
        written
    )
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert check_files(tmp_path / "out", meta["files"]) is None
    assert meta["analysis"] == "demo" and meta["versions"]["SALib"] == "1.6.0"
    design = pd.read_parquet(tmp_path / "out" / "design.parquet")
    assert len(design) == family_morris.responses.size
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "out" / "indices.csv"), family_morris.summary_frame(), check_dtype=False
    )


# ----------------------------------------------------------------------------------------------
# the design values
# ----------------------------------------------------------------------------------------------
@given(
    low=st.integers(-50, 50),
    width=st.integers(1, 40),
    u=st.lists(st.floats(0, 1), min_size=1, max_size=30),
)
def test_integer_values_as_run_are_whole_and_within_bounds(low, width, u):
    p = Parameter("k", float(low), float(low + width), integer=True)
    x = low - 0.5 + np.asarray(u) * (width + 1)  # Sobol's widened range for integers
    values = _run_values([p], x[:, None])["k"]
    assert values.between(low, low + width).all()
    assert (values == np.round(values)).all()


@given(lo=st.floats(-1e6, 1e6), hi=st.floats(-1e6, 1e6))
def test_bounds_that_are_not_low_below_high_are_refused(lo, hi):
    if lo < hi:
        assert check_parameters({"a": [lo, hi]})[0].low == lo
    else:
        with pytest.raises(ValueError, match=r"parameters\['a'\] == .*must be \[low, high\] with low < high"):
            check_parameters({"a": [lo, hi]})


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("parameters", "error", "match"),
    [
        (
            {"policy.thetaa": [0, 1]},
            ConfigError,
            r"parameters\['policy.thetaa'\] is not a config key; did you mean 'policy.theta'",
        ),
        ({"policy": [0, 1]}, ConfigError, r"parameters\['policy'\] is a config section"),
        (
            {"policy.forecast": [0, 1]},
            ConfigError,
            r"parameters\['policy.forecast'\] is not numeric \(a choice",
        ),
        (
            {"culture.enabled": [0, 1]},
            ConfigError,
            r"parameters\['culture.enabled'\] is not numeric \(a switch",
        ),
        ({"network.capacity": [1, 2]}, ConfigError, r"parameters\['network.capacity'\] is a per-stage list"),
        ({"periods": [10, 20]}, ConfigError, r"parameters\['periods'\] is structural"),
        ({"network.lead_time": [1, 3]}, ConfigError, r"parameters\['network.lead_time'\] is structural"),
        ({"culture.dims": [10, 20]}, ConfigError, r"parameters\['culture.dims'\] is structural"),
        ({"seed": [0, 5]}, ConfigError, r"parameters\['seed'\] cannot be a sensitivity parameter"),
        ({"strategy.name": [0, 1]}, ConfigError, r"parameters\['strategy.name'\] cannot be a sensitivity"),
        (
            {"policy.theta": [0.0, 1.5]},
            ConfigError,
            r"parameters\['policy.theta'\] == \[0.0, 1.5\] lies outside the allowed range: policy.theta == 1.5, must be <= 1",
        ),
        (
            {"demand.rho": [-1.0, 0.5]},
            ConfigError,
            r"outside the allowed range: demand.rho == -1.0, must be > -1",
        ),
        (
            {"management.bpo_every": [1.5, 26]},
            ValueError,
            r"must be whole numbers: management.bpo_every is an integer",
        ),
        ({"policy.theta": [0.5, 0.2]}, ValueError, r"must be \[low, high\] with low < high"),
        ({"policy.theta": [0.2, float("nan")]}, ValueError, r"must be finite numbers"),
        ({"policy.theta": 0.3}, TypeError, r"parameters\['policy.theta'\] == 0.3, must be \[low, high\]"),
        ({"policy.theta": ["a", "b"]}, TypeError, r"must be \[low, high\] \(two numbers\)"),
        ({}, ValueError, r"must name at least one parameter"),
        ("policy.theta", TypeError, r"must be a mapping of parameter names to \[low, high\]"),
    ],
)
def test_bad_parameters_are_refused_naming_them(parameters, error, match, arms):
    with pytest.raises(error, match=match):
        check_parameters(parameters, arms)


def test_the_analyses_validate_their_parameters():
    with pytest.raises(ConfigError, match=r"parameters\['periods'\] is structural"):
        morris({"periods": [10, 20]}, overrides=BASE, trajectories=2, replicates=2)
    with pytest.raises(ConfigError, match=r"parameters\['policy.theta'\] == \[0.0, 1.5\] lies outside"):
        sobol({"policy.theta": [0.0, 1.5]}, strategy="bso", overrides=BASE, base_samples=4, replicates=2)


def test_a_parameter_that_erases_the_difference_between_arms_warns():
    with pytest.warns(UserWarning, match=r"the arms differ in management.alignment_rate"):
        check_parameters(
            {"management.alignment_rate": [0.0, 0.1]},
            {s: orgsim.compose([*BASE, f"strategy={s}"]) for s in ("bso", "bpo")},
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"replicates": 1}, ValueError, r"replicates == 1, must be >= 2"),
        ({"trajectories": 1}, ValueError, r"trajectories == 1, must be >= 2"),
        ({"levels": 3}, ValueError, r"levels == 3, must be even"),
        ({"conf_level": 1.5}, ValueError, r"conf_level == 1.5, must be in \(0, 1\)"),
        ({"resamples": 1}, ValueError, r"resamples == 1, must be >= 2"),
        ({"outcome": "profit"}, ValueError, r"outcome == 'profit', must be one of 'cumulative_fcf'"),
        ({"horizon": 0}, ValueError, r"horizon == 0, must be a period in 1..60"),
        ({"horizon": 61}, ValueError, r"horizon == 61, must be a period in 1..60"),
        ({"horizon": 2.5}, TypeError, r"horizon == 2.5, must be an integer"),
        ({"contrast": "families"}, ValueError, r"contrast == 'families', must be 'family' or a pair"),
        ({"contrast": ["bso", "bsoo"]}, ConfigError, r"contrast\[1\] == 'bsoo', must name strategies from"),
        ({"contrast": ["bso", "bso"]}, ValueError, r"must not put 'bso' in both arms"),
        ({"contrast": None}, ValueError, r"contrast == None and strategy == None, must give one"),
        ({"strategy": "nope"}, ConfigError, r"strategy == 'nope', must name strategies from"),
        ({"contrast": ["bso", "bpo"], "strategy": "bso"}, ValueError, r"must give one of them"),
        ({"overrides": [*BASE, "strategy=bso"]}, ConfigError, r"overrides sets 'strategy=bso', must not"),
        ({"overrides": [*BASE, "n_orgs=4"]}, ConfigError, r"overrides sets 'n_orgs=4', must not"),
        ({"overrides": [*BASE, "seed=4"]}, ConfigError, r"overrides sets 'seed=4', must not: pass seed="),
        ({"overrides": [*BASE, "policy.theta=2"]}, ConfigError, r"overrides: policy.theta == 2"),
        ({"overrides": "periods=60"}, TypeError, r"overrides == 'periods=60', must be a list"),
        ({"engine": "fast"}, ValueError, r"engine == 'fast', must be one of 'numba', 'mesa'"),
        ({"seed": -1}, ValueError, r"seed"),
    ],
)
def test_bad_arguments_are_refused_naming_them(kwargs, error, match):
    args = {"overrides": BASE, "trajectories": 2, "replicates": 2, **kwargs}
    with pytest.raises(error, match=match):
        morris({"culture.p3": [0.0, 0.01]}, **args)


def test_bad_sobol_and_function_arguments():
    with pytest.raises(ValueError, match=r"base_samples == 100, must be a power of 2 .* e.g. 64 or 128"):
        sobol({"a": [0, 1]}, model=lambda X, rng: X["a"], base_samples=100)
    with pytest.raises(TypeError, match=r"second_order == 'yes', must be True or False"):
        sobol({"a": [0, 1]}, model=lambda X, rng: X["a"], base_samples=8, second_order="yes")
    with pytest.raises(ValueError, match=r"model returned shape \(3,\), must return one value per row"):
        morris({"a": [0, 1]}, model=lambda X, rng: np.zeros(3), trajectories=2, replicates=2)
    with pytest.raises(ValueError, match=r"model returned 1 non-finite values"):
        morris(
            {"a": [0, 1]},
            model=lambda X, rng: np.r_[np.nan, np.zeros(len(X) - 1)],
            trajectories=2,
            replicates=2,
        )
    with pytest.raises(TypeError, match=r"model == 3, must be a callable"):
        morris({"a": [0, 1]}, model=3)
    with pytest.raises(ValueError, match=r"overrides and strategy apply to orgsim only"):
        morris({"a": [0, 1]}, model=lambda X, rng: X["a"], overrides=["periods=5"])


def test_an_outcome_undefined_for_some_firms_is_refused():
    # revenue growth needs a 13-week window: undefined at period 5
    with pytest.raises(
        ValueError, match=r"outcome == 'revenue_growth' is undefined \(NaN\) for 8 of 8 firms"
    ):
        morris(
            {"culture.p3": [0.0, 0.01]},
            strategy="bso",
            overrides=BASE,
            outcome="revenue_growth",
            horizon=5,
            trajectories=2,
            replicates=2,
        )


# ----------------------------------------------------------------------------------------------
# configured analyses and the command line (in process)
# ----------------------------------------------------------------------------------------------
SMALL = [
    "periods=30",
    "sensitivity.horizon=30",
    "sensitivity.replicates=2",
    "sensitivity.morris.trajectories=2",
]


def test_settings_from_the_group_file_with_overrides():
    settings, model_ov = load_settings(
        "family_fcf",
        [
            "sensitivity.replicates=3",
            "+sensitivity.parameters.demand.rho=[0,0.8]",
            "~sensitivity.parameters.culture.p1",
            "periods=60",
        ],
    )
    assert settings["replicates"] == 3
    assert settings["parameters"]["demand"]["rho"] == [0, 0.8]
    assert "p1" not in settings["parameters"]["culture"]
    assert model_ov == ["environment=volatile", "periods=60"]  # the file's own overrides first


def test_settings_compose_through_hydra_when_the_schema_admits_the_node(monkeypatch):
    """The lead's intended path: ``compose_hydra(["+sensitivity=NAME", ...])``, once the schema has
    a ``sensitivity`` node (as ``orgsim.config.TOOL_NODES`` anticipates); it must give the same
    settings as reading the file while the schema lacks it."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import open_dict

    import orgsim.config as config
    from orgsim import sensitivity

    overrides = ["sensitivity.replicates=3", "+sensitivity.parameters.demand.rho=[0,0.8]", "periods=30"]
    expected = load_settings("family_fcf", overrides)
    original = config._schema_node

    def with_tool_nodes():
        node = original()
        with open_dict(node):
            for name in ("experiment", "calibration", "sensitivity"):
                node[name] = None
        return node

    def no_file_reading(*args):
        raise AssertionError("the settings were read from the file, not composed by Hydra")

    repo = ConfigStore.instance().repo
    saved = repo.pop("orgsim_schema.yaml", None)
    monkeypatch.setattr(config, "_schema_node", with_tool_nodes)
    monkeypatch.setattr(sensitivity, "_load_group_file", no_file_reading)
    try:
        composed = config.compose_hydra(["+sensitivity=family_fcf", *overrides[:2]])
        assert "sensitivity" in composed  # Hydra composed the group itself
        assert load_settings("family_fcf", overrides) == expected
    finally:
        repo.pop("orgsim_schema.yaml", None)
        if saved is not None:
            repo["orgsim_schema.yaml"] = saved


def test_cli_runs_a_configured_analysis_and_writes_its_files(tmp_path, capsys):
    out = tmp_path / "morris"
    rc = main(["family_fcf", *SMALL, "--out", str(out), "seed=2"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "arm 1/4: bso" in captured.err  # progress lines
    assert "Morris screening" in captured.out
    indices = pd.read_csv(out / "indices.csv")
    assert list(indices.parameter) == [
        "management.execution_noise",
        "culture.p3",
        "culture.p1",
        "demand.cv",
        "supply.disruption_prob",
    ]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["seeds"]["seed"] == 2 and meta["overrides"] == ["environment=volatile", "periods=30"]
    assert (out / "morris.png").stat().st_size > 0


def test_cli_runs_sobol_too(tmp_path, capsys):
    out = tmp_path / "sobol"
    argv = ["family_fcf", "periods=30", "sensitivity.horizon=30", "sensitivity.replicates=2", "--quiet"]
    argv += ["sensitivity.method=sobol", "sensitivity.sobol.base_samples=4", "sensitivity.strategy=bso"]
    argv += ["sensitivity.contrast=null", "--out", str(out)]
    assert main(argv) == 0, capsys.readouterr().err
    assert capsys.readouterr().err == ""  # --quiet
    assert set(pd.read_csv(out / "indices.csv")["index"]) == {"S1", "ST"}
    assert (out / "sobol.png").exists()


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        ([], "NAME is required, must be an analysis in conf/sensitivity/ (family_fcf)"),
        (["nope"], "sensitivity == 'nope', must be one of 'family_fcf'"),
        (["family_fcf", "sensitivity.replicates=1"], "replicates == 1, must be >= 2"),
        (["family_fcf", "sensitivity.bogus=1"], "sensitivity.bogus is not a setting of the analysis"),
        (["family_fcf", "+sensitivity.bogus=1"], "sensitivity.bogus is not a setting; allowed:"),
        (
            ["family_fcf", "sensitivity.method=foo"],
            "sensitivity.method == 'foo', must be one of 'morris', 'sobol'",
        ),
        (["family_fcf", "+sensitivity.parameters.periods=[10,20]"], "parameters['periods'] is structural"),
        (
            ["family_fcf", "sensitivity.parameters.culture.p3=[0,2]"],
            "lies outside the allowed range: culture.p3 == 2.0, must be <= 1",
        ),
        (["family_fcf", "strategy=bso"], "overrides sets 'strategy=bso', must not"),
        (["family_fcf", "policy.theta=9"], "policy.theta == 9"),
        (["family_fcf", "seed=abc"], "seed == 'abc', must be an integer"),
        (["family_fcf", "sensitivity.replicates=[1"], ""),
        (["family_fcf", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(argv, match, capsys, tmp_path):
    rc = main([*argv, "--out", str(tmp_path / "never")] if argv else argv)
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orgsim-sensitivity: error: "), err
    assert match in lines[0]
    assert not (tmp_path / "never").exists()


def test_cli_out_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["family_fcf", "--out", str(f)]) == 2
    assert "must be a directory" in capsys.readouterr().err


def test_results_are_the_public_types(family_morris):
    assert isinstance(family_morris, MorrisResult)
    s = sobol({"a": [0, 1]}, model=lambda X, rng: X["a"].to_numpy(), base_samples=8, replicates=2)
    assert isinstance(s, SobolResult)


def test_docstring_and_docs_examples_run():
    """The Examples of the module's docstrings and the doctest in docs/sensitivity.md."""
    import doctest
    from pathlib import Path

    import orgsim.sensitivity

    failures, tried = doctest.testmod(orgsim.sensitivity, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0
    docs = Path(__file__).resolve().parents[1] / "docs" / "sensitivity.md"
    failures, tried = doctest.testfile(
        str(docs), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert tried > 0 and failures == 0
