"""The comparison report: ``orgsim-compare``, the command a newcomer runs first.

It runs :func:`orgsim.compare` (every strategy in every environment, the same firms on common
random numbers), prints the headline — the culture-aligned minus efficiency-only effect on
cumulative free cash flow and survival with 95% intervals, and the crossover period — and
writes a report directory::

    report.md               what was run and what it shows, with the figures
    effects.parquet         every effect (environment × contrast × outcome × horizon)
    outcomes.parquet        every firm's outcomes per environment, strategy and horizon
    crossover.parquet       the crossover periods with their bootstrap intervals
    forecasts.parquet       each family's and the family difference's forecasts past the horizon
    backtests.parquet       rolling-origin backtest scores of a few forecasters on the same series
    difference.png          the family difference in cumulative free cash flow over time
    effects.png             a forest plot of the effects at the last horizon
    forecast.png            fan charts of the forecasts past the horizon
    meta.json               written last: arguments, seed, engine, versions, git commit, files

The forecasts (:meth:`ComparisonResult.forecast <orgsim.comparison.ComparisonResult.forecast>`,
default model) and the backtests use the pooled series only (each family's mean over firms and
the mean paired difference), so they add seconds, not minutes; ``--forecast-steps 0`` leaves
them out.

Examples
--------
.. code-block:: console

    $ orgsim-compare                                  # the default firm, 200 firms per arm
    $ orgsim-compare --firms 50 --environments stable,volatile --out my_report
    $ orgsim-compare finance.price=11 --strategies bpo_bpm,bso
    $ orgsim-compare --forecast-steps 104             # forecast two years past the horizon
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["backtest_pooled", "forecast_line", "forecast_pooled", "headline", "main", "write_report"]

FAMILY = "culture_aligned − efficiency_only"
#: the KPIs the report forecasts (the headline's cumulative FCF and its flow)
FORECAST_KPIS = ("cumulative_fcf", "free_cash_flow")
#: the KPI the report backtests: the flow (seasonal naive is a poor reference for a cumulative sum)
BACKTEST_KPIS = ("free_cash_flow",)


def _fmt_money(x: float) -> str:
    return f"{x:+,.0f}"


def _fmt_pp(x: float) -> str:
    return f"{100 * x:+.1f} pp"


def headline(res, alpha: float = 0.05, forecast=None) -> str:
    """The report's first lines: per environment, the family effect on cumulative free cash
    flow and survival at the last horizon (mean and 1 − alpha interval) and the crossover; with
    a ``forecast`` (:func:`forecast_pooled`), one more line: :func:`forecast_line`."""
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
        rows = effects[
            (effects.environment == env) & (effects.contrast == FAMILY) & (effects.horizon == horizon)
        ]
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
    if forecast is not None:
        line = forecast_line(forecast, alpha)
        if line:
            lines.append(line)
    return "\n".join(lines)


def _family_winner(forecast, alpha: float):
    """The forecast's family-contrast rows of ``winner`` on cumulative FCF, or None."""
    diff = forecast.series[(forecast.series.kind == "difference") & (forecast.series.kpi == "cumulative_fcf")]
    if FAMILY not in set(diff.series):
        return None
    return forecast.winner(FAMILY, "cumulative_fcf", alpha=alpha)


def forecast_line(forecast, alpha: float = 0.05) -> str | None:
    """One line: the family difference in cumulative FCF forecast ``steps`` periods past the
    horizon, per environment, with its prediction interval, and in how many environments its
    sign is the sign simulated at the horizon. None without a family contrast."""
    w = _family_winner(forecast, alpha)
    if w is None:
        return None
    unit = forecast.time_unit.removesuffix("s")
    level = f"{100 * (1 - alpha):g}%"
    cells = [
        f"{r.environment} {_fmt_money(r.mean)} [{_fmt_money(r.mean_ci_lower)}, {_fmt_money(r.mean_ci_upper)}]"
        for r in w.itertuples()
    ]
    same = int(w.same_sign_as_last_observed.sum())
    return (
        f"  forecast to {unit} {int(w.period.iloc[0])} (cumulative FCF difference, MU, {level} prediction "
        f"interval): {'; '.join(cells)}; same sign as simulated at {unit} {forecast.train_periods} in "
        f"{same} of {len(w)} environments"
    )


def forecast_pooled(res, steps: int, alpha: float = 0.05, seed=0):
    """The report's forecasts: :meth:`ComparisonResult.forecast` of :data:`FORECAST_KPIS` on the
    pooled series (each family's mean and the family difference; every pair of strategies when
    a family is missing), ``steps`` periods past the last simulated one, default model."""
    return res.forecast(
        list(FORECAST_KPIS), steps=steps, series=["family", "difference"], alpha=alpha, seed=seed
    )


def backtest_pooled(forecast, alpha: float = 0.05, seed=0):
    """Rolling-origin backtests of a few forecasters on the forecast's observed pooled series,
    or None when the run is too short (fewer than two seasons and a year to forecast).

    Origins every year from two seasons on, one-year horizon, on :data:`BACKTEST_KPIS`; the
    models: the forecast's default seasonal ETS, Drift and Naive against SeasonalNaive (the
    reference of :func:`orgsim.forecasting.backtest`). Theta and the other models are left out
    to keep the report fast (each seasonal fit costs ~0.1 s); :func:`orgsim.forecasting.backtest`
    runs any of them."""
    from . import forecasting as fc
    from ._strategy_forecast import default_model

    m = forecast.season_period
    periods = forecast.train_periods
    if m is None or periods < 3 * m:
        return None
    # "kind" would collide with the failures table's own column of that name
    y = forecast.observed().drop(columns="h").rename(columns={"kind": "series_kind"})
    y = y.pivot_table(index=["environment", "series_kind", "series", "period"], columns="kpi", values="value")
    y = y.reset_index()
    y.columns.name = None
    models = {"ETS": default_model(2 * m, m), "Drift": fc.Drift(), "Naive": fc.Naive()}
    return fc.backtest(
        models,
        y,
        horizon=m,
        initial=2 * m,
        step=m,
        alpha=alpha,
        season_period=m,
        kpi=[k for k in BACKTEST_KPIS if k in y.columns],
        by=["environment", "series_kind", "series"],
        seed=seed,
        n_jobs=1,
        progress=False,
    )


def _log(message: str) -> None:
    print(f"orgsim-compare: {message}", file=sys.stderr, flush=True)


def forecasts(res, steps: int | None = None, alpha: float = 0.05, *, seed=0, log=_log):
    """The report's forecasts and backtests: ``(forecast_pooled(...), backtest_pooled(...))``,
    each step announced through ``log`` with its time; ``steps`` 0 gives ``(None, None)``,
    None one year."""
    if steps == 0:
        return None, None
    steps = round(res.periods_per_year) if steps is None else steps
    start = time.perf_counter()
    log(f"forecasting the pooled series {steps} periods past period {res.periods} ...")
    forecast = forecast_pooled(res, steps, alpha, seed=seed)
    log(f"forecasts done ({time.perf_counter() - start:.1f} s); backtesting ...")
    start = time.perf_counter()
    backtests = backtest_pooled(forecast, alpha, seed=seed)
    if backtests is None:
        log(f"no backtests: {res.periods} periods are fewer than three seasons")
    else:
        log(f"backtests done ({time.perf_counter() - start:.1f} s)")
    return forecast, backtests


def write_report(
    res,
    out: str | Path,
    *,
    alpha: float = 0.05,
    argv: Sequence[str] = (),
    forecast_steps: int | None = None,
    forecast=None,
    backtests=None,
) -> list[Path]:
    """Write the report directory of a :class:`~orgsim.comparison.ComparisonResult` into
    ``out`` (``meta.json`` last); returns the files written.

    The forecasts ``forecast_steps`` periods past the horizon (default one year; 0: none) and
    the backtests are computed by :func:`forecasts` unless ``forecast`` (and ``backtests``)
    are given."""
    from ._io import atomic_write, write_meta
    from .cli import git_commit
    from .simulation import package_versions

    if forecast is None and forecast_steps != 0:
        forecast, backtests = forecasts(res, forecast_steps, alpha, seed=res.seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)  # no complete report until it is rewritten
    for stale in ("forecasts.parquet", "backtests.parquet", "forecast.png"):  # from an earlier run
        (out / stale).unlink(missing_ok=True)
    tables = {
        "effects.parquet": res.summary_frame(alpha),
        "outcomes.parquet": res.outcomes(),
        "crossover.parquet": res.crossover(alpha),
    }
    if forecast is not None:
        tables["forecasts.parquet"] = forecast.summary_frame(alpha)
    if backtests is not None:
        tables["backtests.parquet"] = backtests.summary_frame().reset_index()
    for name, frame in tables.items():
        atomic_write(out / name, lambda p, frame=frame: frame.to_parquet(p, index=False))
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.6), layout="constrained")
    res.plot_difference(FAMILY, alpha, ax=fig.subplots())
    atomic_write(out / "difference.png", lambda p: fig.savefig(p, dpi=100, format="png"))
    fig = Figure(
        figsize=(8.0, 1.8 + 0.45 * len(res.contrasts) * max(1, len(res.environments)) / 2),
        layout="constrained",
    )
    res.plot_effects("cumulative_fcf", None, alpha, ax=fig.subplots())
    atomic_write(out / "effects.png", lambda p: fig.savefig(p, dpi=100, format="png"))
    figures = ["difference.png", "effects.png"]
    if forecast is not None:
        fig = forecast.plot("cumulative_fcf", arms="family", alpha=alpha)
        atomic_write(out / "forecast.png", lambda p: fig.savefig(p, dpi=90, format="png"))
        figures.append("forecast.png")
    text = _markdown(res, alpha, argv, forecast, backtests)
    atomic_write(out / "report.md", lambda p: Path(p).write_text(text))
    files = [*tables, *figures, "report.md"]
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
        "forecast": None
        if forecast is None
        else {"model": forecast.model, "steps": forecast.steps, "kpis": list(forecast.kpis)},
        "backtests": None if backtests is None else dict(backtests.models),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "configs": {f"{env}/{arm}": cfg.to_dict() for (env, arm), cfg in res.configs.items()},
        "timings_s": {k: v for k, v in res.timings.items() if isinstance(v, int | float)},
    }
    write_meta(out, meta, {name: {} for name in files})
    return [out / name for name in (*files, "meta.json")]


def _forecast_markdown(forecast, backtests, alpha: float) -> list[str]:
    unit = forecast.time_unit.removesuffix("s")
    level = f"{100 * (1 - alpha):g}%"
    end = forecast.train_periods + forecast.steps
    lines = [
        "## Forecasts past the horizon",
        "",
        f"Each family's mean over its firms and the family difference (the per-{unit} mean over firms of "
        "each firm's paired difference, which common random numbers make smooth) are each forecast by "
        f"their own model, `{' '.join(forecast.model.split())}`, fitted on {unit}s 1–{forecast.train_periods} "
        f"and forecast to {unit} {end}, with the model's {level} prediction interval. How often such "
        "intervals covered a simulated continuation, and how often a two-year forecast picked the "
        "five-year winner, is measured in docs/comparison.md (*Validation: strategy forecasts*).",
        "",
    ]
    w = _family_winner(forecast, alpha)
    if w is not None:
        lines += [
            f"| environment | cumulative FCF difference at {unit} {end} (MU) | {level} interval | "
            f"simulated at {unit} {forecast.train_periods} | same sign |",
            "|---|---:|---|---:|---|",
        ]
        for r in w.itertuples():
            lines.append(
                f"| {r.environment} | {r.mean:+,.0f} | [{r.mean_ci_lower:+,.0f}, {r.mean_ci_upper:+,.0f}] | "
                f"{r.last_observed:+,.0f} | {'yes' if r.same_sign_as_last_observed else 'no'} |"
            )
        lines.append("")
    lines += ["![forecasts past the horizon](forecast.png)", ""]
    fails = forecast.failures
    if len(fails):
        lines += [
            f"Fits that failed or did not converge: {len(fails)} (see `forecasts.parquet` and the API).",
            "",
        ]
    lines += ["Every forecast (each KPI, family and period) is in `forecasts.parquet`.", ""]
    lines += ["## Backtests on the pooled series", ""]
    if backtests is None:
        lines += [
            f"Not run: {forecast.train_periods} {unit}s are fewer than three seasons (two to fit a seasonal "
            "model, one to score it).",
            "",
        ]
        return lines
    b = backtests
    lines += [
        f"Rolling origin on the same pooled series: fitted on {unit}s 1–o for o = {2 * b.horizon}, "
        f"{3 * b.horizon}, … and scored on the next {b.horizon} simulated {unit}s. A model *beats seasonal "
        "naive* when its MASE (mean absolute error over the in-sample seasonal naive MAE) is below "
        "SeasonalNaive's on the same series; coverage is the share of simulated values inside the "
        f"{level} interval.",
        "",
        "| environment | series | KPI | models beating seasonal naive | seasonal naive MASE |",
        "|---|---|---|---|---:|",
    ]
    beats = b.beats_seasonal_naive(by=["environment", "series_kind"])
    for r in beats.itertuples():
        lines.append(
            f"| {r.environment} | {r.series_kind} | {r.kpi} | {', '.join(r.models) or 'none'} | {r.seasonal_naive_mase:.2f} |"
        )
    t = b.summary_frame(by=[]).reset_index()
    lines += [
        "",
        "Over every pooled series (both families and the difference, every environment):",
        "",
        "| model | KPI | MASE | coverage | failed fits |",
        "|---|---|---:|---:|---:|",
    ]
    for r in t.itertuples():
        lines.append(f"| {r.model} | {r.kpi} | {r.mase:.2f} | {100 * r.coverage:.0f}% | {r.n_failed} |")
    lines += ["", "Every score, per environment and series kind, is in `backtests.parquet`.", ""]
    return lines


def _markdown(res, alpha: float, argv: Sequence[str], forecast=None, backtests=None) -> str:
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
        headline(res, alpha, forecast),
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
    if forecast is not None:
        lines += _forecast_markdown(forecast, backtests, alpha)
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
    from .plots import use_headless_backend

    use_headless_backend()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _Parser(prog="orgsim-compare", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "overrides", nargs="*", help="config overrides common to every cell, e.g. finance.price=11"
    )
    parser.add_argument(
        "--firms", type=int, default=200, help="firms per strategy and environment (default 200)"
    )
    parser.add_argument(
        "--periods", type=int, default=None, help="periods to simulate (default: the scenario's)"
    )
    parser.add_argument(
        "--strategies", default=None, help="comma-separated strategies (default: all in conf/strategy)"
    )
    parser.add_argument(
        "--environments",
        default=None,
        help="comma-separated environments (default: stable,volatile,disrupted)",
    )
    parser.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    parser.add_argument("--engine", default="numba", choices=("numba", "mesa"))
    parser.add_argument("--alpha", type=float, default=0.05, help="1 − the intervals' level (default 0.05)")
    parser.add_argument(
        "--forecast-steps",
        type=int,
        default=None,
        help="periods forecast past the horizon (default: one year; 0: no forecasts or backtests)",
    )
    parser.add_argument(
        "--out", default=None, help="report directory (default outputs/compare/<date>_<time>)"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from .comparison import check_alpha, compare
    from .config import ConfigError

    start = time.perf_counter()
    try:
        alpha = check_alpha(args.alpha)
        if args.forecast_steps is not None and args.forecast_steps < 0:
            raise ValueError(f"--forecast-steps == {args.forecast_steps}, must be >= 0 (0: no forecasts)")
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
        forecast, backtests = forecasts(res, args.forecast_steps, alpha, seed=args.seed)
    except ValueError as exc:  # e.g. a horizon too short for the default model
        print(f"orgsim-compare: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    try:
        write_report(
            res,
            out,
            alpha=alpha,
            argv=argv,
            forecast_steps=args.forecast_steps,
            forecast=forecast,
            backtests=backtests,
        )
    except OSError as exc:
        print(
            f"orgsim-compare: error: cannot write the report to {str(out)!r}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    print(headline(res, alpha, forecast))
    print(f"report: {out}/report.md ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
