"""Study 1: early stopping, Theorem 3 of Li, Chen & Li (2024).

With the OU forward process, the exact empirical score of ``N`` points, the
horizon ``T = log(d / eps)`` and early stopping at ``delta = eps^2 / d``, the
output law ``q_{T - delta}`` of the reverse process satisfies
``TV(q_{T - delta}, p_delta) <= eps``.

The error is split with the triangle inequality. Write ``Phi`` for the
discretised reverse map (a bijection for the ODE, a Markov kernel for the SDE):

    TV(Phi # N(0, I), p_delta) <= TV(Phi # N(0, I), Phi # p_T) + TV(Phi # p_T, p_delta)
                               <= TV(N(0, I), p_T)       +  TV(Phi # p_T, p_delta).

The first term (initialisation) equals ``TV(N(0, I), p_T)`` for the ODE and is
bounded by it for the SDE (data processing); it is estimated by Monte Carlo from
the two known densities (``theory.tv.tv_monte_carlo``), with the rigorous bound
``theory.horizons.tv_prior_bound`` beside it. The second term (discretisation)
is measured by running the sampler from the exact ``p_T`` (``init="exact"``):

* ``d = 1``: the probability integral transform ``u = F_delta(x)`` (exact mixture
  CDF) maps ``p_delta`` to ``U[0, 1]``; the histogram of ``u`` in equal cells
  against the exact cell probability ``1 / bins``.
* ``d = 2``: the same with the Rosenblatt transform (``F(x1)``, ``F(x2 | x1)``).
* ``d = 16``: lower bounds only: the total variation between the laws of the
  nearest training index (against a large exact reference sample) and between
  1-D projections on random directions (exact projected CDF), the larger of them.

Every histogram statistic is a lower bound on the TV of the laws it compares
(coarse-graining never increases TV) plus a positive sampling bias; the *null
level* is the same statistic computed on independent exact samples of
``p_delta`` of the same size, and is reported as the uncertainty.

The initialisation claims (the rigorous bound, and the Monte Carlo estimate
against it) never run the sampler: they are *theory self-checks*. The sampler
is checked by the TV claims, and in ``d = 1`` also end to end, started from
``N(0, I)`` as the theorem states it. A *negative control* shows that the
``d = 1`` test can fail: the explicit Euler ODE on a uniform-``t`` grid with
10 steps must violate the bound, by more than the null level plus 4.5 of its
standard deviations.
"""

from __future__ import annotations

import warnings

import numpy as np

import numdiff as nd
from theory.horizons import theorem3_delta, theorem3_T, tv_prior_bound
from theory.mixture import mixture_logpdf, mixture_sample
from theory.tv import tv_monte_carlo

from ..claims import at_most, violates
from ..plotting import (
    REFERENCE_COLORS,
    distinct_colors,
    figure_legend,
    key_handle,
    log_axis,
    new_figure,
    save_figure,
)
from ..report import markdown_table
from ..study import Study, Summary
from .common import (
    SE_BAND,
    categorical_tv,
    gaussian_data,
    log_standard_normal,
    mixture_cdf_1d,
    nearest_points,
    ou_alpha_sigma2,
    ou_steps,
    rosenblatt_2d,
    uniform_hist_tv,
)


def _problem(config):
    d, eps = config["d"], config["eps"]
    data = gaussian_data(config["n_data"], d, config["data_seed"])
    return data, float(theorem3_T(eps, d)), float(theorem3_delta(eps, d))


def init_cell(config, seed):
    """Initialisation part: ``TV(N(0, I), p_T)`` by Monte Carlo, and its rigorous bound."""
    data, T, _ = _problem(config)
    alpha, sigma2 = ou_alpha_sigma2(T)
    d = config["d"]
    estimate, se = tv_monte_carlo(
        log_standard_normal,
        lambda x: mixture_logpdf(x, data, alpha, sigma2),
        lambda n, rng: rng.standard_normal((n, d)),
        config["n_mc"],
        seed,
    )
    return {"tv": estimate, "se": se, "bound": tv_prior_bound(data, alpha, sigma2), "T": T}


def _statistic(config, data, alpha, sigma2, rng):
    """The discretisation statistic for this dimension, as a function of samples."""
    d, sigma = config["d"], np.sqrt(sigma2)
    means = alpha * data
    if d == 1:
        return lambda x: uniform_hist_tv(mixture_cdf_1d(x[:, 0], means[:, 0], sigma),
                                         config["bins"])
    if d == 2:
        return lambda x: uniform_hist_tv(rosenblatt_2d(x, means, sigma), config["bins"])
    reference = nearest_points(mixture_sample(config["n_ref"], data, alpha, sigma2, rng), data)[0]
    directions = rng.standard_normal((config["directions"], d))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)

    def lower_bounds(x):
        index = categorical_tv(nearest_points(x, data)[0], reference, len(data))
        proj = max(
            uniform_hist_tv(mixture_cdf_1d(x @ v, means @ v, sigma), config["bins"])
            for v in directions
        )
        return max(index, proj)

    return lower_bounds


def discretisation_cell(config, seed):
    """Discretisation part: sampler started from the exact ``p_T``, compared with ``p_delta``."""
    data, T, delta = _problem(config)
    steps = config.get("steps") or ou_steps(T, delta, config["h_lambda"])
    # The control's explicit solver warns that it is beyond its stability limit;
    # the warning is kept in the result instead of interleaving with the progress.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = nd.sample(
            nd.EmpiricalScore(data, nd.OU()), config["n"], T=T, delta=delta,
            steps=steps, process=config["process"], solver=config["solver"],
            grid=config["grid"], init=config.get("init", "exact"), rng=seed, progress=False,
        )
    alpha, sigma2 = ou_alpha_sigma2(delta)
    rng = np.random.default_rng([seed, 1])
    stat = _statistic(config, data, alpha, sigma2, rng)
    nulls = [stat(mixture_sample(config["n"], data, alpha, sigma2, rng))
             for _ in range(config["null_sets"])]
    # A diverged run (non-finite samples) is measured as nan, which fails its claim.
    measured = stat(result.x) if result.success else float("nan")
    return {
        "measured": measured, "null": float(np.mean(nulls)), "null_sd": float(np.std(nulls)),
        "nfev": int(result.nfev), "success": bool(result.success), "message": result.message,
        "warnings": sorted({str(w.message) for w in caught}), "T": T, "delta": delta,
        "steps": steps,
    }


def cells(config):
    out = []
    for dim in config["dims"]:
        for eps in config["eps"]:
            base = {"d": dim["d"], "eps": eps, "n_data": dim["n_data"],
                    "data_seed": config["data_seed"]}
            out.append((f"init d={dim['d']} eps={eps}", init_cell,
                        {**base, "n_mc": config["n_mc"]}))
            run = {**base, **{k: dim[k] for k in dim if k not in ("d", "n_data")},
                   "h_lambda": config["h_lambda"], "grid": config["grid"],
                   "null_sets": config["null_sets"]}
            for process, solver in config["solvers"].items():
                out.append((f"{process} d={dim['d']} eps={eps}", discretisation_cell,
                            {**run, "process": process, "solver": solver}))
            if dim["d"] in config.get("end_to_end", ()):
                for process, solver in config["solvers"].items():
                    out.append((f"{process} from N(0,I) d={dim['d']} eps={eps}",
                                discretisation_cell,
                                {**run, "process": process, "solver": solver, "init": "normal"}))
            ctrl = config.get("control")
            if dim["d"] == 1 and ctrl and eps in ctrl.get("eps", config["eps"]):
                out.append((f"control d=1 eps={eps}", discretisation_cell,
                            {**run, "process": "ode", "solver": ctrl["solver"],
                             "grid": ctrl["grid"], "steps": ctrl["steps"], "control": True}))
    return out


def _init_claims(init, config):
    """Theory self-checks of the initialisation part (no sampler runs in them)."""
    claims = [
        at_most(
            f"rigorous TV(N(0,I), p_T) bound <= eps (d={d}, eps={eps})", eps, ini["bound"],
            kind="theory-check",
            detail="KL by convexity then Pinsker (theory.horizons.tv_prior_bound); closed "
                   "form")
        for (d, eps), ini in init.items()
    ]
    key = max(init, key=lambda k: init[k]["tv"] / init[k]["bound"])
    worst = init[key]
    claims.append(at_most(
        "Monte Carlo TV(N(0,I), p_T) / rigorous bound <= 1 (all d, eps)", 1.0,
        worst["tv"] / worst["bound"], worst["se"] / worst["bound"], kind="theory-check",
        detail=f"largest ratio over the grid (d={key[0]}, eps={key[1]}); Monte Carlo with "
               f"n={config['n_mc']} (theory.tv.tv_monte_carlo); uncertainty: its s.e. over "
               "the bound"))
    return claims


def _tv_claim(d, eps, process, ini, dis):
    """Theorem 3 for one sampler: initialisation (Monte Carlo) plus discretisation part."""
    total = ini["tv"] + dis["measured"]
    unc = float(np.hypot(ini["se"], dis["null"]))
    estimate = "histogram estimate" if d <= 2 else "lower bound"
    init_part = "= TV(N(0,I), p_T)" if process == "ode" else "<= TV(N(0,I), p_T)"
    return at_most(
        f"TV(q, p_delta) <= eps, {process}, d={d}, eps={eps}", eps, total, unc,
        detail=f"init part {init_part} (Monte Carlo) + discretisation {estimate} from the "
               "exact p_T; uncertainty = hypot(MC s.e., null level)")


def _direct_claim(d, eps, process, res):
    """Theorem 3 end to end: the sampler started from N(0, I), as the theorem states it."""
    return at_most(
        f"TV(q, p_delta) <= eps, {process} from N(0,I), d={d}, eps={eps}", eps,
        res["measured"], res["null"],
        detail="histogram TV of the sampler's output started from N(0, I) (a lower bound of "
               "the TV plus a sampling bias of about the null level, given as the "
               "uncertainty); checks the initialisation part on the sampler itself")


def _control_claim(eps, ctrl, config):
    """Negative control: a coarse explicit solver must show a TV above eps."""
    c = config["control"]
    # The histogram statistic overestimates the TV of its cells by the sampling bias,
    # whose size is the null level; what is left after 4.5 null spreads above it is a
    # lower bound on the discretisation TV alone (init and coarse-graining only add).
    lower = ctrl["measured"] - ctrl["null"] - SE_BAND * ctrl["null_sd"]
    return violates(
        f"negative control: ODE {c['solver']} on {c['grid']} with {c['steps']} steps "
        f"violates TV <= eps (d=1, eps={eps})", eps, lower, ctrl["null_sd"],
        detail=f"discretisation TV from the exact p_T, minus the null level and {SE_BAND} "
               "null s.d.; shows the d = 1 histogram test can fail")


def summarise(cell_results, config, outdir):
    init, disc, control, direct = {}, {}, {}, {}
    for r in cell_results:
        c = r.config
        key = (c["d"], c["eps"])
        if "n_mc" in c:
            init[key] = r.result
        elif c.get("control"):
            control[key] = r.result
        elif c.get("init") == "normal":
            direct[key + (c["process"],)] = r.result
        else:
            disc[key + (c["process"],)] = r.result

    claims = _init_claims(init, config)
    rows = []
    for (d, eps, process), dis in disc.items():
        ini = init[(d, eps)]
        claims.append(_tv_claim(d, eps, process, ini, dis))
        rows.append((d, eps, ini["T"], dis["delta"], process, config["solvers"][process],
                     dis["steps"], ini["tv"], ini["se"], ini["bound"], dis["measured"],
                     dis["null"], ini["tv"] + dis["measured"]))
    claims.extend(_direct_claim(d, eps, process, res)
                  for (d, eps, process), res in direct.items())
    claims.extend(_control_claim(eps, ctrl, config) for (_, eps), ctrl in control.items())
    tables = [
        f"Sampler: the `{config['grid']}` grid (uniform in log-SNR lambda) with spacing "
        f"at most {config['h_lambda']} in lambda (steps in the table), "
        f"solvers {config['solvers']}; {config['null_sets']} exact null sets per cell. Data: "
        "N points from N(0, I_d) (seed in the configuration). In d <= 2 the discretisation "
        "part is a histogram TV in the Rosenblatt coordinates (equal-probability cells: "
        + ", ".join(f"d={m['d']}: {m['bins']} per axis, n={m['n']}" for m in config["dims"]
                    if m["d"] <= 2)
        + "); in d = 16 the larger of the nearest-index TV and the largest of "
          "the 1-D projection TVs (lower bounds of the true TV).",
        markdown_table(
            ("d", "eps", "T", "delta", "process", "solver", "steps", "TV init (MC)", "MC s.e.",
             "rigorous init bound", "disc. measured", "null level", "total"), rows),
    ]
    if control:
        ctrl = config["control"]
        tables.append(
            f"Control (power of the d = 1 histogram test): ODE `{ctrl['solver']}` on the "
            f"`{ctrl['grid']}` grid with {ctrl['steps']} steps, from the exact p_T. "
            "A coarse explicit solver should stand out above the null level.\n\n"
            + markdown_table(("eps", "disc. measured", "null level"),
                             [(eps, r["measured"], r["null"]) for (_, eps), r in control.items()]))
    figures = [_figure(init, disc, config, outdir)]
    return Summary(claims, figures, tables, captions=CAPTIONS)


def _figure(init, disc, config, outdir):
    dims = [m["d"] for m in config["dims"]]
    fig, axes = new_figure(1, len(dims))
    eps = np.array(config["eps"], dtype=float)
    colors = distinct_colors(len(config["solvers"]) + 1)
    for ax, d in zip(axes[0], dims):
        ax.plot(eps, eps, "-", color=REFERENCE_COLORS[0], label="eps (Theorem 3)")
        ax.plot(eps, [init[(d, e)]["bound"] for e in eps], ":", color=REFERENCE_COLORS[1],
                label="rigorous bound on the initialisation error")
        ax.plot(eps, [init[(d, e)]["tv"] for e in eps], "s-", color=colors[-1],
                label="initialisation error (Monte Carlo)")
        for color, process in zip(colors, config["solvers"]):
            meas = np.array([disc[(d, e, process)]["measured"] for e in eps])
            null = np.array([disc[(d, e, process)]["null"] for e in eps])
            ax.plot(eps, meas, "o-", color=color, label=f"{process}: histogram TV")
            ax.plot(eps, null, "x--", color=color, alpha=0.7)
        log_axis(ax, "x", eps)
        log_axis(ax, "y")
        ax.set(xlabel="eps", ylabel="total variation",
               title=f"d = {d}" + (" (lower bounds)" if d > 2 else ""))
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles.append(key_handle(ls="--", marker="x", alpha=0.7))
    labels.append("its null level (exact samples)")
    # As many columns as panels (at most 3): a one-panel figure is too narrow for three.
    figure_legend(fig, handles, labels, ncols=min(3, len(dims)))
    return save_figure(fig, outdir, "early_stopping")


#: Caption of each figure in the report.
CAPTIONS = {
    "early_stopping": (
        "Total variation against eps, one panel per dimension: the Monte Carlo initialisation "
        "error with its rigorous bound, and each sampler's histogram TV with its null level "
        "(the same statistic on exact samples). Every point must stay under the line TV = eps: "
        "the Theorem 3 claims `TV(q, p_delta) <= eps` and the initialisation bounds (for d > 2 "
        "the histogram TVs are lower bounds)."
    ),
}


STUDY = Study(
    name="early_stopping",
    title="Early stopping: Theorem 3",
    description=__doc__.split("\n", 2)[2],
    cells=cells,
    summarise=summarise,
    default={
        "seed": 3101, "data_seed": 11, "eps": [0.05, 0.1, 0.2], "h_lambda": 0.05,
        "grid": "uniform_lambda", "solvers": {"ode": "ddim", "sde": "exp_em"},
        "n_mc": 20000, "null_sets": 4,
        "dims": [
            {"d": 1, "n_data": 16, "n": 100000, "bins": 100},
            {"d": 2, "n_data": 16, "n": 100000, "bins": 15},
            {"d": 16, "n_data": 32, "n": 20000, "bins": 20, "directions": 8, "n_ref": 200000},
        ],
        # At eps = 0.2 (delta = 0.04) the coarse Euler run is only 0.08 from p_delta in
        # TV: no violation to observe, so the control runs where it must violate.
        "control": {"solver": "euler", "grid": "uniform_t", "steps": 10, "eps": [0.05, 0.1]},
        "end_to_end": [1],
    },
    quick={
        "seed": 3101, "data_seed": 11, "eps": [0.1], "h_lambda": 0.1,
        "grid": "uniform_lambda", "solvers": {"ode": "ddim", "sde": "exp_em"},
        "n_mc": 5000, "null_sets": 2,
        "dims": [
            {"d": 1, "n_data": 16, "n": 20000, "bins": 50},
            {"d": 2, "n_data": 16, "n": 20000, "bins": 10},
            {"d": 16, "n_data": 32, "n": 4000, "bins": 10, "directions": 4, "n_ref": 40000},
        ],
        "control": {"solver": "euler", "grid": "uniform_t", "steps": 10}, "end_to_end": [1],
    },
)
