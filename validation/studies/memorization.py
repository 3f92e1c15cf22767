"""Study 3: memorization against the training-set size N and the stopping time delta.

The seed's Figure 2: the memorized fraction (nearest / second-nearest training
distance below 1/3, ``nd.metrics.nearest_ratio``) of samples of the reverse SDE
with the exact empirical score, on a grid of ``N`` and ``delta``, with 95%
percentile-bootstrap confidence intervals; for Gaussian data ``N(0, I_d)`` in
several ``d`` and, when scikit-learn is installed, for its 8x8 digits (pixels
scaled to ``[0, 1]``, a random subset of ``N`` images).

Two comparisons with theory:

* the sampler's memorized fraction against that of exact samples of ``p_delta``
  (``theory.mixture.mixture_sample``), a two-proportion z-score at every grid
  point;
* the predicted collapse time ``t_C`` of Biroli et al. (2024)
  (``theory.memorization.collapse_time``, drawn as dashed lines) against the
  measured collapse: the time at which half of the exact samples of ``p_delta``
  have one posterior weight ``w_k(delta, x) > 1/2`` (log-interpolated on the
  grid). ``t_C`` is an *asymptotic* prediction (``N, d -> inf`` with
  ``log N / d`` fixed); at small ``d`` it only locates a smooth crossover, so the
  claim allows the stated band in decades of time. For the digits, whose
  pixels are neither Gaussian nor independent, ``t_C`` (with the data's mean
  pixel variance and ``d = 64``) is drawn for orientation only.

The first-order solvers bias the memorized fraction low by an amount
proportional to the step in ``lambda`` (Gaussian d = 2, N = 100,
delta = 0.0032, 20000 samples: -3.8, -2.2, -0.8, -0.3 percentage points at
spacings 0.1, 0.05, 0.025, 0.0125), so the default spacing is 0.025, where the
bias is below the sampling error of 1000 samples. The quick configuration
skips the digits.
"""

from __future__ import annotations

import numpy as np

import numdiff as nd
from theory.memorization import collapse_time
from theory.mixture import mixture_sample

from ..claims import at_most
from ..report import markdown_table
from ..study import Study, Summary
from .common import (
    bootstrap_ci,
    gaussian_data,
    nearest_points,
    new_figure,
    ou_alpha_sigma2,
    ou_steps,
    proportion_se,
    save_figure,
)

THRESHOLD = 1.0 / 3.0


def load_digits_data():
    """The 8x8 digits scaled to ``[0, 1]``, shape (1797, 64); ``None`` without scikit-learn."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        return None
    return load_digits().data / 16.0


def _dataset(config):
    if config["family"] == "digits":
        full = load_digits_data()
        perm = np.random.default_rng(config["data_seed"]).permutation(len(full))
        return full[perm[: config["n_data"]]]
    # Nested training sets: the first N points of one draw, so N is the only change.
    return gaussian_data(config["n_max"], config["d"], config["data_seed"])[: config["n_data"]]


def max_posterior_weight(x, data, alpha, sigma2, block=512):
    """Largest posterior weight ``max_k w_k(x)`` of the mixture, shape (n,).

    Dense numpy, in blocks of queries; the data are centred first (the weights
    do not change) so the expanded squared distances lose little precision.
    """
    centre = data.mean(axis=0)
    y = alpha * (data - centre)
    y2 = (y * y).sum(axis=1)
    out = np.empty(len(x))
    for start in range(0, len(x), block):
        xb = x[start:start + block] - alpha * centre
        logits = (xb @ y.T - 0.5 * y2[None, :]) / sigma2  # |x|^2 cancels in the softmax
        logits -= logits.max(axis=1, keepdims=True)
        w = np.exp(logits)
        out[start:start + block] = 1.0 / w.sum(axis=1)  # the max has weight e^0 = 1
    return out


def grid_times_near(times, targets):
    """The grid times nearest (in log t) to each target, decreasing, without repeats.

    ``nd.sample`` saves states only at points of its grid, so each requested
    ``delta`` is replaced by the nearest grid time (within half a step in lambda).
    """
    idx = [int(np.argmin(np.abs(np.log(times) - np.log(t)))) for t in targets]
    return times[sorted(set(idx))]


def memorization_cell(config, seed):
    data = _dataset(config)
    schedule = nd.OU()
    T, delta_min = config["T"], min(config["deltas"])
    steps = ou_steps(T, delta_min, config["h_lambda"])
    times = nd.grids.uniform_lambda(schedule, T, delta_min, steps)
    deltas = grid_times_near(times, config["deltas"])
    result = nd.sample(
        nd.EmpiricalScore(data, schedule), config["n"], T=T, delta=delta_min, steps=steps,
        process=config["process"], solver=config["solver"], grid="uniform_lambda",
        save_at=deltas, rng=seed, progress=False,
    )
    rng = np.random.default_rng([seed, 1])
    rows = []
    for x, delta in zip(result.trajectory, deltas):
        memorized = nd.metrics.nearest_ratio(x, data) < THRESHOLD
        alpha, sigma2 = ou_alpha_sigma2(delta)
        exact = mixture_sample(config["n_exact"], data, alpha, sigma2, rng)
        lo, hi = bootstrap_ci(memorized, rng, config["n_boot"])
        rows.append({
            "delta": float(delta), "memorized": float(memorized.mean()), "ci": [lo, hi],
            "memorized_exact": float((nearest_points(exact, data)[2] < THRESHOLD).mean()),
            "collapsed_exact": float((max_posterior_weight(exact, data, alpha, sigma2) > 0.5)
                                     .mean()),
        })
    return {"rows": rows, "data_var": float(data.var(axis=0).mean()), "dim": data.shape[1],
            "steps": steps, "success": bool(result.success)}


def _families(config):
    fams = [{"family": "gaussian", "d": d, "n_data_list": config["n_data"]}
            for d in config["dims"]]
    if config.get("digits_n_data"):
        fams.append({"family": "digits", "d": 64, "n_data_list": config["digits_n_data"]})
    return fams


def family_name(fam):
    return "digits 8x8" if fam["family"] == "digits" else f"gaussian d={fam['d']}"


def cells(config):
    out = []
    digits_ok = load_digits_data() is not None
    for fam in _families(config):
        if fam["family"] == "digits" and not digits_ok:
            continue
        for n_data in fam["n_data_list"]:
            cell = {k: config[k] for k in ("deltas", "T", "h_lambda", "process",
                                           "solver", "n", "n_exact", "n_boot", "data_seed")}
            cell.update(family=fam["family"], d=fam["d"], n_data=n_data,
                        n_max=max(fam["n_data_list"]))
            out.append((f"{family_name(fam)} N={n_data}", memorization_cell, cell))
    return out


def crossing_time(deltas, fractions, level=0.5):
    """Time where a fraction decreasing in delta crosses ``level`` (log-linear interpolation).

    ``nan`` when the grid does not bracket the crossing.
    """
    d = np.log(np.asarray(deltas, dtype=float))
    f = np.asarray(fractions, dtype=float)
    order = np.argsort(d)
    d, f = d[order], f[order]
    for i in range(len(d) - 1):
        if f[i] >= level > f[i + 1]:
            frac = (f[i] - level) / (f[i] - f[i + 1])
            return float(np.exp(d[i] + frac * (d[i + 1] - d[i])))
    return float("nan")


def summarise(cell_results, config, outdir):
    groups = {}
    for r in cell_results:
        fam = {"family": r.config["family"], "d": r.config["d"]}
        groups.setdefault(family_name(fam), []).append((r.config["n_data"], r.result))
    claims, rows = [], []
    schedule = nd.OU()
    for name, runs in groups.items():
        zs, errs = [], []
        for n_data, res in runs:
            t_c = collapse_time(n_data, res["dim"], schedule, data_var=res["data_var"])
            deltas = [row["delta"] for row in res["rows"]]
            t_half = crossing_time(deltas, [row["collapsed_exact"] for row in res["rows"]])
            t_mem = crossing_time(deltas, [row["memorized"] for row in res["rows"]])
            err = abs(np.log10(t_half / t_c))
            errs.append(err)
            for row in res["rows"]:
                se = np.hypot(proportion_se(row["memorized"], config["n"]),
                              proportion_se(row["memorized_exact"], config["n_exact"]))
                zs.append(abs(row["memorized"] - row["memorized_exact"]) / se)
            rows.append((name, n_data, t_c, t_half, err, t_mem))
        claims.append(at_most(
            f"memorized fraction = exact p_delta's on the (N, delta) grid, max |z| ({name})",
            config["z_max"], max(zs),
            detail=f"{len(zs)} grid points; sampler n={config['n']}, exact n={config['n_exact']}"))
        if name.startswith("gaussian"):
            claims.append(at_most(
                f"collapse time: max |log10(measured / t_C)| over N ({name})",
                config["collapse_band_decades"], float(np.max(errs)),
                detail="asymptotic prediction (Biroli et al.); band "
                       f"{config['collapse_band_decades']} decades"))
    tables = [
        (f"SDE `{config['solver']}` on `uniform_lambda` (spacing {config['h_lambda']} in "
         f"lambda) from T={config['T']}, samples saved at every delta; n={config['n']} samples, "
        f"{config['n_exact']} exact, {config['n_boot']} bootstrap resamples."),
        markdown_table(("data", "N", "t_C (theory)", "collapse time (measured)",
                        "|log10 ratio|", "memorization time (fraction 1/2)"), rows),
    ]
    if not config.get("digits_n_data"):
        tables.append("The 8x8 digits are not part of this configuration.")
    elif load_digits_data() is None:
        tables.append("scikit-learn is not installed: the 8x8 digits part was skipped.")
    return Summary(claims, [_figure(groups, outdir)], tables)


def _figure(groups, outdir):
    fig, axes = new_figure(len(groups), 3, size=(4.2, 3.2))
    schedule = nd.OU()
    for (name, runs), ax_row in zip(groups.items(), axes):
        ax_mem, ax_col, ax_n = ax_row
        for i, (n_data, res) in enumerate(runs):
            deltas = np.array([row["delta"] for row in res["rows"]])
            mem = np.array([row["memorized"] for row in res["rows"]])
            ci = np.array([row["ci"] for row in res["rows"]])
            t_c = collapse_time(n_data, res["dim"], schedule, data_var=res["data_var"])
            ax_mem.plot(deltas, mem, f"C{i}o-", ms=3, label=f"N={n_data}")
            ax_mem.fill_between(deltas, ci[:, 0], ci[:, 1], color=f"C{i}", alpha=0.2)
            ax_mem.plot(deltas, [row["memorized_exact"] for row in res["rows"]], f"C{i}:")
            ax_col.plot(deltas, [row["collapsed_exact"] for row in res["rows"]], f"C{i}s-", ms=3)
            for ax in (ax_mem, ax_col):
                if np.isfinite(t_c):
                    ax.axvline(t_c, color=f"C{i}", ls="--", lw=1)
        ns = [n for n, _ in runs]
        n_rows = len(runs[0][1]["rows"])
        for j, k in enumerate(range(0, n_rows, max(1, n_rows // 5))):
            ax_n.plot(ns, [res["rows"][k]["memorized"] for _, res in runs], f"C{j}o-", ms=3,
                      label=f"delta={runs[0][1]['rows'][k]['delta']:.2g}")
        ax_mem.set(xscale="log", xlabel="delta", ylabel="memorized fraction", ylim=(-0.02, 1.02),
                   title=f"{name}: sampler (dotted: exact p_delta)")
        ax_col.set(xscale="log", xlabel="delta", ylabel="collapsed fraction (max w > 1/2)",
                   ylim=(-0.02, 1.02), title="exact p_delta; dashed: t_C (asymptotic)")
        ax_n.set(xscale="log", xlabel="N", ylabel="memorized fraction", ylim=(-0.02, 1.02),
                 title="against N (seed's Figure 2)")
        ax_mem.legend(fontsize=7)
        ax_n.legend(fontsize=7)
    return save_figure(fig, outdir, "memorization")


_DELTAS = [float(x) for x in np.logspace(-5, 0.5, 12)]

STUDY = Study(
    name="memorization",
    title="Memorization against N and delta (the seed's Figure 2)",
    description=__doc__.split("\n", 2)[2],
    cells=cells,
    summarise=summarise,
    default={
        "seed": 3103, "data_seed": 13, "dims": [2, 8, 32], "n_data": [10, 30, 100, 300, 1000],
        "digits_n_data": [100, 400, 1600], "deltas": _DELTAS, "T": 8.0, "h_lambda": 0.025,
        "process": "sde", "solver": "exp_em", "n": 1000,
        "n_exact": 4000, "n_boot": 1000, "z_max": 4.0, "collapse_band_decades": 1.0,
    },
    quick={
        "seed": 3103, "data_seed": 13, "dims": [2, 16], "n_data": [10, 100],
        "digits_n_data": [], "deltas": _DELTAS[1::2], "T": 8.0, "h_lambda": 0.05,
        "process": "sde", "solver": "exp_em", "n": 400,
        "n_exact": 1000, "n_boot": 500, "z_max": 4.0, "collapse_band_decades": 1.0,
    },
)
