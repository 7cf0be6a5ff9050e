"""The batch engine: the whole model as Numba kernels over struct-of-arrays state.

One kernel call simulates a population of firms (``prange`` over firms). Each firm runs
:func:`_simulate_firm`, a loop over the periods of docs/model.md §3 in which every phase is a
loop over the teams calling the same layer kernels as :mod:`orgsim.engine_mesa`'s agents
(:mod:`orgsim.environment`, :mod:`orgsim.operations`, :mod:`orgsim.management`,
:mod:`orgsim.culture`, :mod:`orgsim.finance`): the equations live there, once; this module only
orchestrates them over arrays indexed by team. The equivalence tests check that the two
orchestrations give the same numbers for every scenario, strategy and environment.

Layout:

* what the population's firms share (network topology, delays, array sizes) travels as one
  :class:`Structure` and is validated to be the same for every firm;
* every other numeric parameter is a column of the per-firm matrix ``P`` (columns
  :class:`orgsim.schema.Param`) or of ``TP`` (one row per team, :class:`orgsim.schema.TeamParam`),
  so firms may differ in any of them (``params=`` in :func:`orgsim.simulate`);
* a firm's team state is one :class:`Teams` of arrays, its culture layer's members one
  :class:`Members`;
* each worker thread holds one firm's memory, a :class:`Scratch`, set to each firm's opening
  state in turn (:func:`_open_teams`, :func:`_open_members`): a firm allocates nothing;
* random numbers come from the counter-based generator in :mod:`orgsim._rng`: a firm's path
  depends only on its key, whatever the thread count or chunking.

Speed: the engine's phases are inlined at Numba's level (``inline="always"``). The layer kernels
the period loop calls once per team or per period (``operations.fill``, ``.forecast``,
``.supply_line``, ``environment.draw``, ``finance.settle``, ``_rng.normals_at``) carry
``forceinline=True``: LLVM's inliner otherwise kept each as a call (their loops, unrolled, were
past its size threshold), which made the period loop about 1.5 times slower on the beer game
(``docs/performance.md``). LLVM inlining does not change a number (no fast-math).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from . import (
    _numba_cache,  # noqa: F401  (first: where Numba caches the kernels)
    _rng,
)
from . import culture as cult
from . import environment as env
from . import finance as fin
from . import management as mg
from . import operations as ops
from .config import Config, ConfigError
from .network import build_network
from .schema import ENGINE_KPIS, ENGINE_TEAM_FIELDS, KPI, STRUCTURAL, Param, TeamField, TeamParam, parameters

__all__ = ["KPI_FIELDS", "TEAM_FIELDS", "P", "Structure", "T", "cached_on_disk", "pack", "run", "warm_up"]

KPI_FIELDS = ENGINE_KPIS
TEAM_FIELDS = ENGINE_TEAM_FIELDS
#: name -> column of the per-firm parameter matrix ``P`` (:class:`orgsim.schema.Param`)
P = {column.name: int(column) for column in Param}
#: name -> column of the per-team parameter tensor ``TP`` (:class:`orgsim.schema.TeamParam`)
T = {column.name: int(column) for column in TeamParam}


class Structure(NamedTuple):
    """What every firm of one kernel call shares: the network and the array sizes."""

    supplier: np.ndarray  #: each team's supplier, −1 for the outside source
    cust_ptr: np.ndarray  #: team i's customers are cust_idx[cust_ptr[i]:cust_ptr[i + 1]]
    cust_idx: np.ndarray
    sales: np.ndarray  #: the sales teams (stage 0)
    subtree: np.ndarray  #: [team, sales team] 1 if the sales team is downstream of the team
    info_delay: np.ndarray
    order_delay: np.ndarray
    lead_time: np.ndarray
    periods: int
    ma_window: int
    score_window: int
    covenant_window: int
    receivable_lag: int
    payable_lag: int
    dims: int  #: m, the dimensions of March's reality
    members: int  #: members per team


class Teams(NamedTuple):
    """A firm's team state, each array indexed by team (as the attributes of
    :class:`orgsim.engine_mesa.Team`); pipelines are rows as long as the longest delay."""

    inventory: np.ndarray
    backlog: np.ndarray
    owed: np.ndarray
    inbound: np.ndarray
    orders: np.ndarray
    window: np.ndarray
    expected: np.ndarray
    received: np.ndarray
    shipped: np.ndarray
    requested: np.ndarray
    incoming: np.ndarray
    order: np.ndarray
    cost: np.ndarray
    material_cost: np.ndarray
    local_ring: np.ndarray
    firm_ring: np.ndarray
    local_sum: np.ndarray
    firm_sum: np.ndarray
    mean_local: np.ndarray
    mean_firm: np.ndarray
    score: np.ndarray
    score_prev: np.ndarray
    direction: np.ndarray
    bias: np.ndarray
    gain: np.ndarray
    maturity: np.ndarray
    knowledge: np.ndarray
    requests: np.ndarray  #: buffer: the requests a team fills
    shipments: np.ndarray  #: buffer: what it ships to each
    z: np.ndarray  #: the period's decision normals: z[2i] forecast, z[2i + 1] execution
    factors: np.ndarray  #: buffer: process-cost factors at the opening steady state


class Members(NamedTuple):
    """The culture layer's members of all teams, team by team (as on
    :class:`orgsim.engine_mesa.Firm`), and what a learning step uses."""

    known: np.ndarray
    pos: np.ndarray
    actions: np.ndarray
    performance: np.ndarray
    planes: np.ndarray
    heard: np.ndarray  #: the teams the code hears: all, or the best-scoring


class Scratch(NamedTuple):
    """One worker thread's memory for a firm, allocated once per kernel call and set to each
    firm's opening state in turn (:func:`_open_teams`, :func:`_open_members`): a firm allocates
    nothing."""

    teams: Teams
    members: Members
    noise: np.ndarray  #: the sales teams' demand noise
    episodes: np.ndarray  #: the disruption and price episodes' remaining periods
    demand: np.ndarray  #: the period's end-customer demand per team
    demand_history: np.ndarray  #: [period, sales team] demand, period 0 the opening level
    receivables: np.ndarray
    payables: np.ndarray
    ebitda_ring: np.ndarray


def _structure_key(cfg: Config) -> tuple:
    out = []
    for key in STRUCTURAL:
        obj = cfg
        for part in key.split("."):
            obj = getattr(obj, part)
        out.append(obj)
    return tuple(out)


def check_structure(configs: list[Config]) -> None:
    """Raise ConfigError naming the first :data:`STRUCTURAL` key in which a firm's config
    differs from the first firm's: one call's firms share their array shapes."""
    ref = _structure_key(configs[0])
    for i, cfg in enumerate(configs[1:], start=1):
        got = _structure_key(cfg)
        if got != ref:
            key, a, b = next((k, a, b) for k, a, b in zip(STRUCTURAL, ref, got, strict=True) if a != b)
            raise ConfigError(
                f"{key} == {b!r} for firm {i}, must equal {a!r} in one call (it fixes array shapes)"
            )


def _structure(cfg: Config, net) -> Structure:
    n = net.n_teams
    cust_ptr = np.zeros(n + 1, dtype=np.int64)
    cust_idx = []
    for i in range(n):
        cust_idx.extend(net.customers[i])
        cust_ptr[i + 1] = len(cust_idx)
    return Structure(
        supplier=net.supplier.astype(np.int64),
        cust_ptr=cust_ptr,
        cust_idx=np.array(cust_idx, dtype=np.int64),
        sales=net.sales_teams.astype(np.int64),
        subtree=net.subtree_sales.astype(np.int64),
        info_delay=net.info_delay.astype(np.int64),
        order_delay=net.order_delay.astype(np.int64),
        lead_time=net.lead_time.astype(np.int64),
        periods=int(cfg.periods),
        ma_window=int(cfg.policy.ma_window),
        score_window=int(cfg.management.score_window),
        covenant_window=int(cfg.finance.covenant_window),
        receivable_lag=int(cfg.finance.receivable_lag),
        payable_lag=int(cfg.finance.payable_lag),
        dims=int(cfg.culture.dims),
        members=int(cfg.culture.members),
    )


def pack(configs: list[Config], *, checked: bool = False) -> dict:
    """Arrays for a population of firm configs that share their structure (checked here unless
    the caller has, as :func:`orgsim.simulate` does): ``"P"`` ``[firm, Param]``, ``"TP"``
    ``[firm, team, TeamParam]``, ``"structure"`` (a :class:`Structure`) and ``"network"``."""
    if not checked:
        check_structure(configs)
    base = configs[0]
    net = build_network(base)
    vectors = [parameters(cfg, build_network(cfg) if i else net) for i, cfg in enumerate(configs)]
    return {
        "P": np.ascontiguousarray(np.stack([v[0] for v in vectors])),
        "TP": np.ascontiguousarray(np.stack([v[1] for v in vectors])),
        "structure": _structure(base, net),
        "network": net,
    }


def run(
    packed: dict,
    keys: np.ndarray,
    rows: np.ndarray,
    *,
    teams: bool,
    chunk: int | None = None,
    progress=None,
    out: tuple[np.ndarray, np.ndarray] | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Simulate the firms whose parameter rows are ``rows`` with random keys ``keys``.

    Returns KPIs ``[field, firm, period]`` and, if ``teams``, ``[field, firm, period, team]``
    (field-major, so each field is one contiguous block that pandas can wrap without a copy).
    Firms are run ``chunk`` at a time (results do not depend on the chunking). ``out``, a pair
    from :func:`output_buffers` for the same shape, is filled and returned instead of new
    arrays: a caller that runs many batches of one size (a calibration) saves the page faults of
    fresh output memory (about 9 ms per 55 MB here), which cost about a tenth of a beer-game batch.
    ``workers`` (a whole number >= 1; default: Numba's thread count) is how many firms run at once, each on its
    own memory, reused firm after firm; the numbers do not depend on it.
    """
    structure = packed["structure"]
    n_firms = len(rows)
    periods = structure.periods
    n_teams = packed["TP"].shape[1]
    shapes = _output_shapes(n_firms, periods, n_teams, teams)
    if out is None:
        kpis, team_out = np.empty(shapes[0]), np.empty(shapes[1])
    else:
        kpis, team_out = out
        for name, a, shape in (("kpis", kpis, shapes[0]), ("teams", team_out, shapes[1])):
            if a.shape != shape or a.dtype != np.float64 or not a.flags.c_contiguous:
                raise ValueError(
                    f"out {name} buffer has shape {a.shape} ({a.dtype}), must be C-contiguous float64 {shape}"
                )
    if workers is None:
        workers = numba.get_num_threads()
    elif isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 1:
        raise ValueError(
            f"workers={workers!r}: must be a whole number >= 1, or None for Numba's thread count"
        )
    chunk = n_firms if not chunk else max(1, int(chunk))
    for lo in range(0, n_firms, chunk):
        hi = min(n_firms, lo + chunk)
        n_workers = min(hi - lo, int(workers))
        whole = hi - lo == n_firms
        # a part of the output arrays is a strided view, for which Numba would compile the
        # kernel once more (about a quarter of a cold compile): a chunk fills contiguous
        # arrays of its own, copied into place
        k_out = kpis if whole else np.empty((kpis.shape[0], hi - lo, periods))
        t_out = team_out if whole else np.empty((team_out.shape[0], hi - lo, *team_out.shape[2:]))
        _run_population(
            packed["P"][rows[lo:hi]],
            packed["TP"][rows[lo:hi]],
            keys[lo:hi],
            structure,
            teams,
            k_out,
            t_out,
            n_workers,
            min(BLOCK, -(-(hi - lo) // n_workers)),
        )
        if not whole:
            kpis[:, lo:hi] = k_out
            if teams:
                team_out[:, lo:hi] = t_out
        if progress is not None:
            progress(hi - lo)
    return kpis, (team_out if teams else None)


#: the kernel's variants (with and without team records) compiled or loaded in this process
_READY: set[bool] = set()


def _output_shapes(n_firms: int, periods: int, n_teams: int, teams: bool) -> tuple[tuple, tuple]:
    return (len(KPI_FIELDS), n_firms, periods), (
        (len(TEAM_FIELDS), n_firms, periods, n_teams) if teams else (0, n_firms, 0, 0)
    )


def output_buffers(packed: dict, n_firms: int, *, teams: bool) -> tuple[np.ndarray, np.ndarray]:
    """Output arrays for :func:`run` (``out=``) of ``n_firms`` firms of ``packed``'s structure."""
    shapes = _output_shapes(n_firms, packed["structure"].periods, packed["TP"].shape[1], teams)
    return np.empty(shapes[0]), np.empty(shapes[1])


def cached_on_disk() -> bool | None:
    """Whether Numba's on-disk cache holds the batch kernel (``None`` if that cannot be told):
    without it, the first call compiles (about a minute on two cores)."""
    try:
        import os

        return os.path.exists(_run_population._cache._cache_file._index_path)
    except Exception:  # pragma: no cover - Numba's cache internals moved
        return None


def warm_up(packed: dict, keys: np.ndarray, rows: np.ndarray, *, teams: bool, notice: bool = True) -> float:
    """Compile the kernel (or load it from the cache) by running the first firm alone, once per
    process and variant; return the seconds it took (0 if it was ready). With ``notice``, one
    line on standard error says so before a compile that the on-disk cache cannot spare."""
    import sys
    import time

    if bool(teams) in _READY:
        return 0.0
    if notice and cached_on_disk() is False:
        print(
            "orgsim: compiling the numba engine (once after installing or changing orgsim, about a minute; "
            "later runs load it from the cache)",
            file=sys.stderr,
            flush=True,
        )
    start = time.perf_counter()
    run(packed, keys[:1], rows[:1], teams=teams)
    _READY.add(bool(teams))
    return time.perf_counter() - start


#: the most firms a worker runs in a row (:func:`_run_population`)
BLOCK = 16


@njit(cache=True, parallel=True)
def _run_population(P, TP, keys, structure, keep_teams, kpis, team_out, workers, block):
    """One ``prange`` iteration per worker thread, each with its own :class:`Scratch`. The
    firms are dealt to the workers in blocks of ``block`` (at most :data:`BLOCK`; fewer firms
    than ``workers`` blocks are split evenly), round-robin: a block keeps neighbouring firms'
    output rows, which share cache lines, on one thread, and dealing spreads the cheap firms
    (gone dormant) over the threads. A firm's numbers depend only on its parameters and key."""
    n_firms = P.shape[0]
    for w in prange(workers):
        scratch = _new_scratch(TP.shape[1], structure)
        for first in range(w * block, n_firms, workers * block):
            for f in range(first, min(first + block, n_firms)):
                _simulate_firm(
                    P[f], TP[f], keys[f], structure, keep_teams, kpis[:, f], team_out[:, f], scratch
                )


# --------------------------------------------------------------------------------------------
# one firm
# --------------------------------------------------------------------------------------------
@njit(cache=True)
def _simulate_firm(p, tp, key, s, keep_teams, kout, tout, scratch):
    """One firm (parameters ``p``, team parameters ``tp``, random key ``key``, structure
    ``s``) for ``s.periods`` periods, in the order of docs/model.md §3 (``Firm.step``), in the
    memory ``scratch``; writes its KPIs ``[KPI, period]`` into ``kout`` and, with
    ``keep_teams``, its team records ``[TeamField, period, team]`` into ``tout``."""
    n = tp.shape[0]
    teams, members = scratch.teams, scratch.members
    _open_teams(teams, p, tp, key, s)
    _open_members(members, p)
    # environment
    noise, episodes, demand, demand_history = (
        scratch.noise, scratch.episodes, scratch.demand, scratch.demand_history,
    )  # fmt: skip
    env.start_noise(p, key, s.sales, noise)
    episodes[:] = 0
    demand[:] = 0.0
    demand_history[:] = p[Param.level]
    # culture: reality, the code, and the burn-in of learning (every team heard: no scores yet)
    rpos, code_known, code_pos = np.uint64(0), np.uint64(0), np.uint64(0)
    if p[Param.culture_enabled] != 0.0:
        cult.init_beliefs(members.known, members.pos, s.dims, key)
        rpos = cult.init_reality(s.dims, key)
        for step in range(1, int(p[Param.burn_in]) + 1):
            rpos, code_known, code_pos = _learning_step(
                p, s, members, key, step, p[Param.p1], rpos, code_known, code_pos
            )
        cult.team_knowledge(members.known, members.pos, rpos, s.dims, teams.knowledge)
    # finance: the books open at the steady state of the firm as it is, knowledge included
    receivables, payables, ebitda_ring = scratch.receivables, scratch.payables, scratch.ebitda_ring
    for i in range(n):
        teams.factors[i] = cult.team_cost_factor(p, teams.knowledge[i], teams.gain[i])
    books = fin.open_accounts(p, tp, teams.factors, s.sales, receivables, payables, ebitda_ring)
    _periods(
        p, tp, key, s, keep_teams, kout, tout, teams, members, noise, episodes, demand, demand_history,
        receivables, payables, ebitda_ring, books, rpos, code_known, code_pos,
    )  # fmt: skip


@njit(cache=True, _nrt=False)
def _periods(
    p, tp, key, s, keep_teams, kout, tout, teams, members, noise, episodes, demand, demand_history,
    receivables, payables, ebitda_ring, books, rpos, code_known, code_pos,
):  # fmt: skip
    """The period loop of :func:`_simulate_firm` over the opening state it made. It allocates
    nothing, so it is compiled without reference counting: the views it takes of the team
    arrays and parameter rows (``tp[i]``, a team's pipeline) cost no atomic operations."""
    n = tp.shape[0]
    alignment = 0.0
    programme_cost = 0.0
    inventory_units = backlog_units = mean_knowledge = mean_maturity = 0.0
    fill_rate = 1.0

    for t in range(1, s.periods + 1):
        disrupted, material_price, demand_total = env.draw(
            p, key, t, episodes, noise, s.sales, demand, demand_history[t]
        )
        if books.solvent:
            _receive(s, teams)
            _fill(p, tp, s, teams, demand)
            _fill_from_outside(p, tp, s, teams, disrupted)
            _record(p, tp, teams, material_price)
            _advance_orders(s, teams)
            _place_orders(p, tp, s, teams, key, t, demand_history)
            alignment, programme_cost = _manage(p, tp, teams, t, alignment)
            books, sales_shipped, sales_requested = _settle(
                p, s, teams, t, books, programme_cost, receivables, payables, ebitda_ring
            )
            inventory_units = ops.line_sum(teams.inventory)
            backlog_units = ops.line_sum(teams.backlog)
            fill_rate = ops.fill_rate(sales_shipped, sales_requested)
            if cult.learning_due(p, t):
                if p[Param.superior_by_score] != 0.0:
                    mg.select_top(teams.score, p[Param.superior_share], members.heard)
                p1 = cult.socialisation_rate(p, alignment)
                step = int(p[Param.burn_in]) + t
                rpos, code_known, code_pos = _learning_step(
                    p, s, members, key, step, p1, rpos, code_known, code_pos
                )
                cult.team_knowledge(members.known, members.pos, rpos, s.dims, teams.knowledge)
            mean_knowledge = ops.line_sum(teams.knowledge) / n
            mean_maturity = ops.line_sum(teams.maturity) / n
        else:  # dormant (Firm.dormant)
            _dormant(teams)
            books = fin.dormant(books)
            programme_cost = 0.0
            fill_rate = ops.fill_rate(0.0, demand_total)
        row = t - 1
        kout[KPI.demand_total, row] = demand_total
        kout[KPI.revenue, row] = books.revenue
        kout[KPI.operating_cost, row] = books.operating_cost
        kout[KPI.ebitda, row] = books.ebitda
        kout[KPI.free_cash_flow, row] = books.free_cash_flow
        kout[KPI.net_financing, row] = books.net_financing
        kout[KPI.interest, row] = books.interest
        kout[KPI.cash_start, row] = books.cash_start
        kout[KPI.cash, row] = books.cash
        kout[KPI.debt, row] = books.debt
        kout[KPI.credit_headroom, row] = books.credit_headroom
        kout[KPI.inventory_units, row] = inventory_units
        kout[KPI.backlog_units, row] = backlog_units
        kout[KPI.fill_rate, row] = fill_rate
        kout[KPI.mean_knowledge, row] = mean_knowledge
        kout[KPI.code_knowledge, row] = cult.code_knowledge(p, code_known, code_pos, rpos, s.dims)
        kout[KPI.mean_maturity, row] = mean_maturity
        kout[KPI.solvent, row] = 1.0 if books.solvent else 0.0
        kout[KPI.programme_cost, row] = programme_cost
        if keep_teams:
            for i in range(n):
                tout[TeamField.inventory, row, i] = teams.inventory[i]
                tout[TeamField.backlog, row, i] = teams.backlog[i]
                tout[TeamField.order, row, i] = teams.order[i]
                tout[TeamField.received, row, i] = teams.received[i]
                tout[TeamField.shipped, row, i] = teams.shipped[i]
                tout[TeamField.cost, row, i] = teams.cost[i]
                tout[TeamField.knowledge, row, i] = teams.knowledge[i]


@njit(cache=True, inline="always")
def _new_scratch(n, s):
    """A worker's :class:`Scratch` for firms of ``n`` teams and structure ``s``: the arrays'
    shapes only (the culture layer's members at full size, whether or not a firm uses them)."""
    max_lt = max(1, np.max(s.lead_time))
    max_od = max(1, np.max(s.order_delay))
    teams = Teams(
        inventory=np.empty(n),
        backlog=np.empty(n),
        owed=np.empty(n),
        inbound=np.empty((n, max_lt)),
        orders=np.empty((n, max_od)),
        window=np.empty((n, s.ma_window)),
        expected=np.empty(n),
        received=np.empty(n),
        shipped=np.empty(n),
        requested=np.empty(n),
        incoming=np.empty(n),
        order=np.empty(n),
        cost=np.empty(n),
        material_cost=np.empty(n),
        local_ring=np.empty((n, s.score_window)),
        firm_ring=np.empty((n, s.score_window)),
        local_sum=np.empty(n),
        firm_sum=np.empty(n),
        mean_local=np.empty(n),
        mean_firm=np.empty(n),
        score=np.empty(n),
        score_prev=np.empty(n),
        direction=np.empty(n),
        bias=np.empty(n),
        gain=np.empty(n),
        maturity=np.empty(n),
        knowledge=np.empty(n),
        requests=np.empty(n + 1),
        shipments=np.empty(n + 1),
        z=np.empty(2 * n),
        factors=np.empty(n),
    )
    size = max(1, n * s.members)
    members = Members(
        known=np.empty(size, dtype=np.uint64),
        pos=np.empty(size, dtype=np.uint64),
        actions=np.empty(size, dtype=np.uint64),
        performance=np.empty(size, dtype=np.int64),
        planes=np.empty(cult.PLANES, dtype=np.uint64),
        heard=np.empty(n, dtype=np.bool_),
    )
    n_sales = s.sales.shape[0]
    return Scratch(
        teams=teams,
        members=members,
        noise=np.empty(n_sales),
        episodes=np.empty(3, dtype=np.int64),
        demand=np.empty(n),
        demand_history=np.empty((s.periods + 1, n_sales)),
        receivables=np.empty(s.receivable_lag),
        payables=np.empty(s.payable_lag),
        ebitda_ring=np.empty(s.covenant_window),
    )


@njit(cache=True, inline="always")
def _open_teams(teams, p, tp, key, s):
    """The team state before period 1 (``Team.__init__``): the steady state. Every array the
    period loop reads before it writes is set here; the rest (``requests``, ``shipments``,
    ``z``, ``factors``) are buffers written before they are read."""
    teams.inventory[:] = tp[:, TeamParam.initial_inventory]
    for a in (
        teams.backlog, teams.owed, teams.received, teams.shipped, teams.requested, teams.incoming,
        teams.order, teams.cost, teams.material_cost, teams.local_sum, teams.firm_sum, teams.gain,
    ):  # fmt: skip
        a[:] = 0.0
    teams.inbound[:] = 0.0
    teams.orders[:] = 0.0
    teams.local_ring[:] = 0.0
    teams.firm_ring[:] = 0.0
    for a in (teams.mean_local, teams.mean_firm, teams.score, teams.bias, teams.knowledge):
        a[:] = 1.0
    teams.score_prev[:] = -np.inf
    teams.maturity[:] = p[Param.initial_maturity]
    for i in range(tp.shape[0]):
        flow = tp[i, TeamParam.throughput]
        teams.inbound[i, : s.lead_time[i]] = flow
        teams.orders[i, : s.order_delay[i]] = flow
        teams.window[i, :] = flow
        teams.expected[i] = flow
        teams.direction[i] = mg.initial_direction(key, i)


@njit(cache=True, inline="always")
def _open_members(members, p):
    """The culture layer's members before the burn-in (all heard); untouched, and unread, for a
    firm without the layer."""
    members.heard[:] = True
    if p[Param.culture_enabled] != 0.0:
        members.known[:] = 0
        members.pos[:] = 0
        members.actions[:] = 0
        members.performance[:] = 0
        members.planes[:] = 0


@njit(cache=True, inline="always")
def _learning_step(p, s, members, key, step, p1, rpos, code_known, code_pos):
    return cult.step(
        p, step, p1, s.dims, key, members.known, members.pos, members.actions, members.performance, rpos,
        code_known, code_pos, members.heard, members.planes,
    )  # fmt: skip


# ---- the phases of a period, each a loop over the teams (docs/model.md §3) -------------------
@njit(cache=True, inline="always")
def _receive(s, teams):
    """Phase 1 (``Team.receive``)."""
    for i in range(teams.inventory.shape[0]):
        teams.inventory[i], teams.received[i] = ops.receive(
            teams.inbound[i], teams.inventory[i], s.lead_time[i]
        )


@njit(cache=True, inline="always")
def _fill(p, tp, s, teams, demand):
    """Phase 2 (``Team.fill``): the requests of a sales team's end customers, or of a team's
    customers (their order slips read now and what the team already owes them)."""
    integer = p[Param.integer] != 0.0
    requests, shipments = teams.requests, teams.shipments
    for i in range(teams.inventory.shape[0]):
        first, last = s.cust_ptr[i], s.cust_ptr[i + 1]
        if first == last:  # stage 0: end customers
            teams.incoming[i] = demand[i]
            requests[0] = demand[i] + teams.backlog[i]
            m = 1
        else:
            m = last - first
            incoming = 0.0
            for j in range(m):
                c = s.cust_idx[first + j]
                requests[j] = teams.orders[c, 0] + teams.owed[c]
                incoming += teams.orders[c, 0]
            teams.incoming[i] = incoming
        teams.inventory[i], teams.shipped[i], teams.requested[i] = ops.fill(
            requests, m, teams.inventory[i], tp[i, TeamParam.capacity], integer, shipments
        )
        if first == last:
            teams.backlog[i] = ops.unmet_backlog(requests[0], shipments[0], p[Param.backlog_unmet] != 0.0)
        else:
            owed = 0.0
            for j in range(m):
                c = s.cust_idx[first + j]
                teams.owed[c] = requests[j] - shipments[j]
                teams.inbound[c, s.lead_time[c] - 1] = shipments[j]
                owed += teams.owed[c]
            teams.backlog[i] = owed


@njit(cache=True, inline="always")
def _fill_from_outside(p, tp, s, teams, disrupted):
    """Phase 2, the outside source fills the top teams (``Firm.fill_from_outside``)."""
    for i in range(teams.inventory.shape[0]):
        if s.supplier[i] < 0:
            request = teams.orders[i, 0] + teams.owed[i]
            shipped, teams.owed[i] = ops.source_fill(p, tp[i], request, disrupted)
            teams.inbound[i, s.lead_time[i] - 1] = shipped


@njit(cache=True, inline="always")
def _record(p, tp, teams, material_price):
    """Phase 3 (``Team.record``)."""
    for i in range(teams.inventory.shape[0]):
        factor = cult.team_cost_factor(p, teams.knowledge[i], teams.gain[i])
        teams.cost[i], teams.material_cost[i] = ops.operating_cost(
            tp[i],
            teams.inventory[i],
            teams.backlog[i],
            teams.shipped[i],
            teams.received[i],
            factor,
            material_price,
        )


@njit(cache=True, inline="always")
def _advance_orders(s, teams):
    """Phase 4 (``Team.advance_orders``)."""
    for i in range(teams.inventory.shape[0]):
        ops.shift(teams.orders[i], s.order_delay[i])


@njit(cache=True, inline="always")
def _place_orders(p, tp, s, teams, key, t, demand_history):
    """Phase 5 (``Team.place_order``). All teams' decision normals are drawn at once (the
    counters Mesa's teams draw one pair at a time), when any noise term is configured."""
    forecast_noise = p[Param.culture_enabled] != 0.0 and p[Param.forecast_noise] > 0.0
    if forecast_noise or p[Param.execution_noise] > 0.0:
        _rng.normals_at(_rng.stream_base(key, _rng.DECISION, 0, t), teams.z)
    for i in range(teams.inventory.shape[0]):
        q = cult.quality(teams.knowledge[i])
        observed = ops.observed_demand(
            p, teams.incoming[i], demand_history, t - s.info_delay[i], s.subtree[i]
        )
        teams.expected[i] = ops.forecast(
            p, teams.expected[i], teams.window[i], observed, cult.forecast_sd(p, q), teams.z[2 * i]
        )
        line = ops.supply_line(
            teams.orders[i], teams.owed[i], teams.inbound[i], s.order_delay[i], s.lead_time[i]
        )
        stock = teams.inventory[i] - teams.backlog[i]
        noise_sd = mg.execution_sd(p, teams.maturity[i])
        teams.order[i] = ops.order(
            p, tp[i], t, teams.expected[i], stock, line, teams.bias[i], q, noise_sd, teams.z[2 * i + 1]
        )
        teams.orders[i, s.order_delay[i] - 1] = teams.order[i]


@njit(cache=True, inline="always")
def _manage(p, tp, teams, t, alignment):
    """Phase 6 (``Firm.manage``): the culture programme, every team's score, erosion, BPM,
    BPO, adaptation. Returns ``(alignment, programme cost)``."""
    alignment, cost = mg.culture_programme(p, alignment)
    weight = mg.accountability_weight(p[Param.weight0], p[Param.alignment_weight], alignment)
    slot, count = mg.window_slot(t, teams.local_ring.shape[1])
    for i in range(teams.inventory.shape[0]):
        metric = int(tp[i, TeamParam.metric])
        value = mg.measure_metric(
            metric,
            tp[i],
            teams.shipped[i],
            teams.requested[i],
            teams.cost[i],
            teams.inventory[i],
            teams.backlog[i],
        )
        local = mg.normalised(value, tp[i, TeamParam.metric_target], mg.HIGHER_IS_BETTER[metric])
        firm = mg.firm_score(p, tp[i], teams.cost[i], teams.backlog[i])
        teams.local_sum[i], teams.mean_local[i] = mg.window_push(
            teams.local_ring[i], slot, count, local, teams.local_sum[i]
        )
        teams.firm_sum[i], teams.mean_firm[i] = mg.window_push(
            teams.firm_ring[i], slot, count, firm, teams.firm_sum[i]
        )
        teams.score[i] = mg.weighted_score(teams.mean_local[i], teams.mean_firm[i], weight)
    for i in range(teams.inventory.shape[0]):
        teams.gain[i] = mg.erode(teams.gain[i], p[Param.bpo_erosion], teams.maturity[i])
    cost += mg.develop_maturity(p, teams.maturity, teams.mean_firm)
    cost += mg.improve_processes(p, t, teams.gain, teams.mean_local, teams.mean_firm)
    if mg.adapt_due(p, t):
        for i in range(teams.inventory.shape[0]):
            teams.bias[i], teams.direction[i], teams.score_prev[i] = mg.adapt(
                p, teams.bias[i], teams.direction[i], teams.score[i], teams.score_prev[i]
            )
    return alignment, cost


@njit(cache=True, inline="always")
def _settle(p, s, teams, t, books, programme_cost, receivables, payables, ebitda_ring):
    """Phase 7 (``Firm.settle``). Returns the period's accounts and what the sales teams
    shipped and were asked for."""
    sales_shipped = 0.0
    sales_requested = 0.0
    for k in range(s.sales.shape[0]):
        sales_shipped += teams.shipped[s.sales[k]]
    for k in range(s.sales.shape[0]):
        sales_requested += teams.requested[s.sales[k]]
    books = fin.settle(
        p, t, books, sales_shipped, ops.line_sum(teams.cost), programme_cost, ops.line_sum(teams.material_cost),
        receivables, payables, ebitda_ring,
    )  # fmt: skip
    return books, sales_shipped, sales_requested


@njit(cache=True, inline="always")
def _dormant(teams):
    """An insolvent firm's teams (``Team.dormant``): no flows."""
    for i in range(teams.inventory.shape[0]):
        (
            teams.received[i], teams.shipped[i], teams.order[i], teams.cost[i], teams.requested[i],
            teams.material_cost[i],
        ) = ops.idle_flows()  # fmt: skip
