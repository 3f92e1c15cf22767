"""Study 10: stable minima of gradient descent are smooth (the seed's Section 3.1).

Noisy regression ``y_i = f0(x_i) + N(0, noise^2)`` with ``n`` inputs uniform on
``[-x_max, x_max]``, for two targets ``f0``, a sine (smooth) and a V (one kink),
each at a low noise level (where the bound binds) and a high one (where there is
noise to overfit): four *problems*. A two-layer ReLU net
(:mod:`numdiff.nets`) is trained by full-batch gradient descent at each step
size ``eta`` of a geometric grid, from several seeds; the same inputs, labels
and start draw are used at every ``eta`` for a given seed, so the comparison
across ``eta`` is paired. Each run starts from
:func:`~numdiff.nets.init_stable` (curvature at most 0.9 times ``2 / eta``):
a standard start is far sharper than ``2 / eta`` at the larger steps, and GD
then catapults and kills neurons before it learns anything.

Every run is classed, none is dropped: *no stable start* (``init_stable``
refuses ``eta``), *diverged*, *dead* (no neuron active on the data),
*collapsed* (live, but its training loss is no better than the
least-squares line's), *converged* (``||grad L|| <= tol``), or *unconverged*
(the step budget ran out; most of these hover at the edge of stability,
``lambda_max eta / 2`` near 1, and their final iterates are evaluated as they
are). Catapults (loss spikes, counted by ``train_gd``) are reported per cell.

Claims (*theorems*, pass/fail):

* linear stability: every converged run has ``lambda_max(H) eta / 2 <= 1``, up
  to the band the convergence tolerance leaves: each converged run is continued
  at a 100 times smaller tolerance and the largest change of its
  ``lambda_max eta / 2`` is the band;
* Liang, Qiao, Wang & Parhi (2025), Corollary 3.3 (the seed's Theorem 4 with
  its constant): every converged run has weighted TV ``int |f''| g <=
  1/eta - 1/2 + (R + 1) sqrt(2 L)``, with ``R = max |x_i|``; the measured
  value is the largest ratio TV / bound;
* their Theorem 3.2, which needs no convergence: at the final iterate of
  every run that did not diverge, ``int |f''| g <= lambda_max / 2 - 1/2 +
  (R + 1) sqrt(2 L)``; one claim per problem.

``lambda_max`` is computed here from the final parameters (Lanczos on exact
Hessian-vector products) and multiplied by the nominal ``eta``, not taken from
the training routine. Knots closer than ``knot_atol`` are merged
(:func:`numdiff.nets.second_derivative`: signed masses summed, placed at the
mass-weighted mean); a knot is *effective* when it lies inside the data range
and carries at least ``knot_share`` of the total ``|f''|`` mass there.

Findings (not pass/fail): the seed's reading of the theorem is that the learned
function gets smoother as ``eta`` grows. For each problem, Kendall's rank
correlation of ``eta`` with the weighted TV and with the number of effective
knots, over the live runs (converged or unconverged, not collapsed), with pairs
formed within a seed only (stratified), and a 95% interval from its variance
under independence (:func:`stratified_kendall`).
The error to ``f0`` (root mean square on a uniform grid of the data range) is
tabulated against ``eta`` with the same intervals. ``eta* = 1 / (TV_g(f0) +
1/2)`` is where the bound meets the target's own weighted TV: above it no
stable interpolating minimum can represent ``f0``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm
from scipy.stats import t as student_t

from numdiff import nets

from ..claims import Finding, at_most
from ..plotting import new_figure, save_figure
from ..report import markdown_table
from ..study import Study, Summary

#: Run classes in report order (see the module docstring).
CLASSES = ("converged", "unconverged", "collapsed", "dead", "diverged", "no stable start")
#: Classes whose final iterate is a trained network function.
LIVE = ("converged", "unconverged")


def target(name, x, amplitude, x_max):
    """The regression function ``f0`` named ``name`` at ``x``.

    Parameters
    ----------
    name : {"sine", "kink"}
        ``A sin(pi x / x_max)`` or ``A (|x| / x_max - 1/2)``.
    x : ndarray
    amplitude, x_max : float

    Returns
    -------
    ndarray, shape of ``x``
    """
    u = x / x_max
    if name == "sine":
        return amplitude * np.sin(np.pi * u)
    if name == "kink":
        return amplitude * (np.abs(u) - 0.5)
    raise ValueError(f"unknown target {name!r}")


def target_weighted_tv(name, amplitude, x_max, x):
    """``int |f0''| g`` with ``g`` from the inputs ``x``: the curvature ``f0`` needs.

    The kink is a point mass ``2 A / x_max`` at 0; the sine's ``|f0''|`` is
    integrated on a fine grid.
    """
    if name == "kink":
        return float(2.0 * amplitude / x_max * nets.weight_function(x, 0.0))
    grid = np.linspace(-x_max, x_max, 20_001)
    curvature = amplitude * (np.pi / x_max) ** 2 * np.abs(np.sin(np.pi * grid / x_max))
    return float(np.trapezoid(curvature * nets.weight_function(x, grid), grid))


def regression_data(config, index):
    """Inputs and noisy labels of seed ``index`` (the same at every ``eta``)."""
    rng = np.random.default_rng([config["data_seed"], index])
    x = rng.uniform(-config["x_max"], config["x_max"], config["n"])
    y = target(config["target"], x, config["amplitude"], config["x_max"])
    return x, y + config["noise"] * rng.standard_normal(config["n"])


def line_loss(x, y):
    """Training loss of the least-squares line: a net no better than it has collapsed."""
    design = np.column_stack([x, np.ones_like(x)])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return float(0.5 * np.mean((design @ coef - y) ** 2))


def effective_knots(params, x, atol, share):
    """Merged knots inside the data range carrying at least ``share`` of its ``|f''|`` mass."""
    measure = nets.second_derivative(params, rtol=0.0, atol=atol)
    inside = (measure.positions > x.min()) & (measure.positions < x.max())
    mass = np.abs(measure.masses[inside])
    return int(np.sum(mass >= share * mass.sum())) if mass.size else 0


def descend(x, y, start, eta, max_steps, tol):
    """Gradient descent from ``start`` (the one call into the training loop)."""
    return nets.train_gd(x, y, start, eta, max_steps=max_steps, tol=tol, sharpness=False)


def stable_start(x, y, k, eta, rng, margin):
    """:func:`numdiff.nets.init_stable`, or None when it refuses ``eta`` on these data."""
    try:
        return nets.init_stable(x, y, k, eta, rng, margin)
    except ValueError:
        return None


def fit(x, y, eta, start, max_steps, tol):
    """Gradient descent from ``start`` and the class of the outcome.

    Parameters
    ----------
    x, y : ndarray, shape (n,)
    eta : float
    start : ndarray or None
        Start parameters; None means there was no stable start.
    max_steps : int
    tol : float
        Gradient-norm tolerance.

    Returns
    -------
    (str, GDResult or None)
        One of :data:`CLASSES` and the run (None without a start).
    """
    if start is None:
        return "no stable start", None
    run = descend(x, y, start, eta, max_steps, tol)
    if run.status in ("diverged", "dead"):
        return run.status, run
    if run.loss >= line_loss(x, y):
        return "collapsed", run
    return ("unconverged" if run.status == "max_steps" else "converged"), run


def curvature(run, x, y, eta, continue_tol=None, max_steps=None):
    """``lambda_max``, ``lambda_max eta / 2`` and the weighted TV against both bounds.

    ``lambda_max`` is computed from the final parameters and multiplied by the
    nominal ``eta``, not taken from the training routine, so that a training
    loop that takes another step than it reports is seen.

    Parameters
    ----------
    run : GDResult
        A run that did not diverge.
    x, y : ndarray, shape (n,)
        Its training data.
    eta : float
        The nominal step size.
    continue_tol : float, optional
        Continue the run to this gradient tolerance and record
        ``tight_sharpness``, ``lambda_max eta / 2`` there (the band of the
        stability claim).
    max_steps : int, optional
        Step budget of the continuation.

    Returns
    -------
    dict
        ``loss, grad_norm, steps, lambda_max, sharpness, tv, stable_bound,
        flatness_bound, catapults, catapult_ratio`` (and ``tight_sharpness``).
    """
    radius = float(np.abs(x).max())
    lam = nets.lambda_max(run.params, x, y)
    out = {"loss": run.loss, "grad_norm": run.grad_norm, "steps": run.steps,
           "lambda_max": lam, "sharpness": lam * eta / 2.0,
           "tv": nets.weighted_tv(run.params, x),
           "stable_bound": nets.stable_tv_bound(eta, run.loss, radius),
           "flatness_bound": nets.flatness_tv_bound(lam, run.loss, radius),
           "catapults": run.n_catapults, "catapult_ratio": run.max_catapult_ratio}
    if continue_tol is not None:
        tight = descend(x, y, run.params, eta, max_steps, continue_tol)
        out["tight_sharpness"] = nets.lambda_max(tight.params, x, y) * eta / 2.0
    return out


def one_run(config, index):
    """Train seed ``index`` at the cell's ``eta`` and class the result."""
    x, y = regression_data(config, index)
    eta = config["eta"]
    start = stable_start(x, y, config["k"], eta,
                         np.random.default_rng([config["data_seed"], index, 1]), config["margin"])
    cls, run = fit(x, y, eta, start, config["max_steps"], config["tol"])
    if cls in ("no stable start", "diverged", "dead"):
        return {"class": cls, "catapults": run.n_catapults if run else 0}
    tighter = config["tol"] * config["tight_factor"] if cls == "converged" else None
    out = {"class": cls, **curvature(run, x, y, eta, tighter, config["max_steps"])}
    grid = np.linspace(x.min(), x.max(), config["error_points"])
    f0 = target(config["target"], grid, config["amplitude"], config["x_max"])
    out["error"] = float(np.sqrt(np.mean((nets.predict(run.params, grid) - f0) ** 2)))
    out["knots"] = effective_knots(run.params, x, config["knot_atol"], config["knot_share"])
    if index == 0:
        plot = np.linspace(-config["x_max"], config["x_max"], config["plot_points"])
        out["curve"] = nets.predict(run.params, plot)
    return out


def regression_cell(config, seed):
    """All seeds of one (problem, eta): runs, and the target's own weighted TV per seed."""
    runs = [one_run(config, i) for i in range(config["seeds"])]
    target_tv = [target_weighted_tv(config["target"], config["amplitude"], config["x_max"],
                                    regression_data(config, i)[0])
                 for i in range(config["seeds"])]
    return {"runs": runs, "target_tv": target_tv}


def cells(config):
    shared = {key: config[key] for key in (
        "n", "x_max", "k", "seeds", "max_steps", "tol", "tight_factor", "margin",
        "knot_atol", "knot_share", "error_points", "plot_points")}
    out = []
    for name, problem in config["problems"].items():
        for eta in config["etas"]:
            cell = {**shared, **problem, "problem": name, "eta": eta,
                    "data_seed": config["seed"]}
            out.append((f"{name} eta={eta:.3g}", regression_cell, cell))
    return out


# -- summary -----------------------------------------------------------------------------------


def _by_problem(cell_results):
    """Problem name -> list of (eta, result), eta increasing."""
    groups = {}
    for r in cell_results:
        groups.setdefault(r.config["problem"], []).append((r.config["eta"], r.result))
    return {name: sorted(rows, key=lambda row: row[0]) for name, rows in groups.items()}


def _runs(rows, classes=None):
    """(eta, seed index, run) of every run, or of those in ``classes``."""
    return [(eta, i, run) for eta, res in rows for i, run in enumerate(res["runs"])
            if classes is None or run["class"] in classes]


def _stability_claims(groups):
    """Linear stability and the stable bound at converged runs, all problems pooled."""
    converged = [run for rows in groups.values() for _, _, run in _runs(rows, ("converged",))]
    sharp = [run["sharpness"] for run in converged]
    band = max((abs(run["tight_sharpness"] - run["sharpness"]) for run in converged),
               default=0.0)
    ratios = [run["tv"] / run["stable_bound"] for run in converged]
    count = f"{len(converged)} converged runs over all problems and eta"
    return [
        at_most("converged runs: lambda_max eta / 2 <= 1 (linear stability), max", 1.0 + band,
                max(sharp, default=np.nan), uncertainty=band,
                detail=f"{count}; band {band:.2g} = largest change of lambda_max eta / 2 when "
                       "a converged run is continued to a 100x smaller gradient tolerance; "
                       "no converged run makes the claim fail (nan); detectable: the margin"),
        at_most("converged runs: weighted TV / (1/eta - 1/2 + (R+1) sqrt(2L)) <= 1, max", 1.0,
                max(ratios, default=np.nan),
                detail=f"{count}; Liang et al. 2025 Cor. 3.3 with R = max|x_i| and the run's "
                       "own training loss L; detectable: the margin"),
    ]


def bound_ratio(tv, bound):
    """``tv / bound``; a bound of 0 (``lambda_max = 1``, ``L = 0``) admits only ``tv = 0``."""
    if bound > 0.0:
        return tv / bound
    return np.inf if tv > 0.0 else 0.0


def _flatness_claim(name, rows):
    """Theorem 3.2 of Liang et al. at the final iterate of every run that did not diverge."""
    evaluated = [run for _, _, run in _runs(rows, LIVE + ("collapsed",))]
    worst = max((bound_ratio(run["tv"], run["flatness_bound"]) for run in evaluated), default=np.nan)
    return at_most(
        f"every final iterate: weighted TV / (lambda_max/2 - 1/2 + (R+1) sqrt(2L)) <= 1, max "
        f"({name})", 1.0, worst,
        detail=f"{len(evaluated)} final iterates (converged, unconverged and collapsed runs; "
               "dead nets have no curvature on the data) with lambda_max measured there; "
               "Liang et al. 2025 Thm 3.2 (no convergence needed); detectable: the margin")


def t_interval(values, level=0.95):
    """Mean and Student-t interval of ``values`` (``nan`` with fewer than two)."""
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if values.size < 2:
        mean = float(values.mean()) if values.size else np.nan
        return mean, np.nan, np.nan
    half = student_t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1)
    half /= np.sqrt(values.size)
    return float(values.mean()), float(values.mean() - half), float(values.mean() + half)


def stratified_kendall(strata, level=0.95):
    """Kendall's tau of ``x`` with ``y`` pooled over strata, and a normal interval.

    Pairs are only formed within a stratum (one seed: its own data and start),
    so differences between strata do not enter. ``S = sum over strata and pairs
    of sign(dx) sign(dy)``; ``tau = S / (number of pairs)``. The interval is
    ``tau +- z sd(S) / pairs`` with the variance of ``S`` under independence,
    corrected for ties in ``y`` (the Mann-Kendall variance), summed over strata,
    and clipped to ``[-1, 1]``; it never collapses to a point when few strata
    happen to agree.

    Parameters
    ----------
    strata : list of (array_like, array_like)
        ``(x, y)`` of each stratum.
    level : float

    Returns
    -------
    (float, float, float)
        ``tau`` and the interval; ``nan`` when no stratum has two points.
    """
    total, pairs, variance = 0.0, 0, 0.0
    for x, y in strata:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        n = x.size
        if n < 2:
            continue
        upper = np.triu_indices(n, 1)
        total += float(np.sum(np.sign(np.subtract.outer(x, x)[upper])
                              * np.sign(np.subtract.outer(y, y)[upper])))
        pairs += n * (n - 1) // 2
        ties = np.unique(y, return_counts=True)[1]
        variance += (n * (n - 1) * (2 * n + 5) - np.sum(ties * (ties - 1) * (2 * ties + 5))) / 18
    if pairs == 0:
        return np.nan, np.nan, np.nan
    tau = total / pairs
    half = norm.ppf(0.5 + level / 2) * np.sqrt(variance) / pairs
    return tau, max(tau - half, -1.0), min(tau + half, 1.0)


def _seed_strata(rows, key, n_seeds):
    """(eta, run[key]) over the live runs of each seed."""
    strata = []
    for i in range(n_seeds):
        pairs = [(eta, run[key]) for eta, j, run in _runs(rows, LIVE) if j == i]
        if pairs:
            strata.append(tuple(zip(*pairs)))
    return strata


TREND_KEYS = {
    "tv": ("weighted TV", -1, "smoother (smaller weighted TV) at larger eta"),
    "knots": ("effective knots", -1, "fewer effective knots at larger eta"),
}


def _trend_findings(name, rows, n_seeds):
    findings = []
    for key, (label, sign, conjecture) in TREND_KEYS.items():
        strata = _seed_strata(rows, key, n_seeds)
        tau, low, high = stratified_kendall(strata)
        findings.append(Finding(
            f"Kendall tau(eta, {label}) ({name})",
            f"Kendall's tau stratified by seed ({len(strata)} seeds, "
            f"{sum(len(x) for x, _ in strata)} live runs), normal interval from the null "
            "variance", tau, low, high, conjecture=conjecture, predicted_sign=sign,
            detail="live runs (converged or unconverged) only; pairs within a seed"))
    return findings


def _mean_ci(values):
    mean, low, high = t_interval(values)
    return mean if not np.isfinite(low) else f"{mean:.3g} [{low:.3g}, {high:.3g}]"


def _cell_rows(name, rows):
    """One table row per (problem, eta): classes, catapults, sharpness and smoothness."""
    out = []
    for eta, res in rows:
        runs = res["runs"]
        counts = "/".join(str(sum(r["class"] == c for r in runs)) for c in CLASSES)
        live = [r for r in runs if r["class"] in LIVE]
        sharp = [r["sharpness"] for r in runs if "sharpness" in r]
        out.append((
            name, eta, counts, sum(r.get("catapults", 0) > 0 for r in runs),
            f"{min(sharp):.3f}-{max(sharp):.3f}" if sharp else "-",
            max((r["tv"] / r["stable_bound"] for r in live), default=None),
            _mean_ci([r["tv"] for r in live]), _mean_ci([r["knots"] for r in live]),
            _mean_ci([r["error"] for r in live]),
        ))
    return out


def _binding_rows(groups, config):
    """Per problem: eta*, and where TV / stable bound is largest."""
    out = []
    for name, rows in groups.items():
        target_tv = float(np.mean(rows[0][1]["target_tv"]))
        live = _runs(rows, LIVE)
        eta, _, run = max(live, key=lambda e: e[2]["tv"] / e[2]["stable_bound"])
        out.append((name, target_tv, 1.0 / (target_tv + 0.5), eta,
                    run["tv"] / run["stable_bound"], run["sharpness"], run["class"]))
    return out


def summarise(cell_results, config, outdir):
    groups = _by_problem(cell_results)
    claims = _stability_claims(groups)
    claims += [_flatness_claim(name, rows) for name, rows in groups.items()]
    findings = [f for name, rows in groups.items()
                for f in _trend_findings(name, rows, config["seeds"])]
    live = [run for rows in groups.values() for _, _, run in _runs(rows, LIVE)]
    sharp = [run["sharpness"] for run in live]
    tables = [
        (f"{config['n']} inputs uniform on [-{config['x_max']}, {config['x_max']}], problems "
         + "; ".join(f"{name}: {p['amplitude']} x {p['target']}, label noise {p['noise']}"
                     for name, p in config["problems"].items())
         + f"; k = {config['k']} neurons, GD up to {config['max_steps']} steps, "
         f"gradient tolerance {config['tol']}, {config['seeds']} seeds per eta. Live runs "
         f"(converged or not) end with lambda_max eta / 2 in [{min(sharp):.3f}, "
         f"{max(sharp):.3f}]."),
        "Where the bound binds: TV_g(f0) is the target's own weighted TV (mean over seeds), "
        "eta* = 1 / (TV_g(f0) + 1/2); the largest TV / stable bound over live runs:\n\n"
        + markdown_table(("problem", "TV_g(f0)", "eta*", "eta at max ratio",
                          "max TV / bound", "lambda_max eta / 2 there", "class"),
                         _binding_rows(groups, config)),
        "Runs per cell, by class (" + " / ".join(CLASSES) + "); catapulted: runs whose loss "
        "rose at least once; means with Student-t 95% intervals over the live runs:\n\n"
        + markdown_table(("problem", "eta", "classes", "catapulted", "lambda_max eta / 2",
                          "max TV / stable bound (live)", "weighted TV", "effective knots",
                          "error to f0"),
                         [row for name, rows in groups.items() for row in _cell_rows(name, rows)]),
    ]
    figures = [_curvature_figure(groups, outdir), _smoothness_figure(groups, config, outdir)]
    return Summary(claims, figures, tables, findings)


CLASS_STYLE = {"converged": "C0o", "unconverged": "C1.", "collapsed": "C3x"}


def _eta_axis(ax, rows):
    """Log axis over the whole eta grid (the same in every panel of a column)."""
    etas = [eta for eta, _ in rows]
    ax.set(xscale="log", xlabel="eta", xlim=(min(etas) / 1.2, max(etas) * 1.2))


def _curvature_figure(groups, outdir):
    fig, axes = new_figure(2, len(groups), size=(4.0, 3.2))
    for col, (name, rows) in enumerate(groups.items()):
        top, bottom = axes[0][col], axes[1][col]
        for cls, style in CLASS_STYLE.items():
            runs = _runs(rows, (cls,))
            if runs:
                etas = [eta for eta, _, _ in runs]
                top.plot(etas, [r["sharpness"] for _, _, r in runs], style, ms=4, label=cls)
                bottom.plot(etas, [r["tv"] / r["stable_bound"] for _, _, r in runs], style,
                            ms=4, label=cls)
        for ax in (top, bottom):
            ax.axhline(1.0, color="k", lw=1)
            _eta_axis(ax, rows)
        top.set(ylabel="lambda_max eta / 2", title=name)
        bottom.set(ylabel="TV / (1/eta - 1/2 + (R+1) sqrt(2L))", ylim=(0, 1.1))
        top.legend(fontsize=7)
    return save_figure(fig, outdir, "stable_minima_curvature")


def _smoothness_figure(groups, config, outdir):
    fig, axes = new_figure(4, len(groups), size=(4.0, 3.0))
    plot = np.linspace(-config["x_max"], config["x_max"], config["plot_points"])
    for col, (name, rows) in enumerate(groups.items()):
        etas = np.array([eta for eta, _ in rows])
        for row, (key, label) in enumerate((("tv", "weighted TV"), ("knots", "effective knots"),
                                            ("error", "error to f0"))):
            ax = axes[row][col]
            stats = [t_interval([r[key] for r in res["runs"] if r["class"] in LIVE])
                     for _, res in rows]
            ax.plot(etas, [s[0] for s in stats], "C0o-", ms=3)
            ax.fill_between(etas, [s[1] for s in stats], [s[2] for s in stats], color="C0",
                            alpha=0.2)
            ax.set(ylabel=f"{label} (live runs)")
            _eta_axis(ax, rows)
        target_tv = float(np.mean(rows[0][1]["target_tv"]))
        axes[0][col].plot(etas, np.maximum(1.0 / etas - 0.5, 1e-3), "k--", lw=1,
                          label="1/eta - 1/2")
        axes[0][col].axhline(target_tv, color="C3", ls=":", label="TV_g(f0)")
        axes[0][col].set(yscale="log", title=name)
        axes[0][col].legend(fontsize=7)
        _example_fits(axes[3][col], rows, config["problems"][name], plot, config["x_max"])
    return save_figure(fig, outdir, "stable_minima_smoothness")


def _example_fits(ax, rows, problem, plot, x_max):
    """Seed 0's learned functions at up to four step sizes, beside ``f0``."""
    ax.plot(plot, target(problem["target"], plot, problem["amplitude"], x_max), "k-", lw=2,
            label="f0")
    fitted = [(eta, res["runs"][0]) for eta, res in rows if "curve" in res["runs"][0]]
    picks = np.unique(np.linspace(0, len(fitted) - 1, 4).round().astype(int))
    for j, p in enumerate(picks):
        eta, run = fitted[p]
        ax.plot(plot, run["curve"], f"C{j}-", lw=1, label=f"eta={eta:.2g} ({run['class']})")
    ax.set(xlabel="x", ylabel="f(x), seed 0")
    ax.legend(fontsize=6)


PROBLEMS = {
    f"{name}, noise {noise}": {"target": name, "amplitude": amplitude, "noise": noise}
    for noise in (0.05, 0.25) for name, amplitude in (("sine", 2.0), ("kink", 4.0))
}


def _config(etas, seeds):
    return {
        "seed": 9110, "problems": PROBLEMS, "n": 40, "x_max": 1.0, "k": 64,
        "etas": [float(e) for e in np.geomspace(0.05, 1.6, etas)], "seeds": seeds,
        "max_steps": 100_000, "tol": 1e-4, "tight_factor": 0.01, "margin": 0.9,
        "knot_atol": 1e-3, "knot_share": 0.01, "error_points": 401, "plot_points": 201,
    }


STUDY = Study(
    name="stable_minima",
    title="Stable minima of gradient descent are smooth (Section 3.1)",
    description=__doc__.split("\n", 2)[2],
    cells=cells,
    summarise=summarise,
    default=_config(11, 6),
    quick=_config(6, 3),
)
