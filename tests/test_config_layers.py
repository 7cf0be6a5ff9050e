"""Validation of the culture and management sections (``CultureConfig``, ``ManagementConfig``).

The rules are not repeated here: the tables below are read from the fields' declarations
(``orgsim.config.parameters()``, the :class:`orgsim.config.Param` in each field's metadata), and
a test checks that every field of both sections is declared with a kind these tests cover. For
each field a value just outside its declared range, of the wrong type, or not among its choices
raises :class:`orgsim.ConfigError` with one line naming the dotted field, the value and the rule,
in scikit-learn's ``check_scalar`` style ("management.bpo_target == 'x', must be one of
'worst_local', 'constraint'"); the boundaries themselves are accepted. Three routes are checked:
the dataclass itself, ``config_from_dict`` and ``Config.replace``, and Hydra overrides through
``orgsim.compose``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import pytest

import orgsim
from orgsim.config import CultureConfig, ManagementConfig, Param, parameters


@dataclass(frozen=True)
class Range:
    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False


SECTIONS = {"culture": CultureConfig, "management": ManagementConfig}

#: (section, field) -> the field's declaration, as orgsim.config declares it
DECLARED: dict[tuple[str, str], Param] = {
    tuple(key.split(".")): p for key, p in parameters().items() if key.partition(".")[0] in SECTIONS
}
#: (section, field) -> allowed range of the numeric fields
NUMERIC: dict[tuple[str, str], Range] = {
    key: Range(p.lo, p.hi, p.lo_open, p.hi_open, p.integer)
    for key, p in DECLARED.items()
    if p.kind == "number"
}
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    key: p.choices for key, p in DECLARED.items() if p.kind == "choice"
}
BOOLS = {key for key, p in DECLARED.items() if p.kind == "flag"}


def build(section: str, field: str, value):
    """The three Python routes to a config; each must accept or reject ``value`` alike."""
    return [
        lambda: SECTIONS[section](**{field: value}),
        lambda: orgsim.config_from_dict({section: {field: value}}),
        lambda: orgsim.Config().replace(**{f"{section}.{field}": value}),
    ]


def number_pattern(x) -> str:
    """A number as the message may print it (``1`` or ``1.0``)."""
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return re.escape(str(x)) + r"(\.0)?"


def bad_numbers(key: tuple[str, str]) -> list[tuple[object, str]]:
    """(value, rule the message must state) for values outside the field's range or type."""
    r = NUMERIC[key]
    step = 1 if r.integer else 0.01
    cases = [
        (r.lo if r.lo_open else r.lo - step, ("> " if r.lo_open else ">= ") + number_pattern(r.lo)),
        (r.hi if r.hi_open else r.hi + step, ("< " if r.hi_open else "<= ") + number_pattern(r.hi)),
    ]
    kind = "an integer" if r.integer else "a number"
    cases += [("abc", kind), (True, kind), (None, kind)]
    if r.integer:
        cases.append((r.lo + 1.5, "an integer"))
    else:
        cases += [(math.nan, "finite"), (math.inf, "finite")]
    return cases


NUMERIC_BAD = [(s, f, v, rule) for (s, f) in NUMERIC for v, rule in bad_numbers((s, f))]


def ids(case) -> str:
    return f"{case[0]}.{case[1]}={case[2]!r}"


def test_tables_cover_every_field():
    """Every field of both sections is declared, as a number, a choice or a flag (the kinds
    tested here; a per-stage or nullable number would need its own cases)."""
    for name, cls in SECTIONS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        covered = {f for (s, f) in [*NUMERIC, *CHOICES, *BOOLS] if s == name}
        assert fields == covered, f"{name}: no rule for {fields - covered}, stale {covered - fields}"
    assert not any(p.per_stage or p.nullable for p in DECLARED.values())


@pytest.mark.parametrize("case", NUMERIC_BAD, ids=[ids(c) for c in NUMERIC_BAD])
def test_out_of_range_or_wrong_type_number_is_rejected(case):
    section, field, value, rule = case
    expected = rf"^{re.escape(section)}\.{field} == {re.escape(repr(value))}, must be {rule}$"
    for route in build(section, field, value):
        with pytest.raises(orgsim.ConfigError, match=expected):
            route()


@pytest.mark.parametrize("key", list(NUMERIC), ids=[f"{s}.{f}" for s, f in NUMERIC])
def test_number_boundaries_are_accepted(key):
    section, field = key
    r = NUMERIC[key]
    inside = 1 if r.integer else 1e-9
    values = [r.lo + inside if r.lo_open else r.lo, r.hi - inside if r.hi_open else r.hi]
    if r.integer:
        values.append(float(r.lo + 1))  # a float holding an integer is accepted, as an int
    for value in values:
        for route in build(section, field, value):
            cfg = route()
            got = getattr(cfg if isinstance(cfg, SECTIONS[section]) else getattr(cfg, section), field)
            assert got == value
            assert isinstance(got, int if r.integer else float)


@pytest.mark.parametrize("key", list(CHOICES), ids=[f"{s}.{f}" for s, f in CHOICES])
def test_choices(key):
    section, field = key
    allowed = CHOICES[key]
    listed = ", ".join(repr(a) for a in allowed)
    for value in ("x", allowed[0].upper(), 1, None):
        expected = rf"^{section}\.{field} == {re.escape(repr(value))}, must be one of {re.escape(listed)}$"
        for route in build(section, field, value):
            with pytest.raises(orgsim.ConfigError, match=expected):
                route()
    for value in allowed:
        for route in build(section, field, value):
            cfg = route()
            section_cfg = cfg if isinstance(cfg, SECTIONS[section]) else getattr(cfg, section)
            assert getattr(section_cfg, field) == value


@pytest.mark.parametrize("key", sorted(BOOLS), ids=[f"{s}.{f}" for s, f in sorted(BOOLS)])
def test_bools(key):
    section, field = key
    for value in ("yes", 1, 0.0, None):
        expected = rf"^{section}\.{field} == {re.escape(repr(value))}, must be true or false$"
        for route in build(section, field, value):
            with pytest.raises(orgsim.ConfigError, match=expected):
                route()
    for value in (True, False):
        for route in build(section, field, value):
            cfg = route()
            section_cfg = cfg if isinstance(cfg, SECTIONS[section]) else getattr(cfg, section)
            assert getattr(section_cfg, field) is value


def test_unknown_field_is_named():
    with pytest.raises(orgsim.ConfigError, match=r"^culture\.p5 is not a config key"):
        orgsim.config_from_dict({"culture": {"p5": 0.1}})
    with pytest.raises(orgsim.ConfigError, match=r"^management\.bpo_budget is not a config key"):
        orgsim.Config().replace(**{"management.bpo_budget": 1.0})


def test_config_error_is_a_one_line_value_error():
    with pytest.raises(ValueError) as info:
        CultureConfig(p1=2)
    assert isinstance(info.value, orgsim.ConfigError)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------------------------
# through Hydra overrides
# --------------------------------------------------------------------------------------------
def compose_error(override: str) -> str:
    with pytest.raises(orgsim.ConfigError) as info:
        orgsim.compose([override])
    message = str(info.value)
    assert "\n" not in message
    return message


def _override_cases():
    """One out-of-range value per numeric field, every choice field and type errors."""
    cases = []
    for (section, field), r in NUMERIC.items():
        step = 1 if r.integer else 0.5
        value, rule = r.hi + step, ("< " if r.hi_open else "<= ") + number_pattern(r.hi)
        cases.append(
            (
                f"{section}.{field}={value}",
                rf"^{section}\.{field} == {number_pattern(value)}, must be {rule}$",
            )
        )
    for (section, field), allowed in CHOICES.items():
        listed = re.escape(", ".join(repr(a) for a in allowed))
        cases.append((f"{section}.{field}=x", rf"^{section}\.{field} == 'x', must be one of {listed}$"))
    cases += [
        ("culture.p1=abc", r"^culture\.p1 == 'abc', must be a number$"),
        ("management.score_window=2.5", r"^management\.score_window == '2\.5', must be an integer$"),
        ("culture.superior_share=0", r"^culture\.superior_share == 0(\.0)?, must be > 0$"),
        ("management.bias_min=0", r"^management\.bias_min == 0(\.0)?, must be > 0$"),
        ("culture.p1=nan", r"^culture\.p1 == nan, must be finite$"),
        ("culture.p5=0.1", r"^culture\.p5 is not a config key"),
    ]
    return cases


OVERRIDES = _override_cases()


@pytest.mark.parametrize(("override", "pattern"), OVERRIDES, ids=[o for o, _ in OVERRIDES])
def test_compose_override_errors_name_field_value_and_rule(override, pattern):
    assert re.match(pattern, compose_error(override)), compose_error(override)


def test_compose_accepts_boundaries():
    cfg = orgsim.compose(
        [
            "culture.p1=0",
            "culture.p2=1",
            "culture.superior_share=1",
            "culture.dims=1",
            "management.bias_min=1",
            "management.bias_max=10",
            "management.bpo_target=constraint",
            "management.bpm_focus=constraint",
            "management.adapt_every=0",
        ]
    )
    assert (cfg.culture.p1, cfg.culture.p2, cfg.culture.superior_share, cfg.culture.dims) == (
        0.0,
        1.0,
        1.0,
        1,
    )
    assert (cfg.management.bias_min, cfg.management.bias_max) == (1.0, 10.0)
    assert (cfg.management.bpo_target, cfg.management.bpm_focus) == ("constraint", "constraint")


def test_compose_bool_error_names_the_rule():
    assert re.match(
        r"^culture\.enabled == 'maybe', must be true or false$", compose_error("culture.enabled=maybe")
    )
