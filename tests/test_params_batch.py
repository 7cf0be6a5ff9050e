"""A calibration batch packed and measured column by column equals one config per row, bit for
bit: the per-stage STAGED columns of orgsim._params (``policy.s_prime``, ``costs.backlog``), the
reuse of the base config's packed arrays, and orgsim._smm.Runner's moments of a batch against
orgsim.simulate run once per candidate. The DIRECT columns are tested in tests/test_params.py.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import orgsim
from orgsim import _smm, engine_numba
from orgsim._params import STAGED, pack_params
from orgsim.config import ConfigError, parameters
from orgsim.simulation import ModelError, _check_finite, _check_params, _firm_configs


@functools.cache
def base(name: str) -> orgsim.Config:
    """The beer game (one team per stage, S' given) and the default multinational firm (three
    teams at stages 0-2, S' null: the auto rule), with every layer on."""
    overrides = {
        "beer_game": ["scenario=beer_game", "n_orgs=2"],
        "multinational": ["strategy=bso", "n_orgs=2", "periods=20"],
    }[name]
    return orgsim.compose(overrides)


BASES = ("beer_game", "multinational")


def per_row(cfg: orgsim.Config, table: pd.DataFrame) -> dict:
    """The reference: one validated config per row (orgsim.simulation._firm_configs, the Mesa
    engine's path), packed by orgsim.engine_numba.pack."""
    return engine_numba.pack(_firm_configs(cfg.replace(n_orgs=len(table)), _check_params(table)))


def outcome(pack, cfg, table):
    """``("ok", P, TP)`` or ``("error", type, message)`` of packing ``table``."""
    try:
        packed = pack(cfg, table)
    except (ConfigError, TypeError, ValueError) as exc:
        return ("error", type(exc).__name__, str(exc))
    return ("ok", packed["P"], packed["TP"])


def assert_same_outcome(cfg, table):
    old = outcome(per_row, cfg, table)
    new = outcome(lambda c, t: pack_params(c, _check_params(t)), cfg, table)
    assert old[0] == new[0], (old, new)
    if old[0] == "error":
        assert new[1:] == old[1:]
    else:
        np.testing.assert_array_equal(new[1], old[1], strict=True)
        np.testing.assert_array_equal(new[2], old[2], strict=True)
        # bit for bit: the sign of a zero too
        np.testing.assert_array_equal(np.signbit(new[2]), np.signbit(old[2]))
    return old


# --------------------------------------------------------------------------------------------
# what makes a field STAGED
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BASES)
@pytest.mark.parametrize("key", sorted(STAGED))
def test_a_staged_field_enters_only_its_team_column(name, key):
    """Changing a STAGED field per stage changes its TP column, team by team as the team's stage
    value, and nothing else of P or TP: the precondition of writing the column directly."""
    cfg = base(name)
    stages = cfg.network.stages
    values = [1.5 + 2.0 * k for k in range(stages)]
    a = engine_numba.pack([cfg.replace(**{key: 0.5})])
    b = engine_numba.pack([cfg.replace(**{key: values})])
    column = engine_numba.T[STAGED[key]]
    np.testing.assert_array_equal(a["P"], b["P"])
    others = [j for j in range(a["TP"].shape[2]) if j != column]
    np.testing.assert_array_equal(a["TP"][:, :, others], b["TP"][:, :, others])
    stage = a["network"].stage
    np.testing.assert_array_equal(b["TP"][0, :, column], np.array(values)[stage])
    assert np.all(a["TP"][0, :, column] == 0.5)


# --------------------------------------------------------------------------------------------
# a STAGED column against one config per row
# --------------------------------------------------------------------------------------------
def _valid_number(key):
    p = parameters()[key]
    return st.one_of(
        st.floats(p.lo, p.hi, allow_nan=False, allow_infinity=False),
        st.integers(int(p.lo), int(p.hi)),
        st.sampled_from([0.0, -0.0, float(p.lo), float(p.hi)]),
    )


@st.composite
def staged_tables(draw, bad: bool):
    """A base, a STAGED key and a table of 1-6 rows of it (numbers, or lists of one per
    stage), sometimes beside a DIRECT column and a column packed one config per value; with
    ``bad``, one entry anywhere is replaced by a value the column path must send back to the
    validation (out of range, not finite, None, a wrong-length list, a string, a boolean, an
    integer beyond the float range)."""
    name = draw(st.sampled_from(BASES))
    cfg = base(name)
    key = draw(st.sampled_from(sorted(STAGED)))
    stages = cfg.network.stages
    n = draw(st.integers(1, 6))
    as_lists = draw(st.booleans())
    number = _valid_number(key)
    if as_lists:
        entries = [
            draw(st.one_of(number, st.lists(number, min_size=stages, max_size=stages))) for _ in range(n)
        ]
    else:
        integers = draw(st.booleans())
        entries = [draw(st.integers(0, 1000) if integers else number) for _ in range(n)]
    if bad:
        p = parameters()[key]
        wrong = draw(
            st.sampled_from(
                [
                    np.nan,
                    np.inf,
                    -np.inf,
                    p.lo - 1,
                    p.hi * 1.5,
                    None,
                    "ten",
                    True,
                    10**400,
                    [1.0] * (stages + 1),
                ]
            )
        )
        row = draw(st.integers(0, n - 1))
        if as_lists and isinstance(entries[row], list) and not isinstance(wrong, list):
            entries[row] = [*entries[row][:-1], wrong]  # a bad entry inside a list
        else:
            entries[row] = wrong
    column = pd.Series(entries, dtype=object if as_lists or bad else None)
    table = pd.DataFrame({key: column})
    if draw(st.booleans()):
        table["policy.theta"] = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    if draw(st.booleans()):  # shapes the steady state: one config per value
        table["costs.fixed"] = draw(st.lists(st.sampled_from([10.0, 50.0]), min_size=n, max_size=n))
    return cfg, table


@given(staged_tables(bad=False))
def test_a_staged_column_packs_as_one_config_per_row(case):
    cfg, table = case
    kind, *_ = assert_same_outcome(cfg, table)
    assert kind == "ok"


@given(staged_tables(bad=True))
def test_a_bad_value_in_a_staged_column_gives_the_same_outcome(case):
    """The same error (type and message) as one config per row, or, for a value that is valid
    after all (None is the auto rule of s_prime), the same arrays."""
    cfg, table = case
    assert_same_outcome(cfg, table)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([17.0, -2e9, 3.0], r"^policy\.s_prime == -2000000000\.0, must be >= -1000000000$"),
        ([17.0, np.nan], r"^policy\.s_prime == nan, must be finite$"),
        ([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, np.inf, 4.0]], r"^policy\.s_prime\[2\] == inf, must be finite$"),
    ],
)
def test_a_bad_s_prime_is_named_with_its_value(values, message):
    """The message of the config check (orgsim.config._num), read here from the field's
    declared interval [-10⁹, 10⁹] (docs/model.md §12), for a number and for a list entry."""
    table = pd.DataFrame(
        {"policy.s_prime": pd.Series(values, dtype=object if isinstance(values[0], list) else None)}
    )
    with pytest.raises(ConfigError, match=message):
        pack_params(base("beer_game"), _check_params(table))


def test_a_table_that_sets_the_stages_packs_staged_columns_one_config_per_row():
    """network.stages decides which team is at which stage: with it in the table, a STAGED
    column goes the old way (and still agrees)."""
    cfg = base("beer_game")
    table = pd.DataFrame(
        {"network.stages": [4, 4], "policy.s_prime": pd.Series([[1, 2, 3, 4], 5.0], dtype=object)}
    )
    kind, *_ = assert_same_outcome(cfg, table)
    assert kind == "ok"


def test_the_base_arrays_are_not_changed_by_a_batch():
    """The base config's packed arrays are reused between batches: a value written for one
    batch must not leak into the next, nor into another config's."""
    cfg = base("beer_game")
    first = pack_params(cfg, _check_params(pd.DataFrame({"policy.theta": [0.9], "policy.s_prime": [3.0]})))
    assert first["P"][0, engine_numba.P["theta"]] == 0.9
    second = pack_params(cfg, _check_params(pd.DataFrame({"policy.alpha_s": [0.5, 0.6]})))
    reference = per_row(cfg, pd.DataFrame({"policy.alpha_s": [0.5, 0.6]}))
    np.testing.assert_array_equal(second["P"], reference["P"], strict=True)
    np.testing.assert_array_equal(second["TP"], reference["TP"], strict=True)
    other = cfg.replace(**{"policy.theta": 0.1})
    third = pack_params(other, _check_params(pd.DataFrame({"policy.alpha_s": [0.5]})))
    assert third["P"][0, engine_numba.P["theta"]] == 0.1


# --------------------------------------------------------------------------------------------
# a batch's moments against one simulate call per candidate
# --------------------------------------------------------------------------------------------
def _series(ms: _smm.MomentSet, name: str, kpis: dict, teams: dict) -> np.ndarray:
    """A stage's series is the sum over its teams (fancy indexing), a KPI series its column."""
    if "@" in name:
        col, stage = name.split("@")
        return teams[col][:, :, np.flatnonzero(ms.network.stage == int(stage))].sum(axis=2)
    return kpis[name]


def reference_moments(ms: _smm.MomentSet, kpis: dict, teams: dict) -> np.ndarray:
    """``[firm, moment]`` by the definitions of orgsim._smm.STATS written out plainly, each
    moment on its own: mean, std (ddof 1), the autocorrelation of statsmodels' ``acf`` (lagged
    products over the whole series' sum of squares) and the cross-correlation of its
    ``ccf(adjusted=False)`` (1/T, whole-series means and SDs), 0 for a constant series."""
    out = []
    for m in ms.moments:
        x = _series(ms, m.series, kpis, teams)[:, ms.skip :]
        if m.stat == "mean":
            out.append(x.mean(axis=1))
        elif m.stat == "std":
            out.append(x.std(axis=1, ddof=1))
        elif m.stat == "acf":
            d = x - x.mean(axis=1, keepdims=True)
            den = (d * d).sum(axis=1)
            if m.lag >= x.shape[1]:
                out.append(np.zeros(x.shape[0]))
                continue
            num = (d[:, : -m.lag] * d[:, m.lag :]).sum(axis=1)
            ok = (den > 0) & (np.ptp(x, axis=1) > 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out.append(np.where(ok, num / np.where(ok, den, 1.0), 0.0))
        else:
            assert m.stat == "ccf", m.stat
            y = _series(ms, m.other, kpis, teams)[:, ms.skip :]
            t, lag = x.shape[1], m.lag
            dx, dy = x - x.mean(axis=1, keepdims=True), y - y.mean(axis=1, keepdims=True)
            sx, sy = np.sqrt((dx * dx).mean(axis=1)), np.sqrt((dy * dy).mean(axis=1))
            if abs(lag) >= t:
                out.append(np.zeros(x.shape[0]))
                continue
            if lag >= 0:
                num = (dx[:, : t - lag] * dy[:, lag:]).sum(axis=1) / t
            else:
                num = (dx[:, -lag:] * dy[:, : t + lag]).sum(axis=1) / t
            ok = (sx > 0) & (sy > 0) & (np.ptp(x, axis=1) > 0) & (np.ptp(y, axis=1) > 0)
            with np.errstate(invalid="ignore", divide="ignore"):
                out.append(np.where(ok, num / np.where(ok, sx * sy, 1.0), 0.0))
    return np.column_stack(out)


@pytest.mark.filterwarnings("ignore:Degrees of freedom <= 0:RuntimeWarning")
@given(
    st.integers(2, 12).flatmap(
        lambda t: st.tuples(
            arrays(np.float64, (3, t, 4), elements=st.sampled_from([0.0, -0.0, 1.0, 4.0, 12.5, 1e12])),
            arrays(np.float64, (3, t), elements=st.floats(-1e9, 1e9)),
            st.integers(0, t - 1),
        )
    )
)
def test_the_shared_moment_statistics_give_each_moments_own_numbers(case):
    """MomentSet.per_firm computes a series' mean and deviations once for its mean, std and
    autocorrelations: bit for bit the numbers of each moment computed on its own, including
    constant series (few distinct values) and one remaining period."""
    order, cash, skip = case
    ms = _smm.MomentSet(
        _smm.parse_moments(
            ["std:order@0", "acf:order@0:1", "mean:order@0", "acf:order@1:3", "mean:order@1", "std:cash",
             "acf:cash:2", "ccf:order@2:cash:1", "ccf:cash:order@3:-2", "mean:cash"]
        ),
        orgsim.network.build_network(base("beer_game")),
        skip=skip,
    )  # fmt: skip
    kpis, teams = {"cash": cash}, {"order": order}
    with np.errstate(invalid="ignore", divide="ignore"):  # std of one period: NaN, on both sides
        got = ms.per_firm(ms.simulated_series(kpis, teams))
        expected = reference_moments(ms, kpis, teams)
    np.testing.assert_array_equal(got.view(np.int64), expected.view(np.int64))


@pytest.mark.parametrize(
    ("overrides", "moments"),
    [
        (
            ["scenario=beer_game", "management.execution_noise=0.1"],
            ["std:order@0", "acf:order@3:1", "mean:inventory@1", "mean:backlog@2"],
        ),
        (["periods=30"], ["std:order@1", "acf:order@0:2", "mean:backlog@3", "mean:cash"]),
    ],
)
def test_a_batch_gives_each_candidates_moments_as_simulate_does(overrides, moments):
    """Runner.per_firm of C candidates × R replicates (one kernel call, column-wise packing)
    equals, bit for bit, the moments of orgsim.simulate run once per candidate with its values
    in the config (firm r on the stream of firm r: common random numbers)."""
    cfg = orgsim.compose(overrides)
    ms = _smm.MomentSet(_smm.parse_moments(moments), orgsim.network.build_network(cfg), skip=4)
    names = ["policy.theta", "policy.beta", "policy.s_prime"]
    runner = _smm.Runner(cfg, ms, seed=7, names=names)
    table = pd.DataFrame(
        {"policy.theta": [0.1, 0.6, 0.9], "policy.beta": [0.2, 1.0, 0.5], "policy.s_prime": [12.0, 30.0, 0.0]}
    )
    got = runner.per_firm(table, 3)
    assert got.shape == (3, 3, len(moments))
    for c, row in table.iterrows():
        alone = cfg.replace(**row.to_dict(), n_orgs=3)
        res = orgsim.simulate(alone, engine="numba", seed=7, teams=True, progress=False)
        expected = reference_moments(ms, res.kpi_arrays, res.team_arrays)
        np.testing.assert_array_equal(got[c], expected, strict=True)
        np.testing.assert_array_equal(np.signbit(got[c]), np.signbit(expected))


@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 4), st.integers(1, 9), st.just(10)),
        elements=st.floats(-1e6, 1e6) | st.just(-0.0),
    )
)
def test_a_stage_series_is_the_sum_over_its_teams_bit_for_bit(x):
    """simulated_series sums a one-team stage without fancy indexing: the same bits as the sum
    (where −0.0 becomes 0.0), for any values; a stage of three teams as before."""
    net = orgsim.network.build_network(base("multinational"))  # 3, 3, 3 and 1 teams
    ms = _smm.MomentSet(_smm.parse_moments(["mean:order@0", "mean:order@3"]), net)
    got = ms.simulated_series({}, {"order": x})
    for stage in (0, 3):
        expected = x[:, :, np.flatnonzero(net.stage == stage)].sum(axis=2)
        np.testing.assert_array_equal(got[f"order@{stage}"].view(np.int64), expected.view(np.int64))


def test_a_batch_too_large_is_refused_as_a_population_would_be():
    cfg = orgsim.compose(["scenario=beer_game"])
    ms = _smm.MomentSet(_smm.parse_moments(["mean:order@0"]), orgsim.network.build_network(cfg))
    runner = _smm.Runner(cfg, ms, seed=0, names=["policy.theta"])
    with pytest.raises(ConfigError) as expected:
        cfg.replace(n_orgs=20_000_002)
    with pytest.raises(ConfigError) as got:
        runner.simulate(pd.DataFrame({"policy.theta": [0.1, 0.2]}), 10_000_001)
    assert str(got.value) == str(expected.value) == "n_orgs == 20000002, must be <= 10000000"


# --------------------------------------------------------------------------------------------
# the one-pass finiteness filter
# --------------------------------------------------------------------------------------------
@given(arrays(np.float64, st.integers(1, 50), elements=st.floats(allow_nan=True, allow_infinity=True)))
def test_all_finite_never_passes_a_nan_or_an_infinity(x):
    """all_finite is True only if every value is finite; it may be False for finite values whose
    sum overflows, and then the value-by-value check (_check_finite) decides."""
    if _smm.all_finite(x):
        assert np.isfinite(x).all()
    if not np.isfinite(x).all():
        assert not _smm.all_finite(x)
        with pytest.raises(ModelError, match="must not produce NaN or infinity"):
            _check_finite({"cash": x[None, :]}, None)


def test_all_finite_sends_an_overflowing_sum_to_the_exact_check():
    x = np.full((2, 3), 1e308)
    assert not _smm.all_finite(x)
    _check_finite({"cash": x}, None)  # every value is finite: no error
    assert _smm.all_finite(np.zeros((2, 3)), None, np.ones(4))
