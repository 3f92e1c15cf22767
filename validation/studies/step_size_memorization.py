"""Study 11: does a large step size prevent memorisation? (the seed's Section 3.1 conjecture)

The seed conjectures that since gradient descent at step ``eta`` only settles
where the network is smooth (weighted TV at most about ``1/eta - 1/2``), and the
empirical optimal score ``s_hat`` is far from smooth for few data points
(its Figure 4), a score learned with a large step cannot reproduce ``s_hat``
and so does not memorise. This study tests that, and reports what it finds.

*Data.* ``N`` points in 1-D, one in each of ``N`` equal-probability strata of
``N(0, 1)``, at a uniform position in the central half of its stratum: a
sample of a known law whose neighbours are at least half a stratum apart. OU
forward process, ``T = 4``; the early-stopping time ``delta`` is set per data
set so that ``sigma_delta`` is the smallest gap between points over
``gap_ratio``: then a sample of the exact ``p_delta`` sits well inside its
point's cell and the memorised fraction (nearest over second-nearest training
distance below 1/3) is not capped by the noise left at ``delta``. Samples are
read at ``delta``, not denoised, so the last net plays no special part.

*Learned score.* On the sampler's own grid (``steps`` steps uniform in
``lambda = log(alpha / sigma)`` from ``T`` to ``delta``) one two-layer ReLU net
per grid time, ``k = max(width, width_per_point N)`` neurons, is fitted by
gradient descent (:mod:`numdiff.nets`, stable start) to ``n_fit`` exact samples
``x ~ p_t`` with the exact targets ``-sigma_t s_hat(t, x) = E[eps | X_t = x]``
(the noise prediction). Exact targets rather than the denoising targets
``eps``: those scatter around ``-sigma_t s_hat`` with a variance of order 1,
and that label noise would be a second reason for a smooth fit; with exact
targets only the optimiser and the stability of its minima stand between the
net and ``s_hat``. The factor ``sigma_t``: ``s_hat`` grows like ``1 / sigma_t``
at small ``t``, so one ``eta`` would be a far larger effective step there;
``sigma_t s_hat`` is of order 1 at every ``t``, so one ``eta`` means the same
relative step at every time and the bound ``1/eta - 1/2`` constrains the same
quantity. Its roughness is kept: inside each point's cloud the target has
slope ``1 / sigma_t``. Each run has
the same training time ``eta x steps`` (``max(min_steps, train_time / eta)``
steps), so the small steps are not stopped earlier than the large ones. The
nets are fitted from ``T`` down, each started from the one before it (targets
at neighbouring grid times are close), its hidden weights halved until its
curvature is below 0.9 times ``2 / eta`` as in ``init_stable``; the first net
starts from ``init_stable``. Gradient descent from a cold start reaches the
fine structure at ``sigma_t`` below the gap far more slowly.

*References.* The memorised fraction of exact ``p_delta`` samples, of the
exact score ``s_hat`` on the same grid with the same noise, and of samples of
the true law ``N(0, 1)``: in 1-D a point of a smooth law falls within a
quarter gap of its nearest training point about half of the time, so about 1/2
is the level of a model that does not memorise at all, not 0.

*Sampling.* :class:`GridScoreModel` wraps the nets in the score-model protocol
(``denoise = (x - sigma_t eps) / alpha_t``) and refuses any time off its grid;
``nd.sample`` runs the reverse SDE (``exp_em``) on the same grid, so each net is
evaluated only at its own time. A net without a usable result (no stable
start, diverged) is replaced by the best constant, ``mean(y)``. The noise of
the sampler is shared across ``eta`` and with the exact-score run on the same
grid (common random numbers).

*Classes of models.* *failed*: some net had no stable start, diverged or died,
or a net at a smooth time (``sigma_t >= smooth_sigma``) misses its targets by
more than ``err_ok`` (relative root mean square error), or the samples are not
finite or their spread is outside ``spread_band`` times the data's. Otherwise
the model is *resolving* when every net down to ``sigma_t = gap / 2`` (half the
smallest gap) has relative error at most ``err_ok``, and *smooth* when its
fits stop being accurate above that scale.

Claims (*theorems*, pass/fail): linear stability and the two TV bounds of
Liang, Qiao, Wang & Parhi (2025) for the nets, as in the ``stable_minima``
study; numdiff's sampler with the exact score, on the sampler's grid with each
step split in ``refine``, against exact ``p_delta``: its memorised fraction
(two-proportion z) and its mean squared distance to the nearest training point
in units of ``sigma_delta^2`` (Welch z; the fraction is near 1 at this
``delta`` and blind to the noise level, this is not), both within 4.5 s.e.
On the unrefined grid ``exp_em``'s first-order bias costs the exact score up to
about 1% of its memorised fraction (reported); the learned models are set
against that same-grid value. And the wrapper itself:
:class:`GridScoreModel` holding the exact noise prediction reproduces
``nd.sample`` with ``nd.EmpiricalScore``, and a learned model's denoiser error
equals its nets' fit errors.

Finding (not pass/fail): the conjecture predicts that the memorised fraction
falls as ``eta`` grows. A *replicate* is one training set with its own start
draws; for each, the least-squares slope of the memorised fraction on
``log10 eta``; per ``N`` (and pooled), the mean slope over the replicates with
a Student-t 95% interval, over all models and over the models that did not fail.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.special import ndtri
from scipy.stats import kstest

import numdiff as nd
from numdiff import nets
from numdiff.metrics import nearest_ratio
from theory.mixture import mixture_sample

from ..claims import Finding, at_most
from ..plotting import new_figure, save_figure
from ..report import markdown_table
from ..study import Study, Summary
from .common import SE_BAND, two_proportion_test, wilson_ci
from .stable_minima import LIVE, bound_ratio, curvature, fit, stable_start, t_interval

#: Nearest over second-nearest training distance below which a sample is memorised.
THRESHOLD = 1.0 / 3.0
#: Relative tolerance for matching a requested time to a grid time.
GRID_RTOL = 1e-12
#: Largest sample difference allowed between the wrapper with exact targets and nd.sample.
PROTOCOL_ABS = 1e-9
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


def reference_cell(config, seed):
    """Exact ``p_delta`` and true-law samples, the exact score on the sampler's grid and on
    a refined one, and the wrapper check."""
    data, delta, times, schedule = setting(config)
    score = nd.EmpiricalScore(data, schedule)
    alpha, sigma2 = float(schedule.alpha(delta)), float(schedule.sigma2(delta))
    rng = np.random.default_rng([config["base_seed"], config["n_data"], config["replicate"], 2])
    exact = mixture_sample(config["n_exact"], data, alpha, sigma2, rng)
    grid_samples = run_sampler(score, config, delta, times)
    # The same grid with every step split in `refine` (uniform in lambda, so nested).
    fine = nd.grids.uniform_lambda(schedule, config["T"], delta,
                                   config["steps"] * config["refine"])
    fine_samples = run_sampler(score, config, delta, fine)

    def exact_eps(t):
        sigma = float(np.sqrt(schedule.sigma2(t)))
        return lambda x: -sigma * score.score(float(t), x[:, None])[:, 0]

    wrapped = GridScoreModel(schedule, times[:-1], [exact_eps(t) for t in times[:-1]])
    protocol = run_sampler(wrapped, config, delta, times)
    sigma = float(np.sqrt(sigma2))
    out = {"data": data[:, 0], "delta": delta, "times": times, "min_gap": min_gap(data),
           "exact_grid": sample_metrics(grid_samples, data),
           "exact_fine": {**sample_metrics(fine_samples, data),
                          "offset": squared_offsets(fine_samples, data, sigma)},
           "exact_pdelta": {**sample_metrics(exact, data),
                            "offset": squared_offsets(exact, data, sigma)},
           "true_law": sample_metrics(rng.standard_normal((config["n_exact"], 1)), data),
           "protocol_error": float(np.max(np.abs(protocol - grid_samples)))}
    if in_figure(config):
        out["score_curves"] = [score.score(float(times[i]), figure_points(config)[:, None])[:, 0]
                               for i in figure_indices(config, times)]
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


def replicate(config):
    """One replicate (training set and start draws): its nets, samples and metrics."""
    data, delta, times, schedule = setting(config)
    sets = training_sets(config, data, times, schedule)
    chain = fit_chain(sets, config)
    records = [record for record, _ in chain]
    model = GridScoreModel(schedule, times[:-1], [predictor for _, predictor in chain])
    metrics = sample_metrics(run_sampler(model, config, delta, times), data)
    sigmas = np.sqrt(schedule.sigma2(times[:-1]))
    gap = min_gap(data)
    out = {"replicate": config["replicate"], "sigmas": sigmas, "gap": gap, "nets": records,
           **metrics,
           "wrapper_gap": wrapper_gap(model, nd.EmpiricalScore(data, schedule), sets, records),
           "class": model_class(records, sigmas, metrics, config, gap),
           "resolved_sigma": resolved_sigma(records, sigmas, config["err_ok"]) / gap}
    if in_figure(config):
        out["score_curves"] = [-chain[i][1](figure_points(config)) / sigmas[i]
                               for i in figure_indices(config, times)]
    return out


def model_cell(config, seed):
    """Every replicate at one (N, eta), on parallel threads (the GD loop releases the GIL)."""
    jobs = [{**config, "replicate": r} for r in range(config["seeds"])]
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    with ThreadPoolExecutor(min(workers, len(jobs))) as pool:
        return {"models": list(pool.map(replicate, jobs))}


SHARED = ("T", "steps", "gap_ratio", "n_fit", "fit_per_point", "width", "width_per_point",
          "train_time", "min_steps", "tol", "tight_factor", "margin", "n_samples", "n_exact",
          "err_ok", "smooth_sigma", "spread_band", "figure", "refine")


def cells(config):
    shared = {key: config[key] for key in SHARED}
    out = []
    for n_data in config["n_data"]:
        base = {**shared, "n_data": n_data, "base_seed": config["seed"]}
        for r in range(config["seeds"]):
            out.append((f"reference N={n_data} replicate={r}", reference_cell,
                        {**base, "replicate": r}))
        for eta in config["etas"]:
            out.append((f"N={n_data} eta={eta:g}", model_cell,
                        {**base, "eta": eta, "seeds": config["seeds"]}))
    return out


# -- summary -----------------------------------------------------------------------------------


def _collect(cell_results):
    """``references[(N, replicate)]`` and ``models[N] = [(eta, [replicate entries])]``."""
    references, models = {}, {}
    for r in cell_results:
        if "eta" in r.config:
            models.setdefault(r.config["n_data"], []).append((r.config["eta"],
                                                              r.result["models"]))
        else:
            references[(r.config["n_data"], r.config["replicate"])] = r.result
    for rows in models.values():
        rows.sort(key=lambda row: row[0])
    return references, models


def _entries(models):
    """(N, eta, replicate entry) of every learned model."""
    return [(n_data, eta, m) for n_data, rows in models.items() for eta, entries in rows
            for m in entries]


def _nets(models, classes=None):
    """Every net record, or those whose class is in ``classes``."""
    return [rec for _, _, m in _entries(models) for rec in m["nets"]
            if classes is None or rec["class"] in classes]


def _net_claims(models):
    converged = _nets(models, ("converged",))
    band = max((abs(r["tight_sharpness"] - r["sharpness"]) for r in converged), default=0.0)
    evaluated = _nets(models, LIVE + ("collapsed",))
    count = f"{len(converged)} converged nets over all N, eta, times and replicates"
    return [
        at_most("score nets, converged: lambda_max eta / 2 <= 1, max", 1.0 + band,
                max((r["sharpness"] for r in converged), default=np.nan), uncertainty=band,
                detail=f"{count}; band {band:.2g} from continuing each to a 100x smaller "
                       "tolerance; detectable: the margin"),
        at_most("score nets, converged: weighted TV / (1/eta - 1/2 + (R+1) sqrt(2L)) <= 1, max",
                1.0, max((r["tv"] / r["stable_bound"] for r in converged), default=np.nan),
                detail=f"{count}; Liang et al. 2025 Cor. 3.3; detectable: the margin"),
        at_most("score nets, every final iterate: weighted TV / flatness bound <= 1, max", 1.0,
                max((bound_ratio(r["tv"], r["flatness_bound"]) for r in evaluated),
                    default=np.nan),
                detail=f"{len(evaluated)} nets that did not diverge or die; Liang et al. 2025 "
                       "Thm 3.2 with lambda_max measured at the final iterate; detectable: "
                       "the margin"),
    ]


def _fraction_of(metrics):
    return metrics["memorized"] / metrics["n"]


def _offset_z(ref):
    """Welch z of the mean squared offset, refined-grid sampler against exact p_delta."""
    a, b = ref["exact_fine"]["offset"], ref["exact_pdelta"]["offset"]
    se = np.sqrt(a["var"] / a["n"] + b["var"] / b["n"])
    return (a["mean"] - b["mean"]) / se, se


def _reference_claims(references, refine):
    tests = [two_proportion_test(ref["exact_fine"]["memorized"], ref["exact_fine"]["n"],
                                 ref["exact_pdelta"]["memorized"], ref["exact_pdelta"]["n"])
             for ref in references.values()]
    offsets = [_offset_z(ref) for ref in references.values()]
    widest = max(t.se for t in tests)
    worst = max(ref["protocol_error"] for ref in references.values())
    coarse = max(_fraction_of(ref["exact_pdelta"]) - _fraction_of(ref["exact_grid"])
                 for ref in references.values())
    return [
        at_most(f"exact score, sampler's grid refined {refine}x: memorised fraction = exact "
                "p_delta's, max |z|", SE_BAND, max(abs(t.z) for t in tests), detectable=SE_BAND,
                detail=f"Agresti-Caffo z over {len(tests)} training sets; detectable: "
                       f"{SE_BAND} s.e., a fraction bias of {SE_BAND * widest:.3f} at the widest. "
                       "On the sampler's own grid exp_em's first-order bias lowers the exact "
                       f"score's fraction by up to {coarse:.3f} below p_delta's; the learned "
                       "models are set against that same-grid value"),
        at_most(f"exact score, sampler's grid refined {refine}x: mean (nearest distance / "
                "sigma_delta)^2 = exact p_delta's, max |z|", SE_BAND,
                max(abs(z) for z, _ in offsets), detectable=SE_BAND,
                detail=f"Welch z over {len(offsets)} training sets: the memorised fraction "
                       "is near 1 at this delta and blind to the noise level, the squared "
                       f"offset is not; detectable: {SE_BAND} s.e., a bias of "
                       f"{SE_BAND * max(se for _, se in offsets):.3f} (about 1 expected) at the "
                       "widest"),
        at_most("GridScoreModel with the exact noise prediction = nd.sample with "
                "EmpiricalScore, max |dx|", PROTOCOL_ABS, worst,
                detail="same grid and noise; the wrapper's denoise (x - sigma eps) / alpha "
                       "against EmpiricalScore.denoise; bound a few thousand roundings of "
                       "the samples; detectable: the margin"),
    ]


def _wrapper_claim(models):
    gaps = [m["wrapper_gap"] for _, _, m in _entries(models)]
    return at_most(
        "learned model: error of its denoiser in eps units = its nets' fit errors, max "
        "difference", PROTOCOL_ABS, max(gaps),
        detail=f"{len(gaps)} models, every grid time: alpha (D_model - D_exact) / sigma on a "
               "net's training inputs against that net's relative fit error; a sign or a "
               "power of sigma lost between targets and wrapper shows here; detectable: "
               "the margin")


def _slopes(rows, keep):
    """Least-squares slope of the memorised fraction on log10 eta, one per replicate."""
    points = {}
    for eta, entries in rows:
        for m in entries:
            if keep(m):
                points.setdefault(m["replicate"], []).append((np.log10(eta),
                                                              m["memorized"] / m["n"]))
    return [float(np.polyfit(*zip(*p), 1)[0]) for _, p in sorted(points.items())
            if len({x for x, _ in p}) >= 2]


CONJECTURE = "memorisation falls as eta grows (slope < 0)"
SELECTIONS = {"all models": lambda m: True,
              "models that did not fail": lambda m: m["class"] != "failed"}


def _trend_finding(label, slopes, which):
    mean, low, high = t_interval(slopes)
    if not np.isfinite(low):
        low, high = -np.inf, np.inf  # fewer than two replicates: no interval
    return Finding(
        f"memorised fraction against log10 eta, {label} ({which})",
        f"mean over {len(slopes)} replicates (training set and start draws) of the "
        "least-squares slope, Student-t interval", mean, low, high, conjecture=CONJECTURE,
        predicted_sign=-1, detail="per-replicate slopes " + ", ".join(f"{v:.3f}" for v in slopes))


def _findings(models):
    findings = []
    for which, keep in SELECTIONS.items():
        pooled = []
        for n_data, rows in models.items():
            slopes = _slopes(rows, keep)
            pooled += slopes
            findings.append(_trend_finding(f"N={n_data}", slopes, which))
        findings.append(_trend_finding("all N", pooled, which))
    return findings


def _fraction(m):
    """``memorised fraction [Wilson interval]`` as table text."""
    lo, hi = m["ci"]
    return f"{m['memorized'] / m['n']:.3f} [{lo:.3f}, {hi:.3f}]"


MODEL_HEADER = ("N", "eta", "replicate", "class", "memorised [Wilson 95%]",
                "exact score, same grid", "exact p_delta", "true law", "spread / data's",
                "mean nearest distance / gap", "KS to N(0,1)", "max fit error",
                "resolved sigma / gap", "max TV / stable bound")


def _model_rows(references, models):
    rows = []
    for n_data, eta, m in _entries(models):
        ref = references[(n_data, m["replicate"])]
        rows.append((
            n_data, eta, m["replicate"], m["class"], _fraction(m), _fraction(ref["exact_grid"]),
            _fraction(ref["exact_pdelta"]), _fraction(ref["true_law"]), m["spread"],
            m["nearest"], m["ks"], max(r["rel_error"] for r in m["nets"]), m["resolved_sigma"],
            max((r["tv"] / r["stable_bound"] for r in m["nets"] if "tv" in r), default=None)))
    return rows


SIGMA_BINS = (0.0, 0.25, 1.0, 4.0, np.inf)
SIGMA_LABELS = ("< 0.25", "0.25-1", "1-4", "> 4")


def _by_sigma(m, value):
    """``value(net)`` of the live nets of ``m``, in the bins of ``sigma_t / gap``."""
    slots = [[] for _ in SIGMA_LABELS]
    for rec, sigma in zip(m["nets"], m["sigmas"]):
        if rec["class"] in LIVE:
            slots[np.searchsorted(SIGMA_BINS, sigma / m["gap"], side="right") - 1].append(
                value(rec))
    return slots


def _binned_table(models, value, reduce):
    rows = []
    for n_data, rows_n in models.items():
        for eta, entries in rows_n:
            slots = [[v for part in parts for v in part]
                     for parts in zip(*(_by_sigma(m, value) for m in entries))]
            rows.append((n_data, eta, 1.0 / eta - 0.5,
                         *(reduce(v) if v else None for v in slots)))
    return markdown_table(("N", "eta", "1/eta - 1/2",
                           *(f"sigma_t / gap {lab}" for lab in SIGMA_LABELS)), rows)


def summarise(cell_results, config, outdir):
    references, models = _collect(cell_results)
    claims = (_net_claims(models) + _reference_claims(references, config["refine"])
              + [_wrapper_claim(models)])
    sharp = [r["sharpness"] for r in _nets(models) if "sharpness" in r]
    tables = [
        (f"N in {config['n_data']}, {config['seeds']} replicates (training set and start "
         f"draws) per (N, eta); {config['steps']} steps uniform in lambda from T = "
         f"{config['T']}; {config['n_samples']} samples per model, {config['n_exact']} exact "
         f"p_delta samples; training time eta x steps = {config['train_time']} (at least "
         f"{config['min_steps']} steps). Nets that did not diverge end with lambda_max eta / 2 "
         f"in [{min(sharp):.3f}, {max(sharp):.3f}]. Fit error: relative root mean square "
         "error of a net on its targets. Per-time values (fit error, TV, bounds, sharpness) "
         "are in the cell files."),
        "Every model (memorised fraction with 95% Wilson interval; the references are per "
        "replicate):\n\n" + markdown_table(MODEL_HEADER, _model_rows(references, models)),
        "Fit error of the score nets by sigma_t / gap (mean over nets and replicates, live "
        "nets):\n\n" + _binned_table(models, lambda r: r["rel_error"], np.mean),
        "Sharpness lambda_max eta / 2 of the score nets by sigma_t / gap (mean over live nets "
        "and replicates; near 1: at the edge of stability, where the step size is what limits "
        "the fit; well below 1: the fit stopped for another reason, the step budget):\n\n"
        + _binned_table(models, lambda r: r["sharpness"], np.mean),
        "Weighted TV of the score nets against the bound, by sigma_t / gap (max over nets and "
        "replicates of TV / (1/eta - 1/2 + (R+1) sqrt(2L)), live nets):\n\n"
        + _binned_table(models, lambda r: r["tv"] / r["stable_bound"], max),
    ]
    figures = [_score_figure(references, models, config, outdir),
               _memorisation_figure(references, models, outdir),
               _tv_figure(models, outdir)]
    return Summary(claims, figures, tables, _findings(models))


def _score_figure(references, models, config, outdir):
    """The seed's Figure 4 extended: s_hat at small t for N = 5, learned scores overlaid."""
    n_data = config["figure"]["n_data"]
    ref = references[(n_data, 0)]
    times = np.asarray(ref["times"])
    indices = figure_indices(config, times)
    fig, axes = new_figure(1, len(indices), size=(4.6, 3.6))
    plot = figure_points(config)
    data = np.asarray(ref["data"])
    for col, i in enumerate(indices):
        ax = axes[0][col]
        ax.plot(plot, ref["score_curves"][col], "k-", lw=2, label="s_hat (exact)")
        for j, (eta, entries) in enumerate(models[n_data]):
            m = next(e for e in entries if e["replicate"] == 0)
            ax.plot(plot, m["score_curves"][col], f"C{j}-", lw=1,
                    label=f"eta={eta:g}, fit error {m['nets'][i]['rel_error']:.2f}")
        ax.plot(data, np.zeros_like(data), "kx", ms=8)
        # Outside the data the score is the steep line -(x - alpha x_k) / sigma^2: the
        # view is the data's range, where s_hat has its teeth.
        hull = (plot > data.min() - 0.3) & (plot < data.max() + 0.3)
        scale = np.abs(np.asarray(ref["score_curves"][col])[hull]).max()
        ratio = np.sqrt(-np.expm1(-2.0 * times[i])) / ref["min_gap"]
        ax.set(xlabel="x", ylabel="score", ylim=(-1.3 * scale, 1.3 * scale),
               xlim=(data.min() - 0.3, data.max() + 0.3),
               title=f"N={n_data}, t={times[i]:.3g}, sigma_t / gap = {ratio:.2f}")
        ax.legend(fontsize=6)
    return save_figure(fig, outdir, "step_size_score")


MARKERS = {"failed": "x", "smooth": "s", "resolving": "o"}


def _memorisation_figure(references, models, outdir):
    fig, axes = new_figure(1, len(models), size=(3.8, 3.4))
    for col, (n_data, rows) in enumerate(models.items()):
        ax = axes[0][col]
        for eta, entries in rows:
            for m in entries:
                frac, (lo, hi) = m["memorized"] / m["n"], m["ci"]
                shift = eta * 1.05 ** (m["replicate"] - len(entries) / 2)
                ax.errorbar(shift, frac, yerr=[[frac - lo], [hi - frac]],
                            fmt=MARKERS[m["class"]], color=f"C{m['replicate']}", ms=4)
        for (n, r), ref in references.items():
            if n == n_data:
                for key, style in (("exact_grid", "-"), ("exact_pdelta", ":"),
                                   ("true_law", "--")):
                    ax.axhline(ref[key]["memorized"] / ref[key]["n"], color=f"C{r}", ls=style,
                               lw=0.8)
        ax.set(xscale="log", xlabel="eta", ylabel="memorised fraction", ylim=(0.3, 1.02),
               title=f"N={n_data} (o resolving, s smooth, x failed)")
    axes[0][0].text(0.02, 0.02, "exact score, same grid (solid); exact p_delta (dotted); "
                    "true law (dashed)", transform=axes[0][0].transAxes, fontsize=6)
    return save_figure(fig, outdir, "step_size_memorisation")


def _tv_figure(models, outdir):
    fig, axes = new_figure(1, len(models), size=(3.8, 3.4))
    for col, (n_data, rows) in enumerate(models.items()):
        ax = axes[0][col]
        bound, tv, scale = [], [], []
        for eta, entries in rows:
            for m in entries:
                for rec, sigma in zip(m["nets"], m["sigmas"]):
                    if rec["class"] in LIVE:
                        bound.append(1.0 / eta - 0.5)
                        tv.append(rec["tv"])
                        scale.append(np.log10(sigma / m["gap"]))
        points = ax.scatter(bound, tv, c=scale, s=6, cmap="viridis")
        line = np.geomspace(min(bound), max(bound), 50)
        ax.plot(line, line, "k--", lw=1, label="TV = 1/eta - 1/2")
        ax.set(xscale="log", yscale="log", xlabel="1/eta - 1/2", ylabel="weighted TV of the net",
               title=f"N={n_data}", ylim=(1e-3 * max(tv), 2.0 * max(max(tv), line[-1])))
        ax.legend(fontsize=7)
        fig.colorbar(points, ax=ax, label="log10 sigma_t / gap")
    return save_figure(fig, outdir, "step_size_tv")


_FIGURE = {"n_data": 5, "times": [0.002, 0.008, 0.03], "x_max": 2.5, "points": 401}
_COMMON = {
    "seed": 9120, "T": 4.0, "gap_ratio": 10.0, "n_fit": 128, "fit_per_point": 4, "width": 48,
    "width_per_point": 2, "train_time": 1000.0, "min_steps": 5000, "tol": 1e-5,
    "tight_factor": 0.01, "margin": 0.9, "err_ok": 0.25, "smooth_sigma": 0.5,
    "spread_band": [0.5, 2.0], "figure": _FIGURE, "refine": 4,
}

STUDY = Study(
    name="step_size_memorization",
    title="Does a large step size prevent memorisation? (Section 3.1)",
    description=__doc__.split("\n", 2)[2],
    cells=cells,
    summarise=summarise,
    default={**_COMMON, "n_data": [2, 5, 10, 20, 50], "seeds": 4,
             "etas": [0.01, 0.03, 0.1, 0.3, 1.0], "steps": 32, "n_samples": 2000,
             "n_exact": 4000},
    quick={**_COMMON, "n_data": [5, 20], "seeds": 2,
           "etas": [0.03, 0.3, 1.0], "steps": 24, "n_samples": 1000, "n_exact": 2000},
)
