"""The Numba engine: equivalence with the Mesa engine, and invariance of its random streams.

Equivalence runs every scenario × strategy × environment of ``conf/`` on both engines (2 firms,
40 periods) and requires every KPI and team record to agree to rtol = atol = 1e-9 (issue 4).
"""

from __future__ import annotations

import re
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest
from helpers import random_configs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orgsim
from orgsim import engine_numba
from orgsim._rng import firm_keys

CONF = Path(__file__).resolve().parents[1] / "conf"


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _assert_same(a: orgsim.SimulationResult, b: orgsim.SimulationResult, rtol=1e-9, atol=1e-9) -> None:
    for res in (a, b):  # assert_allclose treats NaN as equal to NaN: rule NaN/inf out first
        for arrays in (res.kpi_arrays, res.team_arrays or {}):
            for name, values in arrays.items():
                assert np.isfinite(np.asarray(values, float)).all(), f"{res.engine}: {name} not finite"
    for name in a.kpi_arrays:
        np.testing.assert_allclose(
            np.asarray(a.kpi_arrays[name], float),
            np.asarray(b.kpi_arrays[name], float),
            rtol=rtol,
            atol=atol,
            err_msg=f"KPI {name}",
        )
    assert (a.team_arrays is None) == (b.team_arrays is None), "compare like with like"
    if a.team_arrays is not None:
        for name in a.team_arrays:
            np.testing.assert_allclose(
                a.team_arrays[name], b.team_arrays[name], rtol=rtol, atol=atol, err_msg=f"team {name}"
            )


CELLS = [
    (scenario, strategy, environment)
    for scenario in _options("scenario")
    for strategy in _options("strategy")
    for environment in _options("environment")
]


@pytest.mark.parametrize(("scenario", "strategy", "environment"), CELLS)
def test_engines_agree(scenario, strategy, environment):
    cfg = orgsim.compose(
        [
            f"scenario={scenario}",
            f"strategy={strategy}",
            f"environment={environment}",
            "n_orgs=2",
            "periods=40",
        ]
    )
    mesa = orgsim.simulate(cfg, engine="mesa")
    fast = orgsim.simulate(cfg, engine="numba", teams=True)
    _assert_same(mesa, fast)
    pd.testing.assert_frame_equal(
        mesa.kpis.drop(columns=["solvent"]), fast.kpis.drop(columns=["solvent"]), rtol=1e-9, atol=1e-9
    )
    assert (mesa.kpis.solvent == fast.kpis.solvent).all()


def test_engines_agree_through_insolvency():
    """A firm that goes insolvent is dormant in both engines from the same period on."""
    cfg = orgsim.compose(["environment=volatile", "n_orgs=3", "periods=150", "finance.price=7.5"])
    mesa = orgsim.simulate(cfg, engine="mesa")
    fast = orgsim.simulate(cfg, engine="numba", teams=True)
    assert not mesa.kpis.solvent.all(), "the config should drive some firm insolvent"
    _assert_same(mesa, fast)


@pytest.fixture(scope="module")
def noisy_cfg():
    return orgsim.compose(["strategy=bso", "environment=volatile", "n_orgs=6", "periods=60"])


def test_thread_count_invariance(noisy_cfg):
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = orgsim.simulate(noisy_cfg, engine="numba", teams=True)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = orgsim.simulate(noisy_cfg, engine="numba", teams=True)
    finally:
        numba.set_num_threads(before)
    _assert_same(one, many, rtol=0, atol=0)


#: the chunked tests share one xdist worker (a chunked run used to pass the kernel strided views
#: of its outputs, a specialisation of its own that took about 14 s to compile cold)
chunked_kernel = pytest.mark.xdist_group("chunked_kernel")


@chunked_kernel
@pytest.mark.parametrize("chunk", [1, 2, 4])
@pytest.mark.parametrize("teams", [True, False])
def test_chunking_invariance(noisy_cfg, chunk, teams):
    whole = orgsim.simulate(noisy_cfg, engine="numba", teams=teams)
    compiled = set(engine_numba._run_population.signatures)
    chunked = orgsim.simulate(noisy_cfg, engine="numba", chunk=chunk, teams=teams)
    _assert_same(whole, chunked, rtol=0, atol=0)
    # a chunk runs on contiguous arrays of its own: the kernel compiled for a whole run serves it
    assert set(engine_numba._run_population.signatures) == compiled


def test_run_into_given_buffers_gives_the_same_numbers_and_refuses_a_wrong_shape(noisy_cfg):
    """``run(out=...)`` (the calibration's reused output memory) fills the buffers with exactly
    the arrays a fresh run returns, also when they hold another run's numbers; a buffer of the
    wrong shape or layout is refused by name before the kernel runs."""
    packed = engine_numba.pack([noisy_cfg])
    n = noisy_cfg.n_orgs
    keys, rows = firm_keys(noisy_cfg.seed, range(n)), np.zeros(n, dtype=np.int64)
    fresh = engine_numba.run(packed, keys, rows, teams=True)
    out = engine_numba.output_buffers(packed, n, teams=True)
    engine_numba.run(packed, keys[::-1].copy(), rows, teams=True, out=out)  # other numbers first
    got = engine_numba.run(packed, keys, rows, teams=True, out=out)
    assert got[0] is out[0] and got[1] is out[1]
    np.testing.assert_array_equal(got[0], fresh[0])
    np.testing.assert_array_equal(got[1], fresh[1])
    with pytest.raises(ValueError, match=r"out teams buffer has shape .* must be C-contiguous float64"):
        engine_numba.run(packed, keys, rows, teams=True, out=(out[0], out[1][:, :, :1]))
    with pytest.raises(ValueError, match=r"out kpis buffer"):
        engine_numba.run(packed, keys, rows, teams=True, out=(np.asfortranarray(out[0]), out[1]))


def test_worker_memory_reused_across_unlike_firms_leaves_no_trace():
    """Each worker thread sets one memory to each firm's opening state in turn: a firm run after
    unlike firms on the same worker (culture layer on or off, gone insolvent or not, other
    demand and ordering parameters) gives bit for bit what it gives alone, for any number of
    workers and any order of the firms."""
    base = orgsim.compose(["strategy=bso", "environment=volatile", "periods=120"])
    rows = [
        {"culture.enabled": True, "finance.price": 7.5},  # goes insolvent (as in the test above)
        {"culture.enabled": False, "policy.theta": 0.9, "demand.cv": 0.4},
        {"culture.enabled": True, "policy.theta": 0.1, "demand.cv": 0.05},
        {"culture.enabled": False, "finance.price": 7.5, "management.execution_noise": 0.3},
        {"culture.enabled": True, "management.initial_maturity": 0.9},
    ]
    configs = [base.replace(**row) for row in rows]
    packed = engine_numba.pack(configs)
    n = len(configs)
    keys = firm_keys(base.seed, range(n))
    alone = [engine_numba.run(packed, keys[[f]], np.array([f]), teams=True, workers=1) for f in range(n)]
    kpis_alone = np.concatenate([a[0] for a in alone], axis=1)
    teams_alone = np.concatenate([a[1] for a in alone], axis=1)
    solvent = engine_numba.KPI_FIELDS.index("solvent")
    assert kpis_alone[solvent, 0, -1] == 0.0 and kpis_alone[solvent, 2, -1] == 1.0, "unlike firms"
    for workers in (1, 2, 3):
        for order in (np.arange(n), np.arange(n)[::-1].copy()):
            kpis, teams = engine_numba.run(packed, keys[order], order, teams=True, workers=workers)
            np.testing.assert_array_equal(kpis, kpis_alone[:, order], err_msg=f"{workers} workers")
            np.testing.assert_array_equal(teams, teams_alone[:, order], err_msg=f"{workers} workers")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=rf"workers={bad!r}: must be a whole number >= 1"):
            engine_numba.run(packed, keys, np.arange(n), teams=True, workers=bad)


def test_firm_alone_equals_firm_in_population(noisy_cfg):
    """A firm's path depends only on the seed and its index."""
    pop = orgsim.simulate(noisy_cfg, engine="numba", teams=True)
    packed = engine_numba.pack([noisy_cfg])
    for index in (0, 4):
        keys = firm_keys(noisy_cfg.seed, [index])
        kpis, teams = engine_numba.run(packed, keys, np.zeros(1, dtype=np.int64), teams=True)
        for j, name in enumerate(engine_numba.KPI_FIELDS):
            np.testing.assert_array_equal(kpis[j, 0], pop.kpi_arrays[name][index], err_msg=name)
        for j, name in enumerate(engine_numba.TEAM_FIELDS):
            np.testing.assert_array_equal(teams[j, 0], pop.team_arrays[name][index], err_msg=name)


def test_seed_changes_paths(noisy_cfg):
    a = orgsim.simulate(noisy_cfg, engine="numba", teams=False)
    b = orgsim.simulate(noisy_cfg, engine="numba", teams=False, seed=noisy_cfg.seed + 1)
    assert not np.array_equal(a.kpi_arrays["demand_total"], b.kpi_arrays["demand_total"])


def test_per_firm_parameters_equal_separate_runs():
    """``params=`` runs each firm as if alone with its own config (and the Mesa engine agrees)."""
    base = orgsim.compose(["strategy=bpo_bpm", "environment=volatile", "periods=50"])
    params = pd.DataFrame(
        {
            "policy.theta": [0.1, 0.5, 0.9],
            "demand.cv": [0.05, 0.2, 0.3],
            "management.bpo_cost": [0.0, 500.0, 5000.0],
            "information": ["local", "shared", "local"],
        }
    )
    batch = orgsim.simulate(base, engine="numba", params=params, teams=True)
    assert batch.config.n_orgs == 3
    for i, row in params.iterrows():
        single = orgsim.simulate(base.replace(n_orgs=i + 1, **row.to_dict()), engine="numba", teams=True)
        for name in batch.kpi_arrays:
            np.testing.assert_array_equal(batch.kpi_arrays[name][i], single.kpi_arrays[name][i], err_msg=name)
    # the parameter values are carried into the KPI table
    firm_theta = batch.kpis.groupby("org")["policy.theta"].first().to_numpy()
    np.testing.assert_array_equal(firm_theta, params["policy.theta"].to_numpy())
    _assert_same(orgsim.simulate(base, engine="mesa", params=params), batch)


def test_structural_parameters_cannot_vary():
    base = orgsim.compose(["n_orgs=2", "periods=10"])
    with pytest.raises(orgsim.ConfigError, match=r"network\.lead_time"):
        orgsim.simulate(base, engine="numba", params=pd.DataFrame({"network.lead_time": [1, 2]}))


def test_bad_parameter_row_names_field():
    base = orgsim.compose(["n_orgs=2", "periods=10"])
    with pytest.raises(orgsim.ConfigError, match=r"policy\.theta == 3\.0, must be <= 1"):
        orgsim.simulate(base, engine="numba", params=pd.DataFrame({"policy.theta": [0.2, 3.0]}))


def test_kpis_only_by_default_when_teams_false(noisy_cfg):
    res = orgsim.simulate(noisy_cfg, engine="numba", teams=False)
    assert res.team_arrays is None
    assert res.teams.empty
    assert list(res.kpis.columns[: len(orgsim.KPI_COLUMNS)]) == list(orgsim.KPI_COLUMNS)
    assert np.isfinite(res.kpis.select_dtypes("number").to_numpy()).all()


# -- property: the engines agree on random valid configs with every layer -------------------


@st.composite
def configs_with_every_layer(draw):
    cfg = draw(random_configs())
    unit = st.floats(0, 1, allow_nan=False)
    # negative orders need an ignorant team's supply-line weight β(1 − λ_β) >= 0.5 once the culture
    # layer is on (docs/model.md §7.10): λ_β is drawn within that bound
    pol = cfg.policy
    top = max(0.0, 1 - 0.5 / pol.beta) if pol.allow_negative_orders and pol.beta > 0 else 1.0
    return cfg.replace(
        **{
            "culture.beta_sensitivity": draw(st.floats(0, top)),
            "culture.enabled": draw(st.booleans()),
            "culture.dims": draw(st.integers(1, 64)),
            "culture.members": draw(st.integers(1, 6)),
            "culture.p1": draw(unit),
            "culture.p2": draw(unit),
            "culture.p3": draw(st.floats(0, 0.2)),
            "culture.p4": draw(st.floats(0, 0.2)),
            "culture.burn_in": draw(st.integers(0, 10)),
            "culture.every": draw(st.integers(1, 3)),
            "culture.superior": draw(st.sampled_from(["performance", "score"])),
            "culture.superior_share": draw(st.floats(0.05, 1)),
            "management.accountability_weight": draw(unit),
            "management.score_window": draw(st.integers(1, 8)),
            "management.adapt_every": draw(st.integers(0, 6)),
            "management.execution_noise": draw(st.floats(0, 0.5)),
            "management.initial_maturity": draw(unit),
            "management.bpo_every": draw(st.integers(0, 6)),
            "management.bpo_target": draw(st.sampled_from(["worst_local", "constraint"])),
            "management.bpm_rate": draw(st.floats(0, 0.3)),
            "management.bpm_focus": draw(st.sampled_from(["uniform", "constraint"])),
            "management.alignment_rate": draw(st.floats(0, 0.3)),
            "management.socialisation_boost": draw(unit),
            "n_orgs": 2,
        }
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs_with_every_layer())
def test_engines_agree_on_random_configs(cfg):
    """Property: for any valid config, both engines give the same numbers, all finite."""
    _assert_same(orgsim.simulate(cfg, engine="mesa"), orgsim.simulate(cfg, engine="numba", teams=True))


@chunked_kernel
def test_progress_bar_counts_every_firm_and_changes_nothing(noisy_cfg, capsys):
    """``progress=True`` shows a bar over the firms (the run goes in chunks so the bar moves)
    and gives the same numbers as a run without it; a small run shows no bar by default."""
    cfg = noisy_cfg.replace(n_orgs=6)
    quiet = orgsim.simulate(cfg, engine="numba", teams=False)
    assert capsys.readouterr().err == "", "no bar for a short run unless asked"
    shown = orgsim.simulate(cfg, engine="numba", teams=False, progress=True, chunk=2)
    err = capsys.readouterr().err
    assert "firms (numba)" in err and "6/6" in err
    _assert_same(quiet, shown, rtol=0, atol=0)


def test_model_md_states_the_parameter_layout_the_engine_uses():
    """docs/model.md §Engines gives the width of the per-firm matrix P and the per-team tensor
    TP; they must be the engine's (a parameter added to the kernel updates the text)."""
    text = (CONF.parent / "docs" / "model.md").read_text()
    scalars = re.search(r"one row of (\d+) scalar\s+parameters per firm", text)
    per_team = re.search(r"a tensor `TP` \((\d+)\s+parameters per team", text)
    assert scalars and per_team, "the layout sentence of docs/model.md moved"
    assert int(scalars.group(1)) == len(engine_numba.P) == len(set(engine_numba.P.values()))
    assert int(per_team.group(1)) == len(engine_numba.T) == len(set(engine_numba.T.values()))
