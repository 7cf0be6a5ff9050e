"""How much variance do common random numbers remove? The paired estimator against an unpaired one.

``orgsim.compare`` runs every arm on the same firms (the same seed and firm index: common random
numbers) and estimates an effect as the mean per-firm paired difference. The alternative design
gives each arm its own, independent firms (its own seed) and estimates the effect as a
difference of the arms' means. Both are unbiased for the same effect; this script measures the
variance of each over replicates, and the ratio, with its Monte Carlo uncertainty.

Design. One population of R × n firms per arm and environment (default R = 200 replicates of
n = 50 firms, the size of a typical sweep run), 260 weeks, the default firm:

- paired: every arm with seed S (``orgsim.comparison.compare``); replicate r's estimate is the
  mean over its firms (positions r·n … r·n + n − 1) of y_culture − y_other;
- unpaired: the culture-aligned arm with seed S, and each other arm with a seed of its own
  (S + 1, S + 2, S + 3), so no two arms share firms; replicate r's estimate is the difference of
  the arms' means over the same positions (for the family, culture − the mean of the three
  efficiency-only arms' means).

The replicates use disjoint firms, so they are independent. For each contrast, outcome and
horizon it reports Var(paired) and Var(unpaired) over the R replicates, their ratio (the
variance reduction factor: how many times more firms an unpaired design needs for the same
precision), a 95% bootstrap percentile interval for each (replicates resampled, B = 2,000), the
ratio predicted from the per-firm variances of the whole population, Var(a) + Var(b′) over
Var(a − b), and the coverage of the 95% paired t interval of each replicate around the
population's mean paired difference (with its binomial standard error): compare's interval, the
paired t for means and Newcombe's for survival.

Usage::

    python experiments/crn_validation.py                      # 3 environments, ~3 min on 2 cores
    python experiments/crn_validation.py --replicates 50 --environments volatile   # quicker

It prints Markdown tables (they are in docs/comparison.md) and writes
``experiments/output/crn_validation/validation.json`` (every figure, the command, versions).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

import orgsim
from orgsim._io import source_state
from orgsim.comparison import FAMILY_CONTRAST, compare, firm_outcomes, newcombe_difference, paired_difference
from orgsim.comparison import OUTCOMES as SPECS
from orgsim.simulation import package_versions

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "experiments" / "output" / "crn_validation"
EFFICIENCY = ("bpo", "bpm", "bpo_bpm")
CULTURE = "bso"
OUTCOMES = ("cumulative_fcf", "npv_fcf", "credit_headroom", "survival")
HORIZONS = (104, 260)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def unpaired_arm(env: str, strategy: str, firms: int, seed: int) -> dict[tuple[str, int], np.ndarray]:
    """Per-firm outcomes of one arm run on its own seed: {(outcome, horizon): values}."""
    cfg = orgsim.compose([f"environment={env}", f"strategy={strategy}", f"n_orgs={firms}", "periods=260"])
    res = orgsim.simulate(cfg, engine="numba", seed=seed, teams=False)
    table = firm_outcomes(res, horizons=HORIZONS)
    return {(o, h): table.loc[table.horizon == h, o].to_numpy() for o in OUTCOMES for h in HORIZONS}


def bootstrap_variances(p: np.ndarray, u: np.ndarray, n_boot: int, rng: np.random.Generator) -> dict:
    """95% percentile intervals of Var(p), Var(u) and Var(u)/Var(p), replicates resampled jointly."""
    r = p.size
    idx = rng.integers(0, r, size=(n_boot, r))
    vp, vu = p[idx].var(axis=1, ddof=1), u[idx].var(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(vp > 0, vu / vp, np.inf)  # a resample without paired variation: no bound

    def q(x):
        return [float(v) for v in np.quantile(x, [0.025, 0.975], method="inverted_cdf")]

    return {"var_paired_ci": q(vp), "var_unpaired_ci": q(vu), "ratio_ci": q(ratio)}


def validate_environment(env: str, n: int, replicates: int, seed: int, n_boot: int, rng) -> list[dict]:
    firms = n * replicates
    start = time.perf_counter()
    paired = compare(
        strategies=[*EFFICIENCY, CULTURE],
        environments=[env],
        n_orgs=firms,
        periods=260,
        seed=seed,
        horizons=HORIZONS,
        progress=False,
    )
    log(f"{env}: paired arms ({firms} firms each) in {time.perf_counter() - start:.0f} s")
    own = {}
    for k, s in enumerate(EFFICIENCY, start=1):
        t = time.perf_counter()
        own[s] = unpaired_arm(env, s, firms, seed + k)
        log(f"{env}: {s} on its own seed {seed + k} in {time.perf_counter() - t:.0f} s")
    blocks = np.arange(firms).reshape(replicates, n)
    rows = []
    for contrast, others in ((FAMILY_CONTRAST, EFFICIENCY), (f"{CULTURE} − bpo_bpm", ("bpo_bpm",))):
        for o in OUTCOMES:
            for h in HORIZONS:
                a = paired.values(env, CULTURE, o, h)
                b = paired.values(env, list(others), o, h)  # the same firms: paired
                b_own = np.mean([own[s][(o, h)] for s in others], axis=0)  # other firms: unpaired
                d = a - b
                est_p = d[blocks].mean(axis=1)
                est_u = a[blocks].mean(axis=1) - b_own[blocks].mean(axis=1)
                truth = d.mean()
                cover = []  # of compare's interval: paired t for means, Newcombe for survival
                for blk in blocks:
                    if SPECS[o].proportion:
                        ci = newcombe_difference(a[blk], b[blk])
                    else:
                        ci = paired_difference(d[blk])
                    cover.append(ci["mean_ci_lower"] <= truth <= ci["mean_ci_upper"])
                cover = np.asarray(cover, dtype=float)
                vp, vu = est_p.var(ddof=1), est_u.var(ddof=1)
                # the same ratio from the per-firm variances of the whole population
                per_firm = (a.var(ddof=1) + b_own.var(ddof=1)) / d.var(ddof=1) if d.var() > 0 else np.nan
                rows.append(
                    {
                        "environment": env,
                        "contrast": contrast,
                        "outcome": o,
                        "horizon": h,
                        "replicates": replicates,
                        "firms_per_replicate": n,
                        "mean_paired": float(est_p.mean()),
                        "mean_unpaired": float(est_u.mean()),
                        "var_paired": float(vp),
                        "var_unpaired": float(vu),
                        "ratio": float(vu / vp) if vp > 0 else np.nan,
                        **(bootstrap_variances(est_p, est_u, n_boot, rng) if vp > 0 else {}),
                        "ratio_from_per_firm_variances": float(per_firm),
                        "interval": "newcombe" if SPECS[o].proportion else "paired_t",
                        "coverage": float(cover.mean()),
                        "coverage_se": float(np.sqrt(cover.mean() * (1 - cover.mean()) / replicates)),
                    }
                )
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| environment | contrast | outcome | week | Var paired | Var unpaired | ratio [95% MC interval] "
        "| ratio from per-firm variances | 95% interval coverage (± s.e.) |",
        "| :--- | :--- | :--- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if np.isnan(r["ratio"]):
            ratio = "– (no variation)"
        else:
            lo, hi = r["ratio_ci"]
            ratio = f"{r['ratio']:.1f} [{lo:.1f}, {hi:.1f}]".replace("inf", "∞")
        lines.append(
            f"| {r['environment']} | `{r['contrast']}` | {r['outcome']} | {r['horizon']} | "
            f"{r['var_paired']:.4g} | {r['var_unpaired']:.4g} | {ratio} | "
            f"{r['ratio_from_per_firm_variances']:.1f} | "
            f"{100 * r['coverage']:.1f}% ± {100 * r['coverage_se']:.1f} ({r['interval']}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replicates", type=int, default=200, help="replicates R (default 200)")
    p.add_argument("--firms", type=int, default=50, help="firms per replicate n (default 50)")
    p.add_argument("--environments", nargs="+", default=["stable", "volatile", "disrupted"])
    p.add_argument("--seed", type=int, default=0, help="seed S of the paired arms (default 0)")
    p.add_argument("--boot", type=int, default=2000, help="bootstrap resamples of replicates (default 2000)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    if args.replicates < 2 or args.firms < 2:
        p.error("--replicates and --firms must be at least 2")
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    rows = []
    for env in args.environments:
        rows += validate_environment(env, args.firms, args.replicates, args.seed, args.boot, rng)
    commit, modified = source_state(REPO)
    meta = {
        "command": " ".join(["python", "experiments/crn_validation.py", *map(shlex.quote, argv)]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": commit,
        "model_files_modified": modified,  # uncommitted changes to orgsim/ and conf/ at the end
        "versions": package_versions(),
        "wall_s": round(time.perf_counter() - start, 1),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "validation.json").write_text(json.dumps(meta, indent=2))
    pd.DataFrame(rows).to_csv(args.out / "validation.csv", index=False)
    print(f"{meta['command']}  ({meta['date']}, commit {commit}, {meta['wall_s']:.0f} s)\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
