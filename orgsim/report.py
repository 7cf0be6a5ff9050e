"""The comparison report: ``orgsim-compare``, the command a newcomer runs first.

It runs :func:`orgsim.compare` (every strategy in every environment, the same firms on common
random numbers), prints the headline — the culture-aligned minus efficiency-only effect on
cumulative free cash flow and survival with 95% intervals, and the crossover period — and
writes a report directory::

    report.md               what was run and what it shows, with the figures
    effects.parquet         every effect (environment × contrast × outcome × horizon)
    outcomes.parquet        every firm's outcomes per environment, strategy and horizon
    crossover.parquet       the crossover periods with their bootstrap intervals
    difference.png          the family difference in cumulative free cash flow over time
    effects.png             a forest plot of the effects at the last horizon
    meta.json               written last: arguments, seed, engine, versions, git commit, files

Examples
--------
.. code-block:: console

    $ orgsim-compare                                  # the default firm, 200 firms per arm
    $ orgsim-compare --firms 50 --environments stable,volatile --out my_report
    $ orgsim-compare finance.price=11 --strategies bpo_bpm,bso
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["headline", "main", "write_report"]

FAMILY = "culture_aligned − efficiency_only"


def _fmt_money(x: float) -> str:
    return f"{x:+,.0f}"


def _fmt_pp(x: float) -> str:
    return f"{100 * x:+.1f} pp"


def headline(res, alpha: float = 0.05) -> str:
    """The report's first lines: per environment, the family effect on cumulative free cash
    flow and survival at the last horizon (mean and 1 − alpha interval) and the crossover."""
    effects = res.summary_frame(alpha)
    horizon = res.horizons[-1]
    cross = res.crossover(alpha)
    level = f"{100 * (1 - alpha):g}%"
    from .comparison import _time_unit

    unit = _time_unit(res.configs).removesuffix("s")  # "week"
    lines = [
        f"culture-aligned minus efficiency-only (pooled), {res.n_firms} firms per strategy, "
        f"paired on common random numbers; at {unit} {horizon}, {level} intervals:",
    ]
    for env in res.environments:
        rows = effects[(effects.environment == env) & (effects.contrast == FAMILY) & (effects.horizon == horizon)]
        if rows.empty:
            continue
        cum = rows[rows.outcome == "cumulative_fcf"].iloc[0]
        surv = rows[rows.outcome == "survival"].iloc[0]
        c = cross[(cross.environment == env) & (cross.contrast == FAMILY)].iloc[0]
        if c["never"]:
            when = f"no crossover within {res.periods} {unit}s"
        else:
            lo = "–" if c["ci_lower"] is None or str(c["ci_lower"]) == "<NA>" else c["ci_lower"]
            hi = "never" if str(c["ci_upper"]) == "<NA>" else c["ci_upper"]
            when = f"ahead for good from {unit} {c['crossover']} [{lo}, {hi}]"
        lines.append(
            f"  {env:<10} cumulative FCF {_fmt_money(cum['mean'])} MU "
            f"[{_fmt_money(cum.mean_ci_lower)}, {_fmt_money(cum.mean_ci_upper)}]; "
            f"survival {_fmt_pp(surv['mean'])} [{_fmt_pp(surv.mean_ci_lower)}, {_fmt_pp(surv.mean_ci_upper)}]; "
            f"{when}"
        )
    lines.append(
        "  (means: paired t; survival: Newcombe; crossover: first period from which the mean "
        "cumulative-FCF advantage stays positive, bootstrap percentile interval over firms)"
    )
    return "\n".join(lines)


def write_report(res, out: str | Path, *, alpha: float = 0.05, argv: Sequence[str] = ()) -> list[Path]:
    """Write the report directory of a :class:`~orgsim.comparison.ComparisonResult` into
    ``out`` (``meta.json`` last); returns the files written."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from ._io import atomic_write, write_meta
    from .cli import git_commit
    from .simulation import package_versions

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)  # no complete report until it is rewritten
    tables = {
        "effects.parquet": res.summary_frame(alpha),
        "outcomes.parquet": res.outcomes(),
        "crossover.parquet": res.crossover(alpha),
    }
    for name, frame in tables.items():
        atomic_write(out / name, lambda p, frame=frame: frame.to_parquet(p, index=False))
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.6), layout="constrained")
    res.plot_difference(FAMILY, alpha, ax=fig.subplots())
    atomic_write(out / "difference.png", lambda p: fig.savefig(p, dpi=100, format="png"))
    fig = Figure(figsize=(8.0, 1.8 + 0.45 * len(res.contrasts) * max(1, len(res.environments)) / 2), layout="constrained")
    res.plot_effects("cumulative_fcf", None, alpha, ax=fig.subplots())
    atomic_write(out / "effects.png", lambda p: fig.savefig(p, dpi=100, format="png"))
    text = _markdown(res, alpha, argv)
    atomic_write(out / "report.md", lambda p: Path(p).write_text(text))
    files = [*tables, "difference.png", "effects.png", "report.md"]
    meta = {
        "command": ["orgsim-compare", *argv],
        "strategies": list(res.strategies),
        "environments": list(res.environments),
        "n_orgs": res.n_firms,
        "periods": res.periods,
        "horizons": list(res.horizons),
        "seed": res.seed,
        "engine": res.engine,
        "alpha": alpha,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "configs": {f"{env}/{arm}": cfg.to_dict() for (env, arm), cfg in res.configs.items()},
        "timings_s": {k: v for k, v in res.timings.items() if isinstance(v, int | float)},
    }
    write_meta(out, meta, {name: {} for name in files})
    return [out / name for name in (*files, "meta.json")]


def _markdown(res, alpha: float, argv: Sequence[str]) -> str:
    effects = res.summary_frame(alpha)
    horizon = res.horizons[-1]
    family = effects[(effects.contrast == FAMILY) & (effects.horizon == horizon)]
    lines = [
        "# Culture-aligned against efficiency-only management",
        "",
        f"`orgsim-compare {' '.join(argv)}`".replace("` ", "`").strip(),
        "",
        f"{res.n_firms} firms per strategy ({', '.join(res.strategies)}) in each environment "
        f"({', '.join(res.environments)}), {res.periods} periods, seed {res.seed}, engine {res.engine}; "
        "firm *i* meets the same demand, shocks, disruptions and turnover under every strategy.",
        "",
        "## Headline",
        "",
        "```",
        headline(res, alpha),
        "```",
        "",
        "![family difference over time](difference.png)",
        "",
        f"## The family effect at period {horizon}",
        "",
        "| environment | outcome | mean | interval | n | method |",
        "|---|---|---:|---|---:|---|",
    ]
    for _, r in family.iterrows():
        lines.append(
            f"| {r.environment} | {r.outcome} | {r['mean']:,.4g} | [{r.mean_ci_lower:,.4g}, {r.mean_ci_upper:,.4g}] "
            f"| {r.n} | {r.interval} |"
        )
    lines += [
        "",
        "![effects](effects.png)",
        "",
        "Every effect (each pair of strategies too, at each horizon) is in `effects.parquet`; each "
        "firm's outcomes in `outcomes.parquet`; the crossover periods in `crossover.parquet`. "
        "Definitions: docs/comparison.md.",
        "",
    ]
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"orgsim-compare: error: {' '.join(message.split())}\n")


def _names(text: str | None, option: str) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",")]
    if not all(names):
        raise ValueError(f"{option} == {text!r}, must be comma-separated names, e.g. bpo_bpm,bso")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    """``orgsim-compare [overrides] [--firms N] ...``: compare the strategies, print the headline
    and write the report directory."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _Parser(prog="orgsim-compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="config overrides common to every cell, e.g. finance.price=11")
    parser.add_argument("--firms", type=int, default=200, help="firms per strategy and environment (default 200)")
    parser.add_argument("--periods", type=int, default=None, help="periods to simulate (default: the scenario's)")
    parser.add_argument("--strategies", default=None, help="comma-separated strategies (default: all in conf/strategy)")
    parser.add_argument("--environments", default=None, help="comma-separated environments (default: stable,volatile,disrupted)")
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    parser.add_argument("--engine", default="numba", choices=("numba", "mesa"))
    parser.add_argument("--alpha", type=float, default=0.05, help="1 − the intervals' level (default 0.05)")
    parser.add_argument("--out", default=None, help="report directory (default outputs/compare/<date>_<time>)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from .comparison import check_alpha, compare
    from .config import ConfigError

    start = time.perf_counter()
    try:
        alpha = check_alpha(args.alpha)
        res = compare(
            args.overrides,
            strategies=_names(args.strategies, "--strategies"),
            environments=_names(args.environments, "--environments"),
            n_orgs=args.firms,
            periods=args.periods,
            seed=args.seed,
            engine=args.engine,
            progress=None,
        )
    except (ConfigError, ValueError, TypeError) as exc:
        print(f"orgsim-compare: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("outputs") / "compare" / time.strftime("%Y-%m-%d_%H-%M-%S")
    try:
        write_report(res, out, alpha=alpha, argv=argv)
    except OSError as exc:
        print(f"orgsim-compare: error: cannot write the report to {str(out)!r}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(headline(res, alpha))
    print(f"report: {out}/report.md ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
