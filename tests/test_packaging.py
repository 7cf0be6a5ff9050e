"""The installed package carries its configs: a wheel built from the repository composes and runs
the same ``conf/`` without the repository around it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from orgsim.config import CONF_DIR

ROOT = CONF_DIR.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # built from a copy of the sources, so no stale build/ directory of the checkout can fill in
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("orgsim", "conf"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", out, src],
        check=True,
        capture_output=True,
    )
    (path,) = out.glob("orgsim-*.whl")
    return path


def test_wheel_ships_every_config_file_unchanged(wheel):
    repo = {p.relative_to(CONF_DIR).as_posix(): p.read_bytes() for p in CONF_DIR.rglob("*.yaml")}
    with zipfile.ZipFile(wheel) as zf:
        shipped = {
            name.removeprefix("orgsim/conf/"): zf.read(name)
            for name in zf.namelist()
            if name.startswith("orgsim/conf/") and name.endswith(".yaml")
        }
    assert repo, "conf/ has no YAML files"
    assert shipped == repo


def test_installed_copy_runs_the_command_line(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    code = (
        "import sys, orgsim, orgsim.cli as cli; "
        "print(orgsim.__file__); print(cli.config_dir()); "
        "sys.exit(cli.main(['n_orgs=1', 'periods=3', 'engine=mesa', 'hydra.run.dir=out']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=run_dir, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    module_file, conf = proc.stdout.splitlines()[:2]
    assert Path(module_file).is_relative_to(site)  # the installed copy, not the repository
    assert Path(conf) == site / "orgsim" / "conf"
    meta = json.loads((run_dir / "out" / "meta.json").read_text())
    assert meta["config"]["periods"] == 3
    assert meta["git_commit"] == "unknown"  # no repository belongs to an installed copy
