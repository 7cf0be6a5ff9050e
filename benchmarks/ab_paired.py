"""Paired A/B of the numba kernel between two checkouts, robust to a shared machine's drift.

In each round a fresh worker process per checkout (each imports its own ``orgsim``, with its
own Numba cache) loads the kernel, then the two take turns: one kernel call each, A B B A ...,
for ``--pairs`` pairs. A pair's ratio compares two runs milliseconds apart, so the slow drift of
a shared host (often ±25 % between runs minutes apart here) cancels; a round's ratio is the
median of its pairs. The rounds start new processes because a process keeps its memory and
code layout for its life: on this host that alone moved a whole run of 150 pairs between 0.94
and 1.09 for the same two trees, with tight intervals each time. So the rounds are the
replicates: the figure is the geometric mean of the rounds' ratios (this tree over the
reference, > 1: this tree is faster) with the Student-t 95 % interval of their mean logarithm,
and the same for CPU time per firm (all threads' process CPU time, which a vCPU that shares its
physical core inflates for both trees alike). On one thread both workers of a round are pinned
to the same vCPU (round k: vCPU k mod n), so that neither keeps a faster or slower vCPU. The JSON
also keeps every pair's rates and the pair-level median with its distribution-free interval
(order statistics of the binomial). Use it to decide whether a change cost throughput::

    python benchmarks/ab_paired.py --against ../before        # 3 workloads x 1, 2 threads, ~7 min
    python benchmarks/ab_paired.py --against ../before --scenario beer --threads 2 --rounds 20

``--against DIR`` is the other checkout's root (for example a ``git archive`` of the commit
before a change); it is the reference. The default firm is the one of ``bench_engines.py``
(strategy ``bso``, stable environment, 260 periods, 10 teams, 64 firms a call on one thread and
256 on two); ``default_no_culture`` is that firm with the culture layer off; the beer game is
the 36-week ``scenario=beer_game`` with decision noise, as the calibration runs it (4,096 games
a call). Firms are identical copies on their own random streams, with team records kept, in
fresh output memory each call (as ``simulate`` runs them). The figures go to ``--json``
(default ``benchmarks/results/ab_paired.json``), with the machine, the versions orgsim records
with its results, and for both trees the commit (none for a ``git archive``) and the digest of
the kernels' sources that keys orgsim's Numba cache (:func:`orgsim._numba_cache.kernels_digest`).
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
    "default_no_culture": ["strategy=bso", "environment=stable", "culture.enabled=false"],
}
#: firms per kernel call by scenario and thread count (about 30-60 ms a call on this host)
FIRMS = {
    ("default", 1): 64,
    ("default", 2): 256,
    ("default_no_culture", 1): 128,
    ("default_no_culture", 2): 512,
    ("beer", 1): 4096,
    ("beer", 2): 4096,
}
#: unrecorded calls of each worker before the pairs start (caches, page tables, clocks)
WARM_CALLS = 3

#: a worker's set-up: ``firms(n)`` gives the packed workload ``sys.argv[1]`` (comma-separated
#: overrides) and ``n`` identical firms on their own random keys, for :func:`engine_numba.run`
WORKLOAD = r"""
import os, sys, time
import numpy as np
import orgsim
from orgsim import engine_numba as en

packed = en.pack([orgsim.compose(sys.argv[1].split(",")).replace(n_orgs=1)])


def firms(n):
    return np.arange(n, dtype=np.uint64) * np.uint64(7919) + np.uint64(1), np.zeros(n, dtype=np.int64)
"""

WORKER = (
    WORKLOAD
    + r"""
n = int(sys.argv[2])
keys, rows = firms(n)
for _ in range(int(sys.argv[3])):
    en.run(packed, keys, rows, teams=True)  # compile or load the kernel, then warm up
print("ready", flush=True)
for line in sys.stdin:
    if line.startswith("pin "):  # pin every thread (Linux affinity is per thread), warm up there
        for tid in os.listdir("/proc/self/task"):
            os.sched_setaffinity(int(tid), {int(c) for c in line.split()[1].split("+")})
        en.run(packed, keys, rows, teams=True)
        print("pinned", flush=True)
        continue
    t, c = time.perf_counter(), time.process_time()
    en.run(packed, keys, rows, teams=True)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(n / wall, n / max(cpu, 1e-9), flush=True)
"""
)


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
    """The median of paired ratios with its distribution-free 95 % interval (pairs taken as
    independent), the IQR and the lag-1 autocorrelation that tells how far they are not."""
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


def geometric_mean_ci(ratios: list[float], level: float = 0.95) -> dict:
    """Geometric mean of independent ratios (one per round of fresh processes) with the
    Student-t interval of their mean logarithm, back-transformed."""
    from scipy import stats

    logs = [math.log(r) for r in ratios]
    n = len(logs)
    if n < 3:
        raise ValueError(f"geometric_mean_ci: {n} rounds, need at least 3")
    mean, sd = statistics.fmean(logs), statistics.stdev(logs)
    half = stats.t.ppf(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return {
        "geometric_mean": math.exp(mean),
        "ci95": [math.exp(mean - half), math.exp(mean + half)],
        "rounds": n,
        "range": [min(ratios), max(ratios)],
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


def _round(
    trees: dict, cache_root: Path, scenario: str, firms: int, threads: int, pairs: int, k: int
) -> dict:
    """One round: a fresh worker per tree (started in alternating order), ``pairs`` pairs."""
    names = list(trees) if k % 2 == 0 else list(trees)[::-1]
    procs = {
        name: _worker(trees[name], cache_root / name, SCENARIOS[scenario], firms, threads) for name in names
    }
    wall: dict[str, list[float]] = {name: [] for name in trees}
    cpu: dict[str, list[float]] = {name: [] for name in trees}
    # One thread: both workers pinned to one vCPU (round k: vCPU k mod n), so that neither tree
    # keeps a faster or slower vCPU for the round (this host's two differ at times by a quarter)
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = cpus[k % len(cpus)] if threads == 1 and cpus else None
    try:
        if pin is not None:
            for name in names:
                procs[name].stdin.write(f"pin {pin}\n")
                procs[name].stdin.flush()
                if procs[name].stdout.readline().strip() != "pinned":
                    raise SystemExit(f"the worker of {trees[name]} could not be pinned to vCPU {pin}")
        for j in range(pairs):
            for name in names if j % 2 == 0 else names[::-1]:
                procs[name].stdin.write("go\n")
                procs[name].stdin.flush()
                w, c = (float(v) for v in procs[name].stdout.readline().split())
                wall[name].append(w)
                cpu[name].append(c)
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    return {"vcpu": pin, "firms_per_s": wall, "firms_per_cpu_s": cpu}


def _pairs(
    trees: dict, cache_root: Path, scenario: str, firms: int, threads: int, pairs: int, rounds: int
) -> dict:
    """``rounds`` rounds of fresh processes, ``pairs`` pairs each. A process keeps its memory
    and code layout (where the allocator and the loader put the kernels and arrays) for its
    life, and on this host that alone moved a whole run's ratio between about 0.93 and 1.09 for
    the same two trees; fresh processes per round draw the layout anew, so the rounds are the
    independent replicates, and the interval is over them."""
    runs = [_round(trees, cache_root, scenario, firms, threads, pairs, k) for k in range(rounds)]

    def ratios(kind: str, r: dict) -> list[float]:
        return [a / b for a, b in zip(r[kind]["this"], r[kind]["reference"], strict=True)]

    per_round = {
        kind: [statistics.median(ratios(kind, r)) for r in runs]
        for kind in ("firms_per_s", "firms_per_cpu_s")
    }
    return {
        "scenario": scenario,
        "firms_per_call": firms,
        "threads": threads,
        "wall": geometric_mean_ci(per_round["firms_per_s"]),
        "cpu": geometric_mean_ci(per_round["firms_per_cpu_s"]),
        "wall_pairs": summarise([x for r in runs for x in ratios("firms_per_s", r)]),
        "wall_round_medians": per_round["firms_per_s"],
        "cpu_round_medians": per_round["firms_per_cpu_s"],
        "median_firms_per_s": {
            name: statistics.median(x for r in runs for x in r["firms_per_s"][name]) for name in trees
        },
        "rounds": runs,
    }


def check_tree_and_workloads(against: str, scenario: str, known) -> tuple[Path, list[str]] | None:
    """The reference checkout and the workloads asked for, or ``None`` after one line on
    standard error naming what is wrong and what is allowed."""
    other = Path(against).resolve()
    if not (other / "orgsim" / "__init__.py").is_file():
        print(f"--against {other}: no orgsim package there", file=sys.stderr)
        return None
    scenarios = [s.strip() for s in scenario.split(",") if s.strip()]
    if not scenarios or any(s not in known for s in scenarios):
        print(f"--scenario {scenario}: each must be one of {', '.join(sorted(known))}", file=sys.stderr)
        return None
    return other, scenarios


def write_record(path: Path, record: dict) -> None:
    """Write a benchmark's JSON record atomically (a reader sees the old file or the new one)."""
    sys.path.insert(0, str(ROOT))
    from orgsim._io import atomic_write

    atomic_write(path, lambda p: Path(p).write_text(json.dumps(record, indent=1) + "\n"))
    print(f"wrote {path}")


def tree_record(tree: Path) -> dict:
    """Where a tree is, its commit and modified model files if it is a git checkout (a ``git
    archive`` has neither), and the digest of its kernels' sources, which names the compiled
    kernels whatever the checkout (the key of orgsim's Numba cache)."""
    sys.path.insert(0, str(ROOT))
    from orgsim._io import source_state
    from orgsim._numba_cache import kernels_digest

    commit, modified = source_state(tree) if (tree / ".git").exists() else (None, [])
    return {
        "path": str(tree),
        "commit": commit,
        "modified": modified,
        "kernels_sha256": kernels_digest(tree / "orgsim"),
    }


def versions() -> dict:
    """This machine and the versions that produce the figures (orgsim's own list)."""
    sys.path.insert(0, str(ROOT))
    from orgsim.simulation import package_versions

    return {"platform": platform.platform(), "cpus": os.cpu_count(), **package_versions()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", required=True, help="the reference checkout's root")
    ap.add_argument("--scenario", default="beer,default,default_no_culture", help="comma-separated workloads")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--firms", type=int, default=None, help="firms per kernel call (default: see FIRMS)")
    ap.add_argument("--rounds", type=int, default=10, help="rounds of fresh worker processes")
    ap.add_argument("--pairs", type=int, default=20, help="pairs per round")
    ap.add_argument("--cache", default=None, help="directory for the two Numba caches (default: a temp dir)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "ab_paired.json"))
    args = ap.parse_args(argv)
    checked = check_tree_and_workloads(args.against, args.scenario, SCENARIOS)
    if checked is None:
        return 2
    other, scenarios = checked
    try:
        threads = [int(t) for t in args.threads.split(",")]
    except ValueError:
        threads = [0]
    if args.pairs < 2 or args.rounds < 3 or min(threads) < 1:
        print(
            f"--pairs {args.pairs} must be >= 2, --rounds {args.rounds} >= 3 and --threads {args.threads} >= 1",
            file=sys.stderr,
        )
        return 2
    import tempfile

    cache_root = Path(args.cache) if args.cache else Path(tempfile.gettempdir()) / "orgsim_ab_paired"
    trees = {"reference": other, "this": ROOT}
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results = []
    print(
        "| workload | threads | firms/call | rounds × pairs | wall: geometric mean (95 % t CI) | round range | CPU time: geometric mean (95 % t CI) |"
    )
    print("|---|---:|---:|---:|---|---|---|")
    for scenario in scenarios:
        for n_threads in threads:
            firms = args.firms or FIRMS.get((scenario, n_threads), FIRMS[(scenario, 2)])
            r = _pairs(trees, cache_root, scenario, firms, n_threads, args.pairs, args.rounds)
            results.append(r)
            w, c = r["wall"], r["cpu"]
            print(
                f"| {scenario} | {n_threads} | {firms:,} | {args.rounds} × {args.pairs} "
                f"| {w['geometric_mean']:.3f} ({w['ci95'][0]:.3f}–{w['ci95'][1]:.3f}) | {w['range'][0]:.3f}–{w['range'][1]:.3f} "
                f"| {c['geometric_mean']:.3f} ({c['ci95'][0]:.3f}–{c['ci95'][1]:.3f}) |",
                flush=True,
            )
    print(
        "ratios are this tree over the reference (> 1: this tree is faster): each round's median paired ratio, "
        "their geometric mean and its t interval over the rounds (fresh processes)"
    )
    record = {
        "started_utc": started,
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**versions(), "load_average_at_end": os.getloadavg()},
        "trees": {name: tree_record(tree) for name, tree in trees.items()},
        "warm_calls": WARM_CALLS,
        "results": results,
    }
    write_record(Path(args.json), record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
