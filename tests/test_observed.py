"""Reading observed KPI series and team records (orgsim._observed): the schema, every bad case.

Each bad file or frame must raise ObservedDataError whose one-line message names the file, the
column and, where it helps, the row (counted from 1 after the header) or the firm.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import orgsim
from orgsim._observed import KPI_VALUES, TEAM_REQUIRED, ObservedDataError, read_kpis, read_teams


@functools.cache
def _beer():
    cfg = orgsim.compose(["scenario=beer_game", "n_orgs=2", "periods=12"])
    return orgsim.simulate(cfg, engine="numba", teams=True, progress=False)


def beer_teams() -> pd.DataFrame:
    return _beer().teams.copy()


def beer_kpis() -> pd.DataFrame:
    return _beer().kpis.copy()


def small_teams() -> pd.DataFrame:
    """Two teams of one firm over three periods, the required columns only, in file order."""
    rows = []
    for t in (1, 2, 3):
        for team in ("retailer", "wholesaler"):
            rows.append(dict(period=t, team=team, inventory=12, backlog=0, order=4, received=4, shipped=4))
    return pd.DataFrame(rows)


def small_kpis() -> pd.DataFrame:
    return pd.DataFrame({"org": [0, 0, 1, 1], "period": [1, 2, 1, 2], "revenue": [1.0, 2.0, 3.0, 4.0]})


def write(frame: pd.DataFrame, path) -> str:
    path = str(path)
    if path.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


# -- what a good source gives --------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_simulated_team_records_read_back_from_a_file_unchanged(tmp_path, suffix):
    sim = beer_teams()
    got = read_teams(write(sim, tmp_path / f"teams{suffix}"))
    assert got.columns.tolist() == list(orgsim.TEAM_COLUMNS)
    pd.testing.assert_frame_equal(got, read_teams(sim))
    for col in ("inventory", "backlog", "order", "received", "shipped", "cost", "knowledge"):
        np.testing.assert_array_equal(got[col].to_numpy(), sim[col].to_numpy(dtype=float), err_msg=col)
    assert got.team.tolist() == sim.team.astype(str).tolist()  # same order: org, period, stage
    pd.testing.assert_frame_equal(read_teams(got), got)  # the reader's output reads back unchanged


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_simulated_kpis_read_back_from_a_file_unchanged(tmp_path, suffix):
    sim = beer_kpis()
    got = read_kpis(write(sim, tmp_path / f"kpis{suffix}"))
    assert got.columns.tolist() == sim.columns.tolist()
    assert got.solvent.dtype == np.float64 and set(got.solvent) == {1.0}
    for col in ("demand", "revenue", "cash", "fill_rate"):
        np.testing.assert_array_equal(got[col].to_numpy(), sim[col].to_numpy(dtype=float), err_msg=col)
    pd.testing.assert_frame_equal(read_kpis(got), got)  # the reader's output reads back unchanged


def test_kpis_are_sorted_and_org_defaults_to_zero():
    got = read_kpis(pd.DataFrame({"period": [3, 1, 2], "revenue": [30, 10, 20]}))
    assert got.org.tolist() == [0, 0, 0]
    assert got.period.tolist() == [1, 2, 3] and got.revenue.tolist() == [10.0, 20.0, 30.0]
    assert got.revenue.dtype == np.float64


def test_text_org_ids_are_kept_and_firms_may_have_different_lengths():
    frame = pd.DataFrame(
        {"org": ["b", "a", "a", "b", "b"], "period": [1, 2, 1, 2, 3], "cash": [1, 2, 3, 4, 5]}
    )
    got = read_kpis(frame)
    assert got.org.tolist() == ["a", "a", "b", "b", "b"]
    assert got.period.tolist() == [1, 2, 1, 2, 3]
    assert got.cash.tolist() == [3.0, 2.0, 1.0, 4.0, 5.0]


def test_required_kpis_may_be_named():
    assert "revenue" in read_kpis(small_kpis(), kpis=["revenue"]).columns
    with pytest.raises(ObservedDataError, match=r"missing columns 'cash', 'debt'"):
        read_kpis(small_kpis(), kpis=["cash", "debt"])


def test_solvent_may_be_true_false_or_one_zero(tmp_path):
    frame = pd.DataFrame({"period": [1, 2], "solvent": [True, False]})
    assert read_kpis(frame).solvent.tolist() == [1.0, 0.0]
    assert read_kpis(write(frame, tmp_path / "s.csv")).solvent.tolist() == [1.0, 0.0]
    assert read_kpis(frame.assign(solvent=[1, 0])).solvent.tolist() == [1.0, 0.0]
    with pytest.raises(ObservedDataError, match=r"'solvent', row 2: 2, must be true/false or 1/0"):
        read_kpis(frame.assign(solvent=[1, 2]))


def test_team_records_with_only_the_required_columns():
    got = read_teams(small_teams())
    assert got.columns.tolist() == ["org", "period", "team", *TEAM_REQUIRED]
    assert got.team.tolist() == ["retailer", "wholesaler"] * 3  # first appearance order
    assert got.org.tolist() == [0] * 6


def test_team_order_follows_stage_when_given():
    frame = small_teams().assign(stage=lambda d: np.where(d.team == "retailer", 1, 0))
    assert read_teams(frame).team.tolist()[:2] == ["wholesaler", "retailer"]


# -- bad sources -----------------------------------------------------------------------------------
def test_unknown_suffix(tmp_path):
    path = tmp_path / "kpis.xlsx"
    path.write_text("period,revenue\n1,2\n")
    with pytest.raises(
        ObservedDataError,
        match=r"kpis\.xlsx: suffix '\.xlsx' is not supported, must be one of \.csv, \.parquet",
    ):
        read_kpis(path)
    with pytest.raises(ObservedDataError, match=r"suffix '\(none\)'"):
        read_teams(tmp_path / "teams")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ObservedDataError, match=r"nope\.csv: no such file"):
        read_kpis(tmp_path / "nope.csv")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(ObservedDataError, match=r"dir\.csv: not a file"):
        read_teams(tmp_path / "dir.csv")


def test_empty_file_and_header_only(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ObservedDataError, match=r"empty\.csv: the file is empty"):
        read_kpis(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("period,revenue\n")
    with pytest.raises(ObservedDataError, match=r"header\.csv: no data rows"):
        read_kpis(tmp_path / "header.csv")
    with pytest.raises(ObservedDataError, match=r"no data rows"):
        read_teams(small_teams().iloc[:0])


def test_unreadable_files(tmp_path):
    (tmp_path / "junk.parquet").write_bytes(b"this is not parquet at all")
    with pytest.raises(ObservedDataError, match=r"junk\.parquet: cannot be read as Parquet"):
        read_teams(tmp_path / "junk.parquet")
    (tmp_path / "bad.csv").write_bytes(b"period,revenue\n1,2\n\xff\xfe\x00,3\n")
    with pytest.raises(ObservedDataError, match=r"bad\.csv: cannot be read as CSV"):
        read_kpis(tmp_path / "bad.csv")
    (tmp_path / "ragged.csv").write_text("period,revenue\n1,2\n2,3,4,5\n")
    with pytest.raises(ObservedDataError, match=r"ragged\.csv: cannot be read as CSV"):
        read_kpis(tmp_path / "ragged.csv")


def test_source_of_the_wrong_type():
    with pytest.raises(
        TypeError, match=r"source must be a path to a \.csv or \.parquet file or a pandas DataFrame, got list"
    ):
        read_kpis([1, 2])
    with pytest.raises(TypeError, match=r"got dict"):
        read_teams({"period": [1]})


# -- bad columns -----------------------------------------------------------------------------------
def test_missing_columns_are_named():
    with pytest.raises(ObservedDataError, match=r"the team DataFrame: missing columns 'backlog', 'shipped'"):
        read_teams(small_teams().drop(columns=["backlog", "shipped"]))
    with pytest.raises(ObservedDataError, match=r"missing column 'period'"):
        read_kpis(small_kpis().drop(columns="period"))
    with pytest.raises(ObservedDataError, match=r"missing column 'team'"):
        read_teams(small_teams().drop(columns="team"))


def test_extra_columns_are_named_with_the_allowed_ones(tmp_path):
    path = write(small_kpis().assign(profit=1.0, policy_theta=0.3), tmp_path / "k.csv")
    with pytest.raises(
        ObservedDataError,
        match=r"k\.csv: unknown columns 'profit', 'policy_theta'; allowed: org, period, strategy",
    ) as err:
        read_kpis(path)
    assert all(name in str(err.value) for name in KPI_VALUES)
    with pytest.raises(
        ObservedDataError, match=r"unknown column 'supply_line'; allowed: org, period, team, inventory"
    ):
        read_teams(small_teams().assign(supply_line=8.0))


def test_no_kpi_column():
    with pytest.raises(
        ObservedDataError, match=r"has no KPI column, must have at least one of: demand, revenue"
    ):
        read_kpis(pd.DataFrame({"org": [0], "period": [1], "strategy": ["bso"]}))


def test_a_repeated_column_in_a_csv_header(tmp_path):
    (tmp_path / "dup.csv").write_text("period,revenue,revenue\n1,2,3\n")
    with pytest.raises(
        ObservedDataError, match=r"dup\.csv: column 'revenue' appears 2 times, must appear once"
    ):
        read_kpis(tmp_path / "dup.csv")


def test_kpis_argument_is_checked():
    with pytest.raises(
        ValueError, match=r"kpis names 'profit', which is not a numeric KPI column; allowed: demand"
    ):
        read_kpis(small_kpis(), kpis=["profit"])
    with pytest.raises(TypeError, match=r"kpis == 'revenue', must be a list"):
        read_kpis(small_kpis(), kpis="revenue")


# -- bad values ------------------------------------------------------------------------------------
def test_missing_value_names_column_and_row(tmp_path):
    (tmp_path / "k.csv").write_text("org,period,revenue\n0,1,1.5\n0,2,\n0,3,2\n")
    with pytest.raises(
        ObservedDataError, match=r"k\.csv: column 'revenue', row 2: missing value, must be given"
    ):
        read_kpis(tmp_path / "k.csv")
    frame = small_teams()
    frame.loc[4, "inventory"] = np.nan
    with pytest.raises(ObservedDataError, match=r"column 'inventory', row 5: missing value"):
        read_teams(frame)


def test_infinite_values(tmp_path):
    (tmp_path / "k.csv").write_text("period,cash\n1,inf\n")
    with pytest.raises(ObservedDataError, match=r"column 'cash', row 1: inf, must be a finite number"):
        read_kpis(tmp_path / "k.csv")
    frame = small_teams().astype({"order": float})
    frame.loc[3, "order"] = -np.inf
    with pytest.raises(ObservedDataError, match=r"column 'order', row 4: -inf, must be a finite number"):
        read_teams(frame)


def test_non_numeric_values(tmp_path):
    (tmp_path / "t.csv").write_text(
        "period,team,inventory,backlog,order,received,shipped\n1,r,12,0,4,4,4\n2,r,12,0,four,4,4\n"
    )
    with pytest.raises(ObservedDataError, match=r"t\.csv: column 'order', row 2: 'four' is not a number"):
        read_teams(tmp_path / "t.csv")
    with pytest.raises(
        ObservedDataError, match=r"column 'revenue' holds true/false values, must hold numbers"
    ):
        read_kpis(small_kpis().assign(revenue=True))


def test_periods_must_be_integers_from_one():
    with pytest.raises(ObservedDataError, match=r"column 'period', row 2: 1\.5 is not an integer"):
        read_kpis(pd.DataFrame({"period": [1, 1.5], "cash": [1, 2]}))
    with pytest.raises(ObservedDataError, match=r"column 'period', row 1: 'one' is not an integer"):
        read_kpis(pd.DataFrame({"period": ["one", "two"], "cash": [1, 2]}))
    with pytest.raises(ObservedDataError, match=r"column 'period', row 1: 0, must be >= 1"):
        read_kpis(pd.DataFrame({"period": [0, 1], "cash": [1, 2]}))
    with pytest.raises(ObservedDataError, match=r"column 'period', row 1: True is not an integer"):
        read_kpis(pd.DataFrame({"period": [True, False], "cash": [1, 2]}))
    with pytest.raises(ObservedDataError, match=r"org 1 starts at period 2 \(row 3\), must start at 1"):
        read_kpis(pd.DataFrame({"org": [0, 0, 1], "period": [1, 2, 2], "cash": [1, 2, 3]}))


def test_gaps_in_periods_are_named():
    with pytest.raises(
        ObservedDataError, match=r"org 0 has no period 3 \(periods jump from 2 to 4\), must be contiguous"
    ):
        read_kpis(pd.DataFrame({"period": [1, 2, 4], "cash": [1, 2, 3]}))
    frame = small_teams()
    frame = frame[~((frame.team == "wholesaler") & (frame.period.isin([2])))]
    frame = pd.concat([frame, frame.iloc[[-1]].assign(period=5)])
    with pytest.raises(
        ObservedDataError, match=r"org 0 team 'wholesaler' has no period 2 \(periods jump from 1 to 3\)"
    ):
        read_teams(frame)
    with pytest.raises(ObservedDataError, match=r"has no periods 4-5 \(periods jump from 3 to 6\)"):
        read_kpis(pd.DataFrame({"period": [1, 2, 3, 6], "cash": [1, 2, 3, 4]}))


def test_duplicate_rows_are_named():
    with pytest.raises(
        ObservedDataError, match=r"org 1, period 2 appears twice \(rows 3 and 5\), must appear once"
    ):
        read_kpis(pd.DataFrame({"org": [0, 1, 1, 1, 1], "period": [1, 1, 2, 3, 2], "cash": [1, 2, 3, 4, 5]}))
    frame = pd.concat([small_teams(), small_teams().iloc[[3]]], ignore_index=True)
    with pytest.raises(
        ObservedDataError, match=r"org 0 team 'wholesaler', period 2 appears twice \(rows 4 and 7\)"
    ):
        read_teams(frame)


def test_org_and_label_types():
    with pytest.raises(ObservedDataError, match=r"column 'org', row 2: 1\.5 is not an integer"):
        read_kpis(pd.DataFrame({"org": [1.0, 1.5], "period": [1, 1], "cash": [1, 2]}))
    mixed = pd.DataFrame({"org": pd.Series(["a", 3], dtype=object), "period": [1, 1], "cash": [1, 2]})
    with pytest.raises(
        ObservedDataError, match=r"column 'org', row 2: 3, every org must be an integer or every org text"
    ):
        read_kpis(mixed)
    with pytest.raises(ObservedDataError, match=r"column 'org', row 1: missing value"):
        read_kpis(pd.DataFrame({"org": [np.nan, 1.0], "period": [1, 1], "cash": [1, 2]}))
    frame = small_teams().astype({"team": object})
    frame.loc[2, "team"] = 2.5
    with pytest.raises(ObservedDataError, match=r"column 'team', row 3: 2\.5, must be text or an integer"):
        read_teams(frame)
    frame.loc[2, "team"] = " "
    with pytest.raises(ObservedDataError, match=r"column 'team', row 3: empty, must be given"):
        read_teams(frame)


def test_team_values_that_break_the_model():
    frame = small_teams()
    frame.loc[1, "backlog"] = -1
    with pytest.raises(ObservedDataError, match=r"column 'backlog', row 2: -1, must be >= 0"):
        read_teams(frame)
    frame = small_teams().assign(stage=0)
    frame.loc[5, "stage"] = 1
    with pytest.raises(
        ObservedDataError, match=r"column 'stage' of team 'wholesaler' in org 0 takes several values"
    ):
        read_teams(frame)
    with pytest.raises(ObservedDataError, match=r"column 'stage', row 1: -1, must be >= 0"):
        read_teams(small_teams().assign(stage=-1))
    frame = small_teams().assign(role="retailer")
    frame.loc[5, "role"] = "wholesaler"
    with pytest.raises(
        ObservedDataError, match=r"column 'role' of team 'wholesaler' in org 0 takes several values"
    ):
        read_teams(frame)


def test_errors_are_value_errors_of_one_line():
    with pytest.raises(ValueError) as err:
        read_teams(small_teams().drop(columns="order"))
    assert isinstance(err.value, ObservedDataError) and "\n" not in str(err.value)


# -- properties ------------------------------------------------------------------------------------
@st.composite
def kpi_frames(draw):
    """Valid KPI frames: 1-3 firms (integer or text ids) with 1-6 periods each, rows shuffled."""
    text = draw(st.booleans())
    n_orgs = draw(st.integers(1, 3))
    ids = [f"firm{i}" for i in range(n_orgs)] if text else list(range(n_orgs))
    lengths = draw(st.lists(st.integers(1, 6), min_size=n_orgs, max_size=n_orgs))
    cols = draw(st.lists(st.sampled_from(KPI_VALUES[:10]), min_size=1, max_size=3, unique=True))
    rows = [(o, t) for o, n in zip(ids, lengths) for t in range(1, n + 1)]
    values = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
    data = {c: draw(st.lists(values, min_size=len(rows), max_size=len(rows))) for c in cols}
    frame = pd.DataFrame({"org": [r[0] for r in rows], "period": [r[1] for r in rows], **data})
    perm = draw(st.permutations(range(len(rows))))
    return frame.iloc[list(perm)].reset_index(drop=True)


@given(frame=kpi_frames())
def test_any_valid_kpi_frame_reads_back_sorted_with_its_values(frame, tmp_path_factory):
    got = read_kpis(frame)
    expected = frame.sort_values(["org", "period"]).reset_index(drop=True)
    assert got.org.tolist() == expected.org.tolist() and got.period.tolist() == expected.period.tolist()
    for col in frame.columns[2:]:
        np.testing.assert_array_equal(got[col].to_numpy(), expected[col].to_numpy(dtype=float))
    path = tmp_path_factory.mktemp("kpi") / "k.parquet"
    pd.testing.assert_frame_equal(read_kpis(write(frame, path)), got)


@given(frame=kpi_frames(), data=st.data())
def test_a_bad_cell_anywhere_is_named_by_column_and_row(frame, data):
    col = data.draw(st.sampled_from(list(frame.columns[2:])))
    row = data.draw(st.integers(0, len(frame) - 1))
    bad = data.draw(st.sampled_from([np.nan, np.inf, "x"]))
    frame = frame.astype({col: object})
    frame.loc[row, col] = bad
    with pytest.raises(ObservedDataError, match=rf"column '{col}', row {row + 1}: "):
        read_kpis(frame)


@given(frame=kpi_frames(), data=st.data())
def test_dropping_or_repeating_a_period_is_always_caught(frame, data):
    row = data.draw(st.integers(0, len(frame) - 1))
    org, period = frame.org[row], frame.period[row]
    shown = repr(org) if isinstance(org, str) else str(int(org))
    assume(period < frame[frame.org == org].period.max())  # dropping the last one is still valid
    if data.draw(st.booleans()):
        changed, message = pd.concat([frame, frame.iloc[[row]]], ignore_index=True), "appears twice"
    else:
        changed = frame.drop(index=row)
        message = "starts at period 2" if period == 1 else f"has no period {period} "
    with pytest.raises(ObservedDataError, match=rf"org {shown}[ ,].*{message}"):
        read_kpis(changed)
