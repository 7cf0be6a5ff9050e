"""Invariants of the Mesa reference engine (``orgsim.engine_mesa``).

Every scenario in ``conf/scenario`` runs in every environment in ``conf/environment``, and every
strategy in ``conf/strategy`` in the volatile environment (all globbed, so new presets are
covered), plus stress cases that switch on what the presets leave off (lost sales, binding
capacity, heavy disruptions, input-cost shocks, a credit line in use, insolvency, shared
information, several Chen stages); most stress cases switch the culture layer, execution noise
and adaptation off (``FOUNDATION``) so that the results determine material costs and the
steady state exactly. Each invariant is checked on every case; a hypothesis test checks them on
random valid configurations. Identities between floats hold to 1e-9 of the largest magnitude
involved.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import atol_for, conf_options, kpi_array, random_configs, run, team_array
from hypothesis import given

import orgsim
from orgsim.engine_mesa import Firm

SIZE = ("n_orgs=2", "periods=60")
SCENARIOS = [o for g, o in conf_options() if g == "scenario"]
ENVIRONMENTS = [o for g, o in conf_options() if g == "environment"]
STRATEGIES = [o for g, o in conf_options() if g == "strategy"]
# the operations, environment and finance layers alone: no culture, no execution noise, no
# adaptation (the multinational switches these on; the classic scenarios never do)
FOUNDATION = ("culture.enabled=false", "management.execution_noise=0", "management.adapt_every=0")
CHEN3 = ("scenario=chen_bullwhip", "network.stages=3", "network.roles=[retailer,wholesaler,manufacturer]")

LEAN = "[30,300,200,600]"  # little stock at the sales teams, so stock-outs happen
CASES: dict[str, tuple[str, ...]] = {
    f"{s}-{e}": (f"scenario={s}", f"environment={e}", *SIZE) for s in SCENARIOS for e in ENVIRONMENTS
}
CASES.update({f"strategy-{s}": (f"strategy={s}", "environment=volatile", *SIZE) for s in STRATEGIES})
CASES.update(
    {
        "lost_sales": (
            *FOUNDATION,
            "environment=volatile",
            f"network.initial_inventory={LEAN}",
            "costs.unmet=lost_sales",
            *SIZE,
        ),
        "lean_backlog": (*FOUNDATION, "environment=volatile", f"network.initial_inventory={LEAN}", *SIZE),
        "heavy_disruption": (
            *FOUNDATION,
            "environment=disrupted",
            "supply.disruption_prob=0.2",
            "demand.shock_prob=0.1",
            *SIZE,
        ),
        "cost_shocks": (*FOUNDATION, "environment=volatile", "supply.cost_shock_prob=0.2", *SIZE),
        "capacity_binding": (
            *FOUNDATION,
            "environment=volatile",
            "network.capacity=[null,null,104,null]",
            *SIZE,
        ),
        "credit_line": (*FOUNDATION, "finance.initial_cash=0", "environment=volatile", *SIZE),
        "credit_line_culture": (
            "finance.initial_cash=0",
            "environment=volatile",
            "finance.covenant_window=13",
            *SIZE,
        ),
        "insolvent": (*FOUNDATION, "finance.price=0", *SIZE),
        "shared_info": (*FOUNDATION, "information=shared", *SIZE),
        "moving_average": (*FOUNDATION, "policy.forecast=moving_average", "policy.ma_window=3", *SIZE),
        "no_payment_lags": (
            *FOUNDATION,
            "finance.receivable_lag=0",
            "finance.payable_lag=0",
            "environment=volatile",
            *SIZE,
        ),
        "beer_lost_sales": ("scenario=beer_game", "environment=volatile", "costs.unmet=lost_sales", *SIZE),
        "chen3_local": (*CHEN3, *SIZE),
        "chen3_shared": (*CHEN3, "information=shared", *SIZE),
    }
)
CASE_IDS = sorted(CASES)


# --------------------------------------------------------------------------------------------
# invariants, shared by the case matrix and the property test
# --------------------------------------------------------------------------------------------
def operating(res) -> np.ndarray:
    """[org, period] True where the firm operated (it was solvent when the period began)."""
    solvent = kpi_array(res, "solvent").astype(bool)
    return np.concatenate([np.ones((solvent.shape[0], 1), bool), solvent[:, :-1]], axis=1)


def shifted(values: np.ndarray, lag: int, fill: float) -> np.ndarray:
    """``values`` (axis 1 = period) delayed by ``lag`` periods, ``fill`` before period 1."""
    if lag == 0:
        return values.copy()
    head = np.full((values.shape[0], lag), fill)
    return np.concatenate([head, values[:, :-lag]], axis=1)


def unit_cost_factor_is_one(cfg) -> bool:
    """True when every team's cost factor (1 + κ(1 − q))(1 − g) is 1: no knowledge effect on
    costs and no BPO gains."""
    knowledge_costs = cfg.culture.enabled and cfg.culture.cost_sensitivity > 0
    return not knowledge_costs and cfg.management.bpo_every == 0


def material_costs(res) -> np.ndarray | None:
    """[org, period] material bought from outside, when the results determine it: the top
    teams' cost less their holding, backlog, processing and fixed costs (cost factor 1)."""
    cfg, net = res.config, res.network
    if cfg.costs.material == 0.0:
        return np.zeros((cfg.n_orgs, cfg.periods))
    if not unit_cost_factor_is_one(cfg):
        return None
    top = net.top
    own = (
        net.holding[top] * np.maximum(team_array(res, "inventory")[:, :, top], 0.0)
        + net.backlog_cost[top] * team_array(res, "backlog")[:, :, top]
        + net.unit_cost[top] * np.maximum(team_array(res, "shipped")[:, :, top], 0.0)
        + net.fixed_cost[top]
    )
    material = team_array(res, "cost")[:, :, top] - own
    # the price is costs.material, or costs.material·(1 + cost_shock_size) during a shock
    received = team_array(res, "received")[:, :, top]
    base = cfg.costs.material * received
    shocked = base * (1.0 + cfg.supply.cost_shock_size)
    tol = atol_for(material, base, shocked)
    ok = (np.abs(material - base) <= tol) | (np.abs(material - shocked) <= tol)
    assert ok[operating(res)].all(), "material is not the price (or the shocked price) times receipts"
    return material.sum(axis=2)


def steady_state_ebitda(res) -> float:
    """EBITDA per period at the initial steady state with cost factor 1."""
    cfg, net = res.config, res.network
    revenue = cfg.finance.price * net.throughput[net.sales_teams].sum()
    costs = (net.holding * net.initial_inventory + net.unit_cost * net.throughput + net.fixed_cost).sum()
    return float(revenue - costs - cfg.costs.material * net.throughput[net.top].sum())


def check_finite(res):
    for name, df in (("kpis", res.kpis), ("teams", res.teams)):
        numeric = df.select_dtypes(include=[np.number, bool])
        values = numeric.to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        assert not bad.any(), f"{name}: non-finite values in {list(numeric.columns[bad.any(axis=0)])}"


def check_team_conservation(res):
    """inventory_t = inventory_{t-1} + received_t - shipped_t, inventory_0 from the config."""
    net = res.network
    inv, rec, shp = (team_array(res, c) for c in ("inventory", "received", "shipped"))
    previous = np.concatenate(
        [np.broadcast_to(net.initial_inventory, (inv.shape[0], 1, inv.shape[2])), inv[:, :-1]], axis=1
    )
    np.testing.assert_allclose(inv, previous + rec - shp, rtol=0, atol=atol_for(inv, rec, shp))


def check_order_flow(res):
    """Backlogs follow the orders: what a team owes grows by what it is asked for and falls by
    what it ships. Stage 0 is asked for end-customer demand; team j upstream for the orders its
    customers placed ``order_delay`` periods earlier (the initial order pipelines hold the
    steady-state throughput). Checked while the firm operates."""
    cfg, net = res.config, res.network
    op = operating(res)
    backlog, shipped, order = (team_array(res, c) for c in ("backlog", "shipped", "order"))
    prev_backlog = np.concatenate([np.zeros_like(backlog[:, :1]), backlog[:, :-1]], axis=1)
    tol = atol_for(backlog, shipped, order, kpi_array(res, "demand"))
    sales = net.sales_teams
    if cfg.costs.unmet == "lost_sales":
        assert np.all(backlog[:, :, sales] == 0.0), "lost sales: stage-0 teams never backlog"
        sold = shipped[:, :, sales].sum(axis=2)
        assert np.all(sold[op] <= kpi_array(res, "demand")[op] + tol), "shipped more than demanded"
    else:
        growth = (backlog - prev_backlog)[:, :, sales].sum(axis=2)
        expected = kpi_array(res, "demand") - shipped[:, :, sales].sum(axis=2)
        np.testing.assert_allclose(growth[op], expected[op], rtol=0, atol=tol)
    for j in range(net.n_teams):
        customers = net.customers[j]
        if not customers:
            continue
        asked = sum(
            shifted(order[:, :, c], int(net.order_delay[c]), float(net.throughput[c])) for c in customers
        )
        growth = backlog[:, :, j] - prev_backlog[:, :, j]
        np.testing.assert_allclose(
            growth[op], (asked - shipped[:, :, j])[op], rtol=0, atol=tol, err_msg=f"team {net.names[j]}"
        )


def check_transit(res):
    """Goods a supplier ships reach its customers ``lead_time`` periods later; before that the
    initial pipelines deliver the steady-state throughput."""
    net = res.network
    op = operating(res)
    received, shipped, order = (team_array(res, c) for c in ("received", "shipped", "order"))
    tol = atol_for(received, shipped, order)
    for j in range(net.n_teams):
        customers = net.customers[j]
        if not customers:
            continue
        lead = {int(net.lead_time[c]) for c in customers}
        assert len(lead) == 1, "customers of one supplier share a stage and its lead time"
        lag = lead.pop()
        arrived = received[:, :, list(customers)].sum(axis=2)
        sent = shifted(shipped[:, :, j], lag, float(net.throughput[list(customers)].sum()))
        np.testing.assert_allclose(arrived[op], sent[op], rtol=0, atol=tol, err_msg=f"to {net.names[j]}")
    cfg = res.config
    for i in net.top:
        lag = int(net.lead_time[i] + net.order_delay[i])
        requested = shifted(order[:, :, i], lag, float(net.throughput[i]))
        got = received[:, :, i]
        if cfg.supply.disruption_prob == 0.0:
            np.testing.assert_allclose(got[op], requested[op], rtol=0, atol=tol, err_msg="outside source")
        else:  # the outside source never ships more than it has been asked for
            within = np.cumsum(got, axis=1) <= np.cumsum(requested, axis=1) + tol
            assert within[op].all(), "the outside source shipped more than it was asked for"


def check_firm_balance(res):
    """Units that entered from outside - units shipped to customers = change in on-hand stock
    (KPI inventory_units) + change in goods in transit between the firm's teams."""
    net = res.network
    op = operating(res)
    received, shipped = team_array(res, "received"), team_array(res, "shipped")
    inside = [i for i in range(net.n_teams) if net.supplier[i] >= 0]
    periods = received.shape[1]
    max_lead = int(max((net.lead_time[i] for i in inside), default=0))
    # goods in transit to team i at the end of period t arrive in periods t+1 .. t+L_i
    transit = np.zeros((received.shape[0], periods - max_lead + 1))
    for i in inside:
        lead = int(net.lead_time[i])
        cum = np.concatenate([np.zeros((received.shape[0], 1)), np.cumsum(received[:, :, i], axis=1)], axis=1)
        for t in range(transit.shape[1]):
            transit[:, t] += cum[:, t + lead] - cum[:, t]
    entered = np.cumsum(received[:, :, net.top].sum(axis=2), axis=1)
    left = np.cumsum(shipped[:, :, net.sales_teams].sum(axis=2), axis=1)
    on_hand = kpi_array(res, "inventory_units") - net.initial_inventory.sum()
    t = np.arange(1, transit.shape[1])  # periods 1 .. T - max_lead
    lhs = (entered - left)[:, t - 1]
    rhs = on_hand[:, t - 1] + transit[:, t] - transit[:, :1]
    valid = op[:, np.minimum(t - 1 + max_lead, periods - 1)]
    np.testing.assert_allclose(lhs[valid], rhs[valid], rtol=0, atol=atol_for(entered, left, transit))


def check_kpi_aggregates(res):
    """Firm KPIs are the sums of their teams: stock, backlog, cost; revenue from stage-0 sales."""
    cfg, net = res.config, res.network
    op = operating(res)
    inv, backlog, cost, shipped = (team_array(res, c) for c in ("inventory", "backlog", "cost", "shipped"))
    k = {c: kpi_array(res, c).astype(float) for c in ("inventory_units", "backlog_units", "operating_cost")}
    k.update({c: kpi_array(res, c).astype(float) for c in ("revenue", "ebitda", "fill_rate", "demand")})
    tol = atol_for(inv, backlog, cost, k["revenue"])
    np.testing.assert_allclose(k["inventory_units"], inv.sum(axis=2), rtol=0, atol=tol)
    np.testing.assert_allclose(k["backlog_units"], backlog.sum(axis=2), rtol=0, atol=tol)
    programmes = kpi_array(res, "programme_cost").astype(float)
    assert np.all(programmes >= 0.0)
    np.testing.assert_allclose(k["operating_cost"], cost.sum(axis=2) + programmes, rtol=0, atol=tol)
    sold = shipped[:, :, net.sales_teams].sum(axis=2)
    np.testing.assert_allclose(k["revenue"], cfg.finance.price * sold, rtol=0, atol=tol)
    np.testing.assert_allclose(k["ebitda"], k["revenue"] - k["operating_cost"], rtol=0, atol=tol)
    prev_backlog = shifted(backlog[:, :, net.sales_teams].sum(axis=2), 1, 0.0)
    asked = k["demand"] + prev_backlog
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(asked > 0, sold / asked, 1.0)
    np.testing.assert_allclose(k["fill_rate"][op], expected[op], rtol=1e-9, atol=1e-12)
    assert np.all(inv >= -tol) or cfg.policy.allow_negative_orders, "stock < 0 without returns"


def check_cash(res):
    """cash = cash_start + free_cash_flow + net_financing every period, and each period starts
    with the cash the last one ended with (the first with finance.initial_cash)."""
    cash, start, fcf, nf = (
        kpi_array(res, c).astype(float) for c in ("cash", "cash_start", "free_cash_flow", "net_financing")
    )
    tol = atol_for(cash, start, fcf, nf)
    np.testing.assert_allclose(cash, start + fcf + nf, rtol=0, atol=tol)
    np.testing.assert_array_equal(start[:, 0], res.config.finance.initial_cash)
    np.testing.assert_array_equal(start[:, 1:], cash[:, :-1])


def check_working_capital(res):
    """FCF = collections - cash operating costs - supplier payments, with revenue collected
    ``receivable_lag`` periods and material paid ``payable_lag`` periods after they occur
    (the steady-state amounts before period 1). Checked when the results determine material
    costs (see ``material_costs``)."""
    cfg, net = res.config, res.network
    f = cfg.finance
    op = operating(res)
    material = material_costs(res)
    if material is None:  # knowledge or BPO gains scale material costs: not in the results
        return
    revenue, opcost, fcf = (
        kpi_array(res, c).astype(float) for c in ("revenue", "operating_cost", "free_cash_flow")
    )
    revenue_ss = f.price * net.throughput[net.sales_teams].sum()
    material_ss = cfg.costs.material * net.throughput[net.top].sum()
    collections = shifted(revenue, f.receivable_lag, revenue_ss)
    payments = shifted(material, f.payable_lag, material_ss)
    expected = collections - (opcost - material) - payments
    np.testing.assert_allclose(fcf[op], expected[op], rtol=0, atol=atol_for(revenue, opcost, fcf))


def check_financing(res):
    """Interest is charged on last period's debt; debt + credit headroom is the covenant limit
    max(0, multiple · EBITDA over the trailing window), the window seeded with the firm's
    steady-state EBITDA (computed from the config when costs do not depend on knowledge)."""
    cfg = res.config
    f = cfg.finance
    op = operating(res)
    debt, headroom, interest, ebitda, nf = (
        kpi_array(res, c).astype(float)
        for c in ("debt", "credit_headroom", "interest", "ebitda", "net_financing")
    )
    if not f.enabled:
        for name, values in (
            ("debt", debt),
            ("headroom", headroom),
            ("interest", interest),
            ("financing", nf),
        ):
            assert np.all(values == 0.0), f"finance disabled but {name} is not zero"
        return
    assert np.all(debt >= -1e-9), "negative debt"
    np.testing.assert_allclose(
        interest[op], (f.interest_rate * shifted(debt, 1, 0.0))[op], rtol=1e-12, atol=1e-9
    )
    window, multiple = f.covenant_window, f.covenant_multiple
    if unit_cost_factor_is_one(cfg):
        seed = np.full(debt.shape[0], steady_state_ebitda(res))
    else:  # a firm's steady state depends on its knowledge after the burn-in: read it off period 1
        first = debt[:, 0] + headroom[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            seed = np.where(first > 0, (first / multiple - ebitda[:, 0]) / max(window - 1, 1), np.nan)
    history = np.concatenate([np.repeat(np.nan_to_num(seed)[:, None], window, axis=1), ebitda], axis=1)
    cum = np.concatenate([np.zeros((debt.shape[0], 1)), np.cumsum(history, axis=1)], axis=1)
    trailing = cum[:, window + 1 :] - cum[:, 1:-window]
    limit = np.maximum(0.0, multiple * trailing)
    # where the seed is unknown, only periods whose window holds simulated EBITDA alone
    known = np.isfinite(seed)[:, None] | (np.arange(debt.shape[1]) >= window - 1)[None, :]
    valid = op & known
    np.testing.assert_allclose((debt + headroom)[valid], limit[valid], rtol=1e-9, atol=atol_for(limit, debt))
    assert np.all(debt + headroom >= -atol_for(limit, debt)), "negative credit limit"


def check_insolvency_absorbing(res):
    """Once insolvent, a firm stays insolvent, its flows are zero and its stocks are frozen."""
    solvent = kpi_array(res, "solvent").astype(bool)
    assert np.all(np.diff(solvent.astype(int), axis=1) <= 0), "a firm became solvent again"
    dormant = ~operating(res)  # periods after the one in which the firm became insolvent
    for col in (
        "revenue",
        "operating_cost",
        "ebitda",
        "free_cash_flow",
        "net_financing",
        "interest",
        "programme_cost",
    ):
        assert np.all(kpi_array(res, col)[dormant] == 0.0), f"{col} flows after insolvency"
    for col in ("order", "received", "shipped", "cost"):
        assert np.all(team_array(res, col)[dormant] == 0.0), f"team {col} flows after insolvency"
    for col in ("cash", "debt"):
        values = kpi_array(res, col).astype(float)
        assert np.all((values[:, 1:] == values[:, :-1])[dormant[:, 1:]]), f"{col} moves after insolvency"
    for col in ("inventory", "backlog"):
        values = team_array(res, col)
        assert np.all((values[:, 1:] == values[:, :-1])[dormant[:, 1:]]), f"{col} moves after insolvency"


def check_capacity(res):
    net = res.network
    shipped = team_array(res, "shipped")
    assert np.all(shipped <= net.capacity + 1e-9), "a team shipped more than its capacity"


def check_integer_units(res):
    if not res.config.network.integer_units:
        return
    for col in ("order", "received", "shipped", "inventory", "backlog"):
        values = team_array(res, col)
        assert np.array_equal(values, np.round(values)), f"{col} not whole units"
    demand = kpi_array(res, "demand").astype(float)
    assert np.array_equal(demand, np.round(demand)), "demand not whole units"


INVARIANTS = [
    check_finite,
    check_team_conservation,
    check_order_flow,
    check_transit,
    check_firm_balance,
    check_kpi_aggregates,
    check_cash,
    check_working_capital,
    check_financing,
    check_insolvency_absorbing,
    check_capacity,
    check_integer_units,
]


@pytest.mark.parametrize("check", INVARIANTS, ids=lambda f: f.__name__.removeprefix("check_"))
@pytest.mark.parametrize("case", CASE_IDS)
def test_invariant(case, check):
    check(run(CASES[case]))


# --------------------------------------------------------------------------------------------
# the stress cases really stress what they claim to (so the invariants above are not vacuous)
# --------------------------------------------------------------------------------------------
def test_stress_cases_exercise_their_mechanism():
    net_cap = run(CASES["capacity_binding"]).network
    shipped = team_array(run(CASES["capacity_binding"]), "shipped")
    capped = np.isfinite(net_cap.capacity)
    assert np.any(np.isclose(shipped[:, :, capped], net_cap.capacity[capped])), "capacity never binds"
    assert not kpi_array(run(CASES["insolvent"]), "solvent").all(axis=1).any(), "every firm must fail"
    assert kpi_array(run(CASES["credit_line"]), "debt").max() > 0, "the credit line is never drawn"
    assert (kpi_array(run(CASES["credit_line"]), "interest") > 0).any(), "no interest is ever paid"
    heavy = run(CASES["heavy_disruption"])
    net = heavy.network
    got = team_array(heavy, "received")[:, :, net.top]
    asked = np.stack([shifted(team_array(heavy, "order")[:, :, i], 5, 0) for i in net.top], axis=2)
    assert np.any(got[:, 5:] < asked[:, 5:] - 1e-6), "no disruption ever cut supply"
    shocked = run(CASES["cost_shocks"])
    net = shocked.network
    paid = material_costs(shocked)
    at_base = shocked.config.costs.material * team_array(shocked, "received")[:, :, net.top].sum(axis=2)
    assert np.any(paid > at_base + 1e-6), "no input-cost shock ever raised the material bill"
    assert kpi_array(run(CASES["credit_line_culture"]), "debt").max() > 0, "the credit line is never drawn"
    lean = run(CASES["lean_backlog"])
    sales = lean.network.sales_teams
    assert team_array(lean, "backlog")[:, :, sales].max() > 0, "backlog mode never backlogs"


def test_insolvency_from_zero_price():
    """A firm selling at price 0 runs out of cash and becomes insolvent; in the period it does
    its cash is negative (no credit: the covenant limit on negative EBITDA is zero)."""
    res = run(CASES["insolvent"])
    solvent = kpi_array(res, "solvent").astype(bool)
    cash = kpi_array(res, "cash").astype(float)
    headroom = kpi_array(res, "credit_headroom").astype(float)
    for org in range(res.config.n_orgs):
        first = int(np.argmin(solvent[org]))
        assert not solvent[org, first]
        assert cash[org, first] < 0.0
        assert np.all(headroom[org] <= 0.0)


def test_disabled_finance_never_fails():
    """With finance.enabled=false (the classic scenarios) a firm cannot become insolvent, even
    at price 0 with costs: its cash simply accumulates free cash flow."""
    res = run(("scenario=beer_game", "finance.price=0", "finance.initial_cash=0", "periods=60"))
    assert kpi_array(res, "solvent").all()
    cash = kpi_array(res, "cash").astype(float)
    fcf = kpi_array(res, "free_cash_flow").astype(float)
    np.testing.assert_allclose(cash, res.config.finance.initial_cash + np.cumsum(fcf, axis=1), rtol=1e-12)
    assert cash[0, -1] < 0.0


# --------------------------------------------------------------------------------------------
# determinism and the per-firm random streams
# --------------------------------------------------------------------------------------------
def test_same_seed_same_results():
    cfg = orgsim.compose(["environment=volatile", "n_orgs=2", "periods=40", "seed=11"])
    a, b = orgsim.simulate(cfg), orgsim.simulate(cfg)
    pd.testing.assert_frame_equal(a.kpis, b.kpis, check_exact=True)
    pd.testing.assert_frame_equal(a.teams, b.teams, check_exact=True)


def test_other_seed_other_results():
    cfg = orgsim.compose(["environment=volatile", "n_orgs=2", "periods=40", "seed=11"])
    a, b = orgsim.simulate(cfg), orgsim.simulate(cfg.replace(seed=12))
    assert not np.array_equal(a.kpis.demand, b.kpis.demand)
    assert not np.array_equal(a.teams.order, b.teams.order)


def test_firms_in_a_population_differ():
    res = run(CASES["multinational-volatile"])
    demand = kpi_array(res, "demand")
    assert not np.array_equal(demand[0], demand[1]), "two firms drew the same demand"


def test_seed_irrelevant_without_noise():
    """In the native environment, without the culture layer and execution noise, the
    multinational has no random mechanism: seeds do not matter."""
    cfg = orgsim.compose([*FOUNDATION, "environment=native", "n_orgs=1", "periods=40"])
    a, b = orgsim.simulate(cfg), orgsim.simulate(cfg.replace(seed=99))
    pd.testing.assert_frame_equal(a.kpis, b.kpis, check_exact=True)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_firm_path_independent_of_population(scenario):
    """Firm 0 follows the same path alone (n_orgs=1) and in a population of three."""
    base = [f"scenario={scenario}", "environment=volatile", "periods=40", "seed=5"]
    alone = orgsim.simulate(orgsim.compose([*base, "n_orgs=1"]))
    crowd = orgsim.simulate(orgsim.compose([*base, "n_orgs=3"]))
    for attr in ("kpis", "teams"):
        a = getattr(alone, attr)
        c = getattr(crowd, attr)
        c = c[c.org == 0].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, c, check_exact=True, check_categorical=False)


def test_firm_built_alone_matches_population_member():
    """``Firm(cfg, index=2)`` stepped on its own reproduces firm 2 of a population run."""
    cfg = orgsim.compose(["environment=volatile", "n_orgs=3", "periods=30", "seed=8"])
    res = orgsim.simulate(cfg)
    firm = Firm(cfg, index=2)
    for _ in range(cfg.periods):
        firm.step()
    agents = firm.datacollector.get_agent_vars_dataframe()
    model = firm.datacollector.get_model_vars_dataframe()
    n_teams = len(firm.teams)
    for col in ("inventory", "backlog", "order", "received", "shipped", "cost"):
        np.testing.assert_array_equal(
            agents[col].to_numpy().reshape(cfg.periods, n_teams), team_array(res, col)[2], err_msg=col
        )
    for col, kpi in (("cash", "cash"), ("demand_total", "demand"), ("ebitda", "ebitda")):
        np.testing.assert_array_equal(model[col].to_numpy(dtype=float), kpi_array(res, kpi)[2].astype(float))


def test_simulate_seed_argument_overrides_config():
    cfg = orgsim.compose(["environment=volatile", "n_orgs=1", "periods=20", "seed=0"])
    by_arg = orgsim.simulate(cfg, seed=3)
    by_cfg = orgsim.simulate(cfg.replace(seed=3))
    assert by_arg.config.seed == 3
    pd.testing.assert_frame_equal(by_arg.kpis, by_cfg.kpis, check_exact=True)
    by_sequence = orgsim.simulate(cfg, seed=np.random.SeedSequence(3))
    pd.testing.assert_frame_equal(by_sequence.kpis, by_cfg.kpis, check_exact=True)


# --------------------------------------------------------------------------------------------
# mechanisms
# --------------------------------------------------------------------------------------------
def test_lost_sales_versus_backlog():
    """Same demand path; with lost sales stage-0 teams never backlog and sell at most demand."""
    backlog, lost = run(CASES["lean_backlog"]), run(CASES["lost_sales"])
    sales = lost.network.sales_teams
    np.testing.assert_array_equal(kpi_array(backlog, "demand"), kpi_array(lost, "demand"))
    assert np.all(team_array(lost, "backlog")[:, :, sales] == 0.0)
    assert team_array(backlog, "backlog")[:, :, sales].max() > 0.0
    assert np.all(kpi_array(lost, "backlog_units") == team_array(lost, "backlog").sum(axis=2))


def test_shared_information_changes_upstream_orders_only():
    """Stage 0 sees end-customer demand either way, so its orders are identical; upstream teams
    forecast from shared customer demand instead of incoming orders, so theirs differ."""
    base = (*FOUNDATION, "environment=stable", "n_orgs=2", "periods=40")
    local, shared = run(base), run((*base, "information=shared"))
    assert kpi_array(local, "solvent").all() and kpi_array(shared, "solvent").all()
    net = local.network
    lo, sh = team_array(local, "order"), team_array(shared, "order")
    np.testing.assert_array_equal(lo[:, :, net.stage == 0], sh[:, :, net.stage == 0])
    for k in range(1, int(net.stage.max()) + 1):
        assert not np.allclose(lo[:, :, net.stage == k], sh[:, :, net.stage == k]), f"stage {k}"


@pytest.mark.parametrize("beta", [0.0, 0.34, 1.0])
@pytest.mark.parametrize("cover", [0, 2])
def test_steady_state_is_an_equilibrium(beta, cover):
    """Without noise, with constant demand and S' left to its default (Sterman's S* + β·SL*),
    every team orders its throughput and holds its initial inventory for ever, whatever the
    supply-line weight β and the cover."""
    res = run(
        (
            *FOUNDATION,
            "environment=native",
            "demand.seasonality=0",
            f"policy.beta={beta}",
            f"policy.cover={cover}",
            "n_orgs=1",
            "periods=60",
        )
    )
    net = res.network
    np.testing.assert_allclose(
        team_array(res, "order")[0], np.broadcast_to(net.throughput, (60, net.n_teams))
    )
    np.testing.assert_allclose(
        team_array(res, "inventory")[0], np.broadcast_to(net.initial_inventory, (60, net.n_teams))
    )
    assert np.all(team_array(res, "backlog") == 0.0)


def test_beer_game_orders_are_whole_cases_with_fractional_parameters(beer_cfg):
    """Sterman's mean parameters (θ = 0.36, α_S = 0.26, β = 0.34) give fractional indicated
    orders; orders are rounded half away from zero to whole cases."""
    res = orgsim.simulate(beer_cfg)
    order = team_array(res, "order")
    assert np.array_equal(order, np.round(order))
    assert len(np.unique(order)) > 3, "orders never vary: the test would be vacuous"


def test_results_keep_team_records_optional(small_cfg):
    res = orgsim.simulate(small_cfg.replace(periods=5), teams=False)
    assert list(res.teams.columns) == list(orgsim.TEAM_COLUMNS)
    assert len(res.teams) == 0
    assert len(res.kpis) == small_cfg.n_orgs * 5


# --------------------------------------------------------------------------------------------
# property test: the invariants hold for random valid configurations
# --------------------------------------------------------------------------------------------
@given(cfg=random_configs())
def test_invariants_hold_for_random_valid_configs(cfg):
    res = orgsim.simulate(cfg)
    for check in INVARIANTS:
        check(res)
