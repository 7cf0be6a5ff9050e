"""A parameter table packed column by column (orgsim._params) equals one config per row
(orgsim.engine_numba.pack), with the same errors for the same bad values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import orgsim
from orgsim import engine_numba
from orgsim._params import DIRECT, pack_params
from orgsim.config import ConfigError
from orgsim.simulation import _check_params, _firm_configs

#: the default firm with every layer on, and a base that allows orders without a floor
BASES = {
    "multinational": orgsim.compose(["strategy=bso", "n_orgs=2", "periods=20"]),
    "chen": orgsim.compose(["scenario=chen_bullwhip", "n_orgs=2", "periods=20"]),
}
CANDIDATES = (0, 0.25, 0.5, 0.9, 1, 2, 4, 13, 52, 100)
INVALID = (-1, -0.5, 1.5, 7.25, 600, 1e13, np.nan, np.inf)


def per_row(cfg, table):
    """The old way: one validated config per row, packed."""
    return engine_numba.pack(_firm_configs(cfg.replace(n_orgs=len(table)), _check_params(table)))


def per_row_error(cfg, table) -> str:
    with pytest.raises(ConfigError) as info:
        per_row(cfg, table)
    return str(info.value)


def valid_values(cfg, key) -> list:
    out = []
    for v in CANDIDATES:
        try:
            per_row(cfg, pd.DataFrame({key: [v]}))
        except ConfigError:
            continue
        out.append(v)
    return out


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("key", sorted(DIRECT))
def test_a_direct_column_packs_as_one_config_per_row(base, key):
    cfg = BASES[base]
    values = valid_values(cfg, key)
    assert values, f"no candidate value is valid for {key}"
    table = pd.DataFrame({key: [values[i % len(values)] for i in range(7)], "policy.cover": 0.0})
    old, new = per_row(cfg, table), pack_params(cfg, _check_params(table))
    np.testing.assert_array_equal(new["P"], old["P"], strict=True)
    np.testing.assert_array_equal(new["TP"], old["TP"], strict=True)


@pytest.mark.parametrize("key", sorted(DIRECT))
def test_a_bad_value_in_a_direct_column_gives_the_same_error(key):
    cfg = BASES["multinational"]
    valid = valid_values(cfg, key)
    for bad in INVALID:
        table = pd.DataFrame({key: [valid[0], valid[-1], bad, valid[0]]})
        try:
            expected = per_row_error(cfg, table)
        except pytest.fail.Exception:  # the value is valid for this field
            assert pack_params(cfg, _check_params(table))["P"].shape[0] == 4
            continue
        with pytest.raises(ConfigError) as info:
            pack_params(cfg, _check_params(table))
        assert str(info.value) == expected, (key, bad)


def test_mixed_columns_pack_as_one_config_per_row():
    cfg = BASES["multinational"]
    rng = np.random.default_rng(1)
    table = pd.DataFrame(
        {
            "policy.theta": rng.uniform(0, 1, 12),
            "costs.fixed": rng.choice([10.0, 50.0, 80.0], 12),  # shapes the steady state: per value
            "demand.cv": rng.uniform(0, 0.5, 12),  # σ = cv·level
            "demand.level": rng.choice([90.0, 100.0], 12),
            "network.integer_units": False,  # a boolean: one config per value
        }
    )
    old, new = per_row(cfg, table), pack_params(cfg, _check_params(table))
    np.testing.assert_array_equal(new["P"], old["P"], strict=True)
    np.testing.assert_array_equal(new["TP"], old["TP"], strict=True)


def test_the_rule_on_orders_without_a_floor_still_applies_to_a_beta_column():
    cfg = BASES["chen"]  # allow_negative_orders: β is checked with the rule, row by row
    table = pd.DataFrame({"policy.beta": [1.0, 0.4]})
    with pytest.raises(
        ConfigError, match=r"^policy\.beta == 0\.4, must be >= 0\.5 when policy\.allow_negative"
    ):
        pack_params(cfg, _check_params(table))


@pytest.mark.parametrize("engine", ["numba", "mesa"])
def test_a_table_gives_the_runs_of_its_rows(engine):
    """Firm i of a table run equals firm i of a run of the config changed by row i (the default
    firm, every layer on, so each firm meets its own random numbers)."""
    cfg = orgsim.compose(["strategy=bso", "environment=volatile", "periods=15", "culture.burn_in=5"])
    table = pd.DataFrame(
        {"policy.theta": [0.1, 0.5, 0.9], "culture.p1": [0.1, 0.3, 0.05], "costs.fixed": [50.0, 60.0, 50.0]}
    )
    together = orgsim.simulate(cfg, engine=engine, params=table, teams=False)
    for i, row in table.iterrows():
        changed = cfg.replace(**{k: float(v) for k, v in row.items()}, n_orgs=len(table))
        alone = orgsim.simulate(changed, engine=engine, teams=False)
        for name, values in together.kpi_arrays.items():
            np.testing.assert_array_equal(values[i], alone.kpi_arrays[name][i], err_msg=name)


def test_integer_fields_keep_the_value_as_given_in_messages():
    cfg = BASES["multinational"]
    table = pd.DataFrame({"culture.burn_in": [10, -3]})  # an int64 column
    assert per_row_error(cfg, table) == "culture.burn_in == -3, must be >= 0"
    with pytest.raises(ConfigError, match=r"^culture\.burn_in == -3, must be >= 0$"):
        pack_params(cfg, _check_params(table))
