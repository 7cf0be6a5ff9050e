"""The parameter tables of ``docs/model.md`` §12, generated from the config and ``conf/``.

Every column but one comes from the declaration of the field in :mod:`orgsim.config` (its
:class:`~orgsim.config.Param`: meaning, unit, range, source, and the field's default); the
"shipped configs" column lists what each shipped scenario, environment, strategy and experiment
file sets, read from the files themselves. ``tests/test_docs_parameters.py`` regenerates the
tables and fails when ``docs/model.md`` differs::

    python -m orgsim._param_table           # rewrite the tables in docs/model.md
    python -m orgsim._param_table --check   # exit status 1 if they are out of date

Only the text between the two marker comments is written; the rest of the file is left as it is.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from .config import _INT64_MAX, _SECTIONS, Config, Param, config_dir, parameters

__all__ = ["BEGIN", "END", "shipped_values", "tables", "update"]

BEGIN = "<!-- BEGIN GENERATED: parameters (python -m orgsim._param_table; edit orgsim/config.py) -->"
END = "<!-- END GENERATED: parameters -->"
DOC = Path(__file__).resolve().parent.parent / "docs" / "model.md"

#: the tables: heading and the sections in each ("" is the top level)
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("12.1 Top level", ("",)),
    ("12.2 `scenario`, `strategy`, `environment`", ("scenario", "strategy", "environment")),
    *((f"12.{k} `{name}`", (name,)) for k, name in enumerate(list(_SECTIONS)[3:], start=3)),
)
#: the config groups whose files the "shipped configs" column lists, in this order
GROUPS = ("scenario", "environment", "strategy", "experiment")
COLUMNS = ("key", "meaning", "unit", "schema default", "shipped configs", "range", "source")

_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def number(x: float) -> str:
    """A number as the tables print it: powers of ten from a million as 10⁶, the int64 maximum
    as 2⁶³ − 1, integers in groups of three digits (50 000), a true minus sign."""
    if x < 0:
        return "−" + number(-x)
    if x == _INT64_MAX:
        return "2⁶³ − 1"
    if float(x).is_integer():
        n = int(x)
        if n >= 10**6 and str(n).rstrip("0") == "1":
            return "10" + str(len(str(n)) - 1).translate(_SUPERSCRIPT)
        return f"{n:,}".replace(",", " ")
    return repr(float(x))


def value(v: Any, p: Param | None = None, *, inner: bool = False) -> str:
    """A config value as the tables print it (strings in code font, free text in quotes)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return number(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x, p, inner=True) for x in v) + "]"
    if p is not None and p.kind == "text":
        return f'"{v}"'
    return str(v) if inner else f"`{v}`"


def interval(p: Param) -> str:
    """``[lo, hi]``, with a parenthesis at an open end."""
    return f"{'(' if p.lo_open else '['}{number(p.lo)}, {number(p.hi)}{')' if p.hi_open else ']'}"


def range_text(p: Param) -> str:
    """What validation allows, in words (the rule added by code, ``p.rule``, last)."""
    if p.kind == "number":
        text = ("integer in " if p.integer else "") + interval(p)
        if p.nullable:
            text = ("each " if p.per_stage else "") + "null or " + (text if p.integer else "in " + text)
        if p.per_stage:
            text = "per stage, " + text
    elif p.kind == "choice":
        names = [f"`{c}`" for c in p.choices]
        text = ", ".join(names[:-1]) + " or " + names[-1]
    else:
        text = {
            "flag": "true or false",
            "identifier": "identifier (letters, digits, underscores)",
            "text": "a string",
            "roles": "null or a list of `network.stages` distinct identifiers",
        }[p.kind]
    return f"{text}; {p.rule}" if p.rule else text


def default_text(default: Any, p: Param) -> str:
    text = value(default, p)
    return f"{text} ({p.null_means})" if default is None and p.null_means else text


def _defaults() -> dict[str, Any]:
    """The schema default of every dotted key (the dataclass field defaults)."""
    out = {}
    for f in dataclasses.fields(Config):
        if f.name in _SECTIONS:
            out.update({f"{f.name}.{g.name}": g.default for g in dataclasses.fields(_SECTIONS[f.name])})
        else:
            out[f.name] = f.default
    return out


def _load(text: str) -> dict:
    """A YAML file's content as plain data, read as Hydra reads it (OmegaConf's YAML loader, which
    also takes ``1e-3`` for a number), interpolations left as written."""
    return OmegaConf.to_container(OmegaConf.create(text), resolve=False) if text.strip() else {}


def _group_options(root: Path, group: str) -> list[str]:
    """The group's options, the one ``conf/config.yaml`` selects first, then alphabetically."""
    options = sorted(p.stem for p in (root / group).glob("*.yaml"))
    primary = _load((root / "config.yaml").read_text())
    for entry in primary.get("defaults", []):
        if isinstance(entry, Mapping) and group in entry and entry[group] in options:
            options.remove(entry[group])
            options.insert(0, entry[group])
    return options


def _settings(path: Path, group: str, keys: Mapping[str, Param]) -> dict[str, Any]:
    """``{dotted key: value}`` that one file of ``conf/<group>/`` sets; a value a sweep ranges
    over is ``("swept", expression)``."""
    text = path.read_text()
    data = _load(text)
    if "# @package _global_" not in text:
        data = {group: data}
    out: dict[str, Any] = {}
    for key, v in data.items():
        if key == "defaults":
            continue
        if key == "hydra":
            for name, expression in (v.get("sweeper", {}).get("params", {}) or {}).items():
                if name in keys:
                    out[name] = ("swept", str(expression))
                elif name not in GROUPS and not name.startswith("hydra"):
                    raise ValueError(
                        f"{path}: hydra.sweeper.params.{name} is neither a config key nor a group"
                    )
        elif key in _SECTIONS and isinstance(v, Mapping):
            out.update({f"{key}.{name}": x for name, x in v.items()})
        else:
            out[key] = v
    unknown = sorted(set(out) - set(keys))
    if unknown:
        raise ValueError(f"{path}: {unknown[0]} is not a config key")
    return out


def shipped_values(root: Path | None = None) -> dict[str, list[tuple[str, str, Any]]]:
    """``{dotted key: [(group, option, value), ...]}``: what each shipped file of the
    :data:`GROUPS` sets, in the order the column lists the files."""
    root = Path(root or config_dir())
    keys = parameters()
    out: dict[str, list[tuple[str, str, Any]]] = {key: [] for key in keys}
    for group in GROUPS:
        for option in _group_options(root, group):
            for key, v in _settings(root / group / f"{option}.yaml", group, keys).items():
                out[key].append((group, option, v))
    return out


def shipped_text(key: str, settings: list[tuple[str, str, Any]], p: Param, root: Path) -> str:
    """The "shipped configs" cell: files that set the same value listed together."""
    if not settings:
        return "–"
    section, _, name = key.rpartition(".")
    if (
        name == "name"
        and section in GROUPS
        and all(g == section and v == option for g, option, v in settings)
        and len(settings) == len(_group_options(root, section))
    ):
        return f"each {section} file: its own name"
    cells: dict[str, list[str]] = {}
    for group, option, v in settings:
        label = f"{group} `{option}`" if group == "experiment" else option
        shown = f"swept over `{v[1]}`" if isinstance(v, tuple) and v[:1] == ("swept",) else value(v, p)
        cells.setdefault(shown, []).append(label)
    return "; ".join(f"{', '.join(labels)}: {shown}" for shown, labels in cells.items())


def tables(root: Path | None = None) -> str:
    """The §12 tables (headings and rows) as Markdown, from the config and ``conf/``."""
    root = Path(root or config_dir())
    declared, defaults, shipped = parameters(), _defaults(), shipped_values(root)
    blocks = []
    for heading, sections in TABLES:
        lines = [f"### {heading}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for key, p in declared.items():
            if key.rpartition(".")[0] not in sections:
                continue
            cells = [
                f"`{key}`",
                p.meaning,
                p.unit,
                default_text(defaults[key], p),
                shipped_text(key, shipped[key], p, root),
                range_text(p),
                p.source,
            ]
            bad = [c for c in cells if "|" in c or "\n" in c]
            if bad:
                raise ValueError(
                    f"{key}: a cell holds '|' or a line break, which breaks the table: {bad[0]!r}"
                )
            lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def update(text: str, root: Path | None = None) -> str:
    """``text`` (``docs/model.md``) with the tables between :data:`BEGIN` and :data:`END`
    regenerated; everything outside the markers is kept."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"the document needs one {BEGIN!r} and, after it, one {END!r}")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n\n{tables(root)}\n\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orgsim._param_table", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--doc", type=Path, default=DOC, help="the document to update (docs/model.md)")
    parser.add_argument("--check", action="store_true", help="only report whether it is up to date")
    args = parser.parse_args(argv)
    text = args.doc.read_text(encoding="utf-8")
    new = update(text)
    if args.check:
        print(f"{args.doc}: the parameter tables are {'up to date' if new == text else 'out of date'}")
        return int(new != text)
    if new != text:
        args.doc.write_text(new, encoding="utf-8")
    print(f"{args.doc}: parameter tables {'rewritten' if new != text else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
