"""benchmarks/ab_paired.py: bad input is refused with exit status 2 and one line before any worker
starts, and the confidence interval it reports for the median paired ratio covers as it says (the
measurement itself is a benchmark, not a test)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _module():
    return _load("ab_paired")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--against", "/nonexistent/tree"], "--against /nonexistent/tree: no orgsim package there"),
        (["--against", str(ROOT), "--pairs", "1"], "--pairs 1 must be >= 2"),
        (["--against", str(ROOT), "--rounds", "2"], "--rounds 2 >= 3"),
        (["--against", str(ROOT), "--threads", "0"], "--threads 0 >= 1"),
        (["--against", str(ROOT), "--threads", "two"], "--threads two >= 1"),
        (
            ["--against", str(ROOT), "--scenario", "beer,chess"],
            "--scenario beer,chess: each must be one of beer, default, default_no_culture",
        ),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    assert _module().main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_median_interval_is_the_tabled_order_statistics():
    # n = 30: the distribution-free 95 % interval for the median is (x_(10), x_(21)), since
    # 2 P(Binomial(30, 1/2) <= 9) = 0.043 <= 0.05 < 2 P(B <= 10) = 0.099 (Conover, Practical
    # Nonparametric Statistics, 3rd ed., table A3)
    x = list(np.arange(1.0, 31.0)[::-1])
    assert _module().median_ci(x) == (10.0, 21.0)
    with pytest.raises(ValueError, match="5 values, need at least 6"):
        _module().median_ci([1.0, 2, 3, 4, 5])


@pytest.mark.parametrize("n", [12, 40, 201])
def test_median_interval_covers_the_true_median(n):
    # skewed draws (lognormal, true median 1); 2,000 replications: the Monte Carlo SE of a 95 %
    # coverage is 0.005, so coverage below 0.93 (4 SE under the claimed 0.95) fails
    rng = np.random.default_rng(n)
    ci = _module().median_ci
    hits = sum(lo <= 1.0 <= hi for lo, hi in (ci(list(rng.lognormal(0.0, 0.3, n))) for _ in range(2000)))
    assert hits / 2000 >= 0.93


def test_summary_of_paired_ratios():
    s = _module().summarise([0.9, 1.1] * 10)
    assert s["median"] == pytest.approx(1.0) and s["pairs"] == 20 and s["share_above_1"] == 0.5
    assert s["lag1_autocorrelation"] == pytest.approx(-0.95)  # strictly alternating
    assert s["ci95"] == [0.9, 1.1]


def test_geometric_mean_interval_is_students_t_on_the_logs():
    mod = _module()
    r = mod.geometric_mean_ci([0.9, 1.0, 1.1, 1.2])
    logs = np.log([0.9, 1.0, 1.1, 1.2])
    half = 3.182446305284263 * logs.std(ddof=1) / 2.0  # t(0.975, 3), Student's table
    assert r["geometric_mean"] == pytest.approx(np.exp(logs.mean()))
    assert r["ci95"] == pytest.approx([np.exp(logs.mean() - half), np.exp(logs.mean() + half)])
    assert r["rounds"] == 4 and r["range"] == [0.9, 1.2]
    with pytest.raises(ValueError, match="2 rounds, need at least 3"):
        mod.geometric_mean_ci([1.0, 1.1])


def test_geometric_mean_interval_covers_the_true_ratio():
    # rounds' ratios lognormal around a true ratio of 0.97, 10 rounds, 2,000 replications:
    # below 0.93 (4 Monte Carlo SE under 0.95) fails
    rng = np.random.default_rng(7)
    ci = _module().geometric_mean_ci
    hits = 0
    for _ in range(2000):
        lo, hi = ci(list(0.97 * rng.lognormal(0.0, 0.05, 10)))["ci95"]
        hits += lo <= 0.97 <= hi
    assert hits / 2000 >= 0.93


def _instructions():
    return _load("instructions")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--against", "/nonexistent/tree"], "--against /nonexistent/tree: no orgsim package there"),
        (
            ["--against", str(ROOT), "--scenario", "chess"],
            "--scenario chess: each must be one of beer, default",
        ),
    ],
)
def test_instruction_count_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    assert _instructions().main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_callgrind_totals_are_read_by_event_name(tmp_path):
    out = tmp_path / "callgrind.out.1"
    out.write_text("version: 1\nevents: Ir Dr Dw\nsummary: 0\ntotals: 1200 300 40\n")
    assert _instructions()._totals(out, ["Ir", "Dw"]) == {"Ir": 1200, "Dw": 40}
    (tmp_path / "empty").write_text("events: Ir\n")
    with pytest.raises(SystemExit, match="no totals"):
        _instructions()._totals(tmp_path / "empty", ["Ir"])


def test_tree_record_names_the_compiled_kernels(tmp_path):
    # the digest is the key of orgsim's Numba cache: it moves when a kernel's source does and
    # not when a module outside the kernels does; a copy without git has no commit
    import shutil

    from orgsim._numba_cache import kernel_sources, kernels_digest

    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "orgsim", copy / "orgsim", ignore=shutil.ignore_patterns("__pycache__"))
    rec = _module().tree_record(copy)
    assert rec["commit"] is None and rec["kernels_sha256"] == kernels_digest(ROOT / "orgsim")
    sources = {p.name for p in kernel_sources(copy / "orgsim")}
    assert {"engine_numba.py", "operations.py", "management.py"} <= sources and "plots.py" not in sources
    (copy / "orgsim" / "plots.py").write_text((copy / "orgsim" / "plots.py").read_text() + "\n# note\n")
    assert _module().tree_record(copy)["kernels_sha256"] == rec["kernels_sha256"]
    (copy / "orgsim" / "operations.py").write_text(
        (copy / "orgsim" / "operations.py").read_text() + "\n# note\n"
    )
    assert _module().tree_record(copy)["kernels_sha256"] != rec["kernels_sha256"]
