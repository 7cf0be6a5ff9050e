"""Check strategy forecasts against the simulator (issue 13, items 4 and 7).

Each replication is one :func:`orgsim.compare` of the default firm (``scenario=multinational``,
weekly) under the efficiency-only strategies and ``bso`` in every environment, simulated for
``--periods`` weeks (260: five years) with its own seed. Its pooled series are forecast from the
first ``--train`` weeks (104: two years) with :meth:`ComparisonResult.forecast` (the default
model, ETS(A,A,A)) and scored against the simulated weeks after them
(:class:`orgsim.comparison.ForecastCheck`):

1. how often the forecast family difference's prediction interval covers the simulated
   difference, by horizon, with its Monte Carlo standard error across replications;
2. whether the forecast from the first two years picks the same winner (the sign of the
   week-260 cumulative-FCF family difference) as the simulated five years, as a share of
   replications with a Wilson interval.

It writes the tables into ``docs/comparison.md`` between ``<!-- BEGIN GENERATED:
strategy_forecast_validation -->`` and ``<!-- END GENERATED: strategy_forecast_validation -->``
and the scored rows into ``experiments/output/strategy_forecast_validation/``.

Usage::

    python experiments/strategy_forecast_validation.py              # 40 replications × 50 firms
    python experiments/strategy_forecast_validation.py --replications 3 --firms 10 --doc /tmp/c.md  # smoke test

Options: ``--replications R`` (default 40), ``--firms N`` (per strategy, default 50),
``--periods`` (260), ``--train`` (104), ``--kpis`` (default ``cumulative_fcf free_cash_flow
cash revenue``), ``--alpha`` (0.05), ``--seed`` (replication r uses seed + r), ``--doc PATH``,
``--out DIR``, ``--no-write``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from orgsim._io import replace_section, source_state
from orgsim.comparison import FAMILY_CONTRAST, ForecastCheck, compare

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "comparison.md"
OUT = REPO / "experiments" / "output" / "strategy_forecast_validation"
NAME = "strategy_forecast_validation"
BEGIN, END = f"<!-- BEGIN GENERATED: {NAME} -->", f"<!-- END GENERATED: {NAME} -->"
STRATEGIES = ["bpo", "bpm", "bpo_bpm", "bso"]
#: the issue's target for forecast intervals (item 7): within 5 points of nominal
TARGET_POINTS = 5.0


def replicate(args, r: int):
    """One replication: a comparison with seed ``seed + r`` and its forecasts from ``train`` weeks."""
    res = compare(
        strategies=STRATEGIES,
        n_orgs=args.firms,
        periods=args.periods,
        seed=args.seed + r,
        progress=False,
    )
    fc = res.forecast(
        args.kpis,
        steps=args.periods - args.train,
        train_periods=args.train,
        series=["family", "difference"],
        alpha=args.alpha,
        seed=args.seed + r,
    )
    return res, fc


def markdown(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def pct(x, se=None) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{100 * x:.1f}" + ("" if se is None or not np.isfinite(se) else f" ± {100 * se:.1f}")


def _provenance() -> str:
    commit, _ = source_state(REPO)
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("statsmodels", "numpy", "pandas"))
    return f"commit {commit} plus working-tree changes, Python {platform.python_version()}, {versions}"


def coverage_table(check: ForecastCheck, bins, kind: str, series: str | None = None) -> pd.DataFrame:
    cov = check.coverage(bins=bins)
    cov = cov[cov.kind == kind]
    if series is not None:
        cov = cov[cov.series == series]
    rows = []
    for (env, kpi, name), part in cov.groupby(["environment", "kpi", "series"], sort=False):
        row = {"environment": env, "kpi": kpi} | ({} if series else {"series": name})
        for r in part.itertuples():
            row[f"h {r.h_from}–{r.h_to}"] = pct(r.coverage, r.mc_se)
        rows.append(row)
    return pd.DataFrame(rows)


def misses(check: ForecastCheck, nominal: float) -> list[str]:
    """Difference-series cells whose coverage over all known horizons is off target by > 5 points."""
    cov = check.coverage(bins=[check.known_periods])
    cov = cov[cov.kind == "difference"]
    out = []
    for r in cov.itertuples():
        off = 100 * (r.coverage - nominal)
        if abs(off) > TARGET_POINTS + 1e-9:
            out.append(f"{r.environment}/{r.kpi} {100 * r.coverage:.1f}% ({off:+.1f} points)")
    return out


def report(check: ForecastCheck, args, seconds: float, first) -> str:
    nominal = 1 - args.alpha
    horizon = args.periods - args.train
    bins = sorted({b for b in (13, 52, 104, horizon) if b <= horizon})
    end = args.train + horizon
    lines = [
        BEGIN,
        "",
        "## Validation: strategy forecasts against the simulated continuation",
        "",
        f"Generated by `python {shlex.join(['experiments/strategy_forecast_validation.py', *sys.argv[1:]])}` "
        f"in {seconds:.0f} s on {os.cpu_count()} cores (load average {os.getloadavg()[1]:.1f} during the run; "
        f"{_provenance()}). Do not edit by hand: rerun the command.",
        "",
        f"**Setup.** {args.replications} replications, each a `compare` of the default firm "
        f"(`scenario=multinational`, weekly) with strategies {', '.join(f'`{s}`' for s in STRATEGIES)} in "
        f"every environment, {args.firms} firms per strategy, {args.periods} weeks, seed {args.seed} + r for "
        f"replication r (so replications are independent). Each is forecast from weeks 1–{args.train} "
        f"with `res.forecast(kpis, steps={horizon}, train_periods={args.train}, "
        f"series=['family', 'difference'])`, the default model `{' '.join(first.model.split())}`, "
        f"and scored against the simulated weeks {args.train + 1}–{end} of the same firms. Intervals are "
        f"{100 * nominal:g}% prediction intervals of the model (analytic ETS). ± is the Monte Carlo "
        "standard error: the standard deviation across replications of a replication's coverage in "
        f"that horizon bin, over √{args.replications} (the periods of one replication are not independent).",
        "",
        f"### Coverage of the family difference ({FAMILY_CONTRAST}), % of simulated weeks inside the interval",
        "",
        markdown(coverage_table(check, bins, "difference", FAMILY_CONTRAST)),
        "",
    ]
    missed = misses(check, nominal)
    lines.append(
        f"**Target: within {TARGET_POINTS:g} points of {100 * nominal:g}% over h 1–{horizon}.** "
        + (
            "Not met for " + ", ".join(missed) + "."
            if missed
            else "Met for every environment and KPI of the difference series."
        )
    )
    lines += [
        "",
        "### Coverage of each family's mean series, for comparison",
        "",
        markdown(coverage_table(check, bins, "family")),
        "",
        f"### Does a forecast from weeks 1–{args.train} pick the week-{end} winner?",
        "",
        f"The winner is the sign of the family difference in cumulative free cash flow at week {end} "
        f"(the {end / 52:.3g}-year cumulative FCF, culture-aligned minus pooled efficiency-only). *forecast agrees* is the "
        f"share of replications whose forecast sign is the simulated sign (Wilson 95% interval over "
        f"replications); *week {args.train} agrees* is the same share for the sign already observed at "
        f"week {args.train} (the trivial forecast); *interval excludes 0* counts forecasts whose "
        f"{100 * nominal:g}% interval at week {end} lies on one side of 0.",
        "",
    ]
    w = check.winners(kpi="cumulative_fcf")
    agree = check.winner_agreement(kpi="cumulative_fcf").set_index("environment")
    rows = []
    for env, part in w.groupby("environment", sort=False):
        a = agree.loc[env]
        same_last = int((np.sign(part.last_observed) == np.sign(part.actual)).sum())
        rows.append(
            {
                "environment": env,
                "forecast agrees": f"{a.agree}/{a.n} = {pct(a.share)}% [{pct(a.ci_lower)}, {pct(a.ci_upper)}]",
                f"week {args.train} agrees": f"{same_last}/{a.n}",
                f"simulated week {end} > 0": f"{a.simulated_positive}/{a.n}",
                "interval excludes 0": f"{int(part.excludes_zero.sum())}/{a.n}",
                "mean forecast": f"{part['mean'].mean():,.0f}",
                "mean simulated": f"{part.actual.mean():,.0f}",
                "mean error": f"{(part.actual - part['mean']).mean():+,.0f} ± "
                f"{(part.actual - part['mean']).std(ddof=1) / np.sqrt(len(part)):,.0f}",
            }
        )
    lines += [
        markdown(pd.DataFrame(rows)),
        "",
        f"*mean error* is simulated − forecast at week {end} (MU), ± one standard error across replications.",
        "",
    ]
    fails = pd.concat([f.failures for f in check.forecasts], ignore_index=True)
    lines += [
        f"Fits failed: {int((fails.failure == 'error').sum())}; did not converge: "
        f"{int((fails.failure == 'not converged').sum())} (of {sum(len(f.series) for f in check.forecasts)}).",
        "",
        END,
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replications", type=int, default=40)
    ap.add_argument("--firms", type=int, default=50, help="firms per strategy")
    ap.add_argument("--periods", type=int, default=260)
    ap.add_argument("--train", type=int, default=104)
    ap.add_argument("--kpis", nargs="+", default=["cumulative_fcf", "free_cash_flow", "cash", "revenue"])
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--doc", default=str(DOC))
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if not 2 <= args.replications:
        ap.error(f"--replications == {args.replications}, must be >= 2")
    if not 3 <= args.train < args.periods:
        ap.error(f"--train == {args.train}, must be in 3..{args.periods - 1} (below --periods)")
    start = time.perf_counter()
    forecasts = []
    for r in range(args.replications):
        t = time.perf_counter()
        _, f = replicate(args, r)
        forecasts.append(f)
        print(f"replication {r + 1}/{args.replications}: {time.perf_counter() - t:.1f} s", file=sys.stderr)
    check = ForecastCheck(forecasts)
    seconds = time.perf_counter() - start
    block = report(check, args, seconds, forecasts[0])
    print(block)
    if not args.no_write:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        check.scored().to_parquet(out / "scored.parquet", index=False)
        check.winners(kpi="cumulative_fcf").to_parquet(out / "winners.parquet", index=False)
        replace_section(args.doc, BEGIN, END, block)
        print(f"wrote {args.doc} and {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
