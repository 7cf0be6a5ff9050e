"""The parameter tables of docs/model.md §12 against the config they document.

The tables are generated from the fields' declarations (``orgsim.config.parameters()``) and
from ``conf/`` by ``python -m orgsim._param_table``. These tests regenerate them in memory and
fail when the document differs, and they check the generator itself without trusting it: the
rows are parsed back from the document, and each range, default and "shipped configs" cell is
compared with what validation, ``Config()`` and Hydra's composition actually do.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from omegaconf import OmegaConf

from orgsim import _param_table as table
from orgsim.config import (
    _SECTIONS,
    Config,
    ConfigError,
    compose_hydra,
    config_dir,
    config_from_dict,
    job_dict,
    parameters,
)

DOC = table.DOC
STAGES = Config().network.stages


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def rows() -> dict[str, list[str]]:
    """``{key: cells}`` of every row of the generated tables, parsed from the document."""
    text = doc_text()
    block = text[text.index(table.BEGIN) : text.index(table.END)]
    out: dict[str, list[str]] = {}
    for line in block.splitlines():
        m = re.match(r"^\| `([^`]+)` \| (.*) \|$", line)
        if m:
            assert m.group(1) not in out, f"{m.group(1)} has two rows"
            out[m.group(1)] = [m.group(1), *m.group(2).split(" | ")]
    return out


COLUMN = {name: k for k, name in enumerate(table.COLUMNS)}


def parse_number(text: str) -> int | float:
    """A number as the tables print it (10⁶, 2⁶³ − 1, 50 000, −0.9) back as a Python number."""
    t = text.replace("−", "-").replace(" ", "")
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("-")
    if t == "2⁶³-1":
        return sign * (2**63 - 1)
    m = re.fullmatch(r"10([⁰¹²³⁴⁵⁶⁷⁸⁹]+)", t)
    if m:
        return sign * 10 ** int(m.group(1).translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")))
    return sign * (int(t) if t.isdigit() else float(t))


def get(cfg: Config, key: str):
    section, _, name = key.rpartition(".")
    return getattr(getattr(cfg, section) if section else cfg, name)


def nest(key: str, value) -> dict:
    section, _, name = key.rpartition(".")
    return {section: {name: value}} if section else {name: value}


# -- the document is what the generator writes --------------------------------------------------
def test_the_tables_in_the_doc_are_generated_from_the_config():
    text = doc_text()
    new = table.update(text)
    if new != text:
        diff = "\n".join(
            list(
                difflib.unified_diff(text.splitlines(), new.splitlines(), "docs/model.md", "generated", n=0)
            )[:12]
        )
        pytest.fail(f"docs/model.md §12 is out of date; run `python -m orgsim._param_table`:\n{diff}")


def test_the_generated_block_lies_in_section_12_and_covers_every_field():
    text = doc_text()
    start, end = text.index("\n## 12 Parameters\n"), text.index("\n## 13 ")
    assert start < text.index(table.BEGIN) < text.index(table.END) < end
    assert text.count(table.BEGIN) == text.count(table.END) == 1
    assert set(rows()) == set(parameters())


def test_a_changed_declaration_changes_its_row_only(monkeypatch):
    """The check above can fail: a declaration changed in the code gives another table, in the
    one row of that field."""
    before = table.tables().splitlines()
    changed = dict(parameters())
    changed["policy.theta"] = dataclasses.replace(changed["policy.theta"], hi=0.5)
    monkeypatch.setattr(table, "parameters", lambda: changed)
    after = table.tables().splitlines()
    differing = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(differing) == 1 and differing[0][0].startswith("| `policy.theta` |")
    assert "[0, 0.5]" in differing[0][1] and "[0, 1]" in differing[0][0]


def test_the_check_command_reports_a_stale_doc_and_rewrites_it(tmp_path, capsys):
    stale = tmp_path / "model.md"
    text = doc_text()
    row = " | ".join(rows()["demand.cv"][1:])
    assert text.count(row) == 1 and "| [0, 2] |" in row
    stale.write_text(text.replace(row, row.replace("| [0, 2] |", "| [0, 3] |")), encoding="utf-8")
    assert table.main(["--doc", str(stale), "--check"]) == 1
    assert "out of date" in capsys.readouterr().out
    assert table.main(["--doc", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == text
    assert table.main(["--doc", str(stale), "--check"]) == 0


def test_update_keeps_the_text_around_the_markers_and_needs_them():
    text = f"# head\n\nhand-written\n\n{table.BEGIN}\nold rows\n{table.END}\n\ntail\n"
    new = table.update(text)
    assert new.startswith(f"# head\n\nhand-written\n\n{table.BEGIN}\n") and new.endswith(
        f"{table.END}\n\ntail\n"
    )
    assert "old rows" not in new and "| `policy.theta` |" in new
    for broken in ("no markers", f"{table.END}\n{table.BEGIN}", f"{table.BEGIN}\n{table.BEGIN}\n{table.END}"):
        with pytest.raises(ValueError, match="the document needs one"):
            table.update(broken)


# -- each cell states what the code does -----------------------------------------------------------
RANGE = re.compile(
    r"^(?P<stage>per stage, )?(?P<null>(each )?null or )?(?P<int>integer )?(in )?"
    r"(?P<open>[\[(])(?P<lo>[^,]+), (?P<hi>[^\])]+)(?P<close>[\])])(; .+)?$"
)
NUMBER_ROWS = [k for k, p in parameters().items() if p.kind == "number"]


@pytest.mark.parametrize("key", NUMBER_ROWS)
def test_the_range_column_is_what_validation_enforces(key):
    """Each bound printed in the doc is accepted when closed and rejected when open, a value just
    beyond it is rejected with the bound in the message, and "integer" and "null" hold."""
    cell = rows()[key][COLUMN["range"]]
    m = RANGE.match(cell)
    assert m, f"{key}: unreadable range {cell!r}"
    lo, hi, integer = parse_number(m["lo"]), parse_number(m["hi"]), bool(m["int"])

    def check(value):
        cfg = config_from_dict(nest(key, value))
        return get(cfg, key)[0] if m["stage"] else get(cfg, key)

    for bound, is_open, sign in ((lo, m["open"] == "(", -1), (hi, m["close"] == ")", 1)):
        beyond = bound + sign * (1 if integer else max(1e-9, abs(bound) * 1e-9))
        for value, rejected in ((bound, is_open), (beyond, True)):
            if rejected:
                with pytest.raises(ConfigError, match=r"must be [<>]=? "):
                    check(value)
            else:
                assert check(value) == bound
    inside = lo + 1 if m["open"] == "(" else lo
    if integer:
        with pytest.raises(ConfigError, match="must be an integer"):
            check(inside + 0.5)
    else:
        assert isinstance(check(inside), float)
    if m["null"]:
        assert check(None) is None
    else:
        with pytest.raises(ConfigError):
            check(None)
    assert bool(m["stage"]) == isinstance(get(Config(), key), tuple)


@pytest.mark.parametrize("key", [k for k, p in parameters().items() if p.kind == "choice"])
def test_the_choices_in_the_range_column_are_the_allowed_values(key):
    cell = rows()[key][COLUMN["range"]].split(";")[0]
    listed = re.findall(r"`([^`]+)`", cell)
    for value in listed:
        assert get(config_from_dict(nest(key, value)), key) == value
    with pytest.raises(ConfigError) as info:
        config_from_dict(nest(key, "not_a_choice"))
    assert str(info.value).endswith("must be one of " + ", ".join(map(repr, listed)))


def parse_value(cell: str):
    """A value cell (default or shipped) back as a Python value."""
    cell = re.sub(r" \(.*\)$", "", cell)  # "null (unlimited)": what null stands for
    if cell in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[cell]
    if cell.startswith("`") or cell.startswith('"'):
        return cell[1:-1]
    return parse_number(cell)


@pytest.mark.parametrize("key", list(parameters()))
def test_the_default_column_is_the_default_config(key):
    default = parse_value(rows()[key][COLUMN["schema default"]])
    got = get(Config(), key)
    if key == "network.roles":
        assert default is None and got == tuple(f"stage{k}" for k in range(STAGES))
    elif isinstance(got, tuple):
        assert got == (default,) * STAGES
    else:
        assert got == default and (type(got) is type(default) or isinstance(got, float))


#: (config, field its message names, another field the rule involves); each rule across fields
#: is checked by Config after the sections (a width rule by the network)
CROSS_FIELD = [
    ({"network": {"width": [1, 2, 1, 1]}}, "network.width", None),
    (
        {"policy": {"allow_negative_orders": True}, "network": {"width": [2, 1, 1, 1]}},
        "policy.allow_negative_orders",
        "network.width",
    ),
    (
        {"policy": {"allow_negative_orders": True, "beta": 0.6}, "network": {"integer_units": True}},
        "policy.allow_negative_orders",
        "network.integer_units",
    ),
    (
        {"network": {"integer_units": True, "initial_inventory": 12.5}},
        "network.initial_inventory",
        "network.integer_units",
    ),
    (
        {"network": {"integer_units": True}, "demand": {"level": 100.5}},
        "demand.level",
        "network.integer_units",
    ),
    ({"policy": {"allow_negative_orders": True, "beta": 0.4}}, "policy.beta", "policy.allow_negative_orders"),
    (
        {
            "policy": {"allow_negative_orders": True, "beta": 0.6},
            "culture": {"enabled": True, "beta_sensitivity": 0.5},
        },
        "culture.beta_sensitivity",
        "policy.beta",
    ),
]


@pytest.mark.parametrize(("data", "key", "other"), CROSS_FIELD, ids=[f"{k}-{o}" for _, k, o in CROSS_FIELD])
def test_every_rule_across_fields_is_stated_in_the_range_of_the_field_it_names(data, key, other):
    """The message names ``key``; the doc's range of ``key`` states the rule after a semicolon
    and names the other field involved."""
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert str(info.value).startswith(f"{key} == ")
    own, _, rule = rows()[key][COLUMN["range"]].partition("; ")
    assert rule, f"{key}: the range {own!r} states no rule beyond the field's own"
    assert other is None or f"`{other}`" in rule, f"{key}: the rule {rule!r} does not name {other}"


# -- the "shipped configs" column is what Hydra composes ---------------------------------------
def flat(job: dict) -> dict:
    out = {}
    for key, value in job.items():
        if key in _SECTIONS:
            out.update({f"{key}.{name}": v for name, v in value.items()})
        else:
            out[key] = value
    return out


OPTIONS = [(g, p.stem) for g in table.GROUPS for p in sorted((config_dir() / g).glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}-{o}" for g, o in OPTIONS])
def test_the_shipped_column_gives_every_value_hydra_composes(group, option):
    """Composing one option (with the default others) gives, for every field, the value of the
    last file in the composition order (environment, scenario, strategy, experiment) that the
    column says sets it, else the schema default: the column misses no file's setting, and lists
    none that a file does not make."""
    override = f"+experiment={option}" if group == "experiment" else f"{group}={option}"
    cfg = compose_hydra([override], hydra=True)
    choices = cfg.hydra.runtime.choices
    job = flat(job_dict(cfg))
    shipped = table.shipped_values()
    expected = flat(Config().to_dict())  # the schema defaults, as a composed dict holds them
    for g in table.GROUPS:  # in the composition order
        if choices.get(g) is None:
            continue
        for key, settings in shipped.items():
            for sg, so, value in settings:
                if (sg, so) == (g, choices[g]) and not (isinstance(value, tuple) and value[:1] == ("swept",)):
                    expected[key] = value
    assert set(job) == set(expected)
    wrong = {k: (job[k], expected[k]) for k in job if job[k] != expected[k]}
    assert not wrong, f"composed != column: {wrong}"


def test_the_primary_config_only_repeats_schema_defaults():
    """§12 says conf/config.yaml sets only n_orgs, periods, seed and engine, at their defaults,
    which is why the column need not list it."""
    primary = OmegaConf.to_container(OmegaConf.load(config_dir() / "config.yaml"), resolve=False)
    own = {k: v for k, v in primary.items() if k not in ("defaults", "hydra")}
    assert set(own) == {"n_orgs", "periods", "seed", "engine"}
    assert all(getattr(Config(), k) == v for k, v in own.items())


# -- number formatting -----------------------------------------------------------------------------
@given(
    st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
    )
)
def test_a_printed_number_reads_back_as_the_same_number(x):
    assert parse_number(table.number(x)) == x


def test_numbers_print_as_the_docs_explain():
    assert [table.number(x) for x in (10**6, 10**12, 50_000, -0.9, 2**63 - 1, 0.0015, 12.0)] == [
        "10⁶",
        "10¹²",
        "50 000",
        "−0.9",
        "2⁶³ − 1",
        "0.0015",
        "12",
    ]
    assert math.isclose(parse_number("−10⁹"), -1e9)
