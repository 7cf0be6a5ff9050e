"""Instructions per simulated firm of the numba kernel, for two checkouts: a figure that does not
move with the shared machine's load.

Wall time on this 2-vCPU host drifts by ±25 % between runs minutes apart and its two threads
sometimes share a physical core, so a few per cent between two trees can be hard to tell from
noise (``ab_paired.py``). Valgrind's callgrind counts the instructions the kernel executes, the
same on every run for the same binary and inputs. For each tree and workload this runs the
kernel on one thread under callgrind with collection switched on only around two kernel calls
(``n1`` and ``n2`` firms; a 20-line C helper issues callgrind's client requests) and reports
(instructions at ``n2`` − at ``n1``) / (``n2`` − ``n1``): the cost of one more firm, without
start-up, compilation or the first-call overhead. ``--sim`` adds callgrind's simulated caches and
branch predictor (data reads and writes, L1 data misses, conditional branches and their
mispredictions per firm), which hints where cycles go when instructions do not tell::

    python benchmarks/instructions.py --against ../before            # beer game, default firm, culture off
    python benchmarks/instructions.py --against ../before --sim --scenario default_no_culture

Needs valgrind (with its headers, ``valgrind/callgrind.h``) and a C compiler; each tree's kernel
is compiled (or loaded from ``--cache``) outside valgrind first. Instructions are not cycles: a
tree can run fewer instructions and still take longer per firm (see docs/performance.md). The
figures go to ``--json`` (default ``benchmarks/results/instructions.json``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from ab_paired import SCENARIOS, WORKLOAD, check_tree_and_workloads, tree_record, versions, write_record  # noqa: E402

#: firms in the two measured kernel calls, by scenario
SIZES = {"beer": (64, 320), "default": (4, 12), "default_no_culture": (4, 12)}
EVENTS_SIM = ["Ir", "Dr", "Dw", "D1mr", "D1mw", "Bc", "Bcm"]

TOGGLE_C = r"""
#include <valgrind/callgrind.h>
void orgsim_cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void orgsim_cg_stop(const char *name) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT(name); }
"""

WORKER = (
    WORKLOAD
    + r"""
import ctypes

lib, sizes = sys.argv[2], [int(a) for a in sys.argv[3:]]
keys, rows = firms(max(sizes))
en.run(packed, keys[:1], rows[:1], teams=True)  # load the kernel, outside the counts
if lib:
    cg = ctypes.CDLL(lib)
    for n in sizes:
        cg.orgsim_cg_start()
        en.run(packed, keys[:n], rows[:n], teams=True)
        cg.orgsim_cg_stop(f"n={n}".encode())
"""
)


def _env(tree: Path, cache: Path) -> dict:
    return dict(
        os.environ,
        PYTHONPATH=str(tree),
        NUMBA_CACHE_DIR=str(cache),
        NUMBA_NUM_THREADS="1",
        NUMBA_THREADING_LAYER="workqueue",  # no OpenMP spin-waiting under valgrind's one CPU
    )


def _totals(path: Path, events: list[str]) -> dict[str, int]:
    names, totals = None, None
    for line in path.read_text().splitlines():
        if line.startswith("events:"):
            names = line.split()[1:]
        elif line.startswith("totals:"):
            totals = [int(v) for v in line.split()[1:]]
    if names is None or totals is None:
        raise SystemExit(f"{path}: no totals in callgrind's output")
    counts = dict(zip(names, totals + [0] * (len(names) - len(totals)), strict=True))
    return {e: counts.get(e, 0) for e in events}


def measure(tree: Path, cache: Path, lib: Path, scenario: str, sim: bool, work: Path) -> dict:
    n1, n2 = SIZES[scenario]
    overrides = ",".join(SCENARIOS[scenario])
    env = _env(tree, cache)
    # compile or load the kernel natively first: a compile under valgrind would take an hour
    subprocess.run(
        [sys.executable, "-W", "ignore", "-c", WORKER, overrides, "", "1"], env=env, cwd=tree, check=True
    )
    out = work / f"{'this' if tree == ROOT else 'reference'}_{scenario}.out"
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    if sim:
        cmd += ["--cache-sim=yes", "--branch-sim=yes"]
    cmd += [sys.executable, "-W", "ignore", "-c", WORKER, overrides, str(lib), str(n1), str(n2)]
    done = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"valgrind failed on {tree} ({scenario}): {done.stderr.strip().splitlines()[-1:]}")
    events = EVENTS_SIM if sim else ["Ir"]
    a, b = _totals(Path(f"{out}.1"), events), _totals(Path(f"{out}.2"), events)
    return {e: (b[e] - a[e]) / (n2 - n1) for e in events}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", required=True, help="the reference checkout's root")
    ap.add_argument("--scenario", default="beer,default,default_no_culture", help="comma-separated")
    ap.add_argument("--sim", action="store_true", help="also simulate caches and branch prediction")
    ap.add_argument("--cache", default=None, help="directory for the two Numba caches (default: a temp dir)")
    ap.add_argument("--jobs", type=int, default=2, help="valgrind runs at once (each takes one core)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "instructions.json"))
    args = ap.parse_args(argv)
    checked = check_tree_and_workloads(args.against, args.scenario, SIZES)
    if checked is None:
        return 2
    other, scenarios = checked
    if args.jobs < 1:
        print(f"--jobs {args.jobs} must be >= 1", file=sys.stderr)
        return 2
    missing = [tool for tool in ("valgrind", "cc") if shutil.which(tool) is None]
    if missing:
        print(
            f"{' and '.join(missing)} not found: this benchmark needs valgrind and a C compiler",
            file=sys.stderr,
        )
        return 2
    cache_root = Path(args.cache) if args.cache else Path(tempfile.gettempdir()) / "orgsim_ab_paired"
    trees = {"reference": other, "this": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "toggle.c").write_text(TOGGLE_C)
        lib = work / "libtoggle.so"
        cc = subprocess.run(
            ["cc", "-O1", "-shared", "-fPIC", "-o", str(lib), str(work / "toggle.c")],
            capture_output=True,
            text=True,
        )
        if cc.returncode != 0:
            print(
                f"the callgrind helper did not compile (valgrind/callgrind.h missing?): {cc.stderr.strip().splitlines()[:1]}",
                file=sys.stderr,
            )
            return 2
        # the valgrind runs are single-threaded: run up to --jobs of them at once
        from concurrent.futures import ThreadPoolExecutor

        jobs = [(name, tree, scenario) for scenario in scenarios for name, tree in trees.items()]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {
                (name, scenario): pool.submit(measure, tree, cache_root / name, lib, scenario, args.sim, work)
                for name, tree, scenario in jobs
            }
            counts = {key: f.result() for key, f in futures.items()}
        results = []
        print("| workload | events per firm | reference | this | this / reference |")
        print("|---|---|---:|---:|---:|")
        for scenario in scenarios:
            per = {name: counts[(name, scenario)] for name in trees}
            for event in per["this"]:
                ref, new = per["reference"][event], per["this"][event]
                ratio = new / ref if ref else float("nan")
                print(f"| {scenario} | {event} | {ref:,.0f} | {new:,.0f} | {ratio:.3f} |", flush=True)
            results.append({"scenario": scenario, "sizes": SIZES[scenario], "per_firm": per})
    record = {
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "valgrind": subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip(),
        "machine": versions(),
        "trees": {name: tree_record(tree) for name, tree in trees.items()},
        "threads": 1,
        "results": results,
    }
    write_record(Path(args.json), record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
