"""Full-batch gradient descent at a constant step, one run or a sweep.

The loop is one Numba kernel (:func:`numdiff.nets._kernels.gd_loop`): two
``O(k n)`` passes per step (forward, then backward), no allocation inside. It
releases the GIL, so :func:`gd_sweep` runs independent runs on threads.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from numdiff._checks import as_count
from numdiff.nets import _kernels
from numdiff.nets._checks import data, flat_params, non_negative, positive, width_of
from numdiff.nets.curvature import lambda_max
from numdiff.nets.initialisation import check_margin, init_stable, init_standard
from numdiff.nets.relu import unpack

__all__ = ["GDResult", "gd_sweep", "train_gd"]

STATUS = {
    _kernels.CONVERGED: "converged",
    _kernels.DIVERGED: "diverged",
    _kernels.MAX_STEPS: "max_steps",
    _kernels.DEAD: "dead",
}
# Catapult episodes whose start step is recorded (the count itself is exact).
MAX_RECORDED_CATAPULTS = 256
# The loss history holds max_steps + 1 floats: 10^8 steps is 800 MB.
MAX_STEPS_LIMIT = 10**8


@dataclass(frozen=True)
class GDResult:
    """Outcome of one gradient-descent run.

    Parameters
    ----------
    status : str
        ``"converged"``: ``||grad L|| <= tol`` with some neuron active on the
        data. ``"dead"``: every neuron is inactive at every data point, so the
        hidden gradients are exactly 0 and only ``b2`` could still move; never
        reported as converged. ``"diverged"``: the loss exceeded the cap.
        ``"max_steps"``: none of these within the step budget.
    params : ndarray, shape (3 k + 1,)
        The last iterate (for ``"diverged"``, the first one above the cap).
    loss : float
        Its loss.
    grad_norm : float
        Its gradient norm (``inf`` for ``"diverged"``: not evaluated there).
    steps : int
        Updates made.
    eta : float
        The step size.
    losses : ndarray, shape (steps + 1,)
        Loss of every iterate, the start included.
    n_catapults : int
        Loss-increase episodes: the loss rose above ``(1 + catapult_rtol)``
        times its running minimum (each episode counted once, until the loss
        is back below that level).
    catapult_starts : ndarray of int
        First step of each episode (at most the first 256).
    max_catapult_ratio : float
        Largest ``peak loss / running minimum`` over the episodes (1.0: none).
    sharpness : float or None
        ``lambda_max(H) * eta / 2`` at the last iterate (``<= 1``: linearly
        stable there); None when diverged or not asked for.
    """

    status: str
    params: np.ndarray
    loss: float
    grad_norm: float
    steps: int
    eta: float
    losses: np.ndarray
    n_catapults: int
    catapult_starts: np.ndarray
    max_catapult_ratio: float
    sharpness: float | None

    @property
    def catapulted(self):
        """Whether the loss went up at least once (see ``n_catapults``)."""
        return self.n_catapults > 0

    @property
    def view(self):
        """:class:`~numdiff.nets.relu.Params` view of ``params``."""
        return unpack(self.params)


def _loss_cap(theta, k, x, y, divergence_factor):
    """``divergence_factor`` times the larger of the start loss and ``var(y) / 2``."""
    start = _kernels.residual_loss(theta, k, x, y, np.empty(x.shape[0]))
    scale = max(float(start), 0.5 * float(np.var(y)))
    return divergence_factor * (scale if scale > 0.0 else 1.0)


def _run(theta, x, y, eta, max_steps, tol, divergence_factor, catapult_rtol, sharpness):
    """One run on checked arguments; ``theta`` is overwritten."""
    k = width_of(theta)
    cap = _loss_cap(theta, k, x, y, divergence_factor)
    losses = np.empty(max_steps + 1)
    starts = np.empty(MAX_RECORDED_CATAPULTS, dtype=np.int64)
    code, steps, value, norm, n_cat, ratio = _kernels.gd_loop(
        theta, k, x, y, eta, max_steps, tol, cap, catapult_rtol, losses, starts)
    status = STATUS[code]
    if status != "diverged" and not np.isfinite(theta).all():
        status = "diverged"  # belt and braces: the cap should always fire first
    if status == "diverged":
        norm = np.inf  # not evaluated: the gradient there may overflow
    sharp = None
    if sharpness and status != "diverged":
        sharp = lambda_max(theta, x, y) * eta / 2.0
    return GDResult(
        status=status, params=theta, loss=float(value), grad_norm=float(norm), steps=int(steps),
        eta=eta, losses=losses[:steps + 1].copy(), n_catapults=int(n_cat),
        catapult_starts=starts[:min(n_cat, MAX_RECORDED_CATAPULTS)].copy(),
        max_catapult_ratio=float(ratio), sharpness=sharp)


def _check_options(eta, max_steps, tol, divergence_factor, catapult_rtol):
    eta = positive(eta, "eta")
    max_steps = as_count(max_steps, "max_steps", 0, MAX_STEPS_LIMIT)
    tol = non_negative(tol, "tol")
    divergence_factor = positive(divergence_factor, "divergence_factor")
    if divergence_factor <= 1.0:
        raise ValueError(f"divergence_factor must be > 1; got {divergence_factor!r}")
    catapult_rtol = non_negative(catapult_rtol, "catapult_rtol")
    return eta, max_steps, tol, divergence_factor, catapult_rtol


def train_gd(x, y, params, eta, *, max_steps=10_000, tol=1e-8, divergence_factor=1e6,
             catapult_rtol=1e-2, sharpness=True):
    """Full-batch gradient descent ``theta <- theta - eta grad L(theta)`` at constant ``eta``.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Training inputs and labels.
    params : array_like, shape (3 k + 1,), or Params
        Start point (copied; see :func:`~numdiff.nets.initialisation.init_standard`
        and :func:`~numdiff.nets.initialisation.init_stable`).
    eta : float
        Step size, ``> 0``.
    max_steps : int
        Update budget, in ``[0, 10^8]`` (the loss history keeps every step).
    tol : float
        Stop as converged when ``||grad L||_2 <= tol`` (checked before each update).
    divergence_factor : float
        Stop as diverged when the loss exceeds this factor, ``> 1``, times
        ``max(L(start), var(y) / 2)``.
    catapult_rtol : float
        Relative rise above the running minimum of the loss that opens a
        catapult episode.
    sharpness : bool
        Compute ``lambda_max * eta / 2`` at the last iterate (one Lanczos run).

    Returns
    -------
    GDResult
    """
    x, y = data(x, y)
    theta = flat_params(params).copy()
    options = _check_options(eta, max_steps, tol, divergence_factor, catapult_rtol)
    return _run(theta, x, y, *options, bool(sharpness))


def gd_sweep(x, y, k, etas, seeds, *, init="standard", margin=0.9, workers=None,
             max_steps=10_000, tol=1e-8, divergence_factor=1e6, catapult_rtol=1e-2,
             sharpness=True):
    """Gradient descent for every (step size, seed) pair, runs on parallel threads.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Training inputs and labels.
    k : int
        Number of hidden neurons.
    etas : sequence of float
        Step sizes, each ``> 0``.
    seeds : sequence of int
        Seeds of the starting points, each a non-negative int.
    init : {"standard", "stable"}
        :func:`~numdiff.nets.initialisation.init_standard`, or
        :func:`~numdiff.nets.initialisation.init_stable` with ``margin`` for each
        run's own ``eta``.
    margin : float
        Passed to ``init_stable``.
    workers : int or None
        Threads (default: the cores this process may use).
    max_steps, tol, divergence_factor, catapult_rtol, sharpness
        As in :func:`train_gd`.

    Returns
    -------
    list of GDResult
        In the order of ``itertools.product(etas, seeds)``.
    """
    x, y = data(x, y)
    if init not in ("standard", "stable"):
        raise ValueError(f"init must be 'standard' or 'stable'; got {init!r}")
    etas = [positive(eta, "etas") for eta in _sequence(etas, "etas")]
    seeds = [as_count(seed, "seeds", 0, 2**63 - 1) for seed in _sequence(seeds, "seeds")]
    _check_options(etas[0], max_steps, tol, divergence_factor, catapult_rtol)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    workers = as_count(workers, "workers", 1, 1024)
    # Fail on a bad k or margin here, not inside a worker thread.
    init_standard(k, 0)
    if init == "stable":
        check_margin(margin)

    def one(pair):
        eta, seed = pair
        start = init_stable(x, y, k, eta, seed, margin) if init == "stable" else init_standard(k, seed)
        return _run(start, x, y, eta, max_steps, tol, divergence_factor, catapult_rtol, sharpness)

    # The kernels and BLAS release the GIL, so the runs overlap on the threads.
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, itertools.product(etas, seeds)))


def _sequence(values, name):
    """``values`` as a non-empty list, or an error naming ``name``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence; got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values
