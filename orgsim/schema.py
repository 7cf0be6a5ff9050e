"""The output schema both engines write: KPI columns per firm and period, team columns per
firm, period and team (the public contract of ``../shared/MODEL.md``), and the fields the
engines record."""

from __future__ import annotations

import os

from .config import ConfigError

__all__ = [
    "ENGINE_KPIS",
    "ENGINE_TEAM_FIELDS",
    "KPI_COLUMNS",
    "KPI_EXTRA",
    "STRUCTURAL",
    "TEAM_COLUMNS",
    "check_memory",
]

KPI_COLUMNS = (
    "org",
    "period",
    "strategy",
    "family",
    "demand",
    "revenue",
    "operating_cost",
    "ebitda",
    "free_cash_flow",
    "cash",
    "debt",
    "credit_headroom",
    "inventory_units",
    "backlog_units",
    "fill_rate",
    "mean_knowledge",
    "code_knowledge",
    "mean_maturity",
    "solvent",
)
#: extra KPI columns kept after the contract's (needed to check cash conservation)
KPI_EXTRA = ("cash_start", "net_financing", "interest", "programme_cost")
TEAM_COLUMNS = (
    "org",
    "period",
    "team",
    "stage",
    "role",
    "inventory",
    "backlog",
    "order",
    "received",
    "shipped",
    "cost",
    "knowledge",
)
#: what both engines record per firm and period (``demand_total`` becomes ``demand``)
ENGINE_KPIS = ("demand_total", *KPI_COLUMNS[5:], *KPI_EXTRA)
ENGINE_TEAM_FIELDS = TEAM_COLUMNS[5:]

#: config keys that fix a population's array shapes: every firm of one call shares them
STRUCTURAL = (
    "periods",
    "network.stages",
    "network.width",
    "network.roles",
    "network.order_delay",
    "network.lead_time",
    "policy.ma_window",
    "management.score_window",
    "finance.covenant_window",
    "finance.receivable_lag",
    "finance.payable_lag",
    "culture.dims",
    "culture.members",
)


def check_memory(cfg, teams: bool) -> None:
    """Raise ConfigError if the engines' result arrays alone (8 bytes per KPI per firm and
    period, and per team field per team with ``teams``) exceed this machine's memory: such a run
    cannot finish, so it is refused before it starts (and before the CLI writes anything)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return
    per_period = len(ENGINE_KPIS) + (len(ENGINE_TEAM_FIELDS) * cfg.network.n_teams if teams else 0)
    need = 8 * per_period * cfg.n_orgs * cfg.periods
    if need > total:
        what = "KPI and team arrays" if teams else "KPI arrays"
        raise ConfigError(
            f"n_orgs × periods == {cfg.n_orgs} × {cfg.periods}, must fit in memory: its {what} need "
            f"{need / 2**30:,.0f} GiB, this machine has {total / 2**30:,.0f} GiB"
        )
