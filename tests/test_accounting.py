"""Accounting identities of the engines' output, on both engines (docs/model.md §7.5, §7.11,
§7.12, §7.18, §10.1).

``test_engine_mesa.py`` checks the cash identity ``cash = cash_start + FCF + net_financing``,
which holds whatever free cash flow contains, and checks free cash flow itself only when every
cost factor is 1 (no culture layer, no BPO). The tests here pin down what FCF is with the
management programmes and the culture layer on, that the outside source delivers what it owes
after a supply disruption, that debt rolls forward by draws less repayments and that the
financing rules (draw, sweep, covenant repayment, breach counter, insolvency) are the
documented ones, including insolvency through a covenant breach longer than the grace periods.
They also run the invariants and stress cases of ``test_engine_mesa.py`` on the numba engine.
Identities between floats hold to 1e-9 of the largest magnitude involved (``atol_for``).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import atol_for, kpi_array, random_configs, team_array
from helpers import run_teams as simulate
from hypothesis import given
from test_engine_mesa import CASE_IDS, CASES, FOUNDATION, INVARIANTS, operating, shifted

import orgsim
from orgsim import _rng
from orgsim.environment import episode_update

ENGINES = ("mesa", "numba")
PROGRAMME_STRATEGIES = ("bpo", "bpm", "bpo_bpm", "bso")


def floats(res, column: str) -> np.ndarray:
    return kpi_array(res, column).astype(float)


# --------------------------------------------------------------------------------------------
# free cash flow with the management programmes and the culture layer on
# --------------------------------------------------------------------------------------------
def programme_schedule(res) -> np.ndarray:
    """[org, period] programme cost by the rule of §7.18: ``alignment_cost`` every period with
    a culture programme, N·``bpm_cost`` every period with BPM, ``bpo_cost`` in the periods that
    are multiples of ``bpo_every``; 0 once the firm is dormant (§7.12)."""
    cfg, net = res.config, res.network
    mg = cfg.management
    t = np.arange(1, cfg.periods + 1)
    cost = np.zeros(cfg.periods)
    if mg.alignment_rate > 0.0:
        cost += mg.alignment_cost
    if mg.bpm_rate > 0.0:
        cost += mg.bpm_cost * net.n_teams
    if mg.bpo_every > 0:
        cost += np.where(t % mg.bpo_every == 0, mg.bpo_cost, 0.0)
    return np.where(operating(res), cost[None, :], 0.0)


def check_programmes_in_operating_cost(res):
    """§10.1, §7.11: operating cost = Σ team costs + programme cost; §7.18: the programme
    cost is the documented schedule and is positive (the case is not vacuous)."""
    cost = team_array(res, "cost").sum(axis=2)
    opcost, programmes = floats(res, "operating_cost"), floats(res, "programme_cost")
    expected = programme_schedule(res)
    assert expected.max() > 0.0, "no programme cost: the case would not test it"
    np.testing.assert_allclose(programmes, expected, rtol=0, atol=atol_for(programmes, expected))
    np.testing.assert_allclose(opcost - programmes, cost, rtol=0, atol=atol_for(opcost, cost))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("strategy", PROGRAMME_STRATEGIES)
def test_free_cash_flow_is_ebitda_without_payment_lags(strategy, engine):
    """§7.11: FCF_t = R_{t-ℓR} − (C_t − M_t) − M_{t-ℓP}; with ℓR = ℓP = 0 the material terms
    cancel and FCF = R_t − C_t = EBITDA_t, where C_t includes the programme costs (all operating
    costs but material are paid in the period). Culture layer on (the multinational default),
    so cost factors are not 1."""
    res = simulate(
        (
            f"strategy={strategy}",
            "environment=volatile",
            "finance.receivable_lag=0",
            "finance.payable_lag=0",
            "n_orgs=2",
            "periods=60",
        ),
        engine,
    )
    cfg = res.config
    assert cfg.culture.enabled and cfg.culture.cost_sensitivity > 0
    check_programmes_in_operating_cost(res)
    op = operating(res)
    revenue, opcost, ebitda, fcf = (
        floats(res, c) for c in ("revenue", "operating_cost", "ebitda", "free_cash_flow")
    )
    tol = atol_for(revenue, opcost, fcf)
    np.testing.assert_allclose(ebitda, revenue - opcost, rtol=0, atol=tol)
    np.testing.assert_allclose(fcf[op], (revenue - opcost)[op], rtol=0, atol=tol)
    assert np.all(fcf[~op] == 0.0)


def top_material(res) -> np.ndarray:
    """[org, period] material cost M_t of the (single) top team, read off its cost when the top
    stage has no processing and no fixed cost: c = h·I⁺ + b·B + M (§7.6; holding and backlog
    costs are not scaled by the cost factor)."""
    net = res.network
    (top,) = net.top
    assert net.unit_cost[top] == 0.0 and net.fixed_cost[top] == 0.0
    inv, backlog, cost = (team_array(res, c)[:, :, top] for c in ("inventory", "backlog", "cost"))
    return cost - net.holding[top] * np.maximum(inv, 0.0) - net.backlog_cost[top] * backlog


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("strategy", PROGRAMME_STRATEGIES)
def test_free_cash_flow_with_payment_lags(strategy, engine):
    """§7.11: FCF_t = EBITDA_t − ΔAR_t + ΔAP_t with AR_t = Σ_{j<ℓR} R_{t−j} and
    AP_t = Σ_{j<ℓP} M_{t−j}, R_τ = R^ss and M_τ = M^ss for τ ≤ 0 (§5). R^ss = P·Σ x̄ (sales)
    follows from the config; M^ss depends on the top team's knowledge after the burn-in, so it
    is solved from the first ℓP periods, which must all pay the same M^ss, with
    P^M·x̄ ≤ M^ss ≤ P^M·x̄·(1 + κ_c) (the cost factor at knowledge between 1 and 0, §7.15)."""
    lag_r, lag_p = 3, 2
    res = simulate(
        (
            f"strategy={strategy}",
            "environment=volatile",
            f"finance.receivable_lag={lag_r}",
            f"finance.payable_lag={lag_p}",
            "costs.fixed=[50,50,50,0]",  # the top team's material cost can be read off its cost
            "n_orgs=2",
            "periods=60",
        ),
        engine,
    )
    cfg, net = res.config, res.network
    check_programmes_in_operating_cost(res)
    op = operating(res)
    revenue, opcost, ebitda, fcf = (
        floats(res, c) for c in ("revenue", "operating_cost", "ebitda", "free_cash_flow")
    )
    material = top_material(res)
    tol = atol_for(revenue, opcost, fcf)
    revenue_ss = cfg.finance.price * net.throughput[net.sales_teams].sum()
    collections = shifted(revenue, lag_r, revenue_ss)
    payments = collections - (opcost - material) - fcf  # what FCF says was paid to suppliers
    material_ss = payments[:, 0]
    np.testing.assert_allclose(payments[:, :lag_p], np.repeat(material_ss[:, None], lag_p, axis=1), atol=tol)
    base = cfg.costs.material * net.throughput[net.top].sum()
    assert np.all(material_ss >= base - tol)
    assert np.all(material_ss <= base * (1.0 + cfg.culture.cost_sensitivity) + tol)
    for org in range(cfg.n_orgs):
        # AR and AP per §7.11, from the revenue and material series and the steady state
        r_hist = np.concatenate([np.full(lag_r, revenue_ss), revenue[org]])
        m_hist = np.concatenate([np.full(lag_p, material_ss[org]), material[org]])
        ar = np.array([r_hist[t : t + lag_r].sum() for t in range(cfg.periods + 1)])
        ap = np.array([m_hist[t : t + lag_p].sum() for t in range(cfg.periods + 1)])
        expected = ebitda[org] - np.diff(ar) + np.diff(ap)
        np.testing.assert_allclose(fcf[org, op[org]], expected[op[org]], rtol=0, atol=tol)
        # cumulative form: Σ FCF = Σ EBITDA − (AR_t − AR_0) + (AP_t − AP_0)
        last = int(op[org].sum())  # the operating periods are 1 .. last
        cum = np.cumsum(fcf[org, :last])
        np.testing.assert_allclose(
            cum,
            np.cumsum(ebitda[org, :last]) - (ar[1 : last + 1] - ar[0]) + (ap[1 : last + 1] - ap[0]),
            atol=tol,
        )


# --------------------------------------------------------------------------------------------
# the outside source delivers what it owes after a supply disruption (§7.5, §7.3)
# --------------------------------------------------------------------------------------------
def disrupted_periods(cfg) -> np.ndarray:
    """[org, period] True while the outside source is disrupted: the episode process of §7.3 on
    stream SUPPLY_DISRUPTION with each firm's key (§7.13)."""
    s = cfg.supply
    flags = np.zeros((cfg.n_orgs, cfg.periods), dtype=bool)
    for org, key in enumerate(_rng.firm_keys(cfg.seed, np.arange(cfg.n_orgs))):
        left = 0
        for t in range(1, cfg.periods + 1):
            active, left = episode_update(
                left, key, _rng.SUPPLY_DISRUPTION, t, s.disruption_prob, s.disruption_duration
            )
            flags[org, t - 1] = active
    return flags


@pytest.mark.parametrize("engine", ENGINES)
def test_outside_source_delivers_its_shortfall(engine):
    """§7.5: each top team requests Q_t = O_{t−od} + W_{t−1} from the outside source (the
    initial order slips hold x̄); the source ships y_t = Q_t, or at most (1 − severity)·x̄ while
    disrupted; W_t = Q_t − y_t is carried; y_t arrives lt periods later (§7.4, the initial
    pipeline holds x̄). Hence Σ_{s≤t} y_s + W_t = Σ_{s≤t} O_{s−od}: what was ordered is
    received, in transit or still owed — and owed is 0 in every period without a disruption."""
    res = simulate(
        (
            "environment=disrupted",
            "supply.disruption_prob=0.1",
            "n_orgs=3",
            "periods=80",
        ),
        engine,
    )
    cfg, net = res.config, res.network
    severity = cfg.supply.disruption_severity
    assert severity > 0.0
    disrupted = disrupted_periods(cfg)
    op = operating(res)
    order, received = team_array(res, "order"), team_array(res, "received")
    delivered_late = False
    for i in net.top:
        od, lt, xbar = int(net.order_delay[i]), int(net.lead_time[i]), float(net.throughput[i])
        asked = shifted(order[:, :, i], od, xbar)  # order slips the source reads in period t
        shipped = received[:, lt:, i]  # y_t for t = 1 .. T − lt
        n = shipped.shape[1]
        # periods whose shipment arrived while the firm was still operating
        valid = op[:, :n] & op[:, lt:]
        owed = np.cumsum(asked[:, :n], axis=1) - np.cumsum(shipped, axis=1)
        tol = atol_for(np.cumsum(asked, axis=1))
        # received + in transit + owed = ordered, every period: the owed part is never negative
        assert np.all(owed[valid] >= -tol), "the source shipped more than it was asked for"
        quiet = valid & ~disrupted[:, :n]
        np.testing.assert_allclose(owed[quiet], 0.0, atol=tol, err_msg="a shortfall was not delivered")
        # while disrupted the source ships min(Q, (1 − severity)·x̄)
        previous = np.concatenate([np.zeros((cfg.n_orgs, 1)), owed[:, :-1]], axis=1)
        request = asked[:, :n] + previous
        cap = (1.0 - severity) * xbar
        hit = valid & disrupted[:, :n]
        np.testing.assert_allclose(shipped[hit], np.minimum(request, cap)[hit], atol=tol)
        # non-vacuous: a disruption left something owed that was delivered later
        assert (owed[hit] > tol).any(), "no disruption cut supply"
        delivered_late |= bool((shipped > asked[:, :n] + tol)[quiet].any())
    assert delivered_late, "no shortfall was ever made good"


# --------------------------------------------------------------------------------------------
# financing: debt roll-forward and the documented rules (§7.11, §7.12)
# --------------------------------------------------------------------------------------------
def replay_financing(res) -> dict[str, np.ndarray]:
    """Steps 1–7 of §7.11, applied to the engine's own FCF, starting cash and covenant limit
    (Λ_t = debt_t + credit headroom_t): what cash, debt, interest, net financing, breach counter
    and solvency must be. Dormant periods keep everything frozen (§7.12)."""
    f = res.config.finance
    fcf, debt_out, headroom = (floats(res, c) for c in ("free_cash_flow", "debt", "credit_headroom"))
    shape = fcf.shape
    out = {k: np.zeros(shape) for k in ("cash", "debt", "interest", "net_financing", "breach")}
    out["solvent"] = np.ones(shape, dtype=bool)
    for org in range(shape[0]):
        cash, debt, breach, solvent = f.initial_cash, 0.0, 0, True
        for t in range(shape[1]):
            interest = net = 0.0
            if solvent and not f.enabled:  # no financing: cash takes FCF, never insolvent
                cash += fcf[org, t]
            elif solvent:
                limit = debt_out[org, t] + headroom[org, t]
                interest = f.interest_rate * debt
                pre = cash + fcf[org, t] - interest
                draw = repay = 0.0
                if pre < f.min_cash:
                    if limit > debt:
                        draw = min(f.min_cash - pre, limit - debt)
                elif debt > 0.0:
                    repay = min(debt, pre - f.min_cash)
                new_debt = debt + draw - repay
                free = pre + draw - repay
                if new_debt > limit and free > 0.0:
                    extra = min(new_debt - limit, free)
                    repay += extra
                    new_debt -= extra
                cash, debt = pre + draw - repay, new_debt
                net = draw - repay - interest
                breach = breach + 1 if debt > limit + 1e-9 else 0
                solvent = not (cash < 0.0 or breach > f.grace_periods)
            for key, value in (
                ("cash", cash),
                ("debt", debt),
                ("interest", interest),
                ("net_financing", net),
                ("breach", breach),
                ("solvent", solvent),
            ):
                out[key][org, t] = value
    return out


def check_financing_rules(res):
    """The engine's cash, debt, interest, net financing and solvency are those of §7.11's
    steps 1–7 and §7.12's dormancy; debt rolls forward as Debt_t = Debt_{t−1} + N_t + i_t
    (Draw − Rep = N + i, since N = Draw − Rep − i)."""
    f = res.config.finance
    cash, debt, interest, net, start = (
        floats(res, c) for c in ("cash", "debt", "interest", "net_financing", "cash_start")
    )
    solvent = kpi_array(res, "solvent").astype(bool)
    tol = atol_for(cash, debt, start, floats(res, "free_cash_flow"))
    previous = shifted(debt, 1, 0.0)
    np.testing.assert_allclose(debt - previous, net + interest, rtol=0, atol=tol, err_msg="debt roll-forward")
    np.testing.assert_allclose(interest, f.interest_rate * previous * operating(res), rtol=1e-12, atol=tol)
    replay = replay_financing(res)
    for name, values in (("cash", cash), ("debt", debt), ("interest", interest), ("net_financing", net)):
        np.testing.assert_allclose(values, replay[name], rtol=0, atol=tol, err_msg=name)
    # insolvency from the outputs alone: cash < 0, or headroom < 0 (debt above the limit) for
    # more than grace_periods consecutive periods
    above = floats(res, "credit_headroom") < -1e-9
    run_length = np.zeros(above.shape, dtype=int)
    for t in range(above.shape[1]):
        run_length[:, t] = np.where(above[:, t], (run_length[:, t - 1] if t else 0) + 1, 0)
    failed = ((cash < 0.0) | (run_length > f.grace_periods)) & f.enabled
    expected = ~np.maximum.accumulate(failed, axis=1)
    np.testing.assert_array_equal(solvent, expected)
    np.testing.assert_array_equal(solvent, replay["solvent"])
    return replay


CREDIT_LINE = ("finance.initial_cash=0", "environment=volatile", "finance.covenant_window=13")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("strategy", ["none", "bso"])
def test_debt_rolls_forward_with_the_credit_line_in_use(strategy, engine):
    """§7.11 with the credit line drawn and repaid (no initial cash; culture on)."""
    res = simulate((*CREDIT_LINE, f"strategy={strategy}", "n_orgs=3", "periods=80"), engine)
    check_financing_rules(res)
    change = np.diff(floats(res, "debt"), axis=1)
    assert (change > 0).any(), "the credit line is never drawn"
    assert (change < 0).any(), "debt is never repaid"
    assert (floats(res, "interest") > 0).any(), "no interest is ever paid"


# deterministic (no noise, no culture): seasonal demand swings with 8-period customer terms
# and a 4-period covenant window; the firm borrows, then the limit falls below its debt while
# free cash flow still pays the interest, so cash stays at 0 and the breach outlasts the grace
BREACH = (
    *FOUNDATION,
    "environment=native",
    "demand.seasonality=0.9",
    "demand.season_period=13",
    "finance.covenant_window=4",
    "finance.covenant_multiple=3",
    "finance.min_cash=5000",
    "finance.initial_cash=0",
    "finance.grace_periods=2",
    "finance.receivable_lag=8",
    "n_orgs=1",
    "periods=70",
)


@pytest.mark.parametrize("engine", ENGINES)
def test_insolvency_from_a_covenant_breach(engine):
    """§7.11 step 7: insolvent in the first period with b_t > G (debt above the limit for
    G + 1 consecutive periods), here with cash never negative; §7.12: the period of insolvency
    is simulated, every later one is dormant (flows 0, cash, debt, headroom and stocks frozen,
    demand still reported, fill rate 0)."""
    res = simulate(BREACH, engine)
    grace = res.config.finance.grace_periods
    replay = check_financing_rules(res)
    solvent = kpi_array(res, "solvent").astype(bool)[0]
    cash, headroom = floats(res, "cash")[0], floats(res, "credit_headroom")[0]
    assert not solvent.all(), "the firm never fails: the case would not test the covenant"
    fail = int(np.argmin(solvent))  # 0-based index of the period of insolvency
    assert solvent[:fail].all() and not solvent[fail:].any()
    assert np.all(cash[: fail + 1] >= 0.0), "cash went negative: not a covenant insolvency"
    assert replay["breach"][0, fail] == grace + 1
    assert np.all(headroom[fail - grace : fail + 1] < 0.0), "not G + 1 periods in breach"
    assert headroom[fail - grace - 1] >= -1e-9, "the breach began earlier"
    assert 0 < fail < res.config.periods - 5, "want dormant periods after the failure"
    # the period of insolvency is simulated
    assert floats(res, "revenue")[0, fail] > 0.0
    # dormancy afterwards
    after = slice(fail + 1, None)
    for col in ("revenue", "operating_cost", "ebitda", "free_cash_flow", "net_financing", "interest"):
        assert np.all(floats(res, col)[0, after] == 0.0), col
    for col in ("cash", "debt", "credit_headroom", "inventory_units", "backlog_units"):
        values = floats(res, col)[0, fail:]
        assert np.all(values == values[0]), f"{col} moves while dormant"
    demand = floats(res, "demand")[0, after]
    assert np.all(demand > 0.0)
    assert np.all(floats(res, "fill_rate")[0, after] == 0.0)
    for col in ("order", "received", "shipped", "cost"):
        assert np.all(team_array(res, col)[0, after] == 0.0), col


def test_covenant_breach_same_on_both_engines():
    a, b = simulate(BREACH, "mesa"), simulate(BREACH, "numba")
    for name in ("cash", "debt", "credit_headroom", "free_cash_flow", "solvent"):
        np.testing.assert_allclose(floats(a, name), floats(b, name), rtol=1e-9, atol=1e-9, err_msg=name)


# --------------------------------------------------------------------------------------------
# the invariants and stress cases of test_engine_mesa.py, on the numba engine
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("check", INVARIANTS, ids=lambda f: f.__name__.removeprefix("check_"))
@pytest.mark.parametrize("case", CASE_IDS)
def test_invariant_numba(case, check):
    check(simulate(CASES[case], "numba"))


@pytest.mark.parametrize("case", CASE_IDS)
def test_financing_rules_hold_in_every_case(case):
    """§7.11 steps 1–7 and the debt roll-forward in every case of test_engine_mesa.py, numba."""
    check_financing_rules(simulate(CASES[case], "numba"))


@given(cfg=random_configs())
def test_invariants_hold_for_random_valid_configs_numba(cfg):
    res = orgsim.simulate(cfg, engine="numba", teams=True)
    for check in (*INVARIANTS, check_financing_rules):
        check(res)
