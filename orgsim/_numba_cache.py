"""Numba's on-disk cache directory for orgsim's kernels, set before any kernel is compiled.

Every module that compiles kernels imports this module first. Numba invalidates a cached
function when its own file changes, but not when a kernel it inlines from another module does;
a cache directory keyed by a hash of every module the kernels depend on
(:func:`kernel_sources`) never serves stale machine code, and analysis tools outside that set
(results, plots, comparison, ...) change without invalidating it. ``NUMBA_CACHE_DIR``, if set,
wins.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["kernel_sources", "kernels_digest"]


def kernel_sources(package: Path) -> list[Path]:
    """The modules whose code Numba compiles or freezes into machine code: those that define
    kernels (a function decorated with ``njit``, ``jit`` or ``intrinsic``), and every orgsim
    module they import, directly or not (their constants are compiled in)."""
    import ast

    decorators = {"njit", "jit", "intrinsic", "vectorize", "guvectorize"}
    imports: dict[str, set[str]] = {}
    kernels = set()
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_bytes())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                for dec in node.decorator_list:
                    target = dec.func if isinstance(dec, ast.Call) else dec
                    name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                    if name in decorators:
                        kernels.add(path.stem)
            elif isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(a.name for a in node.names)
        imports[path.stem] = found
    todo, seen = list(kernels), set()
    while todo:
        name = todo.pop()
        if name in seen or name not in imports:
            continue
        seen.add(name)
        todo.extend(imports[name])
    return sorted(package / f"{name}.py" for name in seen)


def kernels_digest(package: Path) -> str:
    """SHA-256 of the kernels' sources (:func:`kernel_sources`) of the orgsim package in
    ``package``: what names a version of the compiled kernels (the cache directory below, and
    the trees a benchmark compares)."""
    import hashlib

    digest = hashlib.sha256()
    for path in kernel_sources(Path(package)):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _configure_numba_cache() -> None:
    """Keep Numba's on-disk cache per version of the kernels' sources.

    Numba invalidates a cached function when its own file changes, but not when a kernel it
    inlines from another module does; a cache directory keyed by a hash of every module the
    kernels depend on (:func:`kernel_sources`, :func:`kernels_digest`) never serves stale
    machine code. ``NUMBA_CACHE_DIR``, if set, wins.
    """
    import os

    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = root / "orgsim" / "numba" / kernels_digest(Path(__file__).parent)[:16]
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError:  # no writable cache home: Numba's default (__pycache__) is used
        return
    import numba

    numba.config.CACHE_DIR = str(target)


_configure_numba_cache()
