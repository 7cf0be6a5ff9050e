"""orgsim: agent-based firms for testing whether culture-aligned management (BSO) beats
efficiency-only management (BPO, BPM) on a firm's financial health.

The model's layers live in flat modules: :mod:`orgsim.environment` (demand, disruptions),
:mod:`orgsim.operations` (ordering, rationing, costs), :mod:`orgsim.management`
(accountability), :mod:`orgsim.finance` (cash, credit, insolvency); the engines orchestrate them:
:mod:`orgsim.engine_mesa` (the readable reference) and :mod:`orgsim.engine_numba` (the batch
engine). :mod:`orgsim.results` queries stored runs; :func:`orgsim.compare`
(:mod:`orgsim.comparison`) compares strategies on common random numbers; :mod:`orgsim.forecasting`
forecasts KPI series; :func:`orgsim.calibrate` (:mod:`orgsim.calibration`) fits parameters to data;
:mod:`orgsim.sensitivity` screens and decomposes what drives an outcome.
"""

from __future__ import annotations

from importlib import import_module as _import_module
from importlib import metadata as _metadata

from .config import Config, ConfigError, compose, config_from_dict

# The rest loads on first use (PEP 562), so that the command line validates a config without
# importing Numba, pandas and the kernels: name -> module that defines it.
_LAZY = {
    "AccountabilityRule": "management",
    "CalibrationResult": "calibration",
    "calibrate": "calibration",
    "ComparisonResult": "comparison",
    "compare": "comparison",
    "Firm": "engine_mesa",
    "Team": "engine_mesa",
    "KPI_COLUMNS": "simulation",
    "TEAM_COLUMNS": "simulation",
    "ModelError": "simulation",
    "SimulationResult": "simulation",
    "simulate": "simulation",
}
_SUBMODULES = ("calibration", "comparison", "forecasting", "results", "sensitivity")

try:
    __version__ = _metadata.version("orgsim")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "KPI_COLUMNS",
    "TEAM_COLUMNS",
    "AccountabilityRule",
    "CalibrationResult",
    "ComparisonResult",
    "Config",
    "ConfigError",
    "Firm",
    "ModelError",
    "SimulationResult",
    "Team",
    "__version__",
    "calibrate",
    "calibration",
    "compare",
    "comparison",
    "compose",
    "config_from_dict",
    "forecasting",
    "results",
    "sensitivity",
    "simulate",
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(_import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return _import_module(f".{name}", __name__)
    raise AttributeError(f"module 'orgsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
