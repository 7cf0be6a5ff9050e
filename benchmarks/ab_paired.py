"""Paired A/B of the numba kernel between two checkouts, robust to a shared machine's drift.

One worker process per checkout (each imports its own ``orgsim``, with its own Numba cache) loads
the kernel, then the workers take turns: one kernel call each, A B B A A B ..., for ``--pairs``
pairs. Each pair's ratio compares two runs seconds apart, so the slow drift of a shared host
(often ±25 % between runs minutes apart here) cancels; the median ratio and its interquartile
range are reported, with each tree's best and median rate. Use it to decide whether a change
cost throughput (``bench_engines.py --against`` compares best-of-five runs in fresh processes per
round, which the drift can swamp)::

    python benchmarks/ab_paired.py --against ../before                      # default firm, 1 thread
    python benchmarks/ab_paired.py --against ../before --threads 2 --firms 256
    python benchmarks/ab_paired.py --against ../before --scenario beer --firms 4096

``--against DIR`` is the other checkout's root (for example a ``git archive`` of the commit
before a change); it is the reference (ratios are this tree over it). The default firm is the
one of ``bench_engines.py`` (strategy ``bso``, stable environment, 260 periods, 10 teams); the
beer game is the 36-week ``scenario=beer_game`` with decision noise, as the calibration runs it.
Firms are identical copies on their own random streams, with team records kept.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCENARIOS = {
    "default": ["strategy=bso", "environment=stable"],
    "beer": ["scenario=beer_game", "management.execution_noise=0.1"],
}

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
en.run(packed, keys, rows, teams=True)  # compile or load the kernel
print("ready", flush=True)
for _ in sys.stdin:
    t = time.perf_counter()
    en.run(packed, keys, rows, teams=True)
    print(n / (time.perf_counter() - t), flush=True)
"""


def _worker(tree: Path, cache: Path, overrides: list[str], firms: int, threads: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache), NUMBA_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-W", "ignore", "-c", WORKER, ",".join(overrides), str(firms)]
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise SystemExit(f"the worker of {tree} did not start (got {line!r})")
    return proc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", required=True, help="the reference checkout's root")
    ap.add_argument("--scenario", choices=sorted(SCENARIOS), default="default")
    ap.add_argument("--firms", type=int, default=None, help="firms per kernel call (default 64, beer 4096)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--cache", default=None, help="directory for the two Numba caches (default: a temp dir)")
    args = ap.parse_args(argv)
    other = Path(args.against).resolve()
    if not (other / "orgsim" / "__init__.py").is_file():
        print(f"--against {other}: no orgsim package there", file=sys.stderr)
        return 2
    if args.pairs < 4 or args.threads < 1:
        print(f"--pairs {args.pairs} must be >= 4 and --threads {args.threads} >= 1", file=sys.stderr)
        return 2
    firms = args.firms or (4096 if args.scenario == "beer" else 64)
    import tempfile

    cache_root = Path(args.cache) if args.cache else Path(tempfile.gettempdir()) / "orgsim_ab_paired"
    trees = {"reference": other, "this": ROOT}
    procs = {
        name: _worker(tree, cache_root / name, SCENARIOS[args.scenario], firms, args.threads)
        for name, tree in trees.items()
    }
    rates: dict[str, list[float]] = {name: [] for name in procs}
    try:
        for k in range(args.pairs):
            order = list(procs) if k % 2 == 0 else list(procs)[::-1]
            for name in order:
                procs[name].stdin.write("go\n")
                procs[name].stdin.flush()
                rates[name].append(float(procs[name].stdout.readline()))
    finally:
        for proc in procs.values():
            proc.stdin.close()
            proc.wait()
    ratios = [a / b for a, b in zip(rates["this"], rates["reference"])]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    print(f"{args.scenario}, {firms} firms per call, {args.threads} thread(s), {args.pairs} pairs")
    print("| tree | best firms/s | median firms/s |")
    print("|---|---:|---:|")
    for name, tree in trees.items():
        print(f"| {name} ({tree}) | {max(rates[name]):,.0f} | {statistics.median(rates[name]):,.0f} |")
    print(
        f"this / reference, median of the paired ratios: {statistics.median(ratios):.3f} (IQR {q1:.3f}–{q3:.3f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
