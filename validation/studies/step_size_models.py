"""The learned score models of the step-size study, and the samplers run with them.

The training sets, the chain of score nets fitted down the sampler's grid (each
warm-started from the one before), their classes, the wrapper that puts the nets
into the score-model protocol on that grid only, and the sampler's memorisation
metrics. See the ``step_size_memorization`` study for the protocol.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri
from scipy.stats import kstest

import numdiff as nd
from numdiff import nets
from numdiff.metrics import nearest_ratio
from theory.mixture import mixture_sample

from .common import wilson_ci
from .gd_regression import curvature, fit, stable_start

#: Nearest over second-nearest training distance below which a sample is memorised.
THRESHOLD = 1.0 / 3.0
#: Relative tolerance for matching a requested time to a grid time.
GRID_RTOL = 1e-12
#: Net classes whose parameters are replaced by the best constant.
UNUSABLE = ("no stable start", "diverged")
#: Halvings tried by warm_start (as numdiff.nets.init_stable: 2^-60 ~ 1e-18).
MAX_HALVINGS = 60


class GridScoreModel:
    """A score model defined only on a time grid, by one noise predictor per grid time.

    Parameters
    ----------
    schedule : numdiff.Schedule
    times : ndarray, shape (K,)
        The grid times at which the model can be asked.
    eps : list of callable
        ``eps[i](x)`` predicts ``-sigma_t s(t_i, x)`` for ``x`` of shape (M,).

    Notes
    -----
    ``denoise(t, x) = (x - sigma_t eps(x)) / alpha_t``, i.e.
    ``(x + sigma_t^2 s) / alpha_t`` with ``s = -eps / sigma_t`` (Tweedie).
    """

    dim = 1

    def __init__(self, schedule, times, eps):
        if len(times) != len(eps):
            raise ValueError(f"need one predictor per time; got {len(eps)} for {len(times)}")
        self.schedule = schedule
        self.times = np.asarray(times, dtype=np.float64)
        self.eps = list(eps)

    def index(self, t):
        """Grid index of ``t``; ``ValueError`` if ``t`` is not a grid time."""
        t = float(t)
        i = int(np.argmin(np.abs(self.times - t)))
        if abs(self.times[i] - t) > GRID_RTOL * abs(t):
            raise ValueError(f"t = {t!r} is not a time of the model's grid; sample on that grid")
        return i

    def denoise(self, t, x):
        """``E[X_0 | X_t = x]`` from the noise predictor of grid time ``t``.

        Parameters
        ----------
        t : float
            A grid time (any other raises ``ValueError``).
        x : ndarray, shape (M, 1)

        Returns
        -------
        ndarray, shape (M, 1)
        """
        i = self.index(t)
        alpha = float(self.schedule.alpha(t))
        sigma = float(np.sqrt(self.schedule.sigma2(t)))
        return (x - sigma * self.eps[i](x[:, 0])[:, None]) / alpha


class ConstantNoise:
    """The best constant noise predictor, for a net that left no usable parameters."""

    def __init__(self, value):
        self.value = float(value)

    def __call__(self, x):
        return np.full(x.shape, self.value)


class NetNoise:
    """The noise predictor of one trained net."""

    def __init__(self, params):
        self.params = params

    def __call__(self, x):
        return nets.predict(self.params, x)


def training_points(config):
    """One point in each of ``N`` equal-probability strata of ``N(0, 1)``, shape (N, 1)."""
    n_data = config["n_data"]
    rng = np.random.default_rng([config["base_seed"], n_data, config["replicate"]])
    return ndtri((np.arange(n_data) + rng.uniform(0.25, 0.75, n_data)) / n_data)[:, None]


def min_gap(data):
    """Smallest distance between two training points (1-D)."""
    return float(np.diff(np.sort(data[:, 0])).min())


def setting(config):
    """Data, ``delta`` (``sigma_delta = min gap / gap_ratio``), grid and schedule."""
    data = training_points(config)
    sigma = min_gap(data) / config["gap_ratio"]
    delta = float(-0.5 * np.log1p(-sigma**2))  # OU: sigma_t^2 = 1 - exp(-2 t)
    schedule = nd.OU()
    times = nd.grids.uniform_lambda(schedule, config["T"], delta, config["steps"])
    return data, delta, times, schedule


def training_sets(config, data, times, schedule):
    """Exact samples of ``p_t`` and targets ``-sigma_t s_hat(t, x)`` at each sampler time."""
    score = nd.EmpiricalScore(data, schedule)
    n_fit = max(config["n_fit"], config["fit_per_point"] * config["n_data"])
    out = []
    for i, t in enumerate(times[:-1]):
        alpha, sigma2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
        rng = np.random.default_rng([config["base_seed"], config["n_data"],
                                     config["replicate"], i])
        x = mixture_sample(n_fit, data, alpha, sigma2, rng)
        out.append((x[:, 0], -np.sqrt(sigma2) * score.score(float(t), x)[:, 0]))
    return out


def run_sampler(model, config, delta, times):
    """Reverse SDE on ``times``; its noise depends only on (N, replicate), so it is
    shared across eta and with the exact score's run (common random numbers)."""
    rng = np.random.default_rng([config["base_seed"], config["n_data"], config["replicate"], 1])
    return nd.sample(model, config["n_samples"], T=config["T"], delta=delta,
                     steps=times.size - 1, process="sde", solver="exp_em", grid=times,
                     rng=rng, progress=False).x


def sample_metrics(x, data):
    """Memorised count, spread, distance to the training points and to ``N(0, 1)``."""
    finite = np.isfinite(x[:, 0])
    n = x.shape[0]
    out = {"n": n, "finite": int(finite.sum()), "memorized": 0, "spread": np.nan,
           "nearest": np.nan, "ks": 1.0}
    if finite.any():
        kept = x[finite]
        out["memorized"] = int(np.sum(nearest_ratio(kept, data) < THRESHOLD))
        out["spread"] = float(kept.std() / data.std())
        gaps = np.abs(kept - data[:, 0][None, :]).min(axis=1)
        out["nearest"] = float(gaps.mean() / min_gap(data))
        out["ks"] = float(kstest(kept[:, 0], "norm").statistic)
    out["ci"] = wilson_ci(out["memorized"], n)
    return out


def squared_offsets(x, data, sigma):
    """Mean and variance of ``(distance to the nearest training point / sigma_delta)^2``.

    About 1 for exact ``p_delta`` samples of well separated points; far more
    sensitive to the noise level at ``delta`` than the memorised fraction, which
    is close to 1 there.
    """
    offsets = (np.abs(x - data[:, 0][None, :]).min(axis=1) / sigma) ** 2
    return {"mean": float(offsets.mean()), "var": float(offsets.var(ddof=1)), "n": len(offsets)}


def in_figure(config):
    """Whether this (N, replicate) is the one of the Figure 4 panel."""
    return config["n_data"] == config["figure"]["n_data"] and config["replicate"] == 0


def figure_points(config):
    """Where the Figure 4 panel evaluates the scores."""
    return np.linspace(-config["figure"]["x_max"], config["figure"]["x_max"],
                       config["figure"]["points"])


def figure_indices(config, times):
    """Grid indices nearest (in log t) to the figure's times, below the last one."""
    grid = np.log(times[:-1])
    return [int(np.argmin(np.abs(grid - np.log(t)))) for t in config["figure"]["times"]]


def n_steps(config):
    """Steps for the fixed training time ``eta x steps``."""
    return max(config["min_steps"], int(np.ceil(config["train_time"] / config["eta"])))


def warm_start(params, x, y, eta, margin):
    """The previous time's net, its hidden weights halved until ``lambda_max <= margin 2 / eta``.

    The rule of :func:`numdiff.nets.init_stable` applied to a warm start: halving
    ``w1, b1, w2`` keeps the knots and scales ``f - b2`` by 1/4. None when no
    halving reaches the target (then the chain restarts from a fresh draw).
    """
    theta = np.array(params, dtype=np.float64)
    k = (theta.size - 1) // 3
    for _ in range(MAX_HALVINGS):
        if nets.lambda_max(theta, x, y) <= margin * 2.0 / eta:
            return theta
        theta[:3 * k] *= 0.5
    return None


def fit_chain(sets, config):
    """The nets of one replicate, from ``T`` down, each started from the previous one.

    Neighbouring grid times have close targets, so each net starts from the one
    fitted just before (stabilised by :func:`warm_start`); the first net, and any
    net after one without usable parameters, starts from ``init_stable``.
    Every net is still the final iterate of gradient descent at step ``eta``.

    Returns
    -------
    list of (dict, callable)
        Per time: the net's record (class, fit error, curvature) and its noise
        predictor.
    """
    eta, steps = config["eta"], n_steps(config)
    k = max(config["width"], config["width_per_point"] * config["n_data"])
    previous, out = None, []
    for i, (x, y) in enumerate(sets):
        if previous is None:
            rng = np.random.default_rng([config["base_seed"], config["n_data"],
                                         config["replicate"], i, 3])
            start = stable_start(x, y, k, eta, rng, config["margin"])
        else:
            start = warm_start(previous, x, y, eta, config["margin"])
        cls, run = fit(x, y, eta, start, steps, config["tol"])
        if cls in UNUSABLE:
            previous, predictor = None, ConstantNoise(y.mean())
            record = {"class": cls}
        else:
            previous, predictor = run.params, NetNoise(run.params)
            tighter = config["tol"] * config["tight_factor"] if cls == "converged" else None
            record = {"class": cls, **curvature(run, x, y, eta, tighter, steps)}
        record["rel_error"] = _relative_error(predictor(x), y)
        out.append((record, predictor))
    return out


def _relative_error(prediction, y):
    """Root mean square error over the targets' standard deviation."""
    return float(np.sqrt(np.mean((prediction - y) ** 2)) / max(y.std(), 1e-300))


def model_class(records, sigmas, metrics, config, gap):
    """``failed``, ``smooth`` or ``resolving`` (rules in the module docstring)."""
    errors = np.array([r["rel_error"] for r in records])
    broken = any(r["class"] in UNUSABLE + ("dead",) for r in records)
    smooth_miss = np.any(errors[sigmas >= config["smooth_sigma"]] > config["err_ok"])
    low, high = config["spread_band"]
    bad_samples = metrics["finite"] < metrics["n"] or not low <= metrics["spread"] <= high
    if broken or smooth_miss or bad_samples:
        return "failed"
    return "resolving" if np.all(errors[sigmas >= gap / 2] <= config["err_ok"]) else "smooth"


def resolved_sigma(records, sigmas, err_ok):
    """Smallest ``sigma_t`` down to which every net (from ``T``) has error <= ``err_ok``."""
    reached = np.inf
    for record, sigma in zip(records, sigmas):
        if record["rel_error"] > err_ok:
            break
        reached = sigma
    return float(reached)


def wrapper_gap(model, score, sets, records):
    """Largest difference between a net's fit error and the model's error in eps units.

    The model's denoiser is compared with the exact one on each net's training
    inputs; ``alpha (D_model - D_exact) / sigma`` is the net's noise prediction
    minus the exact one, so its relative size must be the net's own fit error:
    this catches a sign or a power of ``sigma`` lost between targets and wrapper.
    """
    gaps = []
    for t, (x, y), record in zip(model.times, sets, records):
        alpha = float(model.schedule.alpha(t))
        sigma = float(np.sqrt(model.schedule.sigma2(t)))
        diff = model.denoise(t, x[:, None]) - score.denoise(float(t), x[:, None])
        implied = np.sqrt(np.mean((alpha * diff[:, 0] / sigma) ** 2)) / max(y.std(), 1e-300)
        gaps.append(abs(implied - record["rel_error"]))
    return float(max(gaps))
