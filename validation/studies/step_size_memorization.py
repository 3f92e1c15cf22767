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

import numdiff as nd
from theory.mixture import mixture_sample

from ..claims import Finding, at_most
from ..report import markdown_table
from ..study import Study, Summary
from .common import SE_BAND, t_interval, two_proportion_test
from .gd_regression import LIVE, bound_ratio
from .step_size_models import (
    GridScoreModel,
    figure_indices,
    figure_points,
    fit_chain,
    in_figure,
    min_gap,
    model_class,
    resolved_sigma,
    run_sampler,
    sample_metrics,
    setting,
    squared_offsets,
    training_sets,
    wrapper_gap,
)
from .step_size_report import (
    CAPTIONS,
    MODEL_HEADER,
    binned_table,
    memorization_figure,
    model_entries,
    model_rows,
    score_figure,
    tv_figure,
)

#: Largest sample difference allowed between the wrapper with exact targets and nd.sample.
PROTOCOL_ABS = 1e-9


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


def _nets(models, classes=None):
    """Every net record, or those whose class is in ``classes``."""
    return [rec for _, _, m in model_entries(models) for rec in m["nets"]
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
                       "tolerance"),
        at_most("score nets, converged: weighted TV / (1/eta - 1/2 + (R+1) sqrt(2L)) <= 1, max",
                1.0, max((r["tv"] / r["stable_bound"] for r in converged), default=np.nan),
                detail=f"{count}; Liang et al. 2025 Cor. 3.3"),
        at_most("score nets, every final iterate: weighted TV / flatness bound <= 1, max", 1.0,
                max((bound_ratio(r["tv"], r["flatness_bound"]) for r in evaluated),
                    default=np.nan),
                detail=f"{len(evaluated)} nets that did not diverge or die; Liang et al. 2025 "
                       "Thm 3.2 with lambda_max measured at the final iterate"),
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
                       "the samples"),
    ]


def _wrapper_claim(models):
    gaps = [m["wrapper_gap"] for _, _, m in model_entries(models)]
    return at_most(
        "learned model: error of its denoiser in eps units = its nets' fit errors, max "
        "difference", PROTOCOL_ABS, max(gaps),
        detail=f"{len(gaps)} models, every grid time: alpha (D_model - D_exact) / sigma on a "
               "net's training inputs against that net's relative fit error; a sign or a "
               "power of sigma lost between targets and wrapper shows here")


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
        "replicate):\n\n" + markdown_table(MODEL_HEADER, model_rows(references, models)),
        "Fit error of the score nets by sigma_t / gap (mean over nets and replicates, live "
        "nets):\n\n" + binned_table(models, lambda r: r["rel_error"], np.mean),
        "Sharpness lambda_max eta / 2 of the score nets by sigma_t / gap (mean over live nets "
        "and replicates; near 1: at the edge of stability, where the step size is what limits "
        "the fit; well below 1: the fit stopped for another reason, the step budget):\n\n"
        + binned_table(models, lambda r: r["sharpness"], np.mean),
        "Weighted TV of the score nets against the bound, by sigma_t / gap (max over nets and "
        "replicates of TV / (1/eta - 1/2 + (R+1) sqrt(2L)), live nets):\n\n"
        + binned_table(models, lambda r: r["tv"] / r["stable_bound"], max),
    ]
    figures = [score_figure(references, models, config, outdir),
               memorization_figure(references, models, outdir),
               tv_figure(models, outdir)]
    return Summary(claims, figures, tables, _findings(models), captions=CAPTIONS)


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
