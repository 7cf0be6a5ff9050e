"""Paired A/B of the numba kernel between two checkouts, robust to a shared machine's drift.

One worker process per checkout and configuration (each imports its own ``orgsim``, with its own
Numba cache) loads the kernel, then the two workers take turns: one kernel call each, A B B A
A B ..., for ``--pairs`` pairs. Each pair's ratio compares two runs milliseconds apart, so the
slow drift of a shared host (often ±25 % between runs minutes apart here) cancels. For every
workload and thread count it reports the median paired ratio (this tree over the reference)
with a distribution-free 95 % confidence interval for the median (order statistics of the
binomial; it assumes the pairs are independent, so the lag-1 autocorrelation of the ratios is
printed beside it), the interquartile range, and the same for the ratio of CPU time per firm
(all threads' process CPU time, which a vCPU that shares its physical core inflates for both
trees alike). Use it to decide whether a change cost throughput::

    python benchmarks/ab_paired.py --against ../before                 # beer game and default firm, 1 and 2 threads
    python benchmarks/ab_paired.py --against ../before --scenario beer --threads 2 --pairs 400

``--against DIR`` is the other checkout's root (for example a ``git archive`` of the commit
before a change); it is the reference. The default firm is the one of ``bench_engines.py``
(strategy ``bso``, stable environment, 260 periods, 10 teams, 64 firms a call on one thread and
256 on two); the beer game is the 36-week ``scenario=beer_game`` with decision noise, as the
calibration runs it (4,096 games a call). Firms are identical copies on their own random
streams, with team records kept, in fresh output memory each call (as ``simulate`` runs them).
The figures and every pair's rates go to ``--json`` (default
``benchmarks/results/ab_paired.json``), with the machine, both trees' commits and the versions.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCENARIOS = {
    "default": ["strategy=bso", "environment=stable"],
    "beer": ["scenario=beer_game", "management.execution_noise=0.1"],
}
#: firms per kernel call by scenario and thread count (about 30-60 ms a call on this host)
FIRMS = {("default", 1): 64, ("default", 2): 256, ("beer", 1): 4096, ("beer", 2): 4096}
#: unrecorded calls of each worker before the pairs start (caches, page tables, clocks)
WARM_CALLS = 3

WORKER = r"""
import sys, time
import numpy as np
import orgsim
from orgsim import engine_numba as en

overrides, n = sys.argv[1].split(","), int(sys.argv[2])
cfg = orgsim.compose(overrides)
packed = en.pack([cfg.replace(n_orgs=1)])
keys = np.arange(n, dtype=np.uint64) * np.uint64(7919) + np.uint64(1)
rows = np.zeros(n, dtype=np.int64)
for _ in range(int(sys.argv[3])):
    en.run(packed, keys, rows, teams=True)  # compile or load the kernel, then warm up
print("ready", flush=True)
for _ in sys.stdin:
    t, c = time.perf_counter(), time.process_time()
    en.run(packed, keys, rows, teams=True)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(n / wall, n / max(cpu, 1e-9), flush=True)
"""


def median_ci(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval for the median of independent draws: the order
    statistics ``x_(j)`` and ``x_(n-j+1)`` with the largest ``j`` such that
    ``2 P(Binomial(n, 1/2) <= j - 1) <= 1 - level`` (so the coverage is at least ``level``)."""
    x = sorted(values)
    n = len(x)
    if n < 6:
        raise ValueError(f"median_ci: {n} values, need at least 6 for a 95 % interval")
    alpha, cdf, j = 1.0 - level, 0.0, 0
    while True:  # cdf = P(B <= j) for B ~ Binomial(n, 1/2)
        cdf += math.comb(n, j) / 2.0**n
        if 2.0 * cdf > alpha:
            break
        j += 1
    # j is the largest count with 2 P(B <= j - 1) <= alpha
    if j == 0:
        raise ValueError(f"median_ci: {n} values are too few for a {level:.0%} interval")
    return x[j - 1], x[n - j]


def summarise(ratios: list[float]) -> dict:
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    lo, hi = median_ci(ratios)
    mean = statistics.fmean(ratios)
    dev = [r - mean for r in ratios]
    den = sum(d * d for d in dev)
    lag1 = sum(a * b for a, b in itertools.pairwise(dev)) / den if den > 0 else 0.0
    return {
        "median": statistics.median(ratios),
        "ci95": [lo, hi],
        "iqr": [q1, q3],
        "lag1_autocorrelation": lag1,
        "share_above_1": sum(r > 1.0 for r in ratios) / len(ratios),
        "pairs": len(ratios),
    }


def _worker(tree: Path, cache: Path, overrides: list[str], firms: int, threads: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache), NUMBA_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-W", "ignore", "-c", WORKER, ",".join(overrides), str(firms), str(WARM_CALLS)]
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise SystemExit(f"the worker of {tree} did not start (got {line!r})")
    return proc


def _pairs(trees: dict, cache_root: Path, scenario: str, firms: int, threads: int, pairs: int) -> dict:
    procs = {
        name: _worker(tree, cache_root / name, SCENARIOS[scenario], firms, threads)
        for name, tree in trees.items()
    }
    wall: dict[str, list[float]] = {name: [] for name in procs}
    cpu: dict[str, list[float]] = {name: [] for name in procs}
    try:
        for k in range(pairs):
            order = list(procs) if k % 2 == 0 else list(procs)[::-1]
            for name in order:
                procs[name].stdin.write("go\n")
                procs[name].stdin.flush()
                w, c = (float(v) for v in procs[name].stdout.readline().split())
                wall[name].append(w)
                cpu[name].append(c)
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    return {
        "scenario": scenario,
        "firms_per_call": firms,
        "threads": threads,
        "wall": summarise([a / b for a, b in zip(wall["this"], wall["reference"])]),
        "cpu": summarise([a / b for a, b in zip(cpu["this"], cpu["reference"])]),
        "median_firms_per_s": {name: statistics.median(v) for name, v in wall.items()},
        "median_firms_per_cpu_s": {name: statistics.median(v) for name, v in cpu.items()},
        "firms_per_s": wall,
        "firms_per_cpu_s": cpu,
    }


def _tree_record(tree: Path) -> dict:
    """Where a tree is, its commit if it is a git checkout, and a digest of its ``orgsim``
    sources (a ``git archive`` has no commit, but the digest tells two trees apart)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((tree / "orgsim").rglob("*.py")):
        digest.update(path.relative_to(tree).as_posix().encode() + b"\0" + path.read_bytes())
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True)
    commit = out.stdout.strip() if out.returncode == 0 and (tree / ".git").exists() else None
    return {"path": str(tree), "commit": commit, "orgsim_sha256": digest.hexdigest()}


def _fmt(s: dict) -> str:
    return f"{s['median']:.3f} ({s['ci95'][0]:.3f}–{s['ci95'][1]:.3f}) | {s['iqr'][0]:.3f}–{s['iqr'][1]:.3f} | {s['lag1_autocorrelation']:+.2f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", required=True, help="the reference checkout's root")
    ap.add_argument("--scenario", default="beer,default", help="comma-separated: beer, default")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--firms", type=int, default=None, help="firms per kernel call (default: see FIRMS)")
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--cache", default=None, help="directory for the two Numba caches (default: a temp dir)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "ab_paired.json"))
    args = ap.parse_args(argv)
    other = Path(args.against).resolve()
    if not (other / "orgsim" / "__init__.py").is_file():
        print(f"--against {other}: no orgsim package there", file=sys.stderr)
        return 2
    scenarios = [s.strip() for s in args.scenario.split(",") if s.strip()]
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad or not scenarios:
        print(
            f"--scenario {args.scenario}: each must be one of {', '.join(sorted(SCENARIOS))}", file=sys.stderr
        )
        return 2
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        threads = [0]
    if args.pairs < 8 or min(threads) < 1:
        print(f"--pairs {args.pairs} must be >= 8 and --threads {args.threads} >= 1", file=sys.stderr)
        return 2
    import tempfile

    import numba

    cache_root = Path(args.cache) if args.cache else Path(tempfile.gettempdir()) / "orgsim_ab_paired"
    trees = {"reference": other, "this": ROOT}
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results = []
    print(
        "| workload | threads | firms/call | pairs | wall: median (95 % CI) | IQR | lag-1 | CPU: median (95 % CI) | IQR | lag-1 |"
    )
    print("|---|---:|---:|---:|---|---|---:|---|---|---:|")
    for scenario in scenarios:
        for n_threads in threads:
            firms = args.firms or FIRMS.get((scenario, n_threads), FIRMS[(scenario, 2)])
            r = _pairs(trees, cache_root, scenario, firms, n_threads, args.pairs)
            results.append(r)
            print(
                f"| {scenario} | {n_threads} | {firms:,} | {args.pairs} | {_fmt(r['wall'])} | {_fmt(r['cpu'])} |",
                flush=True,
            )
    print(
        "ratios are this tree over the reference (> 1: this tree is faster); CI: order statistics of the median"
    )
    record = {
        "started_utc": started,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "numba": numba.__version__,
            "numpy": __import__("numpy").__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
        },
        "trees": {name: _tree_record(tree) for name, tree in trees.items()},
        "warm_calls": WARM_CALLS,
        "results": results,
    }
    sys.path.insert(0, str(ROOT))
    from orgsim._io import atomic_write

    atomic_write(Path(args.json), lambda p: Path(p).write_text(json.dumps(record, indent=1) + "\n"))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
