"""The ``orgsim`` command: a Hydra app that simulates, summarises and writes results.

Bad values are caught before Hydra creates any output directory: the command prints one line
that names the field, its value and what is allowed, and exits with status 2.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from .config import CONF_DIR, ConfigError, compose_dict, config_from_dict, hydra_error_line

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


def _sweep_combinations(overrides: list[str]) -> list[list[str]]:
    """Expand sweep overrides (``a=1,2``, ``seed=range(0,3)``) into single-run override lists."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = []
    for ov in parsed:
        if ov.is_sweep_override():
            key = ov.get_key_element()
            choices.append([f"{key}={v}" for v in ov.sweep_string_iterator()])
        else:
            choices.append([ov.input_line])
    return [list(c) for c in itertools.product(*choices)]


def validate_overrides(overrides: list[str], multirun: bool) -> None:
    """Compose and validate every run the command line asks for; raise ConfigError if any is bad."""
    user = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    try:
        runs = _sweep_combinations(user) if multirun else [user]
    except Exception as exc:
        raise ConfigError(hydra_error_line(exc)) from None
    for run in runs:
        try:
            data = compose_dict(run)
        except Exception as exc:
            raise ConfigError(hydra_error_line(exc)) from None
        config_from_dict(data)


def _run(cfg) -> None:
    import logging

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from .simulation import simulate

    logging.getLogger("MESA").setLevel(logging.WARNING)  # Mesa logs every step at INFO
    data = OmegaConf.to_container(cfg, resolve=True)
    data.pop("hydra", None)
    data.pop("experiment", None)
    config = config_from_dict(data)
    out = Path(HydraConfig.get().runtime.output_dir)
    result = simulate(config, progress=sys.stderr.isatty())
    result.to_parquet(out, teams=config.output.teams)
    print(result.summary())
    print(f"outputs: {out}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``orgsim`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    flags = {a.split("=")[0] for a in argv if a.startswith("-")}
    multirun = bool(flags & {"-m", "--multirun"})
    if not flags & _HYDRA_INFO_FLAGS:
        overrides = [a for a in argv if not a.startswith("-")]
        try:
            validate_overrides(overrides, multirun)
        except ConfigError as exc:
            print(f"orgsim: error: {exc}", file=sys.stderr)
            return 2
    import hydra

    from .config import register_configs

    register_configs()
    app = hydra.main(
        version_base="1.3",
        config_path=str(CONF_DIR),
        config_name="config",
    )(_run)
    sys.argv = [sys.argv[0], *argv]
    app()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
