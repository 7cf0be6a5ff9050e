"""Simulated method of moments: the moments, candidate batches on common random numbers, the
weighting matrices and the estimate's uncertainty (private; the public API is
:mod:`orgsim.calibration`).

Common random numbers. Firm ``i`` of ``orgsim.simulate(cfg, seed=s)`` draws from a stream keyed
by ``(s, i)`` alone (``orgsim._rng.firm_keys``). A batch of ``C`` candidates × ``R`` replicates is
one kernel call whose row ``c·R + r`` runs candidate ``c``'s parameters on the key of firm
``b + r`` (:meth:`Runner.simulate`), where ``b`` is the estimation's replicate block (0 for
:func:`orgsim.calibrate`): replicate ``r`` of every candidate, in every batch, sees exactly the
draws of firm ``r`` of ``simulate(cfg, seed=s)``, so the simulated moments are a deterministic
function of the parameters (Gouriéroux & Monfort's fixed simulation draws) and differences
between candidates are free of simulation noise. Estimations run side by side (the synthetic
datasets of a recovery study, the parametric bootstrap) each get their own block
(:data:`BLOCK` apart), so their simulation errors are independent; synthetic datasets are
simulated from :data:`DATA_FIRMS` on and ABC particles from :data:`ABC_FIRMS` on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import numbers
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .config import Config, ConfigError
from .config import parameters as config_parameters
from .network import Network, build_network
from .schema import KPI_COLUMNS, KPI_EXTRA, STRUCTURAL, TEAM_COLUMNS

__all__ = [
    "ABC_FIRMS",
    "BLOCK",
    "DATA_FIRMS",
    "STATS",
    "Moment",
    "MomentSet",
    "Runner",
    "check_bounds",
    "moment_cov",
    "parse_moments",
    "sandwich",
]

#: spacing of the replicate blocks of estimations run side by side
BLOCK = 1 << 24
#: first firm index of synthetic datasets (recovery, parametric bootstrap): far from the
#: replicates 0, 1, … that every candidate shares, so a dataset never shares their draws
DATA_FIRMS = 1 << 40
#: first firm index of the ABC particles' simulations (fresh draws for every particle)
ABC_FIRMS = 1 << 41

#: numeric KPI series (``orgsim.simulate(...).kpis`` columns)
KPI_SERIES = (*KPI_COLUMNS[4:], *KPI_EXTRA)
#: team columns that can be summed over the teams of a stage: ``order@2`` is stage 2's orders
TEAM_SERIES = tuple(c for c in TEAM_COLUMNS[5:])
#: the weightings by name
WEIGHTINGS = ("identity", "diagonal", "optimal")
#: statistics and what they take
STATS = {
    "mean": "mean:SERIES — the series' mean over the periods",
    "std": "std:SERIES — its standard deviation (ddof 1)",
    "acf": "acf:SERIES:LAG — its autocorrelation at LAG >= 1 (default 1)",
    "ccf": "ccf:SERIES:SERIES:LAG — corr(x_t, y_{t+LAG}) (LAG an integer, default 0)",
    "bullwhip": "bullwhip:STAGE — var(orders of the stage) / var(end-customer demand)",
    "fill_rate": "fill_rate — the mean fill rate (KPI fill_rate)",
}
_ENGINE_NAME = {"demand": "demand_total"}


# --------------------------------------------------------------------------------------------
# moments
# --------------------------------------------------------------------------------------------
def _check_series(name, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"{where}: series {name!r}, must be a KPI name such as 'inventory_units' or 'order@1'"
        )
    if "@" in name:
        col, _, stage = name.partition("@")
        if col not in TEAM_SERIES or not stage.isdigit():
            raise ValueError(
                f"{where}: series {name!r}, a team series must be COLUMN@STAGE with COLUMN one of "
                f"{', '.join(TEAM_SERIES)} and STAGE an integer >= 0 (e.g. 'order@1')"
            )
        return f"{col}@{int(stage)}"
    if name not in KPI_SERIES:
        raise ValueError(
            f"{where}: series {name!r} is not a numeric KPI column; allowed: {', '.join(KPI_SERIES)}, "
            f"or a team series COLUMN@STAGE ({', '.join(TEAM_SERIES)})"
        )
    return name


def _int(value, where: str, what: str, minimum: int | None = None) -> int:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if isinstance(value, str):
        text = value.strip()
        ok = text.lstrip("-").isdigit()
        value = int(text) if ok else value
    if not ok or (minimum is not None and int(value) < minimum):
        rule = f"an integer >= {minimum}" if minimum is not None else "an integer"
        raise ValueError(f"{where}: {what} == {value!r}, must be {rule}")
    return int(value)


@dataclass(frozen=True, slots=True)
class Moment:
    """One moment of the observed and simulated series.

    ``stat`` is one of :data:`STATS`; ``series`` a numeric KPI column (``inventory_units``) or a
    team column summed over the teams of a stage (``order@1``); ``other`` the second series of
    a cross-correlation; ``lag`` the lag of ``acf`` and ``ccf``; ``stage`` the stage of
    ``bullwhip``. Build one with :meth:`parse`: ``"acf:inventory_units:1"`` or
    ``{"stat": "acf", "series": "inventory_units", "lag": 1}``.
    """

    stat: str
    series: str | None = None
    other: str | None = None
    lag: int = 0
    stage: int | None = None

    @property
    def name(self) -> str:
        """The canonical text form, also the moment's label in every table."""
        if self.stat in ("mean", "std"):
            return f"{self.stat}:{self.series}"
        if self.stat == "acf":
            return f"acf:{self.series}:{self.lag}"
        if self.stat == "ccf":
            return f"ccf:{self.series}:{self.other}:{self.lag}"
        if self.stat == "bullwhip":
            return f"bullwhip:{self.stage}"
        return "fill_rate"

    @property
    def series_needed(self) -> tuple[str, ...]:
        """The series this moment is computed from."""
        if self.stat == "ccf":
            return (self.series, self.other)
        if self.stat == "bullwhip":
            return (f"order@{self.stage}", "demand")
        if self.stat == "fill_rate":
            return ("fill_rate",)
        return (self.series,)

    @classmethod
    def parse(cls, spec) -> Moment:
        """A moment from its text form (``"std:order@0"``) or a mapping (``stat``, ``series``,
        ``lag``, ``stage``); a ValueError names what is wrong and what is allowed."""
        if isinstance(spec, Moment):
            return spec
        where = f"moment {spec!r}"
        if isinstance(spec, str):
            parts = [p.strip() for p in spec.split(":")]
            stat, args = parts[0], parts[1:]
        elif isinstance(spec, Mapping):
            unknown = sorted(set(spec) - {"stat", "series", "lag", "stage"})
            if unknown:
                raise ValueError(
                    f"{where}: key {unknown[0]!r} is not allowed; allowed: stat, series, lag, stage"
                )
            stat = spec.get("stat")
            series = spec.get("series")
            series = (
                list(series) if isinstance(series, list | tuple) else ([] if series is None else [series])
            )
            args = [*series]
            if "lag" in spec:
                args.append(spec["lag"])
            if "stage" in spec:
                args.append(spec["stage"])
        else:
            raise TypeError(
                f"{where}: must be a string such as 'std:inventory_units' or a mapping with 'stat'"
            )
        if stat not in STATS:
            raise ValueError(
                f"{where}: statistic {stat!r} is not one of {', '.join(STATS)} ({STATS['acf']}, ...)"
            )
        n = len(args)
        if stat in ("mean", "std"):
            if n != 1:
                raise ValueError(f"{where}: {stat} takes one series ({STATS[stat]})")
            return cls(stat, _check_series(args[0], where))
        if stat == "acf":
            if n not in (1, 2):
                raise ValueError(f"{where}: {STATS['acf']}")
            lag = _int(args[1], where, "lag", 1) if n == 2 else 1
            return cls("acf", _check_series(args[0], where), lag=lag)
        if stat == "ccf":
            if n not in (2, 3):
                raise ValueError(f"{where}: {STATS['ccf']}")
            lag = _int(args[2], where, "lag") if n == 3 else 0
            return cls("ccf", _check_series(args[0], where), _check_series(args[1], where), lag=lag)
        if stat == "bullwhip":
            if n != 1:
                raise ValueError(f"{where}: {STATS['bullwhip']}")
            return cls("bullwhip", stage=_int(args[0], where, "stage", 0))
        if n:
            raise ValueError(f"{where}: fill_rate takes no argument")
        return cls("fill_rate")


def parse_moments(specs) -> tuple[Moment, ...]:
    """Moments from a list of specs (text or mappings), each once."""
    if isinstance(specs, str | Mapping) or not isinstance(specs, Sequence):
        raise TypeError(
            f"moments == {specs!r}, must be a list of moments such as ['std:inventory_units', 'acf:order@0:1']"
        )
    out = tuple(Moment.parse(s) for s in specs)
    if not out:
        raise ValueError("moments == [], must name at least one moment")
    names = [m.name for m in out]
    repeated = [n for i, n in enumerate(names) if n in names[:i]]
    if repeated:
        raise ValueError(f"moments: {repeated[0]!r} is given twice, must be given once")
    return out


def _varies(x: np.ndarray) -> np.ndarray:
    """Whether each row holds two different values: ``np.ptp(x, axis=1) > 0`` on finite rows,
    in one comparison instead of a maximum and a minimum (the moments use it only where a row's
    sum of squared deviations is positive, which a NaN or an infinity would make NaN)."""
    return (x != x[:, :1]).any(axis=1)


def _centred(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's mean ``[rows, 1]``, deviations from it and sum of squared deviations, as
    ``x.mean``, ``x.std`` and :func:`_acf` compute them (the same operations, in the same order)."""
    mean = x.mean(axis=1, keepdims=True)
    d = x - mean
    return mean, d, (d * d).sum(axis=1)


def _acf(x: np.ndarray, lag: int, centred: tuple | None = None) -> np.ndarray:
    """Autocorrelation at ``lag`` of each row (statsmodels' ``acf`` definition: the lagged
    products over the whole series' sum of squares); 0 for a constant row. ``centred`` is
    ``_centred(x)`` when the caller has it."""
    _, d, den = _centred(x) if centred is None else centred
    if lag >= x.shape[1]:
        return np.zeros(x.shape[0])
    num = (d[:, :-lag] * d[:, lag:]).sum(axis=1)
    ok = (den > 0) & _varies(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def _ccf(x: np.ndarray, y: np.ndarray, lag: int) -> np.ndarray:
    """corr(x_t, y_{t+lag}) of each row pair, with the whole series' means and standard
    deviations and 1/T normalisation (statsmodels' ``ccf(adjusted=False)``); 0 if either row
    is constant."""
    t = x.shape[1]
    dx = x - x.mean(axis=1, keepdims=True)
    dy = y - y.mean(axis=1, keepdims=True)
    sx = np.sqrt((dx * dx).mean(axis=1))
    sy = np.sqrt((dy * dy).mean(axis=1))
    if abs(lag) >= t:
        return np.zeros(x.shape[0])
    if lag >= 0:
        num = (dx[:, : t - lag] * dy[:, lag:]).sum(axis=1) / t
    else:
        num = (dx[:, -lag:] * dy[:, : t + lag]).sum(axis=1) / t
    ok = (sx > 0) & (sy > 0) & _varies(x) & _varies(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, num / np.where(ok, sx * sy, 1.0), 0.0)


class MomentSet:
    """The moments of one calibration, computed per firm from its series.

    Parameters
    ----------
    moments : sequence of Moment
    network : Network
        The model's network (a series ``col@k`` sums the teams of stage ``k``).
    skip : int
        Periods left out at the start of every series (a warm-up, e.g. the beer game's fixed
        orders).
    """

    def __init__(self, moments: Sequence[Moment], network: Network, skip: int = 0):
        self.moments = tuple(moments)
        self.names = [m.name for m in self.moments]
        self.network = network
        self.skip = int(skip)
        self.series = tuple(dict.fromkeys(s for m in self.moments for s in m.series_needed))
        stages = int(network.stage.max()) + 1
        for s in self.series:
            if "@" in s and int(s.split("@")[1]) >= stages:
                bad = next(m.name for m in self.moments if s in m.series_needed)
                raise ValueError(
                    f"moment {bad!r}: stage {int(s.split('@')[1])}, the network has stages 0 to {stages - 1}"
                )
        self.needs_teams = any("@" in s for s in self.series)
        #: the teams of each stage a series names (teams are numbered stage by stage)
        self._stage_teams = {
            int(s.split("@")[1]): np.flatnonzero(network.stage == int(s.split("@")[1]))
            for s in self.series
            if "@" in s
        }

    def __len__(self) -> int:
        return len(self.moments)

    def per_firm(self, series: Mapping[str, np.ndarray]) -> np.ndarray:
        """``[firms, moments]`` from each needed series as ``[firms, periods]``. A series'
        mean and deviations are computed once for its mean, standard deviation and
        autocorrelations (the same numbers as ``mean``, ``std(ddof=1)`` and :func:`_acf` alone)."""
        cut = {k: np.asarray(v, dtype=np.float64)[:, self.skip :] for k, v in series.items()}
        n, periods = next(iter(cut.values())).shape
        out = np.empty((n, len(self.moments)))
        centred: dict[str, tuple] = {}

        def centre(name: str) -> tuple:
            if name not in centred:
                centred[name] = _centred(cut[name])
            return centred[name]

        for j, m in enumerate(self.moments):
            if m.stat == "mean":
                out[:, j] = centre(m.series)[0][:, 0] if m.series in centred else cut[m.series].mean(axis=1)
            elif m.stat == "std":
                if periods > 1:  # numpy's std: √(Σ d² / (T − 1)), over the deviations from the mean
                    out[:, j] = np.sqrt(centre(m.series)[2] / (periods - 1))
                else:  # its warning and NaN for no degree of freedom
                    out[:, j] = cut[m.series].std(axis=1, ddof=1)
            elif m.stat == "acf":
                out[:, j] = _acf(cut[m.series], m.lag, centre(m.series))
            elif m.stat == "ccf":
                out[:, j] = _ccf(cut[m.series], cut[m.other], m.lag)
            elif m.stat == "bullwhip":  # a constant demand gives inf or nan, reported by the caller
                with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                    out[:, j] = cut[f"order@{m.stage}"].var(axis=1, ddof=1) / cut["demand"].var(
                        axis=1, ddof=1
                    )
            else:
                out[:, j] = cut["fill_rate"].mean(axis=1)
        return out

    # -- series of simulated arrays ---------------------------------------------------------
    def simulated_series(
        self, kpis: Mapping[str, np.ndarray], teams: Mapping[str, np.ndarray] | None
    ) -> dict:
        """The needed series from the engine's arrays (KPIs ``[firm, period]``, team fields
        ``[firm, period, team]``): a stage's series is the sum over its teams."""
        out = {}
        for s in self.series:
            if "@" in s:
                col, stage = s.split("@")
                cols = self._stage_teams[int(stage)]
                if cols.size == 1:  # what the sum over one team gives (0.0 + x: −0.0 becomes 0.0), faster
                    out[s] = teams[col][:, :, cols[0]] + 0.0
                else:
                    out[s] = teams[col][:, :, cols].sum(axis=2)
            else:
                out[s] = kpis[_ENGINE_NAME.get(s, s)]
        return out

    # -- series of observed frames ----------------------------------------------------------
    def observed_series(
        self, kpis: pd.DataFrame | None, teams: pd.DataFrame | None
    ) -> tuple[dict, list, int]:
        """The needed series from checked observed frames (``read_kpis`` / ``read_teams``
        output), their firms and their number of periods.

        ``demand`` and ``fill_rate`` come from the KPI frame when it has them; otherwise from the
        stage-0 team records: demand D_t = shipped_t + backlog_t − backlog_{t−1} (backlog 0
        before period 1) and fill rate shipped_t / (shipped_t + backlog_t) (1 when both are 0),
        the model's definitions when unmet demand is backlogged (docs/model.md §7.5, §10.1).
        """
        orgs = None
        periods = None
        if kpis is not None:
            orgs = list(pd.unique(kpis["org"]))
            periods = _periods(kpis, "the KPI data")
        team_arrays = None
        if teams is not None:
            t_orgs = list(pd.unique(teams["org"]))
            t_periods = _periods(teams, "the team data")
            if orgs is not None and (orgs != t_orgs or periods != t_periods):
                raise ValueError(
                    f"the KPI data ({len(orgs)} firms × {periods} periods) and the team data ({len(t_orgs)} "
                    f"firms × {t_periods} periods) must cover the same firms and periods"
                )
            orgs, periods = t_orgs, t_periods
            team_arrays = _team_arrays(teams, self.network)
        out = {}
        for s in self.series:
            if "@" in s:
                if team_arrays is None:
                    raise ValueError(f"series {s!r} needs team records (teams=...), none were given")
                col, stage = s.split("@")
                if col not in team_arrays:
                    raise ValueError(f"series {s!r} needs team column {col!r}, which the team data lack")
                cols = np.flatnonzero(self.network.stage == int(stage))
                out[s] = team_arrays[col][:, :, cols].sum(axis=2)
            elif kpis is not None and s in kpis.columns:
                out[s] = kpis[s].to_numpy(dtype=np.float64).reshape(len(orgs), periods)
            elif s in ("demand", "fill_rate") and team_arrays is not None:
                sales = np.flatnonzero(self.network.stage == 0)
                shipped = team_arrays["shipped"][:, :, sales].sum(axis=2)
                backlog = team_arrays["backlog"][:, :, sales].sum(axis=2)
                if s == "demand":
                    previous = np.concatenate([np.zeros((len(orgs), 1)), backlog[:, :-1]], axis=1)
                    out[s] = shipped + backlog - previous
                else:
                    requested = shipped + backlog
                    with np.errstate(invalid="ignore", divide="ignore"):
                        out[s] = np.where(requested > 0, shipped / np.where(requested > 0, requested, 1), 1.0)
            else:
                where = "the KPI data" if kpis is not None else "no KPI data were given"
                raise ValueError(
                    f"series {s!r} is needed by moment "
                    f"{next(m.name for m in self.moments if s in m.series_needed)!r}, but {where}"
                    + (" lack that column" if kpis is not None else "")
                )
        if periods is None:
            raise ValueError("no observed data: give KPI series, team records or target moments")
        return out, orgs, periods


def _periods(frame: pd.DataFrame, what: str) -> int:
    counts = frame.groupby("org", sort=False)["period"].nunique()
    if counts.nunique() > 1:
        short = counts.idxmin()
        raise ValueError(
            f"{what}: every firm must have the same number of periods (firm {short!r} has {counts.min()}, "
            f"another {counts.max()}); the simulated firms run one length"
        )
    return int(counts.iloc[0])


def _team_arrays(teams: pd.DataFrame, network: Network) -> dict[str, np.ndarray]:
    """Team columns as ``[org, period, team]`` in network order (teams matched by name)."""
    names = list(network.names)
    observed = list(pd.unique(teams["team"]))
    if sorted(observed) != sorted(names):
        missing = [t for t in names if t not in observed]
        extra = [t for t in observed if t not in names]
        raise ValueError(
            f"the team data's teams must be the model's ({', '.join(names)})"
            + (f"; missing: {', '.join(map(repr, missing))}" if missing else "")
            + (f"; unknown: {', '.join(map(repr, extra))}" if extra else "")
        )
    if "stage" in teams.columns:
        stage = teams.drop_duplicates("team").set_index("team")["stage"]
        wrong = [t for t in names if int(stage[t]) != int(network.stage[names.index(t)])]
        if wrong:
            t = wrong[0]
            raise ValueError(
                f"team {t!r} is at stage {int(stage[t])} in the team data, at stage "
                f"{int(network.stage[names.index(t)])} in the model"
            )
    order = {t: i for i, t in enumerate(names)}
    df = teams.assign(_t=teams["team"].map(order)).sort_values(["org", "period", "_t"], kind="stable")
    n_orgs = df["org"].nunique()
    n_periods = df["period"].nunique()
    out = {}
    for col in TEAM_SERIES:
        if col in df.columns:
            out[col] = df[col].to_numpy(dtype=np.float64).reshape(n_orgs, n_periods, len(names))
    return out


def moment_cov(per_firm: np.ndarray, names: Sequence[str], where: str) -> np.ndarray:
    """Covariance of the per-firm moments ``[firms, moments]`` (ddof 1); a ValueError names a
    moment that does not vary (it cannot be weighted by an inverse variance)."""
    if per_firm.shape[0] < 2:
        raise ValueError(
            f"{where}: at least 2 simulated firms are needed to estimate the moments' covariance"
        )
    cov = np.atleast_2d(np.cov(per_firm, rowvar=False, ddof=1))
    var = np.diag(cov)
    scale = np.maximum(1.0, np.abs(per_firm).mean(axis=0)) ** 2
    flat = np.flatnonzero(~(var > 1e-14 * scale))
    if flat.size:
        raise ValueError(
            f"moment {names[flat[0]]!r} does not vary across the {per_firm.shape[0]} simulated firms {where} "
            "(variance 0): it cannot be weighted by an inverse variance; drop it or use weighting='identity'"
        )
    return cov


def sandwich(G: np.ndarray, W: np.ndarray, Sigma: np.ndarray) -> np.ndarray:
    """(G'WG)⁻¹ G'W Σ W G (G'WG)⁻¹: the covariance of a minimum-distance estimator whose moment
    discrepancy has covariance Σ, weighted by W (Hansen 1982; Gouriéroux & Monfort 1996, ch. 2);
    NaN where G'WG is singular (a parameter the moments do not identify)."""
    A = G.T @ W @ G
    if not np.all(np.isfinite(A)) or np.linalg.cond(A) > 1e12:
        return np.full(A.shape, np.nan)
    A_inv = np.linalg.inv(A)
    B = G.T @ W @ Sigma @ W @ G
    out = A_inv @ B @ A_inv
    return 0.5 * (out + out.T)


# --------------------------------------------------------------------------------------------
# parameters
# --------------------------------------------------------------------------------------------
def _field(key: str):
    """(section class or None, field) of a dotted config key, or None if it is not one."""
    from .config import _SECTIONS

    parts = key.split(".")
    if len(parts) == 1:
        fields = {f.name: f for f in dataclasses.fields(Config)}
        return (None, fields[parts[0]]) if parts[0] in fields and parts[0] not in _SECTIONS else None
    if len(parts) == 2 and parts[0] in _SECTIONS:
        fields = {f.name: f for f in dataclasses.fields(_SECTIONS[parts[0]])}
        return (_SECTIONS[parts[0]], fields[parts[1]]) if parts[1] in fields else None
    return None


def _get(cfg: Config, key: str):
    obj = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def model_value(cfg: Config, key: str) -> float | None:
    """The model's own value of a calibrated parameter (a per-stage field's first stage; None
    where the field is automatic): the truth of a recovery at the model's values."""
    value = _get(cfg, key)
    value = value[0] if isinstance(value, tuple) else value
    return None if value is None else float(value)


def check_bounds(params, cfg: Config) -> dict[str, tuple[float, float]]:
    """``{dotted key: (low, high)}`` checked against the model: each key a continuous numeric
    parameter that may vary per firm, ``low < high``, and a config built at either bound valid.
    Errors name the parameter, the value and what is allowed."""
    from .simulation import NOT_PER_FIRM

    if not isinstance(params, Mapping) or not params:
        raise TypeError(
            f"params == {params!r}, must be a non-empty mapping {{dotted key: (low, high)}} such as "
            "{'policy.theta': (0.0, 1.0)}, or the name of a conf/calibration file"
        )
    out = {}
    for key, bounds in params.items():
        where = f"params[{key!r}]"
        if not isinstance(key, str):
            raise TypeError(f"params key {key!r}, must be a dotted config key such as 'policy.theta'")
        for banned, why in NOT_PER_FIRM.items():
            if key == banned or key.startswith(banned + "."):
                raise ConfigError(f"{where}: {key} cannot be calibrated: {why}")
        if key in STRUCTURAL or any(key.startswith(s + ".") for s in STRUCTURAL):
            raise ConfigError(
                f"{where}: {key} is structural (it fixes the arrays' shapes, so every firm of a batch shares "
                "it), it cannot be calibrated; fix it with an override instead"
            )
        found = _field(key)
        if found is None:
            raise ConfigError(f"{where}: {key} is not a config key (see `orgsim --cfg job` for the keys)")
        _, fld = found
        current = _get(cfg, key)
        kind = fld.type if isinstance(fld.type, str) else getattr(fld.type, "__name__", str(fld.type))
        numeric_any = kind == "Any" and (
            current is None
            or (
                isinstance(current, tuple)
                and all(
                    v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool)) for v in current
                )
            )
        )
        if kind == "int":
            raise ConfigError(
                f"{where}: {key} is an integer parameter (now {current!r}), must be a continuous one: SMM's "
                "standard errors need the moments' derivatives; fix it with an override or calibrate it on a grid"
            )
        if kind != "float" and not numeric_any:
            raise ConfigError(f"{where}: {key} == {current!r} is not numeric, must be a numeric parameter")
        if (
            isinstance(bounds, str | bytes)
            or not isinstance(bounds, Sequence)
            or len(bounds) != 2
            or not all(isinstance(b, numbers.Real) and not isinstance(b, bool) for b in bounds)
        ):
            raise TypeError(f"{where} == {bounds!r}, must be a pair of numbers (low, high)")
        low, high = float(bounds[0]), float(bounds[1])
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{where} == {tuple(bounds)!r}, must be finite")
        if low >= high:
            raise ValueError(f"{where} == ({low:g}, {high:g}): low >= high, must be low < high")
        for label, value in (("low", low), ("high", high)):
            try:
                cfg.replace(**{key: value})
            except ConfigError as exc:
                raise ConfigError(
                    f"{where}: {label} bound {value:g} is outside the parameter's allowed range ({exc})"
                ) from None
        out[key] = (low, high)
    return out


# --------------------------------------------------------------------------------------------
# simulating candidate batches
# --------------------------------------------------------------------------------------------
class Runner:
    """Simulates batches of candidates on common random numbers and returns their moments.

    Parameters
    ----------
    cfg : Config
        The model (its ``periods`` those of the data).
    moments : MomentSet
    seed : int
        Firm ``r`` of every candidate draws from the stream of firm ``r`` of
        ``orgsim.simulate(cfg, seed=seed)``.
    names : sequence of str
        The calibrated parameters (dotted keys): the columns of a candidate table.
    """

    def __init__(self, cfg: Config, moments: MomentSet, seed: int, names: Sequence[str] = ()):
        self.cfg = cfg.replace(engine="numba", n_orgs=1)
        self.names = list(names)
        self.moments = moments
        self.seed = int(seed)
        self.network = build_network(self.cfg)
        self._keys: dict[tuple[int, int], np.ndarray] = {}
        self._buffers: dict[tuple[int, bool], tuple[np.ndarray, np.ndarray]] = {}
        self.firms_simulated = 0
        self.calls = 0

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_buffers"] = {}  # output buffers are scratch memory, not state
        return state

    def keys(self, first: int, n: int) -> np.ndarray:
        """Random keys of firms ``first`` … ``first + n − 1`` (cached: every batch reuses them)."""
        from ._rng import firm_keys

        k = (int(first), int(n))
        if k not in self._keys:
            if len(self._keys) >= 256:
                self._keys.pop(next(iter(self._keys)))
            self._keys[k] = firm_keys(self.seed, range(int(first), int(first) + int(n)))
        return self._keys[k]

    def simulate(self, table: pd.DataFrame, replicates: int, first=0, *, reuse: bool = False):
        """KPI arrays ``[candidate, replicate, period]`` and team arrays (``[..., team]``, or
        None) of every row of ``table`` (one candidate per row, columns dotted keys): one kernel
        call. Replicate ``r`` of row ``c`` runs on the random stream of firm ``first + r``
        (``first`` an integer, or one per row), so rows with the same ``first`` share their
        random numbers. With ``reuse`` the arrays are the runner's output buffers for this batch
        size, overwritten by the next such call (for callers that reduce them at once, as
        :meth:`per_firm` does): no fresh memory to fault in per batch.
        """
        from . import engine_numba
        from ._params import pack_params
        from .schema import check_memory
        from .simulation import _check_finite, _check_params

        table = _check_params(pd.DataFrame(table).reset_index(drop=True))
        c, r = len(table), int(replicates)
        firsts = np.broadcast_to(np.asarray(first, dtype=np.int64), (c,))
        # the batch's size checked as simulate(cfg.replace(n_orgs=c * r)) would, without a config
        n_orgs = config_parameters()["n_orgs"].validate("n_orgs", c * r)
        check_memory(self.cfg, self.moments.needs_teams, n_orgs=n_orgs)
        packed = pack_params(self.cfg, table)
        rows = np.repeat(np.arange(c, dtype=np.int64), r)
        if np.all(firsts == firsts[0]):
            keys = np.tile(self.keys(firsts[0], r), c)
        else:
            keys = np.concatenate([self.keys(f, r) for f in firsts])
        teams = self.moments.needs_teams
        engine_numba.warm_up(packed, keys, rows, teams=teams, notice=True)
        out = None
        if reuse:
            size = (c * r, teams)
            out = self._buffers.pop(size, None) or engine_numba.output_buffers(packed, c * r, teams=teams)
            self._buffers[size] = out  # most recently used last
            while len(self._buffers) > 4:  # a few batch sizes recur (search, Jacobian, SEs)
                self._buffers.pop(next(iter(self._buffers)))
        k_arr, t_arr = engine_numba.run(packed, keys, rows, teams=teams, out=out)
        kpis = {name: k_arr[j] for j, name in enumerate(engine_numba.KPI_FIELDS)}
        team = {name: t_arr[j] for j, name in enumerate(engine_numba.TEAM_FIELDS)} if teams else None
        if not all_finite(k_arr, t_arr):
            _check_finite(kpis, team)  # names the first NaN or infinity (field, firm, period)
        self.firms_simulated += c * r
        self.calls += 1
        t = self.cfg.periods
        kpis = {k: v.reshape(c, r, t) for k, v in kpis.items()}
        if team is not None:
            team = {k: v.reshape(c, r, t, -1) for k, v in team.items()}
        return kpis, team

    def per_firm(self, table: pd.DataFrame, replicates: int, first=0):
        """Per-firm moments ``[candidate, replicate, moment]`` of a batch (see :meth:`simulate`)."""
        kpis, team = self.simulate(table, replicates, first, reuse=True)
        c, r = len(table), int(replicates)
        flat_k = {k: v.reshape(c * r, -1) for k, v in kpis.items()}
        flat_t = (
            None if team is None else {k: v.reshape(c * r, v.shape[2], v.shape[3]) for k, v in team.items()}
        )
        series = self.moments.simulated_series(flat_k, flat_t)
        return self.moments.per_firm(series).reshape(c, r, len(self.moments))


def all_finite(*arrays: np.ndarray | None) -> bool:
    """Whether every value of the arrays is finite, in one pass over each without a temporary.

    A sum is NaN or infinite when any term is (NaN, or infinities of both signs, give NaN), so a
    finite sum proves every term finite; a sum of finite terms can still overflow, so False means
    "check value by value" (``orgsim.simulation._check_finite``), not that a value is bad."""
    with np.errstate(over="ignore", invalid="ignore"):
        return all(a is None or a.size == 0 or math.isfinite(np.add.reduce(a, axis=None)) for a in arrays)


def table_of(points: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    """Candidates ``[n, params]`` as a params table (columns dotted keys)."""
    return pd.DataFrame(np.atleast_2d(points), columns=list(names))


# --------------------------------------------------------------------------------------------
# targets and the moment discrepancy's covariance
# --------------------------------------------------------------------------------------------
@dataclass
class Target:
    """Observed moments to fit: their values, and what their covariance is.

    ``cov`` is the covariance of the observed moments when the caller gives it; otherwise it
    is the per-firm covariance Ω of the simulated moments over ``n_obs`` (the observed moments
    average ``n_obs`` firms), evaluated where the weighting or the standard errors need it.
    """

    values: np.ndarray
    n_obs: int | None = None
    cov: np.ndarray | None = None
    label: str = ""
    #: first firm index of the simulated replicates this estimation uses (its own random numbers)
    first: int = 0

    def data_cov(self, omega: np.ndarray) -> np.ndarray:
        return self.cov if self.cov is not None else omega / self.n_obs

    def sigma(self, omega: np.ndarray, replicates: int) -> np.ndarray:
        """Σ_g = Var(observed moments) + Ω/R, the covariance of g = m_obs − m_sim(θ) when the
        simulated moments average R replicates: with Var(observed) = Ω/N it is (Ω/N)(1 + 1/S),
        S = R/N, the simulation correction of Gouriéroux & Monfort (1996) and Duffie & Singleton
        (1993)."""
        return self.data_cov(omega) + omega / replicates


def _inverse(S: np.ndarray, names: Sequence[str], where: str) -> np.ndarray:
    """S⁻¹ for a covariance matrix, or a ValueError when it is numerically singular."""
    d = np.sqrt(np.diag(S))
    corr = S / np.outer(d, d)
    cond = np.linalg.cond(corr)
    if not np.isfinite(cond) or cond > 1e10:
        _, v = np.linalg.eigh(corr)
        worst = np.argsort(-np.abs(v[:, 0]))[:3]
        raise ValueError(
            f"the moments' covariance {where} is singular (condition number {cond:.3g}): moments "
            f"{', '.join(repr(names[i]) for i in worst)} are (nearly) linearly dependent; drop one or use "
            "weighting='diagonal'"
        )
    inv = np.linalg.inv(S)
    return 0.5 * (inv + inv.T)


# --------------------------------------------------------------------------------------------
# the search: Optuna ask/tell on candidate batches
# --------------------------------------------------------------------------------------------
def make_sampler(kind: str, seed: int, batch_size: int):
    import optuna

    if kind == "tpe":
        # constant liar: trials asked but not yet told count as bad, so one batch spreads out
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    if kind == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, popsize=max(4, batch_size))
    raise ValueError(f"sampler == {kind!r}, must be 'tpe' or 'cmaes'")


def alive(pid: int) -> bool:
    """Whether a process of this host is running."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process
        return True
    return True


class Problem:
    """One estimation step searched by Optuna: loss g'Wg with g = target − m_sim(θ).

    The sampler works on ``local``, an in-memory study. With a persistent study ``store``
    (journal file or database) every finished trial is also written there, once, at the end of
    its batch, with its simulated moments (user attribute ``moments``, so that a later step can
    re-score it without simulating) and a unique id (``uid``); before each batch the trials that
    other processes finished are read from ``store`` into ``local``. A killed process loses only
    the batch it was simulating, which no study holds as finished, so a resumed search never
    repeats a finished trial. (Writing each trial's every field as Optuna's ask/tell does costs a
    journal fsync apiece, ~8 per trial; this costs one.)
    """

    def __init__(self, local, store, names, bounds, target: Target, W: np.ndarray, n_trials: int, token: str):
        import optuna

        self.local, self.store = local, store
        self.names = list(names)
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self.target = target
        self.W = W
        self.n_trials = int(n_trials)
        self.token = token
        self.distributions = {
            n: optuna.distributions.FloatDistribution(float(lo), float(hi))
            for n, (lo, hi) in zip(names, self.bounds)
        }
        self._seen: set[str] = set()
        self._count = 0
        self.sync()

    @property
    def study(self):
        """The study that holds this step's finished trials (persistent if there is one)."""
        return self.store if self.store is not None else self.local

    def loss(self, m: np.ndarray) -> float:
        g = self.target.values - m
        return float(g @ self.W @ g)

    def _trial(self, params: dict, m: np.ndarray, **attrs):
        import optuna

        return optuna.trial.create_trial(
            params=dict(params), distributions=self.distributions, value=self.loss(m),
            user_attrs={"moments": [float(x) for x in m], **attrs},
        )  # fmt: skip

    def sync(self) -> None:
        """Read into ``local`` the finished trials of ``store`` that it does not hold yet."""
        from optuna.trial import TrialState

        if self.store is None:
            return
        new = []
        done = self.store.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        self._count = len(done)
        for t in done:
            uid = str(t.user_attrs.get("uid", f"#{t.number}"))
            if uid in self._seen or "moments" not in t.user_attrs or set(t.params) != set(self.names):
                continue
            self._seen.add(uid)
            new.append(self._trial(t.params, np.asarray(t.user_attrs["moments"], dtype=np.float64), uid=uid))
        if new:
            self.local.add_trials(new)

    def new_complete(self) -> int:
        """Finished trials of this step (all processes; not those carried over from step 1)."""
        from optuna.trial import TrialState

        if self.store is not None:
            return self._count
        return sum(
            1
            for t in self.local.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if "warm" not in t.user_attrs
        )

    def to_ask(self, batch_size: int) -> int:
        return max(0, min(batch_size, self.n_trials - self.new_complete()))

    def record(self, finished: list[tuple]) -> None:
        """Write a batch's finished trials ``(params, moments)`` to ``store``."""
        if self.store is None or not finished:
            return
        import uuid

        trials = []
        for params, m in finished:
            uid = f"{self.token}:{uuid.uuid4().hex[:8]}"
            self._seen.add(uid)
            trials.append(self._trial(params, m, uid=uid))
        self.store.add_trials(trials)
        self._count += len(trials)

    def best(self, first: int | None = None) -> tuple[np.ndarray, float, np.ndarray]:
        """(θ, loss, simulated moments) of the best finished trial; with ``first``, among the
        first ``first`` trials that ``store`` (or ``local``) holds, which every process sharing
        the study sees alike."""
        from optuna.trial import TrialState

        if first is not None:
            pool = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            pool = sorted((t for t in pool if "warm" not in t.user_attrs), key=lambda t: t.number)[:first]
        else:
            pool = self.local.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        done = [t for t in pool if "moments" in t.user_attrs]
        if not done:
            raise RuntimeError(f"study {self.study.study_name!r} has no finished trial")
        t = min(done, key=lambda t: (t.value, t.number))
        return (
            np.array([t.params[n] for n in self.names]),
            float(t.value),
            np.asarray(t.user_attrs["moments"], dtype=np.float64),
        )

    def warm_start(self, source: Problem) -> int:
        """Add the finished trials of ``source`` (an earlier step), re-scored with this step's
        weighting matrix, to ``local`` (not to ``store``: they are derived, not evaluated)."""
        from optuna.trial import TrialState

        trials = []
        for t in source.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if "moments" in t.user_attrs and set(t.params) == set(self.names) and "warm" not in t.user_attrs:
                trials.append(
                    self._trial(
                        t.params, np.asarray(t.user_attrs["moments"], dtype=np.float64), warm=t.number
                    )
                )
        self.local.add_trials(trials)
        return len(trials)


def run_search(
    problems: Sequence[Problem], runner: Runner, replicates: int, batch_size: int, report=None
) -> int:
    """Ask each unfinished problem for up to ``batch_size`` candidates, simulate all of them in
    one kernel call on common random numbers, tell each its loss (and record it); repeat until
    every problem has its ``n_trials`` finished trials. Returns the trials evaluated."""
    from optuna.trial import TrialState

    evaluated = 0
    while True:
        asked = []
        for p in problems:
            p.sync()
            for _ in range(p.to_ask(batch_size)):
                asked.append((p, p.local.ask(p.distributions)))
        if not asked:
            return evaluated
        points = np.array([[t.params[n] for n in runner.names] for _, t in asked])
        firsts = np.array([p.target.first for p, _ in asked])
        try:
            per_firm = runner.per_firm(table_of(points, runner.names), replicates, firsts)
        except BaseException:  # interrupted or failed: leave none of this batch running
            for p, t in asked:
                p.local.tell(t, state=TrialState.FAIL)
            raise
        finished = {id(p): [] for p in problems}
        for (p, trial), firms in zip(asked, per_firm):
            m = firms.mean(axis=0)
            if not np.all(np.isfinite(m)):
                bad = runner.moments.names[int(np.flatnonzero(~np.isfinite(m))[0])]
                trial.set_user_attr("failed", f"moment {bad} is not finite")
                p.local.tell(trial, state=TrialState.FAIL)
                continue
            trial.set_user_attr("moments", m.tolist())
            p.local.tell(trial, p.loss(m))
            finished[id(p)].append((trial.params, m))
        for p in problems:
            p.record(finished[id(p)])
        evaluated += len(asked)
        if report is not None:
            report(problems, len(asked))


def _best_moves(problems: Sequence[Problem], cands, owner, runner: Runner, replicates: int) -> dict:
    """Simulate candidate points ``cands`` (``cands[k]`` for problem ``owner[k]``, on its draws)
    in one kernel call; per problem, its candidate of lowest loss ``{i: (θ, loss, moments)}``
    (the first of equal ones; candidates with non-finite moments left out)."""
    firsts = np.array([problems[i].target.first for i in owner])
    per_firm = runner.per_firm(table_of(np.array(cands), runner.names), replicates, firsts)
    best: dict = {}
    for y, firms, i in zip(cands, per_firm, owner):
        m = firms.mean(axis=0)
        if not np.all(np.isfinite(m)):
            continue
        f = problems[i].loss(m)
        if i not in best or f < best[i][1]:
            best[i] = (y, f, m)
    return best


def polish(
    problems: Sequence[Problem], starts, runner: Runner, replicates: int, *, step=0.05, tol=1 / 512, rounds=40
):
    """Refine each problem's best point by a compass search (Kolda, Lewis & Torczon 2003): try
    θ ± s·(high − low)·e_j for every parameter j in one batch, move to the best point if it
    lowers the loss, else halve s; stop when s < ``tol``. All problems share each batch.
    Returns [(θ, loss, moments)] per problem."""
    state = [[np.array(x, dtype=np.float64), float(f), np.array(m), float(step)] for x, f, m in starts]
    for _ in range(rounds):
        active = [i for i, s in enumerate(state) if s[3] >= tol]
        if not active:
            break
        cands, owner = [], []
        for i in active:
            x, s = state[i][0], state[i][3]
            lo, hi = problems[i].bounds[:, 0], problems[i].bounds[:, 1]
            for j in range(len(x)):
                for sign in (-1.0, 1.0):
                    y = x.copy()
                    y[j] = np.clip(x[j] + sign * s * (hi[j] - lo[j]), lo[j], hi[j])
                    if y[j] != x[j]:
                        cands.append(y)
                        owner.append(i)
        if not cands:
            for i in active:
                state[i][3] /= 2
            continue
        best = _best_moves(problems, cands, owner, runner, replicates)
        for i in active:
            if i in best and best[i][1] < state[i][1]:
                state[i][:3] = list(best[i])
            else:
                state[i][3] /= 2
    return [(s[0], s[1], s[2]) for s in state]


def gauss_newton(
    problems: Sequence[Problem], starts, runner: Runner, replicates: int, *, step=0.02, iterations=10,
    damping=(1.0, 0.5, 0.25, 0.1),
):  # fmt: skip
    """Refine each problem's point by damped Gauss–Newton steps on its loss g'Wg.

    With g(θ) = target − m(θ) and G the Jacobian of m, the linearised loss
    (g − G d)'W(g − G d) is least at d = (G'WG)⁻¹G'W g. Each iteration estimates G at every
    active point by central differences of ``step``·(high − low) on the loss's own replicates
    (common random numbers), tries θ + a·d (clipped to the bounds) for each step length a in
    ``damping``, and moves to the best of them if it lowers the loss; a problem whose steps all
    fail (or whose G'WG is singular) stops. The differences span a few per cent of the bounds,
    so the step follows the loss's slope at that scale, not the small jumps that integer units
    make in it on fixed draws; a search along a curved ridge that the compass search of
    :func:`polish` crosses one coordinate at a time takes few steps. Every point and Jacobian of
    all problems are in one kernel call per iteration. Returns [(θ, loss, moments)] per problem,
    never with a higher loss than its start.
    """
    state = [[np.array(x, dtype=np.float64), float(f), np.asarray(m, dtype=np.float64)] for x, f, m in starts]
    active = list(range(len(state)))
    for _ in range(int(iterations)):
        if not active:
            break
        firsts = np.array([problems[i].target.first for i in active])
        jac = jacobians(runner, np.array([state[i][0] for i in active]), problems[active[0]].bounds,
                        replicates, step, firsts)  # fmt: skip
        cands, owner = [], []
        for i, (_, G) in zip(active, jac):
            p, (x, _, m) = problems[i], state[i]
            g = p.target.values - m
            A = G.T @ p.W @ G
            if not np.all(np.isfinite(A)) or np.linalg.cond(A) > 1e12:
                continue
            d = np.linalg.solve(A, G.T @ p.W @ g)
            lo, hi = p.bounds[:, 0], p.bounds[:, 1]
            for a in damping:
                cands.append(np.clip(x + a * d, lo, hi))
                owner.append(i)
        moved = set()
        best = _best_moves(problems, cands, owner, runner, replicates) if cands else {}
        for i, (y, f, m) in best.items():
            if f < state[i][1]:
                state[i] = [y, f, m]
                moved.add(i)
        active = [i for i in active if i in moved]
    return [(s[0], s[1], s[2]) for s in state]


def refine(problems: Sequence[Problem], starts, runner: Runner, replicates: int, *, step=0.02):
    """The estimator's local refinement of the search's best point: :func:`gauss_newton` steps
    (Jacobian step ``step``), then the compass search of :func:`polish` from where they stop.

    On the beer game the search plus the compass search alone stopped short of the loss's
    minimum in most datasets, which made the spread of the estimates 1.5–1.8 times the sandwich
    SE; with the Gauss–Newton steps first the spread is near the SE (docs/calibration.md,
    ``experiments/beer_game_oracle.py``)."""
    return polish(problems, gauss_newton(problems, starts, runner, replicates, step=step), runner, replicates)


def jacobians(runner: Runner, points: np.ndarray, bounds: np.ndarray, replicates: int, step: float, firsts=0):
    """Per point: the per-firm moments there ``[R, M]`` and the Jacobian of the mean simulated
    moments ``[M, P]`` by central differences of step ``step·(high − low)`` (one-sided at a
    bound), on common random numbers (point ``i`` on firms ``firsts[i]`` …); all points in one
    kernel call."""
    points = np.atleast_2d(points)
    firsts = np.broadcast_to(np.asarray(firsts, dtype=np.int64), (len(points),))
    n, p = points.shape
    h = step * (bounds[:, 1] - bounds[:, 0])
    cands = []
    for x in points:
        cands.append(x)
        for j in range(p):
            up, down = x.copy(), x.copy()
            up[j] = min(x[j] + h[j], bounds[j, 1])
            down[j] = max(x[j] - h[j], bounds[j, 0])
            cands += [up, down]
    per_firm = runner.per_firm(
        table_of(np.array(cands), runner.names), replicates, np.repeat(firsts, 1 + 2 * p)
    )
    out = []
    for i in range(n):
        block = per_firm[i * (1 + 2 * p) : (i + 1) * (1 + 2 * p)]
        means = block.mean(axis=1)
        G = np.empty((means.shape[1], p))
        for j in range(p):
            up, down = cands[i * (1 + 2 * p) + 1 + 2 * j], cands[i * (1 + 2 * p) + 2 + 2 * j]
            G[:, j] = (means[1 + 2 * j] - means[2 + 2 * j]) / (up[j] - down[j])
        out.append((block[0], G))
    return out


# --------------------------------------------------------------------------------------------
# the estimator: pilot weighting, one or two search steps, polish, sandwich
# --------------------------------------------------------------------------------------------
@dataclass
class Fit:
    """One SMM estimate and what its uncertainty is computed from."""

    theta: np.ndarray  #: the estimate
    loss: float  #: g'Wg at the estimate (the J statistic with optimal weighting)
    simulated: np.ndarray  #: the simulated moments at the estimate (the search's R replicates)
    W: np.ndarray  #: the weighting matrix of the last step
    omega: np.ndarray  #: per-firm covariance of the simulated moments at the estimate
    sigma: np.ndarray  #: Σ_g at the estimate: covariance of the moment discrepancy
    G: np.ndarray  #: Jacobian of the simulated moments at the estimate [M, P]
    cov: np.ndarray  #: sandwich covariance of the estimate [P, P]
    pilot: np.ndarray | None  #: the first step's estimate (two-step weighting), else None
    steps: list  #: per search step: its study name, best loss and trials evaluated
    jtest: tuple | None  #: (statistic, df, p-value) with optimal weighting


def sandwich_at(
    runner: Runner, points: np.ndarray, bounds: np.ndarray, targets, Ws, se_replicates: int, replicates: int,
    step: float, where: str = "at the estimate",
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:  # fmt: skip
    """Per point ``points[k]`` (of target ``targets[k]``, weighting ``Ws[k]``): ``(Ω, Σ_g, G,
    cov)`` as the estimator evaluates them at its estimate: Ω and the Jacobian G from
    ``se_replicates`` common-random-number firms (central differences of ``step``), Σ_g from Ω
    for moments averaged over ``replicates`` replicates, and the sandwich covariance. One kernel
    call for every point."""
    jac = jacobians(runner, points, bounds, se_replicates, step, np.array([t.first for t in targets]))
    out = []
    for (pf, G), target, W in zip(jac, targets, Ws):
        label = f" ({target.label})" if target.label else ""
        omega = moment_cov(pf, runner.moments.names, where + label)
        sigma = target.sigma(omega, replicates)
        out.append((omega, sigma, G, sandwich(G, W, sigma)))
    return out


def weighting_from(kind, S: np.ndarray, names, where: str) -> np.ndarray:
    if kind == "diagonal":
        return np.diag(1.0 / np.diag(S))
    return _inverse(S, names, where)


def estimate(
    runner: Runner,
    bounds: np.ndarray,
    targets: Sequence[Target],
    *,
    weighting,
    replicates: int,
    se_replicates: int,
    n_trials: int,
    batch_size: int,
    study_for,
    token: str,
    do_polish: bool = True,
    fd_step: float = 0.02,
    report=None,
) -> list[Fit]:
    """Estimate θ for every target in lockstep (each batch holds candidates of all of them).

    ``weighting``: ``"identity"``, ``"diagonal"``, ``"optimal"`` or a fixed matrix. Diagonal and
    optimal are two-step: step 1 weights by the inverse variances of Σ_g at the centre of the
    bounds, step 2 by diag(Σ_g)⁻¹ or Σ_g⁻¹ at step 1's estimate (Hansen 1982's two-step GMM).
    ``study_for(k, step)`` gives target ``k``'s studies for step ``"step1"``, ``"step2"`` or
    ``"search"`` (one step): ``(local, store, attrs, set_attr)`` with ``local`` an in-memory
    study, ``store`` the persistent one or None, and ``attrs``/``set_attr`` the step's recorded
    attributes (the pilot estimate). Each step runs until it has ``n_trials`` finished trials of
    its own; step 1's estimate is the best of its first ``n_trials`` finished trials (the same in
    every process sharing the study), recorded before step 2 starts. Then the best point is
    refined (:func:`refine`: Gauss–Newton steps, then the compass search); Ω, Σ_g and the
    Jacobian G are estimated at the estimate with ``se_replicates`` firms on common random
    numbers (:func:`sandwich_at`).
    """
    names = runner.moments.names
    K = len(targets)
    M, P = len(names), bounds.shape[0]
    centre = bounds.mean(axis=1)
    steps_log: list[list] = [[] for _ in range(K)]
    two_step = isinstance(weighting, str) and weighting in ("diagonal", "optimal")
    if isinstance(weighting, str) and weighting == "identity":
        weights = [np.eye(M)] * K
    elif not isinstance(weighting, str):
        weights = [np.asarray(weighting, dtype=np.float64)] * K
    else:
        pf = runner.per_firm(table_of(centre, runner.names), se_replicates, targets[0].first)[0]
        omega_c = moment_cov(pf, names, "at the centre of the bounds")
        weights = [np.diag(1.0 / np.diag(t.sigma(omega_c, replicates))) for t in targets]

    def search(step: str, Ws, warm_from=None):
        problems = []
        for k in range(K):
            local, store = study_for(k, step)[:2]
            p = Problem(local, store, runner.names, bounds, targets[k], Ws[k], n_trials, token)
            if warm_from is not None:
                p.warm_start(warm_from[k])
            problems.append(p)
        evaluated = run_search(problems, runner, replicates, batch_size, report)
        for k, p in enumerate(problems):
            steps_log[k].append({"study": p.study.study_name, "evaluated": evaluated})
        return problems

    pilots = [None] * K
    if two_step:  # a recorded pilot means step 1 is over (another process, or before a kill)
        recorded = [study_for(k, "step2")[2].get("pilot") for k in range(K)]
    first = final = None
    if not two_step or any(r is None for r in recorded):
        first = final = search("step1" if two_step else "search", weights)
    if two_step:
        if first is None:
            first = [
                Problem(
                    *study_for(k, "step1")[:2], runner.names, bounds, targets[k], weights[k], n_trials, token
                )
                for k in range(K)
            ]
        pilots = []
        for k in range(K):  # the best of the first n_trials finished trials: alike in every process
            theta1 = (
                np.asarray(recorded[k], dtype=np.float64)
                if recorded[k] is not None
                else first[k].best(n_trials)[0]
            )
            if recorded[k] is None:
                study_for(k, "step2")[3]("pilot", theta1.tolist())
            pilots.append(theta1)
        pf = runner.per_firm(
            table_of(np.array(pilots), runner.names), se_replicates, np.array([t.first for t in targets])
        )
        Ws = []
        for k in range(K):
            where = "at the first step's estimate" + (f" ({targets[k].label})" if targets[k].label else "")
            S = targets[k].sigma(moment_cov(pf[k], names, where), replicates)
            Ws.append(weighting_from(weighting, S, names, where))
        final = search("step2", Ws, warm_from=first)
    starts = [p.best() for p in final]
    if do_polish:
        starts = refine(final, starts, runner, replicates, step=fd_step)
    thetas = np.array([s[0] for s in starts])
    at = sandwich_at(
        runner, thetas, bounds, targets, [p.W for p in final], se_replicates, replicates, fd_step
    )
    fits = []
    for k in range(K):
        omega, sigma, G, cov = at[k]
        W = final[k].W
        jtest = None
        if isinstance(weighting, str) and weighting == "optimal" and M > P:
            from scipy import stats

            stat = float(starts[k][1])
            jtest = (stat, M - P, float(stats.chi2.sf(stat, M - P)))
        for log, p in zip(steps_log[k], [first[k], final[k]][-len(steps_log[k]) :]):
            log["best_loss"] = p.best()[1]
        fits.append(
            Fit(
                theta=thetas[k],
                loss=float(starts[k][1]),
                simulated=np.asarray(starts[k][2]),
                W=W,
                omega=omega,
                sigma=sigma,
                G=G,
                cov=cov,
                pilot=pilots[k],
                steps=steps_log[k],
                jtest=jtest,
            )
        )
    return fits


# --------------------------------------------------------------------------------------------
# storage and studies
# --------------------------------------------------------------------------------------------
def repair_journal(path: Path) -> None:
    """Cut a last line that a killed process left half written (Optuna's journal would refuse
    the file once another line follows it)."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        data = fh.seek(0) or fh.read()
        fh.truncate(data.rfind(b"\n") + 1)


def open_storage(storage):
    """An Optuna storage from a journal file path, a database URL or a storage (None: none)."""
    import optuna

    if storage is None:
        return None
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage
    if not isinstance(storage, str | os.PathLike):
        raise TypeError(
            f"storage == {storage!r}, must be None, a journal file path, a database URL "
            "('sqlite:///calibration.db') or an Optuna storage"
        )
    text = os.fspath(storage)
    if "://" in text:
        return optuna.storages.RDBStorage(text)
    path = Path(text)
    if path.is_dir():
        raise ValueError(
            f"storage == {text!r} is a directory, must be a journal file path such as {text}/study.journal"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_journal(path)
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def new_token() -> str:
    import socket
    import uuid

    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def sampler_seed(seed: int, *parts: int) -> int:
    return int(np.random.SeedSequence([seed, 0x5A4D, *parts]).generate_state(1)[0] % (2**31 - 1))


class Studies:
    """The Optuna studies of one or several estimations, each step's created or loaded once.

    ``self(k, step)`` gives ``(local, store, attrs, set_attr)`` (see :func:`orgsim._smm.estimate`):
    ``store`` lives in the persistent storage (None without one) and the first one created
    records the calibration's settings, so that a storage holding other settings is refused;
    ``local`` is an in-memory study whose sampler is seeded from the seed, the step, the trials
    already finished and this process's rank among the live processes working on the study
    (0 when alone, so a run is reproducible; processes that share a study sample differently).
    """

    def __init__(
        self, storage, name: str, settings: dict | None, sampler: str, seed: int, batch_size: int, token: str
    ):
        self.storage, self.name, self.settings = storage, name, settings
        self.sampler, self.seed, self.batch_size, self.token = sampler, seed, batch_size, token
        self._cache: dict = {}
        self._checked = False

    def __call__(self, k: int, step: str):
        import optuna

        key = (k, step)
        if key in self._cache:
            return self._cache[key]
        name = f"{self.name}/{step}" if k == 0 else f"{self.name}/{k}/{step}"
        store, attrs = None, {}
        existing, rank = 0, 0
        if self.storage is not None:
            store = optuna.create_study(
                storage=self.storage, study_name=name, load_if_exists=True, direction="minimize"
            )
            if self.settings is not None and not self._checked:
                self._check_settings(store)
                self._checked = True
            existing = len(store.get_trials(deepcopy=False))
            rank = self._register(store)
            attrs = store.user_attrs
        local = optuna.create_study(
            study_name=name,
            sampler=make_sampler(
                self.sampler, sampler_seed(self.seed, k, len(step), existing, rank), self.batch_size
            ),
            direction="minimize",
        )

        def set_attr(attr, value, store=store, attrs=attrs):
            if store is not None:
                store.set_user_attr(attr, value)
            attrs[attr] = value

        self._cache[key] = (local, store, attrs, set_attr)
        return self._cache[key]

    def _register(self, store) -> int:
        """Record this process in the study; return how many other live processes it holds
        (same host: their process runs; another host: seen within the hour)."""
        import datetime
        import socket

        now = datetime.datetime.now(datetime.UTC)
        workers = dict(store.user_attrs.get("workers", {}))
        live = 0
        for token, seen in workers.items():
            host, _, rest = token.partition(":")
            pid = rest.partition(":")[0]
            if token == self.token:
                continue
            if host == socket.gethostname() and pid.isdigit():
                live += int(pid) != os.getpid() and alive(int(pid))
            else:
                live += (now - datetime.datetime.fromisoformat(seen)).total_seconds() < 3600
        workers[self.token] = now.isoformat()
        store.set_user_attr("workers", workers)
        return live

    def _check_settings(self, study) -> None:
        text = json.dumps(self.settings, sort_keys=True, default=json_default)
        digest = hashlib.sha256(text.encode()).hexdigest()
        stored = study.user_attrs.get("orgsim_settings_sha256")
        if stored is None:
            study.set_user_attr("orgsim_settings", text)
            study.set_user_attr("orgsim_settings_sha256", digest)
        elif stored != digest:
            old = json.loads(study.user_attrs.get("orgsim_settings", "{}"))
            new = json.loads(text)
            differ = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
            raise ValueError(
                f"study {study.study_name!r} in this storage holds a calibration of other settings (they differ "
                f"in: {', '.join(differ) or 'their digest'}); give another study_name or storage to start a new one"
            )

    def finished(self) -> int:
        """Trials evaluated in every step (all processes; warm starts not counted)."""
        from optuna.trial import TrialState

        total = 0
        for local, store, _, _ in self._cache.values():
            study = store if store is not None else local
            total += sum(
                1
                for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if "warm" not in t.user_attrs
            )
        return total


@contextlib.contextmanager
def quiet_optuna():
    import warnings

    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


@contextlib.contextmanager
def threads(n_jobs):
    """Numba's thread count for the kernel calls (results do not depend on it)."""
    if n_jobs is None:
        yield
        return
    import numba

    most = numba.config.NUMBA_NUM_THREADS
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or not 1 <= n_jobs:
        raise ValueError(f"n_jobs == {n_jobs!r}, must be None (all {most} threads) or an integer >= 1")
    before = numba.get_num_threads()
    numba.set_num_threads(min(int(n_jobs), most))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def progress_reporter(progress, label: str):
    """A ``report(problems, n)`` callback for :func:`orgsim._smm.run_search`, and a closer."""
    if progress is None:
        progress = sys.stderr.isatty()
    if progress is False:
        return None, lambda: None
    bars = {}

    def report(problems, n):
        step = problems[0].study.study_name.rsplit("/", 1)[-1]
        done = sum(p.new_complete() for p in problems)
        total = sum(p.n_trials for p in problems)
        best = min(p.best()[1] for p in problems) if len(problems) == 1 else float("nan")
        info = {"label": label, "step": step, "done": done, "total": total, "best_loss": best}
        if callable(progress):
            progress(info)
            return
        from tqdm.auto import tqdm

        if step not in bars:
            bars[step] = tqdm(total=total, desc=f"{label} {step}", unit="trial", initial=done - n)
        bars[step].update(n)
        if math.isfinite(best):
            bars[step].set_postfix(best_loss=f"{best:.4g}")

    def close():
        for bar in bars.values():
            bar.close()

    return report, close


def check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} == {value!r}, must be an integer >= {minimum}")
    return int(value)


def check_weighting(weighting, m: int):
    if isinstance(weighting, str):
        if weighting not in WEIGHTINGS:
            raise ValueError(
                f"weighting == {weighting!r}, must be one of {', '.join(map(repr, WEIGHTINGS))} or a matrix"
            )
        return weighting
    W = np.asarray(weighting, dtype=np.float64)
    if W.shape != (m, m) or not np.all(np.isfinite(W)) or not np.allclose(W, W.T):
        raise ValueError(
            f"weighting has shape {W.shape}, must be a finite symmetric {m} × {m} matrix (one row per moment)"
        )
    if np.linalg.eigvalsh(W).min() <= 0:
        raise ValueError("weighting must be positive definite")
    return W


def json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, tuple):
        return list(x)
    return str(x)
