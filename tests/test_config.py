"""Validation of the typed config (``orgsim.config``).

Every field is declared once, in its dataclass (``orgsim.config.Param`` in the field's metadata,
all of them from ``orgsim.config.parameters()``); the tests below iterate those declarations
instead of repeating the ranges. Each declared rule is checked both ways: a value just outside is
rejected with a one-line ``ConfigError`` naming the dotted field, the value and the rule
(scikit-learn ``check_scalar`` style, e.g. ``network.lead_time == 0, must be >= 1``), and the
boundary itself is accepted (or rejected, for open bounds). ``test_every_field_is_declared``
fails when a field is added without a declaration (meaning, unit and source included). The
``culture`` and ``management`` sections (the culture and management layers) are validated the
same way in ``test_config_layers.py``; the parameter tables of docs/model.md §12, generated from
the same declarations, are checked in ``test_docs_parameters.py``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import typing
from dataclasses import dataclass

import numpy as np
import pytest
from helpers import conf_options, group_override, random_configs
from hypothesis import given

import orgsim
from orgsim.config import (
    _SECTIONS,
    TOOL_NODES,
    Config,
    ConfigError,
    CostConfig,
    NetworkConfig,
    Param,
    PolicyConfig,
    config_from_dict,
    parameters,
)

STAGES = Config().network.stages  # per-stage lists in these tests have one entry per stage
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Num:
    """A numeric field: ``lo``/``hi`` bounds as the rule states them (``None``: unbounded)."""

    path: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False
    per_stage: bool = False
    none_ok: bool = False

    @classmethod
    def of(cls, path: str, p: Param) -> Num:
        return cls(path, p.lo, p.hi, p.lo_open, p.hi_open, p.integer, p.per_stage, p.nullable)

    @property
    def delta(self):
        if self.integer:
            return 1
        return (self.hi - self.lo) / 4 if self.lo is not None and self.hi is not None else 1.0


LAYER_SECTIONS = {"culture", "management"}  # see test_config_layers.py
DECLARED = {k: p for k, p in parameters().items() if k.partition(".")[0] not in LAYER_SECTIONS}
NUMBERS = [Num.of(path, p) for path, p in DECLARED.items() if p.kind == "number"]
CHOICES = {path: p.choices for path, p in DECLARED.items() if p.kind == "choice"}
BOOLS = [path for path, p in DECLARED.items() if p.kind == "flag"]
NAMES = [path for path, p in DECLARED.items() if p.kind == "identifier"]
OTHERS = [path for path, p in DECLARED.items() if p.kind in ("text", "roles")]  # tested one by one below

IDENTIFIER = "a non-empty identifier (letters, digits, underscores)"


def build(path: str, value) -> Config:
    """A config from defaults with one dotted field set (through ``config_from_dict``)."""
    *sections, name = path.split(".")
    data = {name: value}
    for section in reversed(sections):
        data = {section: data}
    return config_from_dict(data)


def get(cfg: Config, path: str):
    obj = cfg
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def rejects(path: str, value, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(path, value)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def stored(spec: Num, value):
    """What the config holds after normalisation: int or float, one per stage if per stage."""
    one = None if value is None else (int(value) if spec.integer else float(value))
    return (one,) * STAGES if spec.per_stage else one


def field_paths(sections=None) -> set[str]:
    """Every dotted field of the config (of ``sections`` only, if given), from the dataclasses."""
    paths = set()
    for f in dataclasses.fields(Config):
        if f.name in _SECTIONS:
            paths.update(f"{f.name}.{g.name}" for g in dataclasses.fields(_SECTIONS[f.name]))
        else:
            paths.add(f.name)
    return {p for p in paths if sections is None or p.partition(".")[0] in sections}


#: the annotation each kind of field needs: OmegaConf converts a command-line value to it before
#: validation (docs/model.md §12 "Types"); per-stage fields and the roles have none
ANNOTATION = {"flag": "bool", "choice": "str", "identifier": "str", "text": "str", "roles": "Any"}


def annotation(p: Param) -> str:
    if p.kind == "number":
        return "Any" if p.per_stage else "int" if p.integer else "float"
    return ANNOTATION[p.kind]


def test_every_field_is_declared():
    """Every field of every section (and of the top level) has a declaration with a meaning, a
    unit and a source for the docs, and an annotation that fits its kind."""
    declared = parameters()
    assert set(declared) == field_paths(), "fields without a declaration (or declarations without a field)"
    hints = {name: typing.get_type_hints(cls) for name, cls in _SECTIONS.items()}
    for path, p in declared.items():
        assert p.meaning.strip() and p.unit.strip() and p.source.strip(), path
        section, _, name = path.rpartition(".")
        hint = hints[section][name] if section else typing.get_type_hints(Config)[name]
        assert getattr(hint, "__name__", str(hint).removeprefix("typing.")) == annotation(p), path


def test_every_field_is_tested_here_or_in_the_layer_tests():
    covered = {s.path for s in NUMBERS} | set(CHOICES) | set(BOOLS) | set(NAMES) | set(OTHERS)
    assert covered == field_paths() - field_paths(LAYER_SECTIONS)


def test_declarations_the_engines_rely_on():
    """Integers are int64 in both engines (and Numba); a belief vector is one pair of 64-bit
    masks (docs/model.md §7.14); a per-stage list is checked against at most 12 stages."""
    declared = parameters()
    assert all(p.hi <= INT64_MAX and p.lo >= -(2**63) for p in declared.values() if p.integer)
    assert declared["culture.dims"].hi <= 64
    assert (declared["network.stages"].lo, declared["network.stages"].hi) == (1, 12)


@pytest.mark.parametrize(
    ("declaration", "problem"),
    [
        (dict(kind="number", lo=0, hi=1, unit="–", source="s"), "a meaning"),
        (dict(kind="numbr", lo=0, hi=1, meaning="m", unit="–", source="s"), "a kind"),
        (dict(kind="number", integer=True, lo=0, meaning="m", unit="–", source="s"), "int64"),
        (dict(kind="number", integer=True, lo=0, hi=2**63, meaning="m", unit="–", source="s"), "int64"),
        (dict(kind="number", lo=0, meaning="m", unit="–", source="s"), "both bounds"),
        (dict(kind="choice", meaning="m", unit="–", source="s"), "choice"),
        (dict(kind="flag", choices=("a",), meaning="m", unit="–", source="s"), "choice"),
    ],
)
def test_a_declaration_the_validator_cannot_enforce_is_refused(declaration, problem):
    from orgsim.config import _param

    declaration.setdefault("meaning", "")
    with pytest.raises(TypeError, match=problem):
        _param(**declaration)


# -- numbers ----------------------------------------------------------------------------------
WITH_LO = [s for s in NUMBERS if s.lo is not None]
WITH_HI = [s for s in NUMBERS if s.hi is not None]


@pytest.mark.parametrize("spec", WITH_LO, ids=lambda s: s.path)
def test_below_lower_bound_rejected(spec):
    if spec.lo_open:
        rejects(spec.path, spec.lo, f"{spec.path} == {spec.lo!r}, must be > {spec.lo}")
    else:
        value = spec.lo - spec.delta
        rejects(spec.path, value, f"{spec.path} == {value!r}, must be >= {spec.lo}")


@pytest.mark.parametrize("spec", WITH_HI, ids=lambda s: s.path)
def test_above_upper_bound_rejected(spec):
    if spec.hi_open:
        rejects(spec.path, spec.hi, f"{spec.path} == {spec.hi!r}, must be < {spec.hi}")
    else:
        value = spec.hi + spec.delta
        rejects(spec.path, value, f"{spec.path} == {value!r}, must be <= {spec.hi}")


def boundary_values(spec: Num):
    values = []
    if spec.lo is not None:
        values.append(spec.lo + (spec.delta / 1000 if spec.lo_open else 0))
    if spec.hi is not None:
        values.append(spec.hi - (spec.delta / 1000 if spec.hi_open else 0))
    if spec.lo is None and spec.hi is None:
        values += [-1e6, 0, 1e6]
    return values


@pytest.mark.parametrize("spec", NUMBERS, ids=lambda s: s.path)
def test_boundaries_accepted_and_normalised(spec):
    for value in boundary_values(spec):
        got = get(build(spec.path, value), spec.path)
        assert got == stored(spec, value)
        one = got[0] if spec.per_stage else got
        assert type(one) is (int if spec.integer else float)


@pytest.mark.parametrize("spec", [s for s in NUMBERS if s.integer], ids=lambda s: s.path)
def test_integer_fields_reject_fractions_and_accept_whole_floats(spec):
    value = spec.lo + 0.5
    rejects(spec.path, value, f"{spec.path} == {value!r}, must be an integer")
    assert get(build(spec.path, float(spec.lo)), spec.path) == stored(spec, spec.lo)


@pytest.mark.parametrize("spec", NUMBERS, ids=lambda s: s.path)
@pytest.mark.parametrize("bad", ["abc", True, {"a": 1}], ids=["string", "bool", "mapping"])
def test_non_numbers_rejected(spec, bad):
    rejects(spec.path, bad, f"{spec.path} == {bad!r}, must be {'an integer' if spec.integer else 'a number'}")


@pytest.mark.parametrize("spec", NUMBERS, ids=lambda s: s.path)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_rejected(spec, bad):
    rule = "an integer" if spec.integer else "finite"
    rejects(spec.path, bad, f"{spec.path} == {bad!r}, must be {rule}")


@pytest.mark.parametrize("spec", NUMBERS, ids=lambda s: s.path)
def test_none(spec):
    if spec.none_ok:
        assert get(build(spec.path, None), spec.path) == stored(spec, None)
    elif spec.per_stage:
        rejects(spec.path, None, f"{spec.path} == None, must be a number or a list of one number per stage")
    else:
        rejects(
            spec.path, None, f"{spec.path} == None, must be {'an integer' if spec.integer else 'a number'}"
        )


# -- per-stage fields -------------------------------------------------------------------------
PER_STAGE = [s for s in NUMBERS if s.per_stage]


def valid_value(spec: Num):
    return spec.lo + (1 if spec.lo_open or spec.integer else 0) if spec.lo is not None else 3


@pytest.mark.parametrize("spec", PER_STAGE, ids=lambda s: s.path)
def test_per_stage_accepts_one_value_per_stage(spec):
    values = [valid_value(spec)] * STAGES
    if spec.path == "network.width":
        values = list(range(STAGES + 1, 1, -1))  # must not grow toward the source
    elif spec.hi is None or valid_value(spec) + STAGES <= spec.hi:
        values = [valid_value(spec) + k for k in range(STAGES)]
    got = get(build(spec.path, values), spec.path)
    assert got == tuple(stored(Num(spec.path, integer=spec.integer), v) for v in values)
    assert get(build(spec.path, tuple(values)), spec.path) == got


@pytest.mark.parametrize("spec", PER_STAGE, ids=lambda s: s.path)
@pytest.mark.parametrize("length", [STAGES - 1, STAGES + 1])
def test_per_stage_rejects_wrong_length(spec, length):
    """A config dict names every per-stage list of another length in one message (here one);
    a section built directly names its own field."""
    values = [valid_value(spec)] * length
    rejects(
        spec.path,
        values,
        f"network.stages == {STAGES}, but 1 per-stage value has another number of entries: {spec.path} "
        f"({length}); give each {STAGES} values, customer first (or one value for every stage)",
    )
    section, name = spec.path.split(".")
    if section == "network":
        with pytest.raises(ConfigError) as info:
            NetworkConfig(**{name: values})
        rule = f"a number or a list of {STAGES} numbers (one per stage)"
        assert str(info.value) == f"{spec.path} == {values!r}, must be {rule}"


def test_every_per_stage_list_of_another_length_is_named_at_once():
    data = {
        "network": {"stages": 3, "width": [2, 1], "lead_time": [1, 2, 3], "roles": ["a", "b"]},
        "costs": {"holding": [1, 2, 3, 4], "unit": 0.5},
        "policy": {"s_prime": [10, 20]},
    }
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    assert str(info.value) == (
        "network.stages == 3, but 4 per-stage values have another number of entries: network.width (2), "
        "network.roles (2), policy.s_prime (2), costs.holding (4); give each 3 values, customer first "
        "(or one value for every stage)"
    )


@pytest.mark.parametrize("spec", PER_STAGE, ids=lambda s: s.path)
def test_per_stage_rejects_non_numbers_inside_lists(spec):
    values = [valid_value(spec)] * STAGES
    values[-1] = "x"
    rule = "an integer" if spec.integer else "a number"
    rejects(spec.path, values, f"{spec.path}[{STAGES - 1}] == 'x', must be {rule}")


@pytest.mark.parametrize("spec", [s for s in PER_STAGE if s.lo is not None], ids=lambda s: s.path)
def test_per_stage_error_names_the_stage(spec):
    values = [valid_value(spec)] * STAGES
    bad = spec.lo if spec.lo_open else spec.lo - spec.delta
    values[2] = bad
    op = ">" if spec.lo_open else ">="
    rejects(spec.path, values, f"{spec.path}[2] == {bad!r}, must be {op} {spec.lo}")


def test_per_stage_length_follows_network_stages():
    cfg = config_from_dict({"network": {"stages": 2, "lead_time": [1, 3]}, "policy": {"cover": [0, 1]}})
    assert cfg.network.lead_time == (1, 3)
    assert cfg.network.order_delay == (2, 2)
    assert cfg.policy.cover == (0.0, 1.0)
    assert cfg.costs.holding == (0.5, 0.5)
    with pytest.raises(
        ConfigError,
        match=r"^network\.stages == 2, but 1 per-stage value has another number of entries: policy\.cover \(3\)",
    ):
        config_from_dict({"network": {"stages": 2}, "policy": {"cover": [0, 1, 2]}})


# -- choices, booleans, names -----------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(CHOICES))
def test_choices(path):
    allowed = CHOICES[path]
    for value in allowed:
        assert get(build(path, value), path) == value
    rule = "one of " + ", ".join(repr(a) for a in allowed)
    rejects(path, "bogus", f"{path} == 'bogus', must be {rule}")
    rejects(path, allowed[0].upper(), f"{path} == {allowed[0].upper()!r}, must be {rule}")


@pytest.mark.parametrize("path", BOOLS)
def test_booleans(path):
    for value in (True, False):
        if path == "policy.allow_negative_orders":  # it needs a supply-line weight >= 1/2
            cfg = config_from_dict({"policy": {"allow_negative_orders": value, "beta": 1.0}})
            assert cfg.policy.allow_negative_orders is value
            continue
        assert get(build(path, value), path) is value
    for bad in ("yes", 1, None):
        rejects(path, bad, f"{path} == {bad!r}, must be true or false")


@pytest.mark.parametrize("path", NAMES)
def test_names(path):
    assert get(build(path, "my_name_2"), path) == "my_name_2"
    for bad in ("", "two words", "dash-ed", 5, None):
        rejects(path, bad, f"{path} == {bad!r}, must be {IDENTIFIER}")


def test_roles():
    roles = ["a", "b", "c", "d"]
    assert build("network.roles", roles).network.roles == tuple(roles)
    assert Config().network.roles == tuple(f"stage{k}" for k in range(STAGES))
    rejects(
        "network.roles",
        ["a", "b"],
        f"network.stages == {STAGES}, but 1 per-stage value has another number of entries: network.roles (2); "
        f"give each {STAGES} values, customer first (or one value for every stage)",
    )
    rejects(
        "network.roles",
        "abcd",
        f"network.roles == 'abcd', must be a list of {STAGES} role names (one per stage)",
    )
    rejects("network.roles", ["a", "b c", "d", "e"], f"network.roles[1] == 'b c', must be {IDENTIFIER}")


def test_roles_must_be_distinct():
    """Roles name the stages in the results (a categorical column with unique categories)."""
    rule = "must be distinct role names ('a' is repeated)"
    rejects("network.roles", ["a", "a", "b", "b"], f"network.roles == ['a', 'a', 'b', 'b'], {rule}")
    rejects("network.roles", ["b", "a", "c", "a"], "network.roles == ['b', 'a', 'c', 'a'], " + rule)
    with pytest.raises(ConfigError) as info:
        orgsim.compose(["network.roles=[a,a,b,b]"])
    assert str(info.value) == f"network.roles == ['a', 'a', 'b', 'b'], {rule}"
    assert build("network.roles", ["a", "A", "b", "c"]).network.roles == ("a", "A", "b", "c")


def test_description_is_free_text():
    text = "Any text: at all (even this)."
    assert build("scenario.description", text).scenario.description == text


def test_description_must_be_text():
    with pytest.raises(ConfigError, match=r"^scenario\.description == 5, must be"):
        build("scenario.description", 5)


# -- rules across fields ----------------------------------------------------------------------
def test_width_must_not_grow_toward_the_source():
    rejects(
        "network.width",
        [1, 2, 2, 2],
        "network.width == [1, 2, 2, 2], must be non-increasing from the customer up (each team has one supplier)",
    )
    assert build("network.width", [3, 3, 2, 1]).network.width == (3, 3, 2, 1)


def test_negative_orders_need_a_serial_network_of_divisible_units():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"network": {"width": [2, 1, 1, 1]}, "policy": {"allow_negative_orders": True}})
    assert str(info.value) == (
        "policy.allow_negative_orders == True, must be false unless the network is serial "
        "(network.width == 1 at every stage)"
    )
    with pytest.raises(ConfigError) as info:
        config_from_dict({"network": {"integer_units": True}, "policy": {"allow_negative_orders": True}})
    assert (
        str(info.value)
        == "policy.allow_negative_orders == True, must be false when network.integer_units is true"
    )


@pytest.mark.parametrize("section", sorted(_SECTIONS))
def test_sections_must_be_their_dataclass(section):
    with pytest.raises(ConfigError) as info:
        Config(**{section: "x"})
    assert str(info.value) == f"{section} == 'x', must be a {_SECTIONS[section].__name__}"
    with pytest.raises(ConfigError, match=rf"^{section} == 5, must be a mapping"):
        config_from_dict({section: 5})


@pytest.mark.parametrize(
    ("path", "value"),
    [("network.initial_inventory", 12.5), ("demand.level", 4.5)],
    ids=["inventory", "level"],
)
def test_integer_units_need_whole_initial_values(path, value):
    section, name = path.split(".")
    data = {"network": {"integer_units": True}}
    data.setdefault(section, {})[name] = value
    with pytest.raises(ConfigError, match=rf"^{section}\.{name} == {value}, must be"):
        config_from_dict(data)


# -- integers beyond int64, numbers beyond the float range ------------------------------------
INTEGERS = [s for s in NUMBERS if s.integer]


@pytest.mark.parametrize("spec", INTEGERS, ids=lambda s: s.path)
def test_integers_beyond_int64_rejected(spec):
    for value in (2**63, 2**64 + 1, 1e19):
        rejects(spec.path, value, f"{spec.path} == {value!r}, must be <= {spec.hi}")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "demand.step_period=9223372036854775808",
            "demand.step_period == 9223372036854775808, must be <= 100000",
        ),
        (
            "demand.season_period=9223372036854775808",
            "demand.season_period == 9223372036854775808, must be <= 9223372036854775807",
        ),
        ("finance.grace_periods=100001", "finance.grace_periods == 100001, must be <= 100000"),
    ],
)
def test_compose_rejects_integers_beyond_their_bound(override, message):
    with pytest.raises(ConfigError) as info:
        orgsim.compose([override])
    assert str(info.value) == message


PERIOD_COUNTS = [
    "demand.shock_duration",
    "demand.step_period",
    "policy.fixed_order_periods",
    "supply.disruption_duration",
    "supply.cost_shock_duration",
    "finance.grace_periods",
]


def test_period_counts_at_their_bound_run_alike_on_both_engines():
    """The largest allowed durations, period indices and counts (and the largest seed and
    seasonal period) overflow nowhere: both engines give the same finite numbers."""
    overrides = [
        "n_orgs=1",
        "periods=5",
        "seed=9223372036854775807",
        "demand.season_period=9223372036854775807",
        "demand.seasonality=0.5",
        "demand.shock_prob=1",
        "demand.shock_size=1",
        "supply.disruption_prob=1",
        "supply.cost_shock_prob=1",
        "supply.cost_shock_size=1",
        "finance.initial_cash=0",
        *[f"{path}=100000" for path in PERIOD_COUNTS],
    ]
    cfg = orgsim.compose(overrides)
    kpis = [orgsim.simulate(cfg, engine=engine).kpis.select_dtypes("number") for engine in ("mesa", "numba")]
    mesa, numba = (k.to_numpy(dtype=float) for k in kpis)
    assert np.isfinite(mesa).all()
    np.testing.assert_allclose(numba, mesa, rtol=1e-12, atol=1e-9)


HUGE = 10**400


def huge_rule(spec: Num, value: int) -> str:
    """The rule a message states for ``value`` (beyond the float range) in the field ``spec``."""
    if spec.hi is not None and value > spec.hi:
        return f"{'<' if spec.hi_open else '<='} {spec.hi}"
    if spec.lo is not None and value < spec.lo:
        return f"{'>' if spec.lo_open else '>='} {spec.lo}"
    return "within the float range (magnitude <= 1.7976931348623157e+308)"


@pytest.mark.parametrize("spec", NUMBERS, ids=lambda s: s.path)
@pytest.mark.parametrize("sign", [1, -1], ids=["positive", "negative"])
def test_integers_beyond_the_float_range_name_the_field(spec, sign):
    """10**400 cannot become a float: a ConfigError names the field, not a bare OverflowError."""
    value = sign * HUGE
    shown = ("-" if sign < 0 else "") + "1e+400 (an integer of 401 digits)"
    rejects(spec.path, value, f"{spec.path} == {shown}, must be {huge_rule(spec, value)}")


def test_huge_values_are_abbreviated_exactly():
    rule = "must be <= 1000000"
    rejects("demand.level", 10**400 - 1, f"demand.level == 9.99999e+399 (an integer of 400 digits), {rule}")
    rejects(
        "demand.level",
        123456789 * 10**4991,
        f"demand.level == 1.23456e+4999 (an integer of 5000 digits), {rule}",
    )
    rejects("n_orgs", 10**30, "n_orgs == 1e+30 (an integer of 31 digits), must be <= 10000000")
    rejects("n_orgs", 10**29, "n_orgs == 100000000000000000000000000000, must be <= 10000000")


# -- what config_from_dict and compose take ---------------------------------------------------
@pytest.mark.parametrize("data", [None, [], [("n_orgs", 2)], "n_orgs=2", 3])
def test_config_from_dict_needs_a_mapping(data):
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    rule = "must be a mapping of config sections and values (e.g. {'n_orgs': 4})"
    assert str(info.value) == f"config == {data!r}, {rule}"


@pytest.mark.parametrize(
    ("overrides", "detail"),
    [
        ("seed=1", ", not 'seed=1'"),
        (3, ", not 3"),
        ([1], "; 1 is not a string"),
        (["seed=1", None], "; None is not a string"),
    ],
)
def test_compose_needs_a_list_of_strings(overrides, detail):
    with pytest.raises(TypeError) as info:
        orgsim.compose(overrides)
    expected = 'overrides must be a list of strings like "key=value" (e.g. ["n_orgs=4"])'
    assert str(info.value) == expected + detail
    assert not isinstance(info.value, ConfigError)


def test_compose_takes_any_sequence_of_strings():
    assert orgsim.compose(("seed=3",)).seed == 3
    assert orgsim.compose(None) == orgsim.compose([])


@pytest.mark.parametrize(
    "path",
    [
        "n_orgs",
        "seed",
        "engine",
        "demand.level",
        "culture.dims",
        "policy.forecast",
        "output.teams",
        "scenario.name",
        "network",
    ],
)
def test_compose_null_states_the_rule(path):
    """OmegaConf refuses null for a non-optional field; the message is the validation rule."""
    with pytest.raises(ConfigError) as python:
        build(path, None)
    with pytest.raises(ConfigError) as hydra:
        orgsim.compose([f"{path}=null"])
    assert str(hydra.value) == str(python.value)
    assert str(hydra.value).startswith(f"{path} == None, must be ")


# -- numpy scalars ----------------------------------------------------------------------------
def test_numpy_floats_accepted():
    assert Config().replace(**{"policy.theta": np.float64(0.25)}).policy.theta == 0.25


@pytest.mark.parametrize("field", ["seed", "n_orgs", "periods"])
def test_numpy_integers_accepted(field):
    assert getattr(Config().replace(**{field: np.int64(5)}), field) == 5


# -- building, replacing, round trips ---------------------------------------------------------
def test_unknown_keys_rejected():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"foo": 1})
    head, allowed = str(info.value).split("; allowed keys: ")
    assert head == "foo is not a config key"
    assert allowed.split(", ") == sorted(f.name for f in dataclasses.fields(Config))
    with pytest.raises(ConfigError) as info:
        config_from_dict({"policy": {"thetaa": 0.1}})
    head, allowed = str(info.value).split("; allowed keys: ")
    assert head == "policy.thetaa is not a config key"
    assert allowed.split(", ") == sorted(f.name for f in dataclasses.fields(PolicyConfig))
    for key in ("nope", "policy.nope", "n_orgs.x", "nope.theta"):
        with pytest.raises(ConfigError, match=rf"^{key.replace('.', '[.]')} is not a config key"):
            Config().replace(**{key: 1})


def test_replace():
    cfg = Config()
    new = cfg.replace(n_orgs=3, **{"policy.theta": 0.2})
    assert (new.n_orgs, new.policy.theta) == (3, 0.2)
    assert new.policy.alpha_s == cfg.policy.alpha_s
    assert (cfg.n_orgs, cfg.policy.theta) == (8, 0.36), "replace changed the original"
    assert new.replace(n_orgs=8, **{"policy.theta": 0.36}) == cfg
    section = cfg.replace(policy=PolicyConfig(theta=0.1, s_prime=5))
    assert section.policy.theta == 0.1 and section.policy.s_prime == (5.0,) * STAGES
    with pytest.raises(ConfigError, match=r"^policy\.theta == 7, must be <= 1$"):
        cfg.replace(**{"policy.theta": 7})


def test_replace_network_stages_works_when_lists_match():
    chen = orgsim.compose(["scenario=chen_bullwhip"])
    roles = ["retailer", "wholesaler", "manufacturer"]
    overrides = {"network.stages": 3, "network.roles": roles}
    per_stage = {
        "network.width": 1,
        "network.order_delay": 1,
        "network.lead_time": 3,
        "network.capacity": None,
        "network.initial_inventory": 0,
        "policy.s_prime": 0,
        "policy.cover": 3,
        **{f"costs.{c}": 0 for c in ("holding", "backlog", "unit", "fixed")},
    }
    composed = orgsim.compose(
        ["scenario=chen_bullwhip", "network.stages=3", f"network.roles=[{','.join(roles)}]"]
    )
    assert chen.replace(**overrides, **per_stage) == composed


def test_replace_network_stages_like_compose():
    roles = ["retailer", "wholesaler", "manufacturer"]
    chen = orgsim.compose(["scenario=chen_bullwhip"])
    composed = orgsim.compose(
        ["scenario=chen_bullwhip", "network.stages=3", f"network.roles=[{','.join(roles)}]"]
    )
    assert chen.replace(**{"network.stages": 3, "network.roles": roles}) == composed


def test_configs_are_frozen():
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n_orgs = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.policy.theta = 0.5


def test_sections_passed_in_are_not_mutated():
    policy = PolicyConfig(s_prime=[1, 2, 3, 4], cover=2)
    costs = CostConfig(holding=[1, 2, 3, 4])
    cfg = Config(policy=policy, costs=costs, network=NetworkConfig(stages=4))
    assert policy.s_prime == [1, 2, 3, 4] and policy.cover == 2
    assert costs.holding == [1, 2, 3, 4] and costs.backlog == 1.0
    assert cfg.policy.s_prime == (1.0, 2.0, 3.0, 4.0) and cfg.policy.cover == (2.0,) * 4
    assert cfg.costs.holding == (1.0, 2.0, 3.0, 4.0)
    assert cfg.policy is not policy and cfg.costs is not costs


def test_config_from_dict_does_not_mutate_its_input():
    data = orgsim.compose(["scenario=beer_game"]).to_dict()
    before = copy.deepcopy(data)
    config_from_dict(data)
    assert data == before


#: the options that make up a run's config: not the settings of a tool (``conf/calibration/``,
#: ``conf/sensitivity/``), which their tools read beside the config (``TOOL_NODES``)
MODEL_OPTIONS = [(g, o) for g, o in conf_options() if g not in TOOL_NODES]


@pytest.mark.parametrize(("group", "option"), MODEL_OPTIONS, ids=[f"{g}-{o}" for g, o in MODEL_OPTIONS])
def test_round_trip_of_every_conf_option(group, option):
    cfg = orgsim.compose([group_override(group, option)])
    data = cfg.to_dict()
    assert config_from_dict(data) == cfg
    assert config_from_dict(json.loads(json.dumps(data))) == cfg, "to_dict is not JSON-safe"


@given(cfg=random_configs())
def test_round_trip_of_random_configs(cfg):
    assert config_from_dict(cfg.to_dict()) == cfg
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert Config(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(Config)}) == cfg


# -- compose ----------------------------------------------------------------------------------
def test_compose_default_is_the_multinational():
    cfg = orgsim.compose()
    assert (cfg.scenario.name, cfg.strategy.name, cfg.environment.name) == ("multinational", "none", "stable")
    assert cfg == orgsim.compose([])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["n_orgs=-1"], "n_orgs == -1, must be >= 1"),
        (["policy.theta=abc"], "policy.theta == 'abc', must be a number"),
        (["policy.theta=7"], "policy.theta == 7.0, must be <= 1"),
        (["network.lead_time=0"], "network.lead_time == 0, must be >= 1"),
        (["foo=1"], "foo is not a config key"),
        (["policy.nope=1"], "policy.nope is not a config key"),
        (["network.width=[1,2,3,4]"], "network.width == [1, 2, 3, 4], must be non-increasing"),
        (
            ["policy.s_prime=[1,2]"],
            "network.stages == 4, but 1 per-stage value has another number of entries: policy.s_prime (2)",
        ),
        (["information=both"], "information == 'both', must be one of 'local', 'shared'"),
    ],
)
def test_compose_bad_overrides_raise_one_line(overrides, message):
    with pytest.raises(ConfigError) as info:
        orgsim.compose(overrides)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("group", ["scenario", "environment", "strategy"])
def test_compose_unknown_group_option_lists_the_options(group):
    with pytest.raises(ConfigError) as info:
        orgsim.compose([f"{group}=nope"])
    options = sorted(o for g, o in conf_options() if g == group)
    assert str(info.value) == f"{group} == 'nope', must be one of " + ", ".join(repr(o) for o in options)


# -- command-line types (docs/model.md §12 "Types") -------------------------------------------
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("periods=4.0", "periods == '4.0', must be an integer"),
        ("periods=1e2", "periods == '100.0', must be an integer"),
        ("network.stages=2.0", "network.stages == '2.0', must be an integer"),
        ("demand.level=5", 5.0),
        ("policy.theta=1e-1", 0.1),
        ("network.integer_units=yes", True),
        ("network.integer_units=On", True),
        ("network.integer_units=N", False),
        ("network.integer_units=1", True),
        ("network.integer_units=2", True),
        ("network.integer_units=0", False),
        ("network.integer_units=1.0", "network.integer_units == '1.0', must be true or false"),
        ("culture.enabled=maybe", "culture.enabled == 'maybe', must be true or false"),
        ("scenario.description=5", "5"),
        ("scenario.description=true", "True"),
        ("output.name=7", "7"),
        ("network.width=[3,3,3,1.0]", (3, 3, 3, 1)),
        ("network.width=[3,3,3,1.5]", "network.width[3] == 1.5, must be an integer"),
    ],
)
def test_command_line_values_are_converted_to_the_schema_types(override, expected):
    """OmegaConf converts an override to the type the schema declares before validation: an
    integer field takes only an integer, a number field also an integer, a boolean field
    yes/no/on/off and integers, a string field any scalar as its text; per-stage fields have no
    declared type and follow the Python rules."""
    key = override.partition("=")[0]
    if isinstance(expected, str) and " == " in expected:
        with pytest.raises(ConfigError) as info:
            orgsim.compose([override])
        assert str(info.value) == expected
    else:
        got = get(orgsim.compose([override]), key)
        assert got == expected and type(got) is type(expected)


def test_the_schema_is_writable_without_unfreezing_it():
    """Hydra merges conf/ into the schema node: it is built from a writable copy of the frozen
    dataclasses, not unfrozen through OmegaConf's private flags, and the copy has the
    dataclasses' own annotations (which drive the conversions above) and field defaults."""
    from omegaconf import DictConfig, OmegaConf

    from orgsim.config import _schema_class, _schema_node

    assert OmegaConf.is_readonly(OmegaConf.structured(Config))  # why a copy is needed
    node = _schema_node()
    for name, cls in [("", Config), *_SECTIONS.items()]:
        section = OmegaConf.select(node, name) if name else node
        assert isinstance(section, DictConfig) and not OmegaConf.is_readonly(section), name
        declared = {f.name: f for f in dataclasses.fields(cls) if not (cls is Config and f.name in _SECTIONS)}
        hints = typing.get_type_hints(_schema_class(cls))
        assert {k: hints[k] for k in declared} == {k: typing.get_type_hints(cls)[k] for k in declared}
        assert {k: section[k] for k in declared} == {k: f.default for k, f in declared.items()}, name
