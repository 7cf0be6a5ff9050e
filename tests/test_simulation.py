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
