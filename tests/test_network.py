"""The supply network (``orgsim.network``): topology, steady state and its default S'."""

from __future__ import annotations

import numpy as np
from helpers import run

import orgsim
from orgsim.config import Config, config_from_dict
from orgsim.network import build_network


def serial_or_tree(widths, **network) -> Config:
    n = len(widths)
    return config_from_dict(
        {"network": {"stages": n, "width": widths, "roles": [f"s{k}" for k in range(n)], **network}}
    )


def test_teams_are_numbered_stage_by_stage_from_the_customer():
    net = build_network(serial_or_tree([4, 2, 1]))
    assert net.n_teams == 7
    np.testing.assert_array_equal(net.stage, [0, 0, 0, 0, 1, 1, 2])
    assert net.names == ("s0_0", "s0_1", "s0_2", "s0_3", "s1_0", "s1_1", "s2")
    assert net.roles == ("s0", "s0", "s0", "s0", "s1", "s1", "s2")
    np.testing.assert_array_equal(net.sales_teams, [0, 1, 2, 3])
    np.testing.assert_array_equal(net.top, [6])


def test_suppliers_and_customers():
    """Team j of stage k buys from team floor(j·width[k+1]/width[k]) of stage k+1."""
    net = build_network(serial_or_tree([4, 2, 1]))
    np.testing.assert_array_equal(net.supplier, [4, 4, 5, 5, 6, 6, -1])
    assert net.customers == ((), (), (), (), (0, 1), (2, 3), (4, 5))
    for team, supplier in enumerate(net.supplier):
        if supplier >= 0:
            assert team in net.customers[supplier]
            assert net.stage[supplier] == net.stage[team] + 1


def test_throughput_counts_the_sales_teams_served():
    cfg = serial_or_tree([4, 2, 1]).replace(**{"demand.level": 7.0})
    net = build_network(cfg)
    np.testing.assert_array_equal(net.subtree_sales.sum(axis=1), [1, 1, 1, 1, 2, 2, 4])
    np.testing.assert_allclose(net.throughput, 7.0 * np.array([1, 1, 1, 1, 2, 2, 4]))


def test_per_stage_values_are_spread_to_teams():
    cfg = serial_or_tree(
        [2, 1, 1],
        order_delay=[1, 2, 3],
        lead_time=[4, 5, 6],
        capacity=[None, 50.0, None],
        initial_inventory=[10, 20, 30],
    )
    net = build_network(cfg)
    np.testing.assert_array_equal(net.order_delay, [1, 1, 2, 3])
    np.testing.assert_array_equal(net.lead_time, [4, 4, 5, 6])
    np.testing.assert_array_equal(net.capacity, [np.inf, np.inf, 50.0, np.inf])
    np.testing.assert_array_equal(net.initial_inventory, [10, 10, 20, 30])
    # shared demand data travels up with the orders: stage k sees it after the delays below it
    np.testing.assert_array_equal(net.info_delay, [0, 0, 1, 3])


def test_explicit_s_prime_is_used_as_given():
    cfg = serial_or_tree([1, 1]).replace(**{"policy.s_prime": [5.0, 9.0]})
    np.testing.assert_array_equal(build_network(cfg).s_prime, [5.0, 9.0])


def test_multinational_has_at_least_ten_teams_in_four_functions():
    """MODEL.md / issue 2: global sourcing, regional production, distribution and sales."""
    cfg = orgsim.compose([])
    net = build_network(cfg)
    assert net.n_teams >= 10
    assert set(net.roles) == {"sales", "distribution", "production", "sourcing"}
    assert net.roles[net.sales_teams[0]] == "sales"
    assert len(net.top) == 1 and net.roles[net.top[0]] == "sourcing"


def test_auto_s_prime_targets_the_initial_state():
    """S' left to the auto rule (NaN) is Sterman's S* + β·SL*: S* is the initial inventory less the
    cover term and SL* the initial supply line, (order_delay − 1 + lead_time) periods of throughput."""
    cfg = serial_or_tree([2, 1], order_delay=[1, 3], lead_time=[2, 4], initial_inventory=[10, 40])
    cfg = cfg.replace(**{"policy.cover": [1.0, 0.5], "demand.level": 5.0})
    net = build_network(cfg)
    assert np.isnan(net.s_prime).all()
    np.testing.assert_allclose(net.supply_line_target, [2 * 5, 2 * 5, 6 * 10])
    np.testing.assert_allclose(net.inventory_target, [10 - 5, 10 - 5, 40 - 0.5 * 10])


def test_steady_state_ebitda_at_equilibrium():
    """At the equilibrium (no noise, no culture, constant demand) every period's EBITDA and free
    cash flow are the steady state's: price × customer throughput − holding on the initial
    stock − processing, fixed and material costs of the throughput; the covenant limit is
    multiple × window × that EBITDA."""
    res = run(
        (
            "culture.enabled=false",
            "management.execution_noise=0",
            "management.adapt_every=0",
            "environment=native",
            "demand.seasonality=0",
            "n_orgs=1",
            "periods=30",
        )
    )
    cfg, net = res.config, build_network(res.config)
    revenue = cfg.finance.price * net.throughput[net.sales_teams].sum()
    costs = (net.holding * net.initial_inventory + net.unit_cost * net.throughput + net.fixed_cost).sum()
    ebitda = revenue - costs - cfg.costs.material * net.throughput[net.top].sum()
    k = res.kpis
    np.testing.assert_allclose(k.revenue, revenue, rtol=1e-12)
    np.testing.assert_allclose(k.ebitda, ebitda, rtol=1e-12)
    np.testing.assert_allclose(k.free_cash_flow, ebitda, rtol=1e-12)
    f = cfg.finance
    np.testing.assert_allclose(
        k.debt + k.credit_headroom, f.covenant_multiple * f.covenant_window * ebitda, rtol=1e-9
    )
