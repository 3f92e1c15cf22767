"""Study 2: no early stopping: the output tends to the uniform law on the dataset.

Without early stopping (``delta -> 0``, with ``T`` growing as in Theorem 3,
``T = log(d / eps)`` for ``eps = sqrt(d delta)``) the reverse process with the
exact empirical score reproduces ``p_delta``, which tends to the uniform law on
the training points. Three consequences are measured on samples started from
``N(0, I)``, each against exact samples of ``p_delta`` (``theory.mixture``) or
a closed form, with bands of 4.5 standard errors:

* the nearest-training-index histogram is uniform (Pearson chi-square statistic,
  ``scipy.stats.chisquare``, at the smallest ``delta``, against its quantile of
  level 6.8e-6, the level of 4.5 s.e.);
* the distance to the nearest training point shrinks like ``sigma_delta``:
  the weighted log-log slope of the mean distance against ``sigma_delta``
  equals that of exact ``p_delta`` samples at the same deltas (it tends to 1 as
  ``delta -> 0``; the larger deltas bend it below 1), and at the smallest
  ``delta`` the mean distance over ``sigma_delta`` equals
  ``E|Z| = sqrt(2) Gamma((d+1)/2) / Gamma(d/2)`` for a standard normal ``Z``
  in ``R^d`` (a sampler that reaches the data with the wrong noise level fails
  this even where every sample is memorized);
* the memorized fraction (nearest / second-nearest distance below 1/3) equals
  that of exact samples at the delta where the exact fraction is nearest 1/2,
  and at every delta (Agresti-Caffo two-proportion z); numdiff's own
  ``nd.metrics.memorized_fraction`` agrees with the independent count.

Nearest points are found with a k-d tree (scipy), independently of numdiff.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, ndtr
from scipy.stats import chi2, chisquare

import numdiff as nd
from theory.horizons import theorem3_T
from theory.mixture import mixture_sample

from ..claims import at_most, within
from ..plotting import (
    REFERENCE_COLORS,
    distinct_colors,
    legend_outside,
    log_axis,
    new_figure,
    save_figure,
    style_key,
)
from ..report import markdown_table
from ..study import Study, Summary
from .common import (
    SE_BAND,
    gaussian_data,
    nearest_points,
    ou_alpha_sigma2,
    ou_steps,
    two_proportion_test,
)

#: Nearest / second-nearest distance below which a sample counts as memorized.
MEMORIZED_RATIO = 1.0 / 3.0


def _nearest_stats(x, data):
    """Nearest-index counts, nearest-distance mean and s.e., memorized count of samples ``x``."""
    index, dist, ratio = nearest_points(x, data)
    return {
        "counts": np.bincount(index, minlength=len(data)),
        "mean_dist": float(dist.mean()),
        "se_dist": float(dist.std(ddof=1) / np.sqrt(len(dist))),
        "memorized_count": int((ratio < MEMORIZED_RATIO).sum()),
    }


def sample_cell(config, seed):
    d, delta = config["d"], config["delta"]
    data = gaussian_data(config["n_data"], d, config["data_seed"])
    T = float(theorem3_T(np.sqrt(d * delta), d))
    steps = ou_steps(T, delta, config["h_lambda"])
    result = nd.sample(
        nd.EmpiricalScore(data, nd.OU()), config["n"], T=T, delta=delta, steps=steps,
        process=config["process"], solver=config["solver"], grid=config["grid"], rng=seed,
        progress=False,
    )
    alpha, sigma2 = ou_alpha_sigma2(delta)
    # The finite-delta reference: exact samples of p_delta, measured the same way.
    exact = mixture_sample(config["n_exact"], data, alpha, sigma2, np.random.default_rng([seed, 1]))
    sampled, ref = _nearest_stats(result.x, data), _nearest_stats(exact, data)
    return {
        "T": T, "steps": steps, "sigma": float(np.sqrt(sigma2)),
        "chi2": float(chisquare(sampled["counts"]).statistic), "counts": sampled["counts"],
        "mean_dist": sampled["mean_dist"], "se_dist": sampled["se_dist"],
        "memorized_count": sampled["memorized_count"],
        # numdiff's own metric, for the table: it must agree with the k-d tree count.
        "memorized_nd": float(nd.metrics.memorized_fraction(result.x, data)),
        "exact_mean_dist": ref["mean_dist"], "exact_se_dist": ref["se_dist"],
        "exact_memorized_count": ref["memorized_count"],
        "success": bool(result.success),
    }


def cells(config):
    return [
        (f"{process} delta={delta:g}", sample_cell,
         {"d": config["d"], "n_data": config["n_data"], "data_seed": config["data_seed"],
          "delta": delta, "n": config["n"], "n_exact": config["n_exact"],
          "h_lambda": config["h_lambda"], "grid": config["grid"], "process": process,
          "solver": solver})
        for process, solver in config["solvers"].items()
        for delta in config["deltas"]
    ]


def mean_norm_gaussian(d):
    """``E|Z|`` for ``Z ~ N(0, I_d)``."""
    return float(np.sqrt(2.0) * np.exp(gammaln((d + 1) / 2) - gammaln(d / 2)))


def fit_slope(x, y, se_y):
    """Weighted least-squares slope of ``log y`` on ``log x`` and its standard error."""
    lx, ly = np.log(x), np.log(y)
    w = (np.asarray(y) / np.asarray(se_y)) ** 2  # 1 / var(log y), delta method
    xm = np.sum(w * lx) / w.sum()
    ym = np.sum(w * ly) / w.sum()
    sxx = np.sum(w * (lx - xm) ** 2)
    slope = np.sum(w * (lx - xm) * (ly - ym)) / sxx
    resid = ly - ym - slope * (lx - xm)
    # Scale by the reduced chi-square when the points scatter more than their errors say.
    scale = max(1.0, np.sum(w * resid**2) / max(len(x) - 2, 1))
    return float(slope), float(np.sqrt(scale / sxx))


def _uniform_index_claim(tag, last, config):
    """Pearson chi-square of the nearest-index counts against its 4.5-sigma-level quantile."""
    df = config["n_data"] - 1
    crit = float(chi2.isf(2.0 * ndtr(-SE_BAND), df))
    return at_most(
        f"nearest-index histogram uniform: Pearson chi-square ({tag})", crit, last["chi2"],
        detectable=crit - df,
        detail=f"{df} degrees of freedom, n={config['n']}; bound = the quantile of level "
               f"{2 * ndtr(-SE_BAND):.1e} (that of {SE_BAND} s.e.); detectable: the rise of "
               f"the statistic's mean (noncentrality), i.e. a Pearson divergence of "
               f"{(crit - df) / config['n']:.2g} of the index law from uniform")


def _slope_claims(process, deltas, res):
    """The distance ~ sigma slope against exact samples' slope at the same deltas."""
    sig = np.array([r["sigma"] for r in res])
    slope, slope_se = fit_slope(sig, [r["mean_dist"] for r in res], [r["se_dist"] for r in res])
    ref, ref_se = fit_slope(sig, [r["exact_mean_dist"] for r in res],
                            [r["exact_se_dist"] for r in res])
    se = float(np.hypot(slope_se, ref_se))
    return within(
        f"nearest distance ~ sigma_delta: log-log slope = exact p_delta's ({process})", ref,
        slope, SE_BAND * se, se,
        detail=f"weighted fits over delta in {deltas.tolist()}; predicted: the same fit on "
               f"exact p_delta samples (slope 1 only as delta -> 0; the larger deltas bend it); "
               f"band {SE_BAND} s.e. of the difference")


def _ratio_claim(tag, last, d):
    """Nearest distance / sigma_delta at the smallest delta against E|Z|."""
    c_d = mean_norm_gaussian(d)
    ratio, ratio_se = last["mean_dist"] / last["sigma"], last["se_dist"] / last["sigma"]
    return within(
        f"nearest distance / sigma_delta = E|Z| ({tag})", c_d, ratio, SE_BAND * ratio_se,
        ratio_se, detail=f"E|Z| in d={d}; band {SE_BAND} s.e. of the sample mean")


def _fraction_tests(res, config):
    return [two_proportion_test(r["memorized_count"], config["n"], r["exact_memorized_count"],
                                config["n_exact"]) for r in res]


def _fraction_claims(process, deltas, tests, config):
    """Memorized fraction against exact p_delta samples: at the transition, and at every delta."""
    # The delta whose exact fraction is nearest 1/2: there the fraction is most
    # sensitive to a sampler that reaches the data too early or too late.
    i = int(np.argmin([abs(t.p2 - 0.5) for t in tests]))
    mid = tests[i]
    claims = [within(
        f"memorized fraction = exact p_delta's at the transition ({process}, "
        f"delta={deltas[i]:g})", mid.p2, mid.p1, SE_BAND * mid.se, mid.se,
        detail=f"exact fraction {mid.p2:.3f} (nearest 1/2 on the grid); sampler n={config['n']}, "
               f"exact n={config['n_exact']}; band {SE_BAND} Agresti-Caffo s.e.")]
    z = [abs(t.z) for t in tests]
    widest = max(t.se for t in tests)
    claims.append(at_most(
        f"memorized fraction = exact p_delta's at every delta, max |z| ({process})",
        SE_BAND, max(z), detectable=SE_BAND,
        detail=f"Agresti-Caffo two-proportion z over {len(z)} deltas; detectable: {SE_BAND} "
               f"s.e., a fraction bias of {SE_BAND * widest:.3f} at the widest point"))
    return claims


def _metric_claim(process, res, config):
    """numdiff's memorized fraction against the k-d tree count, over all deltas."""
    gap = max(abs(r["memorized_nd"] - r["memorized_count"] / config["n"]) for r in res)
    # Both count the same samples with the same threshold: only a ratio within
    # rounding of 1/3 may be classified differently, one sample at most in practice.
    return within(
        f"nd.metrics.memorized_fraction = k-d tree count, max over delta ({process})", 0.0, gap,
        1.0 / config["n"], detail="same samples, same threshold 1/3; band one sample in n")


def summarise(cell_results, config, outdir):
    d = config["d"]
    by_process = {}
    for r in cell_results:
        by_process.setdefault(r.config["process"], []).append((r.config["delta"], r.result))
    claims, rows = [], []
    for process, runs in by_process.items():
        runs.sort(key=lambda item: -item[0])
        deltas = np.array([delta for delta, _ in runs])
        res = [r for _, r in runs]
        tag = f"{process}, delta={deltas[-1]:g}"
        tests = _fraction_tests(res, config)
        claims.append(_uniform_index_claim(tag, res[-1], config))
        claims.append(_slope_claims(process, deltas, res))
        claims.append(_ratio_claim(tag, res[-1], d))
        claims.extend(_fraction_claims(process, deltas, tests, config))
        claims.append(_metric_claim(process, res, config))
        for delta, r, t in zip(deltas, res, tests):
            rows.append((process, delta, r["T"], r["steps"], r["sigma"], r["chi2"],
                         r["mean_dist"] / r["sigma"], r["exact_mean_dist"] / r["sigma"],
                         t.p1, r["memorized_nd"], t.p2, t.z))
    tables = [
        (f"Data: N={config['n_data']} points from N(0, I_{d}); n={config['n']} samples per cell "
         f"from N(0, I) on the `{config['grid']}` grid with spacing at most {config['h_lambda']} "
         f"in lambda (steps in the table), solvers {config['solvers']}; {config['n_exact']} "
         f"exact p_delta samples per cell. Predicted E|Z| = {mean_norm_gaussian(d):.4f}."),
        markdown_table(("process", "delta", "T", "steps", "sigma_delta", "chi2",
                        "dist / sigma", "dist / sigma (exact)", "memorized",
                        "memorized (nd.metrics)", "memorized (exact p_delta)", "z"), rows),
    ]
    return Summary(claims, [_figure(by_process, config, outdir)], tables, captions=CAPTIONS)


def _figure(by_process, config, outdir):
    fig, axes = new_figure(1, 3)
    ax_dist, ax_mem, ax_hist = axes[0]
    c_d = mean_norm_gaussian(config["d"])
    colors = distinct_colors(len(by_process))
    # The samplers often agree to the marker: the second one's open squares show the first.
    marks = [{"marker": "o"}, {"marker": "s", "mfc": "none", "ms": 8}]
    for color, mark, (process, runs) in zip(colors, marks * len(by_process), by_process.items()):
        deltas = np.array([delta for delta, _ in runs])
        res = [r for _, r in runs]
        sig = np.array([r["sigma"] for r in res])
        ax_dist.errorbar(sig, [r["mean_dist"] for r in res], [r["se_dist"] for r in res],
                         ls="", color=color, label=process, **mark)
        ax_mem.plot(deltas, [r["memorized_count"] / config["n"] for r in res], "-",
                    color=color, label=process, **mark)
        ax_mem.plot(deltas, [r["exact_memorized_count"] / config["n_exact"] for r in res],
                    "x:", color=color)
        counts = np.asarray(res[-1]["counts"])
        ax_hist.step(np.arange(len(counts)), counts, where="mid", color=color,
                     label=f"{process}, delta={deltas[-1]:g}")
    sig = np.array([r["sigma"] for _, r in next(iter(by_process.values()))])
    ax_dist.plot(sig, c_d * sig, "--", color=REFERENCE_COLORS[0], label="E|Z| sigma (slope 1)")
    log_axis(ax_dist, "x")
    log_axis(ax_dist, "y")
    ax_dist.set(xlabel="sigma_delta", ylabel="mean nearest distance",
                title="distance to the nearest training point")
    log_axis(ax_mem, "x")
    ax_mem.set(xlabel="delta", ylabel="memorized fraction", ylim=(0, 1.02),
               title="memorized fraction")
    ax_hist.axhline(config["n"] / config["n_data"], color=REFERENCE_COLORS[0], ls="--",
                    label="uniform")
    ax_hist.set(xlabel="nearest training index", ylabel="count",
                title="which training point is copied")
    legend_outside(ax_dist)
    style_key(ax_mem, {"sampler": {"marker": "o"}, "exact p_delta (same cell)":
                       {"marker": "x", "ls": ":"}})
    legend_outside(ax_hist)
    return save_figure(fig, outdir, "no_early_stopping")


#: Caption of each figure in the report.
CAPTIONS = {
    "no_early_stopping": (
        "Without early stopping the samples collapse onto the training set: the distance to the"
        " nearest training point falls like sigma_delta (left, slope 1), each sampler's "
        "memorized fraction follows that of exact p_delta samples up to 1 (middle), and the "
        "training point copied at the smallest delta is near uniform (right). Illustrates the "
        "slope, fraction and uniform-index claims."
    ),
}


STUDY = Study(
    name="no_early_stopping",
    title="No early stopping: convergence to the training set",
    description=__doc__.split("\n", 2)[2],
    cells=cells,
    summarise=summarise,
    default={
        "seed": 3102, "data_seed": 12, "d": 2, "n_data": 20,
        "deltas": [1e-2, 1e-3, 1e-4, 1e-5, 1e-6], "n": 4000, "n_exact": 20000, "h_lambda": 0.01,
        "grid": "uniform_lambda", "solvers": {"ode": "ddim", "sde": "exp_em"},
    },
    quick={
        "seed": 3102, "data_seed": 12, "d": 2, "n_data": 20,
        "deltas": [1e-2, 1e-4, 1e-6], "n": 1000, "n_exact": 5000, "h_lambda": 0.04,
        "grid": "uniform_lambda", "solvers": {"ode": "ddim", "sde": "exp_em"},
    },
)
