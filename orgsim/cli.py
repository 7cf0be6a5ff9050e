"""The ``orgsim`` command: a Hydra app that simulates, summarises and writes results.

Every run writes into its Hydra run directory: ``config.yaml`` (the resolved, validated config),
``kpis.parquet`` (and ``teams.parquet`` with ``output.teams=true``), ``fan_chart.png`` and,
last, ``meta.json`` — the marker of a complete run. Each file is written to a temporary name and
renamed, so a killed run leaves no partial file. A sweep (``-m``) puts each run in
``multirun/<output.name>/<overrides>/``; running the same sweep again skips the runs whose
``meta.json`` records the same resolved config and computes the rest.

Bad values are caught before Hydra creates any output directory: the command prints one line
that names the field, its value and what is allowed, and exits with status 2 (so does an output
directory that cannot be created). A write that fails during a run (a full disk) gives one line
and exit status 1; finished runs are kept.

``rules=module.Class`` (or ``+rules=``) runs the Mesa engine (``engine=mesa``) with a
researcher's :class:`orgsim.AccountabilityRule` subclass for every team (docs/custom_rules.md);
the module is imported from the working directory or the Python path, and the class name is part
of the run's id. A name that is not such a class, or another engine, is refused in one line.

A sweep whose runs are all complete (``meta.json`` present, every file matching its recorded
size and SHA-256) is not launched again: the command prints the sweep's table and returns. A
sweep prints one line per run and, at the end, one table of every run; each run's own summary
is in its ``summary.txt``.
"""

from __future__ import annotations

import copy
import errno
import hashlib
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ._io import atomic_write, check_files, read_meta, write_meta
from .config import (
    CONF_DIR,
    ConfigError,
    check_repeated,
    compose_hydra,
    config_dir,
    config_from_dict,
    hydra_error_line,
    job_dict,
)

_HYDRA_INFO_FLAGS = {
    "--help",
    "-h",
    "--hydra-help",
    "--info",
    "-i",
    "--cfg",
    "-c",
    "--resolve",
    "--version",
    "--shell-completion",
    "-sc",
}
# flags that print the composed config instead of running: the config is still validated, but
# nothing is written, so output directories and memory are not checked
_PRINT_FLAGS = {"--cfg", "-c", "--resolve", "--info", "-i"}


class OutputError(RuntimeError):
    """A run's outputs could not be written (a full disk, a directory removed under it)."""


# --------------------------------------------------------------------------------------------
# validation before Hydra writes anything
# --------------------------------------------------------------------------------------------
def _expand(overrides: list[str]) -> list[list[str]]:
    """Expand sweep overrides (``a=1,2``, ``seed=range(0,3)``) into single-run override lists.

    A sweep that cannot be expanded (``seed=range(0,3,0)``) is a ConfigError naming its key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for ov in parsed:
        if ov.is_sweep_override():
            key = ov.get_key_element()
            try:
                values = list(ov.sweep_string_iterator())
            except Exception as exc:
                value = ov.input_line.partition("=")[2]
                raise ConfigError(
                    f"{key.lstrip('+~')} == {value!r}, must be a sweep that gives values ({hydra_error_line(exc)})"
                ) from None
            choices.append([f"{key}={v}" for v in values])
        else:  # as Hydra's sweeper writes it, so the override dirname is the one Hydra uses
            choices.append([f"{ov.get_key_element()}={ov.get_value_element_as_str()}"])
    return [list(c) for c in itertools.product(*choices)]


def _hydra_view(overrides: list[str]) -> dict:
    """The ``hydra`` node composed for these overrides (mode, sweeper params, run dirs)."""
    from omegaconf import OmegaConf

    cfg = compose_hydra(overrides, hydra=True)
    hydra = OmegaConf.to_container(cfg.hydra, resolve=False)
    hydra["_mode"] = str(cfg.hydra.mode) if cfg.hydra.mode is not None else "RUN"
    try:
        hydra["_run_dir"] = str(cfg.hydra.run.dir)
    except Exception:  # pragma: no cover - ${now:} and friends are resolvable here
        hydra["_run_dir"] = "."
    hydra["_sweep_dir"] = str(OmegaConf.select(cfg, "hydra.sweep.dir", default="multirun"))
    return hydra


@dataclass
class PlannedRun:
    """One run of the command line, composed and validated before Hydra starts."""

    overrides: list[str]  #: the run's own overrides, as Hydra's sweeper writes them
    config: object  #: its validated Config
    out: Path | None  #: its directory (None: Hydra names it when the job starts)
    run_id: str
    done: bool = False  #: complete and verified before this command
    why: str | None = None  #: why an earlier run in ``out`` is computed again


class _Composer:
    """Composes the runs of one command line: Hydra composes each distinct choice of config
    groups once, and a run's value overrides are applied to a copy as Hydra applies them after
    composing (``ConfigLoaderImpl._apply_overrides_to_config``), with Hydra's bookkeeping
    (``hydra.overrides.task``, ``hydra.job.override_dirname``). A sweep of 75 runs over 15
    choices of groups composes 15 times instead of 75; ``tests/test_cli.py`` checks that every
    run equals a full compose."""

    def __init__(self, overrides: list[str]):
        self._groups = self._group_names(overrides)
        self._base: dict[tuple[str, ...], object] = {}

    @staticmethod
    def _group_names(overrides: list[str]) -> set[str]:
        roots = [config_dir()]
        for ov in overrides:
            key, _, value = ov.partition("=")
            if key == "hydra.searchpath":
                roots += [
                    Path(p.strip().removeprefix("file://")) for p in value.strip("[]").split(",") if p.strip()
                ]
        return {d.name for root in roots if root.is_dir() for d in root.iterdir() if d.is_dir()}

    def _composes(self, ov) -> bool:
        """Whether an override takes part in composing (a config group choice, the search path)."""
        key = ov.key_or_group
        return "/" in key or key in self._groups or key == "hydra.searchpath" or ov.package is not None

    def __call__(self, overrides: list[str]):
        from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.types import RunMode
        from omegaconf import OmegaConf, open_dict

        parsed = OverridesParser.create().parse_overrides(overrides)
        # as Hydra refuses a sweep value in a single run ("Ambiguous value for argument ...")
        ConfigLoaderImpl.validate_sweep_overrides_legal(parsed, run_mode=RunMode.RUN, from_shell=True)
        groups = tuple(o.input_line for o in parsed if self._composes(o))
        if groups not in self._base:
            self._base[groups] = compose_hydra(list(groups), hydra=True)
        cfg = copy.deepcopy(self._base[groups])
        values = [o for o in parsed if not self._composes(o)]
        ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        task = [o for o in parsed if not o.is_hydra_override()]
        with open_dict(cfg.hydra):
            cfg.hydra.overrides.task = [o.input_line for o in task]
            cfg.hydra.overrides.hydra = [o.input_line for o in parsed if o.is_hydra_override()]
            cfg.hydra.job.override_dirname = get_overrides_dirname(
                overrides=task,
                kv_sep=cfg.hydra.job.config.override_dirname.kv_sep,
                item_sep=cfg.hydra.job.config.override_dirname.item_sep,
                exclude_keys=OmegaConf.to_container(cfg.hydra.job.config.override_dirname.exclude_keys),
            )
        return cfg


def validate_overrides(overrides: list[str], multirun: bool, *, runs_write: bool = True) -> dict:
    """Compose and validate every run the command line asks for; raise ConfigError if any is bad.

    With ``runs_write`` (the runs will be computed and written) each run's memory need and output
    directory are checked too, and each run's earlier files are verified. Returns the composed
    ``hydra`` node (with ``_mode``, ``_run_dir``, ``_sweep_dir``, ``_multirun`` and ``_runs``,
    the list of :class:`PlannedRun`).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    user = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    parser = OverridesParser.create()
    for ov in overrides:  # name the field of an override that does not parse
        try:
            parser.parse_overrides([ov])
        except Exception as exc:
            key, _, value = ov.partition("=")
            reason = hydra_error_line(exc)
            raise ConfigError(
                f"{key.lstrip('+~')} == {value!r}, must be a valid override value ({reason})"
            ) from None
    check_repeated(overrides)
    try:
        parsed = parser.parse_overrides(overrides)
        hydra = _hydra_view([o.input_line for o in parsed if not o.is_sweep_override()])
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(hydra_error_line(exc)) from None
    multirun = multirun or "MULTIRUN" in hydra["_mode"]
    try:
        if multirun:
            params = (hydra.get("sweeper") or {}).get("params") or {}
            given = {o.split("=", 1)[0].lstrip("+~") for o in user}
            extra = [f"{k}={v}" for k, v in params.items() if k not in given]
            runs = _expand(user + extra)
        else:
            runs = [user]
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(hydra_error_line(exc)) from None
    if not runs:
        empty = [
            o.input_line for o in parsed if o.is_sweep_override() and not list(o.sweep_string_iterator())
        ]
        raise ConfigError(f"{empty[0] if empty else 'the sweep'} gives no runs, must give at least one value")
    n_jobs = (hydra.get("launcher") or {}).get("n_jobs")
    if (
        multirun
        and n_jobs is not None
        and not (isinstance(n_jobs, str) and "${" in n_jobs)  # an interpolation, resolved by Hydra
        and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0)
    ):
        raise ConfigError(
            f"hydra.launcher.n_jobs == {n_jobs!r}, must be a non-zero integer (-1: one job per core)"
        )
    # Hydra's own overrides (hydra.run.dir, hydra.sweep.subdir, ...) place the runs
    place = [o.input_line for o in parsed if not o.is_sweep_override() and o.input_line not in user]
    compose_run = _Composer(overrides)
    claimed: dict[Path, str] = {}  # run directory -> run id, so two runs never share one
    planned = []
    for run in runs:
        try:
            data, out = _compose_run(compose_run(run + place), multirun)
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(hydra_error_line(exc)) from None
        config = config_from_dict(data)
        item = PlannedRun(run, config, out, run_id(config))
        if runs_write:
            from .schema import check_memory

            check_memory(config, config.output.teams)
            check_free(out, config, multirun, item.run_id)
            if out is not None and claimed.setdefault(out, item.run_id) != item.run_id:
                field = "hydra.sweep.subdir" if multirun else "hydra.run.dir"
                raise ConfigError(
                    f"{field} == {str(out)!r} for two runs of different configs, must differ between "
                    "runs (as the default does)"
                )
            if out is not None:
                item.done, item.why = run_status(out, item.run_id, teams=config.output.teams)
        planned.append(item)
    hydra["_multirun"] = multirun
    hydra["_runs"] = planned
    return hydra


def _compose_run(cfg, multirun: bool) -> tuple[dict, Path | None]:
    """The config dict of one composed run (as :func:`orgsim.config.compose_dict`) and the
    directory Hydra will write it to: ``hydra.run.dir``, or ``hydra.sweep.dir/hydra.sweep.subdir``
    (the override dirname, which Hydra computes from the same overrides) in a sweep; ``None``
    when the directory depends on values Hydra sets only when the job starts."""
    from omegaconf import OmegaConf

    parts = ("sweep", ("dir", "subdir")) if multirun else ("run", ("dir",))
    raw = OmegaConf.to_container(cfg.hydra[parts[0]], resolve=False)  # before interpolation
    out = None
    # hydra.job.num, id and name are set when a job is launched, not here: such a directory is
    # checked by the job itself (``_run``)
    if not any(f"hydra.job.{name}" in str(raw[k]) for k in parts[1] for name in ("num", "id", "name")):
        out = Path(*(str(cfg.hydra[parts[0]][k]) for k in parts[1]))
    return job_dict(cfg), out


def check_free(out: Path | None, config, multirun: bool, rid: str | None = None) -> None:
    """Raise ConfigError if ``out`` holds a complete run of another config (its results would be
    replaced). A complete run of the same config is fine: the run is skipped, or recomputed with
    the same numbers when it lacks team records that are now asked for."""
    if out is None:
        return
    info = read_meta(Path(out))
    if info is None:
        return
    old = info.get("run_id")
    if old == (rid or run_id(config)):
        return
    what = f"a complete run of another config, run {old}" if old else "a meta.json without this run's id"
    if multirun:
        raise ConfigError(
            f"output.name == {config.output.name!r}, must name a sweep whose run directories hold no other "
            f"config's run: {str(out)!r} holds {what}; choose another output.name or remove that run"
        )
    raise ConfigError(
        f"hydra.run.dir == {str(out)!r}, must be a directory without another config's run: it holds "
        f"{what}; choose another directory or remove that run"
    )


def check_writable(directory: str | os.PathLike, field: str = "hydra.run.dir") -> None:
    """Raise ConfigError (naming ``field``) unless ``directory`` can be created and written: its
    nearest existing parent is a directory that takes a new directory (tried, and removed at
    once: ``os.access`` says yes as root even where the kernel says no, as in ``/proc``)."""
    shown = str(directory)
    path = Path(directory).absolute()
    probe = path
    while not probe.exists():
        probe = probe.parent
    rule = "a directory that can be created and written"
    if not probe.is_dir():
        raise ConfigError(f"{field} == {shown!r}, must be {rule}: {str(probe)!r} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"{field} == {shown!r}, must be {rule}: {str(probe)!r} is not writable")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".orgsim-probe-", dir=probe))
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(
            f"{field} == {shown!r}, must be {rule}: {str(probe)!r} refuses new directories ({reason})"
        ) from None


# --------------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------------
def run_id(config) -> str:
    """Key of a run: a hash of its resolved config (output options excluded) and of the
    accountability rule class named by ``rules=``, if any."""
    data = config.to_dict()
    data.pop("output", None)
    if os.environ.get(RULES_ENV):
        data["rules"] = os.environ[RULES_ENV]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def git_commit() -> str:
    """The repository's commit, or ``"unknown"`` for an installed copy (its configs are the
    package's, so a repository around the installation says nothing about the code)."""
    if config_dir() != CONF_DIR:
        return "unknown"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=CONF_DIR.parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except Exception:  # pragma: no cover - no git
        return "unknown"


def _typed(config, key: str):
    """The resolved value behind an override key, as a Parquet column value: a group key gives
    the option's name, a whole section (``network={...}``, ``~network``) its values as JSON."""
    import dataclasses

    obj = config
    for part in key.split("."):
        obj = getattr(obj, part)
    if hasattr(obj, "name") and not isinstance(obj, str):
        return obj.name
    if dataclasses.is_dataclass(obj):
        return json.dumps(dataclasses.asdict(obj), sort_keys=True)
    return list(obj) if isinstance(obj, tuple) else obj


def run_status(out: Path, rid: str, *, teams: bool = False) -> tuple[bool, str | None]:
    """Whether ``out`` holds the complete run ``rid`` (with its team records if ``teams``) with
    every file as its ``meta.json`` records it (size and SHA-256); if not, why it must be
    computed again (``None``: there is no run to recompute)."""
    info = read_meta(out)
    if info is None:
        return False, None
    if not info:
        return False, "its meta.json does not read as a JSON object"
    if info.get("run_id") != rid:
        return False, f"it holds run {info.get('run_id')}, not {rid}"
    files = info.get("files")
    if not isinstance(files, dict) or not info.get("complete"):
        return False, "its meta.json records no file checksums (written by an older orgsim)"
    if teams and "teams.parquet" not in files:
        return False, "it has no team records, and output.teams=true asks for them"
    problem = check_files(out, files)
    return (problem is None), problem


def describe_os_error(exc: OSError, out: Path) -> str:
    """One line for a failed write."""
    reason = (
        "the disk is full"
        if exc.errno == errno.ENOSPC
        else (os.strerror(exc.errno) if exc.errno else str(exc))
    )
    return f"cannot write outputs to {str(out)!r}: {reason}"


def write_run(result, out: Path, overrides: list[str], *, teams: bool) -> list[str]:
    """Write one run's files into ``out`` (``meta.json`` last); return the file names."""
    from omegaconf import OmegaConf

    from .plots import fan_chart, key_kpis, use_headless_backend

    use_headless_backend()

    config = result.config
    rid = run_id(config)
    out.mkdir(parents=True, exist_ok=True)
    (out / "meta.json").unlink(missing_ok=True)  # the directory holds no complete run until it is rewritten
    for stale in out.glob(".*.tmp"):  # left by a run that was killed while writing
        stale.unlink(missing_ok=True)
    if not teams:  # team records of an earlier, unfinished run must not pass as this run's
        (out / "teams.parquet").unlink(missing_ok=True)
    columns = {"run_id": rid, "scenario": config.scenario.name, "environment": config.environment.name}
    columns.update({"seed": config.seed, "engine": result.engine})
    for ov in overrides:
        key = ov.split("=", 1)[0].lstrip("+~")
        if key.startswith("hydra") or key in ("strategy", "family") or key in columns:
            continue
        try:
            value = _typed(config, key)
        except AttributeError:
            continue
        columns[key] = json.dumps(value) if isinstance(value, list) else value
    written = result.to_parquet(out, teams=teams, extra_columns=columns, write_meta=False)
    atomic_write(out / "config.yaml", lambda p: Path(p).write_text(OmegaConf.to_yaml(config.to_dict())))
    shown = key_kpis(config.finance.enabled, config.culture.enabled)
    kpis = result.kpis.assign(scenario=config.scenario.name, environment=config.environment.name)
    atomic_write(
        out / "fan_chart.png",
        lambda p: fan_chart(kpis, p, shown, time_unit=config.scenario.time_unit),
    )
    atomic_write(out / "summary.txt", lambda p: Path(p).write_text(result.summary() + "\n"))
    files = {**result.file_rows(written), "config.yaml": {}, "fan_chart.png": {}, "summary.txt": {}}
    meta = result.metadata()
    meta.update(run_id=rid, git_commit=git_commit(), overrides=list(overrides), headline=result.headline())
    write_meta(out, meta, files)
    return list(files)


#: where ``main`` leaves the ``rules=module.Class`` of the command line for the runs (a sweep's
#: workers inherit the environment)
RULES_ENV = "ORGSIM_RULES"


def load_rules(spec: str):
    """The :class:`orgsim.AccountabilityRule` subclass named ``module.Class`` (the module is
    imported from the working directory or the Python path); ConfigError if it is not one."""
    from .management import AccountabilityRule

    module, _, name = spec.rpartition(".")
    if not module or not name.isidentifier():
        raise ConfigError(f"rules == {spec!r}, must be module.Class (an AccountabilityRule subclass)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        import importlib

        found = getattr(importlib.import_module(module), name, None)
    except Exception as exc:
        raise ConfigError(
            f"rules == {spec!r}, must name an importable module ({type(exc).__name__}: {exc})"
        ) from None
    if not (isinstance(found, type) and issubclass(found, AccountabilityRule)):
        raise ConfigError(f"rules == {spec!r}, must name an AccountabilityRule subclass, got {found!r}")
    return found


def _check_rules_runs(spec: str, runs: list[PlannedRun]) -> None:
    """ConfigError unless every run can use the rule class ``spec``: the Mesa engine, and a
    rule that can be made for every team."""
    from .engine_mesa import check_rules
    from .network import build_network

    rules = load_rules(spec)
    for run in runs:
        if run.config.engine != "mesa":
            raise ConfigError(
                f"rules == {spec!r} needs engine=mesa (the numba engine runs the built-in rules only), "
                f"got engine == {run.config.engine!r}"
            )
    try:
        check_rules(rules, build_network(runs[0].config), runs[0].config)
    except (TypeError, ValueError, NotImplementedError) as exc:
        raise ConfigError(f"rules == {spec!r}, must make a rule for every team ({exc})") from None


def _run(cfg) -> None:
    import logging

    from hydra.core.hydra_config import HydraConfig

    from .simulation import simulate

    logging.getLogger("MESA").setLevel(logging.WARNING)  # Mesa logs every step at INFO
    config = config_from_dict(job_dict(cfg))
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    rid = run_id(config)
    multirun = hc.mode is not None and "MULTIRUN" in str(hc.mode)
    check_free(out, config, multirun, rid)
    done, why = run_status(out, rid, teams=config.output.teams)
    if done:
        print(f"skip {out}: already complete (run {rid}, files verified)")
        return
    if why:
        print(f"recompute {out}: {why}")
    start = time.perf_counter()
    spec = os.environ.get(RULES_ENV)
    rules = load_rules(spec) if spec else None
    if spec:
        overrides.append(f"rules={spec}")
    # progress bar when long, on a terminal
    result = simulate(config, teams=config.output.teams, rules=rules)
    try:
        write_run(result, out, overrides, teams=config.output.teams)
    except OSError as exc:
        raise OutputError(describe_os_error(exc, out)) from None
    if multirun:  # the sweep prints one table at the end; the run's summary is in summary.txt
        print(f"done {out} ({time.perf_counter() - start:.1f} s)", flush=True)
    else:
        print(result.summary())
        print(f"outputs: {out} ({time.perf_counter() - start:.1f} s)")


def _task(cfg) -> None:
    try:
        _run(cfg)
    except OutputError as exc:
        print(f"orgsim: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except ConfigError as exc:
        print(f"orgsim: error: {exc}", file=sys.stderr)
        sys.exit(2)


def _cell(value: dict | None) -> str:
    if not value or value.get("mean") is None:
        return "-"
    share = value.get("unit") == "share"
    text = f"{value['mean']:.1%}" if share else f"{value['mean']:,.1f}"
    if value.get("se") is not None:
        text += f" ± {value['se']:.1%}" if share else f" ± {value['se']:,.1f}"
    return text


def sweep_table(runs: list[PlannedRun]) -> str:
    """One line per run of a sweep: the overrides that vary, whether it was computed now or
    skipped, and its headline outcomes (mean ± standard error over its firms) from meta.json."""
    keys: dict[str, set[str]] = {}
    for run in runs:
        for ov in run.overrides:
            key, _, value = ov.partition("=")
            keys.setdefault(key.lstrip("+~"), set()).add(value)
    varying = [k for k, values in keys.items() if len(values) > 1] or list(keys)[:1]
    rows, outcomes = [], {}
    for run in runs:
        values = dict(ov.lstrip("+~").partition("=")[::2] for ov in run.overrides)
        meta = read_meta(run.out) if run.out is not None else None
        row = {k: values.get(k, "") for k in varying}
        row["status"] = (
            "skipped" if run.done else ("computed" if meta and meta.get("complete") else "not written")
        )
        headline = (meta or {}).get("headline") or {}
        row["firms"] = run.config.n_orgs
        for name in ("cumulative_fcf", "survival", "fill_rate", "operating_cost"):
            if name in headline:
                unit = headline[name].get("unit")
                outcomes[name] = f"{name} ({'%' if unit == 'share' else unit})"
                row[outcomes[name]] = _cell(headline[name])
        rows.append(row)
    if "cumulative_fcf" in outcomes and "operating_cost" in outcomes:  # with finance: the financial outcomes
        outcomes.pop("operating_cost")
    columns = [*varying, "status", "firms", *outcomes.values()]
    cells = [[str(c) for c in columns]] + [[str(row.get(c, "-")) for c in columns] for row in rows]
    widths = [max(len(line[j]) for line in cells) for j in range(len(columns))]
    text = "\n".join(" ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in cells)
    computed = sum(r["status"] == "computed" for r in rows)
    skipped = sum(r["status"] == "skipped" for r in rows)
    return (
        f"sweep: {len(runs)} runs, {computed} computed now, {skipped} skipped (complete before)\n{text}\n"
        "mean ± standard error of the mean over the run's firms; each run's summary.txt has more"
    )


#: Hydra's flags that take a value ("--flag value" or "--flag=value")
_VALUE_FLAGS = {
    "--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd", "--cfg", "-c",
    "--package", "-p", "--experimental-rerun", "--shell-completion", "-sc",
}  # fmt: skip
_INFO_VALUES = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def _check_arguments(argv: list[str]) -> None:
    """Raise ConfigError for an argument that is neither a flag, a flag's value nor an override
    (``""``, ``n_orgs``): Hydra would stop with a message that names nothing."""
    previous = ""
    for arg in argv:
        takes_value = previous in _VALUE_FLAGS or (previous in ("--info", "-i") and arg in _INFO_VALUES)
        if not arg.startswith("-") and "=" not in arg and not arg.startswith("~") and not takes_value:
            raise ConfigError(f"override == {arg!r}, must be key=value (e.g. n_orgs=4) or a flag such as -m")
        previous = arg if arg.startswith("-") and "=" not in arg else ""


def _prepare_numba(runs: list[PlannedRun]) -> None:
    """Before a sweep starts its workers: if a numba run is to be computed and Numba's cache
    lacks the kernel, compile it here once (with one line saying so), so that the workers load
    it instead of compiling side by side."""
    todo = [r for r in runs if not r.done and r.config.engine == "numba"]
    if not todo:
        return
    from . import engine_numba
    from .simulation import simulate

    if engine_numba.cached_on_disk() is not False:
        return
    for teams in sorted({r.config.output.teams for r in todo}):
        cfg = next(r.config for r in todo if r.config.output.teams == teams)
        simulate(cfg.replace(n_orgs=1, periods=1), teams=teams)  # prints the compile notice


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``orgsim`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # rules=module.Class (or +rules=): the Mesa engine's accountability rule class, not a config key
    given_rules = [a for a in argv if a.split("=", 1)[0].lstrip("+") == "rules" and "=" in a]
    argv = [a for a in argv if a not in given_rules]
    spec = given_rules[-1].split("=", 1)[1] if given_rules else None
    if spec:
        os.environ[RULES_ENV] = spec
    else:
        os.environ.pop(RULES_ENV, None)
    flags = {a.split("=")[0] for a in argv if a.startswith("-")}
    multirun = bool(flags & {"-m", "--multirun"})
    printing = bool(flags & _PRINT_FLAGS)
    # the values of --cfg and --info (job, hydra, all, defaults, ...) have no "="
    overrides = [a for a in argv if not a.startswith("-") and ("=" in a or a.startswith("~"))]
    for i, arg in enumerate(argv):  # Hydra's flags that take a value, as "--flag value" or "--flag=value"
        flag, eq, value = arg.partition("=")
        if flag not in ("--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd"):
            continue
        value = value if eq else (argv[i + 1] if i + 1 < len(argv) else "")
        if flag in ("--config-dir", "-cd"):
            # the researcher's own config groups (e.g. experiment/mine.yaml): the validation
            # composes with them as Hydra will
            path = Path(value).expanduser().absolute()
            if not path.is_dir():
                print(f"orgsim: error: {flag} == {value!r}, must be a directory", file=sys.stderr)
                return 2
            overrides.append(f"hydra.searchpath=[file://{path}]")
        elif not (flag in ("--config-name", "-cn") and value == "config"):  # one primary config
            print(
                f"orgsim: error: {flag} == {value!r}, must not be given: orgsim composes "
                "conf/config.yaml (use +experiment=... or overrides)",
                file=sys.stderr,
            )
            return 2
    hydra = None
    if printing or not flags & _HYDRA_INFO_FLAGS:
        try:
            _check_arguments(argv)
            if spec:
                load_rules(spec)
            hydra = validate_overrides(overrides, multirun, runs_write=not printing)
            if spec and not printing:
                _check_rules_runs(spec, hydra["_runs"])
            for key in ("_run_dir", "_sweep_dir"):
                if not str(hydra[key]).strip():
                    field = "hydra.run.dir" if key == "_run_dir" else "hydra.sweep.dir"
                    raise ConfigError(f"{field} == '', must be a directory path")
            if not printing:
                if hydra["_multirun"]:
                    check_writable(hydra["_sweep_dir"], "hydra.sweep.dir")
                else:
                    check_writable(hydra["_run_dir"], "hydra.run.dir")
        except ConfigError as exc:
            print(f"orgsim: error: {exc}", file=sys.stderr)
            return 2
    runs = hydra["_runs"] if hydra is not None and not printing else None
    if runs and all(r.done and r.out is not None for r in runs):  # nothing to compute: no Hydra launch
        if hydra["_multirun"]:
            print(sweep_table(runs))
        else:
            print(f"skip {runs[0].out}: already complete (run {runs[0].run_id}, files verified)")
            summary = runs[0].out / "summary.txt"
            if summary.exists():
                print(summary.read_text().rstrip())
        return 0
    if runs and hydra["_multirun"]:
        _prepare_numba(runs)
    import hydra as hydra_lib

    from .config import register_configs

    register_configs()
    app = hydra_lib.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(_task)
    sys.argv = [sys.argv[0], *argv]
    app()
    if runs and hydra["_multirun"] and all(r.out is not None for r in runs):
        print(sweep_table(runs))
        if not all(r.done for r in runs):
            _sweep_figures(Path(hydra["_sweep_dir"]))
    return 0


def _sweep_figures(sweep_dir: Path) -> None:
    """Redraw the sweep directory's figures (strategies side by side, one PNG per environment)
    after new runs; a figure that cannot be drawn is reported, the runs stay as they are."""
    import warnings

    from .results import plot

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the store's warnings were the runs' own lines
            files = plot(sweep_dir)
    except Exception as exc:  # pragma: no cover - the runs are written; a figure is a bonus
        print(f"orgsim: warning: the sweep's figures were not drawn: {exc}", file=sys.stderr)
        return
    print("figures: " + ", ".join(str(f) for f in files))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
