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
import re
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from ._io import check_files, read_meta

__all__ = [
    "OUTCOMES",
    "ResultsError",
    "default_outcomes",
    "format_summary",
    "load",
    "main",
    "open",
    "plot",
    "summarize",
]


#: the columns of the ``runs`` view, from each run's meta.json
_RUN_COLUMNS = (
    "run_id",
    "seed",
    "engine",
    "wall_time_s",
    "compile_time_s",
    "team_periods_per_second",
    "git_commit",
)

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


class ResultsError(ValueError):
    """A results store that cannot be read as asked; the message names the path or file."""


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)


def _listing(items: list[str], limit: int = 3) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(map(repr, items[:limit])) + more


class _Store:
    """The complete, verified runs under a path: each a directory whose ``meta.json`` marks it
    complete and whose Parquet files match the sizes and SHA-256 digests it records. Every
    other run is left out with a warning naming its file: one warning for the unfinished runs
    (no ``meta.json`` yet: a sweep still running, or killed), one per damaged run."""

    def __init__(self, path: str | Path, *, verify: str = "checksum"):
        if verify not in ("checksum", "size"):
            raise ValueError(f"verify == {verify!r}, must be 'checksum' or 'size'")
        shown = str(path)
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"results path {shown!r} does not exist")
        if path.is_file() and path.name != "kpis.parquet":
            raise ValueError(
                f"results path {shown!r} is a file; must be a run or sweep directory, or a run's kpis.parquet"
            )
        self.shown = shown
        if path.is_file():
            candidates = [path.parent]
        else:
            found = {Path(f).parent for f in _files(path, "kpis.parquet")}
            found |= {Path(f).parent for f in _files(path, "meta.json")}
            candidates = sorted(found)
        if not candidates:
            raise FileNotFoundError(f"no kpis.parquet under {shown!r}")
        self.runs: list[tuple[Path, dict]] = []  # (run directory, its meta.json)
        unfinished, damaged = [], []
        for run in candidates:
            meta = read_meta(run)
            if meta is None:
                unfinished.append(str(run / "kpis.parquet"))
                continue
            problem = None
            if not meta:
                problem = "meta.json does not read as a JSON object"
            elif not meta.get("complete") or not isinstance(meta.get("files"), dict):
                problem = "meta.json records no file checksums (written by an older orgsim; run it again)"
            elif "kpis.parquet" not in meta["files"]:
                problem = "meta.json lists no kpis.parquet"
            else:
                tables = [n for n in ("kpis.parquet", "teams.parquet") if n in meta["files"]]
                problem = check_files(run, meta["files"], tables, checksum=verify == "checksum")
            if problem:
                damaged.append(str(run))
                _warn(f"results: left out the run in {str(run)!r}: {problem}")
            else:
                self.runs.append((run, meta))
        if unfinished:
            n = len(unfinished)
            _warn(
                f"results: left out {n} unfinished run{'s' if n > 1 else ''} (no meta.json, which a run "
                f"writes last): {_listing(unfinished)}"
            )
        if not self.runs:
            reasons = []
            if unfinished:
                reasons.append(f"{len(unfinished)} unfinished")
            if damaged:
                reasons.append(f"{len(damaged)} damaged or unverifiable")
            raise ResultsError(
                f"no complete run under {shown!r}"
                + (f" ({' and '.join(reasons)}, left out)" if reasons else "")
            )

    def files(self, name: str) -> list[str]:
        return [str(run / name) for run, meta in self.runs if name in meta["files"]]

    def metas(self) -> list[str]:
        return [str(run / "meta.json") for run, _ in self.runs]

    def layers(self) -> dict[str, bool]:
        """Whether any run of the store has the finance layer, and the culture layer, on."""
        from .config import CultureConfig, FinanceConfig

        defaults = {"finance": FinanceConfig().enabled, "culture": CultureConfig().enabled}
        out = {"finance": False, "culture": False}
        for _, meta in self.runs:
            cfg = meta.get("config") or {}
            for layer in out:
                out[layer] |= bool((cfg.get(layer) or {}).get("enabled", defaults[layer]))
        return out


def _duckdb_error(exc: Exception, files: list[str], what: str) -> ResultsError:
    """``exc`` (a DuckDB error) as one line that names the file it comes from."""
    message = " ".join(str(exc).split())
    named = [f for f in files if f in message]
    if not named:  # find the file DuckDB could not read
        import pyarrow.parquet as pq

        for f in files:
            try:
                pq.read_metadata(f)
            except Exception:
                named = [f]
                break
    where = f"{named[0]!r}" if named else f"one of {len(files)} files ({_listing(files)})"
    return ResultsError(f"{what}: DuckDB cannot read {where}: {message}")


def _connect(path: str | Path, views: tuple[str, ...] = ("kpis", "teams", "runs"), verify: str = "checksum"):
    """A connection with those of ``views`` that the store has, why each other one is missing,
    and the store."""
    import duckdb

    store = _Store(path, verify=verify)
    shown = store.shown
    con = duckdb.connect()
    missing = {}
    kpis = store.files("kpis.parquet")
    try:
        if "kpis" in views:
            con.execute(
                "CREATE VIEW kpis AS SELECT * EXCLUDE (filename), filename AS kpis_file FROM "
                f"read_parquet({_sql_files(kpis)}, union_by_name = true, filename = true)"
            )
        teams = store.files("teams.parquet") if "teams" in views else []
        if teams:
            con.execute(
                f"CREATE VIEW teams AS SELECT * FROM read_parquet({_sql_files(teams)}, union_by_name = true)"
            )
        elif "teams" in views:
            missing["teams"] = _NO_VIEW["teams"].format(path=shown)
        if "runs" in views:
            source = f"read_json_auto({_sql_files(store.metas())}, filename = true, union_by_name = true)"
            have = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
            # a meta.json written by SimulationResult.to_parquet has no run id or git commit (the
            # command line adds them): those columns are NULL rather than an error
            cols = ", ".join(c if c in have else f"NULL AS {c}" for c in _RUN_COLUMNS)
            con.execute(f"CREATE VIEW runs AS SELECT {cols}, filename AS meta_file FROM {source}")
    except duckdb.Error as exc:
        con.close()
        raise _duckdb_error(
            exc, kpis + store.files("teams.parquet") + store.metas(), f"results {shown!r}"
        ) from None
    except BaseException:
        con.close()
        raise
    return con, missing, store


def open(path: str | Path, *, verify: str = "checksum"):
    """A DuckDB connection with views ``kpis``, ``teams`` (if any run kept them) and ``runs``
    over the complete runs under ``path``.

    ``path`` is a run or sweep directory, searched recursively, or one run's ``kpis.parquet``
    (the run's ``teams.parquet`` and ``meta.json`` beside it join it). Any name works, including
    ``[...]``, ``*`` and ``?`` in directory names (the command line names a sweep's runs after
    their overrides, e.g. ``network.roles=[a,b,c,d]``).

    A run counts only when its ``meta.json`` (written last) marks it complete and its Parquet
    files match the size and SHA-256 digest it records (``verify="size"`` compares sizes only,
    for very large stores). Unfinished runs (a sweep still running or killed) are left out with
    one warning; each damaged or unreadable run is left out with a warning naming its file. A
    store without any complete run is a :class:`ResultsError`.

    ``kpis`` unions every complete run's ``kpis.parquet`` (columns matched by name; a run that
    lacks an override column gets NULL there), with the file each row comes from as
    ``kpis_file``; ``runs`` has one row per run from its ``meta.json`` (run id, seed, engine,
    wall time, team-periods per second, git commit) and the file as ``meta_file``.
    """
    return _connect(path, verify=verify)[0]


def load(path: str | Path, table: str = "kpis", *, verify: str = "checksum") -> pd.DataFrame:
    """One table of the store's complete runs as pandas (``kpis``: a row per run, firm and
    period; see :func:`open`). A table that the store lacks (``teams`` when no run kept team
    records) is a ``ValueError`` that says so."""
    import duckdb

    if table not in ("kpis", "teams", "runs"):
        raise ValueError(f"table == {table!r}, must be one of 'kpis', 'teams', 'runs'")
    con, missing, store = _connect(path, (table,), verify=verify)
    try:
        if table in missing:
            raise ValueError(missing[table])
        try:
            return con.sql(f"SELECT * FROM {table}").df()
        except duckdb.Error as exc:
            files = store.metas() if table == "runs" else store.files(f"{table}.parquet")
            raise _duckdb_error(exc, files, f"results {store.shown!r}") from None
    finally:
        con.close()


def _ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _ending(column: str) -> str:
    return f"arg_max({_ident(column)}, period)"


#: what :func:`summarize` can report per firm: name -> (SQL over a firm's rows, the KPI columns
#: it reads, unit, meaning). Any other KPI column's name gives its per-firm mean over the run.
OUTCOMES: dict[str, tuple[str, tuple[str, ...], str, str]] = {
    "cumulative_fcf": (
        "sum(free_cash_flow)",
        ("free_cash_flow",),
        "MU",
        "free cash flow summed over the run",
    ),
    "survival": (
        "CAST(arg_max(solvent, period) AS DOUBLE)",
        ("solvent",),
        "share",
        "solvent in the last period",
    ),
    "ending_headroom": (
        "CASE WHEN arg_max(solvent, period) IS NULL THEN NULL "
        "WHEN arg_max(solvent, period) OR arg_max(credit_headroom, period) IS NULL "
        "OR isnan(arg_max(credit_headroom, period)) OR arg_max(credit_headroom, period) <= 0 "
        "THEN arg_max(credit_headroom, period) ELSE 0.0 END",
        ("solvent", "credit_headroom"),
        "MU",
        "unused credit in the last period (at most 0 for a firm insolvent by then)",
    ),
    "fill_rate": (
        "avg(fill_rate) FILTER (WHERE solvent)",
        ("fill_rate", "solvent"),
        "share",
        "mean fill rate over the periods in which the firm was solvent",
    ),
    "ending_cash": (_ending("cash"), ("cash",), "MU", "cash in the last period"),
    "ending_debt": (_ending("debt"), ("debt",), "MU", "drawn credit in the last period"),
    "cumulative_revenue": ("sum(revenue)", ("revenue",), "MU", "revenue summed over the run"),
    "operating_cost": (
        "sum(operating_cost)",
        ("operating_cost",),
        "MU",
        "operating cost summed over the run",
    ),
    "ending_knowledge": (
        _ending("mean_knowledge"),
        ("mean_knowledge",),
        "share",
        "team knowledge at the end",
    ),
    "ending_code_knowledge": (
        _ending("code_knowledge"),
        ("code_knowledge",),
        "share",
        "code knowledge at the end",
    ),
}

#: the default outcomes, by the layers the store's runs have on
_DEFAULT_OUTCOMES = {
    "finance": ("cumulative_fcf", "survival", "ending_headroom", "fill_rate"),
    "operations": ("fill_rate", "operating_cost"),
    "culture": ("ending_knowledge", "ending_code_knowledge"),
}


def default_outcomes(finance: bool, culture: bool) -> tuple[str, ...]:
    """The outcomes :func:`summarize` reports by default: the finance outcomes when a run has
    the finance layer on, otherwise fill rate and operating cost; knowledge when a run has the
    culture layer on."""
    out = _DEFAULT_OUTCOMES["finance" if finance else "operations"]
    return out + (_DEFAULT_OUTCOMES["culture"] if culture else ())


def _outcome_sql(name: str, have: list[str]) -> tuple[str, tuple[str, ...]]:
    if name in OUTCOMES:
        sql, needs, _, _ = OUTCOMES[name]
        return sql, needs
    if name in have and name not in ("org", "period"):
        return f"avg(CAST({_ident(name)} AS DOUBLE))", (name,)
    raise ValueError(
        f"outcomes == {name!r}, must be one of {', '.join(OUTCOMES)} or a KPI column of the store "
        "(its per-firm mean over the run)"
    )


def _check_summary_columns(con, files: list[str], needed: tuple[str, ...]) -> None:
    """Raise ValueError naming a column that ``summarize`` needs and the files that lack it."""
    rows = con.execute(f"SELECT file_name, name FROM parquet_schema({_sql_files(files)})").fetchall()
    columns: dict[str, set[str]] = {f: set() for f in files}
    for file, name in rows:
        columns.setdefault(file, set()).add(name)
    for column in needed:
        lacking = [f for f in files if column not in columns[f]]
        if lacking:
            raise ValueError(
                f"kpis column {column!r} is missing from {len(lacking)} of {len(files)} files: "
                f"{_listing(lacking)}; summarize needs {', '.join(needed)}"
            )


def summarize(
    path: str | Path,
    by: str | Iterable[str] = ("strategy", "environment"),
    outcomes: str | Iterable[str] | None = None,
    *,
    verify: str = "checksum",
) -> pd.DataFrame:
    """Per group (strategy and environment by default): runs, firms, and for each outcome the
    mean over firms and its standard error (``<outcome>_se``: s/√n over the group's firms, which
    are independent across runs and seeds).

    Outcomes are per firm, with the definitions of ``docs/results.md``
    (:data:`OUTCOMES`; any other KPI column's name gives its per-firm mean over the run):

    - ``cumulative_fcf``: free cash flow summed over all periods (MU);
    - ``survival``: the share of firms solvent in the last period;
    - ``ending_headroom``: unused credit in the last period, counted as at most 0 for a firm
      that is insolvent by then (it has no credit to use; its frozen value is ≤ 0 anyway);
    - ``fill_rate``: the mean fill rate over the periods in which the firm was solvent (a
      dormant firm fills nothing, which is already counted in ``survival``); firms never
      solvent are left out of this mean;
    - ``ending_cash``, ``ending_debt`` (MU), ``cumulative_revenue``, ``operating_cost`` (MU,
      summed), ``ending_knowledge``, ``ending_code_knowledge`` (shares).

    By default: the first four when a run of the store has the finance layer on, else
    ``fill_rate`` and ``operating_cost``; and the two knowledge outcomes when a run has the
    culture layer on.

    ``path`` is as for :func:`open` (complete, verified runs only); only the ``kpis.parquet``
    files are read. ``by`` is a column name or a sequence of them (an empty one gives one row
    for the whole store). A run is identified by its ``run_id`` column (written by the command
    line) or, where a file has none, by its file (``kpis_file``). A grouping column that the
    store lacks is a ``ValueError`` naming the columns it has; so is an unknown outcome, and a
    file that lacks a column an outcome needs (named, with the files).
    """
    import duckdb

    by = ((by,) if by else ()) if isinstance(by, str) else tuple(by)  # "" or (): one row
    for c in by:
        if not isinstance(c, str) or not c:
            raise ValueError(f"by == {c!r}, must be a column name (a non-empty string)")
    if isinstance(outcomes, str):
        outcomes = (outcomes,)
    con, _, store = _connect(path, ("kpis",), verify=verify)
    files = store.files("kpis.parquet")
    try:
        have = [row[0] for row in con.execute("DESCRIBE kpis").fetchall()]
        missing = [c for c in by if c not in have]
        if missing:
            raise ValueError(f"by == {missing[0]!r}, must be a column of the store: {', '.join(have)}")
        outcomes = tuple(default_outcomes(**store.layers()) if outcomes is None else outcomes)
        if not outcomes:
            raise ValueError("outcomes == (), must name at least one outcome")
        specs = {name: _outcome_sql(name, have) for name in dict.fromkeys(outcomes)}
        needed = tuple(dict.fromkeys(["org", "period", *(c for _, cols in specs.values() for c in cols)]))
        _check_summary_columns(con, files, needed)
        keys = "".join(_ident(c) + ", " for c in by)  # quoted: override columns such as policy.theta
        run = "coalesce(CAST(run_id AS VARCHAR), kpis_file)" if "run_id" in have else "kpis_file"
        firm = ", ".join(f"{sql} AS {_ident(name)}" for name, (sql, _) in specs.items())
        stats = ", ".join(
            f"avg({_ident(name)}) AS {_ident(name)}, "
            f"stddev_samp({_ident(name)}) / sqrt(count({_ident(name)})) AS {_ident(name + '_se')}"
            for name in specs
        )
        query = f"""
            WITH firm AS (SELECT {keys}{run} AS run, org, {firm} FROM kpis GROUP BY ALL)
            SELECT {keys} count(DISTINCT run) AS runs, count(*) AS firms, {stats}
            FROM firm GROUP BY ALL ORDER BY ALL
            """
        try:
            return con.sql(query).df()
        except duckdb.Error as exc:
            raise _duckdb_error(exc, files, f"results {store.shown!r}") from None
    finally:
        con.close()


def plot(
    path: str | Path,
    out: str | Path | None = None,
    kpis: Iterable[str] | None = None,
    *,
    verify: str = "checksum",
) -> list[Path]:
    """Draw a store's KPIs over time, strategies side by side: one PNG per environment
    (``kpis_<environment>.png``, median and 50% / 90% bands across firms), into ``out``
    (default: ``path``, or the run directory of a ``kpis.parquet``). Returns the files written.

    ``kpis`` are KPI columns (default: the key KPIs of the layers the runs have on).
    """
    import duckdb

    from ._io import atomic_write
    from .plots import fan_chart, key_kpis

    con, _, store = _connect(path, ("kpis",), verify=verify)
    try:
        have = [row[0] for row in con.execute("DESCRIBE kpis").fetchall()]
        kpis = tuple(key_kpis(**store.layers()) if kpis is None else kpis)
        if not kpis:
            raise ValueError("kpis == (), must name at least one KPI column")
        for k in kpis:
            if k not in have or k in ("org", "period"):
                raise ValueError(f"kpis == {k!r}, must be a KPI column of the store: {', '.join(have)}")
        labels = [c for c in ("strategy", "family", "environment", "scenario") if c in have]
        run = "coalesce(CAST(run_id AS VARCHAR), kpis_file)" if "run_id" in have else "kpis_file"
        columns = ", ".join(_ident(c) for c in (*labels, "org", "period", *kpis))
        try:
            frame = con.sql(f"SELECT {run} AS run_id, {columns} FROM kpis").df()
        except duckdb.Error as exc:
            raise _duckdb_error(exc, store.files("kpis.parquet"), f"results {store.shown!r}") from None
    finally:
        con.close()
    target = Path(out) if out is not None else (Path(path) if Path(path).is_dir() else Path(path).parent)
    target.mkdir(parents=True, exist_ok=True)
    units = {
        str((meta.get("config") or {}).get("scenario", {}).get("time_unit", "week")) for _, meta in store.runs
    }
    time_unit = units.pop() if len(units) == 1 else "period"
    written = []
    envs = list(frame.groupby("environment", observed=True)) if "environment" in frame else [("all", frame)]
    for env, df in envs:
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", str(env))
        file = target / f"kpis_{name}.png"
        atomic_write(file, lambda p, df=df: fan_chart(df, p, kpis, time_unit=time_unit))
        written.append(file)
    return written


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``orgsim-results: error: ...``, and exit
    status 2 (argparse's own print the usage first)."""

    def error(self, message: str):
        self.exit(2, f"orgsim-results: error: {' '.join(message.split())}\n")


def _columns(text: str, option: str = "--by", example: str = "strategy,environment") -> tuple[str, ...]:
    """Comma-separated names, none of them empty (``""``: none)."""
    if not text.strip():
        return ()
    names = tuple(c.strip() for c in text.split(","))
    if not all(names):
        raise ValueError(f"{option} == {text!r}, must be comma-separated column names, e.g. {example}")
    return names


def _unit(name: str) -> str:
    return OUTCOMES[name][2] if name in OUTCOMES else ""


def format_summary(table: pd.DataFrame) -> str:
    """:func:`summarize`'s table as text: each outcome as ``mean ± s.e.`` under a header with
    its unit (shares in %)."""
    names = [c[: -len("_se")] for c in table.columns if c.endswith("_se") and c[: -len("_se")] in table]
    out = table.drop(columns=[n + "_se" for n in names] + names).copy()
    for name in names:
        unit = _unit(name)
        share = unit == "share"

        def cell(m, e, share=share):
            if pd.isna(m):
                return "-"
            text = f"{m:.1%}" if share else f"{m:,.1f}"
            if pd.notna(e):
                text += f" ± {e:.1%}" if share else f" ± {e:,.1f}"
            return text

        header = f"{name} ({unit})" if unit and not share else (f"{name} (%)" if share else name)
        out[header] = [cell(m, e) for m, e in zip(table[name], table[name + "_se"])]
    lines = out.to_string(index=False)
    return lines + "\nmean ± standard error of the mean over firms (s/√n); MU: money units"


def main(argv: list[str] | None = None) -> int:
    """``orgsim-results summarize PATH``: print a table per strategy and environment;
    ``orgsim-results plot PATH``: draw the store's KPIs per strategy and environment."""
    from .plots import use_headless_backend

    use_headless_backend()
    parser = _Parser(prog="orgsim-results", description="Query orgsim results stores.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summarize", help="a table per strategy and environment")
    p.add_argument("path", help="a run or sweep directory (searched recursively), or a run's kpis.parquet")
    p.add_argument("--by", default="strategy,environment", help="comma-separated grouping columns")
    p.add_argument(
        "--outcomes",
        default=None,
        help="comma-separated outcomes (default: by the layers the runs have on): "
        + ", ".join(OUTCOMES)
        + ", or a KPI column (its per-firm mean)",
    )
    q = sub.add_parser("plot", help="fan charts of the KPIs per strategy, one PNG per environment")
    q.add_argument("path", help="a run or sweep directory (searched recursively), or a run's kpis.parquet")
    q.add_argument("--out", default=None, help="directory for the PNG files (default: PATH, or its run)")
    q.add_argument("--kpis", default=None, help="comma-separated KPI columns (default: the key KPIs)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if args.command == "summarize":
                outcomes = None
                if args.outcomes is not None:
                    outcomes = _columns(args.outcomes, "--outcomes", "cumulative_fcf,fill_rate")
                text = format_summary(summarize(args.path, _columns(args.by), outcomes))
            else:
                kpis = None if args.kpis is None else _columns(args.kpis, "--kpis", "cash,fill_rate")
                written = plot(args.path, args.out, kpis)
                text = "\n".join(str(f) for f in written)
        for w in caught:
            if issubclass(w.category, UserWarning):
                print(f"orgsim-results: warning: {w.message}", file=sys.stderr)
    except Exception as exc:  # e.g. a grouping column that does not exist
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"orgsim-results: error: {first}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        builtins.print(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
