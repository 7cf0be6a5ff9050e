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
import sys
from pathlib import Path

import pandas as pd

__all__ = ["load", "main", "open", "summarize"]


#: the columns of the ``runs`` view, from each run's meta.json
_RUN_COLUMNS = ("run_id", "seed", "engine", "wall_time_s", "team_periods_per_second", "git_commit")


def _glob(path: Path, name: str) -> str:
    return str(path / "**" / name).replace("'", "''")


def open(path: str | Path):
    """A DuckDB connection with views ``kpis``, ``teams`` (if any run kept them) and ``runs``.

    ``kpis`` unions every ``kpis.parquet`` under ``path`` (columns matched by name; a run that
    lacks an override column gets NULL there), with the file each row comes from as
    ``kpis_file``; ``runs`` has one row per complete run from its ``meta.json`` (run id, seed,
    engine, wall time, team-periods per second, git commit) and the file as ``meta_file``.
    """
    import duckdb

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"results path {str(path)!r} does not exist")
    con = duckdb.connect()
    if not any(path.rglob("kpis.parquet")):
        raise FileNotFoundError(f"no kpis.parquet under {str(path)!r}")
    con.execute(
        "CREATE VIEW kpis AS SELECT * EXCLUDE (filename), filename AS kpis_file FROM "
        f"read_parquet('{_glob(path, 'kpis.parquet')}', union_by_name = true, filename = true)"
    )
    if any(path.rglob("teams.parquet")):
        con.execute(
            f"CREATE VIEW teams AS SELECT * FROM read_parquet('{_glob(path, 'teams.parquet')}', union_by_name = true)"
        )
    if any(path.rglob("meta.json")):
        source = f"read_json_auto('{_glob(path, 'meta.json')}', filename = true, union_by_name = true)"
        have = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        # a meta.json written by SimulationResult.to_parquet has no run id or git commit (the
        # command line adds them): those columns are NULL rather than an error
        cols = ", ".join(c if c in have else f"NULL AS {c}" for c in _RUN_COLUMNS)
        con.execute(f"CREATE VIEW runs AS SELECT {cols}, filename AS meta_file FROM {source}")
    return con


def load(path: str | Path, table: str = "kpis") -> pd.DataFrame:
    """One table of the store as pandas (``kpis``: a row per run, firm and period)."""
    if table not in ("kpis", "teams", "runs"):
        raise ValueError(f"table == {table!r}, must be one of 'kpis', 'teams', 'runs'")
    con = open(path)
    try:
        return con.sql(f"SELECT * FROM {table}").df()
    finally:
        con.close()


def summarize(path: str | Path, by: tuple[str, ...] = ("strategy", "environment")) -> pd.DataFrame:
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

    A run is identified by its ``run_id`` column (written by the command line) or, where a
    file has none (``SimulationResult.to_parquet``), by its file (``kpis_file``). A grouping
    column that the store lacks is a ``ValueError`` naming the columns it has.
    """
    con = open(path)
    try:
        have = [row[0] for row in con.execute("DESCRIBE kpis").fetchall()]
        missing = [c for c in by if c not in have]
        if missing:
            raise ValueError(f"by == {missing[0]!r}: not a column of the store; columns: {', '.join(have)}")
        keys = "".join(f"{c}, " for c in by)
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


def main(argv: list[str] | None = None) -> int:
    """``orgsim-results summarize PATH``: print a table per strategy and environment."""
    parser = argparse.ArgumentParser(prog="orgsim-results", description="Query orgsim results stores.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summarize", help="a table per strategy and environment")
    p.add_argument("path", help="a run or sweep directory (searched recursively)")
    p.add_argument("--by", default="strategy,environment", help="comma-separated grouping columns")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        table = summarize(args.path, tuple(c.strip() for c in args.by.split(",") if c.strip()))
    except FileNotFoundError as exc:
        print(f"orgsim-results: error: {exc}", file=sys.stderr)
        return 2
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
