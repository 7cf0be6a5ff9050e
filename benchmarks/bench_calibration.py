"""Benchmark: simulations per second during a calibration against one simulation per call.

Run from the repository root::

    python benchmarks/bench_calibration.py            # 3 repeats of each measurement
    python benchmarks/bench_calibration.py --quick    # 1 repeat, smaller batches (a smoke test)

All on the 36-week beer game with decision noise (``conf/calibration/beer_game.yaml``: four
calibrated parameters θ, α_S, β, S', 16 moments of the four echelons' team series), side by side
in one process after the kernels are compiled or loaded from Numba's cache:

- ``one_per_call``: ``orgsim.simulate(cfg, engine="numba", teams=True)`` with the candidate's
  values in the config, one firm per call: what a calibration without batches would pay per
  simulation (Hydra is not timed: the config is changed by ``Config.replace``).
- ``batch``: one candidate batch as the calibration runs it (``orgsim._smm.Runner.per_firm``:
  the params table of C candidates × R replicates validated and packed at once, one kernel call
  on common random numbers, the moments of every simulated firm), for several C × R.
- ``kernel_only``: for the same batches, the batch kernel alone (``orgsim.engine_numba.run`` on
  arrays packed beforehand, team records kept as the moments need them), and ``pack_params``
  alone: what is left of a batch's time (its moments, the checks) is the difference;
- ``calibrate``: a whole ``orgsim.calibrate`` (identity weighting, one TPE search of ``n_trials``
  in batches of 32 with R = 32, polish, Jacobian and standard errors), timed end to end: its
  simulations per second include Optuna's ask/tell and every other step.

Simulations per second = simulated firms (candidates × replicates) / wall time; simulations per
CPU-second divide by the process's CPU time instead (all threads), which other processes on a
shared machine change much less than the wall time. The load average is recorded before and
after, and with each batch shape: on a loaded machine every wall figure is slower alike, so the
ratio of batch to one-per-call is the figure to compare across runs. Writes
``benchmarks/results/calibration.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "calibration.json"


def _candidates(bounds: dict, n: int, rng) -> np.ndarray:
    lo = np.array([b[0] for b in bounds.values()])
    hi = np.array([b[1] for b in bounds.values()])
    return lo + (hi - lo) * rng.random((n, len(bounds)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 repeat and smaller batches")
    p.add_argument("--out", default=str(OUT))
    args = p.parse_args(argv)

    import numba

    import orgsim
    from orgsim import _smm, engine_numba
    from orgsim._params import pack_params
    from orgsim.calibration import calibrate, calibration_settings
    from orgsim.simulation import package_versions

    repeats = 1 if args.quick else 3
    settings = calibration_settings("beer_game")
    cfg = orgsim.compose(settings["overrides"]).replace(engine="numba", n_orgs=1)
    names = list(settings["params"])
    bounds = _smm.check_bounds(settings["params"], cfg)
    ms = _smm.MomentSet(_smm.parse_moments(settings["moments"]), _smm.build_network(cfg), settings["skip"])
    runner = _smm.Runner(cfg, ms, seed=0, names=names)
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()

    # warm up: compile or load the kernels, on both paths
    runner.per_firm(_smm.table_of(_candidates(bounds, 2, rng), names), 2)
    orgsim.simulate(cfg, engine="numba", seed=0, teams=True, progress=False)

    # one simulation per call
    n_single = 20 if args.quick else 100
    single, single_cpu = [], []
    for _ in range(repeats):
        points = _candidates(bounds, n_single, rng)
        t0, c0 = time.perf_counter(), time.process_time()
        for i, x in enumerate(points):
            one = cfg.replace(**dict(zip(names, map(float, x))))
            orgsim.simulate(one, engine="numba", seed=i, teams=True, progress=False)
        single.append(n_single / (time.perf_counter() - t0))
        single_cpu.append(n_single / (time.process_time() - c0))

    # candidate batches as the calibration runs them
    shapes = [(32, 32), (128, 32)] if args.quick else [(32, 32), (128, 32), (512, 32), (2000, 1)]
    batches = []
    for c, r in shapes:
        rates, cpu_rates, kernel, kernel_cpu, pack_s = [], [], [], [], []
        for _ in range(repeats):
            table = _smm.table_of(_candidates(bounds, c, rng), names)
            t0, c0 = time.perf_counter(), time.process_time()
            runner.per_firm(table, r)
            rates.append(c * r / (time.perf_counter() - t0))
            cpu_rates.append(c * r / (time.process_time() - c0))
            # the same batch's parts alone: packing, and the kernel on the packed arrays
            t0 = time.perf_counter()
            packed = pack_params(runner.cfg, table)
            pack_s.append(time.perf_counter() - t0)
            rows, keys = np.repeat(np.arange(c), r), np.tile(runner.keys(0, r), c)
            t0, c0 = time.perf_counter(), time.process_time()
            engine_numba.run(packed, keys, rows, teams=ms.needs_teams)
            kernel.append(c * r / (time.perf_counter() - t0))
            kernel_cpu.append(c * r / (time.process_time() - c0))
        batches.append({"candidates": c, "replicates": r, "firms_per_call": c * r,
                        "sims_per_s_median": statistics.median(rates), "sims_per_s": rates,
                        "sims_per_cpu_s_median": statistics.median(cpu_rates),
                        "kernel_only_sims_per_s_median": statistics.median(kernel), "kernel_only_sims_per_s": kernel,
                        "kernel_only_sims_per_cpu_s_median": statistics.median(kernel_cpu),
                        "pack_params_ms_median": 1e3 * statistics.median(pack_s),
                        "load_average": os.getloadavg()})  # fmt: skip

    # a whole calibration
    data = orgsim.simulate(cfg.replace(n_orgs=4), engine="numba", seed=99, teams=True, progress=False).teams
    n_trials = 64 if args.quick else 256
    t0, c0 = time.perf_counter(), time.process_time()
    res = calibrate(
        data, params="beer_game", weighting="identity", n_trials=n_trials, batch_size=32, replicates=32,
        se_replicates=200, seed=1, progress=False,
    )  # fmt: skip
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    firms = res._runner.firms_simulated
    whole = {"n_trials": n_trials, "batch_size": 32, "replicates": 32, "wall_s": wall, "firms_simulated": firms,
             "kernel_calls": res._runner.calls, "sims_per_s": firms / wall, "cpu_s": cpu, "sims_per_cpu_s": firms / cpu, "trials_per_s": res.n_trials_ / wall}  # fmt: skip

    one = statistics.median(single)
    result = {
        "benchmark": "calibration",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": "beer game, 36 weeks, conf/calibration/beer_game.yaml (4 parameters, 16 moments)",
        "repeats": repeats,
        "one_per_call": {
            "calls": n_single,
            "sims_per_s_median": one,
            "sims_per_s": single,
            "sims_per_cpu_s_median": statistics.median(single_cpu),
        },
        "batch": batches,
        "calibrate": whole,
        "speedup_batch_over_one_per_call": {
            f"{b['candidates']}x{b['replicates']}": b["sims_per_s_median"] / one for b in batches
        },
        "target_sims_per_s": 5e4,
        "numba_threads": numba.get_num_threads(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "versions": package_versions(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str) + "\n")
    one_cpu = statistics.median(single_cpu)
    rows = [("one simulation per call", 1, one, one_cpu)]
    rows += [(f"batch {b['candidates']} candidates × {b['replicates']} replicates", b["firms_per_call"],
              b["sims_per_s_median"], b["sims_per_cpu_s_median"]) for b in batches]  # fmt: skip
    rows.append((f"calibrate(), {n_trials} trials end to end", firms / res._runner.calls, whole["sims_per_s"],
                 whole["sims_per_cpu_s"]))  # fmt: skip
    print(
        "| path | firms per kernel call | simulations/s (wall, median) | × one per call | simulations per CPU-s |"
    )
    print("|---|---|---|---|---|")
    for label, per, rate, rate_cpu in rows:
        print(f"| {label} | {per:,.0f} | {rate:,.0f} | {rate / one:,.0f} | {rate_cpu:,.0f} |")
    print(
        "\n| batch | kernel alone, simulations/s (wall) | kernel alone, per CPU-s | pack_params (ms) | load average |"
    )
    print("|---|---|---|---|---|")
    for b in batches:
        load = ", ".join(f"{x:.1f}" for x in b["load_average"])
        print(f"| {b['candidates']} × {b['replicates']} | {b['kernel_only_sims_per_s_median']:,.0f} | "
              f"{b['kernel_only_sims_per_cpu_s_median']:,.0f} | {b['pack_params_ms_median']:.1f} | {load} |")  # fmt: skip
    print(
        f"\nload average before/after: {load_before} / {os.getloadavg()} on {os.cpu_count()} CPUs, "
        f"{numba.get_num_threads()} Numba threads; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
