"""The readable reference engine: each team a ``mesa.Agent``, each firm a ``mesa.Model``.

A period runs in the order of the beer game's board (Sterman 1989; Edali & Yasarcan 2014),
docs/model.md §3 — :meth:`Firm.step` is that list over the firm's :class:`mesa.AgentSet`:

0. **environment** — demand, shocks, disruptions and the input price of the period;
1. **receive** — goods at the head of each inbound pipeline arrive; pipelines advance;
2. **fill** — each team fills incoming orders plus backlog from stock (the outside source
   fills the top teams), shipping into its customers' inbound pipelines;
3. **record** — costs of the period;
4. **advance orders** — order slips move one period closer to the supplier;
5. **order** — each team updates expected demand and places its order;
6. **manage** — the culture programme; teams are scored by their accountability rules; gains
   erode; BPM and BPO act; teams adapt their stock bias;
7. **settle** — revenue, costs, cash flow and financing (insolvency is absorbing: an insolvent
   firm's periods are **dormant**);
8. **learn** — March's (1991) culture step: turnover, turbulence, action, socialisation and
   code learning from the superior group;

then the DataCollector records the period. Every equation is a Numba kernel in
:mod:`orgsim.environment`, :mod:`orgsim.operations`, :mod:`orgsim.management`,
:mod:`orgsim.culture` or :mod:`orgsim.finance` that :mod:`orgsim.engine_numba` calls too, with
the same parameter vector (a firm's ``p``, columns :class:`orgsim.schema.Param`, and a team's
row ``params``, columns :class:`orgsim.schema.TeamParam`); this module only orchestrates them
over agents.

To study another model, subclass: an :class:`orgsim.AccountabilityRule` (another local metric,
target, score or weight schedule; ``rules=``), a :class:`Team` (another behaviour in a phase;
``Firm.team_class``) or the :class:`Firm` (``firm_class=``), and run it with
``orgsim.simulate(cfg, engine="mesa", rules=..., firm_class=...)`` (docs/custom_rules.md).
"""

from __future__ import annotations

from collections import defaultdict

import mesa
import numpy as np

from . import _rng
from . import culture as cult
from . import environment as env
from . import finance as fin
from . import management as mg
from . import operations as ops
from .config import Config, ConfigError
from .management import AccountabilityRule
from .network import build_network
from .schema import ENGINE_KPIS, ENGINE_TEAM_FIELDS, Param, TeamParam, parameters

__all__ = ["Firm", "Team", "check_firm_class", "check_rules", "run_firm"]


class Team(mesa.Agent):
    """One node of the supply network, with its own state, metric history and accountability.

    State (units unless noted): ``inventory``; ``backlog`` (owed to customers); ``owed`` (what
    the supplier owes this team); ``inbound`` (goods in transit, ``[0]`` arrives next);
    ``orders`` (order slips not yet read by the supplier, ``[0]`` is read this period);
    ``expected`` (expected demand E); ``bias`` (stock bias b on S'); ``gain`` (BPO process
    gain g); ``maturity`` (BPM process maturity); ``knowledge`` (March's score K of its
    members, 1 without the culture layer). ``params`` is the team's parameter row
    (:class:`orgsim.schema.TeamParam`: capacity, throughput x̄, costs, targets, ...), ``rule``
    its :class:`~orgsim.AccountabilityRule` (also ``accountability``).

    Each phase is one method, called by :meth:`Firm.step` for every team in network order;
    a subclass overrides one to change a behaviour (``Firm.team_class``).
    """

    def __init__(self, model: Firm, index: int, rule: AccountabilityRule):
        super().__init__(model)
        net = model.net
        self.index = index
        self.name = net.names[index]
        self.role = net.roles[index]
        self.stage = int(net.stage[index])
        self.params = model.tp[index]
        self.throughput = float(self.params[TeamParam.throughput])
        self.is_top = bool(net.supplier[index] < 0)
        self.info_delay = int(net.info_delay[index])
        self.subtree = net.subtree_sales[index].astype(np.int64)  # the sales teams downstream
        self.supplier: Team | None = None
        self.customers: list[Team] = []
        # operations state: the steady state
        self.inventory = float(self.params[TeamParam.initial_inventory])
        self.backlog = 0.0
        self.owed = 0.0
        self.inbound = np.full(int(net.lead_time[index]), self.throughput)
        self.orders = np.full(int(net.order_delay[index]), self.throughput)
        self.expected = self.throughput
        self.window = np.full(model.cfg.policy.ma_window, self.throughput)
        # flows of the current period
        self.received = self.shipped = self.requested = self.incoming = 0.0
        self.order = self.cost = self.material_cost = 0.0
        # management state
        self.rule = rule
        self.metric_target = float(rule.target(self))  # for the rule's metric, maybe not the role's
        window = model.cfg.management.score_window
        self.local_ring = np.zeros(window)
        self.firm_ring = np.zeros(window)
        self.local_sum = self.firm_sum = 0.0
        self.mean_local = self.mean_firm = self.score = 1.0
        self.score_prev = -np.inf
        self.direction = mg.initial_direction(model.key, index)
        self.bias = 1.0
        self.gain = 0.0
        self.maturity = float(model.p[Param.initial_maturity])
        # culture state: this team's rows of the firm's member arrays (views)
        self.knowledge = 1.0
        members = model.cfg.culture.members
        self.known = model.known[index * members : (index + 1) * members]
        self.pos = model.pos[index * members : (index + 1) * members]
        self.history: dict[str, list[float]] = defaultdict(list)

    @property
    def accountability(self) -> AccountabilityRule:
        """The team's accountability rule (the same object as ``rule``)."""
        return self.rule

    @property
    def quality(self) -> float:
        """Decision quality q in [0, 1] from knowledge (1 without the culture layer)."""
        return cult.quality(self.knowledge)

    def cost_factor(self) -> float:
        """Multiplier φ on process and material costs from knowledge and BPO gains."""
        return cult.team_cost_factor(self.model.p, self.knowledge, self.gain)

    # -- phase 1 ---------------------------------------------------------------------------
    def receive(self) -> None:
        self.inventory, self.received = ops.receive(self.inbound, self.inventory)

    # -- phase 2 ---------------------------------------------------------------------------
    def fill(self) -> None:
        """Fill the end customers' demand (a sales team) or the customers' order slips read
        now plus what the team owes them, shipping into their inbound pipelines."""
        model = self.model
        if self.stage == 0:
            self.incoming = model.demand[self.index]
            requests = np.array([self.incoming + self.backlog])
        else:
            requests = np.array([c.orders[0] + c.owed for c in self.customers])
            self.incoming = ops.line_sum(np.array([c.orders[0] for c in self.customers]))
        out = np.empty(requests.shape[0])
        self.inventory, self.shipped, self.requested = ops.fill(
            requests, requests.shape[0], self.inventory, self.params[TeamParam.capacity], model.integer, out
        )
        if self.stage == 0:
            self.backlog = ops.unmet_backlog(requests[0], out[0], model.backlog_unmet)
        else:
            for c, request, sent in zip(self.customers, requests, out, strict=True):
                c.owed = request - sent
                c.inbound[-1] = sent
            self.backlog = ops.line_sum(np.array([c.owed for c in self.customers]))

    def fill_from_outside(self) -> None:
        """A top team is filled by the outside source (less during a supply disruption)."""
        shipped, self.owed = ops.source_fill(
            self.model.p, self.params, self.orders[0] + self.owed, self.model.disrupted
        )
        self.inbound[-1] = shipped

    # -- phase 3 ---------------------------------------------------------------------------
    def record(self) -> None:
        self.cost, self.material_cost = ops.operating_cost(
            self.params,
            self.inventory,
            self.backlog,
            self.shipped,
            self.received,
            self.cost_factor(),
            self.model.material_price,
        )
        h = self.history
        h["inventory"].append(self.inventory)
        h["backlog"].append(self.backlog)
        h["shipped"].append(self.shipped)
        h["cost"].append(self.cost)

    # -- phase 4 ---------------------------------------------------------------------------
    def advance_orders(self) -> None:
        ops.shift(self.orders)

    # -- phase 5 ---------------------------------------------------------------------------
    def place_order(self) -> None:
        """Forecast demand and place the period's order (the anchoring-and-adjustment rule)."""
        model, p, t = self.model, self.model.p, self.model.steps
        q = self.quality
        observed = ops.observed_demand(
            p, self.incoming, model.demand_history, t - self.info_delay, self.subtree
        )
        forecast_sd = cult.forecast_sd(p, q)
        execution_sd = mg.execution_sd(p, self.maturity)
        z_forecast = z_execution = 0.0
        if forecast_sd > 0.0 or execution_sd > 0.0:
            z_forecast, z_execution = _rng.normal_pair(model.key, _rng.DECISION, 0, t, self.index)
        self.expected = ops.forecast(p, self.expected, self.window, observed, forecast_sd, z_forecast)
        line = ops.supply_line(self.orders, self.owed, self.inbound)
        self.order = ops.order(
            p, self.params, t, self.expected, self.inventory - self.backlog, line, self.bias, q,
            execution_sd, z_execution,
        )  # fmt: skip
        self.orders[-1] = self.order

    # -- phase 6 ---------------------------------------------------------------------------
    def assess(self) -> None:
        """Score the period on the rule's local metric and the firm objective (window means),
        weighted by the rule's weight schedule."""
        model, t, rule = self.model, self.model.steps, self.rule
        value = rule.measure(self)
        local = rule.local_score(value, self.metric_target)
        firm = mg.firm_score(model.p, self.params, self.cost, self.backlog)
        slot, count = mg.window_slot(t, self.local_ring.shape[0])
        self.local_sum, self.mean_local = mg.window_push(self.local_ring, slot, count, local, self.local_sum)
        self.firm_sum, self.mean_firm = mg.window_push(self.firm_ring, slot, count, firm, self.firm_sum)
        weight = rule.weight_at(t, model.alignment, model.p[Param.alignment_weight])
        self.score = rule.score(self.mean_local, self.mean_firm, weight)
        h = self.history
        h[rule.metric].append(value)
        h["local_score"].append(local)
        h["firm_score"].append(firm)
        h["score"].append(self.score)

    def erode(self) -> None:
        """BPO gains decay unless processes are mature."""
        self.gain = mg.erode(self.gain, self.model.p[Param.bpo_erosion], self.maturity)

    def adapt(self) -> None:
        """Win-stay, lose-shift on the stock bias every ``adapt_every`` periods."""
        p = self.model.p
        if mg.adapt_due(p, self.model.steps):
            self.bias, self.direction, self.score_prev = mg.adapt(
                p, self.bias, self.direction, self.score, self.score_prev
            )

    # -- after insolvency ------------------------------------------------------------------
    def dormant(self) -> None:
        """No flows: the team's stocks stay as they were."""
        (self.received, self.shipped, self.order, self.cost, self.requested, self.material_cost) = (
            ops.idle_flows()
        )


class Firm(mesa.Model):
    """A firm: its teams, environment draws, management, culture and balance sheet.

    Parameters
    ----------
    cfg : Config
        Validated configuration.
    index : int
        The firm's index in its population; with ``cfg.seed`` it fixes the firm's random key.
    key : int, optional
        The firm's 64-bit random key (derived from ``cfg.seed`` and ``index`` when omitted).
    rules : AccountabilityRule subclass or dict, optional
        The teams' accountability rules: a subclass of :class:`~orgsim.AccountabilityRule`
        (every team gets ``rules.for_role(role, weight)``), or ``{team name: rule}`` to replace
        the default rule of some teams; the others get :meth:`AccountabilityRule.for_role`.

    Attributes
    ----------
    team_class : type
        The agent class of the teams (:class:`Team`); a subclass of the firm sets another.
    teams : list of Team
        The teams in network order (``self.agents`` is the same set as a Mesa AgentSet).
    books : orgsim.finance.Accounts
        The period's accounts; ``revenue``, ``cash``, ``solvent``, ... read them.

    Examples
    --------
    >>> import orgsim
    >>> firm = Firm(orgsim.compose(["scenario=beer_game", "periods=4"]))
    >>> for _ in range(4):
    ...     firm.step()
    >>> [team.name for team in firm.teams]
    ['retailer', 'wholesaler', 'distributor', 'factory']
    """

    team_class: type[Team] = Team

    def __init__(self, cfg: Config, index: int = 0, key: int | None = None, rules=None):
        root = _rng.as_seed_sequence(cfg.seed)
        super().__init__(rng=np.random.default_rng(_rng.firm_seed_sequence(root, index)))
        self.cfg = cfg
        self.index = index
        self.key = _rng.firm_keys(cfg.seed, [index])[0] if key is None else np.uint64(key)
        self.net = net = build_network(cfg)
        self.p, self.tp = parameters(cfg, net)
        p = self.p
        self.integer = p[Param.integer] != 0.0
        self.backlog_unmet = p[Param.backlog_unmet] != 0.0
        self.sales = net.sales_teams.astype(np.int64)
        n, cu = net.n_teams, cfg.culture
        # the culture layer's members of all teams, team by team: beliefs, actions, performance
        size = n * cu.members if cu.enabled else 0
        self.known = np.zeros(size, dtype=np.uint64)  # mask of non-zero beliefs ...
        self.pos = np.zeros(size, dtype=np.uint64)  # ... and of the +1 ones among them
        self.actions = np.zeros(size, dtype=np.uint64)
        self.performance = np.zeros(size, dtype=np.int64)
        self.planes = np.zeros(cult.PLANES, dtype=np.uint64)
        self.heard = np.ones(n, dtype=np.bool_)  # the teams whose members the code hears
        if cu.enabled:
            cult.init_beliefs(self.known, self.pos, cu.dims, self.key)
        self.team_class.create_agents(self, n, index=list(range(n)), rule=check_rules(rules, net, cfg))
        self.teams: list[Team] = list(self.agents)
        for team in self.teams:
            if not team.is_top:
                team.supplier = self.teams[int(net.supplier[team.index])]
                team.supplier.customers.append(team)
        self.top = self.agents.select(lambda team: team.is_top)
        # environment state
        self.noise = np.empty(self.sales.shape[0])
        env.start_noise(p, self.key, self.sales, self.noise)
        self.episodes = np.zeros(3, dtype=np.int64)  # periods left of shock, disruption, cost shock
        self.demand = np.zeros(n)
        self.demand_history = np.full((cfg.periods + 1, self.sales.shape[0]), p[Param.level])
        self.disrupted = False
        self.material_price = p[Param.material]
        self.demand_total = 0.0
        # management state
        self.alignment = 0.0
        self.programme_cost = 0.0
        # culture state: reality, the code, and a burn-in of learning before operations start
        self.reality = self.code_known = self.code_pos = np.uint64(0)
        if cu.enabled:
            self.reality = np.uint64(cult.init_reality(cu.dims, self.key))  # mask of +1 dimensions
            for s in range(1, cu.burn_in + 1):
                self.culture_step(s, p[Param.p1], by_score=False)
            self.update_knowledge()
        # finance: the books open at the steady state of the firm as it is (its knowledge after
        # the burn-in included)
        self.receivables = np.empty(cfg.finance.receivable_lag)
        self.payables = np.empty(cfg.finance.payable_lag)
        self.ebitda_ring = np.empty(cfg.finance.covenant_window)
        factors = np.array([team.cost_factor() for team in self.teams])
        self.books = fin.open_accounts(
            p, self.tp, factors, self.sales, self.receivables, self.payables, self.ebitda_ring
        )
        self.inventory_units = ops.line_sum(np.array([team.inventory for team in self.teams]))
        self.backlog_units = 0.0
        self.fill_rate = 1.0
        self._culture_kpis()
        self.datacollector = mesa.DataCollector(
            model_reporters={k: k for k in _KPI_ATTRS},
            agent_reporters={k: k for k in _TEAM_ATTRS},
        )

    # -- the period ------------------------------------------------------------------------
    def step(self) -> None:
        """One period, in the order of docs/model.md §3."""
        self.draw_environment()
        if self.solvent:
            self.agents.do("receive")
            self.agents.do("fill")
            self.top.do("fill_from_outside")
            self.agents.do("record")
            self.agents.do("advance_orders")
            self.agents.do("place_order")
            self.manage()
            self.settle()
            self.learn()
        else:
            self.dormant()
        self.datacollector.collect(self)

    def draw_environment(self) -> None:
        """Phase 0: the period's demand, episodes (shocks, disruptions) and input price."""
        self.disrupted, self.material_price, self.demand_total = env.draw(
            self.p, self.key, self.steps, self.episodes, self.noise, self.sales, self.demand,
            self.demand_history[self.steps],
        )  # fmt: skip

    def manage(self) -> None:
        """Phase 6: the culture programme, accountability scores, erosion, BPM, BPO and
        adaptation; their cost is the period's ``programme_cost``."""
        p, t, teams = self.p, self.steps, self.teams
        self.alignment, cost = mg.culture_programme(p, self.alignment)
        self.agents.do("assess")
        self.agents.do("erode")
        maturity = np.array([team.maturity for team in teams])
        mean_firm = np.array([team.mean_firm for team in teams])
        cost += mg.develop_maturity(p, maturity, mean_firm)
        gain = np.array([team.gain for team in teams])
        cost += mg.improve_processes(p, t, gain, np.array([team.mean_local for team in teams]), mean_firm)
        for team, m, g in zip(teams, maturity, gain, strict=True):
            team.maturity, team.gain = float(m), float(g)
        self.agents.do("adapt")
        self.programme_cost = cost

    def settle(self) -> None:
        """Phase 7: revenue, costs and financing; insolvency is absorbing."""
        teams = self.teams
        shipped = ops.line_sum(np.array([teams[i].shipped for i in self.sales]))
        requested = ops.line_sum(np.array([teams[i].requested for i in self.sales]))
        self.books = fin.settle(
            self.p, self.steps, self.books, shipped, ops.line_sum(np.array([team.cost for team in teams])),
            self.programme_cost, ops.line_sum(np.array([team.material_cost for team in teams])),
            self.receivables, self.payables, self.ebitda_ring,
        )  # fmt: skip
        self.inventory_units = ops.line_sum(np.array([team.inventory for team in teams]))
        self.backlog_units = ops.line_sum(np.array([team.backlog for team in teams]))
        self.fill_rate = ops.fill_rate(shipped, requested)

    def learn(self) -> None:
        """Phase 8: a period's step of March's culture dynamics, when one is due."""
        p = self.p
        if cult.learning_due(p, self.steps):
            p1 = cult.socialisation_rate(p, self.alignment)
            self.culture_step(self.cfg.culture.burn_in + self.steps, p1, p[Param.superior_by_score] != 0.0)
            self.update_knowledge()
        self._culture_kpis()

    def culture_step(self, s: int, p1: float, by_score: bool) -> None:
        """Learning step ``s`` at socialisation rate ``p1`` (:func:`orgsim.culture.step`); the
        code hears every team, or with ``by_score`` only the top-scoring ones
        (``culture.superior = score``)."""
        if by_score:
            mg.select_top(
                np.array([team.score for team in self.teams]), self.p[Param.superior_share], self.heard
            )
        else:
            self.heard[:] = True
        reality, known, pos = cult.step(
            self.p, s, p1, self.cfg.culture.dims, self.key, self.known, self.pos, self.actions,
            self.performance, self.reality, self.code_known, self.code_pos, self.heard, self.planes,
        )  # fmt: skip
        self.reality, self.code_known, self.code_pos = np.uint64(reality), np.uint64(known), np.uint64(pos)

    def update_knowledge(self) -> None:
        out = np.empty(len(self.teams))
        cult.team_knowledge(self.known, self.pos, self.reality, self.cfg.culture.dims, out)
        for team, value in zip(self.teams, out, strict=True):
            team.knowledge = float(value)

    def dormant(self) -> None:
        """A period after insolvency: no operations, no flows, no learning, stocks frozen."""
        self.agents.do("dormant")
        self.books = fin.dormant(self.books)
        self.programme_cost = 0.0
        self.fill_rate = ops.fill_rate(0.0, self.demand_total)

    def _culture_kpis(self) -> None:
        teams = self.teams
        self.mean_knowledge = ops.line_sum(np.array([team.knowledge for team in teams])) / len(teams)
        self.code_knowledge = cult.code_knowledge(
            self.p, self.code_known, self.code_pos, self.reality, self.cfg.culture.dims
        )
        self.mean_maturity = ops.line_sum(np.array([team.maturity for team in teams])) / len(teams)


def _account(name: str) -> property:
    return property(lambda firm: getattr(firm.books, name), doc=f"``books.{name}``")


for _name in fin.Accounts._fields:  # firm.cash, firm.revenue, firm.solvent, ... read the books
    setattr(Firm, _name, _account(_name))
del _name

#: model and agent attributes the DataCollector records (the same fields as the batch engine)
_KPI_ATTRS = ENGINE_KPIS
_TEAM_ATTRS = ENGINE_TEAM_FIELDS


def check_rules(rules, net, cfg: Config) -> list[AccountabilityRule]:
    """Each team's accountability rule from ``rules`` (see :class:`Firm`), validated: raise
    TypeError or ConfigError naming what is wrong."""
    weight = cfg.management.accountability_weight
    if isinstance(rules, type) and issubclass(rules, AccountabilityRule):
        return [rules.for_role(role, weight) for role in net.roles]
    if rules is None:
        rules = {}
    if not isinstance(rules, dict):
        raise TypeError(
            f"rules == {rules!r}, must be an AccountabilityRule subclass or a dict "
            "{team name: AccountabilityRule}"
        )
    unknown = sorted(set(rules) - set(net.names))
    if unknown:
        raise ConfigError(f"rules names team {unknown[0]!r}, must be one of {', '.join(net.names)}")
    for name, rule in rules.items():
        if not isinstance(rule, AccountabilityRule):
            raise TypeError(f"rules[{name!r}] == {rule!r}, must be an AccountabilityRule instance")
    return [
        rules.get(name, AccountabilityRule.for_role(role, weight))
        for name, role in zip(net.names, net.roles, strict=True)
    ]


def check_firm_class(firm_class) -> type[Firm]:
    """``firm_class`` if it is :class:`Firm` or a subclass (else TypeError)."""
    if not (isinstance(firm_class, type) and issubclass(firm_class, Firm)):
        raise TypeError(f"firm_class == {firm_class!r}, must be orgsim.Firm or a subclass of it")
    return firm_class


def run_firm(
    cfg: Config, index: int, key: int | None = None, *, rules=None, firm_class: type[Firm] = Firm
) -> tuple[dict, dict]:
    """Run one firm for ``cfg.periods`` periods; return KPI and team arrays."""
    firm = firm_class(cfg, index, key, rules=rules)
    for _ in range(cfg.periods):
        firm.step()
    kp = firm.datacollector.get_model_vars_dataframe()
    kpis = {k: kp[k].to_numpy() for k in _KPI_ATTRS}
    ag = firm.datacollector.get_agent_vars_dataframe().sort_index()
    n = firm.net.n_teams
    teams = {k: ag[k].to_numpy().reshape(cfg.periods, n) for k in _TEAM_ATTRS}
    return kpis, teams
