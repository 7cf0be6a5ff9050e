"""Every option of every config group in ``conf/`` composes and runs (tiny sizes).

Options are discovered by globbing ``conf/<group>/*.yaml``, so a new scenario, environment,
strategy or experiment is covered without editing this file. Each run must produce the
contract's columns (MODEL.md, "Public contract"), one row per firm × period (× team), and no
NaN or infinity.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import conf_options, default_groups, group_override

import orgsim
from orgsim.config import TOOL_NODES
from orgsim.network import build_network

#: the options that make up a run's config; the settings of a tool (conf/calibration/,
#: conf/sensitivity/: orgsim.config.TOOL_NODES) are read by that tool and tested with it
OPTIONS = [(g, o) for g, o in conf_options() if g not in TOOL_NODES]
TINY = ["n_orgs=2", "periods=40"]


def test_conf_has_the_contract_groups():
    groups = {g for g, _ in OPTIONS}
    assert {"scenario", "strategy", "environment"} <= groups
    assert {"scenario", "strategy", "environment"} <= default_groups()
    scenarios = {o for g, o in OPTIONS if g == "scenario"}
    assert {"multinational", "beer_game", "chen_bullwhip"} <= scenarios
    assert ("strategy", "none") in OPTIONS


def check_frames(res: orgsim.SimulationResult) -> None:
    cfg = res.config
    net = build_network(cfg)
    kpis, teams = res.kpis, res.teams
    assert tuple(kpis.columns[: len(orgsim.KPI_COLUMNS)]) == tuple(orgsim.KPI_COLUMNS)
    assert tuple(teams.columns) == tuple(orgsim.TEAM_COLUMNS)
    # one row per firm and period (and team), each exactly once
    assert len(kpis) == cfg.n_orgs * cfg.periods
    assert not kpis.duplicated(["org", "period"]).any()
    assert set(kpis.org) == set(range(cfg.n_orgs))
    assert set(kpis.period) == set(range(1, cfg.periods + 1))
    assert len(teams) == cfg.n_orgs * cfg.periods * net.n_teams
    assert not teams.duplicated(["org", "period", "team"]).any()
    assert list(teams.team.cat.categories) == list(net.names)
    # labels
    assert (kpis.strategy == cfg.strategy.name).all() and (kpis.family == cfg.strategy.family).all()
    assert pd.api.types.is_integer_dtype(teams.stage) and teams.stage.min() == 0
    roles = np.array(cfg.network.roles)[teams.stage.to_numpy()]
    assert (teams.role.astype(str).to_numpy() == roles).all(), "role does not match the stage"
    assert kpis.solvent.dtype == bool
    # finite everywhere
    for df in (kpis, teams):
        numeric = df.select_dtypes(include=[np.number]).to_numpy(dtype=float)
        assert np.isfinite(numeric).all()
    # culture columns hold their defined values for a firm without the culture layer
    if not cfg.culture.enabled:
        assert (kpis.mean_knowledge == 1.0).all() and (kpis.code_knowledge == 1.0).all()
        assert (teams.knowledge == 1.0).all()


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_runs(group, option):
    cfg = orgsim.compose([group_override(group, option), *TINY])
    if group in ("scenario", "environment", "strategy"):
        assert getattr(cfg, group).name == option, f"conf/{group}/{option}.yaml names itself differently"
    check_frames(orgsim.simulate(cfg, teams=True))


@pytest.mark.parametrize("scenario", [o for g, o in OPTIONS if g == "scenario"])
def test_scenario_defaults_compose(scenario):
    """Each scenario composes at its own sizes (not run: the defaults may be large)."""
    cfg = orgsim.compose([f"scenario={scenario}"])
    assert cfg.scenario.name == scenario
    assert cfg.n_orgs >= 1 and cfg.periods >= 1
    assert cfg.scenario.description, "scenarios describe themselves"
