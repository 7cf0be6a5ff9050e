"""A researcher's own rules and teams on the Mesa reference engine (docs/custom_rules.md).

* the examples of docs/custom_rules.md run as written;
* a subclassed rule with a new local metric changes the outcome the way its definition implies:
  teams judged on holding little stock end with less stock than teams judged on holding much
  (same firms, same random numbers), and the rule's ``measure`` is what the team records;
* a subclassed team (``Firm.team_class``) changes what it defines: capped orders never exceed
  the cap, while the default teams do;
* a rule that changes nothing reproduces the default run bit for bit, and so does a dict that
  gives some teams the default rule;
* custom rules on the numba engine, and bad ``rules=`` / ``firm_class=``, are refused with a
  message naming the argument; the command line's ``+rules=module.Class`` runs, and a bad name
  stops it with one line.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import orgsim
from orgsim.engine_mesa import Firm, Team
from orgsim.management import AccountabilityRule
from orgsim.network import build_network
from orgsim.schema import TeamParam

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom_rules.md"
# the multinational firm with adaptation every quarter, a year on few firms
SMALL = ["n_orgs=3", "periods=156"]


@dataclass
class LeanStock(AccountabilityRule):
    """Less stock on hand is better; the opening stock is on target."""

    metric: str = "stock_on_hand"
    higher_is_better = False

    def measure(self, team):
        return max(team.inventory, 0.0)

    def target(self, team):
        return team.params[TeamParam.initial_inventory]


@dataclass
class AmpleStock(LeanStock):
    """The same metric, more is better."""

    higher_is_better = True


class CappedTeam(Team):
    def place_order(self):
        super().place_order()
        self.order = min(self.order, 1.2 * self.throughput)
        self.orders[-1] = self.order


class CappedFirm(Firm):
    team_class = CappedTeam


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_documented_examples_run(capsys, monkeypatch):
    """Every python block of docs/custom_rules.md after the first (Firm.step, quoted) runs, in
    one namespace, as written (the rule example asserts its own claim)."""
    blocks = _python_blocks(DOC.read_text())
    assert len(blocks) >= 3
    module = types.ModuleType("custom_rules_doc")  # a module, as a researcher's script is
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for block in blocks[1:]:
        exec(compile(block, str(DOC), "exec", dont_inherit=True), module.__dict__)
    out = capsys.readouterr().out
    assert "mean stock per team" in out and "largest order" in out


def test_quoted_step_is_the_engines():
    """The doc's Firm.step is the engine's (its phase calls, in order)."""
    quoted = _python_blocks(DOC.read_text())[0]
    calls = re.findall(r"self\.[\w.]+\(", quoted)
    actual = re.findall(r"self\.[\w.]+\(", inspect.getsource(Firm.step))
    assert calls == actual


def test_new_metric_changes_stock_as_defined():
    """Judged on holding little stock (weight 0: the local metric only), teams adapt their stock
    bias down and hold less than when judged on holding much: the mean stock per team over the
    last half-year is lower in every firm (paired: same firms, same random numbers)."""
    cfg = orgsim.compose(SMALL)
    lean = orgsim.simulate(cfg, engine="mesa", rules=LeanStock)
    ample = orgsim.simulate(cfg, engine="mesa", rules=AmpleStock)
    late = lambda res: res.teams[res.teams.period > 130].groupby("org", observed=True).inventory.mean()  # noqa: E731
    assert (late(lean) < late(ample)).all(), (late(lean), late(ample))
    assert not np.array_equal(lean.kpi_arrays["inventory_units"], ample.kpi_arrays["inventory_units"])


def test_measure_is_recorded_and_scored():
    """A team's history of its rule's metric is what ``measure`` returned, its local score the
    normalised value against ``target`` (lower is better: target / value, clipped to [0, 2])."""
    cfg = orgsim.compose(["periods=20"])
    firm = Firm(cfg, 0, rules=LeanStock)
    for _ in range(cfg.periods):
        firm.step()
    for team in firm.teams:
        values = np.array(team.history["stock_on_hand"])
        np.testing.assert_array_equal(values, np.maximum(np.array(team.history["inventory"]), 0.0))
        target = team.params[TeamParam.initial_inventory]
        expected = np.clip(target / np.maximum(values, 1e-300), 0.0, 2.0)
        np.testing.assert_allclose(team.history["local_score"], expected, rtol=1e-12)


class FirmOnly(AccountabilityRule):
    """A weight schedule that puts all weight on the firm part from the first period."""

    def weight_at(self, t, alignment, aligned_weight):
        return 1.0


def test_weight_schedule_is_used():
    """With FirmOnly every team's score is its mean firm score; with the default rule (weight 0,
    no culture programme) it is its mean local score, which differs for some team."""
    cfg = orgsim.compose(["environment=volatile", "periods=30"])
    for rules, part in ((FirmOnly, "mean_firm"), (None, "mean_local")):
        firm = Firm(cfg, 0, rules=rules)
        for _ in range(cfg.periods):
            firm.step()
        assert all(team.score == getattr(team, part) for team in firm.teams)
        assert any(team.mean_local != team.mean_firm for team in firm.teams)


def test_team_class_changes_orders():
    """CappedTeam's orders never exceed 1.2·x̄; the default teams' do (so the cap binds)."""
    cfg = orgsim.compose(["environment=volatile", "n_orgs=2", "periods=104"])
    capped = orgsim.simulate(cfg, engine="mesa", firm_class=CappedFirm)
    plain = orgsim.simulate(cfg, engine="mesa")
    net = build_network(cfg)
    cap = dict(zip(net.names, 1.2 * net.throughput, strict=True))
    for res, binding in ((capped, False), (plain, True)):
        t = res.teams
        over = t.order.to_numpy() > t.team.astype(str).map(cap).to_numpy() + 1e-9
        assert over.any() == binding


class SameRule(AccountabilityRule):
    """Overrides everything with the base behaviour: changes nothing."""

    def local_score(self, value, target):
        return super().local_score(value, target)


@pytest.mark.parametrize(
    "rules", [SameRule, {"sales_0": AccountabilityRule("fill_rate")}], ids=["class", "dict"]
)
def test_neutral_rule_reproduces_default(rules):
    cfg = orgsim.compose(["strategy=bso", "environment=volatile", "n_orgs=2", "periods=40"])
    a = orgsim.simulate(cfg, engine="mesa")
    b = orgsim.simulate(cfg, engine="mesa", rules=rules, firm_class=Firm)
    pd.testing.assert_frame_equal(a.kpis, b.kpis, check_exact=True)
    pd.testing.assert_frame_equal(a.teams, b.teams, check_exact=True)


def test_numba_refuses_custom_rules():
    cfg = orgsim.compose(["n_orgs=1", "periods=5"])
    with pytest.raises(orgsim.ConfigError, match=r"rules= runs only on engine='mesa'.*'numba'"):
        orgsim.simulate(cfg, engine="numba", rules=LeanStock)
    with pytest.raises(orgsim.ConfigError, match=r"firm_class= runs only on engine='mesa'"):
        orgsim.simulate(cfg, engine="numba", firm_class=CappedFirm)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"rules": "LeanStock"}, TypeError, r"rules == 'LeanStock', must be an AccountabilityRule subclass"),
        (
            {"rules": {"nobody": LeanStock()}},
            orgsim.ConfigError,
            r"rules names team 'nobody', must be one of",
        ),
        ({"rules": {"sales_0": "fill_rate"}}, TypeError, r"rules\['sales_0'\] == 'fill_rate', must be an"),
        ({"firm_class": Team}, TypeError, r"firm_class == .*, must be orgsim.Firm or a subclass"),
    ],
)
def test_bad_arguments_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        orgsim.simulate(orgsim.compose(["n_orgs=1", "periods=5"]), engine="mesa", **kwargs)


def test_own_metric_needs_its_definition():
    """A metric name that is not built in, without ``measure``, is refused when the rule is made."""
    with pytest.raises(ValueError, match=r"metric == 'stock_on_hand', must be one of"):
        AccountabilityRule("stock_on_hand")


# ---- the command line --------------------------------------------------------------------------
RULE_MODULE = (  # the rule above, as a researcher's module
    "from dataclasses import dataclass\n"
    "from orgsim.management import AccountabilityRule\n"
    "from orgsim.schema import TeamParam\n\n" + inspect.getsource(LeanStock)
)


@pytest.fixture
def rule_dir(tmp_path, monkeypatch):
    (tmp_path / "my_rules_mod.py").write_text(RULE_MODULE)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("my_rules_mod", None)


def test_cli_runs_a_named_rule(rule_dir, monkeypatch):
    """``+rules=module.Class`` runs the Mesa engine with that class: the run's KPIs are
    simulate's with ``rules=`` (and differ from the default rules')."""
    from orgsim.cli import RULES_ENV, main

    monkeypatch.delenv(RULES_ENV, raising=False)
    args = ["engine=mesa", "n_orgs=1", "periods=30", "hydra.run.dir=run"]
    assert main([*args, "+rules=my_rules_mod.LeanStock"]) == 0
    got = pd.read_parquet(rule_dir / "run" / "kpis.parquet")
    import my_rules_mod

    cfg = orgsim.compose(["engine=mesa", "n_orgs=1", "periods=30"])
    expected = orgsim.simulate(cfg, rules=my_rules_mod.LeanStock).kpis
    np.testing.assert_array_equal(got.inventory_units.to_numpy(), expected.inventory_units.to_numpy())
    default = orgsim.simulate(cfg).kpis
    assert not np.array_equal(got.inventory_units.to_numpy(), default.inventory_units.to_numpy())
    meta = (rule_dir / "run" / "meta.json").read_text()
    assert "rules=my_rules_mod.LeanStock" in meta


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        (
            "+rules=my_rules_mod.Missing",
            "rules == 'my_rules_mod.Missing', must name an AccountabilityRule subclass",
        ),
        (
            "rules=no_such_module_xyz.Rule",
            "rules == 'no_such_module_xyz.Rule', must name an importable module",
        ),
        ("rules=LeanStock", "rules == 'LeanStock', must be module.Class"),
    ],
)
def test_cli_refuses_a_bad_rule(rule_dir, capsys, arg, message):
    from orgsim.cli import main

    assert main(["engine=mesa", "n_orgs=1", "periods=5", "hydra.run.dir=bad", arg]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (rule_dir / "bad").exists()


def test_cli_refuses_rules_on_numba(rule_dir, capsys):
    from orgsim.cli import main

    assert (
        main(["engine=numba", "n_orgs=1", "periods=5", "hydra.run.dir=bad", "+rules=my_rules_mod.LeanStock"])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs engine=mesa" in err[0] and "'numba'" in err[0], err
