"""Helpers shared by test modules: cached runs, results as arrays, the options in ``conf/``."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

import orgsim
import orgsim.plots
from orgsim.config import config_dir, config_from_dict


@functools.cache
def run(overrides: tuple[str, ...]) -> orgsim.SimulationResult:
    """Compose ``conf/`` with ``overrides`` and simulate it (cached per test process)."""
    return orgsim.simulate(orgsim.compose(list(overrides)))


def run_teams(overrides, engine: str) -> orgsim.SimulationResult:
    """Compose ``conf/`` with ``overrides`` and simulate it on ``engine`` with team records
    (cached per test process, like :func:`run`)."""
    return _run_teams(tuple(overrides), engine)


@functools.cache
def _run_teams(overrides: tuple[str, ...], engine: str) -> orgsim.SimulationResult:
    return orgsim.simulate(orgsim.compose(list(overrides)), engine=engine, teams=True)


def quick_fan_chart(kpis, path, kpis_to_plot=None, by="strategy", *, title=None, time_unit="week") -> None:
    """A stand-in for ``orgsim.plots.fan_chart`` (the ``quick_figures`` fixture): checks that it
    is given a non-empty KPI table with every KPI asked for, and writes a 2 × 2 pixel PNG."""
    import matplotlib.image

    wanted = list(orgsim.plots.KEY_KPIS if kpis_to_plot is None else kpis_to_plot)
    missing = [k for k in wanted if k not in kpis.columns]
    assert len(kpis) and wanted and not missing, f"fan_chart given no rows or lacks {missing}"
    matplotlib.image.imsave(path, np.zeros((2, 2)), format="png")


def team_array(res: orgsim.SimulationResult, column: str) -> np.ndarray:
    """A team column of ``res.teams`` as an array ``[org, period, team]`` (network order)."""
    cfg, teams = res.config, res.teams
    n_teams = len(teams.team.cat.categories)
    df = teams.sort_values(["org", "period", "team"], kind="stable")
    return df[column].to_numpy(dtype=float).reshape(cfg.n_orgs, cfg.periods, n_teams)


def kpi_array(res: orgsim.SimulationResult, column: str) -> np.ndarray:
    """A KPI column of ``res.kpis`` as an array ``[org, period]``."""
    cfg = res.config
    df = res.kpis.sort_values(["org", "period"], kind="stable")
    return df[column].to_numpy().reshape(cfg.n_orgs, cfg.periods)


def atol_for(*arrays) -> float:
    """Absolute tolerance for identities between float sums: 1e-9 of the largest magnitude."""
    scale = max(float(np.max(np.abs(a))) if np.size(a) else 0.0 for a in arrays)
    return 1e-9 * max(1.0, scale)


def conf_options() -> list[tuple[str, str]]:
    """Every ``(group, option)`` with a YAML file in ``conf/<group>/`` (discovered by globbing)."""
    root = Path(config_dir())
    return sorted(
        (group.name, path.stem) for group in root.iterdir() if group.is_dir() for path in group.glob("*.yaml")
    )


def default_groups() -> set[str]:
    """Config groups named in the defaults list of ``conf/config.yaml``."""
    from omegaconf import OmegaConf

    primary = OmegaConf.to_container(OmegaConf.load(Path(config_dir()) / "config.yaml"))
    groups = set()
    for entry in primary.get("defaults", []):
        if isinstance(entry, dict):
            groups.update(k.split("@")[0].lstrip("/").replace("override ", "") for k in entry)
    return groups


def group_override(group: str, option: str) -> str:
    """``group=option`` for groups in the defaults list, ``+group=option`` for the others."""
    return f"{group}={option}" if group in default_groups() else f"+{group}={option}"


def unit_floats(lo, hi):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@st.composite
def random_configs(draw) -> orgsim.Config:
    """Random valid configurations (one firm, 30 periods) over the ranges the model allows."""
    stages = draw(st.integers(1, 4))
    widths = sorted(draw(st.lists(st.integers(1, 3), min_size=stages, max_size=stages)), reverse=True)
    per_stage_int = st.lists(st.integers(1, 3), min_size=stages, max_size=stages)
    integer = draw(st.booleans())
    # whole units need whole initial stocks and demand levels (the steady-state pipelines)
    amounts = (lambda lo, hi: st.integers(lo, hi)) if integer else unit_floats
    serial = all(w == 1 for w in widths)
    negative = draw(st.booleans()) if serial and not integer else False
    data = {
        "n_orgs": 1,
        "periods": 30,
        "seed": draw(st.integers(0, 2**32)),
        "information": draw(st.sampled_from(["local", "shared"])),
        "network": {
            "stages": stages,
            "width": widths,
            "roles": [f"r{k}" for k in range(stages)],
            "order_delay": draw(per_stage_int),
            "lead_time": draw(per_stage_int),
            "capacity": draw(st.lists(st.none() | unit_floats(1, 120), min_size=stages, max_size=stages)),
            "initial_inventory": draw(st.lists(amounts(0, 100), min_size=stages, max_size=stages)),
            "integer_units": integer,
        },
        "demand": {
            "level": draw(amounts(0, 50)),
            "trend": draw(unit_floats(-0.01, 0.01)),
            "seasonality": draw(unit_floats(0, 1)),
            "season_period": draw(st.integers(2, 52)),
            "rho": draw(unit_floats(-0.95, 0.95)),
            "cv": draw(unit_floats(0, 2)),
            "shock_prob": draw(unit_floats(0, 0.3)),
            "shock_size": draw(unit_floats(-1, 5)),
            "shock_duration": draw(st.integers(1, 6)),
            "step_period": draw(st.integers(0, 30)),
            "step_size": draw(unit_floats(-30, 30)),
            "allow_negative": draw(st.booleans()),
        },
        "policy": {
            "forecast": draw(st.sampled_from(["smoothing", "moving_average"])),
            "theta": draw(unit_floats(0, 1)),
            "ma_window": draw(st.integers(1, 6)),
            "alpha_s": draw(unit_floats(0, 1)),
            # orders without a floor need a supply-line weight of at least 1/2 (docs/model.md §7.10)
            "beta": draw(unit_floats(0.5 if negative else 0, 1)),
            "s_prime": draw(st.none() | unit_floats(-50, 300)),
            "cover": draw(unit_floats(0, 4)),
            "fixed_order_periods": draw(st.integers(0, 5)),
            "allow_negative_orders": negative,
        },
        "costs": {
            "holding": draw(unit_floats(0, 2)),
            "backlog": draw(unit_floats(0, 5)),
            "unit": draw(unit_floats(0, 3)),
            "fixed": draw(unit_floats(0, 50)),
            "material": draw(unit_floats(0, 5)),
            "unmet": draw(st.sampled_from(["backlog", "lost_sales"])),
        },
        "supply": {
            "disruption_prob": draw(unit_floats(0, 0.5)),
            "disruption_duration": draw(st.integers(1, 5)),
            "disruption_severity": draw(unit_floats(0, 1)),
            "cost_shock_prob": draw(unit_floats(0, 0.5)),
            "cost_shock_size": draw(unit_floats(-0.9, 5)),
            "cost_shock_duration": draw(st.integers(1, 8)),
        },
        "finance": {
            "enabled": draw(st.booleans()),
            "price": draw(unit_floats(0, 30)),
            "initial_cash": draw(unit_floats(0, 5000)),
            "min_cash": draw(unit_floats(0, 2000)),
            "interest_rate": draw(unit_floats(0, 0.1)),
            "covenant_multiple": draw(unit_floats(0, 5)),
            "covenant_window": draw(st.integers(1, 20)),
            "grace_periods": draw(st.integers(0, 5)),
            "receivable_lag": draw(st.integers(0, 5)),
            "payable_lag": draw(st.integers(0, 5)),
        },
    }
    return config_from_dict(data)


def run_cli(*args: str, cwd, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the ``orgsim`` command (``python -m orgsim.cli``) in ``cwd``; capture its output.

    ``HYDRA_FULL_ERROR`` is removed so errors look as they do to a user; ``env`` adds variables.
    """
    environ = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "orgsim.cli", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_main(*args: str, cwd) -> subprocess.CompletedProcess:
    """Run the ``orgsim`` command in this process (``orgsim.cli.main``) in ``cwd``; capture what
    it prints, at the file-descriptor level too (Hydra's logging, joblib's progress).

    A sweep run this way should use ``hydra.launcher.n_jobs=1``: joblib then runs its jobs in
    this process; worker processes, which joblib keeps between calls, would print elsewhere.
    """
    import contextlib
    import tempfile

    from orgsim import cli

    here, argv = os.getcwd(), sys.argv[:]
    environ = os.environ.pop("HYDRA_FULL_ERROR", None)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            os.chdir(cwd)
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = cli.main(list(args))
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            out.flush()
            err.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            os.chdir(here)
            sys.argv = argv
            if environ is not None:
                os.environ["HYDRA_FULL_ERROR"] = environ
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(list(args), code, out.read(), err.read())
