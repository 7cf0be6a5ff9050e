"""The readable reference engine: each team a ``mesa.Agent``, each firm a ``mesa.Model``.

A period runs in the order of the beer game's board (Sterman 1989; Edali & Yasarcan 2014):

1. **receive** — goods at the head of each inbound pipeline arrive; pipelines advance;
2. **fill** — each team fills incoming orders plus backlog from stock (the outside source
   fills the top teams), shipping into its customers' inbound pipelines;
3. **record** — costs and metrics of the period;
4. **advance orders** — order slips move one period closer to the supplier;
5. **order** — each team updates expected demand and places its order;

6. **manage** — teams are scored by their accountability rules; gains erode; BPO, BPM and the
   culture programme act; teams adapt their stock bias;
7. **settle** — revenue, costs, cash flow and financing (insolvency is absorbing);
8. **learn** — March's (1991) culture step: turnover, turbulence, action, socialisation and
   code learning from the superior group;

then the DataCollector records the period. The equations live in :mod:`orgsim.operations`,
:mod:`orgsim.environment`, :mod:`orgsim.management`, :mod:`orgsim.culture` and
:mod:`orgsim.finance`, shared with the batch engine.
"""

from __future__ import annotations

from collections import defaultdict

import mesa
import numpy as np

from . import _rng
from . import culture as cult
from .config import Config
from .environment import ar1_next, ar1_start, demand_mean, demand_value, episode_update
from .finance import finance_step, ring_push
from .management import (
    AccountabilityRule,
    adapt_bias,
    argmin_first,
    erode,
    firm_value,
    improve,
    local_value,
    mature,
    normalised,
    select_top,
)
from .network import Network, build_network, metric_target
from .operations import (
    allocate,
    anchor_and_adjust,
    desired_stock,
    finalize_order,
    line_sum,
    push_and_mean,
    smooth,
    team_cost,
)
from .schema import ENGINE_KPIS, ENGINE_TEAM_FIELDS

__all__ = ["Firm", "Team", "run_firm"]


class Team(mesa.Agent):
    """One node of the supply network, with its own state, metric history and accountability.

    State (units unless noted): ``inventory``; ``backlog`` (owed to customers); ``owed`` (what
    the supplier owes this team); ``inbound`` (goods in transit, ``[0]`` arrives next);
    ``orders`` (order slips not yet read by the supplier, ``[0]`` is read this period);
    ``expected`` (expected demand E); ``bias`` (stock bias b on S'); ``gain`` (BPO process
    gain g); ``maturity`` (BPM process maturity); ``known``/``pos`` (members' beliefs as bit
    masks, culture layer, see :mod:`orgsim.culture`: views of this team's rows of the firm's
    member arrays);
    ``knowledge`` (March's score K, 1 without the culture layer).
    """

    def __init__(self, model: Firm, index: int, net: Network, rule: AccountabilityRule):
        super().__init__(model)
        cfg = model.cfg
        mg, cu = cfg.management, cfg.culture
        self.index = index
        self.name = net.names[index]
        self.role = net.roles[index]
        self.stage = int(net.stage[index])
        self.capacity = float(net.capacity[index])
        self.throughput = float(net.throughput[index])
        self.s_prime = float(net.s_prime[index])
        self.inventory_target = float(net.inventory_target[index])
        self.supply_line_target = float(net.supply_line_target[index])
        self.initial_inventory = float(net.initial_inventory[index])
        self.cover = float(net.cover[index])
        self.costs = (
            float(net.holding[index]),
            float(net.backlog_cost[index]),
            float(net.unit_cost[index]),
            float(net.fixed_cost[index]),
        )
        self.is_top = net.supplier[index] < 0
        self.info_delay = int(net.info_delay[index])
        self.subtree_sales = np.flatnonzero(net.subtree_sales[index])
        self.supplier: Team | None = None
        self.customers: list[Team] = []
        # operations state
        self.inventory = float(net.initial_inventory[index])
        self.backlog = 0.0
        self.owed = 0.0
        self.inbound = np.full(int(net.lead_time[index]), self.throughput)
        self.orders = np.full(int(net.order_delay[index]), self.throughput)
        self.expected = self.throughput
        self.window = np.full(cfg.policy.ma_window, self.throughput)
        # flows of the current period
        self.received = 0.0
        self.shipped = 0.0
        self.requested = 0.0
        self.incoming = 0.0
        self.order = 0.0
        self.cost = 0.0
        self.material_cost = 0.0
        # management state
        self.accountability = rule
        self.metric_target = metric_target(  # for the rule's metric, which may not be the role's
            rule.code,
            self.throughput,
            float(net.metric_scale[index]),
            float(net.steady_cost[index]),
            float(net.holding[index]) * float(net.initial_inventory[index]),
        )
        self.metric_scale = float(net.metric_scale[index])
        self.steady_cost = float(net.steady_cost[index])
        self.local_ring = np.zeros(mg.score_window)
        self.firm_ring = np.zeros(mg.score_window)
        self.local_sum = self.firm_sum = 0.0
        self.mean_local = self.mean_firm = self.score = 1.0
        self.score_prev = -np.inf
        self.direction = 1.0 if _rng.uniform(model.key, _rng.MANAGEMENT, index, 0, 0) < 0.5 else -1.0
        self.bias = 1.0
        self.gain = 0.0
        self.maturity = mg.initial_maturity
        # culture state
        self.knowledge = 1.0
        if cu.enabled:  # this team's rows of the firm's member arrays (views)
            rows = slice(index * cu.members, (index + 1) * cu.members)
            self.known = model.known[rows]
            self.pos = model.pos[rows]
            self.actions = model.actions[rows]
            self.performance = model.performance[rows]
        self.history: dict[str, list[float]] = defaultdict(list)

    def cost_factor(self) -> float:
        """Multiplier on process and material costs from knowledge and BPO gains."""
        cu = self.model.cfg.culture
        return cult.cost_factor(self.quality, cu.cost_sensitivity if cu.enabled else 0.0, self.gain)

    def steady_state_cost(self) -> float:
        """Cost per period at the initial steady state, with the team's current cost factor."""
        holding, backlog_cost, unit_cost, fixed = self.costs
        f = self.cost_factor()
        cost = team_cost(
            self.initial_inventory, 0.0, self.throughput, holding, backlog_cost, unit_cost * f, fixed * f
        )
        return cost + (self.model.cfg.costs.material * f * self.throughput if self.is_top else 0.0)

    @property
    def quality(self) -> float:
        """Decision quality q in [0, 1] from knowledge (1 without the culture layer)."""
        return cult.quality(self.knowledge)

    # -- phase 1 ---------------------------------------------------------------------------
    def receive(self) -> None:
        self.received = self.inbound[0]
        self.inbound[:-1] = self.inbound[1:].copy()
        self.inbound[-1] = 0.0
        self.inventory += self.received

    # -- phase 2 ---------------------------------------------------------------------------
    def fill(self) -> None:
        model = self.model
        integer = model.cfg.network.integer_units
        if self.stage == 0:
            demand = model.demand[self.index]
            self.incoming = demand
            requests = np.array([demand + self.backlog])
        else:
            requests = np.array([c.orders[0] + c.owed for c in self.customers])
            self.incoming = line_sum(np.array([c.orders[0] for c in self.customers]))
        out = np.empty(requests.shape[0])
        available = min(max(self.inventory, 0.0), self.capacity)
        self.shipped = allocate(requests, available, integer, out)
        self.requested = line_sum(requests)
        self.inventory -= self.shipped
        if self.stage == 0:
            self.backlog = requests[0] - out[0] if model.backlog_unmet else 0.0
        else:
            for c, request, sent in zip(self.customers, requests, out):
                c.owed = request - sent
                c.inbound[-1] = sent
            self.backlog = line_sum(np.array([c.owed for c in self.customers]))

    # -- phase 3 ---------------------------------------------------------------------------
    def record(self) -> None:
        holding, backlog_cost, unit_cost, fixed = self.costs
        factor = self.cost_factor()
        self.cost = team_cost(
            self.inventory,
            self.backlog,
            self.shipped,
            holding,
            backlog_cost,
            unit_cost * factor,
            fixed * factor,
        )
        self.material_cost = self.model.material_price * factor * self.received if self.is_top else 0.0
        self.cost += self.material_cost
        h = self.history
        h["inventory"].append(self.inventory)
        h["backlog"].append(self.backlog)
        h["shipped"].append(self.shipped)
        h["cost"].append(self.cost)

    # -- phase 4 ---------------------------------------------------------------------------
    def advance_orders(self) -> None:
        self.orders[:-1] = self.orders[1:].copy()
        self.orders[-1] = 0.0

    # -- phase 5 ---------------------------------------------------------------------------
    def place_order(self, t: int) -> None:
        model, cfg = self.model, self.model.cfg
        pol, cu = cfg.policy, cfg.culture
        q = self.quality
        if cfg.information == "shared":
            observed = model.shared_demand(self.subtree_sales, t - self.info_delay)
        else:
            observed = self.incoming
        noise_sd = cu.forecast_noise * (1.0 - q) if cu.enabled else 0.0
        exec_sd = cfg.management.execution_noise * (1.0 - self.maturity)
        z_forecast = z_execution = 0.0
        if noise_sd > 0.0 or exec_sd > 0.0:
            z_forecast, z_execution = _rng.normal_pair(model.key, _rng.DECISION, 0, t, self.index)
        if noise_sd > 0.0:  # forecast error of a team that knows less
            observed = observed * (1.0 + noise_sd * z_forecast)
        if pol.forecast == "smoothing":
            self.expected = smooth(self.expected, observed, pol.theta)
        else:
            self.expected = push_and_mean(self.window, observed)
        supply_line = line_sum(self.orders) + self.owed + line_sum(self.inbound)
        if t <= pol.fixed_order_periods:
            indicated = self.throughput
        else:
            beta = cult.effective_beta(pol.beta, q, cu.beta_sensitivity if cu.enabled else 0.0)
            desired = desired_stock(self.s_prime, self.inventory_target, self.supply_line_target, beta)
            indicated = anchor_and_adjust(
                self.expected,
                self.inventory - self.backlog,
                supply_line,
                self.bias * desired,
                self.cover,
                pol.alpha_s,
                beta,
            )
            if exec_sd > 0.0:  # process variability, damped by maturity
                indicated = indicated * (1.0 + exec_sd * z_execution)
        self.order = finalize_order(indicated, pol.allow_negative_orders, cfg.network.integer_units)
        self.orders[-1] = self.order

    # -- phase 6 ---------------------------------------------------------------------------
    def assess(self, t: int, alignment: float) -> None:
        """Score the period on the local metric and the firm objective (window means).

        The weight of the firm objective is the rule's own ``w``, moved toward
        ``management.alignment_weight`` by the culture programme's progress ``alignment``.
        """
        holding, backlog_cost, _, _ = self.costs
        rule = self.accountability
        value = local_value(
            rule.code,
            self.shipped,
            self.requested,
            self.metric_scale,
            self.cost,
            holding * max(self.inventory, 0.0) + backlog_cost * self.backlog,
        )
        local = rule.local_score(value, self.metric_target)
        firm = normalised(
            firm_value(self.cost, self.backlog, self.model.net.unit_margin), self.steady_cost, False
        )
        w = len(self.local_ring)
        pos = (t - 1) % w
        self.local_sum += local - self.local_ring[pos]  # running window sums
        self.firm_sum += firm - self.firm_ring[pos]
        self.local_ring[pos] = local
        self.firm_ring[pos] = firm
        count = min(t, w)
        self.mean_local = self.local_sum / count
        self.mean_firm = self.firm_sum / count
        target_w = self.model.cfg.management.alignment_weight
        weight = rule.weight + (target_w - rule.weight) * alignment
        self.score = rule.score(self.mean_local, self.mean_firm, weight)
        h = self.history
        h[rule.metric].append(value)
        h["local_score"].append(local)
        h["firm_score"].append(firm)
        h["score"].append(self.score)

    def adapt(self, t: int) -> None:
        """Win-stay, lose-shift on the stock bias every ``adapt_every`` periods."""
        mg = self.model.cfg.management
        if mg.adapt_every > 0 and t % mg.adapt_every == 0:
            self.bias, self.direction = adapt_bias(
                self.bias,
                self.direction,
                self.score,
                self.score_prev,
                mg.adapt_step,
                mg.bias_min,
                mg.bias_max,
            )
            self.score_prev = self.score


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
    rules : dict, optional
        ``{team name: AccountabilityRule}`` to replace the default rule of some teams (for
        example a subclass); the others get :meth:`AccountabilityRule.for_role`.
    """

    def __init__(self, cfg: Config, index: int = 0, key: int | None = None, rules: dict | None = None):
        root = _rng.as_seed_sequence(cfg.seed)
        super().__init__(rng=np.random.default_rng(_rng.firm_seed_sequence(root, index)))
        self.cfg = cfg
        self.index = index
        self.key = _rng.firm_keys(cfg.seed, [index])[0] if key is None else np.uint64(key)
        self.net = net = build_network(cfg)
        self.backlog_unmet = cfg.costs.unmet == "backlog"
        mg, cu = cfg.management, cfg.culture
        rules = rules or {}
        if cu.enabled:  # the members of all teams, team by team: beliefs, actions, performance
            size = net.n_teams * cu.members
            self.known = np.zeros(size, dtype=np.uint64)  # mask of non-zero beliefs ...
            self.pos = np.zeros(size, dtype=np.uint64)  # ... and of the +1 ones among them
            cult.init_beliefs(self.known, self.pos, cu.dims, self.key)
            self.actions = np.zeros(size, dtype=np.uint64)
            self.performance = np.zeros(size, dtype=np.int64)
            self.planes = np.zeros(cult.PLANES, dtype=np.uint64)
        self.teams = [
            Team(
                self,
                i,
                net,
                rules.get(net.names[i], AccountabilityRule.for_role(net.roles[i], mg.accountability_weight)),
            )
            for i in range(net.n_teams)
        ]
        for team in self.teams:
            if not team.is_top:
                supplier = self.teams[int(net.supplier[team.index])]
                team.supplier = supplier
                supplier.customers.append(team)
        # environment state
        d = cfg.demand
        self.sigma = d.cv * d.level
        self.noise = np.array(
            [ar1_start(self.key, _rng.DEMAND_NOISE, int(s), d.rho, self.sigma) for s in net.sales_teams]
        )
        self.demand = np.zeros(net.n_teams)
        self.demand_history = np.full((cfg.periods + 1, net.sales_teams.size), d.level)
        self.shock_left = 0
        self.disruption_left = 0
        self.cost_shock_left = 0
        self.disrupted = False
        self.material_price = cfg.costs.material
        # management state
        self.alignment = 0.0
        self.programme_cost = 0.0
        # culture state: reality, the code, and a burn-in of learning before operations start
        if cu.enabled:
            self.reality = np.uint64(cult.init_reality(cu.dims, self.key))  # mask of +1 dimensions
            self.code_known = np.uint64(0)  # the code: non-zero dimensions ...
            self.code_pos = np.uint64(0)  # ... and the +1 ones among them
            for s in range(1, cu.burn_in + 1):
                self.culture_step(s, cu.p1, by_score=False)
            self.update_knowledge()
        # finance state
        f = cfg.finance
        # the covenant window and payables start at the steady state of the firm as it is
        # (its knowledge after the burn-in included)
        self.revenue_ss = f.price * line_sum(np.array([self.teams[i].throughput for i in net.sales_teams]))
        ss = self.revenue_ss - line_sum(np.array([tm.steady_state_cost() for tm in self.teams]))
        self.material_ss = line_sum(
            np.array(
                [cfg.costs.material * tm.cost_factor() * tm.throughput for tm in self.teams if tm.is_top]
            )
        )
        self.receivables = np.full(f.receivable_lag, self.revenue_ss)
        self.payables = np.full(f.payable_lag, self.material_ss)
        self.ebitda_ring = np.full(f.covenant_window, ss)
        self.trailing_ebitda = ss * f.covenant_window
        self.cash = f.initial_cash
        self.debt = 0.0
        self.breach = 0
        self.credit_limit = max(0.0, f.covenant_multiple * self.trailing_ebitda) if f.enabled else 0.0
        self.solvent = True
        self._zero_kpis()
        self.datacollector = mesa.DataCollector(
            model_reporters={k: k for k in _KPI_ATTRS},
            agent_reporters={k: k for k in _TEAM_ATTRS},
        )

    # -- environment -----------------------------------------------------------------------
    def draw_environment(self, t: int) -> None:
        d, s, net = self.cfg.demand, self.cfg.supply, self.net
        shock, self.shock_left = episode_update(
            self.shock_left, self.key, _rng.DEMAND_SHOCK, t, d.shock_prob, d.shock_duration
        )
        self.disrupted, self.disruption_left = episode_update(
            self.disruption_left,
            self.key,
            _rng.SUPPLY_DISRUPTION,
            t,
            s.disruption_prob,
            s.disruption_duration,
        )
        cost_shock, self.cost_shock_left = episode_update(
            self.cost_shock_left, self.key, _rng.COST_SHOCK, t, s.cost_shock_prob, s.cost_shock_duration
        )
        material = self.cfg.costs.material
        self.material_price = material * (1.0 + s.cost_shock_size) if cost_shock else material
        mean = demand_mean(d.level, d.trend, d.seasonality, d.season_period, d.step_period, d.step_size, t)
        for pos, team in enumerate(net.sales_teams):
            self.noise[pos] = ar1_next(
                self.noise[pos], self.key, _rng.DEMAND_NOISE, int(team), t, d.rho, self.sigma
            )
            value = demand_value(
                mean, shock, d.shock_size, self.noise[pos], d.allow_negative, self.cfg.network.integer_units
            )
            self.demand[team] = value
            self.demand_history[t, pos] = value

    def shared_demand(self, sales: np.ndarray, period: int) -> float:
        """End-customer demand of the given sales teams in ``period`` (steady state before 1)."""
        row = self.demand_history[max(period, 0)]
        return line_sum(row[sales])

    def fill_from_outside(self) -> None:
        """The outside source fills the top teams' orders (less during a supply disruption)."""
        s, integer = self.cfg.supply, self.cfg.network.integer_units
        out = np.empty(1)
        for team in self.teams:
            if team.is_top:
                request = np.array([team.orders[0] + team.owed])
                cap = (1.0 - s.disruption_severity) * team.throughput if self.disrupted else np.inf
                allocate(request, cap, integer, out)
                team.owed = request[0] - out[0]
                team.inbound[-1] = out[0]

    # -- the period ------------------------------------------------------------------------
    def step(self) -> None:
        t = self.steps
        self.draw_environment(t)
        if self.solvent:
            for team in self.teams:
                team.receive()
            for team in self.teams:
                team.fill()
            self.fill_from_outside()
            for team in self.teams:
                team.record()
            for team in self.teams:
                team.advance_orders()
            for team in self.teams:
                team.place_order(t)
            self.manage(t)
            self.settle(t)
            self.learn(t)
            self._culture_kpis()
        else:
            self.dormant()
        self.datacollector.collect(self)

    def manage(self, t: int) -> None:
        """Accountability scores, programmes (BPO, BPM, culture programme) and adaptation."""
        mg, teams = self.cfg.management, self.teams
        cost = 0.0
        if mg.alignment_rate > 0.0:
            self.alignment = self.alignment + mg.alignment_rate * (1.0 - self.alignment)
            cost += mg.alignment_cost
        for team in teams:
            team.assess(t, self.alignment)
        for team in teams:
            team.gain = erode(team.gain, mg.bpo_erosion, team.maturity)
        if mg.bpm_rate > 0.0:
            if mg.bpm_focus == "uniform":
                for team in teams:
                    team.maturity = mature(team.maturity, mg.bpm_rate)
            else:  # the whole budget on the firm's constraint
                worst = argmin_first(np.array([tm.mean_firm for tm in teams]))
                teams[worst].maturity = mature(teams[worst].maturity, min(1.0, mg.bpm_rate * len(teams)))
            cost += mg.bpm_cost * len(teams)
        if mg.bpo_every > 0 and t % mg.bpo_every == 0:
            if mg.bpo_target == "worst_local":
                target = argmin_first(np.array([tm.mean_local for tm in teams]))
            else:
                target = argmin_first(np.array([tm.mean_firm for tm in teams]))
            teams[target].gain = improve(teams[target].gain, mg.bpo_size)
            cost += mg.bpo_cost
        for team in teams:
            team.adapt(t)
        self.programme_cost = cost

    def learn(self, t: int) -> None:
        """One period of March's culture dynamics (after the burn-in periods)."""
        cu, mg = self.cfg.culture, self.cfg.management
        if cu.enabled and t % cu.every == 0:
            p1 = min(1.0, cu.p1 + mg.socialisation_boost * self.alignment)
            self.culture_step(cu.burn_in + t, p1, by_score=cu.superior == "score")
            self.update_knowledge()

    def culture_step(self, s: int, p1: float, by_score: bool) -> None:
        cu, teams = self.cfg.culture, self.teams
        m = cu.dims
        cult.turnover(self.known, self.pos, m, cu.p3, self.key, s)
        self.reality = np.uint64(cult.turbulence(self.reality, m, cu.p4, self.key, s))
        # when the organisation ranks teams by their scores, the code hears only the members
        # of its top-ranked teams (March: all members)
        top = np.ones(len(teams), dtype=np.bool_)
        if by_score:
            select_top(np.array([tm.score for tm in teams]), cu.superior_share, top)
        cult.act(self.known, self.pos, self.reality, m, self.key, s, self.actions, self.performance)
        cult.socialise(self.known, self.pos, self.code_known, self.code_pos, m, p1, self.key, s)
        # March: the members who outperform the code are superior
        code_score = cult.agreement(self.code_known, self.code_pos, self.reality, m)
        count = cult.tally(self.actions, self.performance, code_score, top, self.planes)
        known, pos = cult.code_learn(
            self.code_known, self.code_pos, self.planes, count, m, cu.p2, self.key, s
        )
        self.code_known, self.code_pos = np.uint64(known), np.uint64(pos)

    def update_knowledge(self) -> None:
        for team in self.teams:
            team.knowledge = cult.mean_knowledge(team.known, team.pos, self.reality, self.cfg.culture.dims)

    def settle(self, t: int) -> None:
        """Revenue, costs and financing of period ``t``; insolvency is absorbing."""
        f, net = self.cfg.finance, self.net
        teams = self.teams
        sales = [teams[i] for i in net.sales_teams]
        customer_shipped = line_sum(np.array([tm.shipped for tm in sales]))
        customer_requested = line_sum(np.array([tm.requested for tm in sales]))
        material = line_sum(np.array([tm.material_cost for tm in teams]))
        self.revenue = f.price * customer_shipped
        self.operating_cost = line_sum(np.array([tm.cost for tm in teams])) + self.programme_cost
        self.ebitda = self.revenue - self.operating_cost
        collections = (
            ring_push(self.receivables, t % f.receivable_lag, self.revenue)
            if f.receivable_lag
            else self.revenue
        )
        payments = ring_push(self.payables, t % f.payable_lag, material) if f.payable_lag else material
        self.free_cash_flow = collections - (self.operating_cost - material) - payments
        old = ring_push(self.ebitda_ring, t % f.covenant_window, self.ebitda)
        self.trailing_ebitda += self.ebitda - old
        self.cash_start = self.cash
        (
            self.cash,
            self.debt,
            self.credit_limit,
            self.breach,
            insolvent,
            self.net_financing,
            self.interest,
        ) = finance_step(
            self.cash,
            self.debt,
            self.trailing_ebitda,
            self.breach,
            self.free_cash_flow,
            f.interest_rate,
            f.min_cash,
            f.covenant_multiple,
            f.grace_periods,
            f.enabled,
        )
        self.credit_headroom = self.credit_limit - self.debt
        self.solvent = not insolvent
        self.demand_total = line_sum(np.array([self.demand[i] for i in net.sales_teams]))
        self.inventory_units = line_sum(np.array([tm.inventory for tm in teams]))
        self.backlog_units = line_sum(np.array([tm.backlog for tm in teams]))
        self.fill_rate = customer_shipped / customer_requested if customer_requested > 0 else 1.0

    def _culture_kpis(self) -> None:
        teams = self.teams
        self.mean_knowledge = line_sum(np.array([tm.knowledge for tm in teams])) / len(teams)
        cu = self.cfg.culture
        self.code_knowledge = (
            cult.knowledge(self.code_known, self.code_pos, self.reality, cu.dims) if cu.enabled else 1.0
        )
        self.mean_maturity = line_sum(np.array([tm.maturity for tm in teams])) / len(teams)

    def dormant(self) -> None:
        """An insolvent firm: no operations, no flows, no learning, stocks frozen."""
        for team in self.teams:
            team.received = team.shipped = team.order = team.cost = team.requested = 0.0
            team.material_cost = 0.0
        self.demand_total = line_sum(np.array([self.demand[i] for i in self.net.sales_teams]))
        self.revenue = self.operating_cost = self.ebitda = self.free_cash_flow = 0.0
        self.net_financing = self.interest = self.programme_cost = 0.0
        self.cash_start = self.cash
        self.fill_rate = 0.0 if self.demand_total > 0 else 1.0

    def _zero_kpis(self) -> None:
        for name in ("revenue", "operating_cost", "ebitda", "free_cash_flow", "net_financing", "interest"):
            setattr(self, name, 0.0)
        self.cash_start = self.cash
        self.credit_headroom = self.credit_limit - self.debt
        self.demand_total = 0.0
        self.inventory_units = float(sum(t.inventory for t in self.teams))
        self.backlog_units = 0.0
        self.fill_rate = 1.0
        self._culture_kpis()


#: model and agent attributes the DataCollector records (the same fields as the batch engine)
_KPI_ATTRS = ENGINE_KPIS
_TEAM_ATTRS = ENGINE_TEAM_FIELDS


def run_firm(cfg: Config, index: int, key: int | None = None) -> tuple[dict, dict]:
    """Run one firm for ``cfg.periods`` periods; return KPI and team arrays."""
    firm = Firm(cfg, index, key)
    for _ in range(cfg.periods):
        firm.step()
    kp = firm.datacollector.get_model_vars_dataframe()
    kpis = {k: kp[k].to_numpy() for k in _KPI_ATTRS}
    ag = firm.datacollector.get_agent_vars_dataframe().sort_index()
    n = firm.net.n_teams
    teams = {k: ag[k].to_numpy().reshape(cfg.periods, n) for k in _TEAM_ATTRS}
    return kpis, teams
