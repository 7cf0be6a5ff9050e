"""Sensitivity of the family difference on the default firm, and where each family wins.

Runs the configured analysis ``conf/sensitivity/family_fcf.yaml`` (the family difference in
cumulative free cash flow at week 260: ``bso`` minus the pooled ``bpo``, ``bpm``, ``bpo_bpm``,
per firm on common random numbers, volatile environment, five management, culture and
environment parameters) as a Morris screening and as Sobol' indices, with ``--replicates`` firms
per design point; then checks what replicate noise does to the indices on a function whose
indices are known, fits the surrogate of :mod:`orgsim.surrogate` to the Sobol' design's firms
(cross-validated error, partial dependence, the win map over the two parameters with the largest
total index), and measures the coverage of the surrogate's intervals on a planted signal.

1. **Morris** (``orgsim.sensitivity.run_configured("family_fcf")``): μ*, μ, σ with SALib's
   bootstrap intervals and each parameter's noise floor.
2. **Sobol'** (the same file with ``sensitivity.method=sobol``): S1 and ST, raw and corrected
   for replicate noise.
3. **Noise check on Ishigami** (Ishigami & Homma 1990, a = 7, b = 0.1, analytic indices): the
   Sobol' estimates over ``--noise-reps`` seeds for noise SD 0, 2 and 4 with R = 4 replicates:
   mean error against the analytic index, raw and noise-corrected, and the coverage of each
   95% interval (with its binomial standard error). And the Morris noise floor: how often a
   parameter without effect is called "above noise" (nominally 2.5%: the lower end of a 95%
   interval above the floor).
4. **Surrogate** (``orgsim.surrogate.FamilySurrogate``) on the Sobol' design's per-firm
   responses, folds grouped by design point: R², RMSE, the R² ceiling set by replicate noise,
   partial-dependence plots and the win map.
5. **Surrogate interval coverage** on a planted signal with the real data's shape (a mean
   difference 3 (a − b), per-firm noise half of one firm's variance, 4 replicates per point):
   over ``--coverage-reps`` datasets (B = ``--coverage-bootstrap`` refits each), the share of 25
   grid points whose 90% interval covers the planted mean, the share of decided points with the
   planted sign, and how often a point where the planted difference is 0 is decided anyway.

Usage::

    python experiments/sensitivity_report.py                 # about 10 minutes on 2 busy cores
    python experiments/sensitivity_report.py --quick --out /tmp/sens   # smoke test, a minute

It writes the figures to ``docs/figures/sensitivity/``, every table, the command and the
versions to ``experiments/output/sensitivity/`` (``report.md`` holds the Markdown tables that
docs/sensitivity.md quotes) and prints the report.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from orgsim._io import source_state
from orgsim.sensitivity import morris, run_configured, sobol
from orgsim.simulation import package_versions
from orgsim.surrogate import FamilySurrogate, training_data

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "experiments" / "output" / "sensitivity"
FIGURES = REPO / "docs" / "figures" / "sensitivity"
NAME = "family_fcf"
SECTIONS = ("model", "noise", "coverage")
PI = math.pi
ISHIGAMI = {"x1": [-PI, PI], "x2": [-PI, PI], "x3": [-PI, PI]}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ishigami(X: pd.DataFrame, rng, sd: float) -> np.ndarray:
    """Ishigami & Homma (1990), a = 7, b = 0.1, plus N(0, sd²) noise."""
    x1, x2, x3 = X["x1"].to_numpy(), X["x2"].to_numpy(), X["x3"].to_numpy()
    y = np.sin(x1) + 7 * np.sin(x2) ** 2 + 0.1 * x3**4 * np.sin(x1)
    return y + rng.normal(0.0, sd, len(X)) if sd > 0 else y


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> dict[tuple[str, str], float]:
    """Analytic indices: V = a²/8 + bπ⁴/5 + b²π⁸/18 + 1/2, V1 = (1 + bπ⁴/5)²/2, V2 = a²/8,
    V13 = 8b²π⁸/225 (Ishigami & Homma 1990; Sobol' & Levitan 1999)."""
    v = a**2 / 8 + b * PI**4 / 5 + b**2 * PI**8 / 18 + 0.5
    v1, v2, v13 = 0.5 * (1 + b * PI**4 / 5) ** 2, a**2 / 8, 8 * b**2 * PI**8 / 225
    return {
        ("x1", "S1"): v1 / v,
        ("x2", "S1"): v2 / v,
        ("x3", "S1"): 0.0,
        ("x1", "ST"): (v1 + v13) / v,
        ("x2", "ST"): v2 / v,
        ("x3", "ST"): v13 / v,
    }


def md(frame: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """A DataFrame as a Markdown table (numbers with ``floatfmt``)."""
    cols = list(frame.columns)

    def cell(v) -> str:
        if isinstance(v, float | np.floating):
            return "nan" if not np.isfinite(v) else format(float(v), floatfmt)
        return str(v)

    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def save(fig, name: str) -> Path:
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / name
    fig.savefig(path, dpi=110)
    return path


# ----------------------------------------------------------------------------------------------
# 1-2: the analyses of the default firm
# ----------------------------------------------------------------------------------------------
def run_model(args, out: Path) -> dict:
    common = [f"seed={args.seed}", f"sensitivity.replicates={args.replicates}"]
    log(f"[morris] {NAME}: {args.trajectories} trajectories, {args.replicates} replicates")
    m = run_configured(
        NAME, [*common, f"sensitivity.morris.trajectories={args.trajectories}"], progress=False
    )
    m.to_files(out / "morris", name=NAME)
    save(m.plot(), "morris.png")
    log(f"[sobol] {NAME}: N = {args.base_samples}, {args.replicates} replicates")
    s = run_configured(
        NAME,
        [*common, "sensitivity.method=sobol", f"sensitivity.sobol.base_samples={args.base_samples}"],
        progress=False,
    )
    s.to_files(out / "sobol", name=NAME)
    save(s.plot(), "sobol.png")
    return {"morris": m, "sobol": s}


def morris_table(m) -> pd.DataFrame:
    f = m.summary_frame(0.05)
    return pd.DataFrame(
        {
            "parameter": f.parameter,
            "range": [f"[{a:g}, {b:g}]" for a, b in zip(f.low, f.high)],
            "μ* (MU)": f["mean"].round(0),
            "95% interval": [f"[{a:,.0f}, {b:,.0f}]" for a, b in zip(f.mean_ci_lower, f.mean_ci_upper)],
            "μ (MU)": f.mu.round(0),
            "σ (MU)": f.sigma.round(0),
            "noise floor of μ*": f.noise_floor.round(0),
            "above noise": f.above_noise.map({True: "yes", False: "no"}),
        }
    )


def sobol_table(s) -> pd.DataFrame:
    f = s.summary_frame(0.05)
    rows = []
    for name in s.names:
        r = {"parameter": name}
        for index in ("S1", "ST"):
            x = f[(f.parameter == name) & (f["index"] == index)].iloc[0]
            r[f"{index}"] = f"{x['mean']:.3f} [{x.mean_ci_lower:.3f}, {x.mean_ci_upper:.3f}]"
            r[f"{index} noise-adjusted"] = (
                f"{x.adjusted:.3f} [{x.adjusted_ci_lower:.3f}, {x.adjusted_ci_upper:.3f}]"
            )
        rows.append(r)
    return pd.DataFrame(rows)


def noise_table(results: dict) -> pd.DataFrame:
    rows = []
    for method, r in results.items():
        n = r.noise
        rows.append(
            {
                "analysis": method,
                "design points": n.points,
                "replicates R": n.replicates,
                "σ per firm (MU)": math.sqrt(n.replicate_variance),
                "SD of the replicate means (MU)": math.sqrt(n.mean_variance),
                "σ²/R share of the means' variance": n.noise_share,
                "σ² share of one firm's variance": n.noise_share_per_firm,
                "time (s)": r.timings.get("total_s", float("nan")),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# 3: replicate noise on a function with known indices
# ----------------------------------------------------------------------------------------------
def noise_check(args) -> tuple[pd.DataFrame, pd.DataFrame]:
    truth = ishigami_indices()
    rows = []
    for sd in (0.0, 2.0, 4.0):
        log(f"[ishigami] noise SD {sd}: {args.noise_reps} seeds")
        for rep in range(args.noise_reps):
            res = sobol(
                ISHIGAMI,
                model=lambda X, rng, sd=sd: ishigami(X, rng, sd),
                base_samples=args.ishigami_n,
                replicates=4,
                resamples=200,
                seed=1000 * int(sd) + rep,
            )
            v, nu = res._noise_scale
            f = res.summary_frame(0.05).set_index(["parameter", "index"])
            for key, t in truth.items():
                x = f.loc[key]
                rows.append(
                    {
                        "noise SD": sd,
                        "noise share ν/V": nu / v,
                        "index": f"{key[1]}({key[0]})",
                        "truth": t,
                        "raw": x["mean"],
                        "adjusted": x.adjusted,
                        "raw se": x.mean_se,
                        "raw covers": x.mean_ci_lower <= t <= x.mean_ci_upper,
                        "adjusted covers": x.adjusted_ci_lower <= t <= x.adjusted_ci_upper,
                    }
                )
    d = pd.DataFrame(rows)
    n = args.noise_reps
    g = d.groupby(["noise SD", "index"], sort=False)
    table = g.agg(
        noise_share=("noise share ν/V", "mean"),
        truth=("truth", "first"),
        raw_error=("raw", "mean"),
        adjusted_error=("adjusted", "mean"),
        raw_coverage=("raw covers", "sum"),
        adjusted_coverage=("adjusted covers", "sum"),
        boot_se=("raw se", "mean"),
    ).reset_index()
    table["raw_error"] -= table.truth
    table["adjusted_error"] -= table.truth
    se_err = g.agg(raw_se=("raw", "std"), adj_se=("adjusted", "std")).reset_index()
    table["raw_error"] = [
        f"{e:+.3f} ± {s / math.sqrt(n):.3f}" for e, s in zip(table.raw_error, se_err.raw_se)
    ]
    table["adjusted_error"] = [
        f"{e:+.3f} ± {s / math.sqrt(n):.3f}" for e, s in zip(table.adjusted_error, se_err.adj_se)
    ]
    # SALib's bootstrap SE against the estimates' actual spread over seeds (1: calibrated)
    table["boot_se"] = table.boot_se / se_err.raw_se
    for col in ("raw_coverage", "adjusted_coverage"):
        table[col] = [f"{int(c)}/{n}" for c in table[col]]
    table = table.rename(
        columns={
            "noise_share": "noise share ν/V",
            "raw_error": "raw − truth (± SE over seeds)",
            "adjusted_error": "adjusted − truth",
            "raw_coverage": "raw 95% interval covers",
            "adjusted_coverage": "adjusted interval covers",
            "boot_se": "SALib SE / SD over seeds",
        }
    )

    # Morris: how often is a parameter without effect called above its noise floor?
    log(f"[morris noise floor] {args.noise_reps * 5} seeds")
    calls = []
    for rep in range(args.noise_reps * 5):
        res = morris(
            {"a": [0, 1], "u": [0, 1]},
            model=lambda X, rng: 2 * X["a"].to_numpy() + rng.normal(0.0, 1.0, len(X)),
            trajectories=20,
            replicates=4,
            resamples=200,
            seed=rep,
        )
        f = res.summary_frame(0.05).set_index("parameter")
        calls.append(
            {
                "u above noise": bool(f.loc["u", "above_noise"]),
                "u μ*/floor": f.loc["u", "mean"] / f.loc["u", "noise_floor"],
            }
        )
    c = pd.DataFrame(calls)
    p = float(c["u above noise"].mean())
    floor = pd.DataFrame(
        {
            "seeds": [len(c)],
            "u called above noise": [f"{p:.1%} ± {math.sqrt(max(p * (1 - p), 1e-12) / len(c)):.1%}"],
            "mean μ*(u) / noise floor": [
                f"{c['u μ*/floor'].mean():.3f} ± {c['u μ*/floor'].std() / math.sqrt(len(c)):.3f}"
            ],
        }
    )
    return table, floor


# ----------------------------------------------------------------------------------------------
# 4-5: the surrogate
# ----------------------------------------------------------------------------------------------
def run_surrogate(args, s) -> tuple[pd.DataFrame, dict]:
    X, y, groups = training_data(s)
    log(f"[surrogate] {len(X):,} firms, {len(set(groups))} design points, B = {args.bootstrap}")
    sur = FamilySurrogate(n_bootstrap=args.bootstrap, random_state=args.seed).fit(X, y, groups, unit="MU")
    save(sur.partial_dependence_plot(), "partial_dependence.png")
    st = s.summary_frame().query("index == 'ST'").sort_values("adjusted", ascending=False)
    x, yname = list(st.parameter[:2])
    wm = sur.win_map(x, yname, grid=30)
    save(wm.plot(), "win_map.png")
    wm.frame().to_csv(OUT / "win_map.csv", index=False)
    shares = wm.shares()
    return sur.score_frame(), {"x": x, "y": yname, "shares": shares, "fixed": wm.fixed}


def surrogate_coverage(args) -> pd.DataFrame:
    """Coverage of the surrogate's 90% intervals on a planted mean 3 (a − b) with per-firm
    noise of the variance of the planted mean (half of one firm's variance, as in the default
    firm's data), 200 design points × 4 replicates."""
    g, r = 200, 4
    sd = math.sqrt(9 / 6)  # Var(3 (a − b)) for a, b ~ U(0, 1)
    grid = np.linspace(0.1, 0.9, 5)
    ga, gb = np.meshgrid(grid, grid)
    query = pd.DataFrame({"a": ga.ravel(), "b": gb.ravel(), "nuisance": 0.5})
    planted = 3 * (query.a - query.b).to_numpy()
    rows = []
    for rep in range(args.coverage_reps):
        log(f"[surrogate coverage] dataset {rep + 1}/{args.coverage_reps}")
        rng = np.random.default_rng([0xC0FE, rep])
        pts = pd.DataFrame(
            {"a": rng.uniform(size=g), "b": rng.uniform(size=g), "nuisance": rng.uniform(size=g)}
        )
        X = pts.loc[np.repeat(np.arange(g), r)].reset_index(drop=True)
        y = 3 * (X.a - X.b).to_numpy() + rng.normal(0.0, sd, len(X))
        sur = FamilySurrogate(cv=2, n_bootstrap=args.coverage_bootstrap, alpha=0.1, random_state=rep).fit(
            X, y, np.repeat(np.arange(g), r)
        )
        out = sur.predict_interval(query)
        covers = (out.mean_ci_lower <= planted) & (planted <= out.mean_ci_upper)
        decided = (out.winner != "undecided").to_numpy()
        right = np.where(out.winner == "culture_aligned", planted > 0, planted < 0)
        off = planted != 0  # on the diagonal a = b the planted difference is 0: any call is false
        rows.append(
            {
                "covers": float(covers.mean()),
                "decided": float(decided[off].mean()),
                "right_sign": float(right[decided & off].mean()) if (decided & off).any() else float("nan"),
                "false_call_on_boundary": float(decided[~off].mean()),
                "width": float((out.mean_ci_upper - out.mean_ci_lower).mean()),
            }
        )
    d = pd.DataFrame(rows)
    n = len(d)
    return pd.DataFrame(
        {
            "datasets": [n],
            "90% interval covers the planted mean (25 points)": [
                f"{d.covers.mean():.1%} ± {d.covers.std() / math.sqrt(n):.1%}"
            ],
            "decided (planted ≠ 0, 20 points)": [f"{d.decided.mean():.0%}"],
            "decided with the planted sign": [f"{d.right_sign.mean():.1%}"],
            "decided where the planted difference is 0 (5 points)": [
                f"{d.false_call_on_boundary.mean():.0%}"
            ],
            "mean interval width": [f"{d.width.mean():.2f} (planted range ±2.4)"],
        }
    )


# ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    global OUT, FIGURES
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--replicates", type=int, default=10, help="firms per design point (default 10)")
    p.add_argument("--trajectories", type=int, default=20, help="Morris trajectories (default 20)")
    p.add_argument("--base-samples", type=int, default=128, help="Sobol' N, a power of 2 (default 128)")
    p.add_argument("--bootstrap", type=int, default=30, help="surrogate bootstrap refits B (default 30)")
    p.add_argument("--noise-reps", type=int, default=20, help="seeds per noise level (default 20)")
    p.add_argument("--ishigami-n", type=int, default=1024, help="Sobol' N for Ishigami (default 1024)")
    p.add_argument("--coverage-reps", type=int, default=10, help="planted datasets (default 10)")
    p.add_argument("--coverage-bootstrap", type=int, default=20, help="B in the coverage check (default 20)")
    p.add_argument("--quick", action="store_true", help="a smoke test: tiny designs")
    p.add_argument(
        "--only", choices=("all", *SECTIONS), default="all", help="run one section (items 1, 2, 4; 3; 5)"
    )
    p.add_argument(
        "--out", type=Path, default=None, help="output directory (default experiments/output/sensitivity)"
    )
    args = p.parse_args(argv)
    if args.quick:
        args.replicates, args.trajectories, args.base_samples = 4, 4, 16
        args.bootstrap, args.noise_reps, args.ishigami_n, args.coverage_reps = 10, 2, 256, 2
        args.coverage_bootstrap = 10
    if args.out is not None:
        OUT, FIGURES = args.out, args.out / "figures"
    OUT.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    commit, _ = source_state(REPO)

    command = "python experiments/sensitivity_report.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]
    )

    def write(section: str, *parts: str) -> None:
        """Write one section's Markdown (``<section>.md``) and rebuild report.md from the
        sections on disk, so that each section can be rerun alone (``--only``)."""
        minutes = (time.perf_counter() - start) / 60
        head = (
            f"Command: `{command.strip()}` · seed {args.seed} · commit {commit or 'unknown'} (plus the working "
            f"tree) · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {minutes:.1f} min · "
            + ", ".join(f"{k} {v}" for k, v in package_versions().items())
        )
        (OUT / f"{section}.md").write_text("\n\n".join([head, *parts]) + "\n")
        (OUT / f"{section}.json").write_text(
            json.dumps(
                {"command": command, "args": {k: str(v) for k, v in vars(args).items()}, "commit": commit,
                 "versions": package_versions(), "minutes": minutes},
                indent=2,
            )
        )  # fmt: skip
        done = [OUT / f"{name}.md" for name in SECTIONS if (OUT / f"{name}.md").exists()]
        report = "\n\n".join(["# Sensitivity report (generated)", *(f.read_text().strip() for f in done)])
        (OUT / "report.md").write_text(report + "\n")

    if args.only in ("all", "model"):
        results = run_model(args, OUT)
        scores, wm = run_surrogate(args, results["sobol"])
        write(
            "model",
            "## Noise in the default firm's analyses",
            md(noise_table(results), ".3g"),
            "## Morris screening",
            md(morris_table(results["morris"]), ".6g"),
            "## Sobol' indices (estimate [95% interval])",
            md(sobol_table(results["sobol"])),
            "## Surrogate on the Sobol' design (folds grouped by design point)",
            md(scores.drop(columns="what"), ".3g"),
            f"Win map over {wm['x']} × {wm['y']} (others at their medians "
            + ", ".join(f"{k} = {v:.3g}" for k, v in wm["fixed"].items())
            + "): "
            + ", ".join(f"{k} {v:.0%}" for k, v in wm["shares"].items()),
        )
    if args.only in ("all", "noise"):
        ish, floor = noise_check(args)
        write(
            "noise",
            f"## Replicate noise on Ishigami (R = 4, N = {args.ishigami_n}, {args.noise_reps} seeds per level)",
            md(ish),
            f"Morris noise floor (2a + N(0, 1), u unused, 20 trajectories, R = 4, {5 * args.noise_reps} seeds):",
            md(floor),
        )
    if args.only in ("all", "coverage"):
        cov = surrogate_coverage(args)
        write(
            "coverage",
            f"## Surrogate intervals on a planted signal (B = {args.coverage_bootstrap})",
            md(cov),
        )
    minutes = (time.perf_counter() - start) / 60
    print((OUT / "report.md").read_text())
    log(f"wrote {OUT / 'report.md'} and the figures in {FIGURES} ({minutes:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
