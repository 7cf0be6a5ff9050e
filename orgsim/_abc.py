"""Approximate Bayesian computation by sequential Monte Carlo (ABC-SMC, private).

The adaptive population Monte Carlo sampler of Beaumont, Cornuet, Marin & Robert (2009,
Biometrika 96(4), 983–990), with the tolerance of each generation set to a quantile of the
previous generation's accepted distances (Del Moral, Doucet & Jasra 2012, Statistics and
Computing 22, 1009–1020; Drovandi & Pettitt 2011):

1. Generation 0: draw ``n_particles / quantile`` points from the uniform prior on the bounds,
   keep the ``n_particles`` closest to the observed summary statistics (ε₀ = the largest
   distance kept), equal weights.
2. Generation t: ε_t = the ``quantile`` of generation t−1's distances. Propose θ* by drawing a
   particle of generation t−1 by its weight and moving it by a Gaussian kernel with the
   diagonal covariance 2·Var_w (twice the weighted variance, Beaumont et al. 2009); a point
   outside the bounds (prior density 0) is drawn again, ancestor and move. Simulate; accept
   θ* if its distance is at most ε_t, until ``n_particles`` are accepted. Weight
   w_i ∝ π(θ_i) / Σ_j w_j K(θ_i | θ_j) (the kernel's normalising constants and the constant
   prior cancel, since rejected moves are redrawn from the whole mixture).
3. Stop after ``generations`` generations, or when the acceptance rate falls below
   ``min_acceptance`` or the simulations exceed ``max_simulations``.

Proposals are simulated in batches (one call of ``simulate`` per batch), which is what lets
orgsim run a whole batch of particles in one kernel call. Randomness comes from one
``numpy.random.Generator`` (SPEC 7).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

__all__ = ["ABCPosterior", "abc_smc", "weighted_quantile"]

FRAME_COLUMNS = ("mean", "mean_se", "mean_ci_lower", "mean_ci_upper")


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q) -> np.ndarray:
    """Quantiles ``q`` of weighted draws: the inverse of the weighted empirical distribution,
    interpolated between the midpoints of the sorted draws' weights (Hyndman & Fan's type 5
    for equal weights)."""
    order = np.argsort(values)
    v, w = np.asarray(values, dtype=float)[order], np.asarray(weights, dtype=float)[order]
    cum = (np.cumsum(w) - 0.5 * w) / w.sum()
    return np.interp(np.atleast_1d(q), cum, v)


def _check(name: str, value, lo, hi=None, integer=True):
    ok = (
        isinstance(value, int | np.integer)
        if integer
        else isinstance(value, int | float | np.integer | np.floating)
    )
    if isinstance(value, bool) or not ok or value < lo or (hi is not None and value > hi):
        kind = "an integer" if integer else "a number"
        rule = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} == {value!r}, must be {kind} {rule}")
    return value


def abc_smc(
    simulate: Callable[[np.ndarray], np.ndarray],
    observed: np.ndarray,
    bounds: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    weight: np.ndarray | None = None,
    n_particles: int = 500,
    generations: int = 8,
    quantile: float = 0.5,
    min_acceptance: float = 0.01,
    max_simulations: int | None = None,
    batch_size: int | None = None,
    rng=None,
) -> ABCPosterior:
    """Sample an ABC posterior for a uniform prior on ``bounds``.

    Parameters
    ----------
    simulate : callable
        ``simulate(points)`` with ``points`` of shape ``[n, P]`` returns the summary statistics
        ``[n, M]`` of one fresh simulated dataset per point (new random numbers on every call).
    observed : array of shape (M,)
        The observed summary statistics.
    bounds : array of shape (P, 2)
        The prior: uniform on ``[low, high]`` per parameter.
    weight : array of shape (M, M), optional
        The distance is ``sqrt((s − observed)' weight (s − observed))``; identity by default.
    n_particles, generations, quantile, min_acceptance, max_simulations
        Population size, the most generations, the quantile of the last distances that sets
        the next tolerance, and the stopping rules (see the module docstring).
    batch_size : int, optional
        Most proposals per call of ``simulate`` (default ``2 * n_particles``).
    rng : int, SeedSequence or Generator, optional
        SPEC 7.

    Returns
    -------
    ABCPosterior

    Examples
    --------
    A normal mean with known variance: the posterior of μ given the sample mean of 20 draws
    is about N(ȳ, 1/20).

    >>> import numpy as np
    >>> from orgsim._abc import abc_smc
    >>> gen = np.random.default_rng(1)
    >>> sim = lambda th: th[:, :1] + gen.standard_normal((len(th), 1)) / np.sqrt(20)
    >>> post = abc_smc(sim, np.array([0.3]), np.array([[-3.0, 3.0]]), n_particles=300, rng=2)
    >>> bool(abs(post.summary_frame()["mean"].iloc[0] - 0.3) < 0.1)
    True
    """
    rng = np.random.default_rng(rng)
    bounds = np.asarray(bounds, dtype=np.float64)
    if bounds.ndim != 2 or bounds.shape[1] != 2 or not np.all(bounds[:, 0] < bounds[:, 1]):
        raise ValueError(
            f"bounds == {bounds.tolist()!r}, must be a list of (low, high) pairs with low < high"
        )
    P = bounds.shape[0]
    names = list(names) if names is not None else [f"x{j}" for j in range(P)]
    observed = np.asarray(observed, dtype=np.float64).ravel()
    W = np.eye(observed.size) if weight is None else np.asarray(weight, dtype=np.float64)
    _check("n_particles", n_particles, 10)
    _check("generations", generations, 1)
    if not 0.0 < float(quantile) < 1.0:
        raise ValueError(f"quantile == {quantile!r}, must be in (0, 1)")
    _check("min_acceptance", min_acceptance, 0.0, 1.0, integer=False)
    batch_size = 2 * n_particles if batch_size is None else _check("batch_size", batch_size, 1)
    max_simulations = (
        np.inf if max_simulations is None else _check("max_simulations", max_simulations, n_particles)
    )
    lo, hi = bounds[:, 0], bounds[:, 1]

    def distance(points):
        s = np.asarray(simulate(points), dtype=np.float64)
        d = s - observed
        with np.errstate(invalid="ignore"):
            out = np.sqrt(np.einsum("ij,jk,ik->i", d, W, d))
        return np.where(np.isfinite(out), out, np.inf)

    # generation 0: rejection from the prior
    n0 = int(np.ceil(n_particles / quantile))
    pts = lo + (hi - lo) * rng.random((n0, P))
    dist = np.concatenate([distance(pts[i : i + batch_size]) for i in range(0, n0, batch_size)])
    keep = np.argsort(dist, kind="stable")[:n_particles]
    theta, d, w = pts[keep], dist[keep], np.full(n_particles, 1.0 / n_particles)
    history = [
        {
            "generation": 0,
            "epsilon": float(d.max()),
            "acceptance": n_particles / n0,
            "simulations": n0,
            "ess": float(n_particles),
        }
    ]
    total = n0
    stopped = "generations"
    for t in range(1, generations):
        eps = float(np.quantile(d, quantile))
        mean = w @ theta
        sd = np.sqrt(np.maximum(2.0 * (w @ (theta - mean) ** 2), 1e-24 * (hi - lo) ** 2))
        acc_theta, acc_d, tried = [], [], 0
        rate = history[-1]["acceptance"]
        while sum(len(a) for a in acc_theta) < n_particles:
            need = n_particles - sum(len(a) for a in acc_theta)
            m = int(min(batch_size, max(need, np.ceil(need / max(rate, 0.05)))))
            prop = np.empty((0, P))
            while len(prop) < m:  # the mixture restricted to the prior's support
                anc = rng.choice(n_particles, size=2 * m, p=w)
                cand = theta[anc] + sd * rng.standard_normal((2 * m, P))
                prop = np.vstack([prop, cand[np.all((cand >= lo) & (cand <= hi), axis=1)]])
            prop = prop[:m]
            dd = distance(prop)
            tried += m
            ok = dd <= eps
            acc_theta.append(prop[ok])
            acc_d.append(dd[ok])
            rate = max(ok.mean(), 1.0 / m)
            if total + tried > max_simulations:
                break
        new_theta = np.vstack(acc_theta)[:n_particles]
        new_d = np.concatenate(acc_d)[:n_particles]
        total += tried
        acceptance = len(np.concatenate(acc_d)) / tried
        if len(new_theta) < n_particles:
            stopped = "max_simulations"
            break
        # w_i ∝ 1 / Σ_j w_j K(θ_i | θ_j), K Gaussian with sd ``sd`` (constants cancel)
        z = (new_theta[:, None, :] - theta[None, :, :]) / sd
        log_k = -0.5 * np.sum(z * z, axis=2)
        shift = log_k.max(axis=1, keepdims=True)
        mix = (np.exp(log_k - shift) @ w) * np.exp(shift[:, 0])
        new_w = 1.0 / np.maximum(mix, 1e-300)
        new_w /= new_w.sum()
        theta, d, w = new_theta, new_d, new_w
        history.append(
            {
                "generation": t,
                "epsilon": eps,
                "acceptance": acceptance,
                "simulations": tried,
                "ess": float(1.0 / np.sum(w * w)),
            }
        )
        if acceptance < min_acceptance:
            stopped = "min_acceptance"
            break
        if total > max_simulations:
            stopped = "max_simulations"
            break
    return ABCPosterior(theta, w, d, names, bounds, pd.DataFrame(history), stopped)


class ABCPosterior:
    """Weighted particles of an ABC-SMC run (:func:`abc_smc`).

    Attributes
    ----------
    particles : pandas.DataFrame
        One row per particle, one column per parameter.
    weights : numpy.ndarray
        Normalised importance weights.
    distances : numpy.ndarray
    history : pandas.DataFrame
        Per generation: tolerance ``epsilon``, acceptance rate, simulations, effective sample
        size ``ess`` (1 / Σ w²).
    stopped : str
        Why sampling stopped: ``generations``, ``min_acceptance`` or ``max_simulations``.
    """

    def __init__(self, theta, weights, distances, names, bounds, history, stopped, estimate=None):
        self.particles = pd.DataFrame(theta, columns=list(names))
        self.weights = np.asarray(weights)
        self.distances = np.asarray(distances)
        self.bounds = np.asarray(bounds)
        self.history = history
        self.stopped = stopped
        self.estimate = estimate  # an SMM estimate to mark in the plots (Series), if any

    @property
    def ess(self) -> float:
        return float(1.0 / np.sum(self.weights**2))

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Posterior mean, posterior standard deviation (``mean_se``) and the equal-tailed
        ``(1 − alpha)`` credible interval (weighted quantiles) per parameter."""
        if not 0.0 < float(alpha) < 1.0:
            raise ValueError(f"alpha == {alpha!r}, must be in (0, 1), e.g. 0.05 for 95% intervals")
        rows = {}
        for name in self.particles.columns:
            x = self.particles[name].to_numpy()
            m = float(self.weights @ x)
            sd = float(np.sqrt(self.weights @ (x - m) ** 2))
            lo, hi = weighted_quantile(x, self.weights, [alpha / 2, 1 - alpha / 2])
            rows[name] = (m, sd, lo, hi)
        return pd.DataFrame.from_dict(rows, orient="index", columns=list(FRAME_COLUMNS))

    def summary(self, alpha: float = 0.05) -> str:
        last = self.history.iloc[-1]
        level = f"{100 * (1 - alpha):g}%"
        lines = [
            "ABC-SMC posterior (Beaumont et al. 2009 adaptive PMC; uniform prior on the bounds)",
            f"particles: {len(self.particles)}, effective sample size {self.ess:.0f}; generations: "
            f"{len(self.history)} (stopped: {self.stopped}); simulations: {int(self.history.simulations.sum()):,}",
            f"final tolerance ε = {last.epsilon:.4g}, last acceptance rate {last.acceptance:.3f}",
            f"{'parameter':<28}{'mean':>12}{'sd':>12}{level + ' credible interval':>32}",
        ]
        for name, row in self.summary_frame(alpha).iterrows():
            interval = f"[{row.mean_ci_lower:.4g}, {row.mean_ci_upper:.4g}]"
            lines.append(f"{name:<28}{row['mean']:>12.4g}{row.mean_se:>12.4g}{interval:>32}")
        lines.append("sd: posterior standard deviation; interval: equal-tailed, from the weighted particles")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ABCPosterior particles={len(self.particles)} generations={len(self.history)} ess={self.ess:.0f}>"

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(self.summary()) + "</pre>"

    def plot(self, alpha: float = 0.05):
        """Marginal posterior histograms (weighted), with the credible interval and, if known,
        the SMM estimate; and the tolerance per generation. Returns the figure."""
        import matplotlib.pyplot as plt

        names = list(self.particles.columns)
        fig, axes = plt.subplots(1, len(names) + 1, figsize=(3.6 * (len(names) + 1), 3.4), squeeze=False)
        frame = self.summary_frame(alpha)
        for ax, name, (lo, hi) in zip(axes[0], names, self.bounds):
            ax.hist(self.particles[name], bins=30, range=(lo, hi), weights=self.weights, density=True,
                    color="#4c72b0", alpha=0.7, label="posterior")  # fmt: skip
            ax.axvspan(frame.loc[name, "mean_ci_lower"], frame.loc[name, "mean_ci_upper"], color="#4c72b0",
                       alpha=0.12, label=f"{100 * (1 - alpha):g}% credible interval")  # fmt: skip
            if self.estimate is not None and name in self.estimate.index:
                ax.axvline(self.estimate[name], color="#c44e52", lw=1.5, label="SMM estimate")
            ax.set_xlabel(f"{name} (parameter units)")
            ax.set_ylabel("posterior density (per unit)")
            ax.set_title(name)
            ax.legend(fontsize=7)
        ax = axes[0][-1]
        ax.plot(self.history.generation, self.history.epsilon, marker="o", label="tolerance ε")
        ax.set_yscale("log")
        ax.set_xlabel("generation")
        ax.set_ylabel("tolerance ε (weighted distance)")
        ax.set_title("ABC-SMC tolerance schedule")
        ax.legend(fontsize=7)
        fig.suptitle(f"ABC-SMC posterior ({len(self.particles)} particles, ESS {self.ess:.0f})")
        fig.tight_layout()
        return fig
