"""Sterman's (1989) ordering rule estimated from team records, one firm and team at a time.

The rule is orgsim's (docs/model.md §7.8-7.10), as Sterman (1989) fitted it to beer-game
players' orders::

    O_t = max(0, O*_t),    O*_t = E_t + α_S·(S' − S_t − β·SL_t),
    E_t = E_{t-1} + θ·(x_t − E_{t-1}),

with x_t the incoming orders (or demand) of period t, S_t = inventory − backlog the effective
stock and SL_t the supply line when the team orders. :func:`fit_ordering_rule` estimates
(θ, α_S, β, S') by nonlinear least squares (``scipy.optimize.least_squares``; θ, α_S and β
bounded to [0, 1]) with standard errors from the Jacobian at the optimum, and optionally a
bootstrap. :func:`ordering_inputs` derives x_t, S_t and SL_t from the records.

Only S' is identified, not Sterman's desired stock S* and desired supply line SL* apart: they
enter the rule only through S' = S* + β·SL*, so every pair on that line gives the same orders.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, signal, stats

from ._observed import _show, read_teams

__all__ = [
    "PARAMETERS",
    "OrderingRuleResult",
    "expected_demand",
    "fit_ordering_rule",
    "indicated_order",
    "ordering_inputs",
]

#: the rule's parameters, in the order of every array and table
PARAMETERS = ("theta", "alpha_s", "beta", "s_prime")
_SYMBOLS = {"theta": "θ", "alpha_s": "α_S", "beta": "β", "s_prime": "S'"}
_FORECASTS = ("smoothing", "moving_average")
_CENSORING = ("floor", "positive", "none")
_COV_TYPES = ("nonrobust", "HC0", "HC1", "HC3")
_BOOTSTRAPS = ("wild", "residual")
_METHODS = ("wald", "bootstrap")
#: receipts must equal the orders of L periods earlier this much more often at the inferred
#: delay L than at any other, and in at least this share of periods
_DELAY_MARGIN, _DELAY_MIN_SHARE = 0.05, 0.25
_THETA_GRID = np.linspace(0.0, 1.0, 21)


# -- the rule ------------------------------------------------------------------------------------
def expected_demand(incoming, theta: float, initial: float) -> tuple[np.ndarray, np.ndarray]:
    """Expected demand by exponential smoothing and its derivative in θ.

    ``E_t = E_{t-1} + θ (x_t − E_{t-1})`` from ``E_0 = initial`` (docs/model.md §7.8: updated
    with the period's observation before ordering), and ``dE_t/dθ``, which follows
    ``D_t = (1 − θ) D_{t-1} + (x_t − E_{t-1})`` from ``D_0 = 0``.

    Examples
    --------
    >>> e, d = expected_demand([8.0, 8.0], 0.5, 4.0)
    >>> e.tolist(), d.tolist()
    ([6.0, 7.0], [4.0, 4.0])
    """
    x = np.asarray(incoming, dtype=np.float64)
    a = [1.0, theta - 1.0]
    e = signal.lfilter([theta], a, x, zi=[(1.0 - theta) * initial])[0]
    previous = np.concatenate(([initial], e[:-1]))
    d = signal.lfilter([1.0], a, x - previous)
    return e, d


def _moving_average(incoming: np.ndarray, window: int, initial: float) -> np.ndarray:
    """p-period moving average of the observations, those before period 1 equal to ``initial``."""
    padded = np.concatenate((np.full(window - 1, initial), incoming))
    return np.convolve(padded, np.full(window, 1.0 / window), mode="valid")


def indicated_order(expected, stock, supply_line, alpha_s: float, beta: float, s_prime: float) -> np.ndarray:
    """Sterman's indicated order ``E + α_S (S' − S − β SL)`` (docs/model.md §7.10, cover 0),
    before rounding, noise and the floor at zero."""
    e, s, sl = (np.asarray(v, dtype=np.float64) for v in (expected, stock, supply_line))
    return e + alpha_s * (s_prime - s - beta * sl)


# -- inputs derived from team records --------------------------------------------------------------
@dataclass(frozen=True)
class _Series:
    """One firm's team: its records and what the rule needs, period by period."""

    org: object
    team: str
    stage: int | None
    role: str | None
    period: np.ndarray
    order: np.ndarray
    incoming: np.ndarray
    stock: np.ndarray
    supply_line: np.ndarray
    initial_expected: float
    initial_supply_line: float
    delay: float  # periods from order to receipt (NaN when not needed)
    delay_match: float  # share of periods whose receipt equals the order placed `delay` before


def ordering_inputs(teams, *, delay="infer", initial_supply_line=None, initial_expected=None) -> pd.DataFrame:
    """What the ordering rule needs, derived from team records as docs/model.md defines it.

    - incoming orders (or demand) ``x_t = backlog_t − backlog_{t-1} + shipped_t``, with no
      backlog before period 1 (orgsim's initial state): what a team ships and still owes is
      what it owed plus what it was asked for (§7.5). With lost sales (``costs.unmet =
      lost_sales``) a sales team's records do not hold its demand; this identity then
      understates it.
    - effective stock ``S_t = inventory_t − backlog_t`` (§7.10);
    - supply line when the team orders (§7.9: orders not yet received)
      ``SL_t = SL_0 + Σ_{τ<t} order_τ − Σ_{τ≤t} received_τ``, where ``SL_0`` is the supply line
      at the start of period 1 (``initial_supply_line``).

    The records do not hold ``SL_0`` or the initial expected demand ``E_0``. Unless given, they
    are taken from the records on the assumption that the firm starts in a steady state, as
    orgsim's firms do (§5): the delay L from order to receipt (``order_delay + lead_time``:
    4 weeks in the beer game, 3 for its factory) is the lag at which receipts most often equal
    the orders placed L periods before, the first L receipts are the initial pipeline
    (``SL_0 = Σ_{t≤L} received_t``) and ``E_0`` is their mean.

    Parameters
    ----------
    teams : pandas.DataFrame or path
        Team records (``orgsim.simulate(cfg, teams=True).teams``, a file or frame read by
        :func:`orgsim._observed.read_teams`).
    delay : "infer", int or mapping, default "infer"
        Periods from placing an order to receiving it, for every team or ``{team: periods}``.
    initial_supply_line, initial_expected : float or mapping, optional
        ``SL_0`` (units) and ``E_0`` (units/period), for every team or ``{team: value}``.

    Returns
    -------
    pandas.DataFrame
        One row per org, team and period: ``org, team, period, order, incoming,
        effective_stock, supply_line``, and per team ``initial_expected, initial_supply_line,
        delay, delay_match`` (the share of periods whose receipt equals the order placed
        ``delay`` periods before; NaN when the delay was not needed).
    """
    return _inputs_frame(_derive(teams, delay, initial_supply_line, initial_expected))


def _per_team(value, name: str, teams: set[str], *, integer: bool, allow_infer: bool):
    """A function team -> value (None = infer) from a number, a mapping or None/"infer"."""
    if value is None or (allow_infer and isinstance(value, str) and value == "infer"):
        return lambda team: None
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in teams]
        if unknown:
            raise ValueError(
                f"{name} names team {unknown[0]!r}, which is not in the records; teams: {', '.join(sorted(teams))}"
            )
        checked = {k: _check_value(v, f"{name}[{k!r}]", integer) for k, v in value.items()}
        return lambda team: checked.get(team)
    v = _check_value(value, name, integer)
    return lambda team: v


def _check_value(v, name: str, integer: bool):
    what = "an integer >= 1" if integer else "a finite number >= 0"
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise TypeError(f"{name} == {v!r}, must be {what} or a mapping {{team: value}}")
    if integer and (int(v) != v or v < 1):
        raise ValueError(f"{name} == {v!r}, must be {what}")
    if not integer and (not np.isfinite(v) or v < 0):
        raise ValueError(f"{name} == {v!r}, must be {what}")
    return int(v) if integer else float(v)


def _derive(teams, delay, initial_supply_line, initial_expected) -> list[_Series]:
    if isinstance(teams, pd.DataFrame) or isinstance(teams, str | os.PathLike):
        table = read_teams(teams)
    else:
        raise TypeError(
            f"teams must be team records (a pandas DataFrame such as orgsim.simulate(cfg, teams=True).teams, "
            f"or a .csv/.parquet path), got {type(teams).__name__}"
        )
    names = set(table.team.unique())
    if isinstance(delay, str) and delay != "infer":
        raise ValueError(
            f"delay == {delay!r}, must be 'infer', an integer >= 1 or a mapping {{team: periods}}"
        )
    delay_of = _per_team(delay, "delay", names, integer=True, allow_infer=True)
    sl_of = _per_team(initial_supply_line, "initial_supply_line", names, integer=False, allow_infer=False)
    e_of = _per_team(initial_expected, "initial_expected", names, integer=False, allow_infer=False)
    out = []
    for (org, team), g in table.groupby(["org", "team"], sort=False):
        order, received = g.order.to_numpy(), g.received.to_numpy()
        backlog = g.backlog.to_numpy()
        incoming = backlog - np.concatenate(([0.0], backlog[:-1])) + g.shipped.to_numpy()
        sl0, e0, lag, match = sl_of(team), e_of(team), delay_of(team), np.nan
        if sl0 is None or e0 is None:
            if lag is None:
                lag, match = _infer_delay(order, received, org, team)
            else:
                match = _match_share(order, received, lag)
            if lag > len(order):
                raise ValueError(
                    f"delay of team {team!r} == {lag}, must be at most the {len(order)} periods of its records"
                )
            first = received[:lag]
            sl0 = float(first.sum()) if sl0 is None else sl0
            e0 = float(first.mean()) if e0 is None else e0
        supply_line = sl0 + np.concatenate(([0.0], np.cumsum(order)[:-1])) - np.cumsum(received)
        scale = max(1.0, float(np.max(np.abs(order), initial=0.0)), sl0)
        low = supply_line < -1e-9 * scale
        if low.any() and (order >= 0).all():  # with returns (negative orders) it may be < 0
            i = int(np.flatnonzero(low)[0])
            how = "given" if sl_of(team) is not None else f"the receipts of the first {lag} periods"
            raise ValueError(
                f"the supply line of team {team!r} in org {_show(org)} would be {supply_line[i]:g} in period "
                f"{g.period.iloc[i]}: more received than ordered, so initial_supply_line ({sl0:g}, {how}) "
                "is too small; pass initial_supply_line= or delay="
            )
        out.append(
            _Series(
                org=org,
                team=team,
                stage=int(g.stage.iloc[0]) if "stage" in g else None,
                role=str(g.role.iloc[0]) if "role" in g else None,
                period=g.period.to_numpy(),
                order=order,
                incoming=incoming,
                stock=g.inventory.to_numpy() - backlog,
                supply_line=np.where(low, supply_line, np.maximum(supply_line, 0.0)),
                initial_expected=e0,
                initial_supply_line=sl0,
                delay=np.nan if lag is None else float(lag),
                delay_match=match,
            )
        )
    return out


def _match_share(order: np.ndarray, received: np.ndarray, lag: int) -> float:
    if lag >= len(order):
        return np.nan
    a, b = received[lag:], order[:-lag]
    return float(np.mean(np.abs(a - b) <= 1e-9 * np.maximum(1.0, np.abs(b))))


def _infer_delay(order: np.ndarray, received: np.ndarray, org, team) -> tuple[int, float]:
    """The lag L at which receipts most often equal the orders of L periods before."""
    lags = np.arange(1, max(2, min(52, len(order) // 3)) + 1)
    shares = np.array([_match_share(order, received, int(k)) for k in lags])
    shares = np.nan_to_num(shares, nan=-1.0)
    best = int(np.argmax(shares))
    second = np.max(np.delete(shares, best), initial=-1.0)
    if shares[best] < _DELAY_MIN_SHARE or shares[best] - second < _DELAY_MARGIN:
        raise ValueError(
            f"cannot infer the delay from order to receipt of team {team!r} in org {_show(org)}: receipts equal "
            f"the orders of {lags[best]} periods before in {shares[best]:.0%} of periods, of another lag "
            f"in {max(second, 0):.0%}; pass delay= (periods), or initial_supply_line= and initial_expected="
        )
    return int(lags[best]), float(shares[best])


def _inputs_frame(series: list[_Series]) -> pd.DataFrame:
    parts = []
    for s in series:
        n = len(s.period)
        parts.append(
            pd.DataFrame(
                {
                    "org": [s.org] * n,
                    "team": [s.team] * n,
                    "period": s.period,
                    "order": s.order,
                    "incoming": s.incoming,
                    "effective_stock": s.stock,
                    "supply_line": s.supply_line,
                    "initial_expected": s.initial_expected,
                    "initial_supply_line": s.initial_supply_line,
                    "delay": s.delay,
                    "delay_match": s.delay_match,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


# -- one team's fit --------------------------------------------------------------------------------
class _Model:
    """Residuals and Jacobian of one team's orders for the free parameters."""

    def __init__(self, s: _Series, forecast: str, ma_window: int, censoring: str, use: np.ndarray):
        self.s, self.forecast, self.censoring = s, forecast, censoring
        self.use = use
        self.free = list(PARAMETERS) if forecast == "smoothing" else list(PARAMETERS[1:])
        if forecast == "moving_average":
            self.fixed_expected = _moving_average(s.incoming, ma_window, s.initial_expected)

    def full(self, p: np.ndarray) -> dict[str, float]:
        v = dict(zip(self.free, map(float, p)))
        v.setdefault("theta", np.nan)
        return v

    def indicated(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """O* over all periods, E, dE/dθ."""
        v = self.full(p)
        if self.forecast == "smoothing":
            e, de = expected_demand(self.s.incoming, v["theta"], self.s.initial_expected)
        else:
            e, de = self.fixed_expected, np.zeros_like(self.fixed_expected)
        return (
            indicated_order(e, self.s.stock, self.s.supply_line, v["alpha_s"], v["beta"], v["s_prime"]),
            e,
            de,
        )

    def predict(self, p: np.ndarray) -> np.ndarray:
        o = self.indicated(p)[0]
        return np.maximum(o, 0.0) if self.censoring == "floor" else o

    def residuals(self, p: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (y - self.predict(p))[self.use]

    def jacobian(self, p: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
        """d(residual)/dp on the fitted periods (the floor's kink counts as censored)."""
        v = self.full(p)
        o, _, de = self.indicated(p)
        s, sl = self.s.stock, self.s.supply_line
        cols = {
            "theta": de,
            "alpha_s": v["s_prime"] - s - v["beta"] * sl,
            "beta": -v["alpha_s"] * sl,
            "s_prime": np.full_like(o, v["alpha_s"]),
        }
        j = np.column_stack([cols[k] for k in self.free])
        if self.censoring == "floor":
            j = j * (o > 0.0)[:, None]
        return -j[self.use]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = {"theta": 0.0, "alpha_s": 0.0, "beta": 0.0, "s_prime": -np.inf}
        hi = {"theta": 1.0, "alpha_s": 1.0, "beta": 1.0, "s_prime": np.inf}
        return np.array([lo[k] for k in self.free]), np.array([hi[k] for k in self.free])

    def starts(self, y: np.ndarray, n: int = 3) -> list[np.ndarray]:
        """Starting points: for each θ of a grid the rule is linear in (α_S S', α_S, α_S β),
        so ordinary least squares on the positive orders gives the rest; the ``n`` best."""
        pos = self.use & (y > 0) if self.censoring != "none" else self.use
        if pos.sum() < 4:
            pos = self.use
        s, sl = self.s.stock[pos], self.s.supply_line[pos]
        x = np.column_stack([np.ones(pos.sum()), -s, -sl])
        thetas = _THETA_GRID if self.forecast == "smoothing" else [np.nan]
        cand = []
        for th in thetas:
            p_e = np.array([th, 0.5, 0.5, 0.0]) if self.forecast == "smoothing" else np.array([0.5, 0.5, 0.0])
            e = self.indicated(p_e)[1]
            coef = np.linalg.lstsq(x, y[pos] - e[pos], rcond=None)[0]
            alpha = float(np.clip(coef[1], 0.05, 1.0))
            beta = float(np.clip(coef[2] / alpha, 0.0, 1.0))
            sp = float(coef[0] / alpha)
            p = (
                np.array([th, alpha, beta, sp])
                if self.forecast == "smoothing"
                else np.array([alpha, beta, sp])
            )
            cand.append((float(np.sum(self.residuals(p, y) ** 2)), p))
        cand.sort(key=lambda c: c[0])
        return [p for _, p in cand[:n]]


def _solve(model: _Model, y: np.ndarray, starts: list[np.ndarray]):
    lo, hi = model.bounds()
    best = None
    for x0 in starts:
        x0 = np.clip(x0, lo, hi)
        res = optimize.least_squares(
            model.residuals, x0, jac=model.jacobian, bounds=(lo, hi), args=(y,), method="trf", x_scale="jac"
        )
        if best is None or res.cost < best.cost:
            best = res
    return best


def _covariance(j: np.ndarray, r: np.ndarray, cov_type: str) -> np.ndarray:
    """σ²(JᵀJ)⁻¹ (nonrobust) or White's sandwich (HC0; HC1 with n/(n−k); HC3 with leverage);
    NaN when JᵀJ is singular (a parameter the data do not identify). n counts the periods whose
    fitted order moves with the parameters: zero orders predicted at the floor do not."""
    active = np.any(j != 0.0, axis=1)  # orders predicted at the floor carry no information
    j, r = j[active], r[active]
    n, k = j.shape
    nan = np.full((k, k), np.nan)
    norms = np.linalg.norm(j, axis=0)
    if n <= k or np.any(norms == 0.0):
        return nan
    js = j / norms
    if np.linalg.cond(js) > 1e8:
        return nan
    inv = np.linalg.inv(js.T @ js) / np.outer(norms, norms)
    if cov_type == "nonrobust":
        return inv * float(r @ r) / (n - k)
    weights = r**2
    if cov_type == "HC3":  # residuals scaled by their leverage h = diag(J (JᵀJ)⁻¹ Jᵀ)
        h = np.einsum("ij,jk,ik->i", j, inv, j)
        weights = weights / np.clip(1.0 - h, 1e-12, None) ** 2
    cov = inv @ ((j * weights[:, None]).T @ j) @ inv
    return cov * n / (n - k) if cov_type == "HC1" else cov


def _fit_one(s: _Series, opts: dict, rng: np.random.Generator | None) -> dict:
    y = s.order
    use = s.period > opts["fixed_order_periods"]
    if opts["censoring"] == "positive":
        use &= y > 0
    if opts["censoring"] == "floor" and (y < 0).any():
        i = int(np.flatnonzero(y < 0)[0])
        raise ValueError(
            f"team {s.team!r} in org {_show(s.org)} orders {y[i]:g} in period {s.period[i]}: negative orders "
            "cannot come from a rule floored at zero; use censoring='none'"
        )
    model = _Model(s, opts["forecast"], opts["ma_window"], opts["censoring"], use)
    k = len(model.free)
    if use.sum() <= k:
        raise ValueError(
            f"team {s.team!r} in org {_show(s.org)} has {int(use.sum())} orders to fit (after "
            f"fixed_order_periods={opts['fixed_order_periods']}"
            f"{' and without zero orders' if opts['censoring'] == 'positive' else ''}), must have more than {k}"
        )
    res = _solve(model, y, model.starts(y))
    p = res.x
    r = model.residuals(p, y)
    j = -model.jacobian(p)
    cov = _covariance(j, r, opts["cov_type"])
    lo, hi = model.bounds()
    at_bound = [name for name, v, a, b in zip(model.free, p, lo, hi) if min(v - a, b - v) <= 1e-4]
    obs = y[use]
    tss = float(np.sum((obs - obs.mean()) ** 2))
    rss = float(r @ r)
    indicated, expected, _ = model.indicated(p)
    out = {
        "values": model.full(p),
        "cov": _expand(cov, model.free),
        "jacobian": j,
        "residuals": r,
        "free": model.free,
        "rmse": float(np.sqrt(rss / use.sum())),
        "r2": 1.0 - rss / tss if tss > 0 else np.nan,
        "n": int(use.sum()),
        "n_zero": int(np.sum(obs == 0)),
        "at_bound": ",".join(at_bound),
        "converged": bool(res.success),
        "fitted": pd.DataFrame(
            {
                "org": [s.org] * len(y),
                "team": [s.team] * len(y),
                "period": s.period,
                "order": y,
                "incoming": s.incoming,
                "expected": expected,
                "effective_stock": s.stock,
                "supply_line": s.supply_line,
                "indicated": indicated,
                "fitted": model.predict(p),
                "used": use,
            }
        ),
        "boot": None,
    }
    if opts["n_boot"]:
        out["boot"] = _bootstrap(model, y, p, r, opts, rng)
    return out


def _expand(cov: np.ndarray, free: list[str]) -> np.ndarray:
    full = np.full((len(PARAMETERS), len(PARAMETERS)), np.nan)
    idx = [PARAMETERS.index(k) for k in free]
    full[np.ix_(idx, idx)] = cov
    return full


def _leverage(j: np.ndarray) -> np.ndarray:
    """diag(J (JᵀJ)⁺ Jᵀ), the leverage of each fitted period (0 where the fitted order is at the floor)."""
    return np.einsum("ij,jk,ik->i", j, np.linalg.pinv(j.T @ j), j)


def _bootstrap(model: _Model, y, p, r, opts, rng) -> np.ndarray:
    """Estimates refitted to ``fitted + r*``: the design (states) held fixed, the residuals
    resampled (``residual``, centred) or flipped in sign at random (``wild``, Rademacher: keeps
    each period's own spread, so it allows the multiplicative execution noise). The wild
    bootstrap flips ``r/(1 − h)``, the residuals scaled by their leverage h as HC3 scales them
    (Davidson & Flachaire 2008): raw residuals, shrunk by the fit, would bootstrap HC0's spread."""
    fitted = model.predict(p)
    draws = np.empty((opts["n_boot"], len(PARAMETERS)))
    idx = np.flatnonzero(model.use)
    if opts["bootstrap"] == "wild":
        r = r / np.clip(1.0 - _leverage(-model.jacobian(p)), 1e-12, None)
    for b in range(opts["n_boot"]):
        if opts["bootstrap"] == "wild":
            e = r * rng.choice((-1.0, 1.0), size=r.size)
        else:
            e = rng.choice(r - r.mean(), size=r.size, replace=True)
        ystar = y.copy()
        ystar[idx] = fitted[idx] + e
        res = _solve(model, ystar, [p])
        draws[b] = [model.full(res.x)[k] for k in PARAMETERS]
    return draws


# -- the public function ----------------------------------------------------------------------------
def fit_ordering_rule(
    teams,
    *,
    forecast: str = "smoothing",
    ma_window: int = 4,
    fixed_order_periods: int = 0,
    censoring: str = "floor",
    cov_type: str = "HC3",
    delay="infer",
    initial_supply_line=None,
    initial_expected=None,
    n_boot: int = 0,
    bootstrap: str = "wild",
    seed=None,
    n_jobs: int | None = 1,
) -> OrderingRuleResult:
    """Estimate Sterman's (1989) anchoring-and-adjustment ordering rule per firm and team.

    For each org and team, nonlinear least squares (``scipy.optimize.least_squares``, trust
    region reflective, analytic Jacobian) fits the rule of docs/model.md §7.8-7.10,

    ``O_t = max(0, E_t + α_S (S' − S_t − β SL_t))``,  ``E_t = E_{t-1} + θ (x_t − E_{t-1})``,

    to the team's orders, with θ, α_S, β in [0, 1] and S' free, starting from the best of a
    grid over θ (for fixed θ the rule is linear in the rest, fitted by ordinary least squares).
    Incoming orders x_t, effective stock S_t and the supply line SL_t come from the records
    (:func:`ordering_inputs`, which says how).

    **Identification.** Only S' is identified. In Sterman's rule S' = S* + β SL*, and the
    desired stock S* and desired supply line SL* enter the orders only through that sum: two
    pairs with the same S' give the same orders, so no data can tell them apart (Sterman 1989).

    **Censoring.** Orders are floored at zero (and, in the beer game, rounded to whole cases),
    so the model is censored. ``censoring="floor"`` (default) fits ``max(0, O*)``, the rule
    with its floor, to every order: a zero order predicted negative costs nothing. Under orgsim's
    multiplicative execution noise, ``O*(1 + σ ε)`` has the sign of ``O*`` (unless ε < −1/σ), so
    the floor is a function of the states, not of the noise, and ``max(0, O*)`` is the mean of
    the order up to rounding: the fit is consistent without a likelihood for the censored
    orders. ``"positive"`` fits ``O*`` to the positive orders only (consistent for the same
    reason: the selection depends on ``O*``, not on ε); ``"none"`` fits ``O*`` to every order
    (for unfloored orders, ``policy.allow_negative_orders``). Rounding to whole units adds an
    error of at most half a unit, not quite independent of the order.

    **Standard errors** come from the Jacobian J of the fitted orders at the optimum (k free
    parameters, n fitted periods, residuals r). ``cov_type="nonrobust"`` is σ²(JᵀJ)⁻¹ with
    σ² = RSS/(n − k), which assumes one error variance for every order; ``"HC0"``, ``"HC1"`` and
    ``"HC3"`` are White's sandwich (JᵀJ)⁻¹ Jᵀ diag(w) J (JᵀJ)⁻¹ with w = r² (HC1: times
    n/(n − k); HC3: w = r²/(1 − h)², h the leverages diag(J (JᵀJ)⁻¹ Jᵀ)), which allow the
    spread of orgsim's multiplicative execution noise to grow with the order. HC3 is the
    default: in the recovery study of docs/decision_rules.md (beer game, 200 weeks, 200 datasets)
    its 95% intervals covered 91.0-96.5% of the time, HC1's 89.5-94.5%, the nonrobust 78.5-99.5%. All
    are asymptotic; at a bound (a parameter estimated at 0 or 1, listed in ``at_bound``) the
    normal interval does not hold. With ``n_boot > 0`` a bootstrap refits each team ``n_boot``
    times with the states held fixed (``bootstrap="wild"``: each residual, scaled by 1/(1 − h) as
    in HC3, has its sign flipped at random, which keeps each period's own spread;
    ``"residual"``: centred residuals resampled), for percentile intervals
    (``summary_frame(method="bootstrap")``).

    Parameters
    ----------
    teams : pandas.DataFrame or path
        Team records with the contract's team columns (``orgsim.simulate(cfg, teams=True).teams``,
        or a file read by ``read_teams``).
    forecast : {"smoothing", "moving_average"}
        How expected demand is formed (``policy.forecast``). With ``moving_average`` (window
        ``ma_window``) θ is not a parameter and is reported as NaN.
    ma_window : int
        ``policy.ma_window`` for ``forecast="moving_average"``.
    fixed_order_periods : int
        First periods whose orders were fixed, not set by the rule (``policy.fixed_order_periods``:
        4 in the beer game). They update expected demand and the supply line but are not fitted.
    censoring : {"floor", "positive", "none"}
        How orders floored at zero are treated (above).
    cov_type : {"HC3", "HC1", "HC0", "nonrobust"}
        Standard errors from the Jacobian (above); results can give the others too
        (``summary_frame(cov_type=...)``).
    delay, initial_supply_line, initial_expected
        How the records' supply line and expected demand start (:func:`ordering_inputs`).
    n_boot : int
        Bootstrap replicates per team (0: none).
    bootstrap : {"wild", "residual"}
        The bootstrap's kind.
    seed : int, SeedSequence or Generator, optional
        For the bootstrap (SPEC 7); team i draws from the i-th child of the seed.
    n_jobs : int, optional
        Teams fitted in parallel (joblib; ``None`` or 1: one process, -1: every CPU).

    Returns
    -------
    OrderingRuleResult

    Examples
    --------
    >>> import orgsim
    >>> from orgsim._ordering_rule import fit_ordering_rule
    >>> cfg = orgsim.compose(["scenario=beer_game", "periods=100", "demand.cv=0.2",
    ...                       "management.execution_noise=0.05"])
    >>> teams = orgsim.simulate(cfg, engine="numba", teams=True, progress=False).teams
    >>> res = fit_ordering_rule(teams, fixed_order_periods=4)
    >>> res.summary_frame()[["team", "theta", "alpha_s", "beta", "s_prime"]].round(2)
              team  theta  alpha_s  beta  s_prime
    0     retailer   0.37     0.26  0.33    16.84
    1   wholesaler   0.31     0.27  0.35    17.42
    2  distributor   0.34     0.26  0.37    17.97
    3      factory   0.35     0.27  0.35    17.03
    """
    opts = _options(forecast, ma_window, fixed_order_periods, censoring, cov_type, n_boot, bootstrap)
    series = _derive(teams, delay, initial_supply_line, initial_expected)
    rngs = [None] * len(series)
    if n_boot:
        rngs = np.random.default_rng(seed).spawn(len(series))
    if n_jobs in (None, 1) or len(series) == 1:
        fits = [_fit_one(s, opts, g) for s, g in zip(series, rngs)]
    else:
        from joblib import Parallel, delayed

        fits = Parallel(n_jobs=n_jobs)(delayed(_fit_one)(s, opts, g) for s, g in zip(series, rngs))
    return OrderingRuleResult(series, fits, opts)


def _options(forecast, ma_window, fixed_order_periods, censoring, cov_type, n_boot, bootstrap) -> dict:
    for name, value, allowed in (
        ("forecast", forecast, _FORECASTS),
        ("censoring", censoring, _CENSORING),
        ("cov_type", cov_type, _COV_TYPES),
        ("bootstrap", bootstrap, _BOOTSTRAPS),
    ):
        if value not in allowed:
            raise ValueError(f"{name} == {value!r}, must be one of {', '.join(map(repr, allowed))}")
    for name, value, low in (
        ("ma_window", ma_window, 1),
        ("fixed_order_periods", fixed_order_periods, 0),
        ("n_boot", n_boot, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} == {value!r}, must be an integer >= {low}")
    if n_boot == 1:
        raise ValueError("n_boot == 1, must be 0 (no bootstrap) or at least 2")
    return dict(
        forecast=forecast,
        ma_window=int(ma_window),
        fixed_order_periods=int(fixed_order_periods),
        censoring=censoring,
        cov_type=cov_type,
        n_boot=int(n_boot),
        bootstrap=bootstrap,
    )


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float | np.integer | np.floating):
        raise TypeError(f"alpha == {alpha!r}, must be a number in (0, 1), e.g. 0.05 for 95% intervals")
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha == {alpha!r}, must be in (0, 1), e.g. 0.05 for 95% intervals")
    return float(alpha)


# -- results -------------------------------------------------------------------------------------
class OrderingRuleResult:
    """Estimates of Sterman's ordering rule, one per org and team (from :func:`fit_ordering_rule`).

    Attributes
    ----------
    params : pandas.DataFrame
        ``theta, alpha_s, beta, s_prime`` indexed by (org, team).
    bse : pandas.DataFrame
        Their standard errors from the Jacobian (``cov_type``).
    fitted : pandas.DataFrame
        Per org, team and period: the order, incoming orders, expected demand at θ̂, effective
        stock, supply line, the indicated order ``O*`` at the estimates, the fitted order and
        whether the period was fitted (``used``).
    bootstrap_draws : dict or None
        ``{(org, team): array [n_boot, 4]}`` of bootstrap estimates.
    options : dict
        The fit's settings.
    """

    def __init__(self, series: list[_Series], fits: list[dict], options: dict):
        self._series, self._fits, self.options = series, fits, options
        index = pd.MultiIndex.from_tuples([(s.org, s.team) for s in series], names=["org", "team"])
        self.params = pd.DataFrame(
            [[f["values"][k] for k in PARAMETERS] for f in fits], index=index, columns=PARAMETERS
        )
        se = [np.sqrt(np.diag(f["cov"])) for f in fits]
        self.bse = pd.DataFrame(se, index=index, columns=PARAMETERS)
        self.bootstrap_draws = (
            {(s.org, s.team): f["boot"] for s, f in zip(series, fits)} if options["n_boot"] else None
        )

    @property
    def fitted(self) -> pd.DataFrame:
        return pd.concat([f["fitted"] for f in self._fits], ignore_index=True)

    def _cov(self, i: int, cov_type: str | None) -> np.ndarray:
        fit = self._fits[i]
        if cov_type is None or cov_type == self.options["cov_type"]:
            return fit["cov"]
        if cov_type not in _COV_TYPES:
            raise ValueError(f"cov_type == {cov_type!r}, must be one of {', '.join(map(repr, _COV_TYPES))}")
        return _expand(_covariance(fit["jacobian"], fit["residuals"], cov_type), fit["free"])

    def cov_params(self, org, team, cov_type: str | None = None) -> pd.DataFrame:
        """The estimates' covariance matrix of one org and team (NaN where not identified), from
        the Jacobian: the fit's ``cov_type`` unless another is named."""
        i = self.params.index.get_loc((org, team))
        return pd.DataFrame(self._cov(i, cov_type), index=PARAMETERS, columns=PARAMETERS)

    def _intervals(
        self, alpha: float, method: str, cov_type: str | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(se, lower, upper), each [team, parameter]."""
        if method not in _METHODS:
            raise ValueError(f"method == {method!r}, must be one of {', '.join(map(repr, _METHODS))}")
        est = self.params.to_numpy()
        if method == "wald":
            se = np.array([np.sqrt(np.diag(self._cov(i, cov_type))) for i in range(len(self._fits))])
            z = stats.norm.ppf(1.0 - alpha / 2.0)
            return se, est - z * se, est + z * se
        if self.bootstrap_draws is None:
            raise ValueError("method == 'bootstrap' needs bootstrap draws: fit with n_boot >= 2")
        draws = [f["boot"] for f in self._fits]
        se = np.array([d.std(axis=0, ddof=1) for d in draws])
        lower = np.array([np.quantile(d, alpha / 2.0, axis=0) for d in draws])
        upper = np.array([np.quantile(d, 1.0 - alpha / 2.0, axis=0) for d in draws])
        return se, lower, upper

    def summary_frame(
        self, alpha: float = 0.05, method: str = "wald", cov_type: str | None = None
    ) -> pd.DataFrame:
        """One row per org and team: estimates, standard errors and intervals, and fit quality.

        Columns: ``org, team`` (and ``stage, role`` when the records have them); for each of
        ``theta, alpha_s, beta, s_prime`` the estimate, ``<name>_se``, ``<name>_ci_lower`` and
        ``<name>_ci_upper`` (``method="wald"``: estimate ± z·se, the standard error from the
        Jacobian; ``"bootstrap"``: the bootstrap's standard deviation and percentile interval);
        then ``rmse``, ``r2`` (of the fitted orders), ``n`` (fitted periods), ``n_zero`` (zero
        orders among them), ``at_bound`` (parameters estimated at a bound of [0, 1]),
        ``converged``, and how the records' state started: ``initial_expected``,
        ``initial_supply_line``, ``delay``, ``delay_match`` (see :func:`ordering_inputs`).
        """
        alpha = _check_alpha(alpha)
        se, lower, upper = self._intervals(alpha, method, cov_type)
        est = self.params.to_numpy()
        out = {"org": [s.org for s in self._series], "team": [s.team for s in self._series]}
        if self._series[0].stage is not None:
            out["stage"] = [s.stage for s in self._series]
        if self._series[0].role is not None:
            out["role"] = [s.role for s in self._series]
        for j, name in enumerate(PARAMETERS):
            out[name] = est[:, j]
            out[f"{name}_se"] = se[:, j]
            out[f"{name}_ci_lower"] = lower[:, j]
            out[f"{name}_ci_upper"] = upper[:, j]
        for key in ("rmse", "r2", "n", "n_zero", "at_bound", "converged"):
            out[key] = [f[key] for f in self._fits]
        for key in ("initial_expected", "initial_supply_line", "delay", "delay_match"):
            out[key] = [getattr(s, key) for s in self._series]
        return pd.DataFrame(out)

    def parameter_frame(
        self, alpha: float = 0.05, method: str = "wald", cov_type: str | None = None
    ) -> pd.DataFrame:
        """The estimates long, statsmodels' way: one row per org, team and parameter, columns
        ``mean`` (the estimate), ``mean_se``, ``mean_ci_lower``, ``mean_ci_upper``."""
        alpha = _check_alpha(alpha)
        se, lower, upper = self._intervals(alpha, method, cov_type)
        est = self.params.to_numpy()
        n, k = est.shape
        return pd.DataFrame(
            {
                "org": np.repeat([s.org for s in self._series], k),
                "team": np.repeat([s.team for s in self._series], k),
                "parameter": np.tile(PARAMETERS, n),
                "mean": est.ravel(),
                "mean_se": se.ravel(),
                "mean_ci_lower": lower.ravel(),
                "mean_ci_upper": upper.ravel(),
            }
        )

    def summary(self, alpha: float = 0.05, method: str = "wald"):
        """A statsmodels ``Summary`` (text with ``str()``, HTML in JupyterLab): the settings and
        one row per org and team with each estimate, its standard error and fit quality."""
        from statsmodels.iolib.summary2 import Summary

        table = self.summary_frame(alpha, method)
        o = self.options
        s = Summary()
        s.add_title("Sterman (1989) ordering rule, nonlinear least squares per team")
        s.add_dict(
            {
                "Rule:": "O = max(0, E + α_S (S' − S − β SL))"
                if o["censoring"] == "floor"
                else "O = E + α_S (S' − S − β SL)",
                "Expected demand:": "smoothing (θ)"
                if o["forecast"] == "smoothing"
                else f"moving average of {o['ma_window']}",
                "Censoring:": o["censoring"],
                "Standard errors:": f"{o['cov_type']} (Jacobian)"
                if method == "wald"
                else f"{o['bootstrap']} bootstrap, {o['n_boot']} draws",
                "Teams fitted:": str(len(table)),
                "Periods left out:": f"first {o['fixed_order_periods']} (fixed orders)",
                "Identified:": "S' = S* + β SL*, not S* and SL* apart",
            },
            ncols=1,
        )
        rows = {"org": table.org.astype(str), "team": table.team}
        for name in PARAMETERS:
            rows[_SYMBOLS[name]] = [
                "–" if np.isnan(v) else f"{v:.3f} ({e:.3f})" for v, e in zip(table[name], table[f"{name}_se"])
            ]
        rows["RMSE"] = [f"{v:.3g}" for v in table.rmse]
        rows["R²"] = [f"{v:.3f}" for v in table.r2]
        rows["n"] = table.n.astype(str)
        rows["at bound"] = table.at_bound
        s.add_df(pd.DataFrame(rows), index=False)
        s.add_text(
            f"Estimates with standard errors in parentheses; {100 * (1 - alpha):g}% intervals in summary_frame()."
        )
        return s

    def __repr__(self) -> str:
        return f"<OrderingRuleResult: {len(self.params)} teams, censoring={self.options['censoring']!r}>"

    def _repr_html_(self) -> str:
        return self.summary().as_html()
