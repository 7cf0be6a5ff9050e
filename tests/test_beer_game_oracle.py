"""experiments/beer_game_oracle.py: the oracle minimises the *same* final-step loss as the
estimator (same draws, same W), and its search can only lower that loss."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from orgsim.calibration import recovery

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location(
        "beer_game_oracle", ROOT / "experiments" / "beer_game_oracle.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def small_recovery():
    """Two beer-game datasets of 2 games, a short search (the estimator's own code path)."""
    return recovery("beer_game", n_datasets=2, n_obs=2, n_trials=8, batch_size=8, replicates=8, se_replicates=40,
                    seed=3, progress=False)  # fmt: skip


@pytest.mark.parametrize("compass_only", [False, True], ids=["current", "compass_only"])
def test_oracle_minimises_the_estimators_own_loss(small_recovery, compass_only):
    mod = _script()
    res = small_recovery
    o = mod.oracle(res, random_starts=1, nm_evals=10, seed=1, compass_only=compass_only, log=lambda s: None)
    from orgsim.calibration import _LocalProblem

    B = np.array([res.bounds[n] for n in res.truth.index])
    problems = [_LocalProblem(B, t, f.W) for t, f in zip(res._targets, res._fits)]
    again, _ = mod._losses(res._runner, res.settings["replicates"], o["shipped"], problems)
    # the loss the script reports at the estimate is the estimator's g'Wg on the same draws
    np.testing.assert_allclose(o["loss_shipped"], again, rtol=1e-12)
    if not compass_only:
        np.testing.assert_allclose(o["loss_shipped"], [f.loss for f in res._fits], rtol=1e-12)
    assert np.all(o["loss_oracle"] <= o["loss_shipped"] + 1e-12), "the oracle starts at the estimate"
    oracle_again, _ = mod._losses(res._runner, res.settings["replicates"], o["oracle"], problems)
    np.testing.assert_allclose(o["loss_oracle"], oracle_again, rtol=1e-12)
    assert o["oracle_se"].shape == (2, 4) and np.all(o["oracle_se"] > 0)
    s = mod.summarise(o, 2, len(res.moment_names) - 4)
    assert set(s["parameters"]) == set(res.truth.index)
    assert "| `policy.theta` | oracle |" in mod.markdown(o, s, {"command": "x", "date": "d", "wall_s": 1.0})
