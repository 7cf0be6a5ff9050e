"""Figures of the browser view, drawn with matplotlib's object API (no pyplot, no global state).

Each function takes the model and returns a :class:`matplotlib.figure.Figure`, so the figures can
be tested, saved and shown without a browser. They read only public attributes of
:class:`orgsim.engine_mesa.Firm` (``teams``, ``steps``, ``datacollector``) and its teams
(``name``, ``stage``, ``supplier``, ``inventory``, ``backlog``, ``knowledge``).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from matplotlib import colormaps
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..engine_mesa import Firm
from ._model import FirmExplorer

__all__ = ["kpi_figure", "network_figure", "network_graph", "pair_figure"]

_KNOWLEDGE = Normalize(vmin=0.0, vmax=1.0)
_CMAP = colormaps["viridis"]


def network_graph(firm: Firm) -> nx.DiGraph:
    """The firm's supply network: a node per team (its state as attributes), an edge supplier → customer."""
    graph = nx.DiGraph()
    for team in firm.teams:
        graph.add_node(
            team.name,
            stage=int(team.stage),
            inventory=float(team.inventory),
            backlog=float(team.backlog),
            knowledge=float(team.knowledge),
        )
    for team in firm.teams:
        if team.supplier is not None:
            graph.add_edge(team.supplier.name, team.name)
    return graph


def _layout(graph: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """Stages left to right from the top of the network to the customers, teams stacked."""
    top = max(graph.nodes[n]["stage"] for n in graph)
    by_stage: dict[int, list[str]] = {}
    for node in graph:
        by_stage.setdefault(graph.nodes[node]["stage"], []).append(node)
    pos = {}
    for stage, nodes in by_stage.items():
        for k, node in enumerate(nodes):
            pos[node] = (float(top - stage), (len(nodes) - 1) / 2.0 - k)
    return pos


def _size(inventory: float) -> float:
    """Marker area (points²) for an inventory in units: area grows with the square root."""
    return 150.0 + 40.0 * np.sqrt(max(inventory, 0.0))


def network_figure(firm: Firm, title: str = "Supply network") -> Figure:
    """Teams as nodes: size = inventory, colour = knowledge K, red ring = backlog; labels give the numbers."""
    graph = network_graph(firm)
    pos = _layout(graph)
    fig = Figure(figsize=(8.0, 4.6), layout="constrained")
    ax = fig.add_subplot()
    nodes = list(graph)
    data = [graph.nodes[n] for n in nodes]
    nx.draw_networkx_edges(graph, pos, ax=ax, arrows=True, arrowsize=14, edge_color="0.6", node_size=900)
    backlogged = [d["backlog"] > 0.5 for d in data]
    ax.scatter(
        [pos[n][0] for n in nodes],
        [pos[n][1] for n in nodes],
        s=[_size(d["inventory"]) for d in data],
        c=[d["knowledge"] for d in data],
        cmap=_CMAP,
        norm=_KNOWLEDGE,
        edgecolors=["tab:red" if b else "0.3" for b in backlogged],
        linewidths=[3.0 if b else 0.8 for b in backlogged],
        zorder=3,
    )
    for n, d in zip(nodes, data):
        x, y = pos[n]
        ax.annotate(
            f"{n}\ninv {d['inventory']:.0f} · backlog {d['backlog']:.0f}\nK {d['knowledge']:.2f}",
            (x, y),
            xytext=(0, -20),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=7,
        )
    colorbar = fig.colorbar(
        ax.collections[-1], ax=ax, shrink=0.8, label="knowledge K (share of reality known)"
    )
    colorbar.ax.tick_params(labelsize=7)
    handles = [
        Line2D(
            [], [], ls="", marker="o", ms=np.sqrt(_size(v)) / 1.5, mfc="0.85", mec="0.3", label=f"{v} units"
        )
        for v in (100, 1000)
    ]
    handles.append(
        Line2D([], [], ls="", marker="o", ms=9, mfc="0.85", mec="tab:red", mew=3, label="backlog > 0")
    )
    ax.legend(
        handles=handles,
        title="inventory (node size)",
        loc="upper left",
        fontsize=7,
        title_fontsize=7,
        labelspacing=1.6,
        borderpad=0.9,
    )
    top = max(d["stage"] for d in data)
    ax.set_xticks(range(top + 1), [f"stage {top - x}" for x in range(top + 1)])
    ax.set_yticks([])
    ax.set_xlim(-0.6, top + 0.6)
    ys = [p[1] for p in pos.values()]
    ax.set_ylim(min(ys) - 0.9, max(ys) + 0.6)
    ax.set_xlabel("stage counted from the customer (goods flow left to right)")
    ax.set_title(f"{title}, week {int(firm.steps)}")
    return fig


def _axes(fig: Figure, n: int):
    return fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]


def _finish(axes, horizon: int, loc: str) -> None:
    """Common x range (the whole horizon, so the plots grow as the firm runs) and legends."""
    for ax in axes:
        ax.set_xlim(0, max(horizon, 1) + 1)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc=loc, fontsize=8)


def _periods(values: np.ndarray) -> np.ndarray:
    return np.arange(1, len(values) + 1)


def kpi_figure(model: FirmExplorer) -> Figure:
    """Firm A's cash and credit headroom, fill rate and free cash flow over the weeks run."""
    fig = Figure(figsize=(8.0, 5.6), layout="constrained")
    money, fill, flow = _axes(fig, 3)
    k = model.kpis("firm")
    if k:
        t = _periods(k["cash"])
        money.plot(t, k["cash"], label="cash")
        money.plot(t, k["credit_headroom"], label="credit headroom (limit − debt)")
        money.plot(t, k["debt"], label="debt", ls="--")
        fill.plot(t, k["fill_rate"], color="tab:green", label="fill rate (end customers)")
        flow.bar(t, k["free_cash_flow"], color="tab:purple", label="free cash flow")
    money.set(title="Firm A: cash and access to capital", ylabel="MU")
    fill.set(title="Service", ylabel="share of demand filled", ylim=(0, 1.05))
    flow.set(title="Free cash flow", ylabel="MU per week", xlabel="week")
    flow.axhline(0.0, color="0.4", lw=0.8)
    _finish((money, fill, flow), model.horizon, "lower left")
    return fig


def pair_figure(model: FirmExplorer) -> Figure:
    """Firm A and its CRN twin B: cash, free cash flow, and A − B in cumulative free cash flow."""
    fig = Figure(figsize=(9.0, 7.0), layout="constrained")
    cash, flow, diff = _axes(fig, 3)
    a, b = model.kpis("firm"), model.kpis("twin")
    name_a = f"A: {model.strategy_name} + levers"
    name_b = f"B: {model.compare_with}"
    if a:
        t = _periods(a["cash"])
        cash.plot(t, a["cash"], label=name_a)
        cash.plot(t, b["cash"], label=name_b, ls="--")
        flow.plot(t, np.cumsum(a["free_cash_flow"]), label=name_a)
        flow.plot(t, np.cumsum(b["free_cash_flow"]), label=name_b, ls="--")
        d = model.cumulative_fcf_difference()
        diff.fill_between(
            t, 0.0, d, where=d >= 0, color="tab:blue", alpha=0.4, interpolate=True, label="A ahead"
        )
        diff.fill_between(
            t, 0.0, d, where=d < 0, color="tab:orange", alpha=0.4, interpolate=True, label="B ahead"
        )
        diff.plot(t, d, color="k", lw=1.2, label="A − B")
    cash.set(title="Two firms on common random numbers (same config, seed and demand)", ylabel="cash (MU)")
    flow.set(title="Cumulative free cash flow", ylabel="MU")
    diff.set(title="Difference of cumulative free cash flow, A − B", ylabel="MU", xlabel="week")
    diff.axhline(0.0, color="0.4", lw=0.8)
    _finish((cash, flow, diff), model.horizon, "upper left")
    return fig
