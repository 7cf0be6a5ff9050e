"""Sterman's (1989) beer distribution game against its published reconstruction.

Sources
-------
* Sterman, J. D. (1989). Modeling managerial behavior: misperceptions of feedback in a dynamic
  decision making experiment. Management Science 35(3), 321-339. The game's structure and the
  mean estimates of the decision parameters over his subjects: θ = 0.36, α_S = 0.26,
  β = 0.34, S' = 17.
* Edali, M. & Yasarcan, H. (2014). A mathematical model of the beer game. Journal of
  Artificial Societies and Social Simulation 17(4) 2. Their reconstruction: four echelons,
  initial inventory 12 cases, pipelines of 4, customer demand 4 cases a week then 8 from week 5,
  36 weeks, two-week order and shipping delays, a three-week factory, whole cases, orders fixed
  at 4 in weeks 1-4, $0.50 holding and $1.00 backlog per case-week. With θ = 0, α_S = β = 1
  and S' = 28, 28, 28, 20 the total cost is $204: $46, $50, $54 and $54 for the retailer,
  wholesaler, distributor and factory.

Runs and tolerance: one deterministic run of 36 weeks (the game has no random element);
costs must match the published dollars exactly (whole cases times $0.50 or $1.00 are exact
in binary floating point).
"""

from __future__ import annotations

import numpy as np
import pytest

import orgsim

PUBLISHED = ["policy.theta=0", "policy.alpha_s=1", "policy.beta=1", "policy.s_prime=[28,28,28,20]"]
ECHELONS = ("retailer", "wholesaler", "distributor", "factory")
COST_BY_ECHELON = {
    "retailer": 46.0,
    "wholesaler": 50.0,
    "distributor": 54.0,
    "factory": 54.0,
}  # Edali & Yasarcan


@pytest.fixture(scope="module")
def published_run() -> orgsim.SimulationResult:
    return orgsim.simulate(orgsim.compose(["scenario=beer_game", *PUBLISHED]))


def test_total_cost_is_204_dollars(published_run):
    assert published_run.teams.cost.sum() == 204.0


def test_cost_by_echelon(published_run):
    by_team = published_run.teams.groupby("team", observed=True).cost.sum()
    assert by_team.to_dict() == COST_BY_ECHELON


def test_cost_is_holding_plus_backlog_per_case_week(published_run):
    """$0.50 per case in stock and $1.00 per case on backorder, every week and echelon."""
    t = published_run.teams
    np.testing.assert_array_equal(t.cost, 0.5 * t.inventory + 1.0 * t.backlog)


def test_structure(beer_cfg):
    cfg = beer_cfg
    net = cfg.network
    assert cfg.periods == 36 and cfg.n_orgs == 1
    assert net.roles == ECHELONS
    assert net.width == (1, 1, 1, 1)
    assert net.initial_inventory == (12.0,) * 4
    assert net.integer_units
    # two-week order and shipping delays; the factory: a one-week production request and a
    # two-week production delay (three weeks)
    assert net.order_delay == (2, 2, 2, 1)
    assert net.lead_time == (2, 2, 2, 2)
    assert cfg.costs.holding == (0.5,) * 4 and cfg.costs.backlog == (1.0,) * 4
    assert cfg.costs.unmet == "backlog"
    assert cfg.policy.fixed_order_periods == 4


def test_sterman_mean_decision_parameters(beer_cfg):
    """The scenario's defaults are Sterman's (1989) mean estimates over his subjects."""
    p = beer_cfg.policy
    assert (p.forecast, p.theta, p.alpha_s, p.beta) == ("smoothing", 0.36, 0.26, 0.34)
    assert p.s_prime == (17.0,) * 4
    assert p.cover == (0.0,) * 4


def test_demand_orders_and_pipelines(published_run):
    """Customer demand is 4 cases in weeks 1-4 and 8 from week 5; every echelon orders 4 in
    weeks 1-4; the initial pipelines hold 4 cases in each slot."""
    k, t = published_run.kpis, published_run.teams
    assert k.demand.tolist() == [4.0] * 4 + [8.0] * 32
    first = t[t.period <= 4]
    assert (first.order == 4.0).all()
    assert (t[t.period <= 2].received == 4.0).all()  # shipping delay 2, pipelines of 4
    assert (t[t.period == 1].inventory == 12.0).all()  # 12 + 4 received − 4 shipped


def test_whole_cases(published_run):
    t = published_run.teams
    for col in ("order", "received", "shipped", "inventory", "backlog"):
        assert (t[col] == t[col].round()).all(), col


def test_default_game_is_deterministic(beer_cfg):
    a, b = orgsim.simulate(beer_cfg), orgsim.simulate(beer_cfg.replace(seed=123))
    np.testing.assert_array_equal(a.teams.cost, b.teams.cost)
