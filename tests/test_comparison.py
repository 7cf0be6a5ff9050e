"""orgsim.comparison: paired strategy comparisons on common random numbers.

Populations are small (a few firms, 60 periods); the statistics are checked against
statsmodels and scipy called directly on per-firm differences computed here from the raw KPI
arrays, and the outcome definitions against a pandas re-computation from ``simulate().kpis``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats as sps
from statsmodels.stats.proportion import confint_proportions_2indep
from statsmodels.stats.weightstats import DescrStatsW

import orgsim
from orgsim.comparison import (
    ARRAY_KPIS,
    DIAGNOSTICS,
    FAMILY_CONTRAST,
    OUTCOMES,
    ComparisonResult,
    compare,
    firm_outcomes,
    first_crossover,
    from_store,
    paired_difference,
)

STRATEGIES = ["bpo", "bpo_bpm", "bso"]
ENVS = ["stable", "volatile"]
N, T, HORIZONS = 4, 60, (30, 60)
COLUMNS = [
    "environment",
    "contrast",
    "kind",
    "outcome",
    "horizon",
    "mean",
    "mean_se",
    "mean_ci_lower",
    "mean_ci_upper",
    "n",
    "interval",
]


@pytest.fixture(scope="module")
def res() -> ComparisonResult:
    return compare(strategies=STRATEGIES, environments=ENVS, n_orgs=N, periods=T, horizons=HORIZONS)


def direct_run(
    env: str, strategy: str, n: int = N, periods: int = T, seed: int = 0
) -> orgsim.SimulationResult:
    """The same cell run by hand, without orgsim.comparison."""
    cfg = orgsim.compose(
        [f"environment={env}", f"strategy={strategy}", f"n_orgs={n}", f"periods={periods}", f"seed={seed}"]
    )
    return orgsim.simulate(cfg, engine="numba")


def kpi(run: orgsim.SimulationResult, col: str) -> np.ndarray:
    return run.kpis.sort_values(["org", "period"])[col].to_numpy(dtype=float).reshape(run.config.n_orgs, -1)


# ----------------------------------------------------------------------------------------------
# common random numbers and what compare runs
# ----------------------------------------------------------------------------------------------
def test_every_arm_meets_the_same_demand(res):
    """Common random numbers: firm i's end-customer demand is identical in every arm, while it
    differs between firms and between environments (so the check is not vacuous)."""
    d = res.arrays["demand"]  # [env, strategy, firm, period]
    for e in range(len(ENVS)):
        for s in range(1, len(STRATEGIES)):
            np.testing.assert_array_equal(d[e, s], d[e, 0])
        assert np.ptp(d[e, 0, :, -1]) > 0  # firms differ
    assert not np.array_equal(d[0, 0], d[1, 0])  # environments differ
    assert res.crn_verified == {"stable": True, "volatile": True}


def test_each_cell_is_the_run_simulate_gives(res):
    run = direct_run("volatile", "bpo_bpm")
    e, s = ENVS.index("volatile"), STRATEGIES.index("bpo_bpm")
    for col in ("free_cash_flow", "cash", "credit_headroom", "demand", "fill_rate"):
        np.testing.assert_array_equal(res.arrays[col][e, s], kpi(run, col))
    assert res.configs[("volatile", "bpo_bpm")] == run.config.replace(engine="numba")


def test_outcome_definitions_match_a_pandas_recomputation(res):
    """Each outcome from its documented definition, on the KPI table of a direct run."""
    run = direct_run("volatile", "bso")
    k = run.kpis
    got = res.outcomes()
    got = got[(got.environment == "volatile") & (got.strategy == "bso")]
    for h in HORIZONS:
        upto = k[k.period <= h]
        at = k[k.period == h].set_index("org")
        g = got[got.horizon == h].set_index("org")
        expect = {
            "cumulative_fcf": upto.groupby("org").free_cash_flow.sum(),
            "npv_fcf": (upto.free_cash_flow * 1.08 ** (-upto.period / 52)).groupby(upto.org).sum(),
            "survival": at.solvent.astype(float),
            "ending_cash": at.cash,
            "credit_headroom": at.credit_headroom.where(at.solvent, np.minimum(at.credit_headroom, 0.0)),
            "revenue_growth": k[(k.period > h - 13) & (k.period <= h)].groupby("org").revenue.sum()
            / k[k.period <= 13].groupby("org").revenue.sum()
            - 1,
            "fill_rate": upto[upto.solvent].groupby("org").fill_rate.mean(),
            "cum_demand": upto.groupby("org").demand.sum(),
        }
        for name, series in expect.items():
            np.testing.assert_allclose(
                g[name].to_numpy(), series.sort_index().to_numpy(), rtol=1e-12, err_msg=name
            )
    # the same definitions for one run, without a comparison
    single = firm_outcomes(run, horizons=HORIZONS)
    mine = got.sort_values(["horizon", "org"])
    for name in (*OUTCOMES, *DIAGNOSTICS):
        np.testing.assert_array_equal(single[name].to_numpy(), mine[name].to_numpy(), err_msg=name)


def test_config_overrides_and_config_object_give_the_same_cells():
    """A Config (here composed with another strategy and environment) and the equivalent list of
    overrides give the same config in every cell."""
    kw = dict(strategies=["none", "bpm", "bso"], environments=["disrupted"], n_orgs=2, periods=20)
    by_list = compare(["finance.price=11"], **kw)
    by_config = compare(orgsim.compose(["finance.price=11", "strategy=bpo", "environment=volatile"]), **kw)
    assert by_list.configs.keys() == by_config.configs.keys()
    for key, cfg in by_list.configs.items():
        assert cfg == by_config.configs[key], key
        assert cfg.finance.price == 11
    np.testing.assert_array_equal(by_list.arrays["cash"], by_config.arrays["cash"])


def test_cells_built_on_one_composition_per_environment_equal_hydras_composition():
    """compare composes each environment once without the strategy group and sets the strategy
    file's keys on it; that must be exactly what Hydra composes for the cell, for every
    strategy, an arm with changes of its own, and (by falling back to Hydra) a common override
    of a key the strategy files set."""
    from orgsim.comparison import _arms, _compose_cells

    arms = [*_arms(None), ("x", ["strategy=bso", "information=local", "management.alignment_rate=0"])]
    run = ["n_orgs=2", "periods=20", "seed=3", "engine=numba"]
    fast = _compose_cells(["scenario=multinational"], ["stable", "disrupted"], arms, run)
    full = _compose_cells(["scenario=multinational"], ["stable", "disrupted"], arms, run, fast=False)
    assert fast.keys() == full.keys() and len(full) == 2 * 6
    for key in full:
        assert fast[key] == full[key], key
    assert (
        full[("stable", "x")].information == "local" and full[("stable", "x")].management.alignment_rate == 0
    )
    # a common override of a key the strategy sets: the user's value wins, as in Hydra
    one = [("bpo", ["strategy=bpo"])]
    cfg = _compose_cells(["management.bpo_cost=400"], ["stable"], one, run)[("stable", "bpo")]
    assert (
        cfg
        == _compose_cells(["management.bpo_cost=400"], ["stable"], one, run, fast=False)[("stable", "bpo")]
    )
    assert cfg.management.bpo_cost == 400


def test_arm_overrides_that_change_demand_warn():
    with pytest.warns(RuntimeWarning, match="demand differs between arms"):
        r = compare(
            strategies={"a": ["strategy=bpo"], "b": ["strategy=bpo", "demand.cv=0.3"]},
            environments=["stable"],
            n_orgs=2,
            periods=20,
        )
    assert r.crn_verified == {"stable": False}


# ----------------------------------------------------------------------------------------------
# effects
# ----------------------------------------------------------------------------------------------
def test_strategy_copied_under_another_name_gives_effect_zero_exactly():
    r = compare(
        strategies={"bpo": None, "bso": None, "bso_copy": ["strategy=bso", "strategy.name=bso_copy"]},
        environments=["volatile"],
        n_orgs=N,
        periods=T,
        horizons=HORIZONS,
    )
    copy = r.configs[("volatile", "bso_copy")]
    assert copy.strategy.name == "bso_copy" and copy.strategy.family == "culture_aligned"
    for k in ARRAY_KPIS:
        np.testing.assert_array_equal(r.arrays[k][0, 2], r.arrays[k][0, 1], err_msg=k)
    frame = r.summary_frame()
    rows = frame[frame.contrast == "bso_copy − bso"]
    assert len(rows) == len(OUTCOMES) * len(HORIZONS)
    assert (rows["mean"] == 0.0).all() and (rows.mean_se == 0.0).all()
    means = rows[rows.interval == "paired_t"]
    assert (means.mean_ci_lower == 0.0).all() and (means.mean_ci_upper == 0.0).all()
    surv = rows[rows.interval == "newcombe"]  # a score interval for p − p: symmetric about 0
    assert len(surv) == len(HORIZONS)
    np.testing.assert_allclose(surv.mean_ci_lower, -surv.mean_ci_upper, atol=1e-12)
    # and the copy is as far from every other arm as the original
    other = frame[frame.contrast == "bso_copy − bpo"].reset_index(drop=True)
    orig = frame[frame.contrast == "bso − bpo"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        other.drop(columns="contrast"), orig.drop(columns="contrast"), check_exact=True
    )
    cross = r.crossover(contrasts=["bso_copy − bso"])
    assert cross.never.all() and (cross.share_never == 1.0).all() and cross.crossover.isna().all()


def test_paired_t_equals_statsmodels_and_scipy_on_the_differences(res):
    fcf = res.arrays["free_cash_flow"][ENVS.index("volatile")]  # [strategy, firm, period]
    cum = fcf[:, :, :60].sum(axis=2)
    bpo, bpo_bpm, bso = cum
    frame = res.summary_frame(alpha=0.05).set_index(["environment", "contrast", "outcome", "horizon"])
    # the family contrast: bso minus the equal-weight mean of the efficiency-only strategies
    d = bso - (bpo + bpo_bpm) / 2
    row = frame.loc[("volatile", FAMILY_CONTRAST, "cumulative_fcf", 60)]
    ref = DescrStatsW(d)
    assert row["mean"] == pytest.approx(d.mean(), rel=1e-12)
    assert row.mean_se == pytest.approx(d.std(ddof=1) / np.sqrt(N), rel=1e-12)
    assert (row.mean_ci_lower, row.mean_ci_upper) == pytest.approx(ref.tconfint_mean(alpha=0.05), rel=1e-12)
    ci = sps.ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert (row.mean_ci_lower, row.mean_ci_upper) == pytest.approx((ci.low, ci.high), rel=1e-10)
    # a pair: scipy's paired t test on the two arms
    row = frame.loc[("volatile", "bso − bpo", "cumulative_fcf", 60)]
    ci = sps.ttest_rel(bso, bpo).confidence_interval(0.95)
    assert (row.mean_ci_lower, row.mean_ci_upper) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert row.n == N and row.interval == "paired_t"
    # alpha is passed through: a 90% interval is inside the 95% one
    narrow = res.summary_frame(alpha=0.10).set_index(["environment", "contrast", "outcome", "horizon"])
    r90 = narrow.loc[("volatile", "bso − bpo", "cumulative_fcf", 60)]
    ci90 = sps.ttest_rel(bso, bpo).confidence_interval(0.90)
    assert (r90.mean_ci_lower, r90.mean_ci_upper) == pytest.approx((ci90.low, ci90.high), rel=1e-10)


def test_survival_interval_is_newcombes_on_the_arms():
    """Newcombe's hybrid score interval of mean(a) − mean(b), as statsmodels gives it."""
    arrays = {k: np.zeros((1, 2, 6, 8)) for k in ARRAY_KPIS}
    alive = np.ones((1, 2, 6, 8), dtype=bool)
    alive[0, 0, :2, 5:] = False  # bso: 2 of 6 firms insolvent from period 6
    alive[0, 1, :4, 5:] = False  # bpo: 4 of 6
    arrays["solvent"] = alive
    r = ComparisonResult(
        arrays,
        environments=["e"],
        strategies=["bso", "bpo"],
        families={"bso": "culture_aligned", "bpo": "efficiency_only"},
        horizons=[8],
    )
    row = r.summary_frame().query("contrast == 'bso − bpo' and outcome == 'survival'").iloc[0]
    lo, hi = confint_proportions_2indep(4, 6, 2, 6, method="newcomb", compare="diff", alpha=0.05)
    assert row["mean"] == pytest.approx(4 / 6 - 2 / 6)
    assert (row.mean_ci_lower, row.mean_ci_upper) == pytest.approx((lo, hi), rel=1e-12)
    assert row.interval == "newcombe"


def test_summary_frame_has_a_row_per_environment_contrast_outcome_and_horizon(res):
    frame = res.summary_frame()
    assert list(frame.columns) == COLUMNS
    contrasts = {FAMILY_CONTRAST, "bso − bpo", "bso − bpo_bpm", "bpo_bpm − bpo"}
    assert set(frame.contrast) == contrasts
    assert len(frame) == len(ENVS) * len(contrasts) * len(OUTCOMES) * len(HORIZONS)
    assert not frame.duplicated(["environment", "contrast", "outcome", "horizon"]).any()
    assert set(frame.outcome) == set(OUTCOMES) and set(frame.horizon) == set(HORIZONS)
    assert set(frame.kind[frame.contrast == FAMILY_CONTRAST]) == {"family"}
    assert set(frame.interval) == {"paired_t", "newcombe"}
    assert set(frame.interval[frame.outcome == "survival"]) == {"newcombe"}
    assert (frame.n == N).all()
    finite = frame.dropna(subset=["mean_ci_lower"])
    assert ((finite.mean_ci_lower <= finite["mean"]) & (finite["mean"] <= finite.mean_ci_upper)).all()


def test_contrast_of_pooled_arms_and_values(res):
    """A pooled arm is the per-firm equal-weight mean of its strategies; contrast() of the
    family's arms gives summary_frame's family rows; select() keeps the firms' values."""
    one, two = (res.values("stable", s, "cumulative_fcf", 60) for s in ("bpo", "bpo_bpm"))
    np.testing.assert_array_equal(
        res.values("stable", ["bpo", "bpo_bpm"], "cumulative_fcf", 60), (one + two) / 2
    )
    keys = ["environment", "outcome", "horizon"]
    family = res.contrast(["bso"], ["bpo", "bpo_bpm"], name=FAMILY_CONTRAST).sort_values(keys)
    expect = res.summary_frame().query("contrast == @FAMILY_CONTRAST").sort_values(keys)
    pd.testing.assert_frame_equal(
        family.reset_index(drop=True), expect.reset_index(drop=True), check_exact=True
    )
    sub = res.select(strategies=["bpo", "bso"])
    assert [c.name for c in sub.contrasts] == [FAMILY_CONTRAST, "bso − bpo"]
    np.testing.assert_array_equal(
        sub.values("stable", "bso", "npv_fcf", 30), res.values("stable", "bso", "npv_fcf", 30)
    )
    firms = res.select(firms=[1, 3])
    np.testing.assert_array_equal(
        firms.values("volatile", "bpo", "ending_cash", 60),
        res.values("volatile", "bpo", "ending_cash", 60)[[1, 3]],
    )


# ----------------------------------------------------------------------------------------------
# hand-built arrays: crossover, definitions
# ----------------------------------------------------------------------------------------------
def hand_built(fcf_first: np.ndarray, *, horizons=None, revenue=None) -> ComparisonResult:
    """Two arms, the first ``bso`` (culture-aligned) with per-firm weekly FCF ``fcf_first``
    ([env, firm, period]), the second ``bpo`` with none; solvent throughout."""
    e, n, t = fcf_first.shape
    arrays = {k: np.zeros((e, 2, n, t)) for k in ARRAY_KPIS}
    arrays["free_cash_flow"][:, 0] = fcf_first
    arrays["solvent"] = np.ones((e, 2, n, t), dtype=bool)
    if revenue is not None:
        arrays["revenue"][:] = revenue
    return ComparisonResult(
        arrays,
        environments=[f"env{i}" for i in range(e)],
        strategies=["bso", "bpo"],
        families={"bso": "culture_aligned", "bpo": "efficiency_only"},
        horizons=horizons,
    )


def test_crossover_on_hand_built_series():
    t = 12
    base = np.array([-3.0, -3.0, 2.0, 2.0, 2.0, 2.0] + [1.0] * (t - 6))  # cumulative: -3 -6 -4 -2 0 2 ...
    crossing = np.stack([base, base, base])  # identical firms: every resample crosses at 6
    never = -np.ones((3, t))  # the advantage is negative throughout
    late_dip = np.stack([np.r_[np.ones(t - 1), -20.0]] * 3)  # positive, then not positive at the end
    r = hand_built(np.stack([crossing, never, late_dip]))
    cross = r.crossover(n_boot=200, seed=1, contrasts=["bso − bpo"]).set_index("environment")
    assert list(cross.loc["env0", ["crossover", "ci_lower", "ci_upper"]]) == [6, 6, 6]
    assert not cross.loc["env0", "never"] and cross.loc["env0", "share_never"] == 0.0
    for env in ("env1", "env2"):
        row = cross.loc[env]
        assert row.never and pd.isna(row.crossover) and row.share_never == 1.0
        assert pd.isna(row.ci_lower) and pd.isna(row.ci_upper)
    assert set(cross.interval) == {"bootstrap_percentile"} and (cross.n_boot == 200).all()


def test_crossover_bootstrap_resamples_firms():
    """With heterogeneous firms the bootstrap draws are the crossovers of resampled firms' means
    (checked by brute force), reproducible with a seed, and the interval brackets the point."""
    rng = np.random.default_rng(0)
    n, t = 30, 40
    fcf = rng.normal(0.0, 4.0, (1, n, t)) + np.linspace(-2.0, 3.0, t)
    r = hand_built(fcf)
    a = r.crossover(n_boot=300, seed=5)
    b = hand_built(fcf).crossover(n_boot=300, seed=5)  # a fresh object: no cache
    pd.testing.assert_frame_equal(a, b)
    c = hand_built(fcf).crossover(n_boot=300, seed=np.random.default_rng(5))  # a Generator
    pd.testing.assert_frame_equal(a, c)
    d = hand_built(fcf).crossover(n_boot=300, seed=6)
    assert not a.equals(d)
    row = a.iloc[0]
    assert row.ci_lower <= row.crossover <= row.ci_upper
    # brute force: the crossovers of explicit resamples, drawn as the method documents
    from orgsim._paired import bootstrap_crossover, resample_counts

    cum = np.cumsum(fcf[0], axis=1)
    counts = resample_counts(n, 50, np.random.default_rng(9))
    draws = bootstrap_crossover(cum[None], counts)[0]
    for b_, row_counts in enumerate(counts[:10]):
        idx = np.repeat(np.arange(n), row_counts)
        assert draws[b_] == first_crossover(cum[idx].mean(axis=0))


def brute_crossover(x: np.ndarray) -> float:
    for t in range(1, len(x) + 1):
        if (x[t - 1 :] > 0).all():
            return float(t)
    return np.inf


@given(arrays(np.float64, st.integers(1, 30), elements=st.floats(-5, 5, allow_nan=False)))
def test_first_crossover_is_the_definition(x):
    assert first_crossover(x) == brute_crossover(x)


def test_default_horizons_npv_and_revenue_growth_definitions():
    t = 300
    revenue = np.r_[np.full(13, 10.0), np.full(t - 13, 20.0)]
    fcf = np.ones((1, 2, t))
    r = hand_built(fcf, revenue=revenue, horizons=None)
    assert r.horizons == (104, 260, 300)  # 2 and 5 years of weeks, and the run's length
    o = r.outcomes()
    bso = o[o.strategy == "bso"].set_index("horizon")
    assert bso.loc[104, "cumulative_fcf"].tolist() == [104.0, 104.0]
    disc = (1.08 ** (-np.arange(1, 105) / 52)).sum()
    np.testing.assert_allclose(bso.loc[104, "npv_fcf"], disc, rtol=1e-12)
    np.testing.assert_allclose(bso.loc[260, "revenue_growth"], 1.0)  # 20·13 / (10·13) − 1
    short = hand_built(fcf[:, :, :20], revenue=revenue[:20], horizons=[10, 20])
    g = short.outcomes().set_index("horizon").revenue_growth
    assert g.loc[10].isna().all()  # shorter than the 13-period window: undefined
    np.testing.assert_allclose(g.loc[20], (7 * 20 + 6 * 10) / 130 - 1)
    zero = hand_built(fcf[:, :, :20], horizons=[20])  # no revenue at all: growth undefined, n = 0
    row = zero.summary_frame().query("outcome == 'revenue_growth'").iloc[0]
    assert row.n == 0 and np.isnan(row["mean"])
    undiscounted = ComparisonResult(
        r.arrays, environments=r.environments, strategies=r.strategies, families=r.families, discount_rate=0.0
    )
    o = undiscounted.outcomes()
    np.testing.assert_array_equal(o.npv_fcf, o.cumulative_fcf)


# ----------------------------------------------------------------------------------------------
# reports and figures
# ----------------------------------------------------------------------------------------------
def test_summary_renders_text_and_html(res):
    s = res.summary()
    text = str(s)
    for needle in (
        "Strategy comparison",
        FAMILY_CONTRAST,
        "cumulative_fcf",
        "bso − bpo_bpm",
        "Crossover",
        "paired t",
    ):
        assert needle in text, needle
    html = s._repr_html_()
    assert "<table" in html and FAMILY_CONTRAST in html
    assert "ComparisonResult" in repr(res)


def test_figures_have_titles_units_and_legends(res, tmp_path):
    fig = res.plot()
    left, right = fig.axes
    assert "weeks" in left.get_xlabel() and "MU" in left.get_ylabel()
    assert "MU" in right.get_xlabel()
    for ax in (left, right):
        assert ax.get_title() and ax.get_legend() is not None
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ENVS
    fig.savefig(tmp_path / "cmp.png")
    assert (tmp_path / "cmp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = res.plot_effects("survival", horizon=30)
    assert "share of firms" in ax.get_xlabel() and "30" in ax.get_xlabel()
    band = res.difference_over_time(FAMILY_CONTRAST)
    assert len(band) == len(ENVS) * T
    assert (band.mean_ci_lower <= band["mean"]).all() and (band["mean"] <= band.mean_ci_upper).all()


# ----------------------------------------------------------------------------------------------
# from a results store
# ----------------------------------------------------------------------------------------------
def write_store(root: Path) -> Path:
    """A sweep written by the command line (in process): bpo and bso × seeds 0 and 1."""
    from orgsim import plots
    from orgsim.cli import main

    with pytest.MonkeyPatch.context() as mp:
        # each run's fan chart takes seconds to draw and plays no part here: a stub file instead
        mp.setattr(plots, "fan_chart", lambda kpis, path, *a, **k: Path(path).write_bytes(b"stub"))
        code = main(
            [
                "-m",
                "strategy=bpo,bso",
                "seed=0,1",
                "n_orgs=3",
                "periods=30",
                "engine=numba",
                "hydra.sweep.dir=" + str(root),
                "hydra.launcher.n_jobs=1",
            ]
        )
    assert code == 0
    assert len(list(root.rglob("kpis.parquet"))) == 4
    return root


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """The sweep, written once per test session: under pytest-xdist the workers share it
    through their common temporary directory (with a lock), as its documentation suggests."""
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        return write_store(tmp_path_factory.mktemp("store"))
    root = tmp_path_factory.getbasetemp().parent / f"comparison-store-{run}"
    with open(f"{root}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "complete").exists():
            write_store(root)
            (root / "complete").touch()
    return root


def small_compare(seed: int) -> ComparisonResult:
    return compare(strategies=["bpo", "bso"], environments=["stable"], n_orgs=3, periods=30, seed=seed)


def test_from_store_equals_compare(store):
    stored = from_store(store)
    assert stored.strategies == ("bpo", "bso") and stored.environments == ("stable",)
    assert stored.n_firms == 6 and stored.firms.seed.tolist() == [0, 0, 0, 1, 1, 1]
    assert stored.families == {"bpo": "efficiency_only", "bso": "culture_aligned"}
    by_seed = [small_compare(0), small_compare(1)]
    for k in ARRAY_KPIS:
        np.testing.assert_array_equal(
            stored.arrays[k], np.concatenate([r.arrays[k] for r in by_seed], axis=2), err_msg=k
        )
    # one seed: the same effects as compare with the same settings
    df = orgsim.results.load(store)
    one = from_store(df[df.seed == 0])
    pd.testing.assert_frame_equal(one.summary_frame(), by_seed[0].summary_frame(), check_exact=True)
    # both seeds: the firms of both, paired within their seed
    row = stored.summary_frame().query("contrast == 'bso − bpo' and outcome == 'cumulative_fcf'").iloc[0]
    d = np.concatenate(
        [
            r.values("stable", "bso", "cumulative_fcf", 30) - r.values("stable", "bpo", "cumulative_fcf", 30)
            for r in by_seed
        ]
    )
    expect = paired_difference(d)
    assert (row["mean"], row.mean_ci_lower, row.mean_ci_upper, row.n) == (
        expect["mean"],
        expect["mean_ci_lower"],
        expect["mean_ci_upper"],
        6,
    )
    assert stored.configs[("stable", "bso")] == by_seed[0].configs[("stable", "bso")]


def test_from_store_refuses_runs_that_are_not_paired(store, tmp_path):
    df = orgsim.results.load(store)
    run_of = lambda s, seed: (df.strategy == s) & (df.seed == seed)  # noqa: E731
    with pytest.raises(ValueError, match=r"strategy 'bso' is missing for environment 'stable', seed 1"):
        from_store(df[~run_of("bso", 1)])
    with pytest.raises(
        ValueError, match=r"firms \(n_orgs\) differ between the arms of environment 'stable', seed 0"
    ):
        from_store(df[~(run_of("bpo", 0) & (df.org == 2))])
    with pytest.raises(ValueError, match=r"periods differ between runs \(\[29, 30\]\)"):
        from_store(df[~(run_of("bso", 1) & (df.period == 30))])
    changed = df.copy()
    changed.loc[run_of("bso", 0), "scenario"] = "beer_game"
    with pytest.raises(ValueError, match=r"column 'scenario' differs between runs \('multinational' in run"):
        from_store(changed)
    relabelled = df.copy()
    relabelled.loc[run_of("bso", 1), "family"] = "baseline"
    with pytest.raises(ValueError, match=r"strategy 'bso' has families"):
        from_store(relabelled)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['free_cash_flow'\]"):
        from_store(df.drop(columns="free_cash_flow"))
    # a run copied into the store: two runs of one cell
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    run_dir = next(p.parent for p in copy.rglob("kpis.parquet") if "strategy=bso" in p.parent.name)
    shutil.copytree(run_dir, copy / "again")
    with pytest.raises(ValueError, match=r"2 runs of strategy 'bso' in environment 'stable' with seed \d"):
        from_store(copy)
    # configs that differ beyond the strategy (read from the runs' meta.json)
    shutil.rmtree(copy / "again")
    meta_path = run_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["demand"]["cv"] = 0.3
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(
        ValueError, match=r"differ in 'demand.cv' \(0.1 vs 0.3\)|differ in 'demand.cv' \(0.3 vs 0.1\)"
    ):
        from_store(copy)


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"strategies": ["bso", "bsoo"]},
            orgsim.ConfigError,
            r"strategies == 'bsoo', must be one of 'bpm', 'bpo', 'bpo_bpm', 'bso', 'none'",
        ),
        (
            {"environments": ["calm"]},
            orgsim.ConfigError,
            r"environments == \['calm'\], must be names from 'disrupted', 'native', 'stable', 'volatile'",
        ),
        ({"strategies": []}, ValueError, r"strategies == \[\], must name at least 2 strategies"),
        ({"strategies": ["bso"]}, ValueError, r"strategies == \['bso'\], must name at least 2 strategies"),
        ({"environments": []}, ValueError, r"environments == \[\], must name at least one of"),
        (
            {"n_orgs": 1},
            ValueError,
            r"n_orgs == 1, must be >= 2 \(a paired interval needs at least 2 firms\)",
        ),
        ({"discount_rate": -0.1}, ValueError, r"discount_rate == -0.1, must be a finite annual rate >= 0"),
        (
            {"horizons": [0, 10]},
            ValueError,
            r"horizons == \[0, 10\], must be periods in 1..20 \(the run's length\); 0 is not",
        ),
        ({"horizons": [21]}, ValueError, r"horizons == \[21\], must be periods in 1..20"),
        ({"horizons": []}, ValueError, r"horizons == \[\], must name at least one period"),
        ({"engine": "fast"}, ValueError, r"engine == 'fast', must be one of 'numba', 'mesa'"),
        (
            {"overrides": ["n_orgs=5"]},
            orgsim.ConfigError,
            r"overrides sets 'n_orgs=5': pass n_orgs= to compare instead",
        ),
        (
            {"overrides": ["strategy=bso"]},
            orgsim.ConfigError,
            r"overrides sets 'strategy=bso'.*pass strategies=",
        ),
        (
            {"strategies": {"a": ["strategy=bso", "seed=3"], "b": None}},
            orgsim.ConfigError,
            r"strategies\['a'\] sets 'seed=3', must not",
        ),
    ],
)
def test_bad_input_is_refused_with_the_argument_value_and_rule(kwargs, error, message):
    args = {"strategies": ["bpo", "bso"], "environments": ["stable"], "n_orgs": 2, "periods": 20, **kwargs}
    with pytest.raises(error, match=message):
        compare(args.pop("overrides", None), **args)


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.05])
def test_alpha_outside_the_unit_interval_is_refused(res, alpha):
    for call in (res.summary_frame, res.crossover, res.summary, res.difference_over_time):
        with pytest.raises(ValueError, match=rf"alpha == {alpha!r}, must be in \(0, 1\)"):
            call(alpha=alpha)
    with pytest.raises(ValueError, match=r"alpha == .*, must be in \(0, 1\)"):
        paired_difference([1.0, 2.0], alpha=alpha)


def test_lookups_name_the_options(res):
    with pytest.raises(
        ValueError, match=r"contrast == 'x', must be one of \['culture_aligned − efficiency_only'"
    ):
        res.crossover(contrasts=["x"])
    with pytest.raises(ValueError, match=r"horizon == 7, must be one of \[30, 60\]"):
        res.values("stable", "bso", "cumulative_fcf", 7)
    with pytest.raises(ValueError, match=r"strategy 'bpm' is not in this comparison"):
        res.contrast("bso", "bpm")
    with pytest.raises(ValueError, match=r"outcome == 'profit', must be one of"):
        res.plot_effects("profit")


# ----------------------------------------------------------------------------------------------
# coverage of the paired t interval on simulated truth
# ----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_paired_t_interval_covers_the_population_mean_difference():
    """Truth: the mean paired difference over a population of 2,000 simulated firms. Samples of
    30 firms drawn from it with replacement (i.i.d. from the population): the 95% paired t
    interval must cover the truth in 95% of 2,000 samples, within 4 Monte Carlo standard errors
    (4 · sqrt(0.95 · 0.05 / 2000) = 0.0195). Firms are few, so skewness of the differences could
    push coverage below nominal; this checks it does not by more than that."""
    pop = compare(
        strategies=["bpo_bpm", "bso"], environments=["volatile"], n_orgs=2000, periods=60, horizons=[60]
    )
    d = pop.values("volatile", "bso", "cumulative_fcf", 60) - pop.values(
        "volatile", "bpo_bpm", "cumulative_fcf", 60
    )
    truth = d.mean()
    rng = np.random.default_rng(2024)
    m, n = 2000, 30
    covered = 0
    for _ in range(m):
        r = paired_difference(d[rng.integers(0, d.size, n)])
        covered += r["mean_ci_lower"] <= truth <= r["mean_ci_upper"]
    tol = 4 * np.sqrt(0.95 * 0.05 / m)
    assert abs(covered / m - 0.95) <= tol, covered / m


@pytest.mark.slow
def test_parallel_cells_give_the_same_result():
    kw = dict(strategies=["bpo", "bso"], environments=["stable", "volatile"], n_orgs=3, periods=20)
    one, two = compare(**kw, n_jobs=1), compare(**kw, n_jobs=2)
    for k in ARRAY_KPIS:
        np.testing.assert_array_equal(one.arrays[k], two.arrays[k], err_msg=k)


def test_docstring_and_docs_examples_run():
    """The Examples of the module's docstrings and the doctest in docs/comparison.md."""
    import doctest

    import orgsim._paired
    import orgsim.comparison

    for module in (orgsim.comparison, orgsim._paired):
        failures, tried = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert tried > 0 and failures == 0, module.__name__
    docs = Path(__file__).resolve().parents[1] / "docs" / "comparison.md"
    failures, tried = doctest.testfile(
        str(docs), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert tried > 0 and failures == 0
