"""The Solara app: ``solara run orgsim.viz.app`` (or ``orgsim-viz``) serves it.

Page 0 shows firm A: its supply network, its KPIs and the configuration the controls produced.
Page 1 puts firm A and its twin B (same configuration and seed, another strategy: common random
numbers) side by side, with the difference of their cumulative free cash flow as it develops.
The sidebar (Mesa's ``SolaraViz``) has Step, play/pause and Reset, and the controls of
:data:`orgsim.viz.LEVERS`; a changed control takes effect when the firm is reset, as in every
SolaraViz app (the model is rebuilt from the controls, from week 0).
"""

from __future__ import annotations

from html import escape

import numpy as np
import solara
from mesa.visualization import SolaraViz

from ._draw import kpi_figure, network_figure, pair_figure
from ._model import LEVERS, FirmExplorer, config_value, model_params

__all__ = ["COMPONENTS", "page"]


def _fmt(value) -> str:
    return f"{value:,.0f}" if isinstance(value, float) and abs(value) >= 100 else f"{value}"


def _html(*paragraphs: str):
    """Plain HTML (solara.Markdown would load KaTeX from a CDN, which an offline server lacks)."""
    return solara.HTML(tag="div", unsafe_innerHTML="".join(paragraphs), style="font-size: 15px")


def _settings_table(model: FirmExplorer) -> str:
    cell = 'style="padding: 2px 8px; border-bottom: 1px solid #ddd"'
    head = "".join(f"<th {cell}>{h}</th>" for h in ("control", "config field", "firm A", "firm B"))
    rows = [f"<tr>{head}</tr>"]
    for lever in LEVERS:
        values = (
            escape(lever.label),
            f"<code>{lever.field}</code>",
            escape(str(config_value(model.config, lever.field))),
            escape(str(config_value(model.twin_config, lever.field))),
        )
        rows.append("<tr>" + "".join(f"<td {cell}>{v}</td>" for v in values) + "</tr>")
    return f'<table style="border-collapse: collapse; font-size: 13px">{"".join(rows)}</table>'


def _headline(model: FirmExplorer, which: str) -> str:
    firm = getattr(model, which)
    if model.period == 0:
        return "not started"
    state = "solvent" if firm.solvent else "<b>insolvent</b>"
    return (
        f"{state}, cash {_fmt(float(firm.cash))} MU, credit headroom {_fmt(float(firm.credit_headroom))} MU, "
        f"fill rate {float(firm.fill_rate):.3f}"
    )


def Status(model: FirmExplorer):
    """Week counter and both firms' state in words (or orgsim's message for a bad configuration)."""
    if model.error is not None:
        return solara.Error(f"Invalid configuration (orgsim.ConfigError): {model.error}", icon=True)
    return _html(
        f"<h3>Week {model.period} of {model.horizon}</h3>",
        f"<p>Firm A ({model.strategy_name} + levers, {model.environment_name}, "
        f"seed {model.config.seed}): {_headline(model, 'firm')}</p>",
        f"<p>Firm B ({model.compare_with}): {_headline(model, 'twin')}</p>",
        "<p>Changed controls take effect on <b>Reset</b> (a new firm from week 0).</p>",
    )


def Settings(model: FirmExplorer):
    """The configuration the controls gave: each control's field, as orgsim validated it."""
    if model.error is not None:
        return solara.Error(f"Invalid configuration (orgsim.ConfigError): {model.error}", icon=True)
    return _html("<h4>Configuration of the running firms</h4>", _settings_table(model))


def Network(model: FirmExplorer):
    """Firm A's supply network."""
    if model.firm is None:
        return solara.Text("no firm: see the configuration error")
    fig = network_figure(model.firm, f"Firm A ({model.strategy_name} + levers): supply network")
    return solara.FigureMatplotlib(fig, format="png", dependencies=[model, model.period])


def Kpis(model: FirmExplorer):
    """Firm A's KPIs over time."""
    if model.firm is None:
        return solara.Text("no firm: see the configuration error")
    return solara.FigureMatplotlib(kpi_figure(model), format="png", dependencies=[model, model.period])


def TwinNetwork(model: FirmExplorer):
    """Firm B's supply network, beside firm A's."""
    if model.twin is None:
        return solara.Text("no firm: see the configuration error")
    fig = network_figure(model.twin, f"Firm B ({model.compare_with}): supply network")
    return solara.FigureMatplotlib(fig, format="png", dependencies=[model, model.period])


def Pair(model: FirmExplorer):
    """Both firms' cash and cumulative free cash flow and their difference."""
    if model.firm is None:
        return solara.Text("no firm: see the configuration error")
    return solara.FigureMatplotlib(pair_figure(model), format="png", dependencies=[model, model.period])


def PairStatus(model: FirmExplorer):
    """The difference in words and the check that both firms saw the same demand."""
    if model.error is not None:
        return solara.Error(f"Invalid configuration (orgsim.ConfigError): {model.error}", icon=True)
    diff = model.cumulative_fcf_difference()
    same = np.array_equal(
        model.kpis("firm").get("demand_total", []), model.kpis("twin").get("demand_total", [])
    )
    last = f"{diff[-1]:,.0f} MU" if diff.size else "–"
    return _html(
        f"<h3>Week {model.period} of {model.horizon}: A − B cumulative free cash flow {last}</h3>",
        f"<p>A: {model.strategy_name} + levers — {_headline(model, 'firm')}</p>",
        f"<p>B: {model.compare_with} — {_headline(model, 'twin')}</p>",
        f"<p>Same end-customer demand in both firms so far: {'yes' if same else 'NO'}</p>",
    )


#: (component, page): page 0 is firm A, page 1 the CRN pair (Mesa lays each page out in two columns)
COMPONENTS = [
    (Status, 0),
    (Network, 0),
    (Kpis, 0),
    (Settings, 0),
    (Network, 1),
    (TwinNetwork, 1),
    (Pair, 1),
    (PairStatus, 1),
]

page = SolaraViz(
    FirmExplorer(),
    components=COMPONENTS,
    model_params=model_params(),
    name="orgsim: one firm to watch and steer",
)
