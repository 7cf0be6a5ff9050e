"""The model behind the browser view: one firm steered by levers, and its twin on common random numbers.

:class:`FirmExplorer` is a ``mesa.Model`` whose keyword arguments are the controls of the app
(:data:`LEVERS`): each names one configuration field of ``docs/model.md`` §12. It composes the
configuration with :func:`orgsim.compose` — so every value is validated by orgsim's own rules —
and runs two :class:`orgsim.engine_mesa.Firm` models side by side:

- ``firm``: the scenario ``multinational`` in the chosen environment, under the chosen strategy
  with the levers applied on top;
- ``twin``: the same configuration and seed under another shipped strategy (``compare_with``),
  without the strategy levers. Both firms have index 0 and the same seed, so they draw the same
  random numbers (demand, shocks, disruptions: common random numbers, ``docs/model.md`` §7.13)
  and differ only through their management.

A configuration that orgsim rejects does not raise: the explorer keeps the message of the
:class:`orgsim.ConfigError` in ``error``, has no firms and does not run, so the app can show the
message instead of a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import mesa
import numpy as np

from ..config import Config, ConfigError, compose
from ..engine_mesa import Firm

__all__ = ["ENVIRONMENTS", "LEVERS", "STRATEGIES", "FirmExplorer", "Lever", "config_value", "model_params"]

#: the environment presets and strategies that ship in ``conf/`` (``docs/model.md`` §9)
ENVIRONMENTS = ("stable", "volatile", "disrupted")
STRATEGIES = ("none", "bpo", "bpm", "bpo_bpm", "bso")


@dataclass(frozen=True, kw_only=True, slots=True)
class Lever:
    """One control of the app and the configuration field it sets.

    ``default`` is the value the shipped configs give the field under the app's default
    environment (``volatile``) and strategy (``bpo_bpm``), so the default app runs exactly the
    shipped configuration; ``low`` and ``high`` lie inside the range orgsim's validation allows
    (``docs/model.md`` §12). ``choices`` makes the control a selection instead of a slider.
    """

    name: str
    field: str
    label: str
    default: float | int | str
    group: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[str, ...] = ()

    def mesa_param(self) -> dict:
        """The control in Mesa's ``model_params`` format (``SolaraViz``'s ``UserInputs``)."""
        if self.choices:
            return {
                "type": "Select",
                "value": self.default,
                "values": list(self.choices),
                "label": self.label,
            }
        kind = "SliderInt" if isinstance(self.default, int) else "SliderFloat"
        return {
            "type": kind,
            "value": self.default,
            "min": self.low,
            "max": self.high,
            "step": self.step,
            "label": self.label,
        }


#: the controls of the app: strategy levers (firm A only) and the environment (both firms)
LEVERS: tuple[Lever, ...] = (
    Lever(
        name="accountability_weight",
        field="management.accountability_weight",
        label="accountability weight w (firm objective)",
        default=0.0,
        group="strategy",
        low=0.0,
        high=1.0,
        step=0.05,
    ),
    Lever(
        name="bpo_every",
        field="management.bpo_every",
        label="BPO cadence (weeks between projects, 0 = none)",
        default=13,
        group="strategy",
        low=0,
        high=52,
        step=1,
    ),
    Lever(
        name="bpo_target",
        field="management.bpo_target",
        label="BPO target",
        default="worst_local",
        group="strategy",
        choices=("worst_local", "constraint"),
    ),
    Lever(
        name="bpm_rate",
        field="management.bpm_rate",
        label="BPM rate (maturity growth per week)",
        default=0.02,
        group="strategy",
        low=0.0,
        high=0.1,
        step=0.005,
    ),
    Lever(
        name="socialisation",
        field="culture.p1",
        label="socialisation p1 (per learning step)",
        default=0.1,
        group="strategy",
        low=0.0,
        high=1.0,
        step=0.05,
    ),
    Lever(
        name="information",
        field="information",
        label="information sharing",
        default="local",
        group="strategy",
        choices=("local", "shared"),
    ),
    Lever(
        name="demand_noise",
        field="demand.cv",
        label="demand noise cv (sd / level)",
        default=0.2,
        group="environment",
        low=0.0,
        high=0.5,
        step=0.01,
    ),
    Lever(
        name="shock_prob",
        field="demand.shock_prob",
        label="demand-shock probability (per week)",
        default=0.01,
        group="environment",
        low=0.0,
        high=0.1,
        step=0.005,
    ),
    Lever(
        name="disruption_prob",
        field="supply.disruption_prob",
        label="supply-disruption probability (per week)",
        default=0.002,
        group="environment",
        low=0.0,
        high=0.05,
        step=0.001,
    ),
)

_LEVER = {lever.name: lever for lever in LEVERS}


@lru_cache(maxsize=64)
def _compose(overrides: tuple[str, ...]) -> Config:
    """:func:`orgsim.compose`, remembered: a Reset with unchanged controls does not compose again.

    A Config is frozen, so sharing one between models is safe; a ConfigError is not cached.
    """
    return compose(list(overrides))


def _extra_overrides(text: str) -> list[str]:
    """The free-text overrides (separated by spaces, commas are part of list values)."""
    if not isinstance(text, str):
        raise ConfigError(f"overrides == {text!r}, must be a string of Hydra overrides like 'periods=52'")
    return text.split()


class FirmExplorer(mesa.Model):
    """One firm of the ``multinational`` scenario with the app's levers, and its CRN twin.

    Every keyword argument but ``strategy``, ``environment``, ``compare_with``, ``seed``,
    ``periods`` and ``overrides`` is a lever of :data:`LEVERS` and sets the configuration
    field named there. Firm A's configuration is ``orgsim.compose`` of
    ``strategy=<strategy>``, ``environment=<environment>``, ``seed``, ``periods`` and the
    free-text ``overrides``, then :meth:`Config.replace` with every lever (validated by the same
    rules, ``config_from_dict``); the twin's is the same with ``strategy=<compare_with>`` and
    only the environment levers. The levers come last, so they win over ``overrides``.

    Parameters
    ----------
    environment : {"stable", "volatile", "disrupted"}
        Environment preset: sets the fields the environment levers do not (shock size and
        duration, disruption severity, input-cost shocks, turbulence ``culture.p4``).
    strategy : {"none", "bpo", "bpm", "bpo_bpm", "bso"}
        Strategy of firm A before its levers: sets the management fields the levers do not
        (project size, cost and erosion; BPM cost and focus; the culture programme).
    compare_with : {"none", "bpo", "bpm", "bpo_bpm", "bso"}
        Shipped strategy of the twin firm B.
    seed : int
        Root seed (SPEC 7) of both firms.
    periods : int
        Horizon in weeks; the explorer stops running after it.
    overrides : str
        More Hydra overrides for both firms, separated by spaces (e.g. ``"finance.min_cash=0"``).
    **levers
        Values of :data:`LEVERS` by name.

    Attributes
    ----------
    config, twin_config : Config or None
        The validated configurations of firm A and firm B (None after a ConfigError).
    firm, twin : orgsim.engine_mesa.Firm or None
        The two firms.
    error : str or None
        The message of the ConfigError when the controls give an invalid configuration.

    Examples
    --------
    >>> from orgsim.viz import FirmExplorer
    >>> explorer = FirmExplorer(accountability_weight=0.5, periods=8)
    >>> explorer.config.management.accountability_weight
    0.5
    >>> for _ in range(3):
    ...     explorer.step()
    >>> explorer.period, len(explorer.kpis("firm")["cash"])
    (3, 3)
    >>> FirmExplorer(overrides="network.lead_time=-1").error
    'network.lead_time == -1, must be >= 1'
    """

    def __init__(
        self,
        *,
        environment: str = "volatile",
        strategy: str = "bpo_bpm",
        compare_with: str = "bso",
        seed: int = 0,
        periods: int = 104,
        overrides: str = "",
        accountability_weight: float = 0.0,
        bpo_every: int = 13,
        bpo_target: str = "worst_local",
        bpm_rate: float = 0.02,
        socialisation: float = 0.1,
        information: str = "local",
        demand_noise: float = 0.2,
        shock_prob: float = 0.01,
        disruption_prob: float = 0.002,
    ):
        super().__init__(rng=np.random.default_rng(0))  # the firms draw from cfg.seed alone
        levers = {
            "accountability_weight": accountability_weight,
            "bpo_every": bpo_every,
            "bpo_target": bpo_target,
            "bpm_rate": bpm_rate,
            "socialisation": socialisation,
            "information": information,
            "demand_noise": demand_noise,
            "shock_prob": shock_prob,
            "disruption_prob": disruption_prob,
        }
        self.environment_name, self.strategy_name, self.compare_with = environment, strategy, compare_with
        self.levers = levers
        self.error: str | None = None
        self.config: Config | None = None
        self.twin_config: Config | None = None
        self.firm: Firm | None = None
        self.twin: Firm | None = None
        try:
            base = (
                f"environment={environment}",
                f"seed={seed}",
                f"periods={periods}",
                *_extra_overrides(overrides),
            )
            env = {_LEVER[k].field: v for k, v in levers.items() if _LEVER[k].group == "environment"}
            own = {_LEVER[k].field: v for k, v in levers.items() if _LEVER[k].group == "strategy"}
            self.config = _compose((f"strategy={strategy}", *base)).replace(**env, **own)
            self.twin_config = _compose((f"strategy={compare_with}", *base)).replace(**env)
        except ConfigError as exc:
            self.error = str(exc)
            self.config = self.twin_config = None
            self.running = False
            return
        self.firm = Firm(self.config)
        self.twin = Firm(self.twin_config)

    @property
    def period(self) -> int:
        """Periods run so far (0 before the first step)."""
        return 0 if self.firm is None else int(self.firm.steps)

    @property
    def horizon(self) -> int:
        """The configured number of periods (0 without a valid configuration)."""
        return 0 if self.config is None else self.config.periods

    def step(self) -> None:
        """Run one period of both firms; stop at the horizon."""
        if self.firm is None or self.period >= self.horizon:
            self.running = False
            return
        self.firm.step()
        self.twin.step()
        if self.period >= self.horizon:
            self.running = False

    def kpis(self, which: str = "firm") -> dict[str, np.ndarray]:
        """The KPIs ``which`` (``"firm"`` or ``"twin"``) recorded so far, one entry per period.

        Read from the firm's Mesa ``DataCollector`` (``model_vars``); ``demand_total`` is the
        firm's end-customer demand.
        """
        if which not in ("firm", "twin"):
            raise ValueError(f"which == {which!r}, must be 'firm' or 'twin'")
        firm = getattr(self, which)
        if firm is None:
            return {}
        return {k: np.asarray(v, dtype=float) for k, v in firm.datacollector.model_vars.items()}

    def cumulative_fcf_difference(self) -> np.ndarray:
        """Cumulative free cash flow of firm A minus that of firm B, period by period (MU)."""
        a, b = self.kpis("firm"), self.kpis("twin")
        if not a:
            return np.zeros(0)
        return np.cumsum(a["free_cash_flow"]) - np.cumsum(b["free_cash_flow"])


def config_value(cfg: Config | None, field: str):
    """The value of a dotted configuration field (``"management.bpo_every"``); None without a config."""
    if cfg is None:
        return None
    value = cfg
    for part in field.split("."):
        value = getattr(value, part)
    return value


def model_params() -> dict:
    """The app's controls in Mesa's ``SolaraViz(model_params=...)`` format."""
    params: dict = {
        "environment": {
            "type": "Select",
            "value": "volatile",
            "values": list(ENVIRONMENTS),
            "label": "environment",
        },
        "strategy": {
            "type": "Select",
            "value": "bpo_bpm",
            "values": list(STRATEGIES),
            "label": "strategy of firm A (before its levers)",
        },
    }
    params.update({lever.name: lever.mesa_param() for lever in LEVERS})
    params["compare_with"] = {
        "type": "Select",
        "value": "bso",
        "values": list(STRATEGIES),
        "label": "strategy of firm B (CRN twin)",
    }
    params["seed"] = {"type": "SliderInt", "value": 0, "min": 0, "max": 99, "step": 1, "label": "seed"}
    params["periods"] = {
        "type": "SliderInt",
        "value": 104,
        "min": 13,
        "max": 260,
        "step": 13,
        "label": "horizon (weeks)",
    }
    params["overrides"] = {"type": "InputText", "value": "", "label": "more overrides (key=value ...)"}
    return params
