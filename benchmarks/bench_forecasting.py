"""Benchmark orgsim.forecasting: ETS fits per second on a panel of firm series, against a loop.

Run from the repository root::

    python benchmarks/bench_forecasting.py             # 1,000 firms x 260 weeks (~4 min on 2 cores)
    python benchmarks/bench_forecasting.py --firms 200 # quicker

The panel is the default firm (``scenario=multinational``, strategy ``bso``, environment
``stable``) simulated on the numba engine; one KPI (``revenue``). Two measurements, each in a
fresh subprocess (so peak memory is that of one measurement):

- ``loop``: a plain Python loop calling statsmodels' ``ETSModel(...).fit()`` on each firm's series;
- ``panel``: ``orgsim.forecasting.ETS(...).fit(kpis, kpi="revenue")`` with ``n_jobs=2`` (joblib
  workers, one thread each): the first call (which starts the workers) and the best of two more
  (workers reused), then ``get_forecast(52).summary_frame()``.

Both fit the same model (additive damped trend, additive 52-week season, heuristic
initialisation: ETS(A,Ad,A)); the script checks that the panel's point forecasts equal the
loop's. It prints a Markdown table, writes ``benchmarks/results/forecasting.json`` and the
benchmark section of ``docs/forecasting.md`` (between ``<!-- BEGIN GENERATED: benchmark -->``
and ``<!-- END GENERATED: benchmark -->``). Wall times on a shared machine vary; the JSON keeps
the load average before and after each measurement.
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
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "forecasting.md"
BEGIN, END = "<!-- BEGIN GENERATED: benchmark -->", "<!-- END GENERATED: benchmark -->"
SPEC = dict(
    error="add",
    trend="add",
    damped_trend=True,
    seasonal="add",
    seasonal_periods=52,
    initialization_method="heuristic",
)
TARGET_S = 60.0  # issue 13, item 8: ETS on the 1,000-series panel under 60 s on 2 cores


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (joblib's worker processes), from /proc (Linux)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and its live child processes so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = time.process_time()
    for pid in _descendants(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _peak_mib() -> dict:
    """Peak resident memory of this process and of its live workers (VmHWM), in MiB."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = []
    for pid in _descendants(os.getpid()):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                workers.append(int(line.split()[1]) / 1024)
    return {"peak_rss_mib": own, "peak_rss_workers_mib": workers}


def _child(spec: dict) -> dict:
    """One measurement, in this (fresh) process."""
    import numpy as np
    import pandas as pd

    kpis = pd.read_parquet(spec["data"])
    series = [g.revenue.to_numpy() for _, g in kpis.groupby("org", sort=True)]
    out = {
        "what": spec["what"],
        "series": len(series),
        "periods": len(series[0]),
        "load_before": os.getloadavg(),
    }
    if spec["what"] == "loop":
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        t0, c0 = time.perf_counter(), _cpu_s()
        fits = [ETSModel(pd.Series(y), **SPEC).fit(disp=False) for y in series]
        out["fit_s"] = time.perf_counter() - t0
        out["fit_cpu_s"] = _cpu_s() - c0
        points = np.concatenate([r.forecast(52).to_numpy() for r in fits])
    else:
        from orgsim import forecasting as fc

        model = fc.ETS(**SPEC, n_jobs=spec["n_jobs"], progress=False)
        t0 = time.perf_counter()
        model.fit(kpis, kpi="revenue")
        out["fit_s"] = time.perf_counter() - t0  # includes starting the workers (each imports orgsim)
        warm, cpu = [], []
        for _ in range(2):  # the workers are reused; best of two (a shared machine's load varies)
            t0, c0 = time.perf_counter(), _cpu_s()
            model.fit(kpis, kpi="revenue")
            warm.append(time.perf_counter() - t0)
            cpu.append(_cpu_s() - c0)
        out["warm_fit_s"] = min(warm)
        out["warm_fit_walls_s"] = warm
        out["fit_cpu_s"] = min(cpu)  # main process and workers, one warm call
        t1 = time.perf_counter()
        frame = model.get_forecast(52).summary_frame(0.05)
        out["forecast_s"] = time.perf_counter() - t1
        out["not_converged"] = len(model.fit_failures_)
        points = frame["mean"].to_numpy()
    np.save(spec["points"], points)
    out["fits_per_s"] = out["series"] / out["fit_s"]
    out["load_after"] = os.getloadavg()
    out.update(_peak_mib())
    return out


def measure(spec: dict) -> dict:
    here = str(Path(__file__).parent)
    code = (
        f"import json, sys; sys.path.insert(0, {here!r}); from bench_forecasting import _child; "
        "print(json.dumps(_child(json.loads(sys.argv[1]))))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def section(result: dict) -> str:
    loop, panel = result["loop"], result["panel"]
    n, t = panel["series"], panel["periods"]
    verdict = "met" if panel["fit_s"] < TARGET_S else "NOT met"
    workers = ", ".join(f"{w:.0f}" for w in sorted(panel["peak_rss_workers_mib"], reverse=True)) or "?"
    rows = [
        "| run | wall time (s) | fits/s | CPU time (s) | peak memory (MiB) |",
        "|---|---|---|---|---|",
        f"| plain loop over statsmodels `ETSModel(...).fit()` (1 process) | {loop['fit_s']:.1f} | "
        f"{loop['fits_per_s']:.1f} | {loop['fit_cpu_s']:.1f} | {loop['peak_rss_mib']:.0f} |",
        f"| `orgsim.forecasting.ETS(...).fit(kpis, kpi='revenue')`, n_jobs={result['n_jobs']}, first call "
        f"(starts the workers) | {panel['fit_s']:.1f} | {panel['fits_per_s']:.1f} | – | "
        f"{panel['peak_rss_mib']:.0f}; child processes (the workers and joblib's helpers): {workers} |",
        f"| the same, called again (workers reused; best of 2) | {panel['warm_fit_s']:.1f} | "
        f"{n / panel['warm_fit_s']:.1f} | {panel['fit_cpu_s']:.1f} (all processes) | – |",
        f"| then `get_forecast(52).summary_frame()` for all {n} firms | {panel['forecast_s']:.1f} | – | – | – |",
    ]
    m = result["machine"]
    return "\n".join(
        [
            BEGIN,
            "",
            "## Benchmark",
            "",
            f"Generated by `python benchmarks/bench_forecasting.py{result['argv']}` on {m['cpus']} CPUs "
            f"(Python {m['python']}, statsmodels {m['statsmodels']}); figures in "
            "`benchmarks/results/forecasting.json`. Do not edit by hand.",
            "",
            f"ETS(A,Ad,A) (`{', '.join(f'{k}={v!r}' for k, v in SPEC.items())}`) on {n} firm series of "
            f"{t} weeks (the default firm, `bso`, `stable`, numba engine; KPI `revenue`):",
            "",
            *rows,
            "",
            f"Panel speed-up over the loop: **{result['ratio']:.2f}×** with {result['n_jobs']} workers, first "
            f"call ({result['warm_ratio']:.2f}× warm); the "
            f"panel's point forecasts equal the loop's (max abs difference {result['max_abs_diff']:.1e}). "
            f"Target (issue 13): ETS on the {n}-series panel under {TARGET_S:.0f} s on 2 cores: **{verdict}** "
            f"({panel['fit_s']:.1f} s). Load average during the panel run: "
            f"{panel['load_before'][0]:.1f} before, {panel['load_after'][0]:.1f} after (the machine is shared; "
            "a load above the core count slows both runs). CPU time does not grow with the load: on "
            f"{result['n_jobs']} idle cores the warm panel fit would take about "
            f"{panel['fit_cpu_s'] / result['n_jobs']:.0f} s (CPU time / cores) and the loop "
            f"{loop['fit_cpu_s']:.0f} s.",
            "",
            END,
        ]
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--firms", type=int, default=1000)
    ap.add_argument("--periods", type=int, default=260)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "forecasting.json"))
    ap.add_argument("--doc", default=str(DOC))
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)
    import numpy as np

    import orgsim
    from orgsim._io import replace_section

    cfg = orgsim.compose(
        ["strategy=bso", "environment=stable", f"n_orgs={args.firms}", f"periods={args.periods}"]
    )
    kpis = orgsim.simulate(cfg, engine="numba").kpis[["org", "period", "revenue"]]
    extra = (
        "" if argv is None and len(sys.argv) == 1 else " " + " ".join(sys.argv[1:] if argv is None else argv)
    )
    result = {
        "argv": extra,
        "n_jobs": args.n_jobs,
        "spec": SPEC,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "statsmodels": metadata.version("statsmodels"),
        },
    }
    with tempfile.TemporaryDirectory() as tmp:
        data = str(Path(tmp) / "kpis.parquet")
        kpis.to_parquet(data)
        for what in ("loop", "panel"):
            spec = {
                "what": what,
                "data": data,
                "n_jobs": args.n_jobs,
                "points": str(Path(tmp) / f"{what}.npy"),
            }
            result[what] = measure(spec)
            print(f"{what}: {result[what]['fit_s']:.1f} s", file=sys.stderr)
        diff = np.abs(np.load(str(Path(tmp) / "loop.npy")) - np.load(str(Path(tmp) / "panel.npy")))
    result["max_abs_diff"] = float(diff.max())
    result["ratio"] = result["loop"]["fit_s"] / result["panel"]["fit_s"]
    result["warm_ratio"] = result["loop"]["fit_s"] / result["panel"]["warm_fit_s"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    block = section(result)
    print(block)
    if not args.no_doc:
        replace_section(args.doc, BEGIN, END, block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
