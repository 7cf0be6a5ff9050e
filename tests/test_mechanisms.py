"""The mechanisms that set the culture-aligned strategy (BSO) apart from the efficiency-only ones
(BPO, BPM), checked on engine output against the formulas of docs/model.md.

Engine-equivalence tests cannot catch a mistake both engines share, so each test here derives
its expected values from the documented equations, computed by hand in the test (not through the
code path under test), and runs both engines wherever the quantity is observable in
``orgsim.simulate`` output; quantities visible only on the Mesa objects (a team's score, the
``p1`` of a learning step) are read there. Populations are tiny (≤ 2 firms, ≤ 60 periods).

Mechanisms and the checks that pin them:

- accountability weight moves with alignment (§7.16, §7.18 step 1): exact score identity on the
  Mesa teams at partial alignment; full alignment (rate 1) equals the aligned weight (both engines);
- socialisation boost (§7.14, §7.18 step 1): the ``p1`` of every Mesa learning step; full
  alignment equals the boosted ``p1`` set directly (both engines);
- BPM budget pooled on the constraint (§7.18 step 4) and BPO aimed at the constraint or the worst
  local score (§7.18 step 5): the ``mean_maturity`` path and every team's cost, with the targets
  recomputed from the teams' outputs (both engines);
- execution noise damped by maturity (§7.10, §7.19): equivalent noise settings, and the relative
  order deviation in period 1 proportional to ``1 − maturity`` (both engines);
- the unit margin of the firm score (§7.16): ``build_network(cfg).unit_margin`` and the recorded
  firm scores of teams with a backlog.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import kpi_array, team_array
from helpers import run_teams as simulate

import orgsim
from orgsim.engine_mesa import Firm
from orgsim.network import build_network

ENGINES = ["mesa", "numba"]

# The multinational firm (docs/model.md §9.1) without the culture layer, execution noise or
# stock-bias adaptation: management then changes no flow, only costs and management state, so
# the targets of the programmes can be recomputed from the teams' recorded outputs.
PLAIN = [
    "n_orgs=2",
    "periods=60",
    "culture.enabled=false",
    "management.execution_noise=0",
    "management.adapt_every=0",
]

# --- the multinational firm by hand, team by team in network order (§7.1, §9.1) --------------
# sales_0..2, distribution_0..2, production_0..2, sourcing
HOLDING = np.full(10, 0.05)
BACKLOG_RATE = np.full(10, 0.5)
UNIT = np.array([0.5] * 3 + [0.5] * 3 + [2.0] * 3 + [0.0])
FIXED = np.full(10, 50.0)
INVENTORY0 = np.array([200.0] * 3 + [300.0] * 3 + [200.0] * 3 + [600.0])
THROUGHPUT = np.array([100.0] * 9 + [300.0])  # demand 100 per region; sourcing serves all three
TOP = np.array([False] * 9 + [True])
PRICE, MATERIAL = 10.0, 4.0
CAPACITY = 130.0  # production
# §7.16: UM = P − P^M − Σ_k u_k, the processing costs of one path (one team per stage)
UNIT_MARGIN = PRICE - MATERIAL - (0.5 + 0.5 + 2.0 + 0.0)
# §7.16: c^ss_i = h_i I_{i,0} + u_i x̄_i + f_i + 1[top] P^M x̄_i (sales 110, DCs 115, plants 260,
# sourcing 1280)
STEADY_COST = HOLDING * INVENTORY0 + UNIT * THROUGHPUT + FIXED + np.where(TOP, MATERIAL * THROUGHPUT, 0.0)
N_TEAMS = 10
WINDOW = 13  # management.score_window
TIE = 1e-9  # window means closer than this are ties (running sums differ from np.mean by rounding)


def test_hand_model_matches_the_documented_steady_costs():
    np.testing.assert_array_equal(STEADY_COST, [110.0] * 3 + [115.0] * 3 + [260.0] * 3 + [1280.0])
    assert UNIT_MARGIN == 3.0


def outputs(res: orgsim.SimulationResult) -> dict[str, np.ndarray]:
    """Every team column as ``[org, period, team]`` and every numeric KPI as ``[org, period]``."""
    out = {
        f"team.{c}": team_array(res, c)
        for c in ("inventory", "backlog", "order", "received", "shipped", "cost", "knowledge")
    }
    for c in res.kpis.columns:
        if c not in ("org", "period", "strategy", "family"):
            out[f"kpi.{c}"] = kpi_array(res, c).astype(float)
    return out


def assert_same_outputs(a: orgsim.SimulationResult, b: orgsim.SimulationResult, skip=()) -> None:
    oa, ob = outputs(a), outputs(b)
    assert oa.keys() == ob.keys()
    for name in oa:
        if name not in skip:
            np.testing.assert_array_equal(oa[name], ob[name], err_msg=name)


def clip02(x):
    return np.clip(x, 0.0, 2.0)


def window_means(scores: np.ndarray) -> np.ndarray:
    """Mean over the last min(t, W) periods of ``scores[org, period, team]`` (§7.16)."""
    out = np.empty_like(scores)
    for t in range(scores.shape[1]):
        out[:, t] = scores[:, max(0, t + 1 - WINDOW) : t + 1].mean(axis=1)
    return out


def firm_scores(res) -> np.ndarray:
    """F_{i,t} = clip(c^ss_i / (c_{i,t} + UM⁺ B_{i,t}), 0, 2), lower cost is better (§7.16)."""
    cost, backlog = team_array(res, "cost"), team_array(res, "backlog")
    return clip02(STEADY_COST / (cost + max(UNIT_MARGIN, 0.0) * backlog))


def local_scores(res) -> np.ndarray:
    """L_{i,t} = N(V_{i,t}, V*_i) with the role's metric (§7.16 table), from the team outputs."""
    inv, backlog = team_array(res, "inventory"), team_array(res, "backlog")
    shipped, cost = team_array(res, "shipped"), team_array(res, "cost")
    out = np.empty_like(cost)
    # sales: fill rate, higher is better, target 1; requested = shipped + backlog left (§7.5)
    requested = shipped[..., :3] + backlog[..., :3]
    fill = np.where(requested > 0, shipped[..., :3] / np.where(requested > 0, requested, 1.0), 1.0)
    out[..., :3] = clip02(fill / 1.0)
    # distribution: holding and backlog cost, lower is better, target h I_0
    hb = HOLDING[3:6] * np.maximum(inv[..., 3:6], 0.0) + BACKLOG_RATE[3:6] * backlog[..., 3:6]
    target = HOLDING[3:6] * INVENTORY0[3:6]
    out[..., 3:6] = np.where(hb > 1e-12, clip02(target / np.where(hb > 1e-12, hb, 1.0)), 2.0)
    # production: utilisation y / capacity, higher is better, target x̄ / capacity
    out[..., 6:9] = clip02((shipped[..., 6:9] / CAPACITY) / (THROUGHPUT[6:9] / CAPACITY))
    # sourcing: unit cost c / y, lower is better, target c^ss / x̄
    unit_cost = np.where(shipped[..., 9] > 0, cost[..., 9] / shipped[..., 9], cost[..., 9])
    out[..., 9] = clip02((STEADY_COST[9] / THROUGHPUT[9]) / unit_cost)
    return out


def worst(means: np.ndarray) -> int:
    """The team with the lowest window mean, the first on ties (§7.18)."""
    return int(np.flatnonzero(means <= means.min() + TIE)[0])


# --------------------------------------------------------------------------------------------
# the culture programme moves the accountability weight (§7.16, §7.18 step 1)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("w", "w_align"), [(0.2, 0.8), (0.9, 0.1)])
def test_alignment_moves_the_accountability_weight_toward_alignment_weight(w, w_align):
    """1 firm × 40 periods, culture programme at rate 0.05. §7.18: a_t = 1 − (1 − ρ_a)^t;
    §7.16: Σ_{i,t} = (1 − w_t) L̄_{i,t} + w_t F̄_{i,t} with w_t = w + (w_align − w) a_t. Every
    team's score must follow the moving weight (not the rule's own w)."""
    rate, periods = 0.05, 40
    cfg = orgsim.compose(
        [
            *PLAIN,
            "n_orgs=1",
            f"periods={periods}",
            f"management.accountability_weight={w}",
            f"management.alignment_weight={w_align}",
            f"management.alignment_rate={rate}",
            "management.alignment_cost=40",
        ]
    )
    firm = Firm(cfg, 0)
    gap = 0.0
    for t in range(1, periods + 1):
        firm.step()
        a_t = 1.0 - (1.0 - rate) ** t
        assert firm.alignment == pytest.approx(a_t, rel=1e-12), t
        w_t = w + (w_align - w) * a_t
        for team in firm.teams:
            expected = (1.0 - w_t) * team.mean_local + w_t * team.mean_firm
            assert team.score == pytest.approx(expected, rel=0, abs=1e-12), (t, team.name)
            gap = max(gap, abs(team.mean_local - team.mean_firm))
        assert firm.programme_cost == 40.0
    assert gap > 0.05, "local and firm parts must differ for the weight to show"


@pytest.mark.parametrize("engine", ENGINES)
def test_full_alignment_scores_teams_with_the_alignment_weight(engine):
    """2 firms × 60 periods with quarterly stock-bias adaptation (scores drive decisions).
    With alignment_rate = 1, a_t = 1 from period 1 (§7.18), so w_t = w_align (§7.16): the run
    must equal one with accountability_weight = w_align and no programme, and differ from one
    that keeps w = 0 (which is what ignoring the alignment would give)."""
    adapt = [*PLAIN, "management.adapt_every=13"]
    aligned = simulate(
        [
            *adapt,
            "management.accountability_weight=0",
            "management.alignment_weight=0.75",
            "management.alignment_rate=1",
            "management.alignment_cost=0",
        ],
        engine,
    )
    weighted = simulate([*adapt, "management.accountability_weight=0.75"], engine)
    local = simulate([*adapt, "management.accountability_weight=0"], engine)
    assert not np.array_equal(team_array(weighted, "order"), team_array(local, "order"))
    assert_same_outputs(aligned, weighted)


# --------------------------------------------------------------------------------------------
# the culture programme raises socialisation (§7.14, §7.18 step 1)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("p1", "boost"), [(0.1, 0.2), (0.9, 0.5)])
def test_socialisation_rate_follows_alignment(monkeypatch, p1, boost):
    """1 firm, 3 burn-in steps then 20 periods, culture programme at rate 0.05. §7.14: burn-in
    steps use p1; the step of period t uses p_{1,t} = min(1, p1 + b_soc a_t) with
    a_t = 1 − (1 − ρ_a)^t (§7.18). Read the p1 each Mesa learning step receives."""
    rate, burn_in, periods = 0.05, 3, 20
    seen: list[tuple[int, float]] = []
    original = Firm.culture_step

    def recording(self, s, p1_step, by_score):
        seen.append((s, p1_step))
        return original(self, s, p1_step, by_score)

    monkeypatch.setattr(Firm, "culture_step", recording)
    cfg = orgsim.compose(
        [
            "n_orgs=1",
            f"periods={periods}",
            f"culture.burn_in={burn_in}",
            f"culture.p1={p1}",
            f"management.socialisation_boost={boost}",
            f"management.alignment_rate={rate}",
        ]
    )
    firm = Firm(cfg, 0)
    for _ in range(periods):
        firm.step()
    expected = [(s, p1) for s in range(1, burn_in + 1)] + [
        (burn_in + t, min(1.0, p1 + boost * (1.0 - (1.0 - rate) ** t))) for t in range(1, periods + 1)
    ]
    assert [s for s, _ in seen] == [s for s, _ in expected]
    np.testing.assert_allclose([v for _, v in seen], [v for _, v in expected], rtol=1e-12)
    assert max(v for _, v in seen) >= min(1.0, p1 + 0.5 * boost)  # the boost is visible


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("p1", "boost", "boosted"), [(0.25, 0.25, 0.5), (0.75, 0.5, 1.0)])
def test_full_alignment_socialises_at_the_boosted_rate(engine, p1, boost, boosted):
    """2 firms × 40 periods of the multinational firm (culture on, no burn-in, whose steps would
    use the unboosted p1). With alignment_rate = 1, a_t = 1 from period 1, so every step uses
    p_{1,t} = min(1, p1 + b_soc) (§7.14): the run must equal one with culture.p1 set to that
    value and no programme, and differ from one at the unboosted p1. The alignment weight is
    kept at w (0) so that only socialisation changes. Values are exact in binary."""
    base = ["n_orgs=2", "periods=40", "culture.burn_in=0"]
    aligned = simulate(
        [
            *base,
            f"culture.p1={p1}",
            f"management.socialisation_boost={boost}",
            "management.alignment_rate=1",
            "management.alignment_cost=0",
            "management.alignment_weight=0",
        ],
        engine,
    )
    direct = simulate([*base, f"culture.p1={boosted}"], engine)
    unboosted = simulate([*base, f"culture.p1={p1}"], engine)
    assert not np.array_equal(team_array(direct, "knowledge"), team_array(unboosted, "knowledge"))
    assert_same_outputs(aligned, direct)


# --------------------------------------------------------------------------------------------
# BPM: uniform, or the whole budget on the constraint (§7.18 step 4)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_uniform_bpm_matures_every_team_at_the_rate(engine):
    """2 firms × 60 periods, bpm_rate 0.05, focus uniform, from maturity 0: every team follows
    m_t = 1 − (1 − ρ_m)^t, so mean_maturity does too (§7.18, §10.1); cost N·bpm_cost."""
    rate = 0.05
    res = simulate([*PLAIN, f"management.bpm_rate={rate}", "management.bpm_cost=3"], engine)
    t = np.arange(1, 61)
    np.testing.assert_allclose(kpi_array(res, "mean_maturity"), [1 - (1 - rate) ** t] * 2, rtol=1e-12)
    np.testing.assert_array_equal(kpi_array(res, "programme_cost"), 3.0 * N_TEAMS)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("rate", [0.05, 0.2])
def test_constraint_bpm_pools_the_budget_on_the_worst_firm_score(engine, rate):
    """2 firms × 60 periods, focus constraint. §7.18: each period the team with the lowest
    window mean firm score F̄_{i,t} (first on ties) gets m ← m + min(1, N ρ_m)(1 − m), N = 10
    teams; the others keep theirs. The targets are recomputed from the teams' costs and
    backlogs (§7.16) and the predicted mean maturity compared with the KPI; ρ_m = 0.2 pools to
    a full step, min(1, 2) = 1. Cost N·bpm_cost either way."""
    res = simulate(
        [*PLAIN, f"management.bpm_rate={rate}", "management.bpm_focus=constraint", "management.bpm_cost=3"],
        engine,
    )
    step = min(1.0, N_TEAMS * rate)
    mean_firm = window_means(firm_scores(res))
    expected = np.empty((2, 60))
    for org in range(2):
        maturity = np.zeros(N_TEAMS)
        for t in range(60):
            i = worst(mean_firm[org, t])
            maturity[i] += step * (1.0 - maturity[i])
            expected[org, t] = maturity.mean()
    observed = kpi_array(res, "mean_maturity")
    assert observed[:, 0] == pytest.approx(step / N_TEAMS)  # period 1: one team, the pooled step
    np.testing.assert_allclose(observed, expected, rtol=1e-12)
    np.testing.assert_array_equal(kpi_array(res, "programme_cost"), 3.0 * N_TEAMS)


# --------------------------------------------------------------------------------------------
# BPO: a project on the constraint or on the worst local score (§7.18 steps 3 and 5)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("target", ["constraint", "worst_local"])
def test_bpo_projects_go_to_the_documented_team(engine, target):
    """2 firms × 60 periods, a project every 13 periods (size 0.1, cost 500, erosion 0.05, no
    maturity). Without the culture layer φ_{i,t} = 1 − g_i (§7.15), so every team's cost is
    c = h I⁺ + b B + (1 − g)(u y⁺ + f + 1[top] P^M r) (§7.6), with the gain in force during
    the period. Gains erode each period, g ← g(1 − e) (step 3), then a project on the team
    with the lowest F̄ (`constraint`) or L̄ (`worst_local`), first on ties, gives
    g ← g + z(1 − g) (step 5), acting from the next period. Targets are recomputed from the
    outputs; the two rules must pick different teams at some project for the test to tell them
    apart."""
    size, erosion, every, periods = 0.1, 0.05, 13, 60
    res = simulate(
        [
            *PLAIN,
            f"management.bpo_every={every}",
            f"management.bpo_size={size}",
            "management.bpo_cost=500",
            f"management.bpo_erosion={erosion}",
            f"management.bpo_target={target}",
        ],
        engine,
    )
    inv, backlog = team_array(res, "inventory"), team_array(res, "backlog")
    shipped, received = team_array(res, "shipped"), team_array(res, "received")
    mean_firm = window_means(firm_scores(res))
    mean_local = window_means(local_scores(res))
    chosen = mean_firm if target == "constraint" else mean_local
    expected = np.empty_like(inv)
    differ = 0
    for org in range(2):
        gain = np.zeros(N_TEAMS)
        for t in range(periods):
            process = (
                UNIT * np.maximum(shipped[org, t], 0.0)
                + FIXED
                + np.where(TOP, MATERIAL * received[org, t], 0)
            )
            expected[org, t] = (
                HOLDING * np.maximum(inv[org, t], 0.0)
                + BACKLOG_RATE * backlog[org, t]
                + (1.0 - gain) * process
            )
            gain *= 1.0 - erosion
            if (t + 1) % every == 0:
                i = worst(chosen[org, t])
                gain[i] += size * (1.0 - gain[i])
                differ += worst(mean_firm[org, t]) != worst(mean_local[org, t])
    assert differ > 0
    np.testing.assert_allclose(team_array(res, "cost"), expected, rtol=1e-12)
    t = np.arange(1, periods + 1)
    np.testing.assert_array_equal(
        kpi_array(res, "programme_cost"), [np.where(t % every == 0, 500.0, 0.0)] * 2
    )


# --------------------------------------------------------------------------------------------
# execution noise is damped by maturity (§7.10, §7.19)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ENGINES)
def test_execution_noise_scales_with_one_minus_maturity(engine):
    """2 firms × 60 periods, no BPM (maturity stays at initial_maturity). The order is
    O* (1 + σ_E (1 − m) ε^E) (§7.10, §7.19), so only σ_E (1 − m) matters: (σ_E 0.5, m 0.5)
    must equal (σ_E 0.25, m 0), (σ_E 0.5, m 1) must equal no noise (apart from the
    mean_maturity KPI), and (σ_E 0.5, m 0) must differ from the first."""

    def run(sd, m):
        return simulate(
            [*PLAIN, f"management.execution_noise={sd}", f"management.initial_maturity={m}"], engine
        )

    half = run(0.5, 0.5)
    full = run(0.5, 0.0)
    assert not np.array_equal(team_array(half, "order"), team_array(full, "order"))
    assert_same_outputs(half, run(0.25, 0.0), skip={"kpi.mean_maturity"})
    assert_same_outputs(run(0.5, 1.0), run(0.0, 0.0), skip={"kpi.mean_maturity"})
    np.testing.assert_array_equal(kpi_array(half, "mean_maturity"), 0.5)


@pytest.mark.parametrize("engine", ENGINES)
def test_first_order_deviation_is_proportional_to_one_minus_maturity(engine):
    """Period 1 starts from the same state whatever the noise, so O*_1 is common and the
    relative deviation O_1 / O*_1 − 1 = σ_E (1 − m) ε^E_1 with the same draw ε (§7.19): at
    maturity 0.5 and 0.75 it is exactly 1/2 and 1/4 of the deviation at maturity 0."""

    def first_orders(m):
        res = simulate([*PLAIN, "management.execution_noise=0.2", f"management.initial_maturity={m}"], engine)
        return team_array(res, "order")[:, 0]

    clean = team_array(simulate(PLAIN, engine), "order")[:, 0]
    deviation = {m: first_orders(m) / clean - 1.0 for m in (0.0, 0.5, 0.75)}
    assert np.abs(deviation[0.0]).min() > 1e-4
    np.testing.assert_allclose(deviation[0.5], 0.5 * deviation[0.0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(deviation[0.75], 0.25 * deviation[0.0], rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------------
# the unit margin of the firm score (§7.16)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "margin"),
    [
        ([], 10.0 - 4.0 - (0.5 + 0.5 + 2.0 + 0.0)),  # multinational, docs: UM = 10 − 4 − 3 = 3
        (
            ["finance.price=12", "costs.material=2.5", "costs.unit=[0.25,1.0,1.5,0.75]"],
            12.0 - 2.5 - (0.25 + 1.0 + 1.5 + 0.75),
        ),
        (["finance.price=3"], 3.0 - 4.0 - 3.0),  # negative: the raw value, floored only in the score
    ],
    ids=["multinational", "custom", "negative"],
)
def test_unit_margin_is_price_less_material_and_processing_along_a_path(overrides, margin):
    """§7.16: UM = P − P^M − Σ_k u_k over the stages of one path from source to customer (not
    over the 10 teams, which would count 3 × 0.5 + 3 × 0.5 + 3 × 2)."""
    assert build_network(orgsim.compose(overrides)).unit_margin == pytest.approx(margin, abs=1e-12)


def test_firm_scores_charge_the_unit_margin_on_backlog():
    """1 firm × 60 periods in the volatile environment (backlogs occur): every team's recorded
    firm score is clip(c^ss / (c + UM⁺ B), 0, 2) with UM = 3 by hand (§7.16)."""
    cfg = orgsim.compose([*PLAIN, "n_orgs=1", "environment=volatile"])
    firm = Firm(cfg, 0)
    for _ in range(60):
        firm.step()
    with_backlog = 0
    for i, team in enumerate(firm.teams):
        cost, backlog = np.array(team.history["cost"]), np.array(team.history["backlog"])
        with_backlog += int((backlog > 1.0).sum())
        expected = clip02(STEADY_COST[i] / (cost + UNIT_MARGIN * backlog))
        np.testing.assert_allclose(team.history["firm_score"], expected, rtol=1e-12, err_msg=team.name)
    assert with_backlog > 0
