"""Plots of results (matplotlib, headless), all in one place.

Every figure has a title that names what it shows, axis labels with units and a legend
(``tests/test_plots.py`` checks each kind). The figures of the analysis tools are drawn by their
results objects; the functions here are the one index of them, so that a notebook, a report
command and ``orgsim-results plot`` draw the same figure:

==========================  ===============================================================
:func:`fan_chart`           KPIs over time, median and 50% / 90% bands across firms, per strategy
:func:`paired_difference`   a comparison's paired difference over time with its band
:func:`effects_forest`      a comparison's effects with their intervals (forest plot)
:func:`comparison`          both of the above side by side
:func:`forecast_fan`        forecasts past the horizon, the simulated continuation overlaid
:func:`calibration_fit`     a calibration's observed against simulated series
:func:`calibration_slices`  the calibration loss along each parameter through the estimate
:func:`sensitivity_bars`    Morris (μ*, σ with the noise floor) or Sobol' indices with intervals
:func:`win_map`             where each management family wins (surrogate), over two parameters
==========================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "KEY_KPIS",
    "KPI_UNITS",
    "calibration_fit",
    "calibration_slices",
    "comparison",
    "effects_forest",
    "fan_chart",
    "forecast_fan",
    "key_kpis",
    "paired_difference",
    "sensitivity_bars",
    "win_map",
]

#: the KPIs drawn in a run's fan chart when every layer is on
KEY_KPIS = ("cash", "credit_headroom", "free_cash_flow", "fill_rate", "inventory_units", "mean_knowledge")

#: unit of each KPI column ("/t": per period of the scenario's time unit)
KPI_UNITS = {
    "demand": "units/t",
    "revenue": "MU/t",
    "operating_cost": "MU/t",
    "ebitda": "MU/t",
    "free_cash_flow": "MU/t",
    "cash": "MU",
    "debt": "MU",
    "credit_headroom": "MU",
    "inventory_units": "units",
    "backlog_units": "units",
    "fill_rate": "share of demand",
    "mean_knowledge": "share of dimensions",
    "code_knowledge": "share of dimensions",
    "mean_maturity": "0-1",
    "solvent": "share of firms",
    "programme_cost": "MU/t",
    "interest": "MU/t",
}

_FINANCE = ("cash", "debt", "credit_headroom", "free_cash_flow", "ebitda", "revenue", "solvent", "interest")
_CULTURE = ("mean_knowledge", "code_knowledge")


def key_kpis(finance: bool = True, culture: bool = True) -> tuple[str, ...]:
    """The KPIs worth drawing for a run with these layers on: finance KPIs only with finance,
    knowledge only with culture (a classic scenario has neither)."""
    out = [k for k in KEY_KPIS if (finance or k not in _FINANCE) and (culture or k not in _CULTURE)]
    if not finance:
        out = ["inventory_units", "backlog_units", "fill_rate", "operating_cost"] + [
            k for k in out if k in _CULTURE
        ]
    return tuple(dict.fromkeys(out))


def _label(kpi: str, time_unit: str) -> str:
    unit = KPI_UNITS.get(kpi, "")
    unit = unit.replace("/t", f"/{time_unit}") if unit else unit
    return f"{kpi.replace('_', ' ')} ({unit})" if unit else kpi.replace("_", " ")


def _firm_count(df: pd.DataFrame) -> int:
    keys = [c for c in ("run_id", "kpis_file") if c in df]
    return int(df[[*keys[:1], "org"]].drop_duplicates().shape[0]) if keys else int(df["org"].nunique())


def _describe(df: pd.DataFrame, column: str) -> str | None:
    if column not in df:
        return None
    values = sorted(map(str, pd.unique(df[column].dropna())))
    return ", ".join(values) if values else None


def fan_chart(
    kpis: pd.DataFrame,
    path,
    kpis_to_plot: Sequence[str] | None = None,
    by: str = "strategy",
    *,
    title: str | None = None,
    time_unit: str = "week",
) -> None:
    """Median and 50% / 90% bands across firms of key KPIs per period, one panel per KPI and
    ``by`` group (strategies side by side, sharing each KPI's y axis).

    Parameters
    ----------
    kpis : DataFrame
        A KPI table (``SimulationResult.kpis`` or ``orgsim.results.load``).
    path : str or path-like
        PNG file to write.
    kpis_to_plot : sequence of str, optional
        KPI columns (default :data:`KEY_KPIS`; :func:`key_kpis` picks those of a run's layers).
    by : str
        Column whose groups are drawn side by side (one column of panels each).
    title : str, optional
        The figure's title; by default it names the scenario, environment and firms.
    time_unit : str
        What one period is (``scenario.time_unit``), for the x axis and the units.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    kpis_to_plot = tuple(KEY_KPIS if kpis_to_plot is None else kpis_to_plot)
    groups = list(kpis.groupby(by, observed=True)) if by in kpis else [("all firms", kpis)]
    if by == "strategy" and "family" in kpis:  # baseline, then efficiency-only, then culture-aligned
        order = {"baseline": 0, "efficiency_only": 1, "culture_aligned": 2}
        groups.sort(key=lambda g: (order.get(str(g[1]["family"].iloc[0]), 3), str(g[0])))
    rows, cols = len(kpis_to_plot), len(groups)
    single = cols == 1
    if single:  # one group: the KPIs in a grid of three columns
        cols = min(3, rows)
        rows = int(np.ceil(len(kpis_to_plot) / cols))
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(3.6 * cols + 0.6, 2.6 * rows + 1.0),
        squeeze=False,
        sharex=True,
        sharey=not single and "row",
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    quantiles = [
        df.groupby("period")[list(kpis_to_plot)].quantile([0.05, 0.25, 0.5, 0.75, 0.95]) for _, df in groups
    ]
    for g, (name, df) in enumerate(groups):
        color = colors[g % len(colors)]
        q_all = quantiles[g]
        for k, kpi in enumerate(kpis_to_plot):
            ax = axes.flat[k] if single else axes[k, g]
            q = q_all[kpi].unstack()
            x = q.index.to_numpy()
            for h, other in enumerate(quantiles):  # the other groups' medians, for comparison
                if h != g:
                    m = other[kpi].unstack()[0.5]
                    ax.plot(m.index, m.to_numpy(), color="0.55", linewidth=0.8, linestyle="--", zorder=1)
            ax.fill_between(x, q[0.05], q[0.95], color=color, alpha=0.15, linewidth=0)
            ax.fill_between(x, q[0.25], q[0.75], color=color, alpha=0.35, linewidth=0)
            ax.plot(x, q[0.5], color=color, linewidth=1.5)
            ax.grid(alpha=0.3)
            if single:
                ax.set_title(_label(kpi, time_unit), fontsize=9)
            else:
                if k == 0:
                    firms = _firm_count(df)
                    ax.set_title(f"{by} {name} ({firms} firm{'s' if firms != 1 else ''})", fontsize=10)
                if g == 0:
                    ax.set_ylabel(_label(kpi, time_unit), fontsize=8)
    for ax in axes.flat[len(kpis_to_plot) :] if single else ():
        ax.set_visible(False)
    for ax in axes[-1] if not single else axes.flat:
        ax.set_xlabel(time_unit)
    legend = [
        plt.Line2D([], [], color="0.2", linewidth=1.5, label="median"),
        Patch(color="0.2", alpha=0.35, label="50% of firms"),
        Patch(color="0.2", alpha=0.15, label="90% of firms"),
    ]
    if not single:
        other = "strategies" if by == "strategy" else f"{by} groups"
        legend.append(
            plt.Line2D([], [], color="0.55", linewidth=0.8, linestyle="--", label=f"other {other}' medians")
        )
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=8, frameon=False)
    if title is None:
        parts = [
            f"{label}={value}"
            for label, value in (
                ("scenario", _describe(kpis, "scenario")),
                ("environment", _describe(kpis, "environment")),
            )
            if value
        ]
        if single:
            firms = _firm_count(kpis)
            parts.append(f"{firms} firm{'s' if firms != 1 else ''}")
            named = _describe(kpis, by)
            if named:
                parts.insert(0, f"{by}={named}")
        title = (", ".join(parts) + ": " if parts else "") + "median, 50% and 90% bands across firms"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.35 / fig.get_figheight(), 1, 1 - 0.35 / fig.get_figheight()))
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)


def use_headless_backend() -> None:
    """For a console command, which only writes files: draw with Agg (no window, no display
    needed) unless ``MPLBACKEND`` names a backend. Library functions never switch the backend, so
    that figures show inline in JupyterLab."""
    import os

    if not os.environ.get("MPLBACKEND"):
        import matplotlib

        matplotlib.use("Agg")


# -- the analysis tools' figures -------------------------------------------------------------
def _figure(ax_or_fig):
    """The Figure of what a results object's plot method returned (an Axes or a Figure)."""
    return (
        ax_or_fig.figure if hasattr(ax_or_fig, "figure") and not hasattr(ax_or_fig, "savefig") else ax_or_fig
    )


def paired_difference(result, contrast: str | None = None, alpha: float = 0.05, ax=None):
    """Mean paired difference over time of an :class:`orgsim.ComparisonResult`'s contrast
    (default: the family contrast) in cumulative free cash flow, per environment, with its
    pointwise paired-t band at level 1 − ``alpha``. Returns the Figure."""
    return _figure(result.plot_difference(contrast=contrast, alpha=alpha, ax=ax))


def effects_forest(result, outcome: str = "cumulative_fcf", alpha: float = 0.05, ax=None, **kwargs):
    """Forest plot of an :class:`orgsim.ComparisonResult`'s effects on ``outcome`` at its last
    horizon, every contrast and environment, with their intervals. Returns the Figure."""
    return _figure(result.plot_effects(outcome=outcome, alpha=alpha, ax=ax, **kwargs))


def comparison(result, contrast: str | None = None, outcome: str = "cumulative_fcf", alpha: float = 0.05):
    """:func:`paired_difference` and :func:`effects_forest` side by side (the figure of
    ``orgsim-compare``). Returns the Figure."""
    return result.plot(contrast=contrast, outcome=outcome, alpha=alpha)


def forecast_fan(forecast, **kwargs):
    """Forecast fans of a :class:`orgsim.comparison.StrategyForecast` (``ComparisonResult.forecast``)
    past the training window, with the simulator's own continuation overlaid when the forecast
    was fitted on fewer periods than were simulated. Returns the Figure."""
    return _figure(forecast.plot(**kwargs))


def calibration_fit(result, max_series: int = 6):
    """Observed against simulated series of a :class:`orgsim.CalibrationResult`. Returns the Figure."""
    return _figure(result.plot_fit(max_series=max_series))


def calibration_slices(result, n_points: int = 21, alpha: float = 0.05):
    """The calibration loss along each free parameter through the estimate, with its interval.
    Returns the Figure."""
    return _figure(result.plot_slices(n_points=n_points, alpha=alpha))


def sensitivity_bars(result, alpha: float = 0.05, ax=None):
    """Morris (μ* against σ, with the replicate-noise floor) or Sobol' indices (S1 and ST with
    intervals) of an :mod:`orgsim.sensitivity` result. Returns the Figure."""
    return _figure(result.plot(alpha=alpha, ax=ax))


def win_map(surrogate, x: str, y: str, **kwargs):
    """Where each family wins over parameters ``x`` and ``y`` (the others at their middle), from
    a fitted :class:`orgsim.surrogate.FamilySurrogate`. Returns the Figure."""
    return _figure(surrogate.win_map(x, y, **kwargs).plot())
