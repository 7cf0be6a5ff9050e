"""Strategies (``conf/strategy``) in every environment (``conf/environment``), both globbed so
new presets are covered.

* A strategy's name and family are labels: a strategy copied under another name (or another
  strategy's name) gives identical results; only the label columns change.
* Every strategy × environment runs on the multinational firm (2 firms × 40 periods, after the
  scenario's 200-period culture burn-in), with no NaN or infinity and the right family label.
* Conservation holds in each: units per team and period (inventory_t = inventory_{t−1} +
  received − shipped) and cash per firm and period (cash = cash at start + free cash flow + net
  financing), with operating cost = the teams' costs + programme cost and the programme cost
  what the strategy's budget says. Identities hold to 1e-9 of the largest magnitude involved.
* Determinism: same seed, same results; another seed, other results; a firm's path does not
  depend on how many firms run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import atol_for, kpi_array, team_array
from helpers import run as cached_run

import orgsim
import orgsim.config
from orgsim.config import compose_dict, config_dir

SIZE = ["n_orgs=2", "periods=40"]
LABELS = ["strategy", "family"]
CONF = Path(config_dir())
STRATEGIES = sorted(p.stem for p in (CONF / "strategy").glob("*.yaml"))
ENVIRONMENTS = sorted(p.stem for p in (CONF / "environment").glob("*.yaml"))
#: the families of MODEL.md
FAMILY = {
    "none": "baseline",
    "bpo": "efficiency_only",
    "bpm": "efficiency_only",
    "bpo_bpm": "efficiency_only",
    "bso": "culture_aligned",
}
GRID = [(s, e) for s in STRATEGIES for e in ENVIRONMENTS]


def test_the_required_presets_exist():
    assert set(FAMILY) <= set(STRATEGIES)
    assert {"stable", "volatile", "disrupted"} <= set(ENVIRONMENTS)


def run(strategy: str, environment: str, *extra: str) -> orgsim.SimulationResult:
    """The multinational firm under a strategy and environment (cached by :func:`helpers.run`)."""
    return cached_run(
        ("scenario=multinational", f"strategy={strategy}", f"environment={environment}", *SIZE, *extra)
    )


def assert_same_except_labels(a: orgsim.SimulationResult, b: orgsim.SimulationResult) -> None:
    pd.testing.assert_frame_equal(a.kpis.drop(columns=LABELS), b.kpis.drop(columns=LABELS), check_exact=True)
    pd.testing.assert_frame_equal(a.teams, b.teams, check_exact=True)


# --------------------------------------------------------------------------------------------
# no code branches on a strategy's name
# --------------------------------------------------------------------------------------------
def test_a_renamed_strategy_gives_identical_results():
    """bso in a volatile environment, rebuilt from its composed dict with the name "renamed"
    and the family "baseline": every KPI and team record identical, only the labels differ."""
    overrides = ["strategy=bso", "environment=volatile", *SIZE]
    data = compose_dict(overrides)
    data["strategy"] = {"name": "renamed", "family": "baseline"}
    original = orgsim.simulate(orgsim.compose(overrides))
    renamed = orgsim.simulate(orgsim.config_from_dict(data))
    assert_same_except_labels(original, renamed)
    assert set(renamed.kpis.strategy) == {"renamed"} and set(renamed.kpis.family) == {"baseline"}
    assert set(original.kpis.strategy) == {"bso"} and set(original.kpis.family) == {"culture_aligned"}


def _write_strategy(conf: Path, stem: str, numbers_of: str, name: str, family: str) -> None:
    """conf/strategy/<stem>.yaml: the settings of strategy ``numbers_of`` labelled ``name``."""
    data = yaml.safe_load((CONF / "strategy" / f"{numbers_of}.yaml").read_text())
    data["strategy"] = {"name": name, "family": family}
    (conf / "strategy" / f"{stem}.yaml").write_text("# @package _global_\n" + yaml.safe_dump(data))


@pytest.fixture
def conf_copy(tmp_path, monkeypatch) -> Path:
    """A copy of conf/ that ``orgsim.compose`` reads instead of the real one."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    monkeypatch.setattr(orgsim.config, "config_dir", lambda: conf)
    return conf


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_strategy_file_copied_under_another_name_gives_identical_results(strategy, conf_copy):
    """conf/strategy/<s>.yaml copied to renamed_<s>.yaml with another name and family:
    composing ``strategy=renamed_<s>`` (volatile environment) reproduces ``strategy=<s>``."""
    original = run(strategy, "volatile")
    families = ["baseline", "efficiency_only", "culture_aligned"]
    other = families[(families.index(original.config.strategy.family) + 1) % 3]
    _write_strategy(conf_copy, f"renamed_{strategy}", strategy, f"renamed_{strategy}", other)
    copy = orgsim.simulate(
        orgsim.compose(
            [f"strategy=renamed_{strategy}", "environment=volatile", "scenario=multinational", *SIZE]
        )
    )
    assert copy.config.strategy.name == f"renamed_{strategy}"
    assert_same_except_labels(original, copy)


def test_swapping_names_swaps_nothing_but_labels(conf_copy):
    """bpo's settings saved as bso.yaml (named bso, culture_aligned) and bso's as bpo.yaml:
    ``strategy=bso`` then behaves exactly like the real bpo, and the other way round; the
    real pair differs, so the check has power."""
    real_bpo, real_bso = run("bpo", "volatile"), run("bso", "volatile")
    assert not real_bpo.kpis.drop(columns=LABELS).equals(real_bso.kpis.drop(columns=LABELS))
    _write_strategy(conf_copy, "bso", "bpo", "bso", "culture_aligned")
    _write_strategy(conf_copy, "bpo", "bso", "bpo", "efficiency_only")
    fake_bso = orgsim.simulate(
        orgsim.compose(["strategy=bso", "environment=volatile", "scenario=multinational", *SIZE])
    )
    fake_bpo = orgsim.simulate(
        orgsim.compose(["strategy=bpo", "environment=volatile", "scenario=multinational", *SIZE])
    )
    assert set(fake_bso.kpis.strategy) == {"bso"} and set(fake_bso.kpis.family) == {"culture_aligned"}
    assert_same_except_labels(real_bpo, fake_bso)
    assert_same_except_labels(real_bso, fake_bpo)


# --------------------------------------------------------------------------------------------
# every strategy × environment
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("strategy", "environment"), GRID)
def test_runs_finite_and_labelled(strategy, environment):
    res = run(strategy, environment)
    k, t = res.kpis, res.teams
    assert list(k.columns[: len(orgsim.KPI_COLUMNS)]) == list(orgsim.KPI_COLUMNS)
    assert len(k) == 2 * 40 and len(t) == 2 * 40 * res.network.n_teams
    for frame in (k, t):
        numeric = frame.select_dtypes(include=[np.number]).to_numpy(dtype=float)
        assert np.isfinite(numeric).all()
    assert set(k.strategy) == {strategy}
    assert set(k.family) == {FAMILY[strategy]}  # a new preset must declare its family here
    assert res.config.environment.name == environment


@pytest.mark.parametrize(("strategy", "environment"), GRID)
def test_units_are_conserved_per_team(strategy, environment):
    """inventory_t − inventory_{t−1} = received_t − shipped_t for every team and period, from
    the network's initial inventory."""
    res = run(strategy, environment)
    inv, rec, shp = (team_array(res, c) for c in ("inventory", "received", "shipped"))
    start = res.network.initial_inventory
    previous = np.concatenate([np.broadcast_to(start, (inv.shape[0], 1, inv.shape[2])), inv[:, :-1]], axis=1)
    np.testing.assert_allclose(inv - previous, rec - shp, rtol=0, atol=atol_for(inv, rec, shp))


@pytest.mark.parametrize(("strategy", "environment"), GRID)
def test_cash_is_conserved_and_costs_add_up(strategy, environment):
    """Per firm and period: cash = cash_start + free cash flow + net financing, cash_start is
    last period's cash (initial cash in period 1); operating cost = Σ team costs + programme
    cost; EBITDA = revenue − operating cost; and the programme cost is the strategy's budget
    (alignment cost, BPM cost per team, a BPO project every bpo_every periods) in every period
    the firm operates, 0 once it is insolvent."""
    res = run(strategy, environment)
    cfg, net = res.config, res.network
    kp = {c: kpi_array(res, c) for c in res.kpis.columns if c not in ("org", "period", *LABELS)}
    scale = atol_for(kp["cash"], kp["operating_cost"], kp["revenue"])
    np.testing.assert_allclose(
        kp["cash"], kp["cash_start"] + kp["free_cash_flow"] + kp["net_financing"], rtol=0, atol=scale
    )
    np.testing.assert_allclose(kp["cash_start"][:, 0], cfg.finance.initial_cash, rtol=0, atol=scale)
    np.testing.assert_allclose(kp["cash_start"][:, 1:], kp["cash"][:, :-1], rtol=0, atol=scale)
    team_cost = team_array(res, "cost").sum(axis=2)
    np.testing.assert_allclose(kp["operating_cost"], team_cost + kp["programme_cost"], rtol=0, atol=scale)
    np.testing.assert_allclose(kp["ebitda"], kp["revenue"] - kp["operating_cost"], rtol=0, atol=scale)

    m = cfg.management
    periods = np.arange(1, cfg.periods + 1)
    budget = (
        (m.alignment_cost if m.alignment_rate > 0 else 0.0)
        + (m.bpm_cost * net.n_teams if m.bpm_rate > 0 else 0.0)
        + np.where((m.bpo_every > 0) & (periods % max(m.bpo_every, 1) == 0), m.bpo_cost, 0.0)
    )
    solvent = kp["solvent"].astype(bool)
    operated = np.concatenate([np.ones((cfg.n_orgs, 1), bool), solvent[:, :-1]], axis=1)
    np.testing.assert_allclose(kp["programme_cost"], np.where(operated, budget, 0.0), rtol=0, atol=scale)
    if cfg.strategy.family != "baseline":
        assert kp["programme_cost"].sum() > 0, "a management strategy costs something"


# --------------------------------------------------------------------------------------------
# determinism
# --------------------------------------------------------------------------------------------
def test_same_seed_same_results_other_seed_other_results():
    """bso, volatile, 2 firms × 40 periods: two runs with seed 0 are identical; seed 1 differs
    in demand and cash."""
    overrides = ["strategy=bso", "environment=volatile", *SIZE]
    a = orgsim.simulate(orgsim.compose([*overrides, "seed=0"]))
    b = orgsim.simulate(orgsim.compose([*overrides, "seed=0"]))
    c = orgsim.simulate(orgsim.compose([*overrides, "seed=1"]))
    pd.testing.assert_frame_equal(a.kpis, b.kpis, check_exact=True)
    pd.testing.assert_frame_equal(a.teams, b.teams, check_exact=True)
    assert not np.array_equal(a.kpis.demand.to_numpy(), c.kpis.demand.to_numpy())
    assert not np.array_equal(a.kpis.cash.to_numpy(), c.kpis.cash.to_numpy())


def test_a_firms_path_depends_only_on_seed_and_index():
    """bso, volatile, 40 periods: firm 0 is the same alone and among 3 firms, and firms 0 and 1
    differ."""
    overrides = ["strategy=bso", "environment=volatile", "periods=40"]
    alone = orgsim.simulate(orgsim.compose([*overrides, "n_orgs=1"]))
    crowd = orgsim.simulate(orgsim.compose([*overrides, "n_orgs=3"]))
    first = crowd.kpis[crowd.kpis.org == 0].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone.kpis, first, check_exact=True)
    second = crowd.kpis[crowd.kpis.org == 1].reset_index(drop=True)
    assert not np.array_equal(first.demand.to_numpy(), second.demand.to_numpy())
