"""The ``orgsim`` command: a Hydra app that simulates, summarises and writes results.

Every run writes into its Hydra run directory: ``config.yaml`` (the resolved, validated config),
``kpis.parquet`` (and ``teams.parquet`` with ``output.teams=true``), ``fan_chart.png`` and,
last, ``meta.json`` — the marker of a complete run. Each file is written to a temporary name and
renamed, so a killed run leaves no partial file. A sweep (``-m``) puts each run in
``multirun/<output.name>/<overrides>/``; running the same sweep again skips the runs whose
``meta.json`` records the same resolved config and computes the rest.

Bad values are caught before Hydra creates any output directory: the command prints one line
that names the field, its value and what is allowed, and exits with status 2. An output
directory that cannot be written gives one line and exit status 1; finished runs are kept.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .config import (
    CONF_DIR,
    ConfigError,
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
    """The output directory cannot be written (permissions, full disk, not a directory)."""


# --------------------------------------------------------------------------------------------
# validation before Hydra writes anything
# --------------------------------------------------------------------------------------------
def _expand(overrides: list[str]) -> list[list[str]]:
    """Expand sweep overrides (``a=1,2``, ``seed=range(0,3)``) into single-run override lists."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for ov in parsed:
        if ov.is_sweep_override():
            key = ov.get_key_element()
            choices.append([f"{key}={v}" for v in ov.sweep_string_iterator()])
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


def validate_overrides(overrides: list[str], multirun: bool, *, runs_write: bool = True) -> dict:
    """Compose and validate every run the command line asks for; raise ConfigError if any is bad.

    With ``runs_write`` (the runs will be computed and written) each run's memory need and output
    directory are checked too. Returns the composed ``hydra`` node (with ``_mode``, ``_run_dir``
    and ``_sweep_dir``).
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
    try:
        parsed = parser.parse_overrides(overrides)
        hydra = _hydra_view([o.input_line for o in parsed if not o.is_sweep_override()])
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
    claimed: dict[Path, str] = {}  # run directory -> run id, so two runs never share one
    for run in runs:
        try:
            data, out = _compose_run(run + place, multirun)
        except Exception as exc:
            raise ConfigError(hydra_error_line(exc)) from None
        config = config_from_dict(data)
        if runs_write:
            from .simulation import check_memory

            check_memory(config, config.output.teams)
            rid = run_id(config)
            check_free(out, config, multirun, rid)
            if out is not None and claimed.setdefault(out, rid) != rid:
                field = "hydra.sweep.subdir" if multirun else "hydra.run.dir"
                raise ConfigError(
                    f"{field} == {str(out)!r} for two runs of different configs, must differ between "
                    "runs (as the default does)"
                )
    hydra["_multirun"] = multirun
    return hydra


def _compose_run(overrides: list[str], multirun: bool) -> tuple[dict, Path | None]:
    """The config dict of one run (as :func:`orgsim.config.compose_dict`) and the directory
    Hydra will write it to: ``hydra.run.dir``, or ``hydra.sweep.dir/hydra.sweep.subdir`` (the
    override dirname, which Hydra computes from the same overrides) in a sweep; ``None`` when
    the directory depends on values Hydra sets only when the job starts."""
    from omegaconf import OmegaConf

    cfg = compose_hydra(overrides, hydra=True)
    parts = ("sweep", ("dir", "subdir")) if multirun else ("run", ("dir",))
    raw = OmegaConf.to_container(cfg.hydra[parts[0]], resolve=False)  # before interpolation
    out = None
    # hydra.job.num, id and name are set when a job is launched, not here: such a directory is
    # checked by the job itself (``_run``)
    if not any(f"hydra.job.{name}" in str(raw[k]) for k in parts[1] for name in ("num", "id", "name")):
        out = Path(*(str(cfg.hydra[parts[0]][k]) for k in parts[1]))
    return job_dict(cfg), out


def _meta(out: Path) -> dict | None:
    """The ``meta.json`` of the run directory ``out`` (a run writes it last: a complete run);
    ``None`` if there is none, ``{}`` if it is not a readable JSON object."""
    meta = out / "meta.json"
    if not meta.exists():
        return None
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def check_free(out: Path | None, config, multirun: bool, rid: str | None = None) -> None:
    """Raise ConfigError if ``out`` holds a complete run of another config (its results would be
    replaced). A complete run of the same config is fine: the run is skipped, or recomputed with
    the same numbers when it lacks team records that are now asked for."""
    if out is None:
        return
    info = _meta(Path(out))
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


def check_writable(directory: str | os.PathLike) -> None:
    """Raise OutputError unless ``directory`` (or its nearest existing parent) takes a file."""
    path = Path(directory).absolute()
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(
            f"output directory {str(path)!r} cannot be created: {str(probe)!r} is not a directory"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"output directory {str(path)!r} is not writable")


# --------------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------------
def run_id(config) -> str:
    """Key of a run: a hash of its resolved config (output options excluded)."""
    data = config.to_dict()
    data.pop("output", None)
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


def is_complete(out: Path, rid: str, *, teams: bool = False) -> bool:
    """Whether ``out`` holds the complete run ``rid`` (with its team records if ``teams``)."""
    info = _meta(out)
    if not info:
        return False
    files = info.get("files", [])
    if teams and "teams.parquet" not in files:
        return False
    return info.get("run_id") == rid and all((out / f).exists() for f in files)


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

    from .plots import fan_chart
    from .simulation import atomic_write

    config = result.config
    rid = run_id(config)
    out.mkdir(parents=True, exist_ok=True)
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
    files = result.to_parquet(out, teams=teams, extra_columns=columns, write_meta=False)
    atomic_write(out / "config.yaml", lambda p: Path(p).write_text(OmegaConf.to_yaml(config.to_dict())))
    atomic_write(out / "fan_chart.png", lambda p: fan_chart(result.kpis, p))
    names = [*(Path(f).name for f in files.values()), "config.yaml", "fan_chart.png"]
    meta = result.metadata()
    meta.update(run_id=rid, git_commit=git_commit(), overrides=list(overrides), files=names)
    atomic_write(out / "meta.json", lambda p: Path(p).write_text(json.dumps(meta, indent=2, sort_keys=True)))
    return names


def _run(cfg) -> None:
    import logging

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from .simulation import simulate

    logging.getLogger("MESA").setLevel(logging.WARNING)  # Mesa logs every step at INFO
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("hydra", None)
    config = config_from_dict(data)
    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    rid = run_id(config)
    if is_complete(out, rid, teams=config.output.teams):
        print(f"skip {out}: already complete (run {rid})")
        return
    check_free(out, config, hc.mode is not None and "MULTIRUN" in str(hc.mode), rid)
    start = time.perf_counter()
    result = simulate(config, teams=config.output.teams)  # progress bar when long, on a terminal
    try:
        write_run(result, out, overrides, teams=config.output.teams)
    except OSError as exc:
        raise OutputError(describe_os_error(exc, out)) from None
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``orgsim`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
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
    if printing or not flags & _HYDRA_INFO_FLAGS:
        try:
            hydra = validate_overrides(overrides, multirun, runs_write=not printing)
            for key in ("_run_dir", "_sweep_dir"):
                if not str(hydra[key]).strip():
                    field = "hydra.run.dir" if key == "_run_dir" else "hydra.sweep.dir"
                    raise ConfigError(f"{field} == '', must be a directory path")
            if not printing:
                check_writable(hydra["_sweep_dir"] if hydra["_multirun"] else hydra["_run_dir"])
        except ConfigError as exc:
            print(f"orgsim: error: {exc}", file=sys.stderr)
            return 2
        except OutputError as exc:
            print(f"orgsim: error: {exc}", file=sys.stderr)
            return 1
    import hydra as hydra_lib

    from .config import register_configs

    register_configs()
    app = hydra_lib.main(version_base="1.3", config_path=str(config_dir()), config_name="config")(_task)
    sys.argv = [sys.argv[0], *argv]
    app()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
