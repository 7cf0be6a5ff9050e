"""benchmarks/ab_paired.py refuses bad input with exit status 2 and one line, before it starts
any worker (the measurement itself is a benchmark, not a test)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("ab_paired", ROOT / "benchmarks" / "ab_paired.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--against", "/nonexistent/tree"], "--against /nonexistent/tree: no orgsim package there"),
        (["--against", str(ROOT), "--pairs", "2"], "--pairs 2 must be >= 4"),
        (["--against", str(ROOT), "--threads", "0"], "--threads 0 >= 1"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    assert _module().main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
