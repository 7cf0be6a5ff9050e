"""Can Sterman's (1989) decision rule be recovered from simulated beer-game orders?

Issue 14, item 9 (second half). orgsim's beer game (docs/model.md §8.1) runs with its default
decision parameters, Sterman's (1989) mean estimates θ = 0.36, α_S = 0.26, β = 0.34, S' = 17,
at every echelon, plus decision noise (``management.execution_noise``: each order is multiplied
by 1 + σ_E ε) and demand noise (``demand.cv``) so that the series identify the parameters. Each
firm of a population is one synthetic dataset (its own random streams, derived from the seed and
its index); ``orgsim._ordering_rule.fit_ordering_rule`` fits the rule to each echelon's orders
and the script reports, per echelon and parameter, over the R datasets:

- bias (mean estimate − truth) and RMSE, each with its Monte Carlo standard error (MCSE:
  sd/√R for the bias; sd(e²)/(2·RMSE·√R) for the RMSE, by the delta method);
- the mean reported standard error against the standard deviation of the estimates;
- the coverage of the 95% intervals (nonrobust σ²(JᵀJ)⁻¹, HC1, HC3, and the wild bootstrap's
  percentile interval on the first ``--boot-datasets`` datasets), with its binomial MCSE.

Designs: ``main`` (200 weeks, integer cases, σ_E = 0.1, demand cv 0.2), the same data fitted
with ``censoring="positive"``, ``continuous`` (fractional units: no rounding), ``short`` (the
board game's 36 weeks) and ``long`` (800 weeks). The delay from order to receipt is given from the
config (known in a simulation study); the script also reports how often ``ordering_inputs``
infers it correctly from the records alone.

Usage::

    python experiments/decision_rule_recovery.py              # R = 200, 24 min on 2 busy shared cores
    python experiments/decision_rule_recovery.py --datasets 40 --boot-datasets 10 --report /tmp/dr.md

It rewrites the section between the markers in ``docs/decision_rules.md`` (``--report``),
draws two plots into ``docs/figures/decision_rules/`` (``--figures``) and writes every figure
(``recovery.csv``, ``recovery.json``: the table, the command and the versions) to
``experiments/output/decision_rule_recovery/`` (``--out``); ``--report-only`` rebuilds the section
and the plots from the saved figures.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import orgsim
from orgsim._io import replace_section, source_state
from orgsim._ordering_rule import PARAMETERS, fit_ordering_rule, ordering_inputs
from orgsim.network import build_network
from orgsim.simulation import package_versions

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "experiments" / "output" / "decision_rule_recovery"
FIGURES = REPO / "docs" / "figures" / "decision_rules"
REPORT = REPO / "docs" / "decision_rules.md"
START, END = "<!-- recovery:start -->", "<!-- recovery:end -->"
TRUTH = {"theta": 0.36, "alpha_s": 0.26, "beta": 0.34, "s_prime": 17.0}  # conf/scenario/beer_game.yaml
SYMBOL = {"theta": "θ", "alpha_s": "α_S", "beta": "β", "s_prime": "S'"}
ECHELONS = ("retailer", "wholesaler", "distributor", "factory")
INTERVALS = ("nonrobust", "HC1", "HC3", "bootstrap")
COVER_NAMES = {"bootstrap": "wild bootstrap", "HC3_boot": "HC3 (bootstrapped datasets)"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def overrides(periods: int, datasets: int, *extra: str) -> list[str]:
    return [
        "scenario=beer_game",
        f"periods={periods}",
        f"n_orgs={datasets}",
        "demand.cv=0.2",
        "management.execution_noise=0.1",
        *extra,
    ]


def simulate(over: list[str], seed: int) -> tuple[pd.DataFrame, dict[str, int]]:
    cfg = orgsim.compose(over)
    teams = orgsim.simulate(cfg, engine="numba", teams=True, seed=seed, progress=False).teams
    net = build_network(cfg)
    delays = {net.names[i]: int(net.order_delay[i] + net.lead_time[i]) for i in range(net.n_teams)}
    return teams, delays


def errors_table(res, design: str, boot=None) -> pd.DataFrame:
    """Per echelon and parameter: bias, RMSE, SE against SD, interval coverage, with MCSEs."""
    frames = {ct: res.summary_frame(cov_type=ct) for ct in ("nonrobust", "HC1", "HC3")}
    if boot is not None:
        frames["bootstrap"] = boot.summary_frame(method="bootstrap")
        # the Wald intervals on the same (first) datasets, for a like-for-like comparison
        frames["HC3_boot"] = boot.summary_frame(cov_type="HC3")
    rows = []
    main = frames["HC3"]
    for team in ECHELONS:
        g = main[main.team == team]
        for p in PARAMETERS:
            truth = TRUTH[p]
            e = g[p].to_numpy() - truth
            r = e.size
            rmse = float(np.sqrt(np.mean(e**2)))
            row = {
                "design": design,
                "echelon": team,
                "parameter": p,
                "truth": truth,
                "R": r,
                "mean": float(g[p].mean()),
                "bias": float(e.mean()),
                "bias_mcse": float(e.std(ddof=1) / np.sqrt(r)),
                "rmse": rmse,
                "rmse_mcse": float(np.std(e**2, ddof=1) / (2 * rmse * np.sqrt(r))),
                "sd": float(e.std(ddof=1)),
                "mean_se_hc3": float(g[f"{p}_se"].mean()),
                "at_bound": float(g.at_bound.str.contains(p).mean()),
                "se_missing": float(g[f"{p}_se"].isna().mean()),
            }
            for kind, f in frames.items():
                h = f[f.team == team]
                hit = ((h[f"{p}_ci_lower"] <= truth) & (truth <= h[f"{p}_ci_upper"])).to_numpy()
                row[f"cover_{kind}"] = float(hit.mean())
                row[f"cover_{kind}_mcse"] = float(np.sqrt(hit.mean() * (1 - hit.mean()) / hit.size))
                row[f"n_{kind}"] = int(hit.size)
            rows.append(row)
    return pd.DataFrame(rows)


def infer_check(teams: pd.DataFrame, delays: dict[str, int]) -> tuple[int, int]:
    """(teams whose inferred delay equals the config's, teams tried), firm by firm."""
    ok = tried = 0
    for _, firm in teams.groupby("org"):
        tried += firm.team.nunique()
        try:
            got = ordering_inputs(firm).groupby("team", observed=True).delay.first()
        except ValueError:
            continue
        ok += int(sum(got[t] == d for t, d in delays.items()))
    return ok, tried


def fmt(v: float, mcse: float | None = None, digits: int = 3) -> str:
    s = f"{v:.{digits}f}"
    return s if mcse is None else f"{s} ± {mcse:.{digits}f}"


def markdown(tables: pd.DataFrame, meta: dict) -> str:
    """The report section written into docs/decision_rules.md."""
    lines = [
        START,
        "",
        f"*Generated by `{meta['command']}` on {meta['date']} (orgsim {meta['versions']['orgsim']}, "
        f"commit {meta['commit']}, numpy {meta['versions']['numpy']}, scipy {meta['scipy']}; "
        f"{meta['runtime_s']:.0f} s). Every figure is in `experiments/output/decision_rule_recovery/`.*",
        "",
        f"Truth: θ = {TRUTH['theta']}, α_S = {TRUTH['alpha_s']}, β = {TRUTH['beta']}, S' = {TRUTH['s_prime']:g} "
        "at every echelon (the `beer_game` defaults, Sterman's 1989 mean estimates); decision noise "
        "`management.execution_noise=0.1`, demand noise `demand.cv=0.2`, integer cases, orders floored at 0; "
        f"the first 4 weeks (fixed orders) are not fitted. R = {meta['datasets']} synthetic datasets "
        f"(firms 0 … {meta['datasets'] - 1} of seed {meta['seed']}). ± is one Monte Carlo standard error.",
        "",
        f"Delay inference: `ordering_inputs` found the config's delay (4 weeks, 3 for the factory) for "
        f"{meta['infer_ok']} of {meta['infer_tried']} echelon series of the main design.",
        "",
    ]
    for design, title in meta["design_titles"].items():
        t = tables[tables.design == design]
        if t.empty:
            continue
        kinds = [k for k in (*INTERVALS, "HC3_boot") if f"cover_{k}" in t and t[f"cover_{k}"].notna().any()]
        lines += [f"#### {title}", ""]
        head = [
            "echelon",
            "",
            "bias",
            "RMSE",
            "SD",
            "mean SE (HC3)",
            *[f"cover {COVER_NAMES.get(k, k)}" for k in kinds],
            "at bound",
        ]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for _, r in t.iterrows():
            d = 2 if r.parameter == "s_prime" else 3
            cells = [
                r.echelon,
                SYMBOL[r.parameter],
                fmt(r.bias, r.bias_mcse, d),
                fmt(r.rmse, r.rmse_mcse, d),
                fmt(r.sd, None, d),
                fmt(r.mean_se_hc3, None, d),
                *[fmt(r[f"cover_{k}"], r[f"cover_{k}_mcse"], 3) for k in kinds],
                f"{r.at_bound:.0%}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        if "bootstrap" in kinds:
            lines += [
                "",
                f"(wild bootstrap: residuals scaled by 1/(1 − h), Rademacher signs, {meta['n_boot']} draws, "
                f"percentile intervals, on the first {int(t.n_bootstrap.iloc[0])} datasets; the last coverage "
                "column gives HC3's on those same datasets)",
            ]
        lines.append("")
    lines += [
        "Coverage of each interval in the main design (±2 MCSE):",
        "",
        "![coverage of the 95% intervals, main design](figures/decision_rules/coverage.png)",
        "",
        "RMSE (% of the truth) and HC3 coverage against the length of the game (36, 200, 800 weeks):",
        "",
        "![RMSE and coverage against the length of the game](figures/decision_rules/horizon.png)",
        "",
        END,
    ]
    return "\n".join(lines)


def plot_coverage(t: pd.DataFrame, path: Path) -> None:
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.8), sharey=True)
    x = np.arange(len(ECHELONS))
    for ax, p in zip(axes, PARAMETERS):
        g = t[t.parameter == p].set_index("echelon").loc[list(ECHELONS)]
        for k, kind in enumerate(INTERVALS):
            if f"cover_{kind}" not in g or g[f"cover_{kind}"].isna().all():
                continue
            ax.errorbar(
                x + (k - 1.5) * 0.15,
                g[f"cover_{kind}"],
                yerr=2 * g[f"cover_{kind}_mcse"],
                fmt="o",
                capsize=3,
                label=kind,
            )
        ax.axhline(0.95, color="black", lw=0.8, ls="--", label="nominal 0.95")
        ax.set_xticks(x, ECHELONS, rotation=30)
        ax.set_title(f"{SYMBOL[p]} (truth {TRUTH[p]:g})")
        ax.set_xlabel("echelon")
        ax.set_ylim(top=1.05)
    axes[0].set_ylabel("coverage of the 95% interval (share of datasets)")
    axes[-1].legend(loc="lower right", fontsize=8)
    fig.suptitle("Beer game, 200 weeks: coverage of the 95% intervals for Sterman's rule (±2 MCSE)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_horizon(tables: pd.DataFrame, horizons: dict[str, int], path: Path) -> None:
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.5), sharex=True)
    for j, p in enumerate(PARAMETERS):
        for team in ECHELONS:
            rows = [
                tables[(tables.design == d) & (tables.echelon == team) & (tables.parameter == p)]
                for d in horizons
            ]
            ok = [r for r in rows if not r.empty]
            weeks = [horizons[r.design.iloc[0]] for r in ok]
            axes[0, j].errorbar(weeks, [100 * r.rmse.iloc[0] / TRUTH[p] for r in ok],
                                yerr=[200 * r.rmse_mcse.iloc[0] / TRUTH[p] for r in ok], marker="o", capsize=3, label=team)  # fmt: skip
            axes[1, j].errorbar(weeks, [r.cover_HC3.iloc[0] for r in ok], yerr=[2 * r.cover_HC3_mcse.iloc[0] for r in ok],
                                marker="o", capsize=3, label=team)  # fmt: skip
        axes[1, j].axhline(0.95, color="black", lw=0.8, ls="--")
        axes[0, j].set_title(f"{SYMBOL[p]} (truth {TRUTH[p]:g})")
        axes[1, j].set_xlabel("weeks in the game (log scale)")
        axes[1, j].set_xscale("log")
        axes[1, j].set_xticks(list(horizons.values()), [str(w) for w in horizons.values()])
        axes[1, j].xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axes[1, j].set_ylim(top=1.05)
    axes[0, 0].set_ylabel("RMSE (% of the true value)")
    axes[1, 0].set_ylabel("HC3 95% interval coverage")
    axes[0, -1].legend(fontsize=8)
    fig.suptitle(
        "Sterman's rule from simulated beer games: error and coverage against the length of the game (±2 MCSE)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", type=int, default=200, help="synthetic datasets (firms) per design")
    ap.add_argument("--long-datasets", type=int, default=100, help="datasets of the 800-week design")
    ap.add_argument("--boot-datasets", type=int, default=50, help="datasets also bootstrapped (main design)")
    ap.add_argument("--n-boot", type=int, default=199, help="bootstrap draws per team")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes for the fits")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--report", type=Path, default=REPORT)
    ap.add_argument("--figures", type=Path, default=FIGURES, help="where the two plots go")
    ap.add_argument("--report-only", action="store_true", help="rebuild the report and plots from --out")
    args = ap.parse_args(argv)
    if args.report_only:
        saved = json.loads((args.out / "recovery.json").read_text())
        write_outputs(pd.DataFrame(saved["rows"]), saved["meta"], args.figures, args.report)
        return 0
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    fit = dict(fixed_order_periods=4, n_jobs=args.jobs)
    tables, meta = [], {}

    log(f"main: {args.datasets} beer games of 200 weeks")
    teams, delays = simulate(overrides(200, args.datasets), args.seed)
    res = fit_ordering_rule(teams, delay=delays, **fit)
    first = teams[teams.org < args.boot_datasets]
    log(f"bootstrap: {args.boot_datasets} datasets × 4 echelons × {args.n_boot} draws")
    boot = fit_ordering_rule(first, delay=delays, n_boot=args.n_boot, seed=args.seed, **fit)
    tables.append(errors_table(res, "main", boot))
    meta["infer_ok"], meta["infer_tried"] = infer_check(teams, delays)
    log("main data, censoring='positive'")
    tables.append(
        errors_table(fit_ordering_rule(teams, delay=delays, censoring="positive", **fit), "positive")
    )
    log("continuous units")
    teams_c, _ = simulate(overrides(200, args.datasets, "network.integer_units=false"), args.seed)
    tables.append(errors_table(fit_ordering_rule(teams_c, delay=delays, **fit), "continuous"))
    log("36 weeks")
    teams_s, _ = simulate(overrides(36, args.datasets), args.seed)
    tables.append(errors_table(fit_ordering_rule(teams_s, delay=delays, **fit), "short"))
    log(f"800 weeks, {args.long_datasets} datasets")
    teams_l, _ = simulate(overrides(800, args.long_datasets), args.seed)
    tables.append(errors_table(fit_ordering_rule(teams_l, delay=delays, **fit), "long"))
    table = pd.concat(tables, ignore_index=True)

    commit, _ = source_state(REPO)
    import scipy

    meta.update(
        command="python "
        + " ".join(
            shlex.quote(a) for a in ["experiments/decision_rule_recovery.py", *(argv or sys.argv[1:])]
        ),
        date=datetime.now(UTC).strftime("%Y-%m-%d"),
        commit=commit,
        versions=package_versions(),
        scipy=scipy.__version__,
        seed=args.seed,
        datasets=args.datasets,
        long_datasets=args.long_datasets,
        n_boot=args.n_boot,
        runtime_s=time.perf_counter() - start,
        design_titles={
            "main": "Main design: 200 weeks, integer cases, censoring='floor' (the default)",
            "positive": "Same data, censoring='positive' (zero orders left out)",
            "continuous": "200 weeks, fractional units (network.integer_units=false): no rounding",
            "short": "36 weeks (the board game's length)",
            "long": f"800 weeks ({args.long_datasets} datasets)",
        },
    )
    table.to_csv(args.out / "recovery.csv", index=False)
    (args.out / "recovery.json").write_text(
        json.dumps({"meta": meta, "rows": table.to_dict(orient="records")}, indent=1)
    )
    write_outputs(table, meta, args.figures, args.report)
    log(f"wrote {args.report}, {args.figures} and {args.out} in {meta['runtime_s']:.0f} s")
    return 0


def write_outputs(table: pd.DataFrame, meta: dict, figures: Path, report: Path) -> None:
    """The plots (into ``figures``), and the report section between the markers of ``report``."""
    figures.mkdir(parents=True, exist_ok=True)
    plot_coverage(table[table.design == "main"], figures / "coverage.png")
    plot_horizon(table, {"short": 36, "main": 200, "long": 800}, figures / "horizon.png")
    section = markdown(table, meta)
    replace_section(report, START, END, section)
    print(section)


if __name__ == "__main__":
    sys.exit(main())
