"""Every kind of figure in orgsim.plots has a title, axis labels (with units where a quantity has
one) and a legend where it draws more than one kind of thing; each is drawn from a small real
result of its tool."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

import orgsim
from orgsim import plots


def _check(fig, *, legend: bool = True):
    assert isinstance(fig, matplotlib.figure.Figure)
    suptitle = fig._suptitle.get_text() if fig._suptitle is not None else ""
    axes = [ax for ax in fig.axes if ax.get_visible() and (ax.has_data() or ax.images)]
    assert axes, "a figure without data"
    for ax in axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_title() or suptitle, "an axes without a title (and no figure title)"
        shared = ax.get_shared_x_axes().get_siblings(ax)  # stacked panels label the bottom one
        assert any(a.get_xlabel().strip() for a in shared), f"axes {ax.get_title()!r} has no x label"
        assert ax.get_ylabel().strip() or ax.get_yticklabels(), f"axes {ax.get_title()!r} has no y label"
    if legend:
        assert fig.legends or any(ax.get_legend() is not None for ax in fig.axes), "no legend"
    plt.close(fig)


@pytest.fixture(scope="module")
def comparison():
    return orgsim.compare(
        strategies=["bpo", "bso"], environments=["stable"], n_orgs=4, periods=60, horizons=[30, 60]
    )


def test_comparison_figures(comparison):
    _check(plots.paired_difference(comparison))
    _check(plots.effects_forest(comparison))
    _check(plots.comparison(comparison))


def test_forecast_fan(comparison):
    from orgsim.forecasting import Drift

    forecast = comparison.forecast("cumulative_fcf", steps=10, model=Drift(), train_periods=50)
    _check(plots.forecast_fan(forecast))


def test_fan_chart_written(tmp_path):
    kpis = orgsim.simulate(orgsim.compose(["n_orgs=3", "periods=20"]), engine="numba").kpis
    out = tmp_path / "fan.png"
    plots.fan_chart(kpis, out, ["cash", "fill_rate"])
    assert out.stat().st_size > 1000
    assert plots._label("cash", "week") == "cash (MU)"
    assert plots._label("free_cash_flow", "week") == "free cash flow (MU/week)"


def test_sensitivity_bars():
    from orgsim.sensitivity import morris

    res = morris(
        {"management.execution_noise": [0.0, 0.3], "culture.p3": [0.0, 0.01]},
        overrides=["environment=stable", "periods=40"],
        horizon=40,
        trajectories=3,
        replicates=2,
        seed=1,
    )
    _check(plots.sensitivity_bars(res))

    from orgsim.surrogate import FamilySurrogate, training_data

    X, y, groups = training_data(res)
    sur = FamilySurrogate(n_bootstrap=2, cv=2, random_state=0).fit(X, y, groups, unit="MU")
    _check(plots.win_map(sur, "management.execution_noise", "culture.p3", grid=5))


def test_calibration_figures():
    from orgsim.calibration import calibrate

    beer = ["scenario=beer_game", "management.execution_noise=0.2"]
    teams = orgsim.simulate(orgsim.compose([*beer, "n_orgs=2"]), engine="numba", teams=True).teams
    res = calibrate(
        teams,
        params={"policy.alpha_s": (0.05, 1.0)},
        moments=["std:order@0", "std:order@3"],
        overrides=beer,
        n_trials=4,
        batch_size=4,
        replicates=4,
        seed=0,
        progress=False,
    )
    _check(plots.calibration_fit(res))
    _check(plots.calibration_slices(res, n_points=5), legend=False)
