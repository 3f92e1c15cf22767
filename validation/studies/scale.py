"""Memorisation at scale: N up to 10^6 training points, with the pruned score.

The memorization study stops at a few thousand training points: with the dense
kernel, every step of the sampler costs ``n N d``. At small noise the empirical
score is dominated by a handful of points, and numdiff skips the rest with a
certificate (docs/numerics.md#pruning), which makes ``N = 10^6`` cheap where
memorisation happens. This study runs the reverse SDE (``exp_em`` on a grid
uniform in ``lambda``) on Gaussian data in ``d = 2`` for ``N`` from ``10^3`` to
``10^6`` and audits its samples on a grid of ``delta`` spanning each ``N``'s
collapse, against exact samples of ``p_delta``.

The sampler starts at ``T`` with *exact* samples of ``p_T`` (the mixture
sampled directly) rather than from ``N(0, I)`` at a large ``T``: the segment
above ``T`` (here ``sigma_T^2 = 10^-2``, above every collapse of the grid) has
weights spread over most of the data, where pruning keeps nearly everything and
the sampler reproduces ``p_T`` up to its discretisation, which the memorization
study already checks. What is tested here is the stiff, small-noise segment
that carries memorisation.

Claims (*theorem*, bands of 4.5 standard errors), at every ``(N, delta)``: the
sampler's memorised fraction (nearest / second-nearest training distance below
1/3) equals that of exact ``p_delta`` samples, by an Agresti-Caffo
two-proportion z; and so does the mean of ``(d1 / sigma_delta)^2``, ``d1`` the
nearest training distance, by a two-sample z. The fraction alone does not see
a sampler whose samples sit near *some* training point with the wrong spread
(tests/validation/test_validation_scale.py). A table gives the fractions with Wilson intervals and the
time each cell took; the figure shows the memorised fraction against ``delta``
per ``N`` and against ``N`` per ``delta``.
"""

from __future__ import annotations

import time

import numpy as np

import numdiff as nd
from theory.mixture import mixture_sample

from ..claims import at_most
from ..plotting import log_axis, new_figure, ordered_colors, ordered_curves, save_figure, style_key
from ..report import markdown_table
from ..study import Study, Summary
from .common import SE_BAND, gaussian_data, ou_alpha_sigma2, two_proportion_test, wilson_ci
from .memorization import grid_times_near


def _ou_time(sigma2):
    """OU time with ``sigma_t^2 = 1 - e^{-2t}`` equal to ``sigma2``."""
    return float(-0.5 * np.log1p(-sigma2))


def _audit(x, score, sigma2):
    """Memorised count, and the mean and s.e. of ``(d1 / sigma)^2`` (``d1`` the nearest
    training distance): the offset from the copied point, which the ratio alone does
    not see (a sample near *some* training point passes it whatever its spread).
    The two nearest distances come from the score's exact search (its leaf index)."""
    dist = score.nearest(x, 2)[1]
    offset = (dist[:, 0] ** 2) / sigma2
    memorized = int(np.sum(dist[:, 0] < dist[:, 1] / 3.0))
    return memorized, [float(offset.mean()), float(offset.std(ddof=1) / np.sqrt(offset.size))]


def scale_cell(config, seed):
    """One ``N``: the sampler from exact ``p_T`` samples, audited at each ``delta``."""
    started = time.perf_counter()
    data = gaussian_data(config["n_data"], config["d"], config["data_seed"])
    schedule = nd.OU()
    T = _ou_time(config["sigma2_T"])
    deltas_wanted = [_ou_time(s2) for s2 in config["sigma2_deltas"]]
    delta_min = min(deltas_wanted)
    lam = [np.log(a / np.sqrt(s2)) for a, s2 in map(ou_alpha_sigma2, (T, delta_min))]
    steps = int(np.ceil((lam[1] - lam[0]) / config["h_lambda"]))
    times = nd.grids.uniform_lambda(schedule, T, delta_min, steps)
    saved = grid_times_near(times, deltas_wanted)
    rng = np.random.default_rng([seed, 1])
    x_T = mixture_sample(config["n"], data, *ou_alpha_sigma2(T), rng)
    sampled = time.perf_counter()
    score = nd.EmpiricalScore(data, schedule)
    out = nd.sample(score, config["n"], T=T, delta=delta_min,
                    steps=steps, process="sde", solver="exp_em", grid="uniform_lambda",
                    x_T=x_T, save_at=saved, rng=seed, progress=False)
    sampler_seconds = time.perf_counter() - sampled
    rows = []
    for x, delta in zip(out.trajectory, saved):
        exact = mixture_sample(config["n_exact"], data, *ou_alpha_sigma2(delta), rng)
        sigma2 = float(ou_alpha_sigma2(delta)[1])
        stats = [_audit(y, score, sigma2) for y in (x, exact)]
        rows.append({"delta": float(delta), "sigma2": sigma2,
                     "memorized": stats[0][0], "memorized_exact": stats[1][0],
                     "offset": stats[0][1], "offset_exact": stats[1][1],
                     "ci": wilson_ci(stats[0][0], config["n"])})
    return {"rows": rows, "n": config["n"], "n_exact": config["n_exact"], "steps": steps,
            "success": bool(out.success), "sampler_seconds": sampler_seconds,
            "seconds": time.perf_counter() - started}


def cells(config):
    common = {k: config[k] for k in ("d", "data_seed", "sigma2_T", "sigma2_deltas",
                                     "h_lambda", "n", "n_exact")}
    return [(f"N={n_data}", scale_cell, {**common, "n_data": n_data})
            for n_data in config["n_data"]]


def summarise(cell_results, config, outdir):
    runs = sorted(((r.config["n_data"], r.result) for r in cell_results), key=lambda p: p[0])
    tests, rows = [], []
    for n_data, res in runs:
        for row in res["rows"]:
            test = two_proportion_test(row["memorized"], res["n"], row["memorized_exact"],
                                       res["n_exact"])
            tests.append(test)
            lo, hi = row["ci"]
            rows.append((n_data, f"{row['sigma2']:.3g}", test.p1, f"[{lo:.3f}, {hi:.3f}]",
                         test.p2, f"{test.z:.2f}"))
    widest = max(t.se for t in tests)
    ok = all(res["success"] for _, res in runs)
    claims = [at_most(
        "memorized fraction = exact p_delta's at every (N, delta), max |z| (pruned score)",
        SE_BAND, max(abs(t.z) for t in tests) if ok else float("inf"), detectable=SE_BAND,
        detail=f"{len(tests)} grid points, N = {', '.join(str(n) for n, _ in runs)}; sampler "
               f"n={config['n']}, exact n={config['n_exact']}; a fraction bias of "
               f"{SE_BAND * widest:.3f} at the widest point is detectable")]
    offsets = []
    for _, res in runs:
        for row in res["rows"]:
            (m1, se1), (m2, se2) = row["offset"], row["offset_exact"]
            offsets.append(abs(m1 - m2) / max(float(np.hypot(se1, se2)), 1e-300))
    claims.append(at_most(
        "mean (nearest distance / sigma_delta)^2 = exact p_delta's at every (N, delta), max |z|",
        SE_BAND, max(offsets) if ok else float("inf"), detectable=SE_BAND,
        detail="two-sample z of the means; detectable: a shift of 4.5 s.e. in the spread "
               "of the samples about their nearest training point"))
    timing = markdown_table(
        ("N", "steps", "sampler s", "cell s"),
        [(n_data, res["steps"], f"{res['sampler_seconds']:.1f}", f"{res['seconds']:.1f}")
         for n_data, res in runs])
    tables = [
        (f"Gaussian data, d = {config['d']}; SDE `exp_em` on `uniform_lambda` (spacing "
         f"{config['h_lambda']}) from exact p_T samples at sigma_T^2 = {config['sigma2_T']}; "
         "memorised: nearest / second-nearest training distance < 1/3; 95% Wilson "
         "intervals.\n\n" + markdown_table(
             ("N", "sigma_delta^2", "memorised (sampler)", "Wilson 95%",
              "memorised (exact p_delta)", "z"), rows)),
        "Wall time per cell (the sampler with the pruned score, then the audit):\n\n" + timing,
    ]
    return Summary(claims, [_figure(runs, outdir)], tables, captions=CAPTIONS)


def _figure(runs, outdir):
    fig, axes = new_figure(1, 2)
    ax_d, ax_n = axes[0]
    colors, _ = ordered_colors([n for n, _ in runs], cmap="plasma", span=0.75)
    for color, (n_data, res) in zip(colors, runs):
        s2 = [row["sigma2"] for row in res["rows"]]
        ci = np.array([row["ci"] for row in res["rows"]])
        ax_d.plot(s2, [row["memorized"] / res["n"] for row in res["rows"]], "o-", color=color,
                  ms=3, label=f"N={n_data}")
        ax_d.fill_between(s2, ci[:, 0], ci[:, 1], color=color, alpha=0.2)
        ax_d.plot(s2, [row["memorized_exact"] / res["n_exact"] for row in res["rows"]], ":",
                  color=color)
    log_axis(ax_d, "x")
    ax_d.set(xlabel="sigma_delta^2", ylabel="memorised fraction", title="against sigma_delta^2")
    style_key(ax_d, {"sampler (95% Wilson band)": {"marker": "o", "ms": 3},
                     "exact p_delta": {"ls": ":"}})
    n_values = [n for n, _ in runs]
    sigma2 = [row["sigma2"] for row in runs[0][1]["rows"]]
    fractions = [[res["rows"][j]["memorized"] / res["n"] for _, res in runs]
                 for j in range(len(sigma2))]
    note = ordered_curves(fig, ax_n, n_values, fractions, sigma2, "sigma_delta^2")
    log_axis(ax_n, "x", n_values)
    ax_n.set(xlabel="N", ylabel="memorised fraction",
             title="against N" + (f"\n{note}" if note else ""))
    return save_figure(fig, outdir, "scale")


_DELTAS = [3e-3, 1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 3e-7, 1e-7, 1e-8]

#: Caption of each figure in the report.
CAPTIONS = {
    "scale": (
        "Memorized fraction with the pruned score at large N: left, against sigma_delta^2 for "
        "each N, sampler against exact p_delta (95% Wilson band); right, against N for every "
        "sigma_delta^2. The sampler agrees with exact p_delta at every point (the two-"
        "proportion and offset claims)."
    ),
}


STUDY = Study(
    name="scale",
    title="Memorisation at scale: N up to 10^6 with the pruned score",
    description=__doc__.split("\n", 2)[2],
    cells=cells,
    summarise=summarise,
    default={"seed": 4409, "d": 2, "data_seed": 31, "n_data": [1000, 10_000, 100_000, 1_000_000],
             "sigma2_T": 1e-2, "sigma2_deltas": _DELTAS, "h_lambda": 0.025, "n": 2000,
             "n_exact": 4000},
    quick={"seed": 4409, "d": 2, "data_seed": 31, "n_data": [1000, 100_000],
           "sigma2_T": 1e-2, "sigma2_deltas": _DELTAS[::2], "h_lambda": 0.05, "n": 500,
           "n_exact": 1000},
)
