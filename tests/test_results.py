"""The results store's summary uses the definitions of the published experiment."""

from __future__ import annotations

import numpy as np
import pytest

import orgsim
import orgsim.results


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Two runs with insolvent firms among them (little starting cash in a volatile market)."""
    root = tmp_path_factory.mktemp("store")
    results = {}
    for strategy in ("bpo", "bso"):
        cfg = orgsim.compose(
            [
                f"strategy={strategy}",
                "environment=volatile",
                "n_orgs=24",
                "periods=156",
                "finance.initial_cash=6000",
            ]
        )
        res = orgsim.simulate(cfg, engine="numba")
        res.to_parquet(
            root / strategy,
            teams=False,
            extra_columns={"environment": "volatile", "run_id": f"run-{strategy}"},
        )
        results[strategy] = res
    return root, results


def expected_row(res):
    """The per-firm outcomes as ``experiments/strategy_families.py`` computes them, averaged."""
    k = res.kpi_arrays
    solvent = k["solvent"].astype(bool)
    end = solvent[:, -1]
    headroom = np.where(end, k["credit_headroom"][:, -1], np.minimum(k["credit_headroom"][:, -1], 0.0))
    weeks = solvent.sum(axis=1)
    fill = (k["fill_rate"] * solvent).sum(axis=1)[weeks > 0] / weeks[weeks > 0]
    return {
        "cumulative_fcf": k["free_cash_flow"].sum(axis=1).mean(),
        "survival": end.mean(),
        "ending_headroom": headroom.mean(),
        "fill_rate": fill.mean(),
    }


def test_summary_matches_the_experiment_definitions(store):
    root, results = store
    summary = orgsim.results.summarize(root).set_index("strategy")
    for strategy, res in results.items():
        row = summary.loc[strategy]
        assert row.runs == 1 and row.firms == 24 and row.environment == "volatile"
        for column, value in expected_row(res).items():
            assert row[column] == pytest.approx(value, rel=1e-12), column


def test_summary_counts_dormant_weeks_in_survival_not_in_fill_rate(store):
    """The store has insolvent firms; their dormant weeks (fill rate 0) would pull the mean
    over all weeks below the mean over solvent weeks."""
    root, results = store
    summary = orgsim.results.summarize(root).set_index("strategy")
    insolvent = {s: int((~r.kpi_arrays["solvent"][:, -1].astype(bool)).sum()) for s, r in results.items()}
    assert sum(insolvent.values()) > 0
    for strategy, res in results.items():
        all_weeks = res.kpi_arrays["fill_rate"].mean(axis=1).mean()
        if insolvent[strategy]:
            assert summary.loc[strategy, "fill_rate"] > all_weeks
            assert summary.loc[strategy, "survival"] < 1.0
        else:
            assert summary.loc[strategy, "fill_rate"] == pytest.approx(all_weeks, rel=1e-12)


def test_store_written_by_to_parquet_opens_with_its_runs(store):
    """``SimulationResult.to_parquet`` writes a meta.json without the run id and git commit
    that the command line adds; the ``runs`` view still has a row per run (NULL there)."""
    root, results = store
    runs = orgsim.results.load(root, "runs").sort_values("meta_file")
    assert len(runs) == 2 and runs.run_id.isna().all() and runs.git_commit.isna().all()
    assert sorted(runs.engine) == ["numba", "numba"]
    assert list(runs.team_periods_per_second) == pytest.approx(
        [results[s].team_periods_per_second for s in ("bpo", "bso")]
    )
