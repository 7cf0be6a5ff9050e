"""Benchmark a full strategy comparison of the default firm, end to end.

Run from the repository root::

    python benchmarks/bench_compare.py              # 5 strategies × 3 environments × 1,000 firms × 260 weeks, 3 repeats
    python benchmarks/bench_compare.py --quick      # 200 firms, 1 repeat (a smoke test)
    python benchmarks/bench_compare.py --no-cold    # skip the cold-compile measurement (a subprocess)

What is timed, per repeat, after the kernels are compiled (or loaded from Numba's cache):
``orgsim.comparison.compare`` (composing the 15 cells' configs with Hydra, then simulating them
on the numba engine), the per-firm outcomes (``outcomes()``), the effects
(``summary_frame(0.05)``: the family contrast and every pair, 7 outcomes × 2 horizons × 3
environments) and the crossover bootstrap (``crossover(0.05)``, B = 1,000 resamples of firms).
The compile time is measured separately: the first call in this process (a cache load when the
cache is warm), and, unless ``--no-cold``, a fresh subprocess with an empty ``NUMBA_CACHE_DIR``
(a cold compile, as on a fresh machine). The machine's load average is recorded: other
processes on a shared machine slow the figures down.

It prints a Markdown table and writes ``benchmarks/results/compare.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "compare.json"
TARGET_S = 30.0


def cold_compile() -> dict:
    """Import orgsim and run a tiny compare in a fresh process with an empty Numba cache."""
    code = (
        "import time, json\n"
        "t0 = time.perf_counter()\n"
        "from orgsim.comparison import compare\n"
        "t1 = time.perf_counter()\n"
        "r = compare(strategies=['bpo', 'bso'], environments=['stable'], n_orgs=2, periods=10)\n"
        "print(json.dumps({'import_s': t1 - t0, 'first_compare_s': time.perf_counter() - t1,"
        " 'warmup_s': r.timings['warmup_s']}))\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
        )
        wall = time.perf_counter() - start
    info = json.loads(out.stdout.strip().splitlines()[-1])
    return {"process_s": wall, **info}


def one_repeat(compare, n_orgs: int, n_boot: int) -> tuple[dict, object]:
    t = {}
    start = time.perf_counter()
    res = compare(n_orgs=n_orgs, engine="numba", progress=False)
    t["compare_s"] = time.perf_counter() - start
    t["compose_s"] = res.timings["compose_s"]
    t["simulation_s"] = res.timings["simulation_s"]
    t["in_process_warmup_s"] = res.timings["warmup_s"]
    s = time.perf_counter()
    res.outcomes()
    t["outcomes_s"] = time.perf_counter() - s
    s = time.perf_counter()
    effects = res.summary_frame(0.05)
    t["effects_s"] = time.perf_counter() - s
    s = time.perf_counter()
    res.crossover(0.05, n_boot=n_boot, seed=0)
    t["crossover_s"] = time.perf_counter() - s
    t["total_s"] = time.perf_counter() - start
    t["effect_rows"] = len(effects)
    return t, res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="200 firms, one repeat")
    p.add_argument("--firms", type=int, default=None, help="firms per arm (default 1000)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (default 3)")
    p.add_argument("--boot", type=int, default=1000, help="crossover bootstrap resamples (default 1000)")
    p.add_argument("--no-cold", action="store_true", help="skip the cold-compile subprocess")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    firms = args.firms or (200 if args.quick else 1000)
    repeats = args.repeats or (1 if args.quick else 3)

    load_before = os.getloadavg()
    cold = None if args.no_cold else cold_compile()
    t0 = time.perf_counter()
    import orgsim
    from orgsim.comparison import compare

    import_s = time.perf_counter() - t0
    s = time.perf_counter()
    compare(strategies=["bpo", "bso"], environments=["stable"], n_orgs=2, periods=10, progress=False)
    first_call_s = time.perf_counter() - s  # compile, or load the cached kernels

    runs, res = [], None
    for i in range(repeats):
        t, res = one_repeat(compare, firms, args.boot)
        runs.append(t)
        print(f"repeat {i + 1}/{repeats}: {t['total_s']:.1f} s", file=sys.stderr, flush=True)
    cfg = next(iter(res.configs.values()))
    team_periods = len(res.configs) * firms * res.periods * cfg.network.n_teams
    keys = ("compose_s", "simulation_s", "outcomes_s", "effects_s", "crossover_s", "total_s")
    median = {k: statistics.median(r[k] for r in runs) for k in keys}
    fam = res.summary_frame().query("kind == 'family' and outcome == 'cumulative_fcf'")
    cross = res.crossover(0.05, n_boot=args.boot, seed=0)  # the draws are cached: no second bootstrap
    cross = cross[cross.contrast == res.contrasts[0].name]
    cols = ["environment", "crossover", "ci_lower", "ci_upper", "share_never"]
    result = {
        "command": " ".join(
            ["python", "benchmarks/bench_compare.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "versions": orgsim.simulation.package_versions(),
        "workload": {
            "strategies": list(res.strategies),
            "environments": list(res.environments),
            "firms_per_arm": firms,
            "periods": res.periods,
            "teams_per_firm": cfg.network.n_teams,
            "team_periods": team_periods,
            "horizons": list(res.horizons),
            "effect_rows": runs[-1]["effect_rows"],
            "crossover_bootstrap_resamples": args.boot,
        },
        "compile": {
            "import_s": import_s,
            "first_call_s": first_call_s,
            "cold": cold,
        },
        "repeats": runs,
        "median": median,
        "simulation_team_periods_per_s": team_periods / median["simulation_s"],
        "target_s": TARGET_S,
        "meets_target": median["total_s"] < TARGET_S,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "sanity": {
            "family_cumulative_fcf": fam[
                ["environment", "horizon", "mean", "mean_ci_lower", "mean_ci_upper"]
            ].to_dict(orient="records"),
            "family_crossover": cross[cols]
            .astype(object)
            .where(cross[cols].notna(), None)
            .to_dict(orient="records"),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    rows = [
        ("compose 15 cells (Hydra)", median["compose_s"]),
        ("simulate 15 cells (numba)", median["simulation_s"]),
        ("per-firm outcomes", median["outcomes_s"]),
        (f"effects ({runs[-1]['effect_rows']} rows)", median["effects_s"]),
        (f"crossover bootstrap (B = {args.boot})", median["crossover_s"]),
        ("**total, end to end**", median["total_s"]),
    ]
    print(f"| step (median of {repeats}) | seconds |\n| :--- | ---: |")
    for name, sec in rows:
        print(f"| {name} | {sec:.2f} |")
    print(
        f"\ncompile: first call in process {first_call_s:.2f} s"
        + (f"; cold {cold['process_s']:.1f} s" if cold else "")
    )
    print(f"target {TARGET_S:.0f} s: {'met' if result['meets_target'] else 'NOT met'}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
