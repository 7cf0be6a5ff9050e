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


def _configure_numba_cache() -> None:
    """Keep Numba's on-disk cache per version of orgsim's source.

    Numba invalidates a cached function when its own file changes, but not when a kernel it
    inlines from another module does; a cache directory keyed by a hash of all of orgsim's
    sources never serves stale machine code. ``NUMBA_CACHE_DIR``, if set, wins.
    """
    import hashlib
    import os
    from pathlib import Path

    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = root / "orgsim" / "numba" / digest.hexdigest()[:16]
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable cache home: Numba's default (__pycache__) is used
        return
    import numba

    numba.config.CACHE_DIR = str(target)


_configure_numba_cache()  # before any module that compiles kernels is imported

from . import results  # noqa: E402
from .config import Config, ConfigError, compose, config_from_dict  # noqa: E402
from .management import AccountabilityRule  # noqa: E402
from .simulation import KPI_COLUMNS, TEAM_COLUMNS, SimulationResult, simulate  # noqa: E402

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
