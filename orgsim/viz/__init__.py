"""An interactive firm in the browser: Mesa's ``SolaraViz`` over the reference engine.

``orgsim-viz`` (:func:`main`) serves the app of :mod:`orgsim.viz.app` with ``solara run``: one
firm of the ``multinational`` scenario, its supply network and KPIs live, sliders for the
strategy's levers and the environment (:data:`LEVERS`, each one configuration field), and a
second page with the same firm under another strategy on common random numbers.

The model, :class:`FirmExplorer`, is a plain ``mesa.Model`` and runs without a browser (and
without solara). The app needs the ``viz`` extra: ``pip install -e .[viz]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys

from ._model import ENVIRONMENTS, LEVERS, STRATEGIES, FirmExplorer, Lever, config_value, model_params

__all__ = [
    "ENVIRONMENTS",
    "LEVERS",
    "STRATEGIES",
    "FirmExplorer",
    "Lever",
    "app_command",
    "config_value",
    "main",
    "model_params",
]

#: the module ``solara run`` serves
APP = "orgsim.viz.app"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--port == {text!r}, must be an integer in [1, 65535]") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"--port == {port}, must be in [1, 65535]")
    return port


def app_command(port: int = 8765, host: str = "127.0.0.1") -> list[str]:
    """The command that serves the app: ``python -m solara run orgsim.viz.app`` on ``host:port``."""
    return [
        sys.executable,
        "-m",
        "solara",
        "run",
        APP,
        "--port",
        str(port),
        "--host",
        host,
        "--no-open",
        "--production",
    ]


def main(argv: list[str] | None = None) -> int:
    """Console script ``orgsim-viz``: serve the app, print its URL, run until interrupted.

    Examples
    --------
    ``orgsim-viz --port 8765`` then open http://127.0.0.1:8765/ in a browser.
    """
    parser = argparse.ArgumentParser(
        prog="orgsim-viz",
        description="Serve orgsim's interactive firm (Mesa SolaraViz) in the browser.",
    )
    parser.add_argument("--port", type=_port, default=8765, help="port to serve on (default 8765)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("solara") is None:
        print(
            "orgsim-viz: solara is not installed; install the viz extra: pip install -e .[viz]",
            file=sys.stderr,
        )
        return 2
    if importlib.util.find_spec("solara_assets") is None:
        print(
            "orgsim-viz: solara-assets is not installed, so the page loads its JavaScript from a CDN "
            "(offline: pip install 'solara[assets]')",
            file=sys.stderr,
        )
    print(f"orgsim-viz: serving the interactive firm at http://{args.host}:{args.port}/ (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        return subprocess.call(app_command(args.port, args.host))
    except KeyboardInterrupt:
        return 0
