"""Shared fixtures and the hypothesis profile of the orgsim test suite.

Populations are kept small (one to three firms, tens of periods) so the whole suite runs in a
few minutes on two cores with ``pytest -n 2``; the published-result checks in
``test_published_*.py`` are the only long runs.
"""

from __future__ import annotations

import logging
import os

import pytest
from hypothesis import HealthCheck, settings

import orgsim

# Property tests: modest example counts, no deadline (the first call of a Numba kernel loads its
# cache, which can take longer than hypothesis' default 200 ms deadline).
settings.register_profile(
    "orgsim",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=True,
)
# A longer search for bug hunting: HYPOTHESIS_PROFILE=thorough pytest ...
settings.register_profile("thorough", parent=settings.get_profile("orgsim"), max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "orgsim"))

# Mesa logs every step at INFO; keep captured logs readable when a test fails.
logging.getLogger("MESA").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def small_cfg() -> orgsim.Config:
    """The default (multinational) firm, two firms, 60 periods."""
    return orgsim.compose(["n_orgs=2", "periods=60"])


@pytest.fixture(scope="session")
def small_result(small_cfg) -> orgsim.SimulationResult:
    return orgsim.simulate(small_cfg)


@pytest.fixture(scope="session")
def beer_cfg() -> orgsim.Config:
    """The beer game with its default (Sterman 1989 mean) decision parameters."""
    return orgsim.compose(["scenario=beer_game"])


@pytest.fixture
def quick_figures(monkeypatch):
    """Draw a command-line run's figures with ``helpers.quick_fan_chart`` (a 2 × 2 pixel PNG)
    instead of the fan chart.

    Drawing the fan chart (matplotlib's tight layout of a dozen panels) takes a second or more
    per run, most of a tiny sweep's time. Tests whose subject is not the figure (resuming,
    refusing, verifying runs) use this fixture; the stand-in still checks that it is given a
    non-empty KPI table holding every KPI asked for, and writes a real PNG under the same name,
    so the files a run lists and verifies are the same. The real figures are tested by
    ``test_sweep.py::test_single_run_writes_every_file``, ``test_results.py`` and ``test_plots.py``.
    """
    from helpers import quick_fan_chart

    import orgsim.plots

    monkeypatch.setattr(orgsim.plots, "fan_chart", quick_fan_chart)
