"""Is the beer game's under-coverage search error or the sandwich formula? An oracle search.

docs/calibration.md reports that on the beer game (``conf/calibration/beer_game.yaml``, 8 games
× 36 weeks, 16 moments, 4 parameters) the SMM estimates spread 1.5-1.8 times more than the
sandwich SEs say, that the 95 % Wald intervals cover 0.62-0.83 and that the J test rejects in
25 % of datasets. Both are what a search that stops short of the minimum would cause, and both
are what small-sample non-linearity would cause. This script separates the two.

It reruns the recovery (``orgsim.calibration.recovery("beer_game", ...)``, the same seed, so the
same datasets, replicates, weighting matrices and estimates as the run in the docs), then for
each dataset minimises *the same final-step loss* g(θ)'W g(θ) (its own common random numbers and
its W) far harder than the calibration does: a compass search (``orgsim._smm.polish``) from the
shipped estimate, the truth and ``--random-starts`` uniform points in the bounds, all in
lockstep (``--no-truth-start`` leaves the truth out, which shows whether starting there
biases the oracle towards it); then scipy's Nelder-Mead from the best of those, and a last fine compass search. The
best point found is the *oracle* estimate. At it, the sandwich SE is evaluated as the calibration
evaluates it (Ω and G from the same ``se_replicates`` firms, central differences).

It reports per dataset the loss at the shipped estimate, at the oracle and at the truth, and
per parameter the SD of the oracle estimates against their mean sandwich SE, and the coverage of
the oracle's Wald intervals. If the oracle covers near the nominal rate, search error was the
cause; if not, the asymptotic formula is (non-linearity, or the distribution of the moments at
N = 8). Two diagnostics that do not use the Jacobian G:

- the *criterion* set {θ : L(θ) − L(θ̂) ≤ χ²₄(0.95)} (the distance-metric test of Newey & West
  1987, valid with optimal weighting) holds the truth when L(truth) − L(oracle) is below the
  critical value: its coverage tests the moments' covariance Σ_g without any linearisation in θ;
- L(truth) = g(θ₀)'Σ_g⁻¹g(θ₀) is χ²(16) when Σ_g is right: its mean over datasets should be 16.

Usage::

    python experiments/beer_game_oracle.py                     # 24 datasets, as the recovery run
    python experiments/beer_game_oracle.py --compass-only      # against the estimator before 2026-12-02
    python experiments/beer_game_oracle.py --no-truth-start    # no search started at the truth
    python experiments/beer_game_oracle.py --datasets 3 --trials 16 --random-starts 1 --nm-evals 20   # smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _losses(runner, replicates: int, points: np.ndarray, problems) -> tuple[np.ndarray, np.ndarray]:
    """Loss and mean simulated moments of ``points[i]`` for ``problems[i]``: one kernel call."""
    from orgsim import _smm

    firsts = np.array([p.target.first for p in problems])
    m = runner.per_firm(_smm.table_of(points, runner.names), replicates, firsts).mean(axis=1)
    return np.array([p.loss(mi) if np.all(np.isfinite(mi)) else np.inf for p, mi in zip(problems, m)]), m


def _sandwich_se(res, points: np.ndarray) -> np.ndarray:
    """Sandwich SEs at ``points[k]`` for dataset k, exactly as the calibration evaluates them at
    its estimate (Ω and G from the same ``se_replicates`` firms, central differences of 2 %)."""
    from orgsim import _smm

    B = np.array([res.bounds[n] for n in res.truth.index])
    at = _smm.sandwich_at(
        res._runner, points, B, res._targets, [f.W for f in res._fits], res.settings["se_replicates"],
        res.settings["replicates"], 0.02, where="at the point",
    )  # fmt: skip
    return np.array([np.sqrt(np.diag(cov)) for *_, cov in at])


def oracle(
    res, *, random_starts: int, nm_evals: int, seed: int, truth_start: bool = True, compass_only: bool = False,
    log=print,
) -> dict:  # fmt: skip
    """Oracle minimisers of each dataset's final-step loss of a :class:`RecoveryResult`.

    ``compass_only``: compare with the estimator as it was before the Gauss-Newton steps (the
    recovery run with ``polish=False``, then the compass search alone from the search's best
    point), instead of the current one."""
    from scipy import optimize

    from orgsim import _smm
    from orgsim.calibration import _LocalProblem

    runner, targets, fits = res._runner, res._targets, res._fits
    R = res.settings["replicates"]
    names = list(res.truth.index)
    B = np.array([res.bounds[n] for n in names])
    lo, width = B[:, 0], B[:, 1] - B[:, 0]
    truth = res.truth.to_numpy()
    K = len(fits)
    problems = [_LocalProblem(B, t, f.W) for t, f in zip(targets, fits)]
    rng = np.random.default_rng(seed)
    shipped = np.array([f.theta for f in fits])
    shipped_loss = np.array([f.loss for f in fits])
    shipped_se = np.array([np.sqrt(np.diag(f.cov)) for f in fits])
    if compass_only:  # the estimator before the Gauss-Newton steps: the compass search alone
        out = _smm.polish(problems, [(f.theta, f.loss, f.simulated) for f in fits], runner, R)
        shipped = np.array([x for x, _, _ in out])
        shipped_loss = np.array([f for _, f, _ in out])
        shipped_se = _sandwich_se(res, shipped)

    # stage A: compass searches from every start, all datasets and starts in lockstep
    starts = [shipped] + ([np.repeat(truth[None], K, 0)] if truth_start else [])
    starts += [lo + width * rng.random((K, len(names))) for _ in range(random_starts)]
    S = len(starts)
    pts = np.concatenate(starts)
    owner = np.tile(np.arange(K), S)
    probs = [problems[k] for k in owner]
    f0, m0 = _losses(runner, R, pts, probs)
    t0 = time.perf_counter()
    polished = _smm.polish(probs, list(zip(pts, f0, m0)), runner, R, step=0.1, tol=1 / 2048, rounds=400)
    log(f"stage A (compass from {S} starts per dataset): {time.perf_counter() - t0:.0f} s")
    fA = np.array([p[1] for p in polished]).reshape(S, K)
    xA = np.array([p[0] for p in polished]).reshape(S, K, -1)
    best_start = fA.argmin(axis=0)
    x_best = xA[best_start, np.arange(K)]
    f_best = fA[best_start, np.arange(K)]

    # stage B: Nelder-Mead on [0, 1]^P from the best compass point, one evaluation per call
    t0 = time.perf_counter()
    for k in range(K):

        def fun(u, k=k):
            x = lo + width * np.clip(u, 0, 1)
            return float(_losses(runner, R, x[None], [problems[k]])[0][0])

        u0 = (x_best[k] - lo) / width
        simplex = np.vstack([u0] + [np.clip(u0 + 0.02 * e, 0, 1) for e in np.eye(len(u0))])
        r = optimize.minimize(
            fun, u0, method="Nelder-Mead", bounds=[(0, 1)] * len(u0),
            options={"maxfev": nm_evals, "initial_simplex": simplex, "xatol": 1e-5, "fatol": 1e-6},
        )  # fmt: skip
        if r.fun < f_best[k]:
            x_best[k], f_best[k] = lo + width * np.clip(r.x, 0, 1), r.fun
    log(f"stage B (Nelder-Mead, up to {nm_evals} evaluations per dataset): {time.perf_counter() - t0:.0f} s")

    # stage C: a fine compass search from the best point
    fC, mC = _losses(runner, R, x_best, problems)
    final = _smm.polish(problems, list(zip(x_best, fC, mC)), runner, R, step=0.01, tol=1 / 8192, rounds=200)
    x_or = np.array([p[0] for p in final])
    f_or = np.array([p[1] for p in final])

    se_or = _sandwich_se(res, x_or)
    f_truth, _ = _losses(runner, R, np.repeat(truth[None], K, 0), problems)
    return {
        "names": names,
        "truth": truth,
        "shipped": shipped,
        "shipped_se": shipped_se,
        "loss_shipped": shipped_loss,
        "oracle": x_or,
        "oracle_se": np.array(se_or),
        "loss_oracle": f_or,
        "loss_truth": f_truth,
        "best_start": best_start,
        "n_starts": S,
        "truth_start": truth_start,
        "compass_only": compass_only,
    }


def summarise(o: dict, K: int, df_j: int, alpha: float = 0.05) -> dict:
    from scipy import stats

    z = stats.norm.ppf(1 - alpha / 2)
    P = len(o["names"])
    out = {"parameters": {}}
    for which in ("shipped", "oracle"):
        err = o[which] - o["truth"]
        cov = np.abs(err) <= z * o[f"{which}_se"]
        for j, n in enumerate(o["names"]):
            c = float(cov[:, j].mean())
            out["parameters"].setdefault(n, {})[which] = {
                "mean": float(o[which][:, j].mean()),
                "sd": float(o[which][:, j].std(ddof=1)),
                "rmse": float(np.sqrt((err[:, j] ** 2).mean())),
                "mean_se": float(o[f"{which}_se"][:, j].mean()),
                "coverage": c,
                "coverage_se": float(np.sqrt(c * (1 - c) / K)),
            }
        p = stats.chi2.sf(o[f"loss_{which}"], df_j)
        out[f"j_rejection_{which}"] = float((p < alpha).mean())
    crit = stats.chi2.ppf(1 - alpha, P)
    dist = o["loss_truth"] - o["loss_oracle"]
    out["criterion_coverage"] = float((dist <= crit).mean())
    out["criterion_crit"] = float(crit)
    out["mean_loss_truth"] = float(o["loss_truth"].mean())
    out["mean_loss_truth_se"] = float(o["loss_truth"].std(ddof=1) / np.sqrt(K))
    out["mean_loss_oracle"] = float(o["loss_oracle"].mean())
    out["short_of_truth"] = int((o["loss_shipped"] > o["loss_truth"]).sum())
    out["short_of_oracle_10pct"] = int((o["loss_shipped"] > 1.1 * o["loss_oracle"]).sum())
    out["floor"] = float(0.95 - 4 * np.sqrt(0.95 * 0.05 / K))
    return out


def markdown(o: dict, s: dict, meta: dict) -> str:
    short = [n.split(".")[-1] for n in o["names"]]
    lines = [
        f"Produced by `{meta['command']}` on {meta['date']} ({meta['wall_s']:.0f} s wall).",
        "",
        "| dataset | loss at θ̂ | loss at oracle | loss at truth | best start | "
        + " | ".join(f"{n}: θ̂ → oracle" for n in short)
        + " |",
        "|---:|---:|---:|---:|---|" + "---|" * len(short),
    ]
    start_name = {0: "θ̂", 1: "truth"} if o["truth_start"] else {0: "θ̂"}
    for k in range(len(o["loss_oracle"])):
        cells = " | ".join(f"{o['shipped'][k, j]:.4g} → {o['oracle'][k, j]:.4g}" for j in range(len(short)))
        lines.append(
            f"| {k} | {o['loss_shipped'][k]:.2f} | {o['loss_oracle'][k]:.2f} | {o['loss_truth'][k]:.2f} | "
            f"{start_name.get(int(o['best_start'][k]), 'random')} | {cells} |"
        )
    lines += [
        "",
        "| parameter | estimator | SD of estimates | mean sandwich SE | SD / SE | RMSE | 95% Wald coverage (MC SE) | "
        "coverage |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    label = {
        "shipped": "search + compass (before)" if o["compass_only"] else "calibrate (now)",
        "oracle": "oracle",
    }
    for n, d in s["parameters"].items():
        for which in ("shipped", "oracle"):
            r = d[which]
            ok = "PASS" if r["coverage"] >= s["floor"] else "**FAIL**"
            lines.append(
                f"| `{n}` | {label[which]} | {r['sd']:.3g} | {r['mean_se']:.3g} | {r['sd'] / r['mean_se']:.2f} | "
                f"{r['rmse']:.3g} | {r['coverage']:.2f} ({r['coverage_se']:.2f}) | {ok} |"
            )
    lines += [
        "",
        f"Coverage floor {s['floor']:.2f}. J test rejections at 0.05: estimator {s['j_rejection_shipped']:.2f}, "
        f"oracle {s['j_rejection_oracle']:.2f}. Loss at θ̂ above the loss at the truth in "
        f"{s['short_of_truth']} datasets, more than 10 % above the oracle's in {s['short_of_oracle_10pct']}. "
        f"Criterion set L(θ) − L(θ̂) ≤ {s['criterion_crit']:.2f} (χ²₄, 95 %) holds the truth in "
        f"{s['criterion_coverage']:.2f} of datasets. Mean loss at the truth {s['mean_loss_truth']:.1f} "
        f"(MC SE {s['mean_loss_truth_se']:.1f}; 16 if Σ_g is right), at the oracle {s['mean_loss_oracle']:.1f} "
        "(12 if the J test has its size).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=int, default=24)
    ap.add_argument("--trials", type=int, default=192, help="trials per search step of the recovery")
    ap.add_argument("--random-starts", type=int, default=6)
    ap.add_argument("--nm-evals", type=int, default=400, help="Nelder-Mead evaluations per dataset")
    ap.add_argument(
        "--no-truth-start",
        action="store_true",
        help="do not start a search at the truth (an oracle that a user could run)",
    )
    ap.add_argument(
        "--compass-only",
        action="store_true",
        help="compare with the estimator before the Gauss-Newton steps (search + compass search)",
    )
    ap.add_argument("--seed", type=int, default=20261202, help="the recovery run's seed")
    ap.add_argument("--out", default=str(ROOT / "experiments" / "output" / "beer_game_oracle"))
    args = ap.parse_args(argv)
    from datetime import UTC, datetime

    from orgsim.calibration import recovery

    start = time.perf_counter()
    res = recovery("beer_game", n_datasets=args.datasets, n_obs=8, n_trials=args.trials, seed=args.seed,
                   polish=not args.compass_only, progress=False)  # fmt: skip
    print(f"recovery: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    o = oracle(res, random_starts=args.random_starts, nm_evals=args.nm_evals, seed=args.seed + 7,
               truth_start=not args.no_truth_start, compass_only=args.compass_only, log=lambda s: print(s, file=sys.stderr, flush=True))  # fmt: skip
    s = summarise(o, args.datasets, len(res.moment_names) - len(o["names"]))
    meta = {
        "command": " ".join(
            ["python experiments/beer_game_oracle.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_s": time.perf_counter() - start,
    }
    out = Path(args.out) / ("compass_only" if args.compass_only else "current")
    out = out / ("no_truth_start" if args.no_truth_start else "")
    out.mkdir(parents=True, exist_ok=True)
    (out / "oracle.json").write_text(
        json.dumps(
            {"meta": meta, "summary": s, **{k: np.asarray(v).tolist() for k, v in o.items()}}, indent=1
        )
    )
    text = markdown(o, s, meta)
    (out / "oracle.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
