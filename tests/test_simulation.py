"""``orgsim.simulate`` and its results object (``orgsim.simulation``)."""

from __future__ import annotations

import json
from importlib import metadata

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import orgsim


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
            orgsim.ConfigError, match=r"^periods == \d+ for firm 1, must equal \d+ in one call"
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

    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    # periods from the machine's memory, so n_orgs stays within its cap (10^7) on any machine
    periods = max(1000, -(-memory // (8 * len(orgsim.simulation.ENGINE_KPIS) * 5_000_000)))
    n_orgs = memory // (8 * len(orgsim.simulation.ENGINE_KPIS) * periods) + 1  # KPI arrays > memory
    with pytest.raises(orgsim.ConfigError, match=rf"^n_orgs × periods == {n_orgs} × {periods}, must fit"):
        orgsim.simulate(small_cfg.replace(n_orgs=n_orgs, periods=periods), engine="numba")
    # one firm fewer than a hundredth of that fits (and is not run here)
    orgsim.simulation.check_memory(small_cfg.replace(n_orgs=n_orgs // 100, periods=periods), teams=False)


def test_overflowing_inputs_warn_with_the_kpi_firm_and_period():
    cfg = orgsim.compose(["n_orgs=1", "periods=5", "costs.fixed=1e308"])  # valid, but 10 teams overflow
    with pytest.warns(RuntimeWarning, match=r"^KPI 'operating_cost' is inf for firm 0 in period 1: "):
        orgsim.simulate(cfg)


def test_ordinary_runs_do_not_warn(small_cfg):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        orgsim.simulate(small_cfg.replace(n_orgs=1, periods=10))
