"""Calibration: fit a model's parameters to observed series by the simulated method of moments.

:func:`calibrate` searches the parameters whose simulated moments (means, standard deviations,
autocorrelations, cross-correlations, bullwhip ratios, fill rate of KPI series or of team
series per stage) come closest to the observed ones, with Optuna (TPE or CMA-ES) on a
persistent study, so a killed calibration resumes where it stopped and several processes can
share one study. Every batch of candidates is one numba kernel call, every candidate on the same
simulated firms (common random numbers). The :class:`CalibrationResult` holds the estimate,
its sandwich standard errors, the moment fit, the J-test of the over-identifying restrictions,
loss slices, an identification report, and, on request, a parametric bootstrap and an ABC-SMC
posterior. :func:`recovery` checks all of this against known parameters on synthetic data.
``orgsim-calibrate`` (:func:`main`) runs a calibration from the command line.

Settings may come from ``conf/calibration/NAME.yaml`` (``params="NAME"``). Team records and KPI
series are read by :func:`read_teams` and :func:`read_kpis` (schemas in their docstrings);
:func:`fit_ordering_rule` estimates Sterman's (1989) ordering rule team by team by nonlinear
least squares. docs/calibration.md explains the method and reports its validation.
"""

from __future__ import annotations

import json
import math
import numbers
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import _smm
from ._observed import ObservedDataError, read_kpis, read_teams
from .config import Config, ConfigError, compose, config_dir

if TYPE_CHECKING:
    from ._abc import ABCPosterior

__all__ = [
    "CalibrationResult",
    "ObservedDataError",
    "RecoveryResult",
    "calibrate",
    "calibration_settings",
    "fit_ordering_rule",  # noqa: F822  (loaded on first use: module __getattr__)
    "main",
    "read_kpis",
    "read_teams",
    "recovery",
]

FRAME_COLUMNS = ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper")
#: settings a conf/calibration file may hold, with the built-in defaults
DEFAULTS = {
    "description": "",
    "overrides": [],
    "params": None,
    "moments": None,
    "weighting": "optimal",
    "n_trials": 200,
    "sampler": "tpe",
    "replicates": 32,
    "batch_size": 32,
    "se_replicates": None,
    "skip": 0,
}
WEIGHTINGS = _smm.WEIGHTINGS
_PROG = "orgsim-calibrate"


def __getattr__(name: str):
    if name == "fit_ordering_rule":  # the colleague's module (issue 14, item 4), loaded on use
        from ._ordering_rule import fit_ordering_rule

        return fit_ordering_rule
    raise AttributeError(f"module 'orgsim.calibration' has no attribute {name!r}")


# --------------------------------------------------------------------------------------------
# settings: conf/calibration/NAME.yaml
# --------------------------------------------------------------------------------------------
def _options(roots: Sequence[Path]) -> list[str]:
    return sorted({p.stem for r in roots for p in (Path(r) / "calibration").glob("*.yaml")})


def calibration_settings(name: str, overrides: Sequence[str] = (), *, config_dirs: Sequence = ()) -> dict:
    """The settings of ``conf/calibration/NAME.yaml``, with ``calibration.KEY=VALUE`` overrides.

    The file is a Hydra config group option (``+calibration=NAME`` puts it in the composed
    config's ``calibration`` node, which the model's Config leaves out); its keys are those of
    :data:`DEFAULTS`: ``overrides`` (the model's Hydra overrides), ``params`` (``{dotted key:
    [low, high]}``, flat or nested), ``moments``, ``weighting``, ``n_trials``, ``sampler``,
    ``replicates``, ``batch_size``, ``se_replicates``, ``skip`` and ``description``.
    ``config_dirs`` adds a researcher's own directories holding ``calibration/*.yaml``.
    """
    from omegaconf import OmegaConf

    if not isinstance(name, str) or not name:
        raise TypeError(f"calibration name == {name!r}, must be the name of a conf/calibration file")
    roots = [config_dir(), *map(Path, config_dirs)]
    files = [Path(r) / "calibration" / f"{name}.yaml" for r in roots]
    found = [f for f in files if f.is_file()]
    if not found or "/" in name or name.startswith("."):
        raise ConfigError(
            f"calibration == {name!r}, must be one of {', '.join(map(repr, _options(roots))) or '(none found)'}"
        )
    node = None
    extra = (
        [f"hydra.searchpath=[{','.join('file://' + str(Path(d).resolve()) for d in config_dirs)}]"]
        if config_dirs
        else []
    )
    try:  # the composed config's node, as Hydra builds it
        from .config import compose_hydra

        composed = compose_hydra([*extra, f"+calibration={name}", *overrides])
        node = OmegaConf.to_container(composed.calibration, resolve=True)
    except Exception as exc:
        if "not in 'Config'" not in str(exc) and "not in 'Config'" not in str(getattr(exc, "__cause__", "")):
            from .config import hydra_error_line

            raise ConfigError(hydra_error_line(exc)) from None
        # the schema does not accept the tools' nodes yet: read the file as Hydra would merge it
        loaded = OmegaConf.load(found[-1])
        dotted = [o.removeprefix("calibration.") for o in overrides]
        node = OmegaConf.to_container(OmegaConf.merge(loaded, OmegaConf.from_dotlist(dotted)), resolve=True)
    node = dict(node or {})
    unknown = sorted(set(node) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            f"calibration.{unknown[0]} is not a calibration setting; allowed: {', '.join(sorted(DEFAULTS))}"
        )
    if node.get("params") is not None:
        node["params"] = _flatten(node["params"], "calibration.params")
    return node


def _flatten(tree, where: str, prefix: str = "") -> dict:
    """``{"policy": {"theta": [0, 1]}}`` and ``{"policy.theta": [0, 1]}`` -> ``{"policy.theta": (0, 1)}``."""
    if not isinstance(tree, Mapping):
        raise ConfigError(f"{where} == {tree!r}, must be a mapping of dotted keys to [low, high]")
    out = {}
    for key, value in tree.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, where, full + "."))
        else:
            out[full] = tuple(value) if isinstance(value, list | tuple) else value
    return out


# --------------------------------------------------------------------------------------------
# observed data
# --------------------------------------------------------------------------------------------
def _is_team_source(source) -> bool:
    """Whether a frame or a file holds team records (a ``team`` column)."""
    if isinstance(source, pd.DataFrame):
        return "team" in source.columns
    try:
        path = Path(source)
        if path.suffix.lower() == ".csv":
            return "team" in pd.read_csv(path, nrows=0).columns
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return "team" in pq.read_schema(path).names
    except Exception:  # unreadable: read_kpis names the problem
        return False
    return False


def _is_moment_values(data) -> bool:
    if isinstance(data, pd.Series):
        return True
    return isinstance(data, Mapping) and all(isinstance(v, numbers.Real) for v in data.values())


def _default_moments(kpis: pd.DataFrame | None, teams: pd.DataFrame | None, stages: int) -> list[str]:
    """Mean, standard deviation and first autocorrelation of every KPI column that varies in the
    data; for team records, per stage: the orders' standard deviation and autocorrelation and
    mean inventory and backlog."""
    out = []
    if kpis is not None:
        for col in _smm.KPI_SERIES:
            if col in kpis.columns and kpis[col].nunique() > 1:
                out += [f"mean:{col}", f"std:{col}", f"acf:{col}:1"]
    if teams is not None:
        for k in range(stages):
            out += [f"std:order@{k}", f"acf:order@{k}:1", f"mean:inventory@{k}", f"mean:backlog@{k}"]
    if not out:
        raise ValueError("the data hold no varying series to take default moments from; give moments=")
    return out


# --------------------------------------------------------------------------------------------
# calibrate
# --------------------------------------------------------------------------------------------
class _Problem:
    """Everything an estimation needs, resolved and checked: config, bounds, moments, target."""

    def __init__(self, *, data, teams, params, moments, overrides, n_obs, moment_cov, skip, config_dirs=()):
        node = {}
        if isinstance(params, str):
            node = calibration_settings(params, config_dirs=config_dirs)
            self.name = params
        else:
            self.name = None
        self.node = node
        model_overrides = [*node.get("overrides", []), *(overrides or [])]
        if overrides is not None and (isinstance(overrides, str) or not isinstance(overrides, Sequence)):
            raise TypeError(
                f"overrides == {overrides!r}, must be a list of Hydra overrides such as ['scenario=beer_game']"
            )
        cfg = compose(model_overrides)
        self.overrides = model_overrides
        specs = moments if moments is not None else node.get("moments")
        self.skip = _smm.check_int("skip", skip if skip is not None else node.get("skip", 0), 0)
        # observed data: frames (KPIs and/or team records) or target moments
        self.kpis = self.teams = None
        self.observed = None
        if data is not None and _is_moment_values(data):
            values = pd.Series(data, dtype=float)
            if specs is None:
                specs = list(values.index)
            parsed = _smm.parse_moments(specs)
            names = [m.name for m in parsed]
            given = {_smm.Moment.parse(k).name: float(v) for k, v in values.items()}
            missing = [n for n in names if n not in given]
            if missing:
                raise ValueError(f"data has no value for moment {missing[0]!r}; it gives: {', '.join(given)}")
            if not all(math.isfinite(given[n]) for n in names):
                bad = next(n for n in names if not math.isfinite(given[n]))
                raise ValueError(f"data[{bad!r}] == {given[bad]!r}, must be a finite number")
            if (n_obs is None) == (moment_cov is None):
                raise ValueError(
                    "target moments need exactly one of n_obs (the number of firms they average) or "
                    "moment_cov (their covariance matrix)"
                )
            cov = None
            if moment_cov is not None:
                cov = np.asarray(
                    moment_cov.loc[names, names] if isinstance(moment_cov, pd.DataFrame) else moment_cov,
                    dtype=float,
                )
                if (
                    cov.shape != (len(names), len(names))
                    or not np.allclose(cov, cov.T)
                    or np.linalg.eigvalsh(cov).min() <= 0
                ):
                    raise ValueError(
                        f"moment_cov must be a symmetric positive definite {len(names)} × {len(names)} matrix"
                    )
            n = None if n_obs is None else _smm.check_int("n_obs", n_obs, 1)
            self.moment_set = _smm.MomentSet(parsed, _smm.build_network(cfg), self.skip)
            self.target = _smm.Target(np.array([given[k] for k in names]), n_obs=n, cov=cov)
            self.n_obs = n
        else:
            if n_obs is not None or moment_cov is not None:
                raise ValueError(
                    "n_obs and moment_cov go with target moments; observed series give their own"
                )
            if data is not None and _is_team_source(data):
                if teams is not None:
                    raise ValueError("data holds team records and teams= is given too: give each once")
                data, teams = None, data
            self.kpis = None if data is None else read_kpis(data)
            self.teams = None if teams is None else read_teams(teams)
            if self.kpis is None and self.teams is None:
                raise ValueError("data == None: give KPI series, team records (teams=) or target moments")
            if specs is None:
                specs = _default_moments(self.kpis, self.teams, cfg.network.stages)
            parsed = _smm.parse_moments(specs)
            ms = _smm.MomentSet(parsed, _smm.build_network(cfg), self.skip)
            series, orgs, periods = ms.observed_series(self.kpis, self.teams)
            if self.skip >= periods - 2:
                raise ValueError(
                    f"skip == {self.skip}, must be < {periods - 2} (the data have {periods} periods)"
                )
            if periods != cfg.periods:
                cfg = cfg.replace(periods=periods)
                ms = _smm.MomentSet(parsed, _smm.build_network(cfg), self.skip)
            per_firm = ms.per_firm(series)
            if not np.all(np.isfinite(per_firm)):
                i, j = np.argwhere(~np.isfinite(per_firm))[0]
                raise ValueError(
                    f"moment {ms.names[j]!r} is not finite for observed firm {orgs[i]!r} (e.g. a constant demand for a bullwhip ratio)"
                )
            self.moment_set = ms
            self.observed = {"series": series, "orgs": orgs, "per_firm": per_firm}
            self.n_obs = len(orgs)
            self.target = _smm.Target(per_firm.mean(axis=0), n_obs=len(orgs))
        if self.skip >= cfg.periods - 2:
            raise ValueError(
                f"skip == {self.skip}, must be < {cfg.periods - 2} (the model runs {cfg.periods} periods)"
            )
        self.config = cfg.replace(n_orgs=1, engine="numba")
        bounds = params if not isinstance(params, str) else node.get("params")
        if bounds is None:
            raise ConfigError(f"conf/calibration/{params}.yaml sets no params")
        self.bounds = _smm.check_bounds(bounds, self.config)
        self.names = list(self.bounds)


def calibrate(
    data=None,
    *,
    params,
    moments=None,
    teams=None,
    overrides: Sequence[str] | None = None,
    weighting=None,
    n_trials: int | None = None,
    sampler: str | None = None,
    storage=None,
    study_name: str | None = None,
    replicates: int | None = None,
    batch_size: int | None = None,
    se_replicates: int | None = None,
    skip: int | None = None,
    n_obs: int | None = None,
    moment_cov=None,
    seed=0,
    n_jobs: int | None = None,
    progress: bool | Callable | None = None,
    polish: bool = True,
    fd_step: float = 0.02,
    config_dirs: Sequence = (),
) -> CalibrationResult:
    """Fit parameters to observed data by the simulated method of moments (SMM).

    The estimate minimises g(θ)'W g(θ), g = m_obs − m_sim(θ), where m_obs are the observed
    moments (averaged over the observed firms) and m_sim(θ) the same moments averaged over
    ``replicates`` simulated firms, every candidate on the same firms (common random numbers).

    Parameters
    ----------
    data : path, DataFrame, Series or dict, optional
        KPI series (read by :func:`read_kpis`: ``period``, KPI columns, optional ``org``), team
        records (a ``team`` column: read by :func:`read_teams`), or target moments given directly
        (``{"std:inventory_units": 310.0, ...}``, with ``n_obs`` or ``moment_cov``).
    params : dict or str
        ``{dotted key: (low, high)}`` of continuous parameters that may vary per firm, or the
        name of a ``conf/calibration/NAME.yaml`` whose settings fill every argument left None.
    moments : list, optional
        Moments as text (``"mean:SERIES"``, ``"std:SERIES"``, ``"acf:SERIES:LAG"``,
        ``"ccf:SERIES:SERIES:LAG"``, ``"bullwhip:STAGE"``, ``"fill_rate"``) or mappings. A SERIES
        is a numeric KPI column or ``COLUMN@STAGE``, a team column summed over a stage's teams.
    teams : path or DataFrame, optional
        Team records, for team series and bullwhip ratios.
    overrides : list of str, optional
        Hydra overrides of the model (after the calibration file's own); ``periods`` is set to
        the data's length.
    weighting : {"identity", "diagonal", "optimal"} or array
        Identity; diagonal (inverse variances of the moment discrepancy); or optimal (its
        inverse covariance). The last two are two-step: step 1 weights by inverse variances at
        the centre of the bounds, step 2 by the weighting estimated at step 1's estimate from
        ``se_replicates`` simulated firms. Default ``"optimal"``.
    n_trials : int
        Trials per search step (default 200). Step 2 starts from step 1's trials re-scored.
    sampler : {"tpe", "cmaes"}
        Optuna's TPE (multivariate, constant liar for batches) or CMA-ES (population =
        ``batch_size``). Default ``"tpe"``.
    storage : path, URL or Optuna storage, optional
        Where the study lives: a journal file (``"out/study.journal"``), a database URL
        (``"sqlite:///calibration.db"``), or in memory (None). With a file or database a killed
        calibration resumes, and processes sharing it share the work.
    study_name : str, optional
        Default ``"calibration"``; steps are ``NAME/search`` or ``NAME/step1``, ``NAME/step2``.
    replicates : int
        Simulated firms per candidate, R (default 32).
    batch_size : int
        Candidates per kernel call (default 32).
    se_replicates : int, optional
        Simulated firms for the weighting matrix, the Jacobian and the standard errors
        (default max(4R, 10·moments, 200)).
    skip : int
        Periods left out at the start of every series (default 0).
    n_obs, moment_cov
        For target moments: the number of firms they average, or their covariance.
    seed : int, SeedSequence or Generator
        Replicate ``r`` of every candidate is firm ``r`` of ``orgsim.simulate(cfg, seed=seed)``
        (SPEC 7). Use another seed than the one that simulated synthetic data.
    n_jobs : int, optional
        Numba threads (default all); results do not depend on it.
    progress : bool or callable, optional
        A progress bar (default on a terminal), or ``progress(info)`` after each batch.
    polish : bool
        Refine the search's best point on the same draws (default True): damped Gauss–Newton
        steps (Jacobian by central differences of ``fd_step``), then a compass search
        (``orgsim._smm.refine``). Without the Gauss–Newton steps the beer game's search stopped
        short of the minimum often enough to make its intervals under-cover (docs/calibration.md).
    fd_step : float
        Finite-difference step of the Jacobian, a share of each parameter's range (0.02).
    config_dirs : list of paths
        Extra directories holding ``calibration/*.yaml``.

    Returns
    -------
    CalibrationResult

    Examples
    --------
    >>> import orgsim
    >>> from orgsim.calibration import calibrate
    >>> cfg = orgsim.compose(["scenario=beer_game", "management.execution_noise=0.2"])
    >>> data = orgsim.simulate(cfg.replace(n_orgs=4), engine="numba", seed=99, teams=True).teams
    >>> res = calibrate(data, params={"policy.alpha_s": (0.05, 1.0)}, moments=["std:order@0", "std:order@3"],
    ...                 overrides=["scenario=beer_game", "management.execution_noise=0.2"], n_trials=24,
    ...                 batch_size=12, replicates=16, progress=False)
    >>> bool(abs(res.params_["policy.alpha_s"] - 0.26) < 0.1)
    True
    """
    problem = _Problem(
        data=data, teams=teams, params=params, moments=moments, overrides=overrides, n_obs=n_obs,
        moment_cov=moment_cov, skip=skip, config_dirs=config_dirs,
    )  # fmt: skip
    node = problem.node

    def setting(value, key):
        return value if value is not None else node.get(key, DEFAULTS[key])

    M = len(problem.moment_set)
    weighting = _smm.check_weighting(setting(weighting, "weighting"), M)
    n_trials = _smm.check_int("n_trials", setting(n_trials, "n_trials"), 1)
    sampler = setting(sampler, "sampler")
    if sampler not in ("tpe", "cmaes"):
        raise ValueError(f"sampler == {sampler!r}, must be 'tpe' or 'cmaes'")
    replicates = _smm.check_int("replicates", setting(replicates, "replicates"), 2)
    batch_size = _smm.check_int("batch_size", setting(batch_size, "batch_size"), 1)
    se_replicates = setting(se_replicates, "se_replicates")
    se_replicates = max(4 * replicates, 10 * M, 200) if se_replicates is None else se_replicates
    se_replicates = _smm.check_int("se_replicates", se_replicates, M + 2)
    if not isinstance(fd_step, int | float) or not 0 < fd_step <= 0.25:
        raise ValueError(f"fd_step == {fd_step!r}, must be a number in (0, 0.25]")
    study_name = "calibration" if study_name is None else study_name
    if not isinstance(study_name, str) or not study_name or "/" in study_name:
        raise ValueError(f"study_name == {study_name!r}, must be a non-empty name without '/'")
    from ._rng import seed_to_int

    seed = seed_to_int(seed)
    settings = {
        "config": problem.config.to_dict(),
        "bounds": problem.bounds,
        "moments": problem.moment_set.names,
        "target": [float(f"{v:.12g}") for v in problem.target.values],
        "n_obs": problem.target.n_obs,
        "moment_cov": None if problem.target.cov is None else np.round(problem.target.cov, 12).tolist(),
        "weighting": weighting if isinstance(weighting, str) else np.round(weighting, 12).tolist(),
        "replicates": replicates,
        "se_replicates": se_replicates,
        "skip": problem.skip,
        "seed": seed,
    }
    runner = _smm.Runner(problem.config, problem.moment_set, seed, problem.names)
    bounds = np.array([problem.bounds[n] for n in problem.names])
    with _smm.quiet_optuna(), _smm.threads(n_jobs):
        token = _smm.new_token()
        studies = _smm.Studies(
            _smm.open_storage(storage), study_name, settings, sampler, seed, batch_size, token
        )
        report, close = _smm.progress_reporter(progress, "calibration")
        try:
            fit = _smm.estimate(
                runner, bounds, [problem.target], weighting=weighting, replicates=replicates,
                se_replicates=se_replicates, n_trials=n_trials, batch_size=batch_size, study_for=studies,
                token=token, do_polish=polish, fd_step=fd_step, report=report,
            )[0]  # fmt: skip
        finally:
            close()
    return CalibrationResult(
        problem=problem, fit=fit, runner=runner, studies=studies, weighting=weighting, replicates=replicates,
        se_replicates=se_replicates, n_trials=n_trials, sampler=sampler, seed=seed, batch_size=batch_size,
        fd_step=fd_step,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
def _check_alpha(alpha) -> float:
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, int | float | np.integer | np.floating)
        or not 0 < alpha < 1
    ):
        raise ValueError(f"alpha == {alpha!r}, must be a number in (0, 1), e.g. 0.05 for 95% intervals")
    return float(alpha)


def _z(alpha: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(1 - alpha / 2))


def _agg(a):
    return np.asarray(a, dtype=np.float64)


class CalibrationResult:
    """The result of :func:`calibrate` (statsmodels-like: raw pieces kept, tables derived).

    Attributes
    ----------
    params_ : pandas.Series
        The estimate θ̂, one entry per calibrated parameter (dotted key).
    bse_ : pandas.Series
        Its standard errors: square roots of the diagonal of :attr:`cov_params_`.
    cov_params_ : pandas.DataFrame
        The sandwich covariance (G'WG)⁻¹ G'W Σ_g W G (G'WG)⁻¹, with G the Jacobian of the
        simulated moments at θ̂ (central differences on common random numbers) and
        Σ_g = Var(m_obs) + Ω/R the covariance of the moment discrepancy (Ω the per-firm
        covariance of the simulated moments at θ̂, Var(m_obs) = Ω/N for N observed firms): with
        S = R/N, Σ_g = (Ω/N)(1 + 1/S), the SMM simulation correction.
    moments_ : pandas.DataFrame
        The moment fit: observed and simulated values, their standard errors, the difference and
        its t statistic (difference / √Σ_g).
    jtest_ : dict or None
        Hansen's J test of the over-identifying restrictions with optimal weighting: ``statistic``
        g'Σ_g⁻¹g at θ̂, ``df`` = moments − parameters, ``pvalue`` from χ²(df); None otherwise.
    loss_ : float
        g'Wg at θ̂ (W the last step's weighting).
    weighting_ : pandas.DataFrame
        W.
    jacobian_ : pandas.DataFrame
        G, moments × parameters.
    pilot_ : pandas.Series or None
        Step 1's estimate (two-step weighting).
    n_trials_ : int
        Trials evaluated in the study (all processes, all steps; warm starts not counted).
    """

    def __init__(self, *, problem, fit, runner, studies, weighting, replicates, se_replicates, n_trials, sampler,
                 seed, batch_size, fd_step):  # fmt: skip
        self._problem, self._fit, self._runner, self._studies = problem, fit, runner, studies
        self.config: Config = problem.config
        self.names = list(problem.names)
        self.bounds = dict(problem.bounds)
        self.moment_names = list(problem.moment_set.names)
        self.n_obs = problem.n_obs
        self.weighting = weighting
        self.replicates, self.se_replicates = replicates, se_replicates
        self.n_trials, self.sampler, self.seed, self.batch_size = n_trials, sampler, seed, batch_size
        self.fd_step = fd_step
        self.calibration_name = problem.name
        self.overrides = list(problem.overrides)
        self.skip = problem.skip
        self.params_ = pd.Series(fit.theta, index=self.names, name="estimate")
        self.cov_params_ = pd.DataFrame(fit.cov, index=self.names, columns=self.names)
        self.bse_ = pd.Series(np.sqrt(np.diag(fit.cov)), index=self.names, name="se")
        self.loss_ = float(fit.loss)
        self.jtest_ = None if fit.jtest is None else dict(zip(("statistic", "df", "pvalue"), fit.jtest))
        self.weighting_ = pd.DataFrame(fit.W, index=self.moment_names, columns=self.moment_names)
        self.jacobian_ = pd.DataFrame(fit.G, index=self.moment_names, columns=self.names)
        self.omega_ = pd.DataFrame(fit.omega, index=self.moment_names, columns=self.moment_names)
        self.pilot_ = None if fit.pilot is None else pd.Series(fit.pilot, index=self.names, name="pilot")
        self.steps_ = fit.steps
        self.n_trials_ = studies.finished()
        self.study_names_ = [s["study"] for s in fit.steps]
        self._slices = {}

    # -- tables -----------------------------------------------------------------------------
    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Estimate (``mean``), standard error (``mean_se``) and Wald interval θ̂ ± z·se
        (normal approximation, not truncated to the bounds) per parameter."""
        z = _z(_check_alpha(alpha))
        est, se = self.params_.to_numpy(), self.bse_.to_numpy()
        return pd.DataFrame(
            {"mean": est, "mean_se": se, "mean_ci_lower": est - z * se, "mean_ci_upper": est + z * se},
            index=pd.Index(self.names, name="parameter"),
        )

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald intervals, columns ``lower`` and ``upper``."""
        f = self.summary_frame(alpha)
        return pd.DataFrame({"lower": f.mean_ci_lower, "upper": f.mean_ci_upper})

    @cached_property
    def moments_(self) -> pd.DataFrame:
        fit, target = self._fit, self._problem.target
        data_cov = target.data_cov(fit.omega)
        diff = target.values - fit.simulated
        return pd.DataFrame(
            {
                "data": target.values,
                "data_se": np.sqrt(np.diag(data_cov)),
                "simulated": fit.simulated,
                "simulated_se": np.sqrt(np.diag(fit.omega) / self.replicates),
                "difference": diff,
                "t": diff / np.sqrt(np.diag(fit.sigma)),
            },
            index=pd.Index(self.moment_names, name="moment"),
        )

    def trials(self) -> pd.DataFrame:
        """Every step's trials (Optuna's ``trials_dataframe``), with a ``study`` column."""
        frames = []
        for (k, step), (local, store, _, _) in self._studies._cache.items():
            if k == 0:
                frames.append(
                    (store or local).trials_dataframe().assign(study=f"{self._studies.name}/{step}")
                )
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    # -- identification ---------------------------------------------------------------------
    def loss_slices(self, n_points: int = 21) -> pd.DataFrame:
        """The loss along each parameter over its bounds, the others held at the estimate: one
        kernel call on the search's common random numbers. Columns ``parameter, value, loss``
        (g'Wg, the objective) and ``loss_chi2`` (g'Σ_g⁻¹g with Σ_g at θ̂: differences of 3.84
        are a χ²₁ 95% critical value)."""
        n_points = _smm.check_int("n_points", n_points, 3)
        if n_points not in self._slices:
            theta = self.params_.to_numpy()
            rows, cands = [], []
            for j, name in enumerate(self.names):
                lo, hi = self.bounds[name]
                for v in np.unique(np.append(np.linspace(lo, hi, n_points), theta[j])):
                    x = theta.copy()
                    x[j] = v
                    cands.append(x)
                    rows.append((name, float(v)))
            pf = self._runner.per_firm(_smm.table_of(np.array(cands), self.names), self.replicates)
            m = pf.mean(axis=1)
            g = self._problem.target.values - m
            W = self._fit.W
            try:
                S_inv = _smm._inverse(self._fit.sigma, self.moment_names, "at the estimate")
            except ValueError:
                S_inv = np.diag(1.0 / np.diag(self._fit.sigma))
            self._slices[n_points] = pd.DataFrame(
                {
                    "parameter": [r[0] for r in rows],
                    "value": [r[1] for r in rows],
                    "loss": np.einsum("ij,jk,ik->i", g, W, g),
                    "loss_chi2": np.einsum("ij,jk,ik->i", g, S_inv, g),
                }
            )
        return self._slices[n_points].copy()

    def directions(self, alpha: float = 0.05) -> pd.DataFrame:
        """Eigen-decomposition of the scaled information matrix D G'Σ_g⁻¹G D (D: the bounds'
        widths): one row per direction, its ``eigenvalue`` λ (moving the parameters along the unit
        direction by their whole ranges raises g'Σ_g⁻¹g by about λ), ``flat`` when λ is below
        the χ²₁ critical value at ``alpha``, and the direction's loading on each parameter."""
        from scipy import stats

        crit = float(stats.chi2.ppf(1 - _check_alpha(alpha), 1))
        D = np.diag([self.bounds[n][1] - self.bounds[n][0] for n in self.names])
        try:
            S_inv = _smm._inverse(self._fit.sigma, self.moment_names, "at the estimate")
        except ValueError:
            S_inv = np.diag(1.0 / np.diag(self._fit.sigma))
        info = D @ self._fit.G.T @ S_inv @ self._fit.G @ D
        lam, vec = np.linalg.eigh(0.5 * (info + info.T))
        vec = vec * np.where(vec[np.abs(vec).argmax(axis=0), range(len(lam))] < 0, -1.0, 1.0)
        frame = pd.DataFrame(vec.T, columns=self.names)
        frame.insert(0, "flat", lam < crit)
        frame.insert(0, "eigenvalue", lam)
        return frame.rename_axis("direction")

    def identification(
        self, alpha: float = 0.05, corr_threshold: float = 0.9, n_points: int = 21
    ) -> pd.DataFrame:
        """Which parameters the moments identify, per parameter.

        Columns: ``rise_chi2``, how much g'Σ_g⁻¹g rises over the parameter's bounds with the
        others at θ̂ (:meth:`loss_slices`); ``flat``, True when that rise is below the χ²₁
        critical value at ``alpha`` (3.84 at 0.05: no value within the bounds can be rejected,
        holding the others); ``interval_share``, the Wald interval's width over the bounds'
        width; ``max_abs_corr`` and ``corr_with``, the largest correlation of the estimate with
        another parameter's; ``confounded``, True when that correlation exceeds
        ``corr_threshold`` or the parameter moves together with another along a flat direction of
        :meth:`directions` (a ridge, which slices along the axes cannot show; a parameter counts
        when its loading is at least a tenth of the direction's largest); ``at_bound``.
        """
        from scipy import stats

        alpha = _check_alpha(alpha)
        sl = self.loss_slices(n_points)
        theta = self.params_
        crit = float(stats.chi2.ppf(1 - alpha, 1))
        se = self.bse_
        with np.errstate(invalid="ignore", divide="ignore"):
            corr = self.cov_params_.to_numpy() / np.outer(se, se)
        dirs = self.directions(alpha)
        ridges = [
            [n for n in self.names if abs(row[n]) >= 0.1 * max(abs(row[m]) for m in self.names)]
            for _, row in dirs[dirs.flat].iterrows()
        ]
        ridges = [r for r in ridges if len(r) > 1]
        out = {}
        for j, name in enumerate(self.names):
            s = sl[sl.parameter == name]
            at = s.loc[(s.value - theta[name]).abs().idxmin(), "loss_chi2"]
            lo, hi = self.bounds[name]
            others = [
                (abs(corr[j, i]), self.names[i])
                for i in range(len(self.names))
                if i != j and np.isfinite(corr[j, i])
            ]
            top = max(others) if others else (float("nan"), "")
            partners = sorted({n for r in ridges if name in r for n in r if n != name})
            rise = float(s.loss_chi2.max() - at)
            out[name] = {
                "estimate": theta[name],
                "se": se[name],
                "rise_chi2": rise,
                "flat": bool(rise < crit),
                "interval_share": float(2 * _z(alpha) * se[name] / (hi - lo)),
                "max_abs_corr": top[0],
                "corr_with": top[1] if not partners else ", ".join(partners),
                "confounded": bool(top[0] > corr_threshold or partners),
                "at_bound": bool(min(theta[name] - lo, hi - theta[name]) <= 1e-9 * (hi - lo)),
            }
        return pd.DataFrame.from_dict(out, orient="index").rename_axis("parameter")

    # -- uncertainty by simulation ----------------------------------------------------------
    def bootstrap(self, n_boot: int = 50, *, search: str = "local", n_trials: int | None = None, seed=None,
                  progress=None) -> BootstrapResult:  # fmt: skip
        """Parametric bootstrap: simulate ``n_boot`` datasets of the observed size at θ̂, each with
        its own simulation draws, and re-estimate θ on each with this calibration's weighting
        matrix.

        ``search="local"`` re-estimates by the local refinement from θ̂ (Gauss–Newton steps, then
        the compass search: fast; the datasets come from θ̂, so their estimates lie near it unless
        the loss has several minima);
        ``"global"`` runs the whole Optuna search (``n_trials`` trials each, default this
        calibration's) then the local refinement. Datasets with target moments given by their
        covariance draw the moments from N(m_sim(θ̂), moment_cov).
        """
        n_boot = _smm.check_int("n_boot", n_boot, 2)
        if search not in ("local", "global"):
            raise ValueError(f"search == {search!r}, must be 'local' or 'global'")
        from ._rng import seed_to_int

        boot_seed = self.seed if seed is None else seed_to_int(seed)
        runner = _smm.Runner(self.config, self._problem.moment_set, boot_seed, self.names)
        theta = self.params_.to_numpy()
        target = self._problem.target
        targets = []
        if target.n_obs is not None:
            N = target.n_obs
            firsts = _smm.DATA_FIRMS + N * np.arange(n_boot)
            pf = runner.per_firm(_smm.table_of(np.repeat(theta[None], n_boot, 0), self.names), N, firsts)
            values = pf.mean(axis=1)
        else:
            rng = np.random.default_rng(np.random.SeedSequence([boot_seed, 0xB007]))
            pf = runner.per_firm(_smm.table_of(theta, self.names), self.se_replicates, _smm.DATA_FIRMS)[0]
            values = pf.mean(axis=0) + rng.multivariate_normal(
                np.zeros(len(target.values)), target.cov, size=n_boot
            )
        for b in range(n_boot):
            targets.append(
                _smm.Target(
                    values[b],
                    n_obs=target.n_obs,
                    cov=target.cov,
                    label=f"dataset {b}",
                    first=(b + 1) * _smm.BLOCK,
                )
            )
        bounds = np.array([self.bounds[n] for n in self.names])
        with _smm.quiet_optuna():
            if search == "local":
                problems = [_LocalProblem(bounds, t, self._fit.W) for t in targets]
                starts = []
                pf0 = runner.per_firm(_smm.table_of(np.repeat(theta[None], n_boot, 0), self.names), self.replicates,
                                      np.array([t.first for t in targets]))  # fmt: skip
                for p, f in zip(problems, pf0):
                    m = f.mean(axis=0)
                    starts.append((theta, p.loss(m), m))
                results = _smm.refine(problems, starts, runner, self.replicates, step=self.fd_step)
                estimates = np.array([r[0] for r in results])
            else:
                studies = _smm.Studies(
                    _smm.open_storage(None), "bootstrap", None, self.sampler, boot_seed, self.batch_size
                )
                report, close = _smm.progress_reporter(progress, "bootstrap")
                try:
                    fits = _smm.estimate(
                        runner, bounds, targets, weighting=self._fit.W, replicates=self.replicates,
                        se_replicates=self.se_replicates, n_trials=n_trials or self.n_trials,
                        batch_size=self.batch_size, study_for=studies, token=_smm.new_token(), report=report,
                    )  # fmt: skip
                finally:
                    close()
                estimates = np.array([f.theta for f in fits])
        return BootstrapResult(pd.DataFrame(estimates, columns=self.names), self.params_, search)

    def posterior(self, n_particles: int = 300, *, generations: int = 6, quantile: float = 0.5,
                  max_simulations: int | None = None, seed=None) -> ABCPosterior:  # fmt: skip
        """An ABC-SMC posterior for a uniform prior on the bounds (:func:`orgsim._abc.abc_smc`):
        each particle simulates one fresh dataset of the observed size (N firms, new random
        numbers), and its distance to the data is the Mahalanobis distance of the averaged
        moments with Ω at θ̂."""
        from . import _abc

        N = self._problem.target.n_obs
        if N is None:
            raise ValueError(
                "posterior needs the number of observed firms: target moments given by moment_cov have none"
            )
        from ._rng import seed_to_int

        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0xABC]) if seed is None else seed)
        runner = _smm.Runner(
            self.config,
            self._problem.moment_set,
            self.seed if seed is None else seed_to_int(seed),
            self.names,
        )
        used = [0]

        def simulate(points):
            firsts = _smm.ABC_FIRMS + used[0] + N * np.arange(len(points))
            used[0] += N * len(points)
            return runner.per_firm(_smm.table_of(points, self.names), N, firsts).mean(axis=1)

        try:
            W = _smm._inverse(self._fit.omega, self.moment_names, "at the estimate")
        except ValueError:
            W = np.diag(1.0 / np.diag(self._fit.omega))
        bounds = np.array([self.bounds[n] for n in self.names])
        post = _abc.abc_smc(simulate, self._problem.target.values, bounds, names=self.names, weight=W,
                            n_particles=n_particles, generations=generations, quantile=quantile,
                            max_simulations=max_simulations, rng=rng)  # fmt: skip
        post.estimate = self.params_
        return post

    # -- text -------------------------------------------------------------------------------
    def _info(self) -> dict:
        cfg = self.config
        R, N = self.replicates, self.n_obs
        two = isinstance(self.weighting, str) and self.weighting != "identity"
        info = {
            "Model:": f"scenario={cfg.scenario.name} strategy={cfg.strategy.name} environment={cfg.environment.name}",
            "Calibration:": self.calibration_name or "(params given as a dict)",
            "Data:": (
                f"{N} firm(s) × {cfg.periods} periods"
                if self._problem.observed is not None
                else "target moments"
            )
            + (f", first {self.skip} periods left out" if self.skip else ""),
            "Parameters / moments:": f"{len(self.names)} / {len(self.moment_names)}",
            "Weighting:": (self.weighting if isinstance(self.weighting, str) else "given matrix")
            + (" (two-step)" if two else ""),
            "Replicates per candidate:": f"R = {R}"
            + (f" (S = R/N = {R / N:.3g}, correction 1 + 1/S = {1 + N / R:.3g})" if N else ""),
            "Firms for W, G and SEs:": str(self.se_replicates),
            "Search:": f"{self.sampler}, {self.n_trials} trials per step, batches of {self.batch_size}; "
            f"{self.n_trials_} evaluated in the study",
            "Seed:": str(self.seed),
            "Loss g'Wg at the estimate:": f"{self.loss_:.6g}",
        }
        if self.jtest_:
            j = self.jtest_
            info["J test:"] = f"J = {j['statistic']:.4g}, df = {j['df']}, p = {j['pvalue']:.4g}"
        return info

    def summary(self, alpha: float = 0.05):
        """A statsmodels ``Summary`` (text with ``str()``, HTML with ``as_html()``)."""
        from statsmodels.iolib.summary2 import Summary

        alpha = _check_alpha(alpha)
        level = f"{100 * (1 - alpha):g}%"
        s = Summary()
        s.add_title("Simulated method of moments calibration")
        s.add_dict(self._info(), ncols=1)
        f = self.summary_frame(alpha)
        ident = self.identification(alpha)
        flags = []
        for name in self.names:
            r = ident.loc[name]
            flags.append(
                ", ".join(
                    x
                    for x, on in (
                        ("flat", r.flat),
                        (f"confounded with {r.corr_with}", r.confounded),
                        ("at bound", r.at_bound),
                    )
                    if on
                )
                or "-"
            )
        s.add_df(
            pd.DataFrame(
                {
                    "estimate": [f"{v:.5g}" for v in f["mean"]],
                    "s.e.": [f"{v:.3g}" for v in f.mean_se],
                    f"{level} interval": [
                        f"[{a:.4g}, {b:.4g}]" for a, b in zip(f.mean_ci_lower, f.mean_ci_upper)
                    ],
                    "bounds": [f"[{self.bounds[n][0]:g}, {self.bounds[n][1]:g}]" for n in self.names],
                    "identification": flags,
                },
                index=self.names,
            )
        )
        m = self.moments_
        s.add_df(
            pd.DataFrame(
                {
                    "data": [f"{v:.5g}" for v in m.data],
                    "s.e.": [f"{v:.3g}" for v in m.data_se],
                    "simulated": [f"{v:.5g}" for v in m.simulated],
                    "s.e. ": [f"{v:.3g}" for v in m.simulated_se],
                    "t": [f"{v:.2f}" for v in m.t],
                },
                index=self.moment_names,
            )
        )
        s.add_text(
            "Standard errors: the SMM sandwich (G'WG)^-1 G'W S W G (G'WG)^-1 with G the Jacobian of the simulated "
            "moments (central differences, common random numbers) and S = Var(data moments) + Omega/R, which is "
            "(Omega/N)(1 + 1/S) for N observed firms (Gourieroux & Monfort 1996); intervals are Wald (normal), not "
            "truncated to the bounds. t = (data - simulated)/sqrt(diag S). Identification: 'flat' when the loss "
            "slice rises by less than the chi2(1) critical value over the bounds."
        )
        return s

    def __repr__(self) -> str:
        est = ", ".join(f"{n}={v:.4g}" for n, v in self.params_.items())
        return f"<CalibrationResult {est} loss={self.loss_:.4g} trials={self.n_trials_}>"

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    # -- figures ----------------------------------------------------------------------------
    def plot_slices(self, n_points: int = 21, alpha: float = 0.05):
        """The loss along each parameter (the others at the estimate) with the estimate and its
        Wald interval. Returns the figure."""
        plt = _pyplot()
        sl = self.loss_slices(n_points)
        frame = self.summary_frame(alpha)
        fig, axes = plt.subplots(1, len(self.names), figsize=(4.2 * len(self.names), 3.6), squeeze=False)
        for ax, name in zip(axes[0], self.names):
            s = sl[sl.parameter == name]
            ax.plot(s.value, s.loss, marker=".", label="loss g'Wg")
            ax.set_yscale("log")
            ax.axvline(self.params_[name], color="#c44e52", label="estimate")
            lo, hi = self.bounds[name]
            ax.axvspan(max(lo, frame.loc[name, "mean_ci_lower"]), min(hi, frame.loc[name, "mean_ci_upper"]),
                       color="#c44e52", alpha=0.12, label=f"{100 * (1 - alpha):g}% Wald interval")  # fmt: skip
            ax.set_xlabel(f"{name} (parameter units)")
            ax.set_ylabel("loss g'Wg (dimensionless, log scale)")
            ax.set_title(f"loss along {name}")
            ax.legend(fontsize=7)
        fig.suptitle("Loss landscape slices through the estimate (other parameters held at it)")
        fig.tight_layout()
        return fig

    def plot_fit(self, max_series: int = 6):
        """Observed series (one line per firm) against the simulated ones at the estimate
        (median and 5–95% band over the R replicates). Returns the figure."""
        if self._problem.observed is None:
            raise ValueError(
                "target moments have no observed series to plot; see moments_ for the moment fit"
            )
        plt = _pyplot()
        names = list(self._problem.moment_set.series)[:max_series]
        kpis, teams = self._runner.simulate(
            _smm.table_of(self.params_.to_numpy(), self.names), self.replicates
        )
        sim = self._problem.moment_set.simulated_series(
            {k: v[0] for k, v in kpis.items()}, None if teams is None else {k: v[0] for k, v in teams.items()}
        )
        obs = self._problem.observed["series"]
        t = np.arange(1, self.config.periods + 1)
        fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.4 * len(names)), squeeze=False, sharex=True)
        unit = self.config.scenario.time_unit
        for ax, name in zip(axes[:, 0], names):
            lo, med, hi = np.percentile(sim[name], [5, 50, 95], axis=0)
            ax.fill_between(t, lo, hi, color="#4c72b0", alpha=0.2, label="simulated 5–95%")
            ax.plot(t, med, color="#4c72b0", label="simulated median")
            for i, row in enumerate(obs[name]):
                ax.plot(t, row, color="black", lw=0.8, alpha=0.7, label="observed" if i == 0 else None)
            if self.skip:
                ax.axvspan(0.5, self.skip + 0.5, color="grey", alpha=0.1, label="left out (skip)")
            ax.set_ylabel(f"{name} ({_series_unit(name)})")
            ax.legend(fontsize=7, loc="upper right")
        axes[-1, 0].set_xlabel(f"period ({unit}s)")
        fig.suptitle(f"Observed against simulated at the estimate (R = {self.replicates} replicates)")
        fig.tight_layout()
        return fig

    # -- output -----------------------------------------------------------------------------
    def to_dict(self, alpha: float = 0.05) -> dict:
        from .simulation import package_versions

        return {
            "estimates": self.summary_frame(alpha).reset_index().to_dict(orient="records"),
            "moments": self.moments_.reset_index().to_dict(orient="records"),
            "jtest": self.jtest_,
            "loss": self.loss_,
            "pilot": None if self.pilot_ is None else self.pilot_.to_dict(),
            "bounds": self.bounds,
            "weighting": self.weighting if isinstance(self.weighting, str) else "matrix",
            "replicates": self.replicates,
            "se_replicates": self.se_replicates,
            "n_obs": self.n_obs,
            "n_trials_per_step": self.n_trials,
            "n_trials_evaluated": self.n_trials_,
            "studies": self.study_names_,
            "sampler": self.sampler,
            "seed": self.seed,
            "calibration": self.calibration_name,
            "overrides": self.overrides,
            "config": self.config.to_dict(),
            "versions": package_versions(),
        }

    def save(self, directory, *, alpha: float = 0.05, plots: bool = True) -> dict[str, Path]:
        """Write ``estimates.csv``, ``moments.csv``, ``identification.csv``, ``summary.txt``,
        ``summary.html``, ``result.json`` and, with ``plots``, ``slices.png`` and ``fit.png``
        into ``directory`` (each atomically)."""
        from ._io import atomic_write

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = {}

        def put(name, write):
            atomic_write(out / name, write)
            written[name] = out / name

        summary = self.summary(alpha)
        put("estimates.csv", lambda p: self.summary_frame(alpha).to_csv(p))
        put("moments.csv", lambda p: self.moments_.to_csv(p))
        put("identification.csv", lambda p: self.identification(alpha).to_csv(p))
        put("summary.txt", lambda p: Path(p).write_text(str(summary) + "\n"))
        put("summary.html", lambda p: Path(p).write_text(summary.as_html()))
        put(
            "result.json",
            lambda p: Path(p).write_text(
                json.dumps(self.to_dict(alpha), indent=1, default=_smm.json_default)
            ),
        )
        if plots:
            import matplotlib.pyplot as plt

            for name, make in (("slices.png", self.plot_slices), ("fit.png", self.plot_fit)):
                if name == "fit.png" and self._problem.observed is None:
                    continue
                fig = make()
                put(name, lambda p, fig=fig: fig.savefig(p, dpi=110, format="png"))
                plt.close(fig)
        return written


def _series_unit(name: str) -> str:
    from .plots import KPI_UNITS

    if "@" in name:
        col = name.split("@")[0]
        return "MU/period" if col == "cost" else ("share" if col == "knowledge" else "units")
    return KPI_UNITS.get(name, "units").replace("/t", "/period")


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


class _LocalProblem:
    """A loss without a study, for the local refinement of a local bootstrap."""

    def __init__(self, bounds, target, W):
        self.bounds, self.target, self.W = bounds, target, W

    def loss(self, m):
        g = self.target.values - m
        return float(g @ self.W @ g)


class BootstrapResult:
    """Parametric bootstrap of a calibration (:meth:`CalibrationResult.bootstrap`).

    ``estimates`` holds one re-estimate per simulated dataset. :meth:`summary_frame` gives the
    original estimate (``mean``), the bootstrap standard deviation (``mean_se``) and the
    bootstrap percentile interval (``mean_ci_lower``, ``mean_ci_upper``).
    """

    def __init__(self, estimates: pd.DataFrame, estimate: pd.Series, search: str):
        self.estimates = estimates
        self.estimate = estimate
        self.search = search

    @property
    def bias(self) -> pd.Series:
        """Mean bootstrap estimate minus the original estimate."""
        return self.estimates.mean() - self.estimate

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        alpha = _check_alpha(alpha)
        q = self.estimates.quantile([alpha / 2, 1 - alpha / 2])
        return pd.DataFrame(
            {
                "mean": self.estimate,
                "mean_se": self.estimates.std(ddof=1),
                "mean_ci_lower": q.iloc[0],
                "mean_ci_upper": q.iloc[1],
            }
        ).rename_axis("parameter")

    def __repr__(self) -> str:
        return f"<BootstrapResult n_boot={len(self.estimates)} search={self.search}>"


# --------------------------------------------------------------------------------------------
# recovery: known parameters, synthetic data
# --------------------------------------------------------------------------------------------
def recovery(
    params,
    truth: Mapping[str, float] | None = None,
    *,
    moments=None,
    overrides: Sequence[str] | None = None,
    n_datasets: int = 20,
    n_obs: int = 1,
    weighting=None,
    n_trials: int | None = None,
    sampler: str | None = None,
    replicates: int | None = None,
    batch_size: int | None = None,
    se_replicates: int | None = None,
    skip: int | None = None,
    seed=0,
    polish: bool = True,
    fd_step: float = 0.02,
    n_jobs: int | None = None,
    progress: bool | Callable | None = None,
    config_dirs: Sequence = (),
) -> RecoveryResult:
    """Parameter recovery and interval coverage on synthetic data.

    Simulates ``n_datasets`` datasets of ``n_obs`` firms at ``truth`` (firms
    ``DATA_FIRMS + k·n_obs …`` of ``simulate(cfg, seed=seed)``), calibrates each exactly as
    :func:`calibrate` would (the same settings, each estimation on its own simulated replicates,
    all of them side by side in every kernel call), and compares the estimates and their
    intervals with the truth (:meth:`RecoveryResult.table`).

    Parameters
    ----------
    params : dict or str
        As in :func:`calibrate`.
    truth : dict, optional
        The true values (default: the model's own values of the calibrated parameters).
    n_datasets, n_obs : int
        Synthetic datasets, and firms per dataset.
    Other parameters
        As in :func:`calibrate`; ``overrides`` set the model (its ``periods`` the datasets').

    Returns
    -------
    RecoveryResult
    """
    node = {}
    name = None
    if isinstance(params, str):
        node, name = calibration_settings(params, config_dirs=config_dirs), params
        bounds_in = node.get("params")
        if bounds_in is None:
            raise ConfigError(f"conf/calibration/{params}.yaml sets no params")
    else:
        bounds_in = params

    def setting(value, key):
        return value if value is not None else node.get(key, DEFAULTS[key])

    if overrides is not None and (isinstance(overrides, str) or not isinstance(overrides, Sequence)):
        raise TypeError(f"overrides == {overrides!r}, must be a list of Hydra overrides")
    model_overrides = [*node.get("overrides", []), *(overrides or [])]
    cfg = compose(model_overrides).replace(n_orgs=1, engine="numba")
    bounds = _smm.check_bounds(bounds_in, cfg)
    names = list(bounds)
    if truth is None:
        truth = {}
        for key in names:
            value = _smm.model_value(cfg, key)
            if value is None:
                raise ValueError(
                    f"truth[{key!r}]: the model's value is None (automatic); give truth explicitly"
                )
            truth[key] = value
    if not isinstance(truth, Mapping) or set(truth) != set(names):
        raise ValueError(f"truth must give a value for each of {', '.join(names)}")
    for key in names:
        lo, hi = bounds[key]
        v = truth[key]
        if not isinstance(v, numbers.Real) or not lo <= float(v) <= hi:
            raise ValueError(f"truth[{key!r}] == {v!r}, must lie within its bounds [{lo:g}, {hi:g}]")
    theta0 = np.array([float(truth[k]) for k in names])
    specs = setting(moments, "moments")
    if specs is None:
        raise ValueError("recovery needs moments= (or a calibration file that sets them)")
    skip = _smm.check_int("skip", setting(skip, "skip"), 0)
    ms = _smm.MomentSet(_smm.parse_moments(specs), _smm.build_network(cfg), skip)
    M = len(ms)
    weighting = _smm.check_weighting(setting(weighting, "weighting"), M)
    n_trials = _smm.check_int("n_trials", setting(n_trials, "n_trials"), 1)
    sampler = setting(sampler, "sampler")
    replicates = _smm.check_int("replicates", setting(replicates, "replicates"), 2)
    batch_size = _smm.check_int("batch_size", setting(batch_size, "batch_size"), 1)
    se_replicates = setting(se_replicates, "se_replicates")
    se_replicates = _smm.check_int(
        "se_replicates", max(4 * replicates, 10 * M, 200) if se_replicates is None else se_replicates, M + 2
    )
    n_datasets = _smm.check_int("n_datasets", n_datasets, 2)
    n_obs = _smm.check_int("n_obs", n_obs, 1)
    from ._rng import seed_to_int

    seed = seed_to_int(seed)
    runner = _smm.Runner(cfg, ms, seed, names)
    firsts = _smm.DATA_FIRMS + n_obs * np.arange(n_datasets)
    with _smm.threads(n_jobs):
        data = runner.per_firm(_smm.table_of(np.repeat(theta0[None], n_datasets, 0), names), n_obs, firsts)
    bad = ~np.all(np.isfinite(data), axis=(1, 2))
    if bad.any():
        raise ValueError(
            f"a synthetic dataset has a moment that is not finite (dataset {int(np.flatnonzero(bad)[0])})"
        )
    targets = [
        _smm.Target(data[k].mean(axis=0), n_obs=n_obs, label=f"dataset {k}", first=k * _smm.BLOCK)
        for k in range(n_datasets)
    ]
    B = np.array([bounds[n] for n in names])
    with _smm.quiet_optuna(), _smm.threads(n_jobs):
        studies = _smm.Studies(None, "recovery", None, sampler, seed, batch_size, _smm.new_token())
        report, close = _smm.progress_reporter(progress, "recovery")
        try:
            fits = _smm.estimate(
                runner, B, targets, weighting=weighting, replicates=replicates, se_replicates=se_replicates,
                n_trials=n_trials, batch_size=batch_size, study_for=studies, token=_smm.new_token(), do_polish=polish,
                fd_step=fd_step, report=report,
            )  # fmt: skip
        finally:
            close()
    return RecoveryResult(
        truth=pd.Series(theta0, index=names), fits=fits, bounds=bounds, moments=ms.names, config=cfg,
        runner=runner, targets=targets, settings={"calibration": name, "overrides": model_overrides, "n_datasets": n_datasets, "n_obs": n_obs,
                  "weighting": weighting if isinstance(weighting, str) else "matrix", "n_trials": n_trials,
                  "sampler": sampler, "replicates": replicates, "se_replicates": se_replicates, "skip": skip,
                  "seed": seed, "firms_simulated": runner.firms_simulated, "kernel_calls": runner.calls},
    )  # fmt: skip


class RecoveryResult:
    """Estimates of known parameters over synthetic datasets (:func:`recovery`).

    Attributes
    ----------
    truth : pandas.Series
    estimates : pandas.DataFrame
        One row per dataset and parameter: ``estimate``, ``se`` (sandwich), ``truth``.
    jtests : pandas.DataFrame
        Per dataset, the J statistic, its df and p-value (optimal weighting only).
    settings : dict
    """

    def __init__(self, *, truth, fits, bounds, moments, config, settings, runner=None, targets=()):
        self.truth = truth
        # kept so that each dataset's final-step loss can be re-evaluated on the same draws and W
        # (experiments/beer_game_oracle.py): the fits, the targets and the runner
        self._fits, self._targets, self._runner = list(fits), list(targets), runner
        self.bounds = bounds
        self.moment_names = list(moments)
        self.config = config
        self.settings = settings
        names = list(truth.index)
        rows = []
        for k, f in enumerate(fits):
            se = np.sqrt(np.diag(f.cov))
            for j, n in enumerate(names):
                rows.append(
                    {"dataset": k, "parameter": n, "truth": truth[n], "estimate": f.theta[j], "se": se[j]}
                )
        self.estimates = pd.DataFrame(rows)
        self.jtests = pd.DataFrame(
            [
                {"dataset": k, "statistic": f.jtest[0], "df": f.jtest[1], "pvalue": f.jtest[2]}
                for k, f in enumerate(fits)
                if f.jtest
            ]
        )

    def table(self, alpha: float = 0.05) -> pd.DataFrame:
        """Per parameter over the datasets: ``truth``, ``mean`` estimate, ``bias`` and its Monte
        Carlo SE ``bias_se`` (sd/√K), ``rmse``, ``sd`` of the estimates, ``mean_se`` (the mean
        sandwich SE: near ``sd`` when the SEs are right), ``coverage`` of the ``(1 − alpha)`` Wald
        intervals and its Monte Carlo SE √(c(1 − c)/K), and ``n_datasets``."""
        z = _z(_check_alpha(alpha))
        e = self.estimates
        out = {}
        for name, g in e.groupby("parameter", sort=False):
            K = len(g)
            err = g.estimate - g.truth
            covered = (np.abs(err) <= z * g.se).to_numpy()
            c = float(covered.mean())
            out[name] = {
                "truth": float(g.truth.iloc[0]),
                "mean": float(g.estimate.mean()),
                "bias": float(err.mean()),
                "bias_se": float(err.std(ddof=1) / np.sqrt(K)),
                "rmse": float(np.sqrt((err**2).mean())),
                "sd": float(g.estimate.std(ddof=1)),
                "mean_se": float(g.se.mean()),
                "coverage": c,
                "coverage_se": float(np.sqrt(c * (1 - c) / K)),
                "n_datasets": K,
            }
        return pd.DataFrame.from_dict(out, orient="index").rename_axis("parameter")

    def jtest_rejection(self, alpha: float = 0.05) -> dict | None:
        """The share of datasets whose J test rejects at ``alpha`` (≈ ``alpha`` when the test has
        its size), with its Monte Carlo SE; None without optimal weighting."""
        if self.jtests.empty:
            return None
        r = float((self.jtests.pvalue < _check_alpha(alpha)).mean())
        K = len(self.jtests)
        return {"rate": r, "se": float(np.sqrt(max(r * (1 - r), 1e-12) / K)), "n_datasets": K, "alpha": alpha}

    def summary(self, alpha: float = 0.05) -> str:
        t = self.table(alpha)
        s = self.settings
        lines = [
            f"Parameter recovery: {s['n_datasets']} synthetic datasets of {s['n_obs']} firm(s) × {self.config.periods} periods",
            f"weighting={s['weighting']} trials/step={s['n_trials']} sampler={s['sampler']} R={s['replicates']} "
            f"seed={s['seed']}; moments: {', '.join(self.moment_names)}",
            f"{'parameter':<26}{'truth':>9}{'mean':>9}{'bias':>9}{'(MC se)':>9}{'rmse':>9}{'sd':>9}{'mean se':>9}"
            f"{'coverage':>10}{'(MC se)':>9}",
        ]
        for name, r in t.iterrows():
            lines.append(
                f"{name:<26}{r.truth:>9.4g}{r['mean']:>9.4g}{r.bias:>9.3g}{r.bias_se:>9.2g}{r.rmse:>9.3g}{r.sd:>9.3g}"
                f"{r.mean_se:>9.3g}{r.coverage:>10.2f}{r.coverage_se:>9.2f}"
            )
        j = self.jtest_rejection(alpha)
        if j:
            lines.append(f"J test rejection rate at {alpha:g}: {j['rate']:.2f} (MC se {j['se']:.2f})")
        lines.append(
            f"coverage: share of {100 * (1 - alpha):g}% Wald intervals (sandwich SE) holding the truth"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<RecoveryResult datasets={self.settings['n_datasets']} parameters={list(self.truth.index)}>"

    def plot(self, alpha: float = 0.05):
        """Per parameter: each dataset's estimate and Wald interval against the truth. Returns
        the figure."""
        plt = _pyplot()
        z = _z(_check_alpha(alpha))
        names = list(self.truth.index)
        t = self.table(alpha)
        fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.8), squeeze=False)
        for ax, name in zip(axes[0], names):
            g = self.estimates[self.estimates.parameter == name].sort_values("estimate")
            y = np.arange(len(g))
            covered = np.abs(g.estimate - g.truth) <= z * g.se
            for ok, colour, label in (
                (True, "#4c72b0", "interval holds the truth"),
                (False, "#c44e52", "misses"),
            ):
                sel = covered.to_numpy() == ok
                ax.errorbar(g.estimate[sel], y[sel], xerr=z * g.se[sel], fmt="o", ms=3, color=colour, lw=0.8,
                            label=label)  # fmt: skip
            ax.axvline(self.truth[name], color="black", ls="--", label="truth")
            lo, hi = self.bounds[name]
            ax.set_xlim(lo, hi)
            ax.set_xlabel(f"{name} (parameter units)")
            ax.set_ylabel("synthetic dataset (sorted by estimate)")
            ax.set_title(f"{name}: coverage {t.loc[name, 'coverage']:.2f}")
            ax.legend(fontsize=7)
        fig.suptitle(
            f"Recovery over {self.settings['n_datasets']} synthetic datasets ({100 * (1 - alpha):g}% Wald intervals)"
        )
        fig.tight_layout()
        return fig


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
class _Parser:
    @staticmethod
    def make():
        import argparse

        class Parser(argparse.ArgumentParser):
            def error(self, message):  # one line and exit status 2
                self.exit(2, f"{_PROG}: error: {' '.join(message.split())}\n")

        p = Parser(
            prog=_PROG,
            description="Fit a conf/calibration config to observed data by the simulated method of moments. "
            "The study lives in OUT/study.journal: run the same command again to resume after an interruption.",
        )
        p.add_argument("name", help="a conf/calibration file (e.g. beer_game, default_firm)")
        p.add_argument(
            "overrides", nargs="*", help="model overrides key=value, and calibration.KEY=VALUE settings"
        )
        p.add_argument("--data", required=True, help="observed KPI series or team records (.csv or .parquet)")
        p.add_argument("--teams", default=None, help="team records beside KPI series in --data")
        p.add_argument("--out", default=None, help="output directory (default outputs/calibration/NAME)")
        p.add_argument("--trials", type=int, default=None, help="trials per search step")
        p.add_argument("--batch-size", type=int, default=None, help="candidates per kernel call")
        p.add_argument("--replicates", type=int, default=None, help="simulated firms per candidate")
        p.add_argument("--sampler", choices=("tpe", "cmaes"), default=None)
        p.add_argument("--weighting", choices=WEIGHTINGS, default=None)
        p.add_argument("--seed", type=int, default=0, help="seed of the simulated replicates (default 0)")
        p.add_argument("--jobs", type=int, default=None, help="numba threads (default all)")
        p.add_argument("--alpha", type=float, default=0.05, help="intervals at 1 - alpha (default 0.05)")
        p.add_argument("--no-plots", action="store_true", help="write no figures")
        p.add_argument(
            "--config-dir", action="append", default=[], help="a directory with calibration/*.yaml"
        )
        p.add_argument("--quiet", action="store_true", help="no progress lines")
        return p


def _given(option, setting):
    """A command-line option when given (0 included), else the calibration file's setting."""
    return setting if option is None else option


def _split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    model, cal = [], []
    for ov in overrides:
        if "=" not in ov:
            raise ValueError(
                f"override {ov!r}, must be key=value (e.g. periods=52 or calibration.n_trials=100)"
            )
        (cal if ov.lstrip("+").startswith("calibration.") else model).append(ov)
    return model, cal


def main(argv: list[str] | None = None) -> int:
    """``orgsim-calibrate NAME --data PATH [--out DIR] [--trials N] [overrides...]``.

    Prints progress lines on standard error and the summary on standard output; writes the
    estimates, intervals, moment table, identification table, summary and figures into the
    output directory, whose ``study.journal`` holds the Optuna study: rerun the same command
    after a kill and it resumes without repeating finished trials. A bad input is one line on
    standard error and exit status 2; another failure exit status 1.
    """
    from .plots import use_headless_backend

    use_headless_backend()
    try:
        args = _Parser.make().parse_intermixed_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    out = Path(args.out if args.out is not None else Path("outputs") / "calibration" / args.name)
    try:
        model_ov, cal_ov = _split_overrides(args.overrides)
        settings = calibration_settings(args.name, cal_ov, config_dirs=args.config_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {str(out)!r} is a file, must be a directory")
        journal = out / "study.journal"
        if journal.exists() and journal.stat().st_size > 0 and not args.quiet:
            print(f"{_PROG}: resuming the study in {journal}", file=sys.stderr, flush=True)

        def progress(info):
            if not args.quiet:
                best = info["best_loss"]
                print(f"{_PROG}: {info['step']}: {info['done']}/{info['total']} trials, best loss {best:.6g}",
                      file=sys.stderr, flush=True)  # fmt: skip

        if settings.get("params") is None:
            raise ConfigError(f"conf/calibration/{args.name}.yaml sets no params")
        result = calibrate(
            args.data, teams=args.teams, params=settings["params"], moments=settings.get("moments"),
            overrides=[*settings.get("overrides", []), *model_ov],
            weighting=_given(args.weighting, settings.get("weighting")),
            n_trials=_given(args.trials, settings.get("n_trials")),
            sampler=_given(args.sampler, settings.get("sampler")),
            replicates=_given(args.replicates, settings.get("replicates")),
            batch_size=_given(args.batch_size, settings.get("batch_size")), se_replicates=settings.get("se_replicates"),
            skip=settings.get("skip"), storage=journal, seed=args.seed, n_jobs=args.jobs, progress=progress,
        )  # fmt: skip
        result.calibration_name = args.name
        _check_alpha(args.alpha)
    except (ConfigError, ObservedDataError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"{_PROG}: error: {first}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"{_PROG}: error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    try:
        written = result.save(out, alpha=args.alpha, plots=not args.no_plots)
    except OSError as exc:
        print(f"{_PROG}: error: cannot write into {out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(result.summary(args.alpha))
    for path in written.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
