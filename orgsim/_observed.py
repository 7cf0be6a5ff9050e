"""Observed data: KPI series and team records read from CSV, Parquet or a DataFrame, checked.

Two schemas, both long (one row per firm and period, or per firm, period and team), named as
orgsim's own outputs so that a simulated result and an observed file are read the same way:

- **KPI series** (:func:`read_kpis`): ``period`` plus KPI columns named as
  :data:`orgsim.KPI_COLUMNS` (numbers; ``solvent`` may be true/false), an optional ``org`` (an
  integer or a string naming the firm; 0 when absent) and the optional labels ``strategy`` and
  ``family``. The extra KPI columns that ``orgsim.simulate`` writes after the contract's
  (``cash_start``, ``net_financing``, ``interest``, ``programme_cost``) are accepted too.
- **Team records** (:func:`read_teams`): ``period``, ``team`` and the team columns the ordering
  rule needs, ``inventory, backlog, order, received, shipped`` (units; backlog non-negative;
  inventory is negative only after returns, with ``policy.allow_negative_orders``), optional ``org`` and the optional ``stage`` (integer >= 0), ``role`` (text),
  ``cost`` and ``knowledge`` (numbers) of :data:`orgsim.TEAM_COLUMNS`.

Periods are the integers 1, 2, ..., T of each firm (each firm and team for team records): no gap,
no duplicate, starting at 1. Every value must be present and finite. A file or frame that
breaks a rule raises :class:`ObservedDataError` with one line naming the file, the column and,
where it helps, the row (rows are counted from 1, after the header) and the firm.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .schema import KPI_COLUMNS, KPI_EXTRA, TEAM_COLUMNS

__all__ = [
    "KPI_LABELS",
    "KPI_VALUES",
    "TEAM_OPTIONAL",
    "TEAM_REQUIRED",
    "ObservedDataError",
    "read_kpis",
    "read_teams",
]

#: numeric KPI columns a KPI file may hold (the contract's, then simulate's extras)
KPI_VALUES = (*KPI_COLUMNS[4:], *KPI_EXTRA)
#: text label columns a KPI file may hold
KPI_LABELS = ("strategy", "family")
#: the team columns the ordering rule needs (beside org, period and team)
TEAM_REQUIRED = ("inventory", "backlog", "order", "received", "shipped")
#: team columns that may be present
TEAM_OPTIONAL = ("stage", "role", "cost", "knowledge")
_SUFFIXES = (".csv", ".parquet")
_NON_NEGATIVE = ("backlog",)  # inventory can fall below 0 only by returns (negative orders)


class ObservedDataError(ValueError):
    """Observed data that break their schema: the message names the file, column and row."""


def read_kpis(source, *, kpis: Sequence[str] | None = None) -> pd.DataFrame:
    """Read observed KPI series and check them against the KPI schema.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        A ``.csv`` or ``.parquet`` file, or a frame with the same columns (such as
        ``orgsim.simulate(cfg).kpis``).
    kpis : sequence of str, optional
        KPI columns that must be present (a missing one is an error naming it). By default at
        least one KPI column must be present.

    Returns
    -------
    pandas.DataFrame
        Columns ``org`` (0 when the source has none), ``period``, the labels present, then the
        KPI columns present in :data:`orgsim.KPI_COLUMNS` order, as floats (``solvent`` as
        1.0/0.0); one row per firm and period, sorted by org and period.

    Raises
    ------
    ObservedDataError
        Unreadable or empty file, unknown suffix, missing or extra columns, a missing, non-numeric
        or infinite value, a period that is not an integer, a duplicate (org, period), a gap in
        the periods of a firm or a first period other than 1.

    Examples
    --------
    >>> import pandas as pd
    >>> from orgsim._observed import read_kpis
    >>> read_kpis(pd.DataFrame({"period": [2, 1], "revenue": [5, 4]}))
       org  period  revenue
    0    0       1      4.0
    1    0       2      5.0
    """
    if kpis is not None:
        if isinstance(kpis, str) or not all(isinstance(k, str) for k in kpis):
            raise TypeError(f"kpis == {kpis!r}, must be a list of KPI column names such as ['revenue']")
        unknown = [k for k in kpis if k not in KPI_VALUES]
        if unknown:
            raise ValueError(
                f"kpis names {_names(unknown)}, which {'is not a' if len(unknown) == 1 else 'are not'} "
                f"numeric KPI column{'s' * (len(unknown) > 1)}; allowed: {', '.join(KPI_VALUES)}"
            )
    frame, label = _load(source, "KPI")
    allowed = ("org", "period", *KPI_LABELS, *KPI_VALUES)
    _check_columns(frame, label, required=("period", *(kpis or ())), allowed=allowed)
    present = [c for c in KPI_VALUES if c in frame.columns]
    if not present:
        raise ObservedDataError(
            f"{label} has no KPI column, must have at least one of: {', '.join(KPI_VALUES)}"
        )
    _check_rows(frame, label)
    out = {"org": _org(frame, label), "period": _integers(frame, "period", label, minimum=1)}
    for col in KPI_LABELS:
        if col in frame.columns:
            out[col] = _text(frame, col, label)
    for col in present:
        out[col] = _numbers(frame, col, label, boolean_ok=col == "solvent")
    table = pd.DataFrame(out)
    table["_row"] = np.arange(1, len(table) + 1)
    table = table.sort_values(["org", "period"], kind="stable")
    _check_periods(table, ["org"], label)
    return table.drop(columns="_row").reset_index(drop=True)


def read_teams(source) -> pd.DataFrame:
    """Read observed team records and check them against the team schema.

    Parameters
    ----------
    source : str, path or pandas.DataFrame
        A ``.csv`` or ``.parquet`` file, or a frame with the same columns (such as
        ``orgsim.simulate(cfg, teams=True).teams``).

    Returns
    -------
    pandas.DataFrame
        Columns ``org`` (0 when the source has none), ``period``, ``team`` (text), then the
        team columns present in :data:`orgsim.TEAM_COLUMNS` order (``stage`` integer, ``role``
        text, the others floats); one row per firm, period and team, sorted by org, period and
        team (by stage when given, then in order of first appearance).

    Raises
    ------
    ObservedDataError
        As :func:`read_kpis`, for (org, team, period); also a negative backlog, and
        a team whose stage or role changes from one period to another.

    Examples
    --------
    >>> import pandas as pd
    >>> from orgsim._observed import read_teams
    >>> rows = dict(period=[1, 2], team="retailer", inventory=12, backlog=0, order=4, received=4, shipped=4)
    >>> read_teams(pd.DataFrame(rows)).columns.tolist()
    ['org', 'period', 'team', 'inventory', 'backlog', 'order', 'received', 'shipped']
    """
    frame, label = _load(source, "team")
    allowed = ("org", "period", "team", *TEAM_REQUIRED, *TEAM_OPTIONAL)
    _check_columns(frame, label, required=("period", "team", *TEAM_REQUIRED), allowed=allowed)
    _check_rows(frame, label)
    out = {
        "org": _org(frame, label),
        "period": _integers(frame, "period", label, minimum=1),
        "team": _text(frame, "team", label),
    }
    for col in TEAM_COLUMNS[3:]:
        if col not in frame.columns:
            continue
        if col == "stage":
            out[col] = _integers(frame, col, label, minimum=0)
        elif col == "role":
            out[col] = _text(frame, col, label)
        else:
            out[col] = _numbers(frame, col, label)
            if col in _NON_NEGATIVE and (out[col] < 0).any():
                i = int(np.flatnonzero(out[col] < 0)[0])
                raise ObservedDataError(
                    f"{label}: column {col!r}, {_row(label, i)}: {out[col][i]:g}, must be >= 0 (what a "
                    "team owes its customers)"
                )
    table = pd.DataFrame(out)
    table["_row"] = np.arange(1, len(table) + 1)
    for col in ("stage", "role"):
        if col in table.columns:
            n = table.groupby(["org", "team"], sort=False)[col].nunique()
            if (n > 1).any():
                org, team = n.index[int(np.flatnonzero(n.to_numpy() > 1)[0])]
                values = table.loc[(table.org == org) & (table.team == team), col].unique()
                raise ObservedDataError(
                    f"{label}: column {col!r} of team {team!r} in org {_show(org)} takes several values "
                    f"({', '.join(map(_show, values[:3]))}), must be the same in every period"
                )
    # teams in order of first appearance within each org (by stage first, when given)
    first = table.drop_duplicates(["org", "team"])
    first = first.sort_values(["org", "stage"] if "stage" in first else ["org"], kind="stable")
    rank = dict(zip(zip(first.org, first.team), range(len(first))))
    table["_team"] = [rank[k] for k in zip(table.org, table.team)]
    table = table.sort_values(["org", "_team", "period"], kind="stable")
    _check_periods(table, ["org", "team"], label)
    table = table.sort_values(["org", "period", "_team"], kind="stable")
    return table.drop(columns=["_row", "_team"]).reset_index(drop=True)


# -- reading -------------------------------------------------------------------------------------
def _load(source, what: str) -> tuple[pd.DataFrame, str]:
    """The raw frame and how messages name it (the path, or 'the <what> DataFrame')."""
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True), f"the {what} DataFrame"
    if not isinstance(source, str | os.PathLike):
        raise TypeError(
            f"source must be a path to a .csv or .parquet file or a pandas DataFrame, got {type(source).__name__}"
        )
    path = Path(source)
    label = str(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise ObservedDataError(
            f"{label}: suffix {suffix or '(none)'!r} is not supported, must be one of {', '.join(_SUFFIXES)}"
        )
    if not path.exists():
        raise ObservedDataError(f"{label}: no such file")
    if not path.is_file():
        raise ObservedDataError(f"{label}: not a file")
    if path.stat().st_size == 0:
        raise ObservedDataError(f"{label}: the file is empty, must hold a header row and data rows")
    try:
        if suffix == ".csv":
            header = pd.read_csv(path, header=None, nrows=1).iloc[0].tolist()
            frame = pd.read_csv(path)
            frame.columns = header  # the names as written (pandas renames a repeated one)
        else:
            frame = pd.read_parquet(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:  # parser, encoding and Arrow errors
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "CSV" if suffix == ".csv" else "Parquet"
        raise ObservedDataError(f"{label}: cannot be read as {kind} ({detail})") from exc
    return frame, label


def _check_columns(frame: pd.DataFrame, label: str, *, required, allowed) -> None:
    cols = list(frame.columns)
    bad = [c for c in cols if not isinstance(c, str)]
    if bad:
        raise ObservedDataError(f"{label}: column name {bad[0]!r} is not text; allowed: {', '.join(allowed)}")
    seen = pd.Series(cols)
    dup = seen[seen.duplicated()].unique().tolist()
    if dup:
        raise ObservedDataError(
            f"{label}: column {dup[0]!r} appears {cols.count(dup[0])} times, must appear once"
        )
    missing = [c for c in required if c not in cols]
    if missing:
        raise ObservedDataError(f"{label}: missing column{'s' * (len(missing) > 1)} {_names(missing)}")
    extra = [c for c in cols if c not in allowed]
    if extra:
        raise ObservedDataError(
            f"{label}: unknown column{'s' * (len(extra) > 1)} {_names(extra)}; allowed: {', '.join(allowed)}"
        )


def _check_rows(frame: pd.DataFrame, label: str) -> None:
    if len(frame) == 0:
        raise ObservedDataError(f"{label}: no data rows (only a header), must have at least one row")


def _row(label: str, i: int) -> str:
    return f"row {i + 1}"


def _show(v) -> str:
    """A value as a message shows it: text quoted, numbers plain (1.5, inf, 3, True)."""
    if isinstance(v, bool | np.bool_):
        return str(bool(v))
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return repr(float(v))
    return repr(v)


def _names(cols) -> str:
    return ", ".join(repr(c) for c in cols)


def _missing(values: pd.Series) -> np.ndarray:
    return values.isna().to_numpy()


def _first_missing(frame: pd.DataFrame, col: str, label: str) -> None:
    miss = _missing(frame[col])
    if miss.any():
        i = int(np.flatnonzero(miss)[0])
        raise ObservedDataError(f"{label}: column {col!r}, {_row(label, i)}: missing value, must be given")


def _numbers(frame: pd.DataFrame, col: str, label: str, *, boolean_ok: bool = False) -> np.ndarray:
    """The column as finite floats, or an error naming the first bad row."""
    values = frame[col]
    _first_missing(frame, col, label)
    if pd.api.types.is_bool_dtype(values):
        if boolean_ok:
            return values.to_numpy(dtype=np.float64)
        raise ObservedDataError(f"{label}: column {col!r} holds true/false values, must hold numbers")
    if not pd.api.types.is_numeric_dtype(values):
        raw = values.to_numpy(dtype=object)
        ok = np.array([_is_number(v, boolean_ok) for v in raw])
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise ObservedDataError(
                f"{label}: column {col!r}, {_row(label, i)}: {_show(raw[i])} is not a number"
                + (" (true/false or a number)" if boolean_ok else "")
            )
        out = np.array([float(_as_number(v)) for v in raw], dtype=np.float64)
    else:
        out = values.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ObservedDataError(
            f"{label}: column {col!r}, {_row(label, i)}: {_show(out[i])}, must be a finite number"
        )
    if boolean_ok and not np.isin(out, (0.0, 1.0)).all():
        i = int(np.flatnonzero(~np.isin(out, (0.0, 1.0)))[0])
        raise ObservedDataError(
            f"{label}: column {col!r}, {_row(label, i)}: {out[i]:g}, must be true/false or 1/0"
        )
    return out


def _as_number(v):
    if isinstance(v, str) and v.strip().lower() in ("true", "false"):
        return v.strip().lower() == "true"
    return float(v)


def _is_number(v, boolean_ok: bool) -> bool:
    if isinstance(v, bool | np.bool_):
        return boolean_ok
    if isinstance(v, int | float | np.integer | np.floating):
        return True
    if isinstance(v, str):
        if boolean_ok and v.strip().lower() in ("true", "false"):
            return True
        try:
            float(v)
        except ValueError:
            return False
        return True
    return False


def _integers(frame: pd.DataFrame, col: str, label: str, *, minimum: int) -> np.ndarray:
    values = frame[col]
    _first_missing(frame, col, label)
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        raw = values.to_numpy(dtype=object)
        i = next((j for j, v in enumerate(raw) if isinstance(v, bool | np.bool_) or not _is_integral(v)), 0)
        raise ObservedDataError(
            f"{label}: column {col!r}, {_row(label, i)}: {_show(raw[i])} is not an integer"
        )
    floats = values.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(floats) | (floats != np.round(floats))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ObservedDataError(
            f"{label}: column {col!r}, {_row(label, i)}: {_show(floats[i])} is not an integer"
        )
    low = floats < minimum
    if low.any():
        i = int(np.flatnonzero(low)[0])
        raise ObservedDataError(
            f"{label}: column {col!r}, {_row(label, i)}: {int(floats[i])}, must be >= {minimum}"
        )
    return floats.astype(np.int64)


def _is_integral(v) -> bool:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return bool(np.isfinite(f) and f == round(f))


def _text(frame: pd.DataFrame, col: str, label: str) -> np.ndarray:
    """Labels as text (numbers are written as integers: team 3 is '3')."""
    _first_missing(frame, col, label)
    raw = frame[col].to_numpy(dtype=object)
    out = []
    for i, v in enumerate(raw):
        if isinstance(v, bool | np.bool_) or not isinstance(v, str | int | np.integer):
            if isinstance(v, float | np.floating) and _is_integral(v):
                v = int(v)
            else:
                raise ObservedDataError(
                    f"{label}: column {col!r}, {_row(label, i)}: {_show(v)}, must be text or an integer"
                )
        text = str(v)
        if not text.strip():
            raise ObservedDataError(f"{label}: column {col!r}, {_row(label, i)}: empty, must be given")
        out.append(text)
    return np.array(out, dtype=object)


def _org(frame: pd.DataFrame, label: str) -> np.ndarray:
    """Firm ids: integers when every id is integral, else text; 0 when there is no column."""
    if "org" not in frame.columns:
        return np.zeros(len(frame), dtype=np.int64)
    values = frame["org"]
    _first_missing(frame, "org", label)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return _integers(frame, "org", label, minimum=np.iinfo(np.int64).min)
    raw = values.to_numpy(dtype=object)
    kinds = {isinstance(v, str) for v in raw}
    if kinds == {True}:
        return _text(frame, "org", label)
    i = next(j for j, v in enumerate(raw) if not isinstance(v, str))
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) for v in raw):
        return raw.astype(np.int64)
    raise ObservedDataError(
        f"{label}: column 'org', {_row(label, i)}: {_show(raw[i])}, every org must be an integer or every org text"
    )


def _check_periods(table: pd.DataFrame, keys: list[str], label: str) -> None:
    """Periods 1..T per key, no duplicate; ``table`` is sorted by the keys' groups, then period
    (stable, so ``_row`` orders duplicates)."""
    key_arrays = [table[k].to_numpy() for k in keys]
    period = table["period"].to_numpy()
    rows = table["_row"].to_numpy()
    same = np.ones(len(table) - 1, dtype=bool)
    for a in key_arrays:
        same &= a[1:] == a[:-1]
    new_group = np.concatenate(([True], ~same))

    def who(i: int) -> str:
        return " ".join(f"{k} {_show(a[i])}" for k, a in zip(keys, key_arrays))

    starts = np.flatnonzero(new_group)
    if (period[starts] != 1).any():
        i = int(starts[np.flatnonzero(period[starts] != 1)[0]])
        raise ObservedDataError(
            f"{label}: {who(i)} starts at period {period[i]} (row {rows[i]}), must start at 1"
        )
    step = np.diff(period)
    inner = same
    dup = inner & (step == 0)
    if dup.any():
        j = int(np.flatnonzero(dup)[0]) + 1
        raise ObservedDataError(
            f"{label}: {who(j)}, period {period[j]} appears twice (rows {rows[j - 1]} and {rows[j]}), "
            "must appear once"
        )
    gap = inner & (step > 1)
    if gap.any():
        j = int(np.flatnonzero(gap)[0]) + 1
        missing = period[j - 1] + 1
        span = f"period {missing}" if step[j - 1] == 2 else f"periods {missing}-{period[j] - 1}"
        raise ObservedDataError(
            f"{label}: {who(j)} has no {span} (periods jump from {period[j - 1]} to {period[j]}), "
            "must be contiguous"
        )
