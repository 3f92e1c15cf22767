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

from numdiff import nets

from ..claims import Finding, at_most
from ..report import markdown_table
from ..study import Study, Summary
from .common import stratified_kendall, t_interval
from .gd_regression import (
    CLASSES,
    LIVE,
    bound_ratio,
    curvature,
    effective_knots,
    fit,
    regression_data,
    select_runs,
    stable_start,
    target,
    target_weighted_tv,
)
from .stable_minima_plots import CAPTIONS, curvature_figure, smoothness_figure

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


def _stability_claims(groups):
    """Linear stability and the stable bound at converged runs, all problems pooled."""
    converged = [run for rows in groups.values() for _, _, run in select_runs(rows, ("converged",))]
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
                       "no converged run makes the claim fail (nan)"),
        at_most("converged runs: weighted TV / (1/eta - 1/2 + (R+1) sqrt(2L)) <= 1, max", 1.0,
                max(ratios, default=np.nan),
                detail=f"{count}; Liang et al. 2025 Cor. 3.3 with R = max|x_i| and the run's "
                       "own training loss L"),
    ]


def _flatness_claim(name, rows):
    """Theorem 3.2 of Liang et al. at the final iterate of every run that did not diverge."""
    evaluated = [run for _, _, run in select_runs(rows, LIVE + ("collapsed",))]
    worst = max((bound_ratio(run["tv"], run["flatness_bound"]) for run in evaluated),
                default=np.nan)
    return at_most(
        f"every final iterate: weighted TV / (lambda_max/2 - 1/2 + (R+1) sqrt(2L)) <= 1, max "
        f"({name})", 1.0, worst,
        detail=f"{len(evaluated)} final iterates (converged, unconverged and collapsed runs; "
               "dead nets have no curvature on the data) with lambda_max measured there; "
               "Liang et al. 2025 Thm 3.2 (no convergence needed)")


def _seed_strata(rows, key, n_seeds):
    """(eta, run[key]) over the live runs of each seed."""
    strata = []
    for i in range(n_seeds):
        pairs = [(eta, run[key]) for eta, j, run in select_runs(rows, LIVE) if j == i]
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
        live = select_runs(rows, LIVE)
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
    live = [run for rows in groups.values() for _, _, run in select_runs(rows, LIVE)]
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
    figures = [curvature_figure(groups, outdir), smoothness_figure(groups, config, outdir)]
    return Summary(claims, figures, tables, findings, captions=CAPTIONS)


STUDY = Study(
    name="stable_minima",
    title="Stable minima of gradient descent are smooth (Section 3.1)",
    description=__doc__.split("\n", 2)[2],
    cells=cells,
    summarise=summarise,
    default=_config(11, 6),
    quick=_config(6, 3),
)
