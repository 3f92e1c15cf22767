"""Study 2: no early stopping: the output tends to the uniform law on the dataset.

Without early stopping (``delta -> 0``, with ``T`` growing as in Theorem 3,
``T = log(d / eps)`` for ``eps = sqrt(d delta)``) the reverse process with the
exact empirical score reproduces ``p_delta``, which tends to the uniform law on
the training points. Three consequences are measured on samples started from
``N(0, I)``:

* the nearest-training-index histogram is uniform (Pearson chi-square test,
  ``scipy.stats.chisquare``, at the smallest ``delta``; a claim passes when
  ``p > 0.001``);
* the distance to the nearest training point shrinks like ``sigma_delta``
  (weighted log-log slope of the mean distance against ``sigma_delta``,
  predicted 1), with the prefactor ``E|Z| = sqrt(2) Gamma((d+1)/2) / Gamma(d/2)``
  of a standard normal ``Z`` in ``R^d`` at the smallest ``delta``;
* the memorized fraction (``nd.metrics.memorized_fraction``: nearest /
  second-nearest distance below 1/3) tends to 1, and at every ``delta`` it agrees
  with the fraction for exact samples of ``p_delta`` (``theory.mixture``).

Nearest points are found with a k-d tree (scipy), independently of numdiff.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln
from scipy.stats import chisquare

import numdiff as nd
from theory.horizons import theorem3_T

from ..claims import at_least, at_most, within
from ..report import markdown_table
from ..study import Study, Summary
from .common import (
    exact_memorized,
    gaussian_data,
    nearest_points,
    new_figure,
    ou_alpha_sigma2,
    ou_steps,
    save_figure,
)


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
    index, dist, _ = nearest_points(result.x, data)
    counts = np.bincount(index, minlength=len(data))
    frac = nd.metrics.memorized_fraction(result.x, data)
    alpha, sigma2 = ou_alpha_sigma2(delta)
    rng = np.random.default_rng([seed, 1])
    exact = exact_memorized(config["n_exact"], data, alpha, sigma2, rng)
    return {
        "T": T, "steps": steps, "sigma": float(np.sqrt(sigma2)),
        "chi2_p": float(chisquare(counts).pvalue),
        "counts": counts, "mean_dist": float(dist.mean()),
        "se_dist": float(dist.std(ddof=1) / np.sqrt(len(dist))),
        "memorized": float(frac), "memorized_exact": float(exact.mean()),
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


def summarise(cell_results, config, outdir):
    d, band, z_max = config["d"], config["slope_band"], config["z_max"]
    by_process = {}
    for r in cell_results:
        by_process.setdefault(r.config["process"], []).append((r.config["delta"], r.result))
    claims, rows = [], []
    c_d = mean_norm_gaussian(d)
    for process, runs in by_process.items():
        runs.sort(key=lambda item: -item[0])
        deltas = np.array([delta for delta, _ in runs])
        res = [r for _, r in runs]
        last = res[-1]
        tag = f"{process}, delta={deltas[-1]:g}"
        claims.append(at_least(
            f"nearest-index histogram uniform: chi-square p ({tag})", 1e-3, last["chi2_p"],
            detail=f"Pearson chi-square over N={config['n_data']} indices, n={config['n']}"))
        sig = np.array([r["sigma"] for r in res])
        slope, slope_se = fit_slope(sig, [r["mean_dist"] for r in res], [r["se_dist"] for r in res])
        claims.append(within(
            f"nearest distance ~ sigma_delta: log-log slope ({process})", 1.0, slope, band,
            slope_se, detail=f"weighted fit over delta in {deltas.tolist()}; band +-{band}"))
        ratio = last["mean_dist"] / last["sigma"]
        ratio_se = last["se_dist"] / last["sigma"]
        claims.append(within(
            f"nearest distance / sigma_delta = E|Z| ({tag})", c_d, ratio, z_max * ratio_se,
            ratio_se, detail=f"band {z_max} standard errors; E|Z| in d={d}"))
        claims.append(at_least(
            f"memorized fraction -> 1 ({tag})", 1.0 - config["memorized_band"], last["memorized"],
            np.sqrt(max(last["memorized"] * (1 - last["memorized"]), 1 / config["n"])
                    / config["n"]),
            detail=f"predicted limit 1, band {config['memorized_band']}"))
        z = [abs(r["memorized"] - r["memorized_exact"])
             / _pooled_se(r["memorized"], config["n"], r["memorized_exact"], config["n_exact"])
             for r in res]
        claims.append(at_most(
            f"memorized fraction = exact p_delta's at every delta, max |z| ({process})",
            z_max, max(z), detail=f"two-proportion z over {len(z)} deltas; exact n="
                                  f"{config['n_exact']}"))
        for delta, r, zi in zip(deltas, res, z):
            rows.append((process, delta, r["T"], r["steps"], r["sigma"], r["chi2_p"],
                         r["mean_dist"], r["mean_dist"] / r["sigma"], r["memorized"],
                         r["memorized_exact"], zi))
    tables = [
        (f"Data: N={config['n_data']} points from N(0, I_{d}); n={config['n']} samples per cell "
        f"from N(0, I) on the `{config['grid']}` grid with spacing at most {config['h_lambda']} "
         "in lambda (steps in the table), solvers "
        f"{config['solvers']}. Predicted E|Z| = {c_d:.4f}."),
        markdown_table(("process", "delta", "T", "steps", "sigma_delta", "chi2 p",
                        "mean nearest dist", "dist / sigma", "memorized",
                        "memorized (exact p_delta)", "|z|"), rows),
    ]
    return Summary(claims, [_figure(by_process, config, outdir)], tables)


def _pooled_se(p1, n1, p2, n2):
    # Floors at 1/n keep the z-score finite when both fractions are exactly 0 or 1.
    return float(np.sqrt(max(p1 * (1 - p1), 1 / n1) / n1 + max(p2 * (1 - p2), 1 / n2) / n2))


def _figure(by_process, config, outdir):
    fig, axes = new_figure(1, 3, size=(4.0, 3.4))
    ax_dist, ax_mem, ax_hist = axes[0]
    c_d = mean_norm_gaussian(config["d"])
    for i, (process, runs) in enumerate(by_process.items()):
        deltas = np.array([delta for delta, _ in runs])
        res = [r for _, r in runs]
        sig = np.array([r["sigma"] for r in res])
        ax_dist.errorbar(sig, [r["mean_dist"] for r in res], [r["se_dist"] for r in res],
                         fmt=f"C{i}o", label=process)
        ax_mem.plot(deltas, [r["memorized"] for r in res], f"C{i}o-", label=f"{process}")
        ax_mem.plot(deltas, [r["memorized_exact"] for r in res], f"C{i}x:",
                    label=f"exact p_delta ({process} cell)")
        counts = np.asarray(res[-1]["counts"])
        ax_hist.step(np.arange(len(counts)), counts, where="mid", color=f"C{i}",
                     label=f"{process}, delta={deltas[-1]:g}")
    sig = np.array([r["sigma"] for _, r in next(iter(by_process.values()))])
    ax_dist.plot(sig, c_d * sig, "k--", label="E|Z| sigma (slope 1)")
    ax_dist.set(xscale="log", yscale="log", xlabel="sigma_delta", ylabel="mean nearest distance")
    ax_mem.set(xscale="log", xlabel="delta", ylabel="memorized fraction", ylim=(0, 1.02))
    ax_hist.axhline(config["n"] / config["n_data"], color="k", ls="--", label="uniform")
    ax_hist.set(xlabel="nearest training index", ylabel="count")
    for ax in axes[0]:
        ax.legend(fontsize=7)
    return save_figure(fig, outdir, "no_early_stopping")


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
        "slope_band": 0.1, "memorized_band": 0.01, "z_max": 4.0,
    },
    quick={
        "seed": 3102, "data_seed": 12, "d": 2, "n_data": 20,
        "deltas": [1e-2, 1e-4, 1e-6], "n": 1000, "n_exact": 5000, "h_lambda": 0.04,
        "grid": "uniform_lambda", "solvers": {"ode": "ddim", "sde": "exp_em"},
        "slope_band": 0.1, "memorized_band": 0.01, "z_max": 4.0,
    },
)
