"""Gradient descent on 1-D regression with two-layer ReLU nets: the runs of Section 3.1.

The helpers both Section 3.1 studies (``stable_minima``, ``step_size_memorization``)
share: the targets ``f0`` and their weighted total variation, the training data,
the stable start, one gradient-descent fit classed as in the ``stable_minima``
docstring, the curvature ``lambda_max`` at its final iterate, and the ratio of a
weighted TV to its stable bound.
"""

from __future__ import annotations

import numpy as np

from numdiff import nets

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

def select_runs(rows, classes=None):
    """(eta, seed index, run) of every run, or of those in ``classes``."""
    return [(eta, i, run) for eta, res in rows for i, run in enumerate(res["runs"])
            if classes is None or run["class"] in classes]

def bound_ratio(tv, bound):
    """``tv / bound``; a bound of 0 (``lambda_max = 1``, ``L = 0``) admits only ``tv = 0``."""
    if bound > 0.0:
        return tv / bound
    return np.inf if tv > 0.0 else 0.0
