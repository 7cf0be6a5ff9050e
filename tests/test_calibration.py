"""orgsim.calibration: SMM calibration (moments, common random numbers, weighting, standard
errors, J test), its persistence (resume, shared studies, SIGKILL), recovery and identification,
the ABC-SMC posterior, the parametric bootstrap and the ``orgsim-calibrate`` command.

Models are small (the 36-week beer game, a one-stage AR(1) demand model of ~60-100 periods);
statistical checks state their tolerance in Monte Carlo standard errors. Runs are seeded, so each
check is deterministic; the tolerances say how often a correct implementation would fail.
"""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

import orgsim
from orgsim import _abc, _smm
from orgsim.calibration import (
    CalibrationResult,
    ObservedDataError,
    calibrate,
    calibration_settings,
    main,
    recovery,
)
from orgsim.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
BEER = ["scenario=beer_game", "management.execution_noise=0.1"]
#: a one-stage firm with AR(1) demand and no floor or rounding: std and mean of demand are
#: exactly linear in demand.cv on common random numbers, so the SMM estimator is linear there
LINEAR = ["scenario=chen_bullwhip", "periods=80"]
BEER_MOMENTS = [
    "std:order@0",
    "std:order@3",
    "acf:order@0:1",
    "acf:order@3:1",
    "mean:inventory@0",
    "mean:inventory@3",
]


@functools.cache
def beer_network():
    return orgsim.network.build_network(orgsim.compose(BEER))


def beer_teams(n: int = 2, seed: int = 4242) -> pd.DataFrame:
    cfg = orgsim.compose(BEER)
    return orgsim.simulate(cfg.replace(n_orgs=n), engine="numba", seed=seed, teams=True, progress=False).teams


@pytest.fixture(scope="module")
def beer_fit() -> CalibrationResult:
    """α_S and β of the 36-week beer game from two simulated games (truth 0.26 and 0.34)."""
    return calibrate(
        beer_teams(),
        params={"policy.alpha_s": (0.05, 1.0), "policy.beta": (0.0, 1.0)},
        moments=BEER_MOMENTS,
        overrides=BEER,
        skip=4,
        n_trials=24,
        batch_size=12,
        replicates=16,
        se_replicates=100,
        progress=False,
    )


# --------------------------------------------------------------------------------------------
# moments
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "mapping"),
    [
        ("mean:inventory_units", {"stat": "mean", "series": "inventory_units"}),
        ("std:order@2", {"stat": "std", "series": "order@2"}),
        ("acf:demand:3", {"stat": "acf", "series": "demand", "lag": 3}),
        ("ccf:demand:order@0:-2", {"stat": "ccf", "series": ["demand", "order@0"], "lag": -2}),
        ("bullwhip:1", {"stat": "bullwhip", "stage": 1}),
        ("fill_rate", {"stat": "fill_rate"}),
    ],
)
def test_moment_text_and_mapping_forms_agree(text, mapping):
    a, b = _smm.Moment.parse(text), _smm.Moment.parse(mapping)
    assert a == b
    assert _smm.Moment.parse(a.name) == a, "the canonical name parses back to the same moment"


def test_moment_defaults_acf_lag_1_and_ccf_lag_0():
    assert _smm.Moment.parse("acf:demand").name == "acf:demand:1"
    assert _smm.Moment.parse("ccf:demand:order@1").name == "ccf:demand:order@1:0"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("median:demand", "statistic 'median' is not one of mean, std, acf, ccf, bullwhip, fill_rate"),
        ("mean:profit", "series 'profit' is not a numeric KPI column"),
        ("std:orders@1", "a team series must be COLUMN@STAGE"),
        ("std:order@x", "a team series must be COLUMN@STAGE"),
        ("acf:demand:0", "lag == 0, must be an integer >= 1"),
        ("acf:demand:1.5", "lag == '1.5', must be an integer >= 1"),
        ("bullwhip:-1", "stage == -1, must be an integer >= 0"),
        ("fill_rate:3", "fill_rate takes no argument"),
        ("mean:demand:2", "mean takes one series"),
        ({"stat": "mean", "kpi": "demand"}, "key 'kpi' is not allowed"),
    ],
)
def test_bad_moments_are_named(spec, message):
    with pytest.raises(ValueError, match="moment") as info:
        _smm.Moment.parse(spec)
    assert message in str(info.value)


def test_moment_list_errors():
    with pytest.raises(ValueError, match="'std:demand' is given twice"):
        _smm.parse_moments(["std:demand", "std:demand"])
    with pytest.raises(TypeError, match="must be a list of moments"):
        _smm.parse_moments("std:demand")
    with pytest.raises(ValueError, match="at least one moment"):
        _smm.parse_moments([])


def test_moment_stage_beyond_the_network():
    net = orgsim.network.build_network(orgsim.compose(BEER))
    with pytest.raises(ValueError, match=r"'std:order@4': stage 4, the network has stages 0 to 3"):
        _smm.MomentSet(_smm.parse_moments(["std:order@4"]), net)


@given(
    x=arrays(np.float64, (3, 25), elements=st.floats(-100, 100)),
    y=arrays(np.float64, (3, 25), elements=st.floats(-100, 100)),
    lag=st.integers(1, 6),
)
def test_statistics_match_numpy_and_statsmodels(x, y, lag):
    """mean, std (ddof 1) and bullwhip against numpy; acf and ccf against statsmodels' acf and
    ccf(adjusted=False) (ours is corr(x_t, y_{t+k}) = statsmodels' ccf(y, x)[k])."""
    from statsmodels.tsa.stattools import acf, ccf

    net = beer_network()
    names = ["mean:demand", "std:demand", f"acf:demand:{lag}", f"ccf:demand:order@0:{lag}", "bullwhip:0"]
    ms = _smm.MomentSet(_smm.parse_moments(names), net)
    got = ms.per_firm({"demand": x, "order@0": y})
    for i in range(3):
        assert got[i, 0] == pytest.approx(x[i].mean(), abs=1e-9)
        assert got[i, 1] == pytest.approx(x[i].std(ddof=1), abs=1e-9)
        if x[i].std() > 1e-6 and y[i].std() > 1e-6:
            assert got[i, 2] == pytest.approx(acf(x[i], nlags=lag, fft=False)[lag], abs=1e-7)
            assert got[i, 3] == pytest.approx(ccf(y[i], x[i], adjusted=False, fft=False)[lag], abs=1e-7)
            assert got[i, 4] == pytest.approx(y[i].var(ddof=1) / x[i].var(ddof=1), rel=1e-9)
        if np.ptp(x[i]) == 0:
            assert got[i, 2] == 0.0, "a constant series has autocorrelation 0 by definition"


@pytest.mark.parametrize(
    "overrides", [[*BEER, "demand.cv=0.3"], ["periods=40"]], ids=["beer_game", "multinational"]
)
def test_demand_and_fill_rate_from_team_records_equal_the_kpis(overrides):
    """Observed team records alone give demand (shipped + Δbacklog at stage 0) and fill rate
    (shipped / (shipped + backlog)) exactly as the KPI columns define them (docs/model.md §10.1),
    also with three sales teams."""
    cfg = orgsim.compose(overrides)
    res = orgsim.simulate(cfg.replace(n_orgs=3), engine="numba", seed=5, teams=True, progress=False)
    ms = _smm.MomentSet(_smm.parse_moments(["std:demand", "fill_rate", "bullwhip:1"]), res.network)
    from_kpis, _, _ = ms.observed_series(res.kpis, res.teams)
    from_teams, orgs, periods = ms.observed_series(None, res.teams)
    assert (len(orgs), periods) == (3, cfg.periods)
    for name in ("demand", "fill_rate"):
        np.testing.assert_array_equal(from_teams[name], from_kpis[name])
    assert from_kpis["demand"].std() > 0, "the check needs varying demand"


def test_observed_series_errors():
    res = orgsim.simulate(orgsim.compose(BEER).replace(n_orgs=2), engine="numba", teams=True, progress=False)
    ms = _smm.MomentSet(_smm.parse_moments(["std:order@1", "mean:inventory_units"]), res.network)
    with pytest.raises(ValueError, match="'mean:inventory_units', but no KPI data were given"):
        ms.observed_series(None, res.teams)
    with pytest.raises(ValueError, match="series 'order@1' needs team records"):
        ms.observed_series(res.kpis, None)
    uneven = res.kpis[~((res.kpis.org == 1) & (res.kpis.period == 36))]
    with pytest.raises(ValueError, match="every firm must have the same number of periods"):
        _smm.MomentSet(_smm.parse_moments(["mean:inventory_units"]), res.network).observed_series(
            uneven, None
        )
    renamed = res.teams.assign(team=res.teams.team.astype(str).replace({"factory": "brewery"}))
    with pytest.raises(ValueError, match="missing: 'factory'; unknown: 'brewery'"):
        ms.observed_series(res.kpis, renamed)


# --------------------------------------------------------------------------------------------
# common random numbers
# --------------------------------------------------------------------------------------------
def test_batch_row_replicate_r_is_firm_r_of_simulate():
    """Row c, replicate r of one kernel call equals firm r of simulate(cfg changed by row c,
    seed): the same draws for every candidate (a DIRECT column and a per-stage one)."""
    cfg = orgsim.compose(BEER)
    ms = _smm.MomentSet(_smm.parse_moments(BEER_MOMENTS), orgsim.network.build_network(cfg), skip=4)
    runner = _smm.Runner(cfg, ms, seed=11, names=["policy.theta", "policy.s_prime"])
    table = pd.DataFrame({"policy.theta": [0.2, 0.7, 0.2], "policy.s_prime": [17.0, 24.0, 17.0]})
    kpis, teams = runner.simulate(table, 5)
    for c in range(3):
        alone = cfg.replace(**{"policy.theta": table.iloc[c, 0], "policy.s_prime": table.iloc[c, 1]}).replace(
            n_orgs=5
        )
        res = orgsim.simulate(alone, engine="numba", seed=11, teams=True, progress=False)
        for name in ("order", "inventory", "backlog"):
            np.testing.assert_array_equal(teams[name][c], res.team_arrays[name])
        np.testing.assert_array_equal(kpis["operating_cost"][c], res.kpi_arrays["operating_cost"])
    np.testing.assert_array_equal(teams["order"][0], teams["order"][2])
    other = runner.simulate(table.iloc[:1], 5, first=_smm.BLOCK)[1]
    assert not np.array_equal(other["order"][0], teams["order"][0]), "another block has other draws"


def test_per_firm_moments_do_not_depend_on_reused_output_buffers():
    """per_firm reuses the runner's output memory per batch size: moments of a batch are the
    same from a fresh runner and after batches of that size and of another size ran in between,
    and a result already returned is not overwritten by the next batch."""
    cfg = orgsim.compose(BEER)
    ms = _smm.MomentSet(_smm.parse_moments(BEER_MOMENTS), orgsim.network.build_network(cfg), skip=4)
    names = ["policy.theta", "policy.s_prime"]
    table = pd.DataFrame({"policy.theta": [0.2, 0.7], "policy.s_prime": [17.0, 24.0]})
    other = pd.DataFrame({"policy.theta": [0.9, 0.1], "policy.s_prime": [5.0, 35.0]})
    fresh = _smm.Runner(cfg, ms, seed=11, names=names).per_firm(table, 3)
    runner = _smm.Runner(cfg, ms, seed=11, names=names)
    first = runner.per_firm(table, 3)
    kept = first.copy()
    runner.per_firm(other, 3)  # the same batch size: the same buffers, other numbers
    runner.per_firm(other.iloc[:1], 2)  # another size
    again = runner.per_firm(table, 3)
    np.testing.assert_array_equal(first, kept)
    np.testing.assert_array_equal(again, fresh)
    np.testing.assert_array_equal(first, fresh)
    assert len(runner._buffers) == 2
    import pickle

    assert pickle.loads(pickle.dumps(runner))._buffers == {}


# --------------------------------------------------------------------------------------------
# bounds
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        (
            {"policy.theta": (0.5, 0.2)},
            ValueError,
            "params['policy.theta'] == (0.5, 0.2): low >= high, must be low < high",
        ),
        ({"policy.theta": (0.3, 0.3)}, ValueError, "low >= high"),
        (
            {"policy.theta": (-0.1, 0.5)},
            ConfigError,
            "params['policy.theta']: low bound -0.1 is outside the parameter's allowed range (policy.theta == -0.1, must be >= 0)",
        ),
        (
            {"demand.cv": (0.1, 2.5)},
            ConfigError,
            "params['demand.cv']: high bound 2.5 is outside the parameter's allowed range (demand.cv == 2.5, must be <= 2)",
        ),
        (
            {"policy.thetta": (0, 1)},
            ConfigError,
            "params['policy.thetta']: policy.thetta is not a config key",
        ),
        ({"nope": (0, 1)}, ConfigError, "params['nope']: nope is not a config key"),
        (
            {"policy.forecast": (0, 1)},
            ConfigError,
            "params['policy.forecast']: policy.forecast == 'smoothing' is not numeric",
        ),
        ({"network.integer_units": (0, 1)}, ConfigError, "network.integer_units == True is not numeric"),
        (
            {"network.lead_time": (1, 4)},
            ConfigError,
            "params['network.lead_time']: network.lead_time is structural",
        ),
        ({"periods": (10, 20)}, ConfigError, "params['periods']: periods is structural"),
        (
            {"policy.fixed_order_periods": (0, 8)},
            ConfigError,
            "policy.fixed_order_periods is an integer parameter",
        ),
        ({"seed": (0, 9)}, ConfigError, "params['seed']: seed cannot be calibrated: a run option"),
        (
            {"strategy.name": (0, 9)},
            ConfigError,
            "params['strategy.name']: strategy.name cannot be calibrated",
        ),
        (
            {"policy.theta": (0, 1, 2)},
            TypeError,
            "params['policy.theta'] == (0, 1, 2), must be a pair of numbers",
        ),
        ({"policy.theta": "0,1"}, TypeError, "must be a pair of numbers"),
        ({"policy.theta": (0, float("inf"))}, ValueError, "must be finite"),
        ({}, TypeError, "must be a non-empty mapping"),
    ],
)
def test_bad_bounds_name_the_parameter(params, error, message):
    cfg = orgsim.compose(BEER)
    with pytest.raises(error) as info:
        _smm.check_bounds(params, cfg)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_bad_bounds_through_calibrate_and_valid_per_stage_key():
    with pytest.raises(ConfigError, match=r"params\['policy.alpha_s'\]: high bound 1.5"):
        calibrate(
            beer_teams(1), params={"policy.alpha_s": (0.1, 1.5)}, overrides=BEER, n_trials=1, progress=False
        )
    ok = _smm.check_bounds({"policy.s_prime": (0, 40), "costs.holding": (0.1, 2)}, orgsim.compose(BEER))
    assert ok == {"policy.s_prime": (0.0, 40.0), "costs.holding": (0.1, 2.0)}


# --------------------------------------------------------------------------------------------
# the estimate and its uncertainty
# --------------------------------------------------------------------------------------------
def test_beer_game_estimate_recovers_the_truth(beer_fit):
    """Truth α_S = 0.26, β = 0.34 (conf/scenario/beer_game.yaml): each estimate within 4 of its
    sandwich SEs (a correct implementation fails this about once in 10⁴ datasets)."""
    truth = pd.Series({"policy.alpha_s": 0.26, "policy.beta": 0.34})
    z = (beer_fit.params_ - truth) / beer_fit.bse_
    assert (z.abs() < 4).all(), z
    assert (beer_fit.bse_ > 0).all() and (beer_fit.bse_ < 0.1).all()
    assert beer_fit.pilot_ is not None and [s["study"].rsplit("/", 1)[-1] for s in beer_fit.steps_] == [
        "step1",
        "step2",
    ]


def test_summary_frame_columns_and_wald_intervals(beer_fit):
    f = beer_fit.summary_frame(0.1)
    assert list(f.columns) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    assert list(f.index) == ["policy.alpha_s", "policy.beta"]
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose(f.mean_ci_upper - f["mean"], z * f.mean_se)
    np.testing.assert_allclose(f["mean"] - f.mean_ci_lower, z * f.mean_se)
    assert (beer_fit.summary_frame(0.01).mean_ci_upper > f.mean_ci_upper).all()
    with pytest.raises(ValueError, match=r"alpha == 1\.5, must be a number in"):
        beer_fit.summary_frame(1.5)


def test_jtest_and_moment_table(beer_fit):
    """Optimal weighting: J is the loss at the estimate, df = moments − parameters, p from χ²."""
    j = beer_fit.jtest_
    assert j["df"] == len(BEER_MOMENTS) - 2
    assert j["statistic"] == pytest.approx(beer_fit.loss_)
    assert j["pvalue"] == pytest.approx(stats.chi2.sf(j["statistic"], j["df"]))
    m = beer_fit.moments_
    assert list(m.index) == [_smm.Moment.parse(s).name for s in BEER_MOMENTS]
    np.testing.assert_allclose(m.difference, m.data - m.simulated)
    R, N = beer_fit.replicates, beer_fit.n_obs
    # Σ_g = Ω/N + Ω/R: the t statistic's scale has the (1 + 1/S) correction, S = R/N
    scale = np.sqrt(np.diag(beer_fit.omega_) / N * (1 + N / R))
    np.testing.assert_allclose(m.t, m.difference / scale, rtol=1e-12)
    np.testing.assert_allclose(m.data_se, np.sqrt(np.diag(beer_fit.omega_) / N), rtol=1e-12)


@given(
    g=arrays(np.float64, (6, 2), elements=st.floats(-5, 5)),
    a=arrays(np.float64, (6, 6), elements=st.floats(-1, 1)),
)
def test_sandwich_with_the_optimal_weighting_is_the_inverse_information(g, a):
    """(G'WG)⁻¹G'WΣWG(G'WG)⁻¹ = (G'Σ⁻¹G)⁻¹ when W = Σ⁻¹ (Hansen 1982)."""
    sigma = a @ a.T + 0.5 * np.eye(6)
    info = g.T @ np.linalg.inv(sigma) @ g
    if np.linalg.cond(info) > 1e8:
        return
    got = _smm.sandwich(g, np.linalg.inv(sigma), sigma)
    np.testing.assert_allclose(got, np.linalg.inv(info), rtol=1e-6, atol=1e-9)


def test_sandwich_is_nan_when_a_parameter_is_not_identified():
    g = np.array([[1.0, 0.0], [2.0, 0.0], [0.5, 0.0]])
    assert np.isnan(_smm.sandwich(g, np.eye(3), np.eye(3))).all()


def test_jacobian_on_common_random_numbers_is_exact_for_a_linear_moment():
    """std of demand is cv·level·sd(ε) on fixed draws: linear in cv, so the central difference
    equals std/cv (to rounding) and does not depend on the step."""
    cfg = orgsim.compose(LINEAR)
    ms = _smm.MomentSet(_smm.parse_moments(["std:demand", "acf:demand:1"]), orgsim.network.build_network(cfg))
    runner = _smm.Runner(cfg, ms, seed=3, names=["demand.cv"])
    bounds = np.array([[0.02, 0.5]])
    ((pf, G),) = _smm.jacobians(runner, np.array([0.1]), bounds, 50, 0.02)
    ((_, G2),) = _smm.jacobians(runner, np.array([0.1]), bounds, 50, 0.1)
    mean_std = pf[:, 0].mean()
    assert G[0, 0] == pytest.approx(mean_std / 0.1, rel=1e-9)
    assert G2[0, 0] == pytest.approx(G[0, 0], rel=1e-9)
    assert G[1, 0] == pytest.approx(0.0, abs=1e-9), "the autocorrelation does not depend on the scale"


def test_target_moments_with_n_obs_match_the_frame_fit(beer_fit):
    """Target moments given as a Series with n_obs = N give the same objective as the frames."""
    data = beer_fit.moments_["data"]
    res = calibrate(
        data, n_obs=2, params={"policy.alpha_s": (0.05, 1.0), "policy.beta": (0.0, 1.0)}, overrides=BEER,
        skip=4, n_trials=24, batch_size=12, replicates=16, se_replicates=100, progress=False,
    )  # fmt: skip
    pd.testing.assert_series_equal(res.params_, beer_fit.params_)
    with pytest.raises(ValueError, match="exactly one of n_obs"):
        calibrate(data, params={"policy.alpha_s": (0.05, 1.0)}, overrides=BEER, progress=False)
    with pytest.raises(ValueError, match="exactly one of n_obs"):
        calibrate(data, n_obs=2, moment_cov=np.eye(6), params={"policy.alpha_s": (0.05, 1.0)}, overrides=BEER)
    with pytest.raises(ValueError, match="data has no value for moment 'fill_rate'"):
        calibrate(
            data, n_obs=2, moments=["fill_rate"], params={"policy.alpha_s": (0.05, 1.0)}, overrides=BEER
        )


def test_weighting_options():
    data = beer_teams(1)
    kw = dict(params={"policy.alpha_s": (0.05, 1.0)}, moments=BEER_MOMENTS[:2], overrides=BEER, skip=4,
              n_trials=6, batch_size=6, replicates=8, se_replicates=60, progress=False)  # fmt: skip
    ident = calibrate(data, weighting="identity", **kw)
    assert [s["study"] for s in ident.steps_] == ["calibration/search"] and ident.jtest_ is None
    np.testing.assert_array_equal(ident.weighting_, np.eye(2))
    diag = calibrate(data, weighting="diagonal", **kw)
    assert len(diag.steps_) == 2 and diag.jtest_ is None
    W = diag.weighting_.to_numpy()
    assert np.count_nonzero(W - np.diag(np.diag(W))) == 0
    given_w = calibrate(data, weighting=np.diag([1.0, 4.0]), **kw)
    np.testing.assert_array_equal(given_w.weighting_, np.diag([1.0, 4.0]))
    for bad, message in (("best", "weighting == 'best', must be one of"), (np.ones((3, 3)), "must be a finite symmetric 2 × 2"),
                         (np.diag([1.0, -1.0]), "positive definite")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            calibrate(data, weighting=bad, **kw)


def test_bad_arguments_are_named():
    data = beer_teams(1)
    kw = dict(
        params={"policy.alpha_s": (0.05, 1.0)}, moments=BEER_MOMENTS[:2], overrides=BEER, progress=False
    )
    for extra, message in (
        ({"n_trials": 0}, "n_trials == 0, must be an integer >= 1"),
        ({"replicates": 1}, "replicates == 1, must be an integer >= 2"),
        ({"sampler": "grid"}, "sampler == 'grid', must be 'tpe' or 'cmaes'"),
        ({"skip": 40}, "skip == 40, must be < 34 (the data have 36 periods)"),
        ({"study_name": "a/b"}, "study_name == 'a/b', must be a non-empty name without '/'"),
        ({"fd_step": 0.5}, "fd_step == 0.5, must be a number in (0, 0.25]"),
        ({"n_jobs": 0}, "n_jobs == 0, must be None"),
    ):
        with pytest.raises(ValueError) as info:
            calibrate(data, **{**kw, **extra})
        assert message in str(info.value)
    with pytest.raises(TypeError, match="overrides == 'scenario=beer_game', must be a list"):
        calibrate(data, **{**kw, "overrides": "scenario=beer_game"})
    with pytest.raises(ObservedDataError, match="no such file"):
        calibrate("/nonexistent/kpis.csv", **kw)
    with pytest.raises(ValueError, match="give KPI series, team records"):
        calibrate(None, **kw)


def test_seed_reproducibility_and_spec7_seeds():
    data = beer_teams(1)
    kw = dict(params={"policy.alpha_s": (0.05, 1.0)}, moments=BEER_MOMENTS[:3], overrides=BEER, skip=4,
              n_trials=6, batch_size=6, replicates=8, se_replicates=60, progress=False)  # fmt: skip
    a, b = calibrate(data, seed=7, **kw), calibrate(data, seed=np.random.SeedSequence(7), **kw)
    pd.testing.assert_series_equal(a.params_, b.params_)
    pd.testing.assert_series_equal(a.bse_, b.bse_)
    c = calibrate(data, seed=8, **kw)
    assert not np.allclose(a.moments_.simulated, c.moments_.simulated), "another seed, other replicates"
    assert calibrate(data, seed=np.random.default_rng(1), **kw).seed >= 0


# --------------------------------------------------------------------------------------------
# persistence
# --------------------------------------------------------------------------------------------
def _complete(journal: Path, study: str) -> list:
    from optuna.storages.journal import JournalFileBackend

    if not journal.exists():
        return []
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journal)))
    try:
        s = optuna.load_study(study_name=study, storage=storage)
    except KeyError:
        return []
    return s.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def test_resume_in_process_repeats_nothing_and_extends(tmp_path):
    data = beer_teams(1)
    journal = tmp_path / "study.journal"
    kw = dict(params={"policy.alpha_s": (0.05, 1.0)}, moments=BEER_MOMENTS[:3], overrides=BEER, skip=4,
              weighting="identity", batch_size=4, replicates=8, se_replicates=60, progress=False, storage=journal)  # fmt: skip
    first = calibrate(data, n_trials=8, **kw)
    trials = _complete(journal, "calibration/search")
    assert len(trials) == 8 and first.n_trials_ == 8
    again = calibrate(data, n_trials=8, **kw)
    assert len(_complete(journal, "calibration/search")) == 8, "a finished study runs no trial again"
    pd.testing.assert_series_equal(again.params_, first.params_)
    more = calibrate(data, n_trials=12, **kw)
    after = _complete(journal, "calibration/search")
    assert len(after) == 12 and more.n_trials_ == 12
    assert [t.params for t in after[:8]] == [t.params for t in trials], (
        "finished trials are kept as they were"
    )
    assert len({t.user_attrs["uid"] for t in after}) == 12
    with pytest.raises(ValueError, match=r"holds a calibration of other settings \(they differ in: moments"):
        calibrate(data, n_trials=8, **{**kw, "moments": BEER_MOMENTS[:2]})


def test_a_torn_last_journal_line_is_cut(tmp_path):
    """A process killed in the middle of a write leaves half a line; the next run cuts it
    (Optuna would refuse the file once another line follows)."""
    journal = tmp_path / "study.journal"
    kw = dict(params={"policy.alpha_s": (0.05, 1.0)}, moments=BEER_MOMENTS[:2], overrides=BEER, skip=4,
              weighting="identity", batch_size=4, replicates=8, se_replicates=60, progress=False, storage=journal)  # fmt: skip
    calibrate(beer_teams(1), n_trials=4, **kw)
    with open(journal, "ab") as fh:
        fh.write(b'{"op_code": 5, "worker_id": "x", "tri')
    res = calibrate(beer_teams(1), n_trials=8, **kw)
    assert res.n_trials_ == 8
    assert journal.read_bytes().endswith(b"\n")


SHARED = """
import os, pathlib, sys, time
import orgsim
from orgsim.calibration import calibrate
cfg = orgsim.compose({beer!r})
teams = orgsim.simulate(cfg, engine="numba", seed=4242, teams=True, progress=False).teams
# rendezvous: both processes start searching only once both are ready (on a fast machine one
# process would otherwise finish the whole study before the other has imported numba)
here = pathlib.Path(sys.argv[1]).parent
(here / f"ready.{{os.getpid()}}").touch()
deadline = time.monotonic() + 120
while len(list(here.glob("ready.*"))) < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
# and each pauses after every batch, so that neither can run the whole study (8 batches of a few
# milliseconds each since batches are packed column-wise) while the other is still starting up
calibrate(teams, params={{"policy.alpha_s": (0.05, 1.0), "policy.beta": (0.0, 1.0)}}, moments={moments!r},
          overrides={beer!r}, skip=4, weighting="identity", n_trials=32, batch_size=4, replicates=8,
          se_replicates=60, progress=lambda info: time.sleep(0.5), storage=sys.argv[1], polish=False)
"""


@pytest.mark.slow
def test_two_processes_share_one_study(tmp_path):
    """Two processes on one journal: together they finish the study's trials (each finishes at
    most one batch beyond the budget, since neither sees the other's running batch), both
    contribute, and they do not propose the same points."""
    journal = tmp_path / "shared.journal"
    code = SHARED.format(beer=BEER, moments=BEER_MOMENTS[:3])
    procs = [subprocess.Popen([sys.executable, "-c", code, str(journal)], cwd=ROOT) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    trials = _complete(journal, "calibration/search")
    assert 32 <= len(trials) <= 32 + 2 * 4
    workers = {t.user_attrs["uid"].split(":")[1] for t in trials}
    assert len(workers) == 2, "both processes finished trials"
    points = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(points)) == len(points), "no point was evaluated twice"


@pytest.mark.slow
def test_cli_survives_sigkill_and_resumes_without_repeating_trials(tmp_path):
    """orgsim-calibrate killed (SIGKILL to its process group) after its first batches, then run
    again: the study ends with exactly --trials finished trials per step, every trial finished
    before the kill kept unchanged, and the outputs written."""
    data = tmp_path / "teams.csv"
    beer_teams(1).to_csv(data, index=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "orgsim.calibration", "beer_game", "--data", str(data), "--out", str(out),
           "--trials", "40", "--batch-size", "4", "--replicates", "8", "--no-plots", "calibration.weighting=identity",
           "calibration.se_replicates=60"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    journal = out / "study.journal"
    # kill on the progress line that reports 8 finished trials (printed after their batch was
    # written); reading the pipe rather than polling the journal keeps 8 of 10 batches ahead
    deadline = time.monotonic() + 240
    seen = b""
    while b"search: 8/40 trials" not in seen and proc.poll() is None and time.monotonic() < deadline:
        if select.select([proc.stderr], [], [], 1.0)[0]:
            seen += os.read(proc.stderr.fileno(), 4096)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "killed while running"
    before = _complete(journal, "calibration/search")
    assert 8 <= len(before) < 40
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming the study" in done.stderr
    after = _complete(journal, "calibration/search")
    assert len(after) == 40, "exactly --trials finished trials: none repeated, none lost"
    by_uid = {t.user_attrs["uid"]: t.params for t in after}
    assert all(by_uid[t.user_attrs["uid"]] == t.params for t in before), "trials before the kill are kept"
    result = json.loads((out / "result.json").read_text())
    assert result["n_trials_evaluated"] == 40
    assert {"estimates.csv", "moments.csv", "summary.txt", "summary.html"} <= {p.name for p in out.iterdir()}
    est = pd.read_csv(out / "estimates.csv", index_col=0)
    assert list(est.columns) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    assert list(est.index) == ["policy.theta", "policy.alpha_s", "policy.beta", "policy.s_prime"]


# --------------------------------------------------------------------------------------------
# the local refinement: Gauss–Newton steps, then the compass search
# --------------------------------------------------------------------------------------------
class _ToyRunner:
    """m(θ) = c + A f(θ) + u_r: per replicate a draw u_r that does not depend on θ (common random
    numbers), with f the identity (linear moments) or tanh (non-linear); the runner interface of
    ``orgsim._smm`` (``names``, ``per_firm``)."""

    names = ("a", "b")

    def __init__(self, A, c, replicates=16, f=None, seed=0):
        self.A, self.c, self.f = np.asarray(A, float), np.asarray(c, float), f or (lambda x: x)
        self.u = np.random.default_rng(seed).normal(0, 0.1, (replicates, len(c)))

    def per_firm(self, table, replicates, first=0):
        X = table[list(self.names)].to_numpy()
        return (self.c + self.f(X) @ self.A.T)[:, None, :] + self.u[None, :replicates, :]


#: a narrow ridge: the moments depend almost only on a + b (condition number of A'A ~ 1e4)
RIDGE = [[1.0, 1.0], [1.0, 1.02], [0.5, 0.49]]


def _toy_problem(runner, target, W=None, bounds=((-5.0, 5.0), (-5.0, 5.0))):
    from orgsim.calibration import _LocalProblem

    W = np.eye(len(target)) if W is None else W
    return _LocalProblem(np.array(bounds), _smm.Target(np.asarray(target, float), n_obs=1), W)


def _start(runner, problem, x, R):
    m = runner.per_firm(_smm.table_of(np.asarray(x, float), runner.names), R)[0].mean(axis=0)
    return (np.asarray(x, float), problem.loss(m), m)


def test_gauss_newton_reaches_the_weighted_least_squares_minimiser_along_a_ridge():
    """Linear moments: the minimiser of g'Wg is the GLS solution (A'WA)⁻¹A'W(t − c − ū) in
    closed form; Gauss–Newton reaches it (to 1e-6 of the bounds) from a far start in one
    step, and :func:`refine` keeps it, while the compass search alone, with the estimator's
    settings, stops short of it along the ridge (the beer game's search error)."""
    R = 16
    runner = _ToyRunner(RIDGE, [0.3, -0.2, 0.1], R)
    A = runner.A
    # data near the moments of θ = (1.5, -1) (off them by a misfit), so the minimiser is inside
    target = runner.c + runner.u.mean(axis=0) + A @ [1.5, -1.0] + [0.01, -0.005, 0.004]
    W = np.diag([1.0, 2.0, 4.0])
    problem = _toy_problem(runner, target, W)
    exact = np.linalg.solve(A.T @ W @ A, A.T @ W @ (target - runner.c - runner.u.mean(axis=0)))
    assert np.all(np.abs(exact) < 4), exact
    start = _start(runner, problem, [-3.0, 4.0], R)
    ((x, f, m),) = _smm.gauss_newton([problem], [start], runner, R, iterations=1)
    np.testing.assert_allclose(x, exact, atol=1e-5)
    assert f == pytest.approx(problem.loss(m)) and f < start[1]
    ((x_refined, f_refined, _),) = _smm.refine([problem], [start], runner, R)
    np.testing.assert_allclose(x_refined, exact, atol=1e-5)
    assert f_refined <= f + 1e-12
    ((x_compass, f_compass, _),) = _smm.polish([problem], [start], runner, R)
    assert np.max(np.abs(x_compass - exact)) > 0.05, "the compass search alone stops short on this ridge"
    assert f_compass > f_refined


@given(
    x0=arrays(np.float64, 2, elements=st.floats(-5, 5)),
    target=arrays(np.float64, 3, elements=st.floats(-3, 3)),
    w=arrays(np.float64, 3, elements=st.floats(0.1, 10)),
)
def test_gauss_newton_never_raises_the_loss_and_stays_within_the_bounds(x0, target, w):
    """Non-linear moments (tanh), any start, target and diagonal W: the loss returned is at
    most the start's, it is the loss of the point returned, and the point lies within the
    bounds (the target may have its least-squares point outside them)."""
    R = 8
    runner = _ToyRunner(RIDGE, [0.0, 0.0, 0.0], R, f=np.tanh)
    bounds = ((-1.0, 2.0), (-2.0, 1.0))
    problem = _toy_problem(runner, target, np.diag(w), bounds)
    start = _start(runner, problem, np.clip(x0, [-1, -2], [2, 1]), R)
    ((x, f, _),) = _smm.refine([problem], [start], runner, R)
    assert f <= start[1]
    assert f == pytest.approx(problem.loss(_start(runner, problem, x, R)[2]), rel=1e-12, abs=1e-12)
    assert np.all(x >= [-1, -2]) and np.all(x <= [2, 1])


# --------------------------------------------------------------------------------------------
# identification, recovery and coverage
# --------------------------------------------------------------------------------------------
def test_identification_flags_a_ridge_and_a_flat_parameter():
    """std of demand depends on cv·level only, and costs.holding on no moment: cv and level are
    confounded (a flat direction loading on both), holding is flat; their SEs are NaN."""
    cfg = orgsim.compose([*LINEAR, "demand.cv=0.1"])
    data = orgsim.simulate(cfg.replace(n_orgs=2), engine="numba", seed=77, progress=False).kpis
    res = calibrate(
        data, params={"demand.cv": (0.02, 0.5), "demand.level": (50, 200), "costs.holding": (0.0, 2.0)},
        moments=["std:demand", "acf:demand:1", "acf:demand:2"], overrides=LINEAR, n_trials=12, batch_size=12,
        replicates=8, se_replicates=60, weighting="diagonal", progress=False,
    )  # fmt: skip
    ident = res.identification()
    assert ident.loc["demand.cv", "confounded"] and ident.loc["demand.level", "confounded"]
    assert "demand.level" in ident.loc["demand.cv", "corr_with"]
    assert ident.loc["costs.holding", "flat"] and ident.loc["costs.holding", "rise_chi2"] == pytest.approx(
        0, abs=1e-9
    )
    assert not ident.loc["demand.cv", "flat"], "cv alone moves the loss"
    assert res.bse_.isna().all()
    assert int(res.directions().flat.sum()) == 2


@pytest.mark.slow
def test_recovery_coverage_bias_and_jtest_size_on_a_linear_model():
    """demand.cv from std, mean and acf of AR(1) demand (truth 0.1; 60 datasets of one firm × 80
    periods). The moments are linear in cv on common random numbers, so the sandwich is exact
    up to Ω's estimate: 95% Wald coverage within 4 Monte Carlo SEs of 0.95, |bias| within 4 of
    its SEs, the mean SE within 4 sampling SEs (1/√(2K)) of the SD of the estimates, and the J
    test's rejection rate at 0.05 within 4 MC SEs of 0.05."""
    res = recovery(
        {"demand.cv": (0.02, 0.5)}, {"demand.cv": 0.1}, moments=["std:demand", "mean:demand", "acf:demand:1"],
        overrides=LINEAR, n_datasets=60, n_obs=1, n_trials=6, batch_size=6, replicates=16, se_replicates=200,
        seed=2, progress=False,
    )  # fmt: skip
    t = res.table(0.05).loc["demand.cv"]
    K = 60
    assert abs(t.coverage - 0.95) <= 4 * np.sqrt(0.95 * 0.05 / K), t
    assert abs(t.bias) <= 4 * t.bias_se, t
    assert abs(t.mean_se / t.sd - 1) <= 4 / np.sqrt(2 * K), t
    j = res.jtest_rejection(0.05)
    assert j["rate"] <= 0.05 + 4 * np.sqrt(0.05 * 0.95 / K), j
    assert "coverage" in res.summary()


def test_recovery_reports_each_dataset_and_its_defaults():
    res = recovery(
        {"policy.alpha_s": (0.05, 1.0)}, moments=BEER_MOMENTS[:3], overrides=BEER, skip=4, n_datasets=3,
        weighting="identity", n_trials=4, batch_size=4, replicates=8, se_replicates=60, progress=False,
    )  # fmt: skip
    assert res.truth["policy.alpha_s"] == 0.26, "truth defaults to the model's own value"
    assert len(res.estimates) == 3 and set(res.estimates.dataset) == {0, 1, 2}
    assert res.estimates.estimate.nunique() == 3, "each dataset is its own draw"
    assert res.jtest_rejection() is None
    fig = res.plot()
    assert fig.axes[0].get_xlabel() and fig.axes[0].get_title().startswith("policy.alpha_s")
    with pytest.raises(ValueError, match=r"truth\['policy.alpha_s'\] == 2, must lie within its bounds"):
        recovery({"policy.alpha_s": (0.05, 1.0)}, {"policy.alpha_s": 2}, moments=BEER_MOMENTS, overrides=BEER)


# --------------------------------------------------------------------------------------------
# ABC-SMC and the bootstrap
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ybar", "low", "high"), [(0.3, -5.0, 5.0), (0.05, 0.0, 1.0)], ids=["interior", "at_bound"]
)
def test_abc_smc_recovers_a_known_posterior(ybar, low, high):
    """y ~ N(μ, 1), n = 20, uniform prior on [low, high]: the posterior given ȳ is N(ȳ, 1/20)
    truncated to the prior's support (scipy.stats.truncnorm). Over 30 seeded runs of this
    sampler the spread of the posterior mean was 1.3 times sd/√ESS, so the effective sample is
    taken as ESS/1.7: the mean within 4 such Monte Carlo SEs plus 0.01 for the final tolerance, the
    sd within 15%, and the weighted empirical CDF within the Kolmogorov–Smirnov 99% band
    (1.63/√n) of the exact one. The truncated case checks the importance weights at a bound."""
    gen = np.random.default_rng(5)
    n = 20

    def simulate(theta):
        return theta[:, :1] + gen.standard_normal((len(theta), 1)) / np.sqrt(n)

    post = _abc.abc_smc(
        simulate, np.array([ybar]), np.array([[low, high]]), n_particles=800, generations=9, rng=3
    )
    s = 1 / np.sqrt(n)
    exact = stats.truncnorm((low - ybar) / s, (high - ybar) / s, loc=ybar, scale=s)
    f = post.summary_frame(0.05).iloc[0]
    n_eff = post.ess / 1.7
    assert abs(f["mean"] - exact.mean()) <= 4 * exact.std() / np.sqrt(n_eff) + 0.01
    assert f.mean_se == pytest.approx(exact.std(), rel=0.15)
    x = post.particles.iloc[:, 0].to_numpy()
    order = np.argsort(x)
    ecdf = np.cumsum(post.weights[order])
    assert np.max(np.abs(ecdf - exact.cdf(x[order]))) < 1.63 / np.sqrt(n_eff)
    assert f.mean_ci_lower < exact.ppf(0.1) and f.mean_ci_upper > exact.ppf(0.9)
    assert post.history.epsilon.is_monotonic_decreasing


def test_abc_smc_arguments():
    sim = lambda t: t  # noqa: E731
    for kw, message in (({"n_particles": 5}, "n_particles == 5, must be an integer >= 10"),
                        ({"quantile": 1.0}, "quantile == 1.0, must be in (0, 1)"),
                        ({"generations": 0}, "generations == 0")):  # fmt: skip
        with pytest.raises(ValueError) as info:
            _abc.abc_smc(sim, np.zeros(1), np.array([[0.0, 1.0]]), **kw)
        assert message in str(info.value)
    with pytest.raises(ValueError, match="low < high"):
        _abc.abc_smc(sim, np.zeros(1), np.array([[1.0, 0.0]]))


@pytest.fixture(scope="module")
def linear_fit() -> CalibrationResult:
    cfg = orgsim.compose([*LINEAR, "demand.cv=0.1"])
    data = orgsim.simulate(cfg.replace(n_orgs=2), engine="numba", seed=31, progress=False).kpis
    return calibrate(
        data, params={"demand.cv": (0.02, 0.5)}, moments=["std:demand", "mean:demand", "acf:demand:1"],
        overrides=LINEAR, n_trials=8, batch_size=8, replicates=32, se_replicates=400, seed=4, progress=False,
    )  # fmt: skip


def test_posterior_agrees_with_the_sandwich_on_a_linear_model(linear_fit):
    """For moments linear in θ with a flat prior, the ABC posterior given the moments is about
    N(θ̂, SE²/(1 + 1/S)) (each particle simulates one dataset, so no simulation correction):
    posterior sd within 25% of SE/√(1 + 1/S), mean within 3 posterior sd of the estimate."""
    post = linear_fit.posterior(n_particles=300, generations=7, seed=5)
    f = post.summary_frame().loc["demand.cv"]
    se = linear_fit.bse_["demand.cv"] / np.sqrt(1 + linear_fit.n_obs / linear_fit.replicates)
    assert f.mean_se == pytest.approx(se, rel=0.25)
    assert abs(f["mean"] - linear_fit.params_["demand.cv"]) < 3 * f.mean_se
    small = [linear_fit.posterior(n_particles=40, generations=2, seed=5).summary_frame() for _ in range(2)]
    pd.testing.assert_frame_equal(*small)  # reproducible from its seed (a small run suffices)
    fig = post.plot()
    assert fig.axes[0].get_xlabel().startswith("demand.cv") and fig.axes[0].get_legend() is not None


def test_bootstrap_sd_agrees_with_the_sandwich_se(linear_fit):
    """Parametric bootstrap (local re-estimates, each dataset and its replicates fresh): its SD
    estimates the same sampling SD as the sandwich SE; ratio within 4 sampling SEs (1/√(2B))."""
    boot = linear_fit.bootstrap(60, seed=9)
    f = boot.summary_frame()
    assert list(f.columns) == ["mean", "mean_se", "mean_ci_lower", "mean_ci_upper"]
    ratio = f.loc["demand.cv", "mean_se"] / linear_fit.bse_["demand.cv"]
    assert abs(ratio - 1) <= 4 / np.sqrt(2 * 60), ratio
    assert (
        f.loc["demand.cv", "mean_ci_lower"]
        < linear_fit.params_["demand.cv"]
        < f.loc["demand.cv", "mean_ci_upper"]
    )


# --------------------------------------------------------------------------------------------
# text, figures and files
# --------------------------------------------------------------------------------------------
def test_summary_text_and_html(beer_fit):
    text = str(beer_fit.summary())
    for piece in ("Simulated method of moments", "policy.alpha_s", "J test", "std:order@0", "1 + 1/S"):
        assert piece in text
    html = beer_fit._repr_html_()
    assert "<table" in html and "policy.beta" in html
    assert repr(beer_fit).startswith("<CalibrationResult policy.alpha_s=")


def test_slices_and_fit_figures(beer_fit):
    sl = beer_fit.loss_slices(9)
    assert set(sl.parameter) == {"policy.alpha_s", "policy.beta"}
    at = sl[(sl.parameter == "policy.beta") & (sl.value == beer_fit.params_["policy.beta"])]
    assert at.loss.iloc[0] == pytest.approx(beer_fit.loss_), "the slice passes through the estimate"
    assert sl.loss.min() >= beer_fit.loss_ - 1e-9, "no slice point beats the polished estimate"
    fig = beer_fit.plot_slices(9)
    assert all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() for ax in fig.axes)
    fig = beer_fit.plot_fit()
    assert len(fig.axes) == 4, "one panel per series of the moments (orders and inventory at stages 0 and 3)"
    assert all(ax.get_ylabel() and ax.get_legend() for ax in fig.axes) and fig.axes[-1].get_xlabel()


def test_save_writes_every_output(beer_fit, tmp_path):
    written = beer_fit.save(tmp_path / "out")
    names = {"estimates.csv", "moments.csv", "identification.csv", "summary.txt", "summary.html", "result.json",
             "slices.png", "fit.png"}  # fmt: skip
    assert set(written) == names and all((tmp_path / "out" / n).stat().st_size > 0 for n in names)
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["jtest"]["df"] == 4 and result["seed"] == 0
    assert [r["parameter"] for r in result["estimates"]] == ["policy.alpha_s", "policy.beta"]


# --------------------------------------------------------------------------------------------
# settings files and the command line
# --------------------------------------------------------------------------------------------
def test_calibration_settings_files():
    bg = calibration_settings("beer_game")
    assert set(bg["params"]) == {"policy.theta", "policy.alpha_s", "policy.beta", "policy.s_prime"}
    assert bg["overrides"][0] == "scenario=beer_game" and bg["skip"] == 4
    cfg = orgsim.compose(bg["overrides"])
    _smm.check_bounds(bg["params"], cfg)
    _smm.MomentSet(_smm.parse_moments(bg["moments"]), orgsim.network.build_network(cfg))
    df = calibration_settings("default_firm", ["calibration.n_trials=5"])
    assert df["n_trials"] == 5
    _smm.check_bounds(df["params"], orgsim.compose(df["overrides"]))
    with pytest.raises(
        ConfigError, match="calibration == 'nope', must be one of 'beer_game', 'default_firm'"
    ):
        calibration_settings("nope")


def test_calibration_settings_from_a_researchers_directory(tmp_path):
    (tmp_path / "calibration").mkdir()
    (tmp_path / "calibration" / "mine.yaml").write_text(
        "overrides: [scenario=beer_game]\nparams:\n  policy:\n    theta: [0.1, 0.9]\nmoments: [std:order@0]\n"
    )
    (tmp_path / "calibration" / "typo.yaml").write_text("paramz: {}\n")
    got = calibration_settings("mine", config_dirs=[tmp_path])
    assert got["params"] == {"policy.theta": (0.1, 0.9)}, "nested params are flattened to dotted keys"
    with pytest.raises(
        ConfigError, match=r"calibration\.paramz is not a calibration setting; allowed: batch_size"
    ):
        calibration_settings("typo", config_dirs=[tmp_path])


def test_cli_runs_and_writes(tmp_path, capsys):
    data = tmp_path / "teams.csv"
    beer_teams(1).to_csv(data, index=False)
    code = main(["beer_game", "--data", str(data), "--out", str(tmp_path / "o"), "--trials", "4", "--batch-size", "4",
                 "--replicates", "8", "calibration.se_replicates=60", "calibration.weighting=identity",
                 "calibration.moments=[std:order@0,std:order@3,acf:order@0:1,mean:inventory@0,mean:backlog@3]"])  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "search: 4/4 trials, best loss" in out.err
    assert "Simulated method of moments calibration" in out.out
    assert (tmp_path / "o" / "slices.png").exists() and (tmp_path / "o" / "fit.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--data", "{data}"], "calibration == 'nope', must be one of"),
        (["beer_game", "--data", "{tmp}/missing.csv"], "missing.csv: no such file"),
        (["beer_game", "--data", "{tmp}/bad.csv"], "unknown column 'profit'"),
        (["beer_game", "--data", "{data}", "--trials", "0"], "n_trials == 0, must be an integer >= 1"),
        (["beer_game", "--data", "{data}", "policy.theta"], "override 'policy.theta', must be key=value"),
        (["beer_game", "--data", "{data}", "calibration.params.policy.theta=[0.5,0.1]"], "low >= high"),
        (
            ["beer_game", "--data", "{data}", "calibration.colour=red"],
            "calibration.colour is not a calibration setting",
        ),
        (
            ["beer_game", "--data", "{data}", "management.execution_noise=7"],
            "management.execution_noise == 7",
        ),
        (["beer_game", "--data", "{data}", "--sampler", "grid"], "argument --sampler: invalid choice"),
        (["beer_game"], "the following arguments are required: --data"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, message, tmp_path, capsys):
    data = tmp_path / "teams.csv"
    beer_teams(1).to_csv(data, index=False)
    pd.DataFrame({"period": [1, 2], "profit": [1.0, 2.0]}).to_csv(tmp_path / "bad.csv", index=False)
    argv = [a.format(data=data, tmp=tmp_path) for a in args] + ["--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("orgsim-calibrate: error: ") and "\n" not in err
    assert message in err
