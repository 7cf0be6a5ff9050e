"""Strategy forecasts: each arm's, each family's and each contrast's KPIs past the simulated horizon.

:meth:`orgsim.comparison.ComparisonResult.forecast` (defined here as :func:`forecast_comparison`)
turns a comparison into a few pooled series per environment and forecasts each with one
:mod:`orgsim.forecasting` model:

- per **strategy**, the mean over the firms of the KPI in each period, ȳ_s(t) = mean_i y_s,i(t);
- per **family**, the equal-weight mean of its strategies' series (as the family contrast pools
  them);
- per **contrast** (by default the family contrast, culture-aligned − pooled efficiency-only),
  the **difference series** D(t) = mean_i d_i(t), the per-period mean over firms of the per-firm
  paired difference d_i(t) = mean_{a ∈ first} y_a,i(t) − mean_{b ∈ second} y_b,i(t).

The difference gets its own model and its own prediction interval, rather than the difference
of two arms' forecasts: on common random numbers firm *i* meets the same demand and shocks in
every arm, so the shared noise cancels in d_i and D(t) is much smoother than either arm's
series; two separately forecast arms, whose intervals are combined as if independent, would
count that shared noise twice. A bootstrap over firms was the alternative; it measures how the
mean would vary with other firms (a confidence interval for the population's expected
difference), needs one fit per resample, and does not by itself include the future periods'
noise. The model's prediction interval answers the question a forecast past the horizon asks:
where will the mean difference of *these* firms be, had they been simulated longer. Whether
it does is measured, not assumed: :class:`ForecastCheck` scores forecasts fitted on the first
periods of longer runs against their simulated continuation (``docs/comparison.md``).

``cumulative_fcf`` is Σ_{u ≤ t} FCF(u) per firm (the comparison's cumulative free cash flow),
forecast as a series of its own. A series that is constant over the training periods (a
difference of two identical arms is 0 throughout) is not given to the model: its forecast is
that constant with a standard error of 0.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["KINDS", "ForecastCheck", "StrategyForecast", "default_model", "forecast_comparison"]

#: the kinds of pooled series, in the order tables list them
KINDS = ("strategy", "family", "difference")
CUMULATIVE = "cumulative_fcf"
_COLUMNS = ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper")


# ----------------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------------
def _allowed_kpis() -> list[str]:
    from ._paired import ARRAY_KPIS

    return [*ARRAY_KPIS, CUMULATIVE]


def _check_kpis(kpi) -> list[str]:
    allowed = _allowed_kpis()
    kpis = [kpi] if isinstance(kpi, str) else list(kpi) if isinstance(kpi, Sequence) else None
    if not kpis:
        raise ValueError(f"kpi == {kpi!r}, must be a KPI name or a non-empty list of them: {allowed}")
    for k in kpis:
        if k not in allowed:
            raise ValueError(f"kpi == {k!r}, must be one of {allowed}")
    if len(set(kpis)) != len(kpis):
        raise ValueError(f"kpi == {kpis!r}, must not repeat a KPI")
    return kpis


def _check_kinds(series) -> tuple[str, ...]:
    if series is None:
        return KINDS
    kinds = (series,) if isinstance(series, str) else tuple(series)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"series == {series!r}, must be one or more of {list(KINDS)}")
    return tuple(k for k in KINDS if k in kinds)


def _check_train(train_periods, periods: int) -> int:
    if train_periods is None:
        return periods
    if isinstance(train_periods, bool) or not isinstance(train_periods, numbers.Integral):
        raise TypeError(f"train_periods == {train_periods!r}, must be an integer in 3..{periods}")
    if not 3 <= train_periods <= periods:
        raise ValueError(
            f"train_periods == {train_periods!r}, must be in 3..{periods} (the run's length; fewer periods "
            "than the run leave a simulated continuation to score the forecast against)"
        )
    return int(train_periods)


def _season_period(periods_per_year) -> int | None:
    m = float(periods_per_year)
    return int(m) if m.is_integer() and m >= 2 else None


def default_model(train_periods: int, season_period: int | None):
    """The forecaster used when none is given: ETS with additive errors, an additive trend and,
    when the training window holds two seasons and at least 10 + 2 * (m // 2) periods (what
    statsmodels' heuristic initialisation needs), an additive season of ``season_period`` with ``initialization_method="heuristic"``
    (~100× faster than estimating 51 initial seasonal states): ETS(A,A,A), else Holt's ETS(A,A,N).

    The trend is not damped: a damped trend makes a cumulative series level off, and on the
    default firm the cumulative-FCF advantage kept growing (the damped model's 95% intervals
    covered the simulated week 260 in under 15% of development replications; see
    docs/comparison.md)."""
    from . import forecasting as fc

    if season_period is not None:
        seasonal = fc.ETS(
            trend="add", seasonal="add", seasonal_periods=season_period, initialization_method="heuristic"
        )
        if train_periods >= seasonal._min_length()[0]:
            return seasonal
    return fc.ETS(trend="add")


# ----------------------------------------------------------------------------------------------
# the pooled series
# ----------------------------------------------------------------------------------------------
def _firm_kpi(res, kpi: str) -> np.ndarray:
    """[environment, strategy, firm, period] values of a KPI (cumulative FCF summed here)."""
    if kpi == CUMULATIVE:
        return np.cumsum(res.arrays["free_cash_flow"], axis=-1)
    return np.asarray(res.arrays[kpi], dtype=np.float64)


def _families(res) -> list[tuple[str, tuple[int, ...]]]:
    """The families present, culture-aligned first, with their strategies' positions."""
    from .comparison import FAMILY_ORDER

    present = list(dict.fromkeys(res.families[s] for s in res.strategies))
    order = sorted(present, key=lambda f: -FAMILY_ORDER.index(f) if f in FAMILY_ORDER else 1)
    return [(f, tuple(i for i, s in enumerate(res.strategies) if res.families[s] == f)) for f in order]


def _contrasts(res, contrasts) -> list:
    if contrasts is None:
        family = [c for c in res.contrasts if c.kind == "family"]
        return family or list(res.contrasts)
    if isinstance(contrasts, str):
        return list(res.contrasts) if contrasts == "all" else [res._contrast(contrasts)]
    names = list(contrasts)
    if not names:
        raise ValueError("contrasts == [], must name at least one contrast, or be None or 'all'")
    return [res._contrast(c) for c in names]


def _pooled_series(res, kpis, kinds, contrasts, environments, periods: int):
    """Rows (environment, kpi, series, kind) and their values over periods 1..``periods``."""
    rows, values = [], []
    envs = [res._env(e) for e in environments]
    for kpi in kpis:
        x = _firm_kpi(res, kpi)[..., :periods]
        for e in envs:
            env = res.environments[e]
            arm = x[e].mean(axis=1)  # [strategy, period]
            if "strategy" in kinds:
                for s, name in enumerate(res.strategies):
                    rows.append((env, kpi, name, "strategy"))
                    values.append(arm[s])
            if "family" in kinds:
                for name, idx in _families(res):
                    rows.append((env, kpi, name, "family"))
                    values.append(arm[list(idx)].mean(axis=0))
            if "difference" in kinds:
                for c in contrasts:
                    a = x[e, list(res._arm(c.first))].mean(axis=0)
                    b = x[e, list(res._arm(c.second))].mean(axis=0)
                    rows.append((env, kpi, c.name, "difference"))
                    values.append((a - b).mean(axis=0))  # the mean of the per-firm differences
    meta = pd.DataFrame(rows, columns=["environment", "kpi", "series", "kind"])
    return meta, np.vstack(values)


# ----------------------------------------------------------------------------------------------
# the entry point
# ----------------------------------------------------------------------------------------------
def forecast_comparison(
    res,
    kpi: str | Sequence[str] = "free_cash_flow",
    *,
    steps: int | None = None,
    model=None,
    alpha: float = 0.05,
    train_periods: int | None = None,
    series: str | Sequence[str] | None = None,
    contrasts: str | Sequence[str] | None = None,
    environments: Sequence[str] | None = None,
    seed=0,
    n_jobs: int | None = 1,
    progress: bool | None = None,
) -> StrategyForecast:
    """Forecast a comparison's pooled KPI series past ``train_periods`` (see the module docstring).

    Parameters
    ----------
    res : ComparisonResult
    kpi : str or list of str
        Any KPI array of the comparison (``revenue``, ``free_cash_flow``, ``cash``, ...) or
        ``cumulative_fcf``.
    steps : int, optional
        Periods forecast after the training window (default: one year, ``periods_per_year``).
    model : orgsim.forecasting forecaster, optional
        An unfitted template (cloned). Default :func:`default_model`. A ``GradientBoosting``
        without a ``horizon`` is fitted for ``steps``.
    alpha : float
        The default level of the intervals, ``1 − alpha`` (``summary_frame(alpha)`` takes others).
    train_periods : int, optional
        Fit on periods 1..``train_periods`` (default: every simulated period). With fewer, the
        simulated periods after it are the known continuation, which :meth:`StrategyForecast.evaluate`,
        :meth:`~StrategyForecast.winner` and :meth:`~StrategyForecast.plot` compare with.
    series : str or list of str, optional
        Kinds of series: ``strategy``, ``family``, ``difference`` (default: all three).
    contrasts : str or list of str, optional
        The contrasts whose difference series are forecast: default the family contrast (every
        pair when one family is absent); ``"all"``; or names such as ``"bso − bpo_bpm"``.
    environments : list of str, optional
        Default: every environment of the comparison.
    seed : int, SeedSequence or Generator
        Used as the model's ``seed`` when it has one set to None (ETS simulated intervals,
        GradientBoosting).
    n_jobs, progress
        Set on the model: workers over the series (default 1: a few series fit faster in one
        process) and its progress bar.

    Returns
    -------
    StrategyForecast
    """
    from sklearn.base import clone

    from . import forecasting as fc
    from ._forecast_base import check_alpha, check_steps

    kpis = _check_kpis(kpi)
    kinds = _check_kinds(series)
    alpha = check_alpha(alpha)
    train = _check_train(train_periods, res.periods)
    m = _season_period(res.periods_per_year)
    steps = check_steps(round(res.periods_per_year) if steps is None else steps)
    envs = (
        list(res.environments)
        if environments is None
        else list([environments] if isinstance(environments, str) else environments)
    )
    if not envs:
        raise ValueError(f"environments == [], must name some of {list(res.environments)}")
    chosen = _contrasts(res, contrasts) if "difference" in kinds else []
    if model is None:
        model = default_model(train, m)
    if not isinstance(model, fc.Forecaster):
        raise TypeError(
            f"model is a {type(model).__name__}, must be an orgsim.forecasting forecaster such as "
            "ETS(trend='add') (or None for the default)"
        )
    template = clone(model)
    template._check_params()
    described = template._describe()  # the model as given, for messages
    params = template.get_params()
    changes = {"n_jobs": n_jobs, "progress": progress}
    if "seed" in params and params["seed"] is None:
        changes["seed"] = seed
    if isinstance(template, fc.GradientBoosting) and template.horizon is None:
        changes["horizon"] = max(steps, template._horizon())
    template.set_params(**{k: v for k, v in changes.items() if k in params})
    template._check_steps(steps)
    need, why = template._min_length()
    if train < need:
        raise ValueError(f"train_periods == {train}, too short for {described}: it needs {need} ({why})")
    meta, values = _pooled_series(res, kpis, kinds, chosen, envs, res.periods)
    return StrategyForecast(
        meta,
        values,
        template=template,
        train_periods=train,
        steps=steps,
        alpha=alpha,
        n_firms=res.n_firms,
        time_unit=_unit(res),
        season_period=m,
    )


def _unit(res) -> str:
    from .comparison import _time_unit

    return _time_unit(res.configs)


# ----------------------------------------------------------------------------------------------
# the results object
# ----------------------------------------------------------------------------------------------
class StrategyForecast:
    """Forecasts of a comparison's pooled series with prediction intervals.

    Built by :meth:`ComparisonResult.forecast <orgsim.comparison.ComparisonResult.forecast>`;
    fits when constructed.

    Attributes
    ----------
    series : pandas.DataFrame
        One row per forecast series: ``environment, kpi, series, kind`` (``kind``: strategy,
        family or difference) and ``constant`` (forecast as its constant value, no model).
    model : str
        The forecaster's specification.
    train_periods, steps, alpha
        Fitted on periods 1..``train_periods``; forecasts periods ``train_periods + 1`` ..
        ``train_periods + steps``; the intervals' default level is 1 − ``alpha``.
    known_periods : int
        Forecast periods whose simulated value is known (0 when fitted on the whole run).
    season_period : int or None
        Periods a year of the comparison (52 for weeks), None when not a whole number >= 2.
    failures : pandas.DataFrame
        Series whose fit failed (NaN forecasts) or did not converge (kept), with the message.
    fitted_ : Forecaster or None
        The fitted forecaster (its ``results_`` are statsmodels' results), None when every
        series is constant.
    """

    def __init__(
        self,
        meta: pd.DataFrame,
        values: np.ndarray,
        *,
        template,
        train_periods: int,
        steps: int,
        alpha: float,
        n_firms: int,
        time_unit: str = "periods",
        season_period: int | None = None,
    ):
        train = train_periods
        self.season_period = season_period
        self.train_periods, self.steps, self.alpha = train, steps, alpha
        self.n_firms = n_firms
        self.time_unit = time_unit
        self.kpis = list(dict.fromkeys(meta.kpi))
        self.environments = list(dict.fromkeys(meta.environment))
        self._history = values[:, :train]
        self.known_periods = min(steps, values.shape[1] - train)
        self._actual = values[:, train : train + self.known_periods]
        self.model = template._describe()
        constant = np.ptp(self._history, axis=1) == 0
        self.series = meta.assign(constant=constant)
        self._fit_ids = np.flatnonzero(~constant)
        self.fitted_ = None
        self._prediction = None
        failures = []
        if self._fit_ids.size:
            wide = pd.DataFrame(
                self._history[self._fit_ids].T,
                index=pd.RangeIndex(1, train + 1, name="period"),
                columns=pd.Index(self._fit_ids, name="series_id"),
            )
            self.fitted_ = template.fit(wide)
            self._prediction = self.fitted_.get_forecast(steps)
            for row in self.fitted_.fit_failures_.itertuples(index=False):
                info = meta.iloc[int(row.series_id)]
                failures.append((info.environment, info.kpi, info.series, info.kind, row.kind, row.message))
        self.failures = pd.DataFrame(
            failures, columns=["environment", "kpi", "series", "kind", "failure", "message"]
        )
        self._frames: dict[float, pd.DataFrame] = {}
        self._evaluated: dict[float, pd.DataFrame] = {}

    # -- tables ------------------------------------------------------------------------------
    def _forecast_array(self, alpha: float) -> np.ndarray:
        """[series, step, 4]: mean, mean_se, mean_ci_lower, mean_ci_upper."""
        k = len(self.series)
        out = np.empty((k, self.steps, 4))
        last = self._history[:, -1]
        out[:] = np.stack([last, np.zeros(k), last, last], axis=1)[:, None, :]  # constant series
        if self._prediction is not None:
            frame = self._prediction.summary_frame(alpha)
            out[self._fit_ids] = frame.to_numpy().reshape(len(self._fit_ids), self.steps, 4)
        return out

    def _long(self, data: np.ndarray, periods: np.ndarray, columns) -> pd.DataFrame:
        k, t = data.shape[:2]
        # built from NumPy columns: selecting rows of the string columns in pandas costs ~10x more
        cols = {
            c: np.repeat(self.series[c].to_numpy(dtype=object), t)
            for c in ("environment", "kpi", "series", "kind")
        }
        cols["period"] = np.tile(periods, k)
        cols["h"] = cols["period"] - self.train_periods
        for j, col in enumerate(columns):
            cols[col] = data[:, :, j].reshape(-1)
        return pd.DataFrame(cols)

    def summary_frame(self, alpha: float | None = None) -> pd.DataFrame:
        """The forecasts: one row per environment × KPI × series × forecast period.

        Columns ``environment, kpi, series, kind, period, h`` (steps ahead), then statsmodels'
        ``mean, mean_se, mean_ci_lower, mean_ci_upper`` (the model's ``1 − alpha`` prediction
        interval; ``alpha`` defaults to the forecast's).
        """
        from ._forecast_base import check_alpha

        alpha = self.alpha if alpha is None else check_alpha(alpha)
        if alpha not in self._frames:
            periods = np.arange(self.train_periods + 1, self.train_periods + self.steps + 1)
            self._frames[alpha] = self._long(self._forecast_array(alpha), periods, _COLUMNS)
        return self._frames[alpha].copy()

    def observed(self) -> pd.DataFrame:
        """The training periods of every series: ``environment, kpi, series, kind, period, h, value``
        (``h`` <= 0)."""
        periods = np.arange(1, self.train_periods + 1)
        return self._long(self._history[:, :, None], periods, ["value"])

    def actual(self) -> pd.DataFrame:
        """The simulated continuation, where known: the same columns as :meth:`observed`."""
        periods = np.arange(self.train_periods + 1, self.train_periods + self.known_periods + 1)
        return self._long(self._actual[:, :, None], periods, ["value"])

    def _need_truth(self) -> None:
        if not self.known_periods:
            raise ValueError(
                f"train_periods == {self.train_periods} leaves no simulated continuation to compare with: "
                "forecast from fewer periods than the run has (e.g. train_periods=104 of a 260-week run)"
            )

    def evaluate(self, alpha: float | None = None) -> pd.DataFrame:
        """The forecasts of the known periods beside the simulated values.

        :meth:`summary_frame` rows with ``h <= known_periods`` and columns ``actual``, ``error``
        (actual − mean) and ``covered`` (lower <= actual <= upper).
        """
        from ._forecast_base import check_alpha

        self._need_truth()
        alpha = self.alpha if alpha is None else check_alpha(alpha)
        if alpha not in self._evaluated:
            known = self.known_periods
            fc = self._forecast_array(alpha)[:, :known]
            actual = self._actual[:, :, None]
            periods = np.arange(self.train_periods + 1, self.train_periods + known + 1)
            frame = self._long(np.concatenate([fc, actual], axis=2), periods, [*_COLUMNS, "actual"])
            frame["error"] = (actual - fc[:, :, :1]).reshape(-1)
            frame["covered"] = ((fc[:, :, 2:3] <= actual) & (actual <= fc[:, :, 3:4])).reshape(-1)
            self._evaluated[alpha] = frame
        return self._evaluated[alpha].copy()

    def _pick(self, kind: str, kpi, name) -> tuple[str, str]:
        rows = self.series[self.series.kind == kind]
        if rows.empty:
            raise ValueError(f"this forecast has no {kind} series (series={kind!r} was not asked for)")
        kpis = list(dict.fromkeys(rows.kpi))
        if kpi is None:
            kpi = CUMULATIVE if CUMULATIVE in kpis else kpis[0]
        elif kpi not in kpis:
            raise ValueError(f"kpi == {kpi!r}, must be one of the forecast's KPIs {kpis}")
        names = list(dict.fromkeys(rows.series[rows.kpi == kpi]))
        if name is None:
            name = names[0]
        elif name not in names:
            raise ValueError(f"contrast == {name!r}, must be one of the forecast's {kind} series {names}")
        return kpi, name

    def winner(
        self, contrast: str | None = None, kpi: str | None = None, period: int | None = None, alpha=None
    ) -> pd.DataFrame:
        """Which arm of a contrast the forecast puts ahead, per environment.

        The sign of the forecast difference at ``period`` (default the last forecast period):
        positive, the contrast's first arm (culture-aligned in the family contrast) is ahead.

        Parameters
        ----------
        contrast : str, optional
            A difference series of the forecast (default the first: the family contrast).
        kpi : str, optional
            Default ``cumulative_fcf`` when forecast, else the first KPI.
        period : int, optional
            A forecast period (default ``train_periods + steps``).

        Returns
        -------
        pandas.DataFrame
            Per environment: ``environment, kpi, contrast, period, mean, mean_ci_lower,
            mean_ci_upper, sign`` (of the mean: 1, 0 or −1), ``excludes_zero`` (the interval
            lies on one side of 0), ``last_observed_period``, ``last_observed`` (the simulated
            value at the end of the training window), ``same_sign_as_last_observed``, and
            ``actual``, ``actual_sign``, ``agrees`` (the forecast's sign is the simulated one)
            where the period's simulated value is known (else NaN / <NA>).
        """
        kpi, name = self._pick("difference", kpi, contrast)
        last = self.train_periods + self.steps
        period = last if period is None else period
        if not isinstance(period, numbers.Integral) or not self.train_periods < period <= last:
            raise ValueError(
                f"period == {period!r}, must be a forecast period in {self.train_periods + 1}..{last}"
            )
        frame = self.summary_frame(alpha)
        rows = frame[(frame.kind == "difference") & (frame.kpi == kpi) & (frame.series == name)]
        rows = rows[rows.period == period].reset_index(drop=True)
        ids = [
            int(np.flatnonzero(m)[0])
            for m in (
                (self.series.kind == "difference")
                & (self.series.kpi == kpi)
                & (self.series.series == name)
                & (self.series.environment == env)
                for env in rows.environment
            )
        ]
        out = rows[["environment", "kpi", "series", "period", "mean", "mean_ci_lower", "mean_ci_upper"]]
        out = out.rename(columns={"series": "contrast"})
        out["sign"] = np.sign(out["mean"]).astype(int)
        out["excludes_zero"] = (out.mean_ci_lower > 0) | (out.mean_ci_upper < 0)
        out["last_observed_period"] = self.train_periods
        out["last_observed"] = self._history[ids, -1]
        out["same_sign_as_last_observed"] = out["sign"] == np.sign(out["last_observed"]).astype(int)
        h = period - self.train_periods
        if h <= self.known_periods:
            actual = self._actual[ids, h - 1]
            out["actual"] = actual
            out["actual_sign"] = pd.array(np.sign(actual).astype(int), dtype="Int64")
            out["agrees"] = pd.array(out["sign"].to_numpy() == np.sign(actual), dtype="boolean")
        else:
            out["actual"] = np.nan
            out["actual_sign"] = pd.array([pd.NA] * len(out), dtype="Int64")
            out["agrees"] = pd.array([pd.NA] * len(out), dtype="boolean")
        return out

    # -- reports -----------------------------------------------------------------------------
    def summary(self, alpha: float | None = None):
        """A statsmodels ``Summary`` (text with ``str()``, HTML in JupyterLab): the setup, and the
        forecast difference series at the end of each forecast year and at the last step."""
        from statsmodels.iolib.summary2 import Summary

        alpha = self.alpha if alpha is None else alpha
        frame = self.summary_frame(alpha)
        s = Summary()
        s.add_title("Strategy forecasts past the simulated horizon")
        info = {
            "Model:": self.model,
            "KPIs:": ", ".join(self.kpis),
            "Environments:": ", ".join(self.environments),
            "Fitted on:": f"{self.time_unit} 1-{self.train_periods} (mean over {self.n_firms} firms per arm)",
            "Forecast:": f"{self.time_unit} {self.train_periods + 1}-{self.train_periods + self.steps}",
            "Interval:": f"{100 * (1 - alpha):g}% prediction interval of the model",
            "Simulated continuation:": f"{self.known_periods} {self.time_unit}"
            if self.known_periods
            else "none",
            "Series:": f"{len(self.series)} ({int(self.series.constant.sum())} constant)",
            "Failed / not converged:": f"{int((self.failures.failure == 'error').sum())} / "
            f"{int((self.failures.failure == 'not converged').sum())}",
        }
        s.add_dict(info, ncols=1)
        diff = frame[frame.kind == "difference"]
        if diff.empty:
            diff = frame
        year = self.season_period or self.steps  # the end of each forecast year, and the last step
        shown_h = sorted({*range(year, self.steps + 1, year), self.steps})
        diff = diff[diff.h.isin(shown_h)]
        level = f"{100 * (1 - alpha):g}% interval"
        table = pd.DataFrame(
            {
                "environment": diff.environment,
                "kpi": diff.kpi,
                "series": diff.series,
                "period": diff.period.astype(str),
                "mean": [f"{x:,.1f}" for x in diff["mean"]],
                level: [f"[{lo:,.1f}, {hi:,.1f}]" for lo, hi in zip(diff.mean_ci_lower, diff.mean_ci_upper)],
            }
        )
        if self.known_periods:
            ev = self.evaluate(alpha).set_index(["environment", "kpi", "series", "kind", "period"])
            keys = list(zip(diff.environment, diff.kpi, diff.series, diff.kind, diff.period))
            table["simulated"] = [f"{ev.actual.get(k, np.nan):,.1f}" if k in ev.index else "-" for k in keys]
        s.add_df(table, index=False)
        s.add_text(
            "Series: the per-period mean over firms of each strategy's KPI, each family's equal-weight mean "
            "of its strategies, and each contrast's mean per-firm paired difference (its own model and "
            "interval). Coverage of these intervals against simulated continuations: docs/comparison.md."
        )
        return s

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __repr__(self) -> str:
        return (
            f"<StrategyForecast kpis={self.kpis} environments={self.environments} series={len(self.series)} "
            f"train_periods={self.train_periods} steps={self.steps} known={self.known_periods}>"
        )

    def plot(
        self,
        kpi: str | None = None,
        *,
        arms: str = "family",
        contrast: str | None = None,
        environments: Sequence[str] | None = None,
        alpha: float | None = None,
        history: int | None = None,
    ):
        """Fan charts, one row per environment: the arms' series (left) and a contrast's difference
        (right), each observed, forecast with its ``1 − alpha`` prediction interval, and the
        simulated continuation overlaid where known. Returns a matplotlib ``Figure``.

        Parameters
        ----------
        kpi : str, optional
            Default ``cumulative_fcf`` when forecast, else the first KPI.
        arms : {"family", "strategy"}
            Which series the left panels draw (a panel is left out when they were not forecast).
        contrast : str, optional
            The difference series of the right panels (default the first).
        environments : list of str, optional
        alpha : float, optional
        history : int, optional
            Observed periods drawn before the forecast (default all).
        """
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        from .plots import KPI_UNITS

        if arms not in ("family", "strategy"):
            raise ValueError(f"arms == {arms!r}, must be 'family' or 'strategy'")
        alpha = self.alpha if alpha is None else alpha
        kpis = self.kpis
        kpi = (CUMULATIVE if CUMULATIVE in kpis else kpis[0]) if kpi is None else kpi
        if kpi not in kpis:
            raise ValueError(f"kpi == {kpi!r}, must be one of the forecast's KPIs {kpis}")
        envs = self.environments if environments is None else list(environments)
        for env in envs:
            if env not in self.environments:
                raise ValueError(f"environment == {env!r}, must be one of {self.environments}")
        here = self.series[self.series.kpi == kpi]
        panels = [k for k in (arms, "difference") if (here.kind == k).any()]
        if not panels:
            raise ValueError(f"this forecast has neither {arms} nor difference series for kpi {kpi!r}")
        if "difference" in panels:
            _, contrast = self._pick("difference", kpi, contrast)
        frame = self.summary_frame(alpha)
        obs, act = self.observed(), self.actual()
        if history is not None:
            obs = obs[obs.period > self.train_periods - int(history)]
        unit = KPI_UNITS.get(kpi, "MU" if kpi == CUMULATIVE else "").replace("/t", f"/{self.time_unit[:-1]}")
        label = kpi.replace("_", " ").replace("fcf", "free cash flow")
        level = f"{100 * (1 - alpha):g}%"
        fig = Figure(figsize=(6.5 * len(panels), 3.6 * len(envs)), layout="constrained")
        axes = fig.subplots(len(envs), len(panels), squeeze=False)
        for r, env in enumerate(envs):
            for c, kind in enumerate(panels):
                ax = axes[r, c]
                names = (
                    [contrast]
                    if kind == "difference"
                    else list(dict.fromkeys(here.series[here.kind == kind]))
                )
                for name in names:
                    sel = {"environment": env, "kpi": kpi, "series": name, "kind": kind}
                    o, f, a = (_where(t, sel) for t in (obs, frame, act))
                    (line,) = ax.plot(o.period, o.value, linewidth=1.2, label=name)
                    color = line.get_color()
                    ax.plot(f.period, f["mean"], color=color, linestyle="--", linewidth=1.2)
                    ax.fill_between(
                        f.period, f.mean_ci_lower, f.mean_ci_upper, color=color, alpha=0.2, linewidth=0
                    )
                    if len(a):
                        ax.plot(a.period, a.value, color=color, linestyle=":", linewidth=1.4)
                handles, labels = ax.get_legend_handles_labels()
                keys = [
                    (Line2D([], [], color="grey", linewidth=1.2), "simulated"),
                    (Line2D([], [], color="grey", linestyle="--", linewidth=1.2), "forecast (mean)"),
                    (Patch(color="grey", alpha=0.2, linewidth=0), f"{level} prediction interval"),
                ]
                if len(act):
                    keys.append(
                        (Line2D([], [], color="grey", linestyle=":", linewidth=1.4), "simulated continuation")
                    )
                ax.legend(
                    [*handles, *(k for k, _ in keys)],
                    [*labels, *(v for _, v in keys)],
                    fontsize=7,
                    loc="best",
                )
                ax.axvline(self.train_periods + 0.5, color="grey", linewidth=0.8)
                if kind == "difference":
                    ax.axhline(0.0, color="black", linewidth=0.8)
                    title = f"{env}: {contrast}, mean paired difference"
                    ax.set_ylabel(f"Δ {label} ({unit})" if unit else f"Δ {label}")
                else:
                    title = f"{env}: {label} by {kind} (mean over {self.n_firms} firms)"
                    ax.set_ylabel(f"{label} ({unit})" if unit else label)
                ax.set_title(f"{title}\nfitted on {self.time_unit} 1-{self.train_periods}", fontsize=9)
                ax.set_xlabel(f"period ({self.time_unit})")
                ax.grid(alpha=0.3)
        return fig


def _where(frame: pd.DataFrame, sel: dict) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    for k, v in sel.items():
        mask &= (frame[k] == v).to_numpy()
    return frame[mask]


# ----------------------------------------------------------------------------------------------
# checked against truth over replications
# ----------------------------------------------------------------------------------------------
class ForecastCheck:
    """Forecasts of independent replications scored against their simulated continuations.

    Each replication is a :class:`StrategyForecast` of a comparison simulated past its training
    window (``train_periods`` < the run's periods), with a different seed, so replications are
    independent; the periods of one replication are not, which is why every standard error
    here is taken across replications.

    Parameters
    ----------
    forecasts : sequence of StrategyForecast
        The same KPIs, series, training window and steps in each; at least 2.
    """

    def __init__(self, forecasts: Sequence[StrategyForecast]):
        forecasts = list(forecasts)
        if len(forecasts) < 2:
            raise ValueError(f"forecasts has {len(forecasts)} replication(s), must have at least 2")
        first = forecasts[0]
        keys = ["environment", "kpi", "series", "kind"]
        for i, f in enumerate(forecasts):
            if not isinstance(f, StrategyForecast):
                raise TypeError(f"forecasts[{i}] is a {type(f).__name__}, must be a StrategyForecast")
            if not f.known_periods:
                f._need_truth()
            same = (
                f.train_periods == first.train_periods
                and f.known_periods == first.known_periods
                and f.series[keys].equals(first.series[keys])
            )
            if not same:
                raise ValueError(
                    f"forecasts[{i}] has train_periods {f.train_periods}, {f.known_periods} known periods and "
                    f"{len(f.series)} series, must match forecasts[0] ({first.train_periods}, "
                    f"{first.known_periods}, {len(first.series)}): one design for every replication"
                )
        self.forecasts = forecasts
        self.train_periods = first.train_periods
        self.known_periods = first.known_periods
        self.n_replications = len(forecasts)
        self._scored: dict[float, pd.DataFrame] = {}

    def scored(self, alpha: float | None = None) -> pd.DataFrame:
        """Every replication's :meth:`StrategyForecast.evaluate` rows, with a ``replication`` column."""
        key = self.forecasts[0].alpha if alpha is None else alpha
        if key not in self._scored:
            parts = [f.evaluate(alpha).assign(replication=r) for r, f in enumerate(self.forecasts)]
            self._scored[key] = pd.concat(parts, ignore_index=True)
        return self._scored[key].copy()

    def coverage(self, alpha: float | None = None, bins: Sequence[int] | None = None) -> pd.DataFrame:
        """Share of replications whose interval covers the simulated value, per series and horizon.

        Parameters
        ----------
        alpha : float, optional
            Default: the forecasts' own.
        bins : sequence of int, optional
            Upper edges of horizon bins, e.g. ``[13, 52, 104, 156]`` (h 1–13, 14–52, ...); default
            one row per step h.

        Returns
        -------
        pandas.DataFrame
            ``environment, kpi, series, kind, h`` (or ``h_from, h_to``), ``coverage``, ``mc_se``
            (the standard deviation across replications of each replication's coverage in that
            row, over √R: the Monte Carlo standard error; for one step it is the binomial
            √(p(1−p)/R) up to R/(R−1)), ``n`` (replications) and ``nominal``.
        """
        s = self.scored(alpha)
        nominal = 1 - (self.forecasts[0].alpha if alpha is None else alpha)
        keys = ["environment", "kpi", "series", "kind"]
        if bins is None:
            s["bin"] = s["h"]
        else:
            edges = sorted({int(b) for b in bins})
            if not edges or edges[0] < 1:
                raise ValueError(f"bins == {bins!r}, must be increasing horizons >= 1")
            s = s[s.h <= edges[-1]]
            s["bin"] = np.searchsorted(edges, s["h"].to_numpy())
        per_rep = s.groupby([*keys, "bin", "replication"], sort=False)["covered"].mean().reset_index()
        g = per_rep.groupby([*keys, "bin"], sort=False)["covered"]
        out = g.agg(coverage="mean", sd=lambda x: x.std(ddof=1), n="count").reset_index()
        out["mc_se"] = out.pop("sd") / np.sqrt(out["n"])
        out["nominal"] = nominal
        if bins is None:
            out = out.rename(columns={"bin": "h"})
        else:
            lows = [1, *(e + 1 for e in edges[:-1])]
            out.insert(4, "h_from", [lows[b] for b in out["bin"]])
            out.insert(5, "h_to", [edges[b] for b in out.pop("bin")])
        return out[[c for c in out.columns if c not in ("coverage", "mc_se", "n", "nominal")]
                   + ["coverage", "mc_se", "n", "nominal"]]  # fmt: skip

    def winners(self, contrast: str | None = None, kpi: str | None = None, period: int | None = None):
        """Every replication's :meth:`StrategyForecast.winner` rows at a known ``period`` (default the
        last known one), with a ``replication`` column."""
        period = self.train_periods + self.known_periods if period is None else period
        if not isinstance(period, numbers.Integral) or not (
            self.train_periods < period <= self.train_periods + self.known_periods
        ):
            raise ValueError(
                f"period == {period!r}, must be a period with a simulated value in "
                f"{self.train_periods + 1}..{self.train_periods + self.known_periods}"
            )
        parts = [f.winner(contrast, kpi, period).assign(replication=r) for r, f in enumerate(self.forecasts)]
        return pd.concat(parts, ignore_index=True)

    def winner_agreement(
        self,
        contrast: str | None = None,
        kpi: str | None = None,
        period: int | None = None,
        alpha: float = 0.05,
    ) -> pd.DataFrame:
        """Per environment: how often the forecast's sign is the simulated one, with a Wilson interval.

        Returns ``environment, kpi, contrast, period, agree, n, share, ci_lower, ci_upper, interval``
        and ``simulated_positive`` (replications whose simulated difference is > 0), from
        :meth:`winners`. The interval is Wilson's score interval for a binomial proportion
        (``statsmodels.stats.proportion.proportion_confint(method="wilson")``) over independent
        replications.
        """
        from statsmodels.stats.proportion import proportion_confint

        from ._forecast_base import check_alpha

        alpha = check_alpha(alpha)
        w = self.winners(contrast, kpi, period)
        rows = []
        for env, part in w.groupby("environment", sort=False):
            agree, n = int(part.agrees.astype(bool).sum()), len(part)
            lo, hi = proportion_confint(agree, n, alpha=alpha, method="wilson")
            rows.append(
                {
                    "environment": env,
                    "kpi": part.kpi.iloc[0],
                    "contrast": part.contrast.iloc[0],
                    "period": int(part.period.iloc[0]),
                    "agree": agree,
                    "n": n,
                    "share": agree / n,
                    "ci_lower": float(lo),
                    "ci_upper": float(hi),
                    "interval": "wilson",
                    "simulated_positive": int((part.actual > 0).sum()),
                }
            )
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (
            f"<ForecastCheck replications={self.n_replications} train_periods={self.train_periods} "
            f"known_periods={self.known_periods}>"
        )
