"""``scenario=march1991`` reproduces March (1991), Figure 1.

March, J. G. (1991). Exploration and exploitation in organizational learning. *Organization
Science* 2(1), 71–87: m = 30 dimensions of reality, n = 50 members, a code that learns from the
members whose performance beats it, 80 organisations per point; the text gives about 0.95 for
p1 = 0.1, p2 = 0.5.

Reference values: Workiewicz, M. (2019), recreation of March's original algorithm with gradual
socialisation after Christensen (2015), 10,000 iterations per cell, file
``Output/March_1991_p1_0.1-0.9_p2_0.1-0.9_p3_0_p4_0_t_limit_100_i_10000.csv`` of
https://github.com/Mac13kW/March_1991_Original (rows p1 = 0.1 … 0.9, columns p2 = 0.1, 0.5, 0.9).
The reference's own Monte Carlo error (10,000 runs) is negligible beside ours.

Measure: mean over the scenario's 80 firms of ``code_knowledge`` in the last of 400 periods
(equilibrium: the code stops changing within a few hundred periods). Tolerance: 4 standard errors
of that mean (sd of the 80 firms / √80). The cells run on the Numba engine (under a second each,
against several seconds to tens of seconds on the Mesa engine), which gives the Mesa engine's
numbers on these configs: ``test_the_mesa_engine_gives_the_same_numbers`` checks that on short runs.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

import orgsim

#: (p1, p2) -> equilibrium code knowledge, Workiewicz (2019), 10,000 iterations
WORKIEWICZ_2019 = {
    (0.1, 0.5): 0.9542533333333334,
    (0.9, 0.5): 0.7420666666666667,
    (0.1, 0.1): 0.8632666666666666,
    (0.1, 0.9): 0.9724066666666666,
    (0.9, 0.9): 0.7284,
}
#: March (1991), text on Figure 1: p1 = 0.1, p2 = 0.5 gives "about 0.95" (two decimals)
MARCH_1991_TEXT = ((0.1, 0.5), 0.95)


@functools.cache
def equilibrium_knowledge(p1: float, p2: float) -> tuple[float, float]:
    """Mean and standard error over firms of the code's knowledge in the last period."""
    cfg = orgsim.compose(["scenario=march1991", f"culture.p1={p1}", f"culture.p2={p2}"])
    kpis = orgsim.simulate(cfg, engine="numba", teams=False).kpis
    last = kpis.loc[kpis.period == cfg.periods, "code_knowledge"].to_numpy()
    assert last.size == cfg.n_orgs
    return float(last.mean()), float(last.std(ddof=1) / math.sqrt(last.size))


def test_scenario_is_marchs_setup():
    """The scenario holds March's parameters, so the comparison is like for like."""
    cfg = orgsim.compose(["scenario=march1991"])
    cu = cfg.culture
    assert (cu.enabled, cu.dims, cu.members, cfg.n_orgs) == (True, 30, 50, 80)
    assert (cu.p3, cu.p4, cu.burn_in, cu.superior) == (0.0, 0.0, 0, "performance")
    assert cfg.network.n_teams == 1, "one organisation of 50 members"
    assert cfg.periods >= 400


@pytest.mark.parametrize(("p1", "p2"), list(WORKIEWICZ_2019), ids=lambda v: str(v))
def test_the_mesa_engine_gives_the_same_numbers(p1, p2):
    """The reference (Mesa) engine and the Numba engine agree on every KPI and team record of
    each cell's config (2 firms × 60 periods, the tolerance of the engines' equivalence tests,
    rtol = atol = 1e-9), so the cells below check the model, not one engine."""
    cfg = orgsim.compose(
        ["scenario=march1991", f"culture.p1={p1}", f"culture.p2={p2}", "n_orgs=2", "periods=60"]
    )
    mesa = orgsim.simulate(cfg, engine="mesa", teams=True)
    fast = orgsim.simulate(cfg, engine="numba", teams=True)
    for arrays, other in ((mesa.kpi_arrays, fast.kpi_arrays), (mesa.team_arrays, fast.team_arrays)):
        for name, values in arrays.items():
            np.testing.assert_allclose(
                np.asarray(values, float), np.asarray(other[name], float), rtol=1e-9, atol=1e-9, err_msg=name
            )
    code = mesa.kpi_arrays["code_knowledge"]
    assert np.ptp(code) > 0, "the code must learn for the comparison to mean something"


@pytest.mark.parametrize(("p1", "p2"), list(WORKIEWICZ_2019), ids=lambda v: str(v))
def test_figure1_cell_matches_workiewicz_2019(p1, p2):
    """|mean − reference| < 4 SE, 80 firms × 400 periods."""
    mean, se = equilibrium_knowledge(p1, p2)
    ref = WORKIEWICZ_2019[(p1, p2)]
    assert se > 0
    assert abs(mean - ref) < 4 * se, f"p1={p1}, p2={p2}: {mean:.4f} ± {se:.4f}, reference {ref:.4f}"


def test_march_text_value():
    """p1 = 0.1, p2 = 0.5: "about 0.95" — within 4 SE plus the text's rounding (0.005)."""
    (p1, p2), ref = MARCH_1991_TEXT
    mean, se = equilibrium_knowledge(p1, p2)
    assert abs(mean - ref) < 4 * se + 0.005


def test_knowledge_falls_as_socialisation_speeds_up():
    """Figure 1's pattern at p2 = 0.5: equilibrium knowledge falls from p1 = 0.1 to 0.5 to
    0.9, each step by more than 3 SE of the difference (references 0.954, 0.811, 0.742)."""
    cells = [equilibrium_knowledge(p1, 0.5) for p1 in (0.1, 0.5, 0.9)]
    for (m_hi, se_hi), (m_lo, se_lo) in itertools.pairwise(cells):
        assert m_hi - m_lo > 3 * math.hypot(se_hi, se_lo), cells
    means = np.array([m for m, _ in cells])
    assert np.all(np.diff(means) < 0)
