"""Does the SMM calibration recover known parameters, and do its intervals cover them?

Issue 14, items 5 and 9 (first half). Two designs, each from a ``conf/calibration`` file:

- ``default_firm``: the default (multinational) firm's weekly KPI series (260 weeks), three
  parameters: the teams' stock adjustment ``policy.alpha_s``, the demand noise ``demand.cv`` and
  the culture layer's socialisation rate ``culture.p1`` (March 1991), from 13 moments of the
  inventory, backlog, demand, fill rate, knowledge and cost series.
- ``beer_game``: Sterman's (1989) ordering rule (θ, α_S, β, S') from the order, inventory and
  backlog series of the four echelons of the 36-week beer game with decision noise
  (``management.execution_noise = 0.1``), 16 moments.

For each design, ``orgsim.calibration.recovery`` simulates K synthetic datasets of N firms at the
model's own parameter values (the truth), calibrates each exactly as ``orgsim.calibrate`` would
(two-step optimal weighting, the settings file's search: TPE or CMA-ES, compass polish, sandwich
standard errors on common random numbers, every dataset's estimation on its own simulated
replicates) and reports per parameter:
bias with its Monte Carlo SE (sd/√K), RMSE, the SD of the estimates against the mean sandwich SE,
the coverage of the 95% Wald intervals with its binomial Monte Carlo SE, and the rejection rate
of the J test at 0.05.

Pass criteria, stated before the run (each reported as PASS or FAIL with its figure):

- *recovery*: RMSE at most 10% of the parameter's bounds' width;
- *bias*: |bias| at most 4 Monte Carlo SEs, or at most 2% of the bounds' width;
- *coverage*: the 95% intervals' coverage at least 0.95 − 4·√(0.95·0.05/K) (0.77 for K = 24;
  a correct interval fails this about once in 10⁴ runs).

Usage::

    python experiments/calibration_recovery.py            # K = 24 datasets per design
    python experiments/calibration_recovery.py --datasets 4 --trials 16 --report /tmp/cal.md   # smoke test

It rewrites the section between the markers in ``docs/calibration.md`` (``--report``), draws the
recovery plots into ``docs/figures/calibration/`` (``--figures``) and writes the estimates and a
JSON of every figure, the command and the versions to ``experiments/output/calibration_recovery/``
(``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- calibration_recovery:begin -->", "<!-- calibration_recovery:end -->"
EX_BEGIN, EX_END = "<!-- calibration_example:begin -->", "<!-- calibration_example:end -->"
#: design -> (firms per dataset, trials per step)
DESIGNS = {"default_firm": (2, 48), "beer_game": (8, 192)}


_SAMPLERS = {"tpe": "TPE", "cmaes": "CMA-ES"}


def _version(name: str) -> str:
    from importlib import metadata

    return metadata.version(name)


def criteria(table, bounds, K: int) -> dict:
    """PASS/FAIL per parameter and criterion (see the module docstring)."""
    out = {}
    floor = 0.95 - 4 * np.sqrt(0.95 * 0.05 / K)
    for name, r in table.iterrows():
        width = bounds[name][1] - bounds[name][0]
        out[name] = {
            "recovery": bool(r.rmse <= 0.10 * width),
            "bias": bool(abs(r.bias) <= max(4 * r.bias_se, 0.02 * width)),
            "coverage": bool(r.coverage >= floor),
            "rmse_share_of_width": float(r.rmse / width),
        }
    return out


def run_design(name: str, K: int, n_obs: int, n_trials: int, seed: int, figures: Path, out: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from orgsim.calibration import recovery

    start = time.perf_counter()
    cpu0 = time.process_time()
    res = recovery(name, n_datasets=K, n_obs=n_obs, n_trials=n_trials, seed=seed, progress=False)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    table = res.table(0.05)
    res.estimates.to_csv(out / f"{name}_estimates.csv", index=False)
    fig = res.plot(0.05)
    fig.savefig(figures / f"{name}_recovery.png", dpi=110)
    plt.close(fig)
    print(f"{name}: {wall:.0f} s wall, {cpu:.0f} s CPU", file=sys.stderr, flush=True)
    print(res.summary(), file=sys.stderr, flush=True)
    return {
        "design": name,
        "n_datasets": K,
        "n_obs": n_obs,
        "periods": res.config.periods,
        "n_trials_per_step": n_trials,
        "moments": res.moment_names,
        "bounds": {k: list(v) for k, v in res.bounds.items()},
        "table": table.reset_index().to_dict(orient="records"),
        "jtest": res.jtest_rejection(0.05),
        "criteria": criteria(table, res.bounds, K),
        "settings": res.settings,
        "wall_s": wall,
        "cpu_s": cpu,
    }


def example(seed: int, figures: Path) -> str:
    """One calibration of the beer game to 8 simulated games: its summary, loss slices, fit
    plot and ABC-SMC posterior (the figures of docs/calibration.md's worked example)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import orgsim
    from orgsim.calibration import calibrate, calibration_settings

    settings = calibration_settings("beer_game")
    cfg = orgsim.compose(settings["overrides"]).replace(n_orgs=8)
    teams = orgsim.simulate(cfg, engine="numba", seed=seed, teams=True, progress=False).teams
    start = time.perf_counter()
    res = calibrate(teams, params="beer_game", seed=seed + 1, progress=False)
    fit_s = time.perf_counter() - start
    post = res.posterior(n_particles=300, generations=14, seed=seed + 2)
    boot = res.bootstrap(40, seed=seed + 3)
    for name, fig in (("example_slices.png", res.plot_slices()), ("example_fit.png", res.plot_fit(max_series=4)),
                      ("example_posterior.png", post.plot())):  # fmt: skip
        fig.savefig(figures / name, dpi=110)
        plt.close(fig)
    frames = {"sandwich (Wald)": res.summary_frame(), "parametric bootstrap (percentile)": boot.summary_frame(),
              "ABC-SMC posterior (credible)": post.summary_frame()}  # fmt: skip
    lines = [
        EX_BEGIN,
        f"8 games of `orgsim.simulate(compose({settings['overrides']!r}), seed={seed})` (truth θ = 0.36, "
        f'α_S = 0.26, β = 0.34, S\' = 17), `calibrate(teams, params="beer_game", seed={seed + 1})` '
        f"({fit_s:.0f} s wall on a shared machine, {res.n_trials_} trials):",
        "",
        "```text",
        str(res.summary()),
        "```",
        "",
        "95% intervals by the three methods:",
        "",
        "| parameter | method | estimate | SE / SD | lower | upper |",
        "|---|---|---|---|---|---|",
    ]
    for method, f in frames.items():
        for name, r in f.iterrows():
            lines.append(f"| `{name}` | {method} | {r['mean']:.4g} | {r.mean_se:.3g} | {r.mean_ci_lower:.4g} | "
                         f"{r.mean_ci_upper:.4g} |")  # fmt: skip
    h = post.history.iloc[-1]
    lines += [
        "",
        f"ABC-SMC: {len(post.history)} generations of {len(post.particles)} particles "
        f"({int(post.history.simulations.sum()):,} simulated datasets), stopped by {post.stopped}; last tolerance "
        f"ε = {h.epsilon:.3g} at acceptance rate {h.acceptance:.3f}, ESS {post.ess:.0f}. Parametric bootstrap: 40 "
        "datasets, local re-estimation from the estimate.",
        "",
        "![loss slices](figures/calibration/example_slices.png)",
        "",
        "![observed against simulated](figures/calibration/example_fit.png)",
        "",
        "![ABC-SMC posterior](figures/calibration/example_posterior.png)",
        EX_END,
    ]
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def markdown(results: list[dict], meta: dict) -> str:
    lines = [
        BEGIN,
        f"Produced by `{meta['command']}` on {meta['date']} (seed {meta['seed']}; orgsim {meta['versions'].get('orgsim', '?')}, "
        f"numpy {meta['versions'].get('numpy', '?')}, optuna {meta['versions'].get('optuna', '?')}; "
        f"load average at the start {meta['load_average']}).",
        "",
    ]
    for r in results:
        K = r["n_datasets"]
        floor = 0.95 - 4 * np.sqrt(0.95 * 0.05 / K)
        lines += [
            f"#### `{r['design']}`: {K} datasets of {r['n_obs']} firm(s) × {r['periods']} periods",
            "",
            f"{len(r['moments'])} moments, two-step optimal weighting, {r['n_trials_per_step']} {_SAMPLERS[r['settings']['sampler']]} trials per step, "
            f"R = {r['settings']['replicates']} replicates per candidate, {r['settings']['se_replicates']} firms for "
            f"W, G and the SEs; {r['settings']['firms_simulated']:,} firms simulated in {r['settings']['kernel_calls']} "
            f"kernel calls ({r['wall_s']:.0f} s wall, {r['cpu_s']:.0f} s CPU on a shared machine).",
            "",
            "| parameter | truth | mean estimate | bias (MC SE) | RMSE (share of bounds) | SD of estimates | "
            "mean sandwich SE | 95% coverage (MC SE) | recovery | bias | coverage |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in r["table"]:
            c = r["criteria"][row["parameter"]]
            verdict = {True: "PASS", False: "**FAIL**"}
            lines.append(
                f"| `{row['parameter']}` | {_fmt(row['truth'])} | {_fmt(row['mean'])} | {row['bias']:+.3g} "
                f"({row['bias_se']:.2g}) | {row['rmse']:.3g} ({100 * c['rmse_share_of_width']:.1f}%) | "
                f"{row['sd']:.3g} | {row['mean_se']:.3g} | {row['coverage']:.2f} ({row['coverage_se']:.2f}) | "
                f"{verdict[c['recovery']]} | {verdict[c['bias']]} | {verdict[c['coverage']]} |"
            )
        j = r["jtest"]
        lines += [
            "",
            f"Coverage floor for K = {K}: {floor:.2f}. J test rejection rate at 0.05: "
            + (f"{j['rate']:.2f} (MC SE {j['se']:.2f}; 0.05 when the test has its size)." if j else "n/a."),
            "",
            f"![recovery of {r['design']}](figures/calibration/{r['design']}_recovery.png)",
            "",
        ]
    lines.append(END)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", type=int, default=24, help="synthetic datasets per design (default 24)")
    p.add_argument("--trials", type=int, default=None, help="trials per search step (default: per design)")
    p.add_argument("--designs", nargs="*", default=list(DESIGNS), choices=list(DESIGNS))
    p.add_argument("--no-example", action="store_true", help="skip the worked example's calibration")
    p.add_argument("--seed", type=int, default=20261202)
    p.add_argument("--out", default=str(ROOT / "experiments" / "output" / "calibration_recovery"))
    p.add_argument("--figures", default=str(ROOT / "docs" / "figures" / "calibration"))
    p.add_argument("--report", default=str(ROOT / "docs" / "calibration.md"))
    args = p.parse_args(argv)
    if args.datasets < 2:
        p.error(f"--datasets {args.datasets}, must be >= 2")
    out, figures = Path(args.out), Path(args.figures)
    out.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    from orgsim._io import replace_section
    from orgsim.simulation import package_versions

    meta = {
        "command": (
            "python experiments/calibration_recovery.py "
            + shlex.join(argv if argv is not None else sys.argv[1:])
        ).strip(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seed": args.seed,
        "versions": {**package_versions(), "optuna": _version("optuna")},
        "load_average": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
    }
    results = []
    for name in args.designs:
        n_obs, n_trials = DESIGNS[name]
        results.append(
            run_design(name, args.datasets, n_obs, args.trials or n_trials, args.seed, figures, out)
        )
    if results:
        (out / "recovery.json").write_text(
            json.dumps({"meta": meta, "results": results}, indent=1, default=str)
        )
        text = markdown(results, meta)
        replace_section(args.report, BEGIN, END, text)
        print(text)
    if not args.no_example:
        text = example(args.seed, figures)
        replace_section(args.report, EX_BEGIN, EX_END, text)
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
