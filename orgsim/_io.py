"""File helpers shared by the results writers and readers: atomic writes and file records.

A run is complete when its ``meta.json`` exists; ``meta.json`` is written last and lists every
file of the run with its size in bytes and SHA-256 digest (:func:`file_record`). Readers and a
rerun check the files against these records (:func:`check_files`) before they trust them, so a
truncated, emptied or bit-flipped file is never served as a result.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = [
    "META_FORMAT",
    "atomic_write",
    "check_files",
    "file_record",
    "read_meta",
    "replace_section",
    "source_state",
    "write_meta",
]

#: version of the ``meta.json`` layout: 2 records each file's size and SHA-256 (``files`` is a
#: mapping); layout 1 (``files`` a list of names) cannot be verified
META_FORMAT = 2

_CHUNK = 1 << 20


def atomic_write(path: Path, write: Callable[[str], object]) -> None:
    """Write through ``write(tmp_path)`` to a temporary file beside ``path``, then rename: a
    reader sees the old file or the whole new one, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: str | os.PathLike, **extra) -> dict:
    """``{"size": bytes, "sha256": hex digest, **extra}`` of the file at ``path``."""
    path = Path(path)
    return {"size": path.stat().st_size, "sha256": _sha256(path), **extra}


def check_files(
    directory: str | os.PathLike, records: Mapping, names=None, *, checksum: bool = True
) -> str | None:
    """Why the files of a run in ``directory`` differ from their ``records`` (the ``files``
    mapping of its ``meta.json``), or ``None`` when every one matches.

    ``names`` limits the check to those files; ``checksum=False`` compares sizes only.
    """
    directory = Path(directory)
    for name in records if names is None else names:
        record = records.get(name)
        path = directory / name
        if not isinstance(record, Mapping) or "size" not in record or "sha256" not in record:
            return f"meta.json has no size and checksum for {name}"
        try:
            stat = path.stat()
        except FileNotFoundError:
            return f"{name} is missing"
        except OSError as exc:
            return f"{name} cannot be read ({exc.strerror or exc})"
        if stat.st_size != record["size"]:
            return f"{name} has {stat.st_size:,} bytes, meta.json records {record['size']:,}"
        if not checksum:
            continue
        try:
            digest = _sha256(path)
        except OSError as exc:
            return f"{name} cannot be read ({exc.strerror or exc})"
        if digest != record["sha256"]:
            return f"{name} does not match its SHA-256 checksum in meta.json (the file is damaged)"
    return None


def read_meta(directory: str | os.PathLike) -> dict | None:
    """The ``meta.json`` of the run directory (a run writes it last: a complete run); ``None``
    if there is none, ``{}`` if it is not a readable JSON object."""
    meta = Path(directory) / "meta.json"
    try:
        text = meta.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError):
        return {}
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def write_meta(directory: str | os.PathLike, meta: dict, files: Mapping[str, dict]) -> Path:
    """Write ``meta.json`` into ``directory``, last: ``meta`` with ``files`` (name -> extra
    fields such as ``rows``) recorded by :func:`file_record`, ``complete: true`` and the layout
    version. Returns its path."""
    directory = Path(directory)
    records = {name: file_record(directory / name, **extra) for name, extra in files.items()}
    data = {**meta, "files": records, "complete": True, "meta_format": META_FORMAT}
    path = directory / "meta.json"
    atomic_write(path, lambda p: Path(p).write_text(json.dumps(data, indent=2, sort_keys=True)))
    return path


def source_state(repo: Path) -> tuple[str, list[str]]:
    """The repository's short commit and the model files (under ``orgsim/`` and ``conf/``) that
    differ from it, for a report's header; ``("unknown", [])`` without git."""
    import subprocess

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "orgsim", "conf"], cwd=repo, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", []
    return commit, [line[3:] for line in dirty.splitlines() if line.strip()]


def replace_section(path: str | os.PathLike, begin: str, end: str, section: str) -> None:
    """Put ``section`` (generated text that starts with the marker ``begin`` and ends with
    ``end``) into the document at ``path`` in place of the text from ``begin`` to ``end``, or
    append it after a blank line when the document lacks the markers (or does not exist); the
    rest of the document is kept as it is. The document is replaced atomically."""
    if not (section.startswith(begin) and section.rstrip("\n").endswith(end)):
        raise ValueError(f"the section must start with {begin!r} and end with {end!r}")
    path = Path(path)
    text = path.read_text() if path.exists() else ""
    i = text.find(begin)
    j = text.find(end, i + len(begin)) if i >= 0 else -1
    if i >= 0 and j >= 0:
        text = text[:i] + section.rstrip("\n") + text[j + len(end) :]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section.rstrip("\n") + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
