"""``orgsim.simulate`` and its results object (``orgsim.simulation``)."""

from __future__ import annotations

import hashlib
import json
from importlib import metadata

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orgsim
from orgsim.config import config_from_dict


def test_simulate_takes_a_config_only(small_cfg):
    with pytest.raises(TypeError, match="Config"):
        orgsim.simulate(small_cfg.to_dict())
    with pytest.raises(orgsim.ConfigError, match=r"^engine == 'fast', must be one of 'mesa', 'numba'$"):
        orgsim.simulate(small_cfg, engine="fast")


def test_result_keeps_config_seed_and_engine(small_cfg, small_result):
    assert small_result.config == small_cfg
    assert small_result.seed == small_cfg.seed
    assert small_result.engine == "mesa"
    assert small_result.network.n_teams == len(small_result.teams.team.cat.categories)


def test_kpi_extras_follow_the_contract_columns(small_result):
    columns = list(small_result.kpis.columns)
    assert columns[: len(orgsim.KPI_COLUMNS)] == list(orgsim.KPI_COLUMNS)
    assert {"cash_start", "net_financing", "interest"} <= set(columns[len(orgsim.KPI_COLUMNS) :])


def test_final_is_the_last_period_with_cumulative_free_cash_flow(small_cfg, small_result):
    final = small_result.final()
    k = small_result.kpis
    assert list(final.index) == list(range(small_cfg.n_orgs))
    assert (final.period == small_cfg.periods).all()
    np.testing.assert_allclose(final.cumulative_fcf, k.groupby("org").free_cash_flow.sum())
    np.testing.assert_array_equal(final.cash, k[k.period == small_cfg.periods].cash)


def test_summary_names_the_run(small_cfg, small_result):
    text = small_result.summary()
    assert f"scenario={small_cfg.scenario.name}" in text
    assert f"firms={small_cfg.n_orgs} periods={small_cfg.periods}" in text
    assert "ending cash" in text and "solvent at end" in text
    assert text in small_result._repr_html_()


def test_metadata_records_provenance(small_cfg, small_result):
    meta = small_result.metadata()
    assert meta["config"] == small_cfg.to_dict()
    assert meta["seed"] == small_cfg.seed and meta["engine"] == "mesa"
    for package in ("orgsim", "mesa", "numba", "numpy", "pandas", "pyarrow"):
        assert meta["versions"][package] == metadata.version(package)
    json.dumps(meta)  # JSON-safe


def test_to_parquet_round_trip(small_result, tmp_path):
    written = small_result.to_parquet(tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"kpis.parquet", "teams.parquet", "meta.json"}
    meta = json.loads(written["meta"].read_text())
    assert meta["config"] == small_result.config.to_dict()
    # meta.json, written last, marks the run complete and records each file it holds
    assert meta.pop("complete") is True and meta.pop("meta_format") == 2
    files = meta.pop("files")
    assert set(files) == {"kpis.parquet", "teams.parquet"}
    assert files["kpis.parquet"]["rows"] == len(small_result.kpis)
    assert files["teams.parquet"]["rows"] == len(small_result.teams)
    for name, record in files.items():
        data = (tmp_path / "run" / name).read_bytes()
        assert record["size"] == len(data) and record["sha256"] == hashlib.sha256(data).hexdigest()
    for name, frame in (("kpis", small_result.kpis), ("teams", small_result.teams)):
        table = pq.read_table(written[name])
        assert json.loads(table.schema.metadata[b"orgsim"]) == meta
        pd.testing.assert_frame_equal(table.to_pandas(), frame, check_exact=True, check_categorical=False)


def test_to_parquet_without_teams(small_result, tmp_path):
    small_result.to_parquet(tmp_path, teams=False)
    assert not (tmp_path / "teams.parquet").exists()
    assert (tmp_path / "kpis.parquet").exists() and (tmp_path / "meta.json").exists()


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("seed", [1, 2]),
        ("n_orgs", [1, 1]),
        ("engine", ["mesa", "numba"]),
        ("output.teams", [True, False]),
        ("strategy.name", ["bso", "bpo"]),
        ("strategy.family", ["culture_aligned", "efficiency_only"]),
        ("scenario.name", ["a", "b"]),
        ("environment.name", ["stable", "volatile"]),
        ("strategy", [{"name": "x", "family": "baseline"}, {"name": "y", "family": "culture_aligned"}]),
        ("environment", [{"name": "stable"}, {"name": "volatile"}]),
    ],
)
@pytest.mark.parametrize("engine", ["mesa", "numba"])
def test_params_reject_run_options_and_labels(small_cfg, engine, column, values):
    # such a column used to be ignored (seed, n_orgs, engine, output) or to leave every firm
    # labelled with the base strategy while the column claimed another
    with pytest.raises(orgsim.ConfigError, match=rf"^params column '{column}' cannot vary per firm: "):
        orgsim.simulate(small_cfg, engine=engine, params=pd.DataFrame({column: values}))


def test_params_shape_keys_fail_alike_on_both_engines(small_cfg):
    params = pd.DataFrame({"periods": [small_cfg.periods, small_cfg.periods + 1]})
    for engine in ("mesa", "numba"):
        with pytest.raises(
            orgsim.ConfigError,
            match=r"^params column 'periods' varies \(\d+, \d+, \.\.\.\), must be the same for every firm of one call",
        ):
            orgsim.simulate(small_cfg, engine=engine, params=params)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"params": pd.DataFrame({0: [0.1, 0.2]})}, r"^params column 0, must be a dotted config key"),
        ({"engine": ""}, r"^engine == '', must be one of 'mesa', 'numba'$"),
        ({"engine": 0}, r"^engine == 0, must be one of"),
        ({"chunk": 0}, r"^chunk == 0, must be a positive integer or None$"),
        ({"chunk": 1.5}, r"^chunk == 1.5, must be a positive integer"),
        ({"chunk": True}, r"^chunk == True, must be a positive integer"),
        ({"teams": "yes"}, r"^teams == 'yes', must be True, False or None$"),
        ({"progress": 1}, r"^progress == 1, must be True, False or None$"),
    ],
)
def test_bad_simulate_arguments_name_the_argument(small_cfg, kwargs, message):
    with pytest.raises(orgsim.ConfigError, match=message):
        orgsim.simulate(small_cfg, **kwargs)


def test_params_must_be_a_table(small_cfg):
    with pytest.raises(TypeError, match="params must be a pandas DataFrame"):
        orgsim.simulate(small_cfg, params=[0.1, 0.2])


def test_a_population_too_large_for_memory_is_refused_before_it_starts(small_cfg):
    import os

    import orgsim.simulation  # explicitly: the test must not rely on another test having imported it

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    # periods from the machine's memory, so n_orgs stays within its cap (10^7) on any machine
    periods = max(1000, -(-memory // (8 * len(orgsim.simulation.ENGINE_KPIS) * 5_000_000)))
    n_orgs = memory // (8 * len(orgsim.simulation.ENGINE_KPIS) * periods) + 1  # KPI arrays > memory
    with pytest.raises(orgsim.ConfigError, match=rf"^n_orgs × periods == {n_orgs} × {periods}, must fit"):
        orgsim.simulate(small_cfg.replace(n_orgs=n_orgs, periods=periods), engine="numba")
    # one firm fewer than a hundredth of that fits (and is not run here)
    orgsim.simulation.check_memory(small_cfg.replace(n_orgs=n_orgs // 100, periods=periods), teams=False)


@pytest.mark.parametrize("engine", ["mesa", "numba"])
def test_a_non_finite_result_is_never_returned(engine, monkeypatch):
    """Every valid config is bounded so that nothing overflows (docs/model.md §12); should an
    engine still produce a NaN or infinity, simulate raises ModelError naming the field, firm
    and period instead of returning it (here an engine is made to produce one)."""
    cfg = orgsim.compose(["n_orgs=2", "periods=5"])
    if engine == "mesa":
        import orgsim.engine_mesa as mesa

        real = mesa.run_firm

        def broken(cfg, i, key):
            kpis, teams = real(cfg, i, key)
            if i == 1:
                kpis = {**kpis, "cash": np.where(np.arange(len(kpis["cash"])) == 3, np.inf, kpis["cash"])}
            return kpis, teams

        monkeypatch.setattr(mesa, "run_firm", broken)
    else:
        import orgsim.engine_numba as numba_engine

        real = numba_engine.run

        def broken(*args, **kwargs):
            kpis, teams = real(*args, **kwargs)
            if kpis.shape[1] > 1:  # not the one-firm warm-up
                kpis[numba_engine.KPI_FIELDS.index("cash"), 1, 3] = np.inf
            return kpis, teams

        monkeypatch.setattr(numba_engine, "run", broken)
    with pytest.raises(orgsim.simulation.ModelError, match=r"^KPI 'cash' is inf for firm 1 in period 4: "):
        orgsim.simulate(cfg, engine=engine)


def test_ordinary_runs_do_not_warn(small_cfg):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        orgsim.simulate(small_cfg.replace(n_orgs=1, periods=10))


@st.composite
def extreme_configs(draw):
    """Valid configs at the edges the bounds allow (docs/model.md §12, "Bounds that keep every
    run finite"): the largest money and quantity values, the longest delays, AR(1) noise close
    to a unit root, unstable-looking ordering rules, and orders without a floor at the lowest
    supply-line weight allowed."""
    negative = draw(st.booleans())
    big = lambda hi: st.sampled_from([0.0, 1.0, hi])  # noqa: E731
    return config_from_dict(
        {
            "n_orgs": 2,
            "periods": 3000,
            "seed": draw(st.integers(0, 2**31)),
            "network": {
                "stages": draw(st.integers(1, 4)),
                "width": 1,
                "order_delay": draw(st.sampled_from([1, 52])),
                "lead_time": draw(st.sampled_from([1, 52])),
                "capacity": draw(st.sampled_from([None, 1e9, 1.0])),
                "initial_inventory": draw(big(1e9)),
            },
            "demand": {
                "level": draw(big(1e6)),
                "trend": draw(st.sampled_from([-0.01, 0.0, 0.01])),
                "seasonality": draw(st.sampled_from([0.0, 1.0])),
                "rho": draw(st.sampled_from([0.0, 0.999999, -0.999999])),
                "cv": draw(st.sampled_from([0.0, 2.0])),
                "shock_prob": draw(st.sampled_from([0.0, 1.0])),
                "shock_size": draw(st.sampled_from([-1.0, 5.0])),
                "step_size": draw(st.sampled_from([-1e6, 0.0, 1e6])),
                "step_period": 10,
                "allow_negative": draw(st.booleans()),
            },
            "policy": {
                "theta": draw(st.sampled_from([0.0, 1.0])),
                "alpha_s": draw(st.sampled_from([0.0, 1.0])),
                "beta": draw(st.sampled_from([0.5, 1.0])) if negative else draw(st.sampled_from([0.0, 1.0])),
                "s_prime": draw(st.sampled_from([None, -1e9, 1e9])),
                "cover": draw(st.sampled_from([0.0, 520.0])),
                "allow_negative_orders": negative,
            },
            "costs": {k: draw(big(1e6)) for k in ("holding", "backlog", "unit", "material")}
            | {"fixed": draw(big(1e9))},
            "supply": {
                "disruption_prob": draw(st.sampled_from([0.0, 1.0])),
                "cost_shock_size": 5.0,
                "cost_shock_prob": draw(st.sampled_from([0.0, 1.0])),
            },
            "finance": {
                "price": draw(big(1e6)),
                "initial_cash": draw(big(1e12)),
                "min_cash": draw(big(1e12)),
                "interest_rate": 0.1,
                "covenant_multiple": 20.0,
            },
            "management": {
                "execution_noise": draw(st.sampled_from([0.0, 1.0])),
                "bpo_every": 1,
                "bpo_cost": 1e9,
                "bpm_rate": 1.0,
                "bpm_cost": 1e9,
                "alignment_rate": 1.0,
                "alignment_cost": 1e9,
            },
        }
    )


@pytest.mark.slow
@settings(max_examples=20)
@given(cfg=extreme_configs())
def test_configs_at_the_bounds_stay_finite(cfg):
    """simulate raises ModelError on any NaN or infinity, so a result is the proof; the team
    records are checked too (numba; the engines agree elsewhere to rtol 1e-9)."""
    res = orgsim.simulate(cfg, engine="numba", teams=True)
    assert np.isfinite(res.kpis.select_dtypes("number").to_numpy()).all()


@pytest.mark.parametrize("engine", ["mesa", "numba"])
def test_an_extreme_config_stays_finite_on_both_engines(engine):
    cfg = orgsim.compose(
        ["scenario=chen_bullwhip", "policy.beta=0.5", "network.lead_time=52", "management.execution_noise=1",
         "demand.level=1e6", "demand.rho=0.999999", "demand.cv=2", "costs.holding=1e6", "costs.backlog=1e6",
         "periods=300", "n_orgs=1"]
    )  # fmt: skip
    res = orgsim.simulate(cfg, engine=engine, teams=True)
    assert np.isfinite(res.teams.select_dtypes("number").to_numpy()).all()
