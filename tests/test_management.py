"""The management layer (``orgsim.management``): kernels, accountability rules on the Mesa
engine, and the mechanisms issue 3 asks to be shown rather than assumed.

Kernel tests are exact or hypothesis properties. Mechanism tests run small populations of the
multinational firm (stepping ``orgsim.engine_mesa.Firm`` by hand where team attributes are
needed); each states its runs and its margin, which is 4 standard errors of the compared
difference unless said otherwise. Firms with the same index share their random draws, so
comparisons between settings are paired by firm.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orgsim
from orgsim import management as mg
from orgsim.engine_mesa import Firm
from orgsim.management import AccountabilityRule

PROPERTY = settings(max_examples=50, deadline=None)
finite = st.floats(-1e6, 1e6, allow_nan=False)
positive = st.floats(1e-6, 1e6)


def mean_se(x) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def run_firm(overrides: list[str], periods: int, index: int = 0, **kwargs) -> Firm:
    firm = Firm(orgsim.compose([*overrides, f"periods={periods}"]), index, **kwargs)
    for _ in range(periods):
        firm.step()
    return firm


def window_mean(values: list[float], t: int, window: int) -> float:
    """Mean of the last ``min(t, window)`` values up to period ``t`` (1-based)."""
    return float(np.mean(values[max(0, t - window) : t]))


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------
def test_normalised_by_hand():
    assert mg.normalised(0.9, 0.9, True) == 1.0
    assert mg.normalised(0.45, 0.9, True) == pytest.approx(0.5)
    assert mg.normalised(5.0, 1.0, True) == 2.0  # clipped
    assert mg.normalised(-1.0, 1.0, True) == 0.0  # clipped
    assert mg.normalised(2.0, 1.0, False) == pytest.approx(0.5)  # a cost twice the target
    assert mg.normalised(0.25, 1.0, False) == 2.0  # clipped
    # nothing to compare against: no target and nothing achieved is on target
    assert mg.normalised(0.0, 0.0, True) == 1.0
    assert mg.normalised(3.0, 0.0, True) == 2.0
    assert mg.normalised(0.0, 0.0, False) == 1.0
    assert mg.normalised(0.0, 5.0, False) == 2.0  # no cost at all beats any cost target


@PROPERTY
@given(a=finite, b=finite, target=positive, higher=st.booleans())
def test_normalised_is_clipped_and_monotone_in_the_right_direction(a, b, target, higher):
    lo, hi = sorted((a, b))
    r_lo, r_hi = mg.normalised(lo, target, higher), mg.normalised(hi, target, higher)
    assert 0.0 <= r_lo <= 2.0 and 0.0 <= r_hi <= 2.0
    if higher:
        assert r_lo <= r_hi
    elif lo > 0:  # costs: lower is better
        assert r_lo >= r_hi
    assert mg.normalised(target, target, higher) == pytest.approx(1.0)


def test_adapt_bias_win_stay_lose_shift():
    """A better score keeps the direction, a worse one reverses it; an equal score keeps it
    (as coded: `score_now < score_prev` reverses; see the report on the module docstring)."""
    up = math.exp(0.1)
    assert mg.adapt_bias(1.0, 1.0, 0.9, 0.8, 0.1, 0.5, 2.0) == pytest.approx((up, 1.0))
    assert mg.adapt_bias(1.0, 1.0, 0.7, 0.8, 0.1, 0.5, 2.0) == pytest.approx((1 / up, -1.0))
    assert mg.adapt_bias(1.0, -1.0, 0.7, 0.8, 0.1, 0.5, 2.0) == pytest.approx((up, 1.0))
    assert mg.adapt_bias(1.0, -1.0, 0.8, 0.8, 0.1, 0.5, 2.0) == pytest.approx((1 / up, -1.0))
    assert mg.adapt_bias(1.0, 1.0, 0.1, -math.inf, 0.1, 0.5, 2.0) == pytest.approx((up, 1.0))


@PROPERTY
@given(
    bias=st.floats(0.01, 10),
    direction=st.sampled_from([-1.0, 1.0]),
    now=st.floats(0, 2),
    prev=st.floats(0, 2),
    step=st.floats(0, 1),
    lo=st.floats(0.01, 1),
    hi=st.floats(1, 10),
)
def test_adapt_bias_stays_within_bounds(bias, direction, now, prev, step, lo, hi):
    new, new_dir = mg.adapt_bias(bias, direction, now, prev, step, lo, hi)
    assert lo <= new <= hi
    assert new_dir == (-direction if now < prev else direction)


@PROPERTY
@given(gain=st.floats(0, 1), erosion=st.floats(0, 1), m1=st.floats(0, 1), m2=st.floats(0, 1))
def test_erode(gain, erosion, m1, m2):
    """Gains decay by erosion·(1 − maturity) per period: not at all when maturity is 1, fully
    (rate ``erosion``) when it is 0, less the more mature the process."""
    assert mg.erode(gain, erosion, 1.0) == gain
    assert mg.erode(gain, erosion, 0.0) == pytest.approx(gain * (1 - erosion))
    lo, hi = sorted((m1, m2))
    assert 0.0 <= mg.erode(gain, erosion, lo) <= mg.erode(gain, erosion, hi) + 1e-15 <= gain + 1e-15


@PROPERTY
@given(gain=st.floats(0, 1), size=st.floats(0, 1))
def test_improve_and_mature_close_a_share_of_the_gap(gain, size):
    assert mg.improve(gain, size) == pytest.approx(gain + size * (1 - gain))
    assert gain - 1e-15 <= mg.improve(gain, size) <= 1.0 + 1e-15
    assert mg.improve(gain, 1.0) == pytest.approx(1.0)
    assert mg.improve(gain, 0.0) == gain
    assert mg.mature(gain, size) == pytest.approx(mg.improve(gain, size))
    assert mg.mature(1.0, size) == 1.0


@PROPERTY
@given(
    scores=st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0]) | st.floats(0, 2), min_size=1, max_size=15),
    share=st.floats(0.01, 1),
)
def test_select_top_picks_ceil_share_n_best_with_ties_by_index(scores, share):
    scores = np.array(scores)
    n = scores.size
    out = np.zeros(n, dtype=np.bool_)
    mg.select_top(scores, share, out)
    k = max(1, math.ceil(share * n - 1e-9))
    expected = np.zeros(n, dtype=bool)
    expected[sorted(range(n), key=lambda i: (-scores[i], i))[:k]] = True
    np.testing.assert_array_equal(out, expected)


def test_select_top_by_hand():
    out = np.zeros(5, dtype=np.bool_)
    mg.select_top(np.array([1.0, 2.0, 2.0, 0.5, 2.0]), 0.3, out)  # ceil(1.5) = 2, ties by index
    np.testing.assert_array_equal(out, [False, True, True, False, False])
    mg.select_top(np.array([1.0, 2.0, 2.0, 0.5, 2.0]), 0.01, out)  # at least one
    np.testing.assert_array_equal(out, [False, True, False, False, False])


@PROPERTY
@given(values=st.lists(st.sampled_from([0.0, 1.0, 2.0]) | finite, min_size=1, max_size=15))
def test_argmin_first(values):
    values = np.array(values)
    assert mg.argmin_first(values) == int(np.argmin(values))  # NumPy also takes the first


def test_local_and_firm_values():
    assert mg.local_value(0, 90.0, 100.0, 130.0, 5.0, 7.0) == pytest.approx(0.9)  # fill rate
    assert mg.local_value(0, 0.0, 0.0, 130.0, 5.0, 7.0) == 1.0  # nothing asked, nothing missed
    assert mg.local_value(1, 100.0, 100.0, 130.0, 5.0, 7.0) == pytest.approx(100 / 130)  # utilisation
    assert mg.local_value(2, 50.0, 100.0, 130.0, 200.0, 7.0) == pytest.approx(4.0)  # unit cost
    assert mg.local_value(3, 50.0, 100.0, 130.0, 200.0, 7.0) == 7.0  # holding and backlog cost
    assert mg.firm_value(100.0, 10.0, 3.0) == pytest.approx(130.0)
    assert mg.firm_value(100.0, 10.0, -3.0) == 100.0  # a negative margin owes nothing


# --------------------------------------------------------------------------------------------
# accountability rules
# --------------------------------------------------------------------------------------------
@PROPERTY
@given(local=st.floats(0, 2), firm=st.floats(0, 2), w=st.floats(0, 1), w2=st.floats(0, 1))
def test_rule_score_is_weighted_mean_of_local_and_firm(local, firm, w, w2):
    rule = AccountabilityRule(metric="fill_rate", weight=w)
    assert rule.score(local, firm) == pytest.approx((1 - w) * local + w * firm)
    assert rule.score(local, firm, w2) == pytest.approx((1 - w2) * local + w2 * firm)
    assert AccountabilityRule(metric="unit_cost", weight=0.0).score(local, firm) == local
    assert AccountabilityRule(metric="unit_cost", weight=1.0).score(local, firm) == firm


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metric": "profit"}, r"metric == 'profit', must be one of"),
        ({"metric": "fill_rate", "weight": -0.1}, r"weight == -0\.1, must be in \[0, 1\]"),
        ({"metric": "fill_rate", "weight": 1.5}, r"weight == 1\.5, must be in \[0, 1\]"),
        ({"metric": "fill_rate", "weight": float("nan")}, r"weight == nan"),
    ],
)
def test_rule_rejects_invalid_metric_or_weight(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AccountabilityRule(**kwargs)


def test_rule_for_role_and_metric_direction():
    assert AccountabilityRule.for_role("sales").metric == "fill_rate"
    assert AccountabilityRule.for_role("distribution").metric == "holding_backlog_cost"
    assert AccountabilityRule.for_role("production").metric == "utilisation"
    assert AccountabilityRule.for_role("sourcing").metric == "unit_cost"
    assert AccountabilityRule.for_role("organisation").metric == "holding_backlog_cost"
    assert AccountabilityRule.for_role("sales", 0.4).weight == 0.4
    assert AccountabilityRule("fill_rate").higher_is_better
    assert not AccountabilityRule("unit_cost").higher_is_better
    assert AccountabilityRule("utilisation").local_score(0.5, 1.0) == pytest.approx(0.5)
    assert AccountabilityRule("unit_cost").local_score(2.0, 1.0) == pytest.approx(0.5)


STEADY = [
    "environment=native",
    "demand.seasonality=0",
    "culture.enabled=false",
    "management.execution_noise=0",
    "management.adapt_every=0",
]


def test_every_team_is_on_target_at_the_steady_state():
    """The multinational firm without noise, seasonality, culture or adaptation stays at its
    steady state: 40 periods, every team's local and firm score is exactly 1 ("on target")."""
    firm = run_firm(STEADY, 40)
    for team in firm.teams:
        np.testing.assert_allclose(team.history["local_score"], 1.0, rtol=0, atol=1e-12, err_msg=team.name)
        np.testing.assert_allclose(team.history["firm_score"], 1.0, rtol=0, atol=1e-12, err_msg=team.name)


def test_a_custom_metric_is_judged_against_its_own_target():
    """Same steady state, with the production team of region 0 judged on unit cost: it is on
    target, so its local score should be 1."""
    firm = run_firm(STEADY, 3, rules={"production_0": AccountabilityRule("unit_cost")})
    team = next(t for t in firm.teams if t.name == "production_0")
    np.testing.assert_allclose(team.history["local_score"], 1.0, atol=1e-9)


@pytest.mark.parametrize("w", [0.0, 0.3, 1.0])
def test_engine_scores_are_window_means_weighted_by_w(w):
    """1 firm × 40 periods, volatile environment, no culture programme (so w stays fixed): for
    every team and period the recorded score is (1 − w)·(window mean of local scores) +
    w·(window mean of firm scores), to 1e-12."""
    firm = run_firm(["environment=volatile", f"management.accountability_weight={w}"], 40)
    window = firm.cfg.management.score_window
    for team in firm.teams:
        h = team.history
        for t in range(1, 41):
            expected = (1 - w) * window_mean(h["local_score"], t, window) + w * window_mean(
                h["firm_score"], t, window
            )
            assert h["score"][t - 1] == pytest.approx(expected, rel=0, abs=1e-12), (team.name, t)


class FlatRule(AccountabilityRule):
    """A researcher's rule: every team it judges scores 0.25, whatever happens."""

    def score(self, local, firm, weight=None):
        return 0.25


def test_a_subclassed_rule_changes_that_teams_scores_and_behaviour():
    """1 firm × 91 periods, stable environment (7 adaptation rounds of step 0.1): the team
    given the subclass records its scores, the other teams keep the default rule, and since a
    flat score is never worse than the last one, win-stay drives its stock bias monotonically
    to a bound (exp(0.7) > 2 = bias_max, exp(−0.7) < 0.5 = bias_min)."""
    overrides = ["environment=stable"]
    custom = run_firm(overrides, 91, rules={"distribution_1": FlatRule(metric="holding_backlog_cost")})
    default = run_firm(overrides, 91)
    by_name = {t.name: t for t in custom.teams}
    flat = by_name["distribution_1"]
    assert isinstance(flat.accountability, FlatRule)
    assert custom.solvent
    assert flat.history["score"] == [0.25] * 91
    assert len(set(next(t for t in default.teams if t.name == "distribution_1").history["score"])) > 1
    assert type(by_name["distribution_0"].accountability) is AccountabilityRule
    assert len(set(by_name["distribution_0"].history["score"])) > 1
    mgc = custom.cfg.management
    assert flat.bias in (pytest.approx(mgc.bias_min), pytest.approx(mgc.bias_max))


def test_a_rules_own_weight_is_used():
    """A sales team given a rule with w = 1 in a firm with w = 0 (no culture programme) should
    be scored on the firm objective alone: 1 firm × 30 periods, volatile environment."""
    firm = run_firm(
        ["environment=volatile"], 30, rules={"sales_0": AccountabilityRule("fill_rate", weight=1.0)}
    )
    team = firm.teams[0]
    window = firm.cfg.management.score_window
    expected = [window_mean(team.history["firm_score"], t, window) for t in range(1, 31)]
    np.testing.assert_allclose(team.history["score"], expected, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# mechanism (a): BPO gains erode without BPM maturity
# --------------------------------------------------------------------------------------------
def _gains(overrides: list[str], periods: int, index: int) -> np.ndarray:
    """Gains of every team after each period, ``[period, team]``."""
    firm = Firm(orgsim.compose(["strategy=bpo", *overrides, f"periods={periods}"]), index)
    out = []
    for _ in range(periods):
        firm.step()
        out.append([t.gain for t in firm.teams])
    return np.array(out)


@pytest.mark.parametrize(
    ("overrides", "maturity"),
    [([], 0.0), (["management.initial_maturity=0.95"], 0.95)],
    ids=["no_maturity", "maturity_0.95"],
)
def test_a_projects_gain_erodes_between_projects_unless_processes_are_mature(overrides, maturity):
    """strategy=bpo, 4 firms × 25 periods: the first project (period 13) gives its target a gain
    of bpo_size; by period 25, just before the next one, it has decayed by
    (1 − erosion·(1 − maturity))^12: to 54% of its size without maturity, 97% at maturity 0.95."""
    cfg = orgsim.compose(["strategy=bpo"])
    size, erosion, every = cfg.management.bpo_size, cfg.management.bpo_erosion, cfg.management.bpo_every
    for index in range(4):
        g = _gains(overrides, 2 * every - 1, index)
        assert not g[: every - 1].any(), "no gain before the first project"
        target = int(np.argmax(g[every - 1]))
        assert g[every - 1, target] == pytest.approx(size)
        kept = g[2 * every - 2, target] / g[every - 1, target]
        assert kept == pytest.approx((1 - erosion * (1 - maturity)) ** (every - 1), rel=1e-9)
    assert (1 - erosion) ** (every - 1) < 0.6 < 0.95 < (1 - erosion * 0.05) ** (every - 1)


# Engines: the population runs below that read only KPIs and team records use the Numba engine,
# which gives the Mesa engine's numbers (test_engine_numba.py::test_engines_agree: every strategy
# and environment of the multinational firm) in a fraction of the time; runs that read a team's
# internal state (bias, history) step Mesa firms.
def test_gains_accumulate_only_with_maturity():
    """strategy=bpo, 4 firms × 104 periods (8 projects). Without maturity the firm's total gain
    can never exceed size / (1 − (1 − erosion)^every) ≈ 0.21 (one project per cadence against
    geometric decay); with maturity 0.95 (the same projects) it ends above twice that bound;
    with BPM switched on (bpo_bpm, maturity growing from 0) it ends in between."""
    cfg = orgsim.compose(["strategy=bpo"])
    m = cfg.management
    bound = m.bpo_size / (1 - (1 - m.bpo_erosion) ** m.bpo_every)
    for index in range(4):
        bare = _gains([], 104, index).sum(axis=1)
        mature = _gains(["management.initial_maturity=0.95"], 104, index).sum(axis=1)
        managed = _gains(["strategy=bpo_bpm"], 104, index).sum(axis=1)
        assert bare.max() <= bound + 1e-12
        assert mature[-1] > 2 * bound
        assert bare[-1] < managed[-1] < mature[-1]


def test_persistent_gains_lower_operating_cost():
    """strategy=bpo without execution noise (so maturity acts only through erosion), 10 firms ×
    156 periods, stable environment: the same projects at the same cost, yet the operating cost
    net of programme cost is lower at maturity 0.95 than at 0 by more than 4 SE of the paired
    difference (observed about 3%, 14,000 over three years)."""
    base = ["strategy=bpo", "environment=stable", "n_orgs=10", "periods=156", "management.execution_noise=0"]
    costs, programme = {}, {}
    for m in (0.0, 0.95):
        cfg = orgsim.compose([*base, f"management.initial_maturity={m}"])
        k = orgsim.simulate(cfg, engine="numba", teams=False).kpis  # see 'Engines' above
        costs[m] = (k.operating_cost - k.programme_cost).groupby(k.org).sum().to_numpy()
        programme[m] = k.programme_cost.groupby(k.org).sum().to_numpy()
    np.testing.assert_array_equal(programme[0.0], programme[0.95])
    assert (programme[0.0] > 0).all()
    mean, se = mean_se(costs[0.0] - costs[0.95])
    assert mean > 4 * se, (mean, se)


# --------------------------------------------------------------------------------------------
# mechanism (b): shared information lowers the bullwhip
# --------------------------------------------------------------------------------------------
def _bullwhip(information: str, n: int = 16, periods: int = 156, warmup: int = 26) -> np.ndarray:
    """Per firm: variance of the sourcing team's orders / variance of end-customer demand,
    after a warm-up of ``warmup`` periods."""
    cfg = orgsim.compose(
        ["environment=stable", f"information={information}", f"n_orgs={n}", f"periods={periods}"]
    )
    res = orgsim.simulate(cfg, engine="numba", teams=True)  # see 'Engines' above
    teams, kpis = res.teams, res.kpis
    src = teams[(teams.role == "sourcing") & (teams.period > warmup)].sort_values(["org", "period"])
    dem = kpis[kpis.period > warmup].sort_values(["org", "period"])
    orders = src.order.to_numpy().reshape(n, -1)
    demand = dem.demand.to_numpy().reshape(n, -1)
    return orders.var(axis=1, ddof=1) / demand.var(axis=1, ddof=1)


def test_shared_information_lowers_the_bullwhip():
    """Multinational firm, stable environment (AR(1) demand, cv 0.1, ρ 0.5), strategy none,
    16 firms × 156 periods after 26 warm-up periods. The variance ratio of upstream (sourcing)
    orders to end-customer demand amplifies under both (> 1), and sharing end-customer demand
    cuts it: pooled ratio shared/local < 0.8 (observed about 0.66, from about 5.3 to 3.5),
    and the paired log difference exceeds 4 SE."""
    local, shared = _bullwhip("local"), _bullwhip("shared")
    assert (local > 1).all() and (shared > 1).all()
    assert shared.mean() / local.mean() < 0.8
    mean, se = mean_se(np.log(local) - np.log(shared))
    assert mean > 4 * se, (mean, se)


# --------------------------------------------------------------------------------------------
# mechanisms (c) and (d): what the accountability weight does
# --------------------------------------------------------------------------------------------
def _sales_after_adaptation(w: float, n: int = 24, periods: int = 156) -> dict[str, np.ndarray]:
    """Per firm: share of sales teams at bias_max, their mean inventory over the last year,
    the share of periods their fill rate scored exactly on target, and the mean log stock
    bias of the distribution teams."""
    cfg = orgsim.compose(
        ["environment=stable", f"management.accountability_weight={w}", f"periods={periods}"]
    )
    out = {"at_max": [], "inventory": [], "saturated": [], "distribution_log_bias": []}
    for index in range(n):
        firm = Firm(cfg, index)
        for _ in range(periods):
            firm.step()
        sales = [t for t in firm.teams if t.role == "sales"]
        out["at_max"].append(np.mean([t.bias >= cfg.management.bias_max - 1e-9 for t in sales]))
        out["inventory"].append(np.mean([np.mean(t.history["inventory"][-52:]) for t in sales]))
        out["saturated"].append(
            np.mean([np.mean(np.array(t.history["local_score"]) >= 1 - 1e-12) for t in sales])
        )
        out["distribution_log_bias"].append(
            np.mean([np.log(t.bias) for t in firm.teams if t.role == "distribution"])
        )
    return {k: np.array(v) for k, v in out.items()}


def test_fill_rate_accountability_lets_sales_stock_run_up():
    """Misaligned local metrics (adapt_every = 13, w = 0 against w = 1), 24 firms × 156 periods.

    Observed mechanism: a sales team's fill rate is on target (1) in over 95% of periods, so
    its local score is flat; under win-stay (a score that is not worse keeps the direction) the
    stock bias walks in its initial direction, and only stock-outs turn it back. Teams heading
    up never meet a signal against excess stock and end at bias_max (observed about half of
    them at w = 0, almost none at w = 1, where the firm score charges the holding cost), so
    sales teams carry more stock (observed about 280 against 165 units). Distribution teams,
    judged on holding-and-backlog cost, drift the other way (mean log bias < 0). Margins:
    4 SE for shares and bias, 3 SE for the paired inventory difference.
    """
    local, firm = _sales_after_adaptation(0.0), _sales_after_adaptation(1.0)
    assert local["saturated"].mean() > 0.95
    mean, se = mean_se(local["at_max"] - firm["at_max"])
    assert mean > 4 * se and local["at_max"].mean() > 0.3, (mean, se)
    mean, se = mean_se(local["inventory"] - firm["inventory"])
    assert mean > 3 * se, (mean, se)
    mean, se = mean_se(local["distribution_log_bias"])
    assert mean < -4 * se, (mean, se)


def _superior_sets(w: float, n: int, periods: int) -> tuple[np.ndarray, np.ndarray, list[Firm]]:
    """For each firm and period: the teams the code learns from; and the inventories of
    period 1, before learning could make the firms of a pair differ. No burn-in, so the code
    is still learning while the firm operates."""
    cfg = orgsim.compose([f"management.accountability_weight={w}", "culture.burn_in=0", f"periods={periods}"])
    share = cfg.culture.superior_share
    sets, first_inventory, firms = [], [], []
    for index in range(n):
        firm = Firm(cfg, index)
        rows = []
        for t in range(periods):
            firm.step()
            if t == 0:
                first_inventory.append([team.inventory for team in firm.teams])
            top = np.zeros(len(firm.teams), dtype=np.bool_)
            mg.select_top(np.array([team.score for team in firm.teams]), share, top)
            rows.append(top)
        sets.append(rows)
        firms.append(firm)
    return np.array(sets), np.array(first_inventory), firms


def test_accountability_weight_changes_who_the_code_learns_from():
    """Multinational firm (superior group = top 30% of teams by score) with no learning
    burn-in, 8 firms × 26 periods, w = 0 against w = 1. In period 1 both firms of a pair are in
    the same state (identical inventories), yet the superior group differs in at least half of
    the pairs (observed: all); it differs in at least half of all firm-periods, and the code
    ends different in at least half of the pairs (observed: all, by 4–15 of 30 dimensions).

    With the scenario's 200-period burn-in the code is at March's equilibrium when operations
    start, and w then does not change it (observed: the same code in 8 of 8 firms after 260
    periods, stable and volatile environments): scores choose whom the code learns from, but
    the members of every team already act as the code says."""
    sets0, inv0, firms0 = _superior_sets(0.0, 8, 26)
    sets1, inv1, firms1 = _superior_sets(1.0, 8, 26)
    np.testing.assert_array_equal(inv0, inv1)
    differ = (sets0 != sets1).any(axis=2)
    assert differ[:, 0].mean() >= 0.5
    assert differ.mean() >= 0.5
    assert (
        np.mean([(a.code_known, a.code_pos) != (b.code_known, b.code_pos) for a, b in zip(firms0, firms1)])
        >= 0.5
    )


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=8),
    st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=30),
)
def test_score_window_mean_is_the_mean_of_the_last_periods(w, values):
    # window_slot / window_push keep a running sum over a ring of the last w scores: the mean in
    # period t is the mean of the scores of periods max(1, t - w + 1) .. t
    ring, total = np.zeros(w), 0.0
    for t, value in enumerate(values, start=1):
        slot, count = mg.window_slot(t, w)
        assert 0 <= slot < w and count == min(t, w)
        total, mean = mg.window_push(ring, slot, count, value, total)
        assert mean == pytest.approx(np.mean(values[max(0, t - w) : t]), rel=1e-9, abs=1e-12)


def test_adaptation_runs_on_its_cadence_only():
    from orgsim.schema import Param

    p = np.zeros(len(Param))
    p[Param.adapt_every] = 4
    assert [t for t in range(1, 13) if mg.adapt_due(p, t)] == [4, 8, 12]
    p[Param.adapt_every] = 0  # never
    assert not any(mg.adapt_due(p, t) for t in range(1, 13))
