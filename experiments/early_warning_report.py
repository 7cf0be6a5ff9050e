"""Early warning on the default firm: what do a firm's first weeks say about its fifth year?

Runs ``orgsim.comparison.compare`` on the default firm (every strategy × the stable, volatile
and disrupted environments × ``--firms`` firms × 260 weeks, common random numbers) and fits
``orgsim.early_warning.EarlyWarning`` from the first ``--k`` weeks to two outcomes at week 260:
survival (classification) and cumulative free cash flow (regression). It reports, for each:

- cross-validated out-of-sample scores (AUC and Brier, or R² and MAE) of the main model
  (gradient boosting), a logistic/ridge model, a context-only model (strategy, family and
  environment) and the prevalence/mean, per family, with the fold-to-fold spread and the
  corrected resampled t interval;
- the permutation importance of the early signals on held-out firms, per family;
- the same scores for other window lengths (``--ks``: how much each extra week of data buys);
- what grouped cross-validation prevents: the scores when every unit is its own group, so that
  firm i under one strategy can be in the training folds while firm i under another strategy is
  in the test fold (they meet the same random numbers).

``--coverage R`` adds a check of the interval against simulated truth: R replicate samples of
firms, each cross-validated, against the expected out-of-sample R² of the same procedure
estimated on a large held-out population of simulated firms.

Usage::

    python experiments/early_warning_report.py                 # 300 firms per cell, k = 26 weeks
    python experiments/early_warning_report.py --firms 60 --ks 13 26 --repeats 1   # smoke test
    python experiments/early_warning_report.py --coverage 200 --skip-main   # the interval check only

It prints Markdown tables (they are in docs/early_warning.md), writes the figures to
``docs/figures/early_warning/`` and every table, the command and the versions to
``experiments/output/early_warning/``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from orgsim._io import source_state
from orgsim.comparison import compare
from orgsim.early_warning import EarlyWarning
from orgsim.simulation import package_versions

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "experiments" / "output" / "early_warning"
FIGURES = REPO / "docs" / "figures" / "early_warning"
HORIZON = 260
OUTCOMES = ("survival", "cumulative_fcf")
KEY = {"survival": "auc", "cumulative_fcf": "r2"}
LABEL = {"auc": "AUC", "brier": "Brier", "r2": "R²", "mae": "MAE (MU)"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt(x: float, metric: str) -> str:
    if not np.isfinite(x):
        return "–"
    return f"{x:,.0f}" if metric == "mae" else f"{x:.3f}"


def interval(r: pd.Series) -> str:
    return f"{fmt(r['mean'], r.metric)} [{fmt(r.mean_ci_lower, r.metric)}, {fmt(r.mean_ci_upper, r.metric)}]"


def scores_table(frame: pd.DataFrame) -> str:
    """Markdown: one row per subset and model, the metrics as columns (mean [95% interval], sd)."""
    metrics = list(dict.fromkeys(frame.metric))
    head = (
        "| subset | model | "
        + " | ".join(f"{LABEL[m]} [95% interval] | sd over folds" for m in metrics)
        + " |"
    )
    lines = [head, "| :--- | :--- |" + " ---: | ---: |" * len(metrics)]
    for (subset, model), part in frame.groupby(["subset", "model"], sort=False):
        cells = []
        for m in metrics:
            r = part[part.metric == m].iloc[0]
            cells += [interval(r) if np.isfinite(r["mean"]) else f"– ({r.note})", fmt(r["std"], m)]
        lines.append(f"| {subset} | `{model}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def importance_table(imp: pd.DataFrame, top: int = 5) -> str:
    lines = [
        "| subset | rank | early signal | drop in score (mean) | sd (folds × permutations) |",
        "| :--- | ---: | :--- | ---: | ---: |",
    ]
    for _, r in imp[imp["rank"].fillna(0) <= top].iterrows():
        lines.append(f"| {r.subset} | {r['rank']} | `{r.feature}` | {r['mean']:.4f} | {r['std']:.4f} |")
    for _, r in imp[imp.feature == "—"].iterrows():
        lines.append(f"| {r.subset} | – | – | – | {r.note} |")
    return "\n".join(lines)


def unit_table(res, k: int, outcome: str) -> pd.DataFrame:
    """The comparison's first k + 1 periods as a per-firm table in which every unit (firm ×
    strategy × environment) is its own firm: cross-validation then ignores common random numbers."""
    rows = []
    n = res.n_firms
    kpis = [c for c in res.arrays if c not in ("solvent",)]
    unit = 0
    for e, env in enumerate(res.environments):
        for s, strategy in enumerate(res.strategies):
            y = res.values(env, strategy, outcome, HORIZON)
            block = {kpi: res.arrays[kpi][e, s, :, : k + 1].reshape(-1) for kpi in kpis}
            rows.append(
                pd.DataFrame(
                    {
                        "environment": env,
                        "strategy": strategy,
                        "family": res.families[strategy],
                        "org": np.repeat(np.arange(unit, unit + n), k + 1),
                        "period": np.tile(np.arange(1, k + 2), n),
                        **block,
                        outcome: np.repeat(y, k + 1),
                    }
                )
            )
            unit += n
    return pd.concat(rows, ignore_index=True)


def k_sweep_figure(sweep: pd.DataFrame, path: Path, firms: int) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12.0, 4.5), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, outcome in zip(axes, OUTCOMES):
        part = sweep[(sweep.outcome == outcome) & (sweep.subset == "all") & (sweep.metric == KEY[outcome])]
        for j, model in enumerate(("main", "linear", "context")):
            m = part[part.model == model].sort_values("k")
            if m.empty:
                continue
            x = m.k + (j - 1) * 0.6
            err = np.vstack([m["mean"] - m.mean_ci_lower, m.mean_ci_upper - m["mean"]])
            ax.errorbar(x, m["mean"], yerr=err, marker="o", markersize=4, capsize=3, label=m.label.iloc[0])
        ax.set_xlabel("early window k (weeks)")
        ax.set_ylabel(f"out-of-fold {LABEL[KEY[outcome]]}")
        ax.set_title(f"{outcome} at week {HORIZON}: score against window length")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, title=f"{firms} firms × 5 strategies × 3 environments", title_fontsize=7)
    fig.savefig(path, dpi=110)


def quick_fit(data, k: int, outcome: str, args, horizon: int | None = None) -> EarlyWarning:
    """Scores only (no permutation importance), the same folds as the main fits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a family without failures: reported in the main fit
        return EarlyWarning(
            k=k, outcome=outcome, horizon=horizon, n_repeats=0, n_jobs=args.jobs, random_state=args.seed
        ).fit(data)


# ----------------------------------------------------------------------------------------------
# the interval against simulated truth
# ----------------------------------------------------------------------------------------------
def coverage(replicates: int, firms: int, k: int, truth_draws: int, seed: int, jobs: int) -> dict:
    """Coverage of the 95% corrected resampled t interval (and the naive t) for the main model's
    out-of-fold R², against the expected R² of the same procedure on fresh simulated firms.

    One population (volatile environment, bpo_bpm and bso, 104 weeks; cumulative FCF at week 104
    from the first k weeks): replicate r cross-validates firms r·n … r·n + n − 1 (5 folds); the
    truth is the mean, over ``truth_draws`` random training sets of the size of a training fold
    (4n/5 firms, from the replicates' firms), of the R² on a held-out pool of 4,000 firms that no
    replicate uses (the target of the Nadeau & Bengio interval: the expected performance of the
    procedure trained on a training fold's worth of firms).
    """
    from sklearn.metrics import r2_score

    horizon, pool = 104, 4000
    total = replicates * firms + pool
    log(f"coverage: simulating {total} firms × 2 strategies × {horizon} weeks")
    res = compare(
        strategies=["bpo_bpm", "bso"],
        environments=["volatile"],
        n_orgs=total,
        periods=horizon,
        horizons=[horizon],
        seed=seed,
    )
    quiet = dict(k=k, outcome="cumulative_fcf", n_repeats=0, baselines=False, by=None)
    rows = []
    for r in range(replicates):
        ew = EarlyWarning(**quiet, random_state=r).fit(
            res.select(firms=np.arange(r * firms, (r + 1) * firms))
        )
        row = ew.summary_frame().query("subset == 'all' and model == 'main' and metric == 'r2'").iloc[0]
        half = row["std"] / np.sqrt(row.n_splits) * sps.t.ppf(0.975, row.n_splits - 1)
        rows.append(
            {
                "replicate": r,
                "mean": row["mean"],
                "lower": row.mean_ci_lower,
                "upper": row.mean_ci_upper,
                "naive_lower": row["mean"] - half,
                "naive_upper": row["mean"] + half,
            }
        )
        if (r + 1) % 25 == 0:
            log(f"coverage: {r + 1}/{replicates} replicates")
    # the truth: the main model refitted on 4n/5 firms drawn from the replicates' firms (what a
    # training fold holds), scored on the pool of firms no replicate uses
    rng = np.random.default_rng(seed + 1)
    pool_res = res.select(firms=np.arange(replicates * firms, total))
    y_pool = np.concatenate(
        [pool_res.values("volatile", s, "cumulative_fcf", horizon) for s in pool_res.strategies]
    )
    truths = []
    for _ in range(truth_draws):
        chosen = np.sort(rng.choice(replicates * firms, size=firms * 4 // 5, replace=False))
        ew = EarlyWarning(**quiet, cv=2, random_state=0).fit(
            res.select(firms=chosen)
        )  # model_: fit on all of them
        truths.append(r2_score(y_pool, ew.predict(pool_res)))
    truths = np.asarray(truths)
    truth = float(truths.mean())
    frame = pd.DataFrame(rows)
    cover = ((frame.lower <= truth) & (truth <= frame.upper)).to_numpy()
    cover_naive = ((frame.naive_lower <= truth) & (truth <= frame.naive_upper)).to_numpy()
    n = len(frame)
    return {
        "design": {
            "environment": "volatile",
            "strategies": ["bpo_bpm", "bso"],
            "periods": horizon,
            "outcome": f"cumulative_fcf at week {horizon}",
            "k": k,
            "firms_per_replicate": firms,
            "replicates": replicates,
            "pool_firms": pool,
            "truth_draws": truth_draws,
            "seed": seed,
        },
        "truth_r2": truth,
        "truth_mc_se": float(truths.std(ddof=1) / np.sqrt(truths.size)),
        "truth_sd_over_training_sets": float(truths.std(ddof=1)),
        "mean_cv_estimate": float(frame["mean"].mean()),
        "sd_cv_estimate": float(frame["mean"].std(ddof=1)),
        "coverage_nadeau_bengio": float(cover.mean()),
        "coverage_nadeau_bengio_se": float(np.sqrt(cover.mean() * (1 - cover.mean()) / n)),
        "coverage_naive_t": float(cover_naive.mean()),
        "coverage_naive_t_se": float(np.sqrt(cover_naive.mean() * (1 - cover_naive.mean()) / n)),
        "mean_width_nadeau_bengio": float((frame.upper - frame.lower).mean()),
        "mean_width_naive_t": float((frame.naive_upper - frame.naive_lower).mean()),
    }


# ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--firms", type=int, default=300, help="firms per strategy and environment (default 300)")
    p.add_argument("--k", type=int, default=26, help="early window in weeks (default 26)")
    p.add_argument("--ks", type=int, nargs="*", default=[4, 13, 26, 52, 104], help="windows of the k sweep")
    p.add_argument("--repeats", type=int, default=3, help="permutations per feature and split (default 3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the firms and of the folds (default 0)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes over CV splits (default 2)")
    p.add_argument(
        "--coverage", type=int, default=0, help="replicates of the interval check (default 0: skip)"
    )
    p.add_argument(
        "--coverage-firms", type=int, default=100, help="firms per coverage replicate (default 100)"
    )
    p.add_argument("--truth-draws", type=int, default=200, help="training sets for the coverage truth")
    p.add_argument("--skip-main", action="store_true", help="only the coverage check")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--figures", type=Path, default=FIGURES)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.figures.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    report: dict = {}
    md: list[str] = []

    if not args.skip_main:
        t0 = time.perf_counter()
        log(f"compare: {args.firms} firms × 5 strategies × 3 environments × {HORIZON} weeks")
        res = compare(n_orgs=args.firms, seed=args.seed)
        report["compare_s"] = round(time.perf_counter() - t0, 1)
        fits = {}
        for outcome in OUTCOMES:
            t0 = time.perf_counter()
            log(f"fit: {outcome} from the first {args.k} weeks")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                ew = EarlyWarning(
                    k=args.k,
                    outcome=outcome,
                    n_repeats=args.repeats,
                    n_jobs=args.jobs,
                    random_state=args.seed,
                ).fit(res)
            fits[outcome] = ew
            frame, imp = ew.summary_frame(), ew.importance_frame()
            frame.to_csv(args.out / f"scores_{outcome}.csv", index=False)
            imp.to_csv(args.out / f"importance_{outcome}.csv", index=False)
            ew.result_.cv_results.to_csv(args.out / f"cv_results_{outcome}.csv", index=False)
            ew.plot(top=12).savefig(args.figures / f"{outcome}.png", dpi=110)
            report[outcome] = {
                "fit_s": round(time.perf_counter() - t0, 1),
                "warnings": [str(w.message) for w in caught],
                "verdict": ew.result_.verdict(),
                "prevalence": ew.result_.subset_prevalence if outcome == "survival" else None,
            }
            md += [
                f"### {outcome} at week {HORIZON} from the first {args.k} weeks",
                "",
                scores_table(frame[frame.kind == "model"]),
                "",
                "Gains of the main model (per-split differences on the same test firms):",
                "",
                scores_table(frame[frame.kind == "gain"]),
                "",
                importance_table(imp),
                "",
                *[f"- {line}" for line in ew.result_.verdict()],
                "",
            ]
            log(f"  {report[outcome]['fit_s']} s")

        # how the scores grow with the window
        rows = []
        for k in args.ks:
            for outcome in OUTCOMES:
                log(f"k sweep: {outcome}, k = {k}")
                ew = fits[outcome] if k == args.k else quick_fit(res, k, outcome, args)
                frame = ew.summary_frame()
                frame["k"], frame["outcome"] = k, outcome
                frame["label"] = frame.model.map(ew.result_.models).fillna(frame.model)
                rows.append(frame)
        sweep = pd.concat(rows, ignore_index=True)
        sweep.to_csv(args.out / "k_sweep.csv", index=False)
        k_sweep_figure(sweep, args.figures / "k_sweep.png", args.firms)
        md += [
            "### Scores against the window length k (all firms)",
            "",
            "| outcome | k (weeks) | "
            + " | ".join(f"`{m}`" for m in ("main", "linear", "context", "main − context"))
            + " |",
            "| :--- | ---: |" + " ---: |" * 4,
        ]
        for (outcome, k), part in sweep[(sweep.subset == "all")].groupby(["outcome", "k"], sort=False):
            part = part[part.metric == KEY[outcome]].set_index("model")
            md.append(
                f"| {outcome} ({LABEL[KEY[outcome]]}) | {k} | "
                + " | ".join(interval(part.loc[m]) for m in ("main", "linear", "context", "main − context"))
                + " |"
            )
        md.append("")

        # what grouping by firm index prevents
        rows = []
        for outcome in OUTCOMES:
            log(f"ungrouped CV: {outcome}")
            table = unit_table(res, args.k, outcome)
            for design, data in (
                ("grouped by firm index (EarlyWarning)", res),
                ("ungrouped (each unit its own firm)", table),
            ):
                ew = fits[outcome] if data is res else quick_fit(data, args.k, outcome, args, horizon=HORIZON)
                frame = (
                    ew.summary_frame()
                    .query("subset == 'all' and metric == @KEY[@outcome]")
                    .set_index("model")
                )
                rows.append(
                    {
                        "outcome": outcome,
                        "design": design,
                        **{
                            m: interval(frame.loc[m]) for m in ("main", "linear", "context", "main − context")
                        },
                        "main_mean": frame.loc["main", "mean"],
                    }
                )
        leak = pd.DataFrame(rows)
        leak.to_csv(args.out / "grouping.csv", index=False)
        md += [
            "### Grouped against ungrouped cross-validation",
            "",
            "| outcome | folds | `main` | `linear` | `context` | `main − context` |",
            "| :--- | :--- | ---: | ---: | ---: | ---: |",
        ]
        md += [
            f"| {r.outcome} | {r.design} | {r.main} | {r.linear} | {r.context} | {r['main − context']} |"
            for _, r in leak.iterrows()
        ]
        md.append("")

    if args.coverage:
        t0 = time.perf_counter()
        report["coverage"] = coverage(
            args.coverage, args.coverage_firms, args.k, args.truth_draws, args.seed, args.jobs
        )
        report["coverage"]["wall_s"] = round(time.perf_counter() - t0, 1)
        c = report["coverage"]
        md += [
            "### Coverage of the 95% interval for R² against simulated truth",
            "",
            f"- truth (expected out-of-sample R² of a model trained on {c['design']['firms_per_replicate'] * 4 // 5} "
            f"firms): {c['truth_r2']:.4f} ± {c['truth_mc_se']:.4f} (MC s.e.); mean CV estimate "
            f"{c['mean_cv_estimate']:.4f} (sd {c['sd_cv_estimate']:.4f} over replicates)",
            f"- corrected resampled t: coverage {100 * c['coverage_nadeau_bengio']:.1f}% ± "
            f"{100 * c['coverage_nadeau_bengio_se']:.1f}, mean width {c['mean_width_nadeau_bengio']:.4f}",
            f"- naive t over folds: coverage {100 * c['coverage_naive_t']:.1f}% ± "
            f"{100 * c['coverage_naive_t_se']:.1f}, mean width {c['mean_width_naive_t']:.4f}",
            "",
        ]

    commit, modified = source_state(REPO)
    meta = {
        "command": " ".join(["python", "experiments/early_warning_report.py", *map(shlex.quote, argv)]),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": commit,
        "model_files_modified": modified,
        "versions": package_versions(),
        "wall_s": round(time.perf_counter() - start, 1),
        **report,
    }
    (args.out / "run.json").write_text(json.dumps(meta, indent=2, default=str))
    (args.out / "report.md").write_text("\n".join(md))
    print(f"{meta['command']}  ({meta['date']}, commit {commit}, {meta['wall_s']:.0f} s)\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
