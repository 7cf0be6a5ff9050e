"""Plots of results (matplotlib, headless)."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["KEY_KPIS", "fan_chart"]

#: the KPIs drawn in a run's fan chart
KEY_KPIS = ("cash", "credit_headroom", "free_cash_flow", "fill_rate", "inventory_units", "mean_knowledge")


def fan_chart(kpis: pd.DataFrame, path, kpis_to_plot=KEY_KPIS, by: str = "strategy") -> None:
    """Median and 50% / 90% bands across firms of key KPIs per period, one line per ``by``.

    Parameters
    ----------
    kpis : DataFrame
        A KPI table (``SimulationResult.kpis`` or ``orgsim.results.load``).
    path : str or path-like
        PNG file to write.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    groups = list(kpis.groupby(by, observed=True)) if by in kpis else [("all", kpis)]
    n = len(kpis_to_plot)
    cols = 3
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False, sharex=True)
    for ax, kpi in zip(axes.flat, kpis_to_plot):
        for (name, df), color in zip(groups, plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4):
            q = df.groupby("period")[kpi].quantile([0.05, 0.25, 0.5, 0.75, 0.95]).unstack()
            x = q.index.to_numpy()
            ax.fill_between(x, q[0.05], q[0.95], color=color, alpha=0.15, linewidth=0)
            ax.fill_between(x, q[0.25], q[0.75], color=color, alpha=0.3, linewidth=0)
            ax.plot(x, q[0.5], color=color, linewidth=1.5, label=str(name))
        ax.set_title(kpi.replace("_", " "))
        ax.grid(alpha=0.3)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("period")
    axes.flat[0].legend(title=by, fontsize=8)
    fig.suptitle("median, 50% and 90% bands across firms", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)
