"""Benchmark the two engines on the same config: throughput, ratio, compile time, memory, scaling.

Run with one command from the repository root::

    python benchmarks/bench_engines.py            # full run (~2 min on 2 cores; --big adds ~1 min)
    python benchmarks/bench_engines.py --quick    # smaller sizes (~40 s)
    python benchmarks/bench_engines.py --against ../old --ab-only   # A/B against another tree

``--against DIR`` also measures the same numba and Mesa runs on the orgsim of another checkout
(``DIR``, e.g. ``git archive`` of the commit before a change), alternating the two trees for
``--rounds`` rounds in one benchmark run, so that both see the same machine state; the JSON's
``"ab"`` keeps every round.

It prints a Markdown table and writes ``benchmarks/results/engines.json``. Each measurement runs
in a fresh subprocess so compile time, cached start and peak memory (``ru_maxrss``) are those of
one process. Team-periods per second = firms × periods × teams / wall time of ``simulate``; the
numba figures are the best of five runs in that process (timings on a shared 2-core machine
vary by about ±10 %), and the JSON keeps every run's wall time.
The config is the default multinational firm (10 teams) with every layer on (culture, strategy
``bso`` with BPO, BPM and the culture programme, finance) in the ``stable`` environment, so
that firms stay solvent (insolvent firms are dormant and cost nothing, which would flatter the
figures).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ["strategy=bso", "environment=stable"]


def _child(spec: dict) -> dict:
    """Run one measurement in this process (called in a fresh subprocess)."""
    import resource

    t0 = time.perf_counter()
    import numba

    import orgsim

    import_s = time.perf_counter() - t0
    if spec.get("threads"):
        numba.set_num_threads(spec["threads"])
    cfg = orgsim.compose(BASE + spec["overrides"])
    out = {"import_s": import_s}
    if spec["engine"] == "numba":
        t1 = time.perf_counter()
        orgsim.simulate(cfg.replace(n_orgs=1, periods=2), engine="numba", teams=False)
        out["first_call_s"] = time.perf_counter() - t1  # compile (cold) or cache load (warm)
    walls, cpus = [], []
    for _ in range(spec.get("repeats", 1)):
        c0 = time.process_time()
        res = orgsim.simulate(cfg, engine=spec["engine"], teams=False)
        cpus.append(time.process_time() - c0)  # all threads' CPU time: steadier on a shared machine
        walls.append(res.wall_time)
    n_teams = res.network.n_teams
    out.update(
        engine=spec["engine"],
        firms=cfg.n_orgs,
        periods=cfg.periods,
        teams=n_teams,
        team_periods=res.team_periods,
        walls_s=walls,
        cpu_s=cpus,
        team_periods_per_cpu_s=res.team_periods / min(cpus),
        wall_s=min(walls),
        team_periods_per_s=res.team_periods / min(walls),
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        threads=numba.get_num_threads(),
        solvent_share=float(res.kpi_arrays["solvent"][:, -1].mean()),
    )
    return out


def measure(
    engine: str,
    overrides: list[str],
    *,
    cache_dir: str | None,
    threads: int | None = None,
    repeats: int = 5,
    root: Path = ROOT,
) -> dict:
    spec = {"engine": engine, "overrides": overrides, "threads": threads, "repeats": repeats}
    env = dict(os.environ) if cache_dir is None else {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    here = str(Path(__file__).parent)
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); from bench_engines import _child; "
        "print(json.dumps(_child(json.loads(sys.argv[1]))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, env=env, cwd=root
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes")
    ap.add_argument("--big", action="store_true", help="also run 10^6 teams x 520 periods (memory check)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "engines.json"))
    ap.add_argument("--against", help="another checkout's root: measure its orgsim too, alternating")
    ap.add_argument("--rounds", type=int, default=3, help="A/B rounds with --against")
    ap.add_argument("--ab-only", action="store_true", help="with --against: only the A/B rounds")
    args = ap.parse_args(argv)
    q = args.quick
    periods = 260 if q else 520
    firms = 400 if q else 2000
    mesa_firms = 4 if q else 20
    rows: dict = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        }
    }
    if args.against:
        rows["ab"] = ab_rounds(Path(args.against).resolve(), firms, periods, mesa_firms, args.rounds)
    if args.against and args.ab_only:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=2))
        print(ab_report(rows["ab"]))
        return 0
    with tempfile.TemporaryDirectory() as cache:
        # the cold run only times its first call (the compile), so its timed run is tiny
        cold = measure("numba", ["n_orgs=1", "periods=2"], cache_dir=cache, repeats=1)
        measured: dict[tuple, dict] = {}

        def numba_run(overrides: list[str]) -> dict:
            """A numba measurement; a config already measured in this run is not run again."""
            key = tuple(overrides)
            if key not in measured:
                measured[key] = measure("numba", overrides, cache_dir=cache)
            return measured[key]

        warm = numba_run([f"n_orgs={firms}", f"periods={periods}"])
        mesa = measure("mesa", [f"n_orgs={mesa_firms}", f"periods={periods}"], cache_dir=cache, repeats=1)
        one = measure("numba", [f"n_orgs={firms}", f"periods={periods}"], cache_dir=cache, threads=1)
        ops = measure(
            "numba", [f"n_orgs={firms}", f"periods={periods}", "culture.enabled=false"], cache_dir=cache
        )
        # the cold compile counts the import too: it compiles the random-number draws
        # (orgsim._rng has explicit signatures, so they compile when the module loads)
        rows["compile"] = {"cold_s": cold["import_s"] + cold["first_call_s"], "cold_import_s": cold["import_s"],
                           "cold_first_call_s": cold["first_call_s"], "cached_first_call_s": warm["first_call_s"],
                           "import_s": warm["import_s"]}  # fmt: skip
        rows["throughput"] = {"numba": warm, "numba_1_thread": one, "numba_culture_off": ops, "mesa": mesa,
                              "ratio_numba_over_mesa": warm["team_periods_per_s"] / mesa["team_periods_per_s"]}  # fmt: skip
        scaling = []
        for f in [100, 200, 400] if q else [500, 1000, 2000, 4000]:
            scaling.append(("firms", f, numba_run([f"n_orgs={f}", f"periods={periods}"])))
        for p in [65, 130, 260] if q else [130, 260, 520, 1040]:
            scaling.append(("periods", p, numba_run([f"n_orgs={firms // 2}", f"periods={p}"])))
        for w in [1, 3] if q else [1, 3, 6, 12]:
            ov = [f"n_orgs={firms // 2}", f"periods={periods}", f"network.width=[{w},{w},{w},1]"]
            scaling.append(("regions", w, numba_run(ov)))
        rows["scaling"] = [{"axis": a, "value": v, **r} for a, v, r in scaling]
        if args.big:
            rows["big"] = measure("numba", ["n_orgs=100000", "periods=520"], cache_dir=cache, repeats=1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print(report(rows))
    if "ab" in rows:
        print("\n" + ab_report(rows["ab"]))
    return 0


def ab_rounds(other: Path, firms: int, periods: int, mesa_firms: int, rounds: int) -> dict:
    """The default numba run (2 threads and 1) and the Mesa run on ``other``'s orgsim and on
    this one, alternating ``rounds`` times (each tree's kernels from its own on-disk cache,
    compiled there first if need be, untimed)."""
    trees = {"before": other, "after": ROOT}
    out: dict = {"before_root": str(other), "after_root": str(ROOT), "rounds": []}
    size = [f"n_orgs={firms}", f"periods={periods}"]
    for root in trees.values():  # compile (or load) each tree's kernels before timing
        measure("numba", ["n_orgs=1", "periods=2"], cache_dir=None, repeats=1, root=root)
    for r in range(rounds):
        row = {}
        for name, root in trees.items():
            row[name] = {
                "numba": measure("numba", size, cache_dir=None, root=root),
                "numba_1_thread": measure("numba", size, cache_dir=None, threads=1, root=root),
                "mesa": measure("mesa", [f"n_orgs={mesa_firms}", f"periods={periods}"], cache_dir=None,
                                repeats=1, root=root),
            }  # fmt: skip
        out["rounds"].append(row)
        print(f"A/B round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return out


def ab_report(ab: dict) -> str:
    lines = [
        "| round | measure | before | after | after / before | per CPU-s: before | after | after / before |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i, row in enumerate(ab["rounds"], start=1):
        for key in ("numba", "numba_1_thread", "mesa"):
            b, a = row["before"][key], row["after"][key]
            wb, wa = b["team_periods_per_s"], a["team_periods_per_s"]
            cb, ca = b["team_periods_per_cpu_s"], a["team_periods_per_cpu_s"]
            lines.append(
                f"| {i} | {key} team-periods/s | {wb:,.0f} | {wa:,.0f} | {wa / wb:.3f} "
                f"| {cb:,.0f} | {ca:,.0f} | {ca / cb:.3f} |"
            )
    return "\n".join(lines)


def report(rows: dict) -> str:
    t, c = rows["throughput"], rows["compile"]
    lines = [
        "| measure | value | target |",
        "|---|---:|---|",
        f"| numba, team-periods/s ({t['numba']['threads']} threads, {t['numba']['firms']} firms × {t['numba']['periods']} periods × {t['numba']['teams']} teams) | {t['numba']['team_periods_per_s']:,.0f} | ≥ 20,000,000 |",
        f"| numba, team-periods/s (1 thread) | {t['numba_1_thread']['team_periods_per_s']:,.0f} | |",
        f"| numba, team-periods/s ({t['numba_culture_off']['threads']} threads, culture layer off) | {t['numba_culture_off']['team_periods_per_s']:,.0f} | |",
        f"| mesa, team-periods/s ({t['mesa']['firms']} firms) | {t['mesa']['team_periods_per_s']:,.0f} | |",
        f"| numba / mesa | {t['ratio_numba_over_mesa']:,.0f}× | ≥ 500× |",
        f"| cold compile (import + first call, empty cache) | {c['cold_s']:.1f} s ({c['cold_import_s']:.1f} s + {c['cold_first_call_s']:.1f} s) | < 20 s |",
        f"| cached start (first call, warm cache) | {c['cached_first_call_s']:.2f} s (+ import {c['import_s']:.2f} s) | < 2 s |",
        f"| peak memory, numba run above | {t['numba']['peak_rss_mib']:,.0f} MiB | |",
    ]
    if "big" in rows:
        b = rows["big"]
        lines.append(
            f"| 10^6 teams × 520 periods (KPIs only): wall, peak memory | {b['wall_s']:.0f} s, {b['peak_rss_mib'] / 1024:.1f} GiB | < 24 GiB |"
        )
    lines += ["", "| axis | value | team-periods | wall (s) | team-periods/s |", "|---|---:|---:|---:|---:|"]
    for r in rows["scaling"]:
        lines.append(
            f"| {r['axis']} | {r['value']} | {r['team_periods']:,} | {r['wall_s']:.2f} | {r['team_periods_per_s']:,.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
