"""The machinery behind :mod:`orgsim.forecasting`'s forecasters (private).

One interface over KPI series: a forecaster is a scikit-learn-style estimator (``__init__``
stores keyword arguments, ``fit`` validates and returns ``self``, learned attributes end in
``_``) whose ``fit(y)`` takes one series or a panel of firm series, ``forecast(steps)`` gives
points and ``get_forecast(steps)`` a :class:`ForecastResults` with statsmodels'
``summary_frame(alpha)`` columns. A panel is fitted one series at a time, in parallel
(joblib), each series on its own: the numbers of a panel are those of a loop over its series,
whatever ``n_jobs``.

Each model implements three private hooks on one series (a float array ``y`` and its period
index): ``_fit_one`` (returns a fitted state), ``_point_one`` (point forecasts) and
``_predict_one`` (an object whose ``frame(alpha)`` gives mean, standard error and interval).
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

__all__ = ["ForecastFitWarning", "ForecastResults", "Forecaster", "Panel", "as_panel", "run_tasks"]

#: columns that tell the series of a long frame apart, when present (outermost first)
KEY_COLUMNS = ("strategy", "org")
FRAME_COLUMNS = ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper")


class ForecastFitWarning(UserWarning):
    """Some series of a panel failed to fit or did not converge (see ``fit_failures_``)."""


# -- argument checks -------------------------------------------------------------------------
def check_steps(steps, name: str = "steps") -> int:
    """``steps`` as a positive int, or a TypeError/ValueError naming it."""
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer):
        raise TypeError(f"{name} == {steps!r}, must be an integer >= 1")
    if steps < 1:
        raise ValueError(f"{name} == {steps!r}, must be an integer >= 1")
    return int(steps)


def check_alpha(alpha) -> float:
    """``alpha`` as a float in (0, 1), or a ValueError naming it."""
    ok = not isinstance(alpha, bool) and isinstance(alpha, int | float | np.integer | np.floating)
    if not ok or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha == {alpha!r}, must be a number in (0, 1) (0.05 gives 95% intervals)")
    return float(alpha)


def check_int(value, name: str, minimum: int, *, none_ok: bool = False, hint: str = "") -> int | None:
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} == {value!r}, must be an integer >= {minimum}{hint}")
    return int(value)


def resolve_n_jobs(n_jobs) -> int:
    """Worker count: ``None`` and ``-1`` mean every core, ``-2`` all but one (joblib's rule)."""
    import joblib

    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer)):
        raise ValueError(f"n_jobs == {n_jobs!r}, must be None or a non-zero integer (-1: every core)")
    if n_jobs == 0:
        raise ValueError("n_jobs == 0, must be None or a non-zero integer (-1: every core)")
    return int(joblib.effective_n_jobs(-1 if n_jobs is None else int(n_jobs)))


def _check_flag(value, name: str) -> bool | None:
    if value is None or isinstance(value, bool | np.bool_):
        return None if value is None else bool(value)
    raise ValueError(f"{name} == {value!r}, must be True, False or None")


# -- input: one series or a panel ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Panel:
    """Series ready to fit: ``keys[i]`` names series ``i`` by the levels ``names``."""

    names: tuple[str, ...]  # key levels; () for a single series
    keys: list[tuple]
    values: list[np.ndarray]
    index: list[pd.Index]
    kpi: str | None

    @property
    def is_panel(self) -> bool:
        return bool(self.names)

    def label(self, i: int) -> str:
        return key_label(self.names, self.keys[i])


def key_label(names: tuple[str, ...], key: tuple) -> str:
    """``org 3`` or ``strategy='bso', org=3``: how messages name a series."""
    if not names:
        return "the series"
    if len(names) == 1:
        return f"{names[0]} {key[0]!r}" if isinstance(key[0], str) else f"{names[0]} {key[0]}"
    return ", ".join(f"{n}={k!r}" for n, k in zip(names, key))


def _numeric_columns(df: pd.DataFrame, exclude) -> list[str]:
    """Numeric, non-boolean columns of ``df`` (the candidate value columns)."""
    return [
        c
        for c, dt in df.dtypes.items()
        if c not in exclude and pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt)
    ]


def _py(v):
    return v.item() if isinstance(v, np.generic) else v


def check_periods(index: pd.Index, where: str) -> pd.Index:
    """A period index that is consecutive: integers, or a DatetimeIndex/PeriodIndex with a frequency."""
    if isinstance(index, pd.MultiIndex):
        raise TypeError(f"{where} has a MultiIndex; a series needs one period per row (use a long DataFrame)")
    if isinstance(index, pd.PeriodIndex):
        ordinals = index.asi8
        steps = np.diff(ordinals)
        name = index.name or "period"
        if steps.size and (steps != 1).any():
            j = int(np.flatnonzero(steps != 1)[0])
            _period_error(where, index[j], index[j + 1], steps[j])
        return index.rename(name)
    if isinstance(index, pd.DatetimeIndex):
        freq = index.freq or (pd.infer_freq(index) if len(index) >= 3 else None)
        if freq is None:
            raise ValueError(
                f"{where} has a DatetimeIndex without a regular frequency, must have consecutive periods "
                "(set its freq, or use integer periods)"
            )
        expected = pd.date_range(index[0], periods=len(index), freq=freq)
        if not index.equals(expected):
            j = int(np.flatnonzero(index != expected)[0])
            raise ValueError(
                f"{where} has a gap or disorder at {index[j]} (expected {expected[j]}); periods must be "
                "consecutive"
            )
        return pd.DatetimeIndex(index, freq=freq, name=index.name or "period")
    if not (isinstance(index, pd.RangeIndex) or pd.api.types.is_integer_dtype(index.dtype)):
        raise TypeError(
            f"{where} is indexed by {index.dtype} values, must be indexed by integer periods (as orgsim's "
            "KPIs are) or by a DatetimeIndex/PeriodIndex with a frequency"
        )
    values = np.asarray(index, dtype=np.int64)
    steps = np.diff(values)
    if steps.size and (steps != 1).any():
        j = int(np.flatnonzero(steps != 1)[0])
        _period_error(where, values[j], values[j + 1], steps[j])
    return pd.Index(values, name=index.name or "period")


def _period_error(where, a, b, step) -> None:
    if step == 0:
        raise ValueError(f"{where} has duplicate rows for period {_py(a)}; each period must appear once")
    if step < 0:
        raise ValueError(f"{where} is not sorted by period: {_py(a)} is followed by {_py(b)}")
    raise ValueError(
        f"{where} has a gap in its periods: {_py(a)} is followed by {_py(b)}; periods must be consecutive "
        "(fill or interpolate the missing ones first)"
    )


def _check_finite(values: np.ndarray, index: pd.Index, where: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{where} has {values[j]} at period {_py(index[j])} ({int(bad.sum())} non-finite value(s) in all); "
            "forecasters need finite values (drop or fill them first)"
        )


def select_strategy(df: pd.DataFrame, strategy, what: str = "y") -> pd.DataFrame:
    """Rows of ``df`` whose ``strategy`` is ``strategy`` (a name or a list of names)."""
    if strategy is None:
        return df
    if "strategy" not in df.columns:
        raise ValueError(f"strategy == {strategy!r} was given, but {what} has no 'strategy' column")
    wanted = [strategy] if isinstance(strategy, str) else list(strategy)
    present = sorted({str(s) for s in pd.unique(df["strategy"])})
    unknown = [s for s in wanted if s not in present]
    if unknown or not wanted:
        raise ValueError(f"strategy == {strategy!r}, must be one of {present} (the strategies in {what})")
    return df[df["strategy"].astype(str).isin(wanted)]


def as_panel(y, *, kpi=None, by=None, strategy=None, what: str = "y") -> Panel:
    """Turn a Series, a long frame (``org``, ``period``, values) or a wide frame into a Panel.

    Checks every rule a forecaster relies on: numeric finite values, consecutive periods, no
    duplicate (key, period) rows; the errors name the argument, the series and the period.
    """
    if isinstance(y, pd.Series):
        if kpi is not None and kpi != y.name:
            raise ValueError(f"kpi == {kpi!r} names a column, but {what} is a Series (named {y.name!r})")
        if strategy is not None:
            raise ValueError(f"strategy == {strategy!r} was given, but {what} is a Series (one firm)")
        if not pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype):
            raise TypeError(f"{what} has dtype {y.dtype}, must be numeric")
        index = check_periods(y.index, what)
        values = y.to_numpy(dtype=np.float64, copy=True)
        _check_finite(values, index, what)
        return Panel((), [()], [values], [index], None if y.name is None else str(y.name))
    if not isinstance(y, pd.DataFrame):
        raise TypeError(
            f"{what} is a {type(y).__name__}, must be a pandas Series (one firm, indexed by period), a long "
            "DataFrame (columns org, period and a value column, such as orgsim.simulate(...).kpis) or a wide "
            "DataFrame (index period, one column per firm)"
        )
    if "period" in y.columns:
        return _long_panel(y, kpi=kpi, by=by, strategy=strategy, what=what)
    if "org" in y.columns:
        raise ValueError(f"{what} has an 'org' column but no 'period' column; a long DataFrame needs both")
    if strategy is not None:
        raise ValueError(
            f"strategy == {strategy!r} was given, but {what} is a wide DataFrame (no strategy column)"
        )
    if kpi is not None:
        raise ValueError(f"kpi == {kpi!r} was given, but {what} is a wide DataFrame (one column per series)")
    return _wide_panel(y, what)


def _wide_panel(y: pd.DataFrame, what: str) -> Panel:
    if y.shape[1] == 0:
        raise ValueError(f"{what} has no columns, must have one column per series")
    if y.columns.has_duplicates:
        dup = y.columns[y.columns.duplicated()][0]
        raise ValueError(f"{what} has duplicate column {dup!r}; each series must appear once")
    numeric = set(_numeric_columns(y, ()))
    bad = [c for c in y.columns if c not in numeric]
    if bad:
        raise TypeError(f"{what} column {bad[0]!r} has dtype {y.dtypes[bad[0]]}, must be numeric")
    index = check_periods(y.index, what)
    name = y.columns.name or "org"
    data = y.to_numpy(dtype=np.float64, copy=True)
    keys, values = [], []
    for j, col in enumerate(y.columns):
        v = np.ascontiguousarray(data[:, j])
        _check_finite(v, index, f"{what} ({key_label((name,), (_py(col),))})")
        keys.append((_py(col),))
        values.append(v)
    return Panel((str(name),), keys, values, [index] * len(keys), None)


def _long_panel(y: pd.DataFrame, *, kpi, by, strategy, what) -> Panel:
    df = select_strategy(y, strategy, what)
    if by is None:
        names = tuple(c for c in KEY_COLUMNS if c in df.columns)
        if not names:
            raise ValueError(
                f"{what} has a 'period' column but no 'org' column to tell its series apart; name the key "
                "columns with by=[...] (by=[] for a single series)"
            )
    else:
        names = (by,) if isinstance(by, str) else tuple(by)
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise ValueError(
                f"by == {by!r}: no column {missing[0]!r} in {what}; columns are {list(df.columns)}"
            )
    allowed = _numeric_columns(df, {*names, "period"})
    if kpi is None:
        if len(allowed) != 1:
            raise ValueError(
                f"kpi == None, must name the value column: one of {allowed}"
                if allowed
                else f"{what} has no numeric value column besides {[*names, 'period']}"
            )
        kpi = allowed[0]
    elif kpi not in allowed:
        raise ValueError(f"kpi == {kpi!r}, must be one of {allowed} (the numeric columns of {what})")
    if len(df) == 0:
        raise ValueError(f"{what} has no rows" + (f" for strategy == {strategy!r}" if strategy else ""))
    period = df["period"]
    if not pd.api.types.is_integer_dtype(period.dtype):
        raise TypeError(f"{what}['period'] has dtype {period.dtype}, must hold integer periods")
    periods = period.to_numpy(dtype=np.int64)
    values = df[kpi].to_numpy(dtype=np.float64)
    if names:
        codes = df.groupby(list(names), sort=True, observed=True).ngroup().to_numpy()
    else:
        codes = np.zeros(len(df), dtype=np.int64)
    order = np.lexsort((periods, codes))
    codes, periods, values = codes[order], periods[order], values[order]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    ends = np.r_[starts[1:], len(codes)]
    key_arrays = [df[c].to_numpy()[order][starts] for c in names]
    keys = [tuple(_py(a[j]) for a in key_arrays) for j in range(len(starts))]

    def where(row: int, suffix: str = "") -> str:
        series = int(np.searchsorted(starts, row, side="right") - 1)
        return f"{what}{suffix} ({key_label(names, keys[series])})" if names else f"{what}{suffix}"

    step = np.diff(periods)
    bad = (codes[1:] == codes[:-1]) & (step != 1)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        _period_error(where(j), periods[j], periods[j + 1], step[j])
    nonfinite = ~np.isfinite(values)
    if nonfinite.any():
        j = int(np.flatnonzero(nonfinite)[0])
        raise ValueError(
            f"{where(j, f'[{kpi!r}]')} has {values[j]} at period {periods[j]} ({int(nonfinite.sum())} "
            "non-finite value(s) in all); forecasters need finite values (drop or fill them first)"
        )
    vals = [values[s:e].copy() for s, e in zip(starts, ends)]
    idx = [pd.Index(periods[s:e], name="period") for s, e in zip(starts, ends)]
    return Panel(names, keys, vals, idx, str(kpi))


def future_index(index: pd.Index, steps: int) -> pd.Index:
    """The ``steps`` periods after ``index``."""
    if isinstance(index, pd.PeriodIndex):
        return pd.period_range(index[-1] + 1, periods=steps, freq=index.freq, name=index.name)
    if isinstance(index, pd.DatetimeIndex):
        return pd.date_range(index[-1], periods=steps + 1, freq=index.freq, name=index.name)[1:]
    last = int(index[-1])
    return pd.Index(np.arange(last + 1, last + steps + 1, dtype=np.int64), name=index.name)


def time_codes(index: pd.Index) -> np.ndarray:
    """Integer time of each period (the period itself, or the position for dates)."""
    if isinstance(index, pd.PeriodIndex | pd.DatetimeIndex):
        return np.arange(len(index), dtype=np.int64)
    return np.asarray(index, dtype=np.int64)


# -- running many series in parallel ---------------------------------------------------------
@dataclass(slots=True)
class Outcome:
    """What one task gave: a value, or the exception it raised, and the warnings it issued."""

    value: object = None
    error: BaseException | None = None
    warnings: list = field(default_factory=list)


def _convergence_category():
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    return ConvergenceWarning


def _guarded(fn, task) -> Outcome:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value, error = fn(task), None
        except Exception as exc:  # one series' failure is reported with its name, never silently dropped
            value, error = None, exc
    return Outcome(value, error, [(w.category, str(w.message)) for w in caught])


def one_thread():
    """BLAS and OpenMP limited to one thread: the models are small, and their threads only
    oversubscribe the cores (HistGradientBoosting and statsmodels' Kalman filter slow down
    several-fold on a busy machine); it also keeps the numbers identical whatever n_jobs.

    The ``ThreadpoolController`` is kept between calls: finding the loaded BLAS/OpenMP libraries
    takes ~30 ms, as long as fitting a small model. It is found again when modules were imported
    since (a new extension module may bring its own thread pool)."""
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController

    n_modules = len(sys.modules)
    if _CONTROLLER is None or _CONTROLLER[0] != n_modules:
        _CONTROLLER = (n_modules, ThreadpoolController())
    return _CONTROLLER[1].limit(limits=1)


_CONTROLLER = None


def _run_chunk(fn, chunk, on_done=None) -> list[Outcome]:
    out = []
    with one_thread():
        for task in chunk:
            out.append(_guarded(fn, task))
            if on_done is not None:
                on_done(1)
    return out


def run_tasks(fn, tasks: list, *, n_jobs=None, progress=None, desc: str = "series") -> list[Outcome]:
    """``fn(task)`` for every task, in order, on ``n_jobs`` joblib workers with a tqdm bar."""
    n_workers = resolve_n_jobs(n_jobs)
    progress = _check_flag(progress, "progress")
    if progress is None:
        progress = sys.stderr.isatty() and len(tasks) > 1
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(tasks), desc=desc, unit="fit")
    try:
        if n_workers == 1 or len(tasks) <= 1:
            return _run_chunk(fn, tasks, None if bar is None else bar.update)
        from joblib import Parallel, delayed

        size = max(1, math.ceil(len(tasks) / (n_workers * 16)))
        chunks = [tasks[i : i + size] for i in range(0, len(tasks), size)]
        out = []
        parallel = Parallel(n_jobs=n_workers, return_as="generator")
        for part in parallel(delayed(_run_chunk)(fn, c) for c in chunks):
            out.extend(part)
            if bar is not None:
                bar.update(len(part))
        return out
    finally:
        if bar is not None:
            bar.close()


def failure_rows(outcomes: list[Outcome]) -> list[tuple[int, str, str]]:
    """(task, kind, message) for each task that raised ('error') or did not converge."""
    conv = _convergence_category()
    rows = []
    for i, o in enumerate(outcomes):
        if o.error is not None:
            rows.append((i, "error", f"{type(o.error).__name__}: {o.error}"))
            continue
        msgs = [m for c, m in o.warnings if issubclass(c, conv)]
        if msgs:
            rows.append((i, "not converged", msgs[0]))
    return rows


def reemit_warnings(outcomes: list[Outcome], labels: list[str], model: str) -> None:
    """Warnings other than non-convergence, issued once per message with the series count."""
    conv = _convergence_category()
    seen: dict[tuple, list[int]] = {}
    for i, o in enumerate(outcomes):
        for cat, msg in o.warnings:
            if not issubclass(cat, conv):
                seen.setdefault((cat, msg), []).append(i)
    for (cat, msg), rows in seen.items():
        if len(outcomes) == 1:
            warnings.warn(f"{model}: {msg}", cat, stacklevel=4)
        else:
            warnings.warn(
                f"{model} warned for {len(rows)} of {len(outcomes)} series (first: {labels[rows[0]]}): {msg}",
                cat,
                stacklevel=4,
            )


def warn_failures(failures: list[tuple[int, str, str]], labels: list[str], model: str, total: int) -> None:
    for kind, consequence in (
        ("error", "their forecasts are NaN"),
        ("not converged", "their forecasts are kept (statsmodels' last iterate)"),
    ):
        rows = [r for r in failures if r[1] == kind]
        if not rows:
            continue
        named = ", ".join(labels[i] for i, _, _ in rows[:10]) + (
            f" and {len(rows) - 10} more" if len(rows) > 10 else ""
        )
        verb = "failed to fit" if kind == "error" else "did not converge"
        warnings.warn(
            f"{model}: {len(rows)} of {total} series {verb} ({named}); {consequence}; see fit_failures_ "
            f"(first: {rows[0][2]})",
            ForecastFitWarning,
            stacklevel=4,
        )


def entropy_of(seed) -> int:
    """SPEC 7: normalise ``seed`` once; per-series streams come from this and the series' index."""
    return int(np.random.default_rng(seed).integers(0, 2**63))


def child_rng(entropy: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=tuple(key)))


# -- results ---------------------------------------------------------------------------------
class ForecastResults:
    """Forecasts of one series or a panel, with intervals (like statsmodels' PredictionResults).

    Attributes
    ----------
    predicted_mean : pandas.Series
        Point forecasts, indexed by period (``T+1 .. T+steps``), with the panel's key levels
        (``org``, ...) in front for a panel.
    failures : pandas.DataFrame
        Series whose fit failed (``kind == "error"``: NaN forecasts) or did not converge
        (``kind == "not converged"``: forecasts kept); empty when every fit succeeded.
    """

    def __init__(self, *, model: str, kpi, names, keys, indexes, preds, failures, prepare=None):
        self.model = model
        self.kpi = kpi
        self._names = tuple(names)
        self._keys = keys
        self._indexes = indexes
        self._preds = preds
        self._prepare = prepare
        self._frames: dict[float, pd.DataFrame] = {}
        self.failures = failures
        self.steps = len(indexes[0]) if indexes else 0

    def _index(self) -> pd.Index:
        if not self._names:
            return self._indexes[0]
        levels = [[] for _ in self._names]
        for key, idx in zip(self._keys, self._indexes):
            for j, k in enumerate(key):
                levels[j].append(np.repeat(np.array([k], dtype=object), len(idx)))
        arrays = [pd.Index(np.concatenate(lv)).infer_objects() for lv in levels]
        periods = self._indexes[0].append(self._indexes[1:]) if len(self._indexes) > 1 else self._indexes[0]
        return pd.MultiIndex.from_arrays([*arrays, periods], names=[*self._names, periods.name or "period"])

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Mean, standard error and ``(1 - alpha)`` prediction interval per period.

        Columns ``mean, mean_se, mean_ci_lower, mean_ci_upper`` (statsmodels' names); for a panel
        the index has the key levels (``org``, ...) and ``period``.
        """
        alpha = check_alpha(alpha)
        if alpha not in self._frames:
            if self._prepare is not None:
                self._prepare(alpha)
            blocks = []
            with one_thread():
                for pred, idx in zip(self._preds, self._indexes):
                    if pred is None:
                        blocks.append(np.full((len(idx), 4), np.nan))
                    else:
                        blocks.append(np.column_stack(pred.frame(alpha)))
            data = np.concatenate(blocks) if blocks else np.empty((0, 4))
            self._frames[alpha] = pd.DataFrame(data, index=self._index(), columns=list(FRAME_COLUMNS))
        return self._frames[alpha].copy()

    @property
    def predicted_mean(self) -> pd.Series:
        if not hasattr(self, "_mean"):
            parts = [
                np.full(len(i), np.nan) if p is None else p.mean for p, i in zip(self._preds, self._indexes)
            ]
            self._mean = pd.Series(
                np.concatenate(parts), index=self._index(), name=self.kpi or "predicted_mean"
            )
        return self._mean.copy()

    @property
    def se_mean(self) -> pd.Series:
        return self.summary_frame().mean_se.rename(self.kpi or "mean_se")

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """The ``(1 - alpha)`` interval: columns ``lower``, ``upper``."""
        f = self.summary_frame(alpha)
        return f[["mean_ci_lower", "mean_ci_upper"]].set_axis(["lower", "upper"], axis=1)

    def summary(self, alpha: float = 0.05):
        """A statsmodels ``Summary`` (text with ``print``, HTML in JupyterLab)."""
        from statsmodels.iolib.summary2 import Summary

        frame = self.summary_frame(alpha)
        s = Summary()
        n_series = len(self._keys)
        info = {
            "Model": self.model,
            "KPI": self.kpi or "-",
            "Series": f"{n_series}",
            "Steps": f"{self.steps}",
            "Interval": f"{100 * (1 - alpha):g}%",
            "Failed fits": f"{int((self.failures.kind == 'error').sum()) if len(self.failures) else 0}",
            "Not converged": f"{int((self.failures.kind == 'not converged').sum()) if len(self.failures) else 0}",
        }
        s.add_dict(info, ncols=2)
        shown = frame if len(frame) <= 20 else frame.head(20)
        labels = list(shown.index.names)
        s.add_df(shown.reset_index().astype(dict.fromkeys(labels, str)), index=False, float_format="%.4f")
        if len(frame) > len(shown):
            s.add_text(f"(first 20 of {len(frame)} rows; summary_frame() has them all)")
        return s

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __repr__(self) -> str:
        return f"<ForecastResults {self.model} kpi={self.kpi!r} series={len(self._keys)} steps={self.steps}>"


@dataclass(slots=True)
class GaussianPrediction:
    """A normal predictive distribution per step: mean and standard deviation."""

    mean: np.ndarray
    se: np.ndarray

    def frame(self, alpha: float):
        z = stats.norm.ppf(1 - alpha / 2)
        return self.mean, self.se, self.mean - z * self.se, self.mean + z * self.se


# -- the interface ---------------------------------------------------------------------------
class Forecaster(BaseEstimator):
    """Base of orgsim's forecasters: the fit / forecast / get_forecast interface over panels."""

    #: shown in messages
    def _name(self) -> str:
        return type(self).__name__

    # hooks for each model
    def _check_params(self) -> None:  # pragma: no cover - every model overrides
        pass

    def _min_length(self) -> tuple[int, str]:
        return 2, "at least 2 observations"

    def _check_spec(self, y: np.ndarray, index: pd.Index) -> None:
        """Raise on a bad model specification before a panel is fitted (cheap)."""

    def _fit_one(self, y: np.ndarray, index: pd.Index, entropy: int, i: int):  # pragma: no cover
        raise NotImplementedError

    def _point_one(self, state, steps: int) -> np.ndarray:
        return self._predict_one(state, steps).mean

    def _predict_one(self, state, steps: int):  # pragma: no cover
        raise NotImplementedError

    def _prepare_alpha(self, states: list, alpha: float) -> None:
        """Work a panel needs before intervals at ``alpha`` (GradientBoosting fits quantile models)."""

    # the public interface
    def check_length(self, panel: Panel, what: str = "y") -> None:
        need, why = self._min_length()
        lengths = np.array([len(v) for v in panel.values])
        short = np.flatnonzero(lengths < need)
        if short.size:
            i = int(short[0])
            who = "" if not panel.is_panel else f" ({panel.label(i)}; {short.size} of {len(lengths)} series)"
            raise ValueError(
                f"{what} has {lengths[i]} periods{who}, too short for {self._describe()}: it needs {need} ({why})"
            )

    def _describe(self) -> str:
        """The model as scikit-learn prints it: the parameters that differ from the defaults."""
        return repr(self)

    def fit(self, y, *, kpi: str | None = None, by=None, strategy=None) -> Forecaster:
        """Fit the model to one series or to each series of a panel.

        Parameters
        ----------
        y : pandas.Series or pandas.DataFrame
            One firm's series (index: period), a long DataFrame with columns ``org``, ``period``
            and a value column (such as ``orgsim.simulate(...).kpis``; a ``strategy`` column, when
            present, is part of each series' key), or a wide DataFrame (index: period, one column
            per firm or group, e.g. :func:`orgsim.forecasting.pooled`).
        kpi : str, optional
            The value column of a long DataFrame; may be omitted when it has one numeric column
            besides the keys and ``period``.
        by : str or list of str, optional
            Key columns of a long DataFrame (default: ``strategy`` and ``org``, those present).
        strategy : str or list of str, optional
            Keep only the rows of this strategy (or strategies).

        Returns
        -------
        self
        """
        self._check_params()
        panel = as_panel(y, kpi=kpi, by=by, strategy=strategy)
        self.check_length(panel)
        self._check_spec(panel.values[0], panel.index[0])
        entropy = entropy_of(self.seed)
        template = clone(self)
        tasks = [(v, idx, entropy, i) for i, (v, idx) in enumerate(zip(panel.values, panel.index))]
        outcomes = run_tasks(
            partial(_fit_task, template),
            tasks,
            n_jobs=self.n_jobs,
            progress=self.progress,
            desc=f"fitting {self._name()}",
        )
        labels = [panel.label(i) for i in range(len(tasks))]
        failures = failure_rows(outcomes)
        errors = [r for r in failures if r[1] == "error"]
        if errors and (not panel.is_panel or len(errors) == len(outcomes)):
            first = outcomes[errors[0][0]].error
            if panel.is_panel:
                raise RuntimeError(
                    f"{self._name()} failed to fit every series ({len(outcomes)}); first, {labels[0]}: {errors[0][2]}"
                ) from first
            raise first
        reemit_warnings(outcomes, labels, self._name())
        warn_failures(failures, labels, self._name(), len(outcomes))
        self.panel_names_ = panel.names
        self.keys_ = panel.keys
        self.kpi_ = panel.kpi
        self.index_ = panel.index
        self.n_series_ = len(panel.keys)
        self.states_ = [o.value for o in outcomes]
        self.fit_failures_ = pd.DataFrame(
            [(*panel.keys[i], kind, msg) for i, kind, msg in failures],
            columns=[*panel.names, "kind", "message"],
        )
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "states_"):
            raise NotFittedError(f"This {self._name()} is not fitted yet; call fit(y) before forecasting")

    @property
    def results_(self):
        """The fitted model: one object for a series, a Series of them (by key) for a panel."""
        self._check_fitted()
        res = [getattr(s, "results", s) for s in self.states_]
        if not self.panel_names_:
            return res[0]
        return pd.Series(
            res, index=pd.MultiIndex.from_tuples(self.keys_, names=self.panel_names_), dtype=object
        )

    def _indexes(self, steps: int) -> list[pd.Index]:
        return [future_index(idx, steps) for idx in self.index_]

    def forecast(self, steps: int = 1) -> pd.Series:
        """Point forecasts for periods ``T+1 .. T+steps`` (NaN for a series whose fit failed)."""
        self._check_fitted()
        steps = check_steps(steps)
        self._check_steps(steps)
        indexes = self._indexes(steps)
        with one_thread():
            preds = [None if s is None else _Points(self._point_one(s, steps)) for s in self.states_]
        res = ForecastResults(
            model=self._describe(),
            kpi=self.kpi_,
            names=self.panel_names_,
            keys=self.keys_,
            indexes=indexes,
            preds=preds,
            failures=self.fit_failures_,
        )
        return res.predicted_mean

    def _check_steps(self, steps: int) -> None:
        """Models fitted for a maximum horizon refuse longer forecasts."""

    def get_forecast(self, steps: int = 1) -> ForecastResults:
        """Forecasts with intervals: ``get_forecast(steps).summary_frame(alpha)``."""
        self._check_fitted()
        steps = check_steps(steps)
        self._check_steps(steps)
        states = self.states_
        with one_thread():
            preds = [None if s is None else self._predict_one(s, steps) for s in states]
        template = clone(self)
        return ForecastResults(
            model=self._describe(),
            kpi=self.kpi_,
            names=self.panel_names_,
            keys=self.keys_,
            indexes=self._indexes(steps),
            preds=preds,
            failures=self.fit_failures_,
            prepare=partial(template._prepare_alpha, states),
        )


@dataclass(slots=True)
class _Points:
    mean: np.ndarray


def _fit_task(template: Forecaster, task):
    y, index, entropy, i = task
    return template._fit_one(y, index, entropy, i)
