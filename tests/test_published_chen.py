"""The bullwhip effect under order-up-to with moving-average forecasts, against Chen et al.

Source
------
Chen, F., Drezner, Z., Ryan, J. K. & Simchi-Levi, D. (2000). Quantifying the bullwhip effect
in a simple supply chain: the impact of forecasting, lead times, and information. Management
Science 46(3), 436-443. AR(1) demand D_t = μ + ρ·(D_{t-1} − μ) + ε_t; each stage orders up to
y_t = L·μ̂_t (z = 0) with μ̂_t the mean of the last p observations; orders may be negative.

* One stage: Var(q)/Var(D) = 1 + (2L/p + 2L²/p²)(1 − ρ^p).
* Stages that share customer demand (Theorem 3.1, attained with equality when z = 0): stage k
  (k = 1 at the customer) has 1 + (2ΣL/p + 2(ΣL)²/p²)(1 − ρ^p), ΣL = L_1 + ... + L_k.
* Stages that forecast from their own incoming orders (Theorem 3.2): the ratio is at least
  Π_{i≤k} (1 + (2L_i/p + 2L_i²/p²)(1 − ρ^p)) — it compounds, far above the shared case.

Mapping to orgsim (conf/scenario/chen_bullwhip.yaml): α_S = β = 1, S' = 0 + cover·E with
``policy.cover = L − 1`` (so the order-up-to level is E + cover·E = L·E) and physically
``network.order_delay = 1``, ``network.lead_time = L − 1``; ``policy.ma_window = p``.

Runs and tolerances: each case simulates 4 firms × 10,200 periods on the Numba engine and drops
a 200-period burn-in (the Mesa engine gives the same numbers on these configs:
``test_the_mesa_engine_gives_the_same_numbers``, on short runs, as it would take minutes here). Variances are taken about the known process mean μ = ``demand.level`` (the mean of D
and, in steady state, of every stage's orders q), using the KPI column ``demand`` for D and the
team column ``order`` for q. The Monte Carlo standard error (SE) of the ratio comes from batch
means: each firm's series is cut into 10 segments, giving 40 batch ratios, SE = their standard
deviation / √40. Published equalities must hold within 4 SE; published lower bounds must not be
undercut by more than 4 SE.
"""

from __future__ import annotations

import numpy as np
import pytest

import orgsim

FIRMS, PERIODS, BURN_IN, SEGMENTS = 4, 10_200, 200, 10
CHEN3 = ["network.stages=3", "network.roles=[retailer,wholesaler,manufacturer]"]


def chen_ratio(lead: float, p: int, rho: float) -> float:
    """1 + (2L/p + 2L²/p²)(1 − ρ^p)  (Chen et al. 2000)."""
    return 1.0 + (2.0 * lead / p + 2.0 * lead**2 / p**2) * (1.0 - rho**p)


def chen_cfg(lead: int, p: int, rho: float, extra=(), firms=FIRMS, periods=PERIODS) -> orgsim.Config:
    return orgsim.compose(
        [
            "scenario=chen_bullwhip",
            f"n_orgs={firms}",
            f"periods={periods}",
            f"policy.cover={lead - 1}",
            f"network.lead_time={lead - 1}",
            f"policy.ma_window={p}",
            f"demand.rho={rho}",
            *extra,
        ]
    )


def simulate(lead: int, p: int, rho: float, extra=()) -> orgsim.SimulationResult:
    return orgsim.simulate(chen_cfg(lead, p, rho, extra), engine="numba", teams=True)


def variance_ratio(res: orgsim.SimulationResult, stage: int) -> tuple[float, float]:
    """Var(q)/Var(D) of the teams at ``stage`` and its batch-means standard error."""
    cfg = res.config
    n, t, mu = cfg.n_orgs, cfg.periods, cfg.demand.level
    kpis = res.kpis.sort_values(["org", "period"])
    teams = res.teams[res.teams.stage == stage].sort_values(["org", "period"])
    d = kpis.demand.to_numpy().reshape(n, t)[:, BURN_IN:] - mu
    q = teams.order.to_numpy().reshape(n, t)[:, BURN_IN:] - mu
    estimate = float((q**2).sum() / (d**2).sum())
    batches = np.concatenate(
        [
            (qs**2).sum(axis=1) / (ds**2).sum(axis=1)
            for qs, ds in zip(np.array_split(q, SEGMENTS, axis=1), np.array_split(d, SEGMENTS, axis=1))
        ]
    )
    return estimate, float(batches.std(ddof=1) / np.sqrt(batches.size))


def test_scenario_is_chens_setting():
    cfg = orgsim.compose(["scenario=chen_bullwhip"])
    p, net = cfg.policy, cfg.network
    assert (p.forecast, p.alpha_s, p.beta) == ("moving_average", 1.0, 1.0)
    assert p.s_prime == (0.0,) and p.allow_negative_orders and cfg.demand.allow_negative
    lead = p.cover[0] + 1
    assert net.order_delay[0] + net.lead_time[0] == lead, "order placed in t arrives at t + L"
    assert cfg.demand.cv > 0 and -1 < cfg.demand.rho < 1
    assert cfg.costs.unmet == "backlog" and not net.integer_units


ONE_STAGE = [(4, 5, 0.5), (2, 10, 0.9), (3, 4, -0.5), (6, 2, 0.0)]


@pytest.mark.parametrize(
    ("lead", "p", "rho", "extra"),
    [(*case, ()) for case in ONE_STAGE]
    + [(4, 5, 0.5, (*CHEN3, "information=shared")), (4, 5, 0.5, (*CHEN3, "information=local"))],
    ids=[*(f"{lead}-{p}-{rho}" for lead, p, rho in ONE_STAGE), "3-stages-shared", "3-stages-local"],
)
def test_the_mesa_engine_gives_the_same_numbers(lead, p, rho, extra):
    """The reference (Mesa) engine and the Numba engine the checks below run agree on every KPI
    and team record of each config (2 firms × 300 periods; tolerance of the engines' equivalence
    tests, rtol = atol = 1e-9), so the published results hold for the model, not one engine."""
    cfg = chen_cfg(lead, p, rho, extra, firms=2, periods=300)
    mesa = orgsim.simulate(cfg, engine="mesa", teams=True)
    fast = orgsim.simulate(cfg, engine="numba", teams=True)
    for name, values in mesa.kpi_arrays.items():
        np.testing.assert_allclose(
            np.asarray(values, float),
            np.asarray(fast.kpi_arrays[name], float),
            rtol=1e-9,
            atol=1e-9,
            err_msg=name,
        )
    for name, values in mesa.team_arrays.items():
        np.testing.assert_allclose(values, fast.team_arrays[name], rtol=1e-9, atol=1e-9, err_msg=name)
    assert np.std(mesa.team_arrays["order"]) > 0, "orders must vary for the comparison to mean something"


@pytest.mark.parametrize(("lead", "p", "rho"), ONE_STAGE, ids=lambda v: str(v))
def test_one_stage(lead, p, rho):
    """Var(q)/Var(D) = 1 + (2L/p + 2L²/p²)(1 − ρ^p) within 4 SE."""
    estimate, se = variance_ratio(simulate(lead, p, rho), stage=0)
    expected = chen_ratio(lead, p, rho)
    assert abs(estimate - expected) < 4 * se, f"{estimate:.4f} ± {se:.4f} vs {expected:.4f}"
    assert se < 0.02 * expected, "too little data for a meaningful check"


def test_shared_information_theorem_3_1():
    """Three stages sharing customer demand: stage k's ratio equals Chen's one-stage formula with
    the lead times summed, ΣL = k·L (Theorem 3.1 with equality), within 4 SE."""
    lead, p, rho = 4, 5, 0.5
    res = simulate(lead, p, rho, [*CHEN3, "information=shared"])
    for stage in range(3):
        estimate, se = variance_ratio(res, stage)
        expected = chen_ratio((stage + 1) * lead, p, rho)
        assert abs(estimate - expected) < 4 * se, (
            f"stage {stage}: {estimate:.3f} ± {se:.3f} vs {expected:.3f}"
        )


def test_local_information_theorem_3_2():
    """Three stages forecasting from their own incoming orders: the customer-facing stage has the
    one-stage ratio; upstream the ratio is at least the product bound Π (1 + 2L/p + 2L²/p²)(1 − ρ^p)
    (Theorem 3.2) and strictly above the shared-information value of Theorem 3.1."""
    lead, p, rho = 4, 5, 0.5
    res = simulate(lead, p, rho, [*CHEN3, "information=local"])
    estimate, se = variance_ratio(res, 0)
    assert abs(estimate - chen_ratio(lead, p, rho)) < 4 * se
    previous = estimate
    for stage in (1, 2):
        estimate, se = variance_ratio(res, stage)
        bound = chen_ratio(lead, p, rho) ** (stage + 1)
        shared = chen_ratio((stage + 1) * lead, p, rho)
        assert estimate > bound - 4 * se, (
            f"stage {stage}: {estimate:.2f} ± {se:.2f} under the bound {bound:.2f}"
        )
        assert estimate > shared + 4 * se, f"stage {stage}: {estimate:.2f} not above shared {shared:.2f}"
        assert estimate > previous, "the bullwhip must grow upstream"
        previous = estimate
