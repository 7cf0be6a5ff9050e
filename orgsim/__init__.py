"""orgsim: agent-based firms for testing whether culture-aligned management (BSO) beats
efficiency-only management (BPO, BPM) on a firm's financial health.

The model's layers live in flat modules: :mod:`orgsim.environment` (demand, disruptions),
:mod:`orgsim.operations` (ordering, rationing, costs), :mod:`orgsim.management`
(accountability), :mod:`orgsim.finance` (cash, credit, insolvency); the engines orchestrate them:
:mod:`orgsim.engine_mesa` (the readable reference) and :mod:`orgsim.engine_numba` (the batch
engine). :mod:`orgsim.results` queries stored runs.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from . import results
from .config import Config, ConfigError, compose, config_from_dict
from .management import AccountabilityRule
from .simulation import KPI_COLUMNS, TEAM_COLUMNS, SimulationResult, simulate

try:
    __version__ = _metadata.version("orgsim")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "KPI_COLUMNS",
    "TEAM_COLUMNS",
    "AccountabilityRule",
    "Config",
    "ConfigError",
    "SimulationResult",
    "__version__",
    "compose",
    "config_from_dict",
    "results",
    "simulate",
]
