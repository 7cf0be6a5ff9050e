"""The batch engine: the whole model as Numba kernels over struct-of-arrays state.

One kernel call simulates a population of firms (``prange`` over firms). It runs the same
periods, in the same order, as :mod:`orgsim.engine_mesa` and calls the same layer kernels
(:mod:`orgsim.operations`, :mod:`orgsim.environment`, :mod:`orgsim.management`,
:mod:`orgsim.culture`, :mod:`orgsim.finance`), so both engines give the same numbers; the
equivalence tests check it for every scenario, strategy and environment.

Layout:

* structure shared by the population (network topology, delays, window lengths, culture sizes)
  is validated to be the same for every firm;
* every other numeric parameter is a column of the per-firm matrix ``P`` (scalars) or of
  ``TP`` (one row per team), so firms may differ in any of them (``params=`` in
  :func:`orgsim.simulate`);
* random numbers come from the counter-based generator in :mod:`orgsim._rng`: a firm's path
  depends only on its key, whatever the thread count or chunking.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import (
    _numba_cache,  # noqa: F401  (first: where Numba caches the kernels)
    _rng,
)
from . import culture as cult
from .config import Config, ConfigError
from .environment import ar1_next, ar1_start, demand_mean, demand_value, episode_update
from .finance import finance_step, ring_push
from .management import (
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
from .network import Network, build_network
from .operations import (
    allocate,
    allocate_one,
    anchor_and_adjust,
    desired_stock,
    finalize_order,
    line_sum,
    push_and_mean,
    row_sum,
    smooth,
    team_cost,
)
from .schema import ENGINE_KPIS, ENGINE_TEAM_FIELDS, STRUCTURAL

__all__ = ["KPI_FIELDS", "TEAM_FIELDS", "cached_on_disk", "pack", "run", "warm_up"]

KPI_FIELDS = ENGINE_KPIS
TEAM_FIELDS = ENGINE_TEAM_FIELDS
# rows of the kernel's KPI output, by name
_K_DEMAND_TOTAL = KPI_FIELDS.index("demand_total")
_K_REVENUE = KPI_FIELDS.index("revenue")
_K_OPERATING_COST = KPI_FIELDS.index("operating_cost")
_K_EBITDA = KPI_FIELDS.index("ebitda")
_K_FREE_CASH_FLOW = KPI_FIELDS.index("free_cash_flow")
_K_NET_FINANCING = KPI_FIELDS.index("net_financing")
_K_INTEREST = KPI_FIELDS.index("interest")
_K_CASH_START = KPI_FIELDS.index("cash_start")
_K_CASH = KPI_FIELDS.index("cash")
_K_DEBT = KPI_FIELDS.index("debt")
_K_CREDIT_HEADROOM = KPI_FIELDS.index("credit_headroom")
_K_INVENTORY_UNITS = KPI_FIELDS.index("inventory_units")
_K_BACKLOG_UNITS = KPI_FIELDS.index("backlog_units")
_K_FILL_RATE = KPI_FIELDS.index("fill_rate")
_K_MEAN_KNOWLEDGE = KPI_FIELDS.index("mean_knowledge")
_K_CODE_KNOWLEDGE = KPI_FIELDS.index("code_knowledge")
_K_MEAN_MATURITY = KPI_FIELDS.index("mean_maturity")
_K_SOLVENT = KPI_FIELDS.index("solvent")
_K_PROGRAMME_COST = KPI_FIELDS.index("programme_cost")

# ---- per-firm scalar parameters: column indices of P --------------------------------------
_P_NAMES = (
    "theta", "alpha_s", "beta", "moving_average", "fixed_order_periods", "allow_negative_orders",
    "integer", "shared", "level", "trend", "seasonality", "season_period", "rho", "sigma",
    "shock_prob", "shock_size", "shock_duration", "step_period", "step_size", "allow_negative",
    "backlog_unmet", "material", "disruption_prob", "disruption_duration", "disruption_severity",
    "finance_enabled", "price", "initial_cash", "min_cash", "interest_rate", "covenant_multiple",
    "grace_periods", "culture_enabled", "p1", "p2", "p3", "p4", "burn_in", "superior_by_score",
    "superior_share", "beta_sensitivity", "forecast_noise", "cost_sensitivity", "weight0",
    "adapt_every", "adapt_step", "bias_min", "bias_max", "execution_noise", "initial_maturity",
    "bpo_every", "bpo_size", "bpo_cost", "bpo_constraint", "bpo_erosion", "bpm_rate", "bpm_cost",
    "bpm_constraint", "alignment_rate", "alignment_cost", "alignment_weight",
    "socialisation_boost", "unit_margin", "culture_every", "cost_shock_prob",
    "cost_shock_size", "cost_shock_duration",
)  # fmt: skip
P = {name: i for i, name in enumerate(_P_NAMES)}
# column constants (Numba reads them as compile-time constants)
_THETA = 0
_ALPHA_S = 1
_BETA = 2
_MOVING_AVERAGE = 3
_FIXED_ORDER_PERIODS = 4
_ALLOW_NEGATIVE_ORDERS = 5
_INTEGER = 6
_SHARED = 7
_LEVEL = 8
_TREND = 9
_SEASONALITY = 10
_SEASON_PERIOD = 11
_RHO = 12
_SIGMA = 13
_SHOCK_PROB = 14
_SHOCK_SIZE = 15
_SHOCK_DURATION = 16
_STEP_PERIOD = 17
_STEP_SIZE = 18
_ALLOW_NEGATIVE = 19
_BACKLOG_UNMET = 20
_MATERIAL = 21
_DISRUPTION_PROB = 22
_DISRUPTION_DURATION = 23
_DISRUPTION_SEVERITY = 24
_FINANCE_ENABLED = 25
_PRICE = 26
_INITIAL_CASH = 27
_MIN_CASH = 28
_INTEREST_RATE = 29
_COVENANT_MULTIPLE = 30
_GRACE_PERIODS = 31
_CULTURE_ENABLED = 32
_P1 = 33
_P2 = 34
_P3 = 35
_P4 = 36
_BURN_IN = 37
_SUPERIOR_BY_SCORE = 38
_SUPERIOR_SHARE = 39
_BETA_SENSITIVITY = 40
_FORECAST_NOISE = 41
_COST_SENSITIVITY = 42
_WEIGHT0 = 43
_ADAPT_EVERY = 44
_ADAPT_STEP = 45
_BIAS_MIN = 46
_BIAS_MAX = 47
_EXECUTION_NOISE = 48
_INITIAL_MATURITY = 49
_BPO_EVERY = 50
_BPO_SIZE = 51
_BPO_COST = 52
_BPO_CONSTRAINT = 53
_BPO_EROSION = 54
_BPM_RATE = 55
_BPM_COST = 56
_BPM_CONSTRAINT = 57
_ALIGNMENT_RATE = 58
_ALIGNMENT_COST = 59
_ALIGNMENT_WEIGHT = 60
_SOCIALISATION_BOOST = 61
_UNIT_MARGIN = 62
_CULTURE_EVERY = 63
_COST_SHOCK_PROB = 64
_COST_SHOCK_SIZE = 65
_COST_SHOCK_DURATION = 66

# ---- per-team parameters: column indices of TP ---------------------------------------------
_T_NAMES = (
    "capacity", "throughput", "s_prime", "cover", "holding", "backlog_cost", "unit_cost",
    "fixed_cost", "initial_inventory", "steady_cost", "metric_target", "metric_scale", "metric",
    "is_top", "inventory_target", "supply_line_target",
)  # fmt: skip
T = {name: i for i, name in enumerate(_T_NAMES)}
_T_CAPACITY = 0
_T_THROUGHPUT = 1
_T_S_PRIME = 2
_T_COVER = 3
_T_HOLDING = 4
_T_BACKLOG_COST = 5
_T_UNIT_COST = 6
_T_FIXED_COST = 7
_T_INITIAL_INVENTORY = 8
_T_STEADY_COST = 9
_T_METRIC_TARGET = 10
_T_METRIC_SCALE = 11
_T_METRIC = 12
_T_IS_TOP = 13
_T_INVENTORY_TARGET = 14
_T_SUPPLY_LINE_TARGET = 15

#: config fields that fix array shapes or the network: the same for every firm of a call


def _firm_vectors(cfg: Config, net: Network) -> tuple[np.ndarray, np.ndarray]:
    """The scalar parameter vector and team parameter matrix of one firm's config."""
    d, pol, c, s, f, cu, mg = (
        cfg.demand,
        cfg.policy,
        cfg.costs,
        cfg.supply,
        cfg.finance,
        cfg.culture,
        cfg.management,
    )
    values = {
        "theta": pol.theta,
        "alpha_s": pol.alpha_s,
        "beta": pol.beta,
        "moving_average": pol.forecast == "moving_average",
        "fixed_order_periods": pol.fixed_order_periods,
        "allow_negative_orders": pol.allow_negative_orders,
        "integer": cfg.network.integer_units,
        "shared": cfg.information == "shared",
        "level": d.level,
        "trend": d.trend,
        "seasonality": d.seasonality,
        "season_period": d.season_period,
        "rho": d.rho,
        "sigma": d.cv * d.level,
        "shock_prob": d.shock_prob,
        "shock_size": d.shock_size,
        "shock_duration": d.shock_duration,
        "step_period": d.step_period,
        "step_size": d.step_size,
        "allow_negative": d.allow_negative,
        "backlog_unmet": c.unmet == "backlog",
        "material": c.material,
        "disruption_prob": s.disruption_prob,
        "disruption_duration": s.disruption_duration,
        "disruption_severity": s.disruption_severity,
        "finance_enabled": f.enabled,
        "price": f.price,
        "initial_cash": f.initial_cash,
        "min_cash": f.min_cash,
        "interest_rate": f.interest_rate,
        "covenant_multiple": f.covenant_multiple,
        "grace_periods": f.grace_periods,
        "culture_enabled": cu.enabled,
        "p1": cu.p1,
        "p2": cu.p2,
        "p3": cu.p3,
        "p4": cu.p4,
        "burn_in": cu.burn_in,
        "superior_by_score": cu.superior == "score",
        "superior_share": cu.superior_share,
        "beta_sensitivity": cu.beta_sensitivity,
        "forecast_noise": cu.forecast_noise,
        "cost_sensitivity": cu.cost_sensitivity,
        "weight0": mg.accountability_weight,
        "adapt_every": mg.adapt_every,
        "adapt_step": mg.adapt_step,
        "bias_min": mg.bias_min,
        "bias_max": mg.bias_max,
        "execution_noise": mg.execution_noise,
        "initial_maturity": mg.initial_maturity,
        "bpo_every": mg.bpo_every,
        "bpo_size": mg.bpo_size,
        "bpo_cost": mg.bpo_cost,
        "bpo_constraint": mg.bpo_target == "constraint",
        "bpo_erosion": mg.bpo_erosion,
        "bpm_rate": mg.bpm_rate,
        "bpm_cost": mg.bpm_cost,
        "bpm_constraint": mg.bpm_focus == "constraint",
        "alignment_rate": mg.alignment_rate,
        "alignment_cost": mg.alignment_cost,
        "alignment_weight": mg.alignment_weight,
        "socialisation_boost": mg.socialisation_boost,
        "unit_margin": net.unit_margin,
        "culture_every": cu.every,
        "cost_shock_prob": s.cost_shock_prob,
        "cost_shock_size": s.cost_shock_size,
        "cost_shock_duration": s.cost_shock_duration,
    }
    p = np.array([float(values[name]) for name in _P_NAMES], dtype=np.float64)
    tp = np.column_stack(
        [
            net.capacity,
            net.throughput,
            net.s_prime,
            net.cover,
            net.holding,
            net.backlog_cost,
            net.unit_cost,
            net.fixed_cost,
            net.initial_inventory,
            net.steady_cost,
            net.metric_target,
            net.metric_scale,
            net.metric.astype(np.float64),
            (net.supplier < 0).astype(np.float64),
            net.inventory_target,
            net.supply_line_target,
        ]
    )
    return p, np.ascontiguousarray(tp, dtype=np.float64)


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


def pack(configs: list[Config], *, checked: bool = False) -> dict:
    """Arrays for a population of firm configs that share their structure (checked here unless
    the caller has, as :func:`orgsim.simulate` does)."""
    if not checked:
        check_structure(configs)
    base = configs[0]
    net = build_network(base)
    vectors = [_firm_vectors(cfg, build_network(cfg) if i else net) for i, cfg in enumerate(configs)]
    n = net.n_teams
    cust_ptr = np.zeros(n + 1, dtype=np.int64)
    cust_idx = []
    for i in range(n):
        cust_idx.extend(net.customers[i])
        cust_ptr[i + 1] = len(cust_idx)
    return {
        "P": np.ascontiguousarray(np.stack([v[0] for v in vectors])),
        "TP": np.ascontiguousarray(np.stack([v[1] for v in vectors])),
        "supplier": net.supplier.astype(np.int64),
        "cust_ptr": cust_ptr,
        "cust_idx": np.array(cust_idx, dtype=np.int64),
        "sales": net.sales_teams.astype(np.int64),
        "subtree": net.subtree_sales.astype(np.int64),
        "info_delay": net.info_delay.astype(np.int64),
        "order_delay": net.order_delay.astype(np.int64),
        "lead_time": net.lead_time.astype(np.int64),
        "sizes": np.array(
            [
                base.periods,
                base.policy.ma_window,
                base.management.score_window,
                base.finance.covenant_window,
                base.finance.receivable_lag,
                base.finance.payable_lag,
                base.culture.dims,
                base.culture.members,
            ],
            dtype=np.int64,
        ),
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
) -> tuple[np.ndarray, np.ndarray | None]:
    """Simulate the firms whose parameter rows are ``rows`` with random keys ``keys``.

    Returns KPIs ``[field, firm, period]`` and, if ``teams``, ``[field, firm, period, team]``
    (field-major, so each field is one contiguous block that pandas can wrap without a copy).
    Firms are run ``chunk`` at a time (results do not depend on the chunking).
    """
    n_firms = len(rows)
    periods = int(packed["sizes"][0])
    n_teams = packed["TP"].shape[1]
    kpis = np.empty((len(KPI_FIELDS), n_firms, periods))
    team_out = np.empty((len(TEAM_FIELDS), n_firms, periods, n_teams) if teams else (0, n_firms, 0, 0))
    chunk = n_firms if not chunk else max(1, int(chunk))
    for lo in range(0, n_firms, chunk):
        hi = min(n_firms, lo + chunk)
        _run_population(
            packed["P"][rows[lo:hi]],
            packed["TP"][rows[lo:hi]],
            keys[lo:hi],
            packed["supplier"],
            packed["cust_ptr"],
            packed["cust_idx"],
            packed["sales"],
            packed["subtree"],
            packed["info_delay"],
            packed["order_delay"],
            packed["lead_time"],
            packed["sizes"],
            teams,
            kpis[:, lo:hi],
            team_out[:, lo:hi],
        )
        if progress is not None:
            progress(hi - lo)
    return kpis, (team_out if teams else None)


#: the kernel's variants (with and without team records) compiled or loaded in this process
_READY: set[bool] = set()


def cached_on_disk() -> bool | None:
    """Whether Numba's on-disk cache holds the batch kernel (``None`` if that cannot be told):
    without it, the first call compiles for about 20 s."""
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
            "orgsim: compiling the numba engine (once after installing or changing orgsim, about 20 s; "
            "later runs load it from the cache)",
            file=sys.stderr,
            flush=True,
        )
    start = time.perf_counter()
    run(packed, keys[:1], rows[:1], teams=teams)
    _READY.add(bool(teams))
    return time.perf_counter() - start


@njit(cache=True, parallel=True)
def _run_population(
    P,
    TP,
    keys,
    supplier,
    cust_ptr,
    cust_idx,
    sales,
    subtree,
    info_delay,
    order_delay,
    lead_time,
    sizes,
    keep_teams,
    kpis,
    team_out,
):
    for f in prange(P.shape[0]):
        _simulate_firm(
            P[f],
            TP[f],
            keys[f],
            supplier,
            cust_ptr,
            cust_idx,
            sales,
            subtree,
            info_delay,
            order_delay,
            lead_time,
            sizes,
            keep_teams,
            kpis[:, f],
            team_out[:, f],
        )


@njit(cache=True, _nrt=False)
def _culture_step(
    s,
    p1,
    p,
    key,
    m,
    known,
    pos,
    actions,
    performance,
    rpos,
    code_known,
    code_pos,
    top,
    planes,
):
    """March's culture step for one firm (same order as ``Firm.culture_step``); the member
    arrays hold the firm's members team by team, and the code hears the members of the teams
    marked in ``top`` (chosen by the caller: every team, or the best-scoring ones).

    Returns the new ``(rpos, code_known, code_pos)``.
    """
    cult.turnover(known, pos, m, p[_P3], key, s)
    rpos = cult.turbulence(rpos, m, p[_P4], key, s)
    cult.act(known, pos, rpos, m, key, s, actions, performance)
    cult.socialise(known, pos, code_known, code_pos, m, p1, key, s)
    code_score = cult.agreement(code_known, code_pos, rpos, m)
    count = cult.tally(actions, performance, code_score, top, planes)
    code_known, code_pos = cult.code_learn(code_known, code_pos, planes, count, m, p[_P2], key, s)
    return rpos, code_known, code_pos


@njit(cache=True)
def _simulate_firm(
    p,
    tp,
    key,
    supplier,
    cust_ptr,
    cust_idx,
    sales,
    subtree,
    info_delay,
    order_delay,
    lead_time,
    sizes,
    keep_teams,
    kout,
    tout,
):
    periods, ma_window, score_window, cov_window, r_lag, p_lag, dims, members = (
        sizes[0], sizes[1], sizes[2], sizes[3], sizes[4], sizes[5], sizes[6], sizes[7],
    )  # fmt: skip
    n = tp.shape[0]
    n_sales = sales.shape[0]
    integer = p[_INTEGER] != 0.0
    culture_on = p[_CULTURE_ENABLED] != 0.0
    cost_sens = p[_COST_SENSITIVITY] if culture_on else 0.0
    beta_sens = p[_BETA_SENSITIVITY] if culture_on else 0.0

    # ---- team state (as in Team.__init__) -------------------------------------------------
    inventory = tp[:, _T_INITIAL_INVENTORY].copy()
    backlog = np.zeros(n)
    owed = np.zeros(n)
    max_lt = 1
    max_od = 1
    for i in range(n):
        max_lt = max(max_lt, lead_time[i])
        max_od = max(max_od, order_delay[i])
    inbound = np.zeros((n, max_lt))
    orders = np.zeros((n, max_od))
    window = np.empty((n, ma_window))
    expected = np.empty(n)
    for i in range(n):
        thr = tp[i, _T_THROUGHPUT]
        inbound[i, : lead_time[i]] = thr
        orders[i, : order_delay[i]] = thr
        window[i, :] = thr
        expected[i] = thr
    received = np.zeros(n)
    shipped = np.zeros(n)
    requested = np.zeros(n)
    incoming = np.zeros(n)
    order = np.zeros(n)
    cost = np.zeros(n)
    material_cost = np.zeros(n)
    local_ring = np.zeros((n, score_window))
    firm_ring = np.zeros((n, score_window))
    local_sum = np.zeros(n)
    firm_sum = np.zeros(n)
    mean_local = np.ones(n)
    mean_firm = np.ones(n)
    score = np.ones(n)
    score_prev = np.full(n, -np.inf)
    direction = np.empty(n)
    for i in range(n):
        direction[i] = 1.0 if _rng.uniform(key, _rng.MANAGEMENT, i, 0, 0) < 0.5 else -1.0
    bias = np.ones(n)
    gain = np.zeros(n)
    maturity = np.full(n, p[_INITIAL_MATURITY])
    knowledge = np.ones(n)
    requests = np.empty(n + 1)
    # the decision noise (forecast and execution normals) of each team, drawn together per period
    noisy = (culture_on and p[_FORECAST_NOISE] > 0.0) or p[_EXECUTION_NOISE] > 0.0
    z = np.zeros(2 * n)  # team i's pair: z[2i] (forecast), z[2i + 1] (execution)
    out = np.empty(n + 1)

    # ---- environment state ----------------------------------------------------------------
    sigma = p[_SIGMA]
    noise = np.empty(n_sales)
    for s_i in range(n_sales):
        noise[s_i] = ar1_start(key, _rng.DEMAND_NOISE, sales[s_i], p[_RHO], sigma)
    demand = np.zeros(n)
    demand_history = np.full((periods + 1, n_sales), p[_LEVEL])
    shock_left = 0
    disruption_left = 0
    cost_shock_left = 0

    # ---- management and culture state -----------------------------------------------------
    alignment = 0.0
    weight = p[_WEIGHT0]
    programme_cost = 0.0
    c_members = n * members if culture_on else 1
    known = np.zeros(c_members, dtype=np.uint64)
    pos = np.zeros(c_members, dtype=np.uint64)
    actions = np.zeros(c_members, dtype=np.uint64)
    performance = np.zeros(c_members, dtype=np.int64)
    planes = np.zeros(cult.PLANES, dtype=np.uint64)
    rpos = np.uint64(0)
    code_known = np.uint64(0)
    code_pos = np.uint64(0)
    top = np.ones(n, dtype=np.bool_)  # the teams the code hears: all, or the best-scoring
    by_score = p[_SUPERIOR_BY_SCORE] != 0.0
    burn_in = int(p[_BURN_IN])
    if culture_on:  # the burn-in hears every team's members (there are no scores yet)
        cult.init_beliefs(known, pos, dims, key)
        rpos = cult.init_reality(dims, key)
        for s in range(1, burn_in + 1):
            rpos, code_known, code_pos = _culture_step(
                s, p[_P1], p, key, dims, known, pos, actions, performance, rpos, code_known, code_pos,
                top, planes,
            )  # fmt: skip
        cult.team_knowledge(known, pos, rpos, dims, knowledge)

    # ---- finance state --------------------------------------------------------------------
    fin_on = p[_FINANCE_ENABLED] != 0.0
    # the covenant window and payables start at the steady state of the firm as it is (its
    # knowledge after the burn-in included), as in Firm.__init__
    thr_sales = 0.0
    for s_i in range(n_sales):
        thr_sales += tp[sales[s_i], _T_THROUGHPUT]
    revenue_ss = p[_PRICE] * thr_sales
    steady_total = 0.0
    material_ss = 0.0
    for i in range(n):
        f_i = cult.cost_factor(cult.quality(knowledge[i]), cost_sens, gain[i])
        thr = tp[i, _T_THROUGHPUT]
        c_i = team_cost(
            tp[i, _T_INITIAL_INVENTORY], 0.0, thr, tp[i, _T_HOLDING], tp[i, _T_BACKLOG_COST],
            tp[i, _T_UNIT_COST] * f_i, tp[i, _T_FIXED_COST] * f_i,
        )  # fmt: skip
        c_i = c_i + (p[_MATERIAL] * f_i * thr if supplier[i] < 0 else 0.0)
        steady_total += c_i
    for i in range(n):
        if supplier[i] < 0:
            f_i = cult.cost_factor(cult.quality(knowledge[i]), cost_sens, gain[i])
            material_ss += p[_MATERIAL] * f_i * tp[i, _T_THROUGHPUT]
    ss = revenue_ss - steady_total
    receivables = np.full(r_lag, revenue_ss)
    payables = np.full(p_lag, material_ss)
    ebitda_ring = np.full(cov_window, ss)
    trailing = ss * cov_window
    cash = p[_INITIAL_CASH]
    debt = 0.0
    breach = 0
    limit = max(0.0, p[_COVENANT_MULTIPLE] * trailing) if fin_on else 0.0
    solvent = True
    revenue = operating_cost = ebitda = fcf = net_fin = interest = 0.0
    inventory_units = 0.0
    backlog_units = 0.0
    fill_rate = 1.0
    mean_k = 0.0
    mean_m = 0.0

    for t in range(1, periods + 1):
        # ---- environment (Firm.draw_environment) ------------------------------------------
        shock, shock_left = episode_update(
            shock_left, key, _rng.DEMAND_SHOCK, t, p[_SHOCK_PROB], int(p[_SHOCK_DURATION])
        )
        disrupted, disruption_left = episode_update(
            disruption_left, key, _rng.SUPPLY_DISRUPTION, t, p[_DISRUPTION_PROB], int(p[_DISRUPTION_DURATION])
        )
        cost_shock, cost_shock_left = episode_update(
            cost_shock_left, key, _rng.COST_SHOCK, t, p[_COST_SHOCK_PROB], int(p[_COST_SHOCK_DURATION])
        )
        material_price = p[_MATERIAL] * (1.0 + p[_COST_SHOCK_SIZE]) if cost_shock else p[_MATERIAL]
        mean = demand_mean(
            p[_LEVEL], p[_TREND], p[_SEASONALITY], p[_SEASON_PERIOD], p[_STEP_PERIOD], p[_STEP_SIZE], t
        )
        for s_i in range(n_sales):
            team = sales[s_i]
            noise[s_i] = ar1_next(noise[s_i], key, _rng.DEMAND_NOISE, team, t, p[_RHO], sigma)
            value = demand_value(mean, shock, p[_SHOCK_SIZE], noise[s_i], p[_ALLOW_NEGATIVE] != 0.0, integer)
            demand[team] = value
            demand_history[t, s_i] = value

        demand_total = 0.0
        for s_i in range(n_sales):
            demand_total += demand[sales[s_i]]

        if solvent:
            # ---- 1 receive ----------------------------------------------------------------
            for i in range(n):
                lt = lead_time[i]
                received[i] = inbound[i, 0]
                for k in range(lt - 1):
                    inbound[i, k] = inbound[i, k + 1]
                inbound[i, lt - 1] = 0.0
                inventory[i] += received[i]
            # ---- 2 fill -------------------------------------------------------------------
            for i in range(n):
                nc = cust_ptr[i + 1] - cust_ptr[i]
                if nc == 0:  # stage 0: end customers
                    incoming[i] = demand[i]
                    requests[0] = demand[i] + backlog[i]
                    m = 1
                else:
                    m = nc
                    for j in range(nc):
                        c = cust_idx[cust_ptr[i] + j]
                        requests[j] = orders[c, 0] + owed[c]
                    inc = 0.0
                    for j in range(nc):
                        inc += orders[cust_idx[cust_ptr[i] + j], 0]
                    incoming[i] = inc
                available = min(max(inventory[i], 0.0), tp[i, _T_CAPACITY])
                # one customer (the common case): allocate_one directly, as allocate would; the
                # call to allocate costs about 2 % of the whole run here
                if m == 1:
                    out[0], shipped[i] = allocate_one(requests[0], available, integer)
                else:
                    shipped[i] = allocate(requests, available, integer, out, m)
                requested[i] = line_sum(requests, m)
                inventory[i] -= shipped[i]
                if nc == 0:
                    backlog[i] = requests[0] - out[0] if p[_BACKLOG_UNMET] != 0.0 else 0.0
                else:
                    total = 0.0
                    for j in range(nc):
                        c = cust_idx[cust_ptr[i] + j]
                        owed[c] = requests[j] - out[j]
                        inbound[c, lead_time[c] - 1] = out[j]
                    for j in range(nc):
                        total += owed[cust_idx[cust_ptr[i] + j]]
                    backlog[i] = total
            # the outside source fills the top teams
            for i in range(n):
                if supplier[i] < 0:
                    request = orders[i, 0] + owed[i]
                    cap = (1.0 - p[_DISRUPTION_SEVERITY]) * tp[i, _T_THROUGHPUT] if disrupted else np.inf
                    filled = allocate_one(request, cap, integer)[0]
                    owed[i] = request - filled
                    inbound[i, lead_time[i] - 1] = filled
            # ---- 3 record -----------------------------------------------------------------
            for i in range(n):
                q = cult.quality(knowledge[i])
                factor = cult.cost_factor(q, cost_sens, gain[i])
                cost[i] = team_cost(
                    inventory[i],
                    backlog[i],
                    shipped[i],
                    tp[i, _T_HOLDING],
                    tp[i, _T_BACKLOG_COST],
                    tp[i, _T_UNIT_COST] * factor,
                    tp[i, _T_FIXED_COST] * factor,
                )
                material_cost[i] = material_price * factor * received[i] if supplier[i] < 0 else 0.0
                cost[i] += material_cost[i]
            # ---- 4 advance orders ---------------------------------------------------------
            for i in range(n):
                od = order_delay[i]
                for k in range(od - 1):
                    orders[i, k] = orders[i, k + 1]
                orders[i, od - 1] = 0.0
            # ---- 5 order ------------------------------------------------------------------
            decision_base = _rng.stream_base(key, _rng.DECISION, 0, t)  # pair i is team i's
            if noisy:  # all teams' pairs at once: normals 2i and 2i + 1 are team i's pair
                _rng.normals_at(decision_base, z)
            for i in range(n):
                q = cult.quality(knowledge[i])
                if p[_SHARED] != 0.0:
                    row = max(t - info_delay[i], 0)
                    observed = 0.0
                    for s_i in range(n_sales):
                        if subtree[i, s_i] != 0:
                            observed += demand_history[row, s_i]
                else:
                    observed = incoming[i]
                noise_sd = p[_FORECAST_NOISE] * (1.0 - q) if culture_on else 0.0
                exec_sd = p[_EXECUTION_NOISE] * (1.0 - maturity[i])
                z_forecast = z[2 * i]
                z_execution = z[2 * i + 1]
                if noise_sd > 0.0:
                    observed = observed * (1.0 + noise_sd * z_forecast)
                if p[_MOVING_AVERAGE] != 0.0:
                    expected[i] = push_and_mean(window[i], observed)
                else:
                    expected[i] = smooth(expected[i], observed, p[_THETA])
                supply_line = row_sum(orders, i, order_delay[i]) + owed[i] + row_sum(inbound, i, lead_time[i])
                if t <= p[_FIXED_ORDER_PERIODS]:
                    indicated = tp[i, _T_THROUGHPUT]
                else:
                    beta = cult.effective_beta(p[_BETA], q, beta_sens)
                    desired = desired_stock(
                        tp[i, _T_S_PRIME], tp[i, _T_INVENTORY_TARGET], tp[i, _T_SUPPLY_LINE_TARGET], beta
                    )
                    indicated = anchor_and_adjust(
                        expected[i],
                        inventory[i] - backlog[i],
                        supply_line,
                        bias[i] * desired,
                        tp[i, _T_COVER],
                        p[_ALPHA_S],
                        beta,
                    )
                    if exec_sd > 0.0:
                        indicated = indicated * (1.0 + exec_sd * z_execution)
                order[i] = finalize_order(indicated, p[_ALLOW_NEGATIVE_ORDERS] != 0.0, integer)
                orders[i, order_delay[i] - 1] = order[i]
            # ---- 6 manage -----------------------------------------------------------------
            programme_cost = 0.0
            if p[_ALIGNMENT_RATE] > 0.0:
                alignment = alignment + p[_ALIGNMENT_RATE] * (1.0 - alignment)
                programme_cost += p[_ALIGNMENT_COST]
            weight = p[_WEIGHT0] + (p[_ALIGNMENT_WEIGHT] - p[_WEIGHT0]) * alignment
            slot = (t - 1) % score_window
            count = min(t, score_window)
            for i in range(n):
                metric = int(tp[i, _T_METRIC])
                value = local_value(
                    metric,
                    shipped[i],
                    requested[i],
                    tp[i, _T_METRIC_SCALE],
                    cost[i],
                    tp[i, _T_HOLDING] * max(inventory[i], 0.0) + tp[i, _T_BACKLOG_COST] * backlog[i],
                )
                local = normalised(value, tp[i, _T_METRIC_TARGET], metric <= 1)
                firm = normalised(
                    firm_value(cost[i], backlog[i], p[_UNIT_MARGIN]), tp[i, _T_STEADY_COST], False
                )
                local_sum[i] += local - local_ring[i, slot]
                firm_sum[i] += firm - firm_ring[i, slot]
                local_ring[i, slot] = local
                firm_ring[i, slot] = firm
                mean_local[i] = local_sum[i] / count
                mean_firm[i] = firm_sum[i] / count
                score[i] = (1.0 - weight) * mean_local[i] + weight * mean_firm[i]
            for i in range(n):
                gain[i] = erode(gain[i], p[_BPO_EROSION], maturity[i])
            if p[_BPM_RATE] > 0.0:
                if p[_BPM_CONSTRAINT] == 0.0:
                    for i in range(n):
                        maturity[i] = mature(maturity[i], p[_BPM_RATE])
                else:
                    worst = argmin_first(mean_firm)
                    maturity[worst] = mature(maturity[worst], min(1.0, p[_BPM_RATE] * n))
                programme_cost += p[_BPM_COST] * n
            bpo_every = int(p[_BPO_EVERY])
            if bpo_every > 0 and t % bpo_every == 0:
                if p[_BPO_CONSTRAINT] == 0.0:
                    target = argmin_first(mean_local)
                else:
                    target = argmin_first(mean_firm)
                gain[target] = improve(gain[target], p[_BPO_SIZE])
                programme_cost += p[_BPO_COST]
            adapt_every = int(p[_ADAPT_EVERY])
            if adapt_every > 0 and t % adapt_every == 0:
                for i in range(n):
                    bias[i], direction[i] = adapt_bias(
                        bias[i],
                        direction[i],
                        score[i],
                        score_prev[i],
                        p[_ADAPT_STEP],
                        p[_BIAS_MIN],
                        p[_BIAS_MAX],
                    )
                    score_prev[i] = score[i]
            # ---- 7 settle -----------------------------------------------------------------
            customer_shipped = 0.0
            customer_requested = 0.0
            for s_i in range(n_sales):
                customer_shipped += shipped[sales[s_i]]
            for s_i in range(n_sales):
                customer_requested += requested[sales[s_i]]
            material = line_sum(material_cost)
            revenue = p[_PRICE] * customer_shipped
            operating_cost = line_sum(cost) + programme_cost
            ebitda = revenue - operating_cost
            collections = ring_push(receivables, t % r_lag, revenue) if r_lag else revenue
            payments = ring_push(payables, t % p_lag, material) if p_lag else material
            fcf = collections - (operating_cost - material) - payments
            old = ring_push(ebitda_ring, t % cov_window, ebitda)
            trailing += ebitda - old
            cash_start = cash
            cash, debt, limit, breach, insolvent, net_fin, interest = finance_step(
                cash,
                debt,
                trailing,
                breach,
                fcf,
                p[_INTEREST_RATE],
                p[_MIN_CASH],
                p[_COVENANT_MULTIPLE],
                int(p[_GRACE_PERIODS]),
                fin_on,
            )
            solvent = not insolvent
            inventory_units = line_sum(inventory)
            backlog_units = line_sum(backlog)
            fill_rate = customer_shipped / customer_requested if customer_requested > 0 else 1.0
            # ---- 8 learn ------------------------------------------------------------------
            if culture_on and t % int(p[_CULTURE_EVERY]) == 0:
                p1 = min(1.0, p[_P1] + p[_SOCIALISATION_BOOST] * alignment)
                if by_score:
                    select_top(score, p[_SUPERIOR_SHARE], top)
                rpos, code_known, code_pos = _culture_step(
                    burn_in + t, p1, p, key, dims, known, pos, actions, performance, rpos, code_known,
                    code_pos, top, planes,
                )  # fmt: skip
                cult.team_knowledge(known, pos, rpos, dims, knowledge)
            mean_k = line_sum(knowledge) / n
            mean_m = line_sum(maturity) / n
        else:  # dormant (Firm.dormant)
            for i in range(n):
                received[i] = 0.0
                shipped[i] = 0.0
                order[i] = 0.0
                cost[i] = 0.0
                requested[i] = 0.0
                material_cost[i] = 0.0
            revenue = operating_cost = ebitda = fcf = net_fin = interest = programme_cost = 0.0
            cash_start = cash
            fill_rate = 0.0 if demand_total > 0 else 1.0
        kout[_K_DEMAND_TOTAL, t - 1] = demand_total
        kout[_K_REVENUE, t - 1] = revenue
        kout[_K_OPERATING_COST, t - 1] = operating_cost
        kout[_K_EBITDA, t - 1] = ebitda
        kout[_K_FREE_CASH_FLOW, t - 1] = fcf
        kout[_K_NET_FINANCING, t - 1] = net_fin
        kout[_K_INTEREST, t - 1] = interest
        kout[_K_CASH_START, t - 1] = cash_start
        kout[_K_CASH, t - 1] = cash
        kout[_K_DEBT, t - 1] = debt
        kout[_K_CREDIT_HEADROOM, t - 1] = limit - debt
        kout[_K_INVENTORY_UNITS, t - 1] = inventory_units
        kout[_K_BACKLOG_UNITS, t - 1] = backlog_units
        kout[_K_FILL_RATE, t - 1] = fill_rate
        kout[_K_MEAN_KNOWLEDGE, t - 1] = mean_k
        kout[_K_CODE_KNOWLEDGE, t - 1] = (
            cult.knowledge(code_known, code_pos, rpos, dims) if culture_on else 1.0
        )
        kout[_K_MEAN_MATURITY, t - 1] = mean_m
        kout[_K_SOLVENT, t - 1] = 1.0 if solvent else 0.0
        kout[_K_PROGRAMME_COST, t - 1] = programme_cost
        if keep_teams:
            for i in range(n):
                tout[0, t - 1, i] = inventory[i]
                tout[1, t - 1, i] = backlog[i]
                tout[2, t - 1, i] = order[i]
                tout[3, t - 1, i] = received[i]
                tout[4, t - 1, i] = shipped[i]
                tout[5, t - 1, i] = cost[i]
                tout[6, t - 1, i] = knowledge[i]
