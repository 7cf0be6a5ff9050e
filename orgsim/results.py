"""The results store: every run under a directory as one queryable table.

Each run directory holds ``kpis.parquet`` (one row per firm and period, with the run's id, seed,
engine, scenario, environment and each override as columns), optionally ``teams.parquet``, and
``meta.json``. The layout is plain Parquet files in nested directories, so DuckDB (the embedded
default here), Polars (``pl.scan_parquet("DIR/**/kpis.parquet")``), Dask
(``dd.read_parquet("DIR/**/kpis.parquet")``) and Spark (``spark.read.parquet`` with
``recursiveFileLookup``) read it as it is.

Examples
--------
>>> import orgsim.results
>>> con = orgsim.results.open("multirun/strategy_comparison")        # doctest: +SKIP
>>> con.sql("SELECT strategy, environment, avg(cash) FROM kpis GROUP BY ALL").df()  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import builtins
import json
import re
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

__all__ = ["load", "main", "open", "summarize"]


#: the columns of the ``runs`` view, from each run's meta.json
_RUN_COLUMNS = ("run_id", "seed", "engine", "wall_time_s", "team_periods_per_second", "git_commit")

#: the kpis columns that ``summarize`` reads
_SUMMARY_COLUMNS = ("org", "period", "free_cash_flow", "solvent", "credit_headroom", "fill_rate")

#: why a view is missing, by view
_NO_VIEW = {
    "teams": "no teams.parquet under {path!r}: runs keep team records only with output.teams=true",
    "runs": "no meta.json under {path!r}: a run writes it last, once it is complete",
}


def _files(path: Path, name: str) -> list[str]:
    """Every ``name`` under the directory ``path`` (recursively, symbolic links to directories not
    followed), or the one next to ``path`` when it is a run's ``kpis.parquet``."""
    if path.is_file():
        found = [path.parent / name] if (path.parent / name).is_file() else []
    else:
        found = [p for p in path.rglob(name) if p.is_file()]
    return sorted(str(p) for p in found)


def _sql_files(files: Iterable[str]) -> str:
    """A SQL list of ``files`` that DuckDB reads as they are named. DuckDB takes every file name
    as a glob pattern, so ``*``, ``?`` and ``[`` (in a sweep directory such as
    ``network.roles=[a,b]``) are escaped as one-character classes (``[[]``); it cannot read a
    name with both such a character and a backslash (a path separator to its glob)."""
    items = []
    for f in files:
        if re.search(r"[*?\[]", f):
            if "\\" in f:
                raise ValueError(
                    f"results file {f!r}: DuckDB cannot read a path with both a backslash and one of "
                    "* ? [ (rename the directory)"
                )
            f = re.sub(r"([*?\[])", r"[\1]", f)
        items.append("'" + f.replace("'", "''") + "'")
    return "[" + ", ".join(items) + "]"


def _readable_meta(files: list[str]) -> list[str]:
    """The meta.json files that hold a JSON object; a warning names the others (damaged or
    edited by hand: the command line writes each file whole, under a temporary name first)."""
    good, bad = [], []
    for f in files:
        try:
            ok = isinstance(json.loads(Path(f).read_text(encoding="utf-8")), dict)
        except (OSError, UnicodeDecodeError, ValueError):
            ok = False
        (good if ok else bad).append(f)
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        warnings.warn(
            f"runs view: left out {len(bad)} meta.json that {'does' if len(bad) == 1 else 'do'} not read as "
            f"a JSON object: {', '.join(map(repr, bad[:3]))}{more}",
            stacklevel=4,
        )
    return good


def _connect(path: str | Path, views: tuple[str, ...] = ("kpis", "teams", "runs")):
    """A connection with those of ``views`` that the store has, and why each other one is missing."""
    import duckdb

    shown = str(path)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"results path {shown!r} does not exist")
    if path.is_file() and path.name != "kpis.parquet":
        raise ValueError(
            f"results path {shown!r} is a file; must be a run or sweep directory, or a run's kpis.parquet"
        )
    kpis = _files(path, "kpis.parquet") if not path.is_file() else [str(path)]
    if not kpis:
        raise FileNotFoundError(f"no kpis.parquet under {shown!r}")
    con = duckdb.connect()
    missing = {}
    try:
        if "kpis" in views:
            con.execute(
                "CREATE VIEW kpis AS SELECT * EXCLUDE (filename), filename AS kpis_file FROM "
                f"read_parquet({_sql_files(kpis)}, union_by_name = true, filename = true)"
            )
        teams = _files(path, "teams.parquet") if "teams" in views else []
        if teams:
            con.execute(
                f"CREATE VIEW teams AS SELECT * FROM read_parquet({_sql_files(teams)}, union_by_name = true)"
            )
        elif "teams" in views:
            missing["teams"] = _NO_VIEW["teams"].format(path=shown)
        meta = _files(path, "meta.json") if "runs" in views else []
        readable = _readable_meta(meta)
        if readable:
            source = f"read_json_auto({_sql_files(readable)}, filename = true, union_by_name = true)"
            have = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
            # a meta.json written by SimulationResult.to_parquet has no run id or git commit (the
            # command line adds them): those columns are NULL rather than an error
            cols = ", ".join(c if c in have else f"NULL AS {c}" for c in _RUN_COLUMNS)
            con.execute(f"CREATE VIEW runs AS SELECT {cols}, filename AS meta_file FROM {source}")
        elif "runs" in views:
            missing["runs"] = (
                f"no readable meta.json under {shown!r}" if meta else _NO_VIEW["runs"].format(path=shown)
            )
    except BaseException:
        con.close()
        raise
    return con, missing, kpis


def open(path: str | Path):
    """A DuckDB connection with views ``kpis``, ``teams`` (if any run kept them) and ``runs`` (if
    any run has a readable ``meta.json``).

    ``path`` is a run or sweep directory, searched recursively, or one run's ``kpis.parquet``
    (the run's ``teams.parquet`` and ``meta.json`` beside it join it). Any name works, including
    ``[...]``, ``*`` and ``?`` in directory names (the command line names a sweep's runs after
    their overrides, e.g. ``network.roles=[a,b,c,d]``).

    ``kpis`` unions every ``kpis.parquet`` under ``path`` (columns matched by name; a run that
    lacks an override column gets NULL there), with the file each row comes from as
    ``kpis_file``; ``runs`` has one row per complete run from its ``meta.json`` (run id, seed,
    engine, wall time, team-periods per second, git commit) and the file as ``meta_file``. A
    ``meta.json`` that is not a JSON object is left out of ``runs`` with a warning naming it.
    """
    return _connect(path)[0]


def load(path: str | Path, table: str = "kpis") -> pd.DataFrame:
    """One table of the store as pandas (``kpis``: a row per run, firm and period). A table that
    the store lacks (``teams`` when no run kept team records, ``runs`` without a ``meta.json``)
    is a ``ValueError`` that says so."""
    if table not in ("kpis", "teams", "runs"):
        raise ValueError(f"table == {table!r}, must be one of 'kpis', 'teams', 'runs'")
    con, missing, _ = _connect(path, (table,))
    try:
        if table in missing:
            raise ValueError(missing[table])
        return con.sql(f"SELECT * FROM {table}").df()
    finally:
        con.close()


def _ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _check_summary_columns(con, files: list[str]) -> None:
    """Raise ValueError naming a column that ``summarize`` needs and the files that lack it."""
    rows = con.execute(f"SELECT file_name, name FROM parquet_schema({_sql_files(files)})").fetchall()
    columns: dict[str, set[str]] = {f: set() for f in files}
    for file, name in rows:
        columns.setdefault(file, set()).add(name)
    for column in _SUMMARY_COLUMNS:
        lacking = [f for f in files if column not in columns[f]]
        if lacking:
            more = f" and {len(lacking) - 3} more" if len(lacking) > 3 else ""
            raise ValueError(
                f"kpis column {column!r} is missing from {len(lacking)} of {len(files)} files: "
                f"{', '.join(map(repr, lacking[:3]))}{more}; summarize needs {', '.join(_SUMMARY_COLUMNS)}"
            )


def summarize(path: str | Path, by: str | Iterable[str] = ("strategy", "environment")) -> pd.DataFrame:
    """Per group (strategy and environment by default): runs, firms, and per-firm means of the
    outcomes that ``docs/results.md`` reports, with the same definitions as
    ``experiments/strategy_families.py``:

    - ``cumulative_fcf``: free cash flow summed over all periods;
    - ``survival``: the share of firms solvent in the last period;
    - ``ending_headroom``: unused credit in the last period, counted as at most 0 for a firm
      that is insolvent by then (it has no credit to use; its frozen value is ≤ 0 anyway);
    - ``fill_rate``: the mean fill rate over the periods in which the firm was solvent (a
      dormant firm fills nothing, which is already counted in ``survival``); firms never
      solvent are left out of this mean.

    ``path`` is as for :func:`open`; only the ``kpis.parquet`` files are read. ``by`` is a column
    name or a sequence of them (an empty one gives one row for the whole store). A run is
    identified by its ``run_id`` column (written by the command line) or, where a file has none
    (``SimulationResult.to_parquet``), by its file (``kpis_file``). A grouping column that the
    store lacks is a ``ValueError`` naming the columns it has; so is a file that lacks a column
    the summary needs (named, with the files).
    """
    by = ((by,) if by else ()) if isinstance(by, str) else tuple(by)  # "" or (): one row
    for c in by:
        if not isinstance(c, str) or not c:
            raise ValueError(f"by == {c!r}, must be a column name (a non-empty string)")
    con, _, files = _connect(path, ("kpis",))
    try:
        have = [row[0] for row in con.execute("DESCRIBE kpis").fetchall()]
        missing = [c for c in by if c not in have]
        if missing:
            raise ValueError(f"by == {missing[0]!r}, must be a column of the store: {', '.join(have)}")
        _check_summary_columns(con, files)
        keys = "".join(_ident(c) + ", " for c in by)  # quoted: override columns such as policy.theta
        run = "coalesce(CAST(run_id AS VARCHAR), kpis_file)" if "run_id" in have else "kpis_file"
        return con.sql(
            f"""
            WITH firm AS (
                SELECT {keys}{run} AS run, org,
                       sum(free_cash_flow) AS cumulative_fcf,
                       arg_max(solvent, period) AS solvent_at_end,
                       arg_max(credit_headroom, period) AS headroom,
                       avg(fill_rate) FILTER (WHERE solvent) AS solvent_fill_rate
                FROM kpis GROUP BY ALL
            )
            SELECT {keys}
                   count(DISTINCT run) AS runs,
                   count(*) AS firms,
                   avg(cumulative_fcf) AS cumulative_fcf,
                   avg(CAST(solvent_at_end AS DOUBLE)) AS survival,
                   avg(CASE WHEN solvent_at_end IS NULL THEN NULL
                            WHEN solvent_at_end OR headroom IS NULL OR isnan(headroom) OR headroom <= 0
                                 THEN headroom
                            ELSE 0.0 END) AS ending_headroom,
                   avg(solvent_fill_rate) AS fill_rate
            FROM firm GROUP BY ALL ORDER BY ALL
            """
        ).df()
    finally:
        con.close()


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``orgsim-results: error: ...``, and exit
    status 2 (argparse's own print the usage first)."""

    def error(self, message: str):
        self.exit(2, f"orgsim-results: error: {' '.join(message.split())}\n")


def _columns(text: str) -> tuple[str, ...]:
    """``--by``: comma-separated column names, none of them empty (``""``: no grouping, one row)."""
    if not text.strip():
        return ()
    names = tuple(c.strip() for c in text.split(","))
    if not all(names):
        raise ValueError(f"--by == {text!r}, must be comma-separated column names, e.g. strategy,environment")
    return names


def main(argv: list[str] | None = None) -> int:
    """``orgsim-results summarize PATH``: print a table per strategy and environment."""
    parser = _Parser(prog="orgsim-results", description="Query orgsim results stores.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summarize", help="a table per strategy and environment")
    p.add_argument("path", help="a run or sweep directory (searched recursively), or a run's kpis.parquet")
    p.add_argument("--by", default="strategy,environment", help="comma-separated grouping columns")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        table = summarize(args.path, _columns(args.by))
    except Exception as exc:  # e.g. a grouping column that does not exist
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"orgsim-results: error: {first}", file=sys.stderr)
        return 2
    with pd.option_context(
        "display.width", 160, "display.max_columns", 20, "display.float_format", "{:,.2f}".format
    ):
        builtins.print(table.to_string(index=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
