"""Numba kernels of the two-layer univariate ReLU net: forward, backward, the GD loop.

Private: they take a flat float64 parameter vector ``theta = [w1, b1, w2, b2]``
(layout in :mod:`numdiff.nets.relu`), the width ``k`` and clean float64 data,
and trust all of it. Each pass over the ``k x n`` pre-activations costs
``O(k n)``; the pre-activation ``w1_j x_i + b1_j`` is recomputed in each pass
rather than stored, because a stored ``k x n`` block (8 MB at k = n = 1000)
would stream from memory where the recomputation is two flops from L1.

A neuron counts as active at ``x_i`` when its pre-activation is ``> 0`` (the
ReLU derivative at 0 is taken as 0); the loss is twice differentiable wherever
no pre-activation is exactly 0.
"""

import numpy as np

from numdiff._kernels.jit import jit

# Status codes of gd_loop, mapped to names in numdiff.nets.training.
CONVERGED, DIVERGED, MAX_STEPS, DEAD = 0, 1, 2, 3


@jit
def predict_into(theta, k, x, out):
    """``out[i] = f(x[i])``; the neuron loop is outside so that the point loop vectorises."""
    b2 = theta[3 * k]
    for i in range(x.shape[0]):
        out[i] = b2
    for j in range(k):
        a, c, v = theta[j], theta[k + j], theta[2 * k + j]
        for i in range(x.shape[0]):
            out[i] += v * max(a * x[i] + c, 0.0)


@jit
def residual_loss(theta, k, x, y, r):
    """Residuals ``r = f(x) - y`` into ``r``; returns ``L = sum(r^2) / (2 n)``."""
    predict_into(theta, k, x, r)
    total = 0.0
    for i in range(x.shape[0]):
        r[i] -= y[i]
        total += r[i] * r[i]
    return 0.5 * total / x.shape[0]


@jit
def gradient_into(theta, k, x, r, grad):
    """``grad = dL/dtheta`` from the residuals; returns ``||grad||_2^2``.

    ``dL/dw1_j = w2_j S_j(r x) / n``, ``dL/db1_j = w2_j S_j(r) / n`` and
    ``dL/dw2_j = S_j(r z) / n``, where ``S_j`` sums over the points where neuron
    ``j`` is active and ``z`` is its pre-activation. ``S_j(r z)`` is summed
    directly, not as ``w1_j S_j(r x) + b1_j S_j(r)``, which would cancel when
    the knot is far from the data.
    """
    n = x.shape[0]
    inv_n = 1.0 / n
    for j in range(k):
        a, c = theta[j], theta[k + j]
        s_rx = 0.0
        s_r = 0.0
        s_rz = 0.0
        for i in range(n):
            z = a * x[i] + c
            ri = r[i] if z > 0.0 else 0.0
            s_rx += ri * x[i]
            s_r += ri
            s_rz += ri * z
        v = theta[2 * k + j]
        grad[j] = v * s_rx * inv_n
        grad[k + j] = v * s_r * inv_n
        grad[2 * k + j] = s_rz * inv_n
    s = 0.0
    for i in range(n):
        s += r[i]
    grad[3 * k] = s * inv_n
    norm2 = 0.0
    for p in range(3 * k + 1):
        norm2 += grad[p] * grad[p]
    return norm2


@jit
def any_active(theta, k, x):
    """Whether some neuron is active at some data point (else the net is dead)."""
    for j in range(k):
        a, c = theta[j], theta[k + j]
        for i in range(x.shape[0]):
            if a * x[i] + c > 0.0:
                return True
    return False


@jit
def gd_loop(theta, k, x, y, eta, max_steps, tol, loss_cap, catapult_rtol, losses, starts):
    """Full-batch gradient descent ``theta <- theta - eta grad L`` in place.

    Parameters
    ----------
    theta : ndarray, shape (3 k + 1,)
        Start point; overwritten with the last iterate.
    k : int
    x, y : ndarray, shape (n,)
    eta, tol, loss_cap, catapult_rtol : float
        Step size; stop when ``||grad L|| <= tol``; stop as diverged when
        ``L > loss_cap``; an increase of the loss above ``(1 + catapult_rtol)``
        times its running minimum starts a catapult episode, which ends when the
        loss is back below that level.
    max_steps : int
    losses : ndarray, shape (max_steps + 1,)
        Receives the loss of every evaluated iterate.
    starts : ndarray of int64
        Receives the step at which each of the first ``len(starts)`` episodes
        began.

    Returns
    -------
    status, steps, loss, grad_norm, n_catapults, max_ratio
        ``max_ratio`` is the largest ``peak loss / running minimum`` over the
        episodes (1.0 without one).
    """
    n = x.shape[0]
    r = np.empty(n)
    grad = np.empty(3 * k + 1)
    status = MAX_STEPS
    step = 0
    run_min = 0.0
    peak = 0.0
    in_episode = False
    n_cat = 0
    max_ratio = 1.0
    loss = 0.0
    norm = 0.0
    while True:
        loss = residual_loss(theta, k, x, y, r)
        losses[step] = loss
        # The cap is finite and far below overflow: a diverging run crosses it
        # before any value turns infinite or NaN, which fast-math may not see.
        if loss > loss_cap:
            status = DIVERGED
            break
        if step == 0:
            run_min = loss
        elif in_episode:
            peak = max(peak, loss)
            if loss <= run_min * (1.0 + catapult_rtol):
                in_episode = False
                if run_min > 0.0:
                    max_ratio = max(max_ratio, peak / run_min)
                run_min = min(run_min, loss)
        elif loss > run_min * (1.0 + catapult_rtol):
            in_episode = True
            peak = loss
            if n_cat < starts.shape[0]:
                starts[n_cat] = step
            n_cat += 1
        else:
            run_min = min(run_min, loss)
        norm = np.sqrt(gradient_into(theta, k, x, r, grad))
        # A dead net has exactly zero hidden gradients (only b2 still moves):
        # test activity, O(k n), only then.
        hidden_zero = True
        for p in range(3 * k):
            if grad[p] != 0.0:
                hidden_zero = False
                break
        if hidden_zero and not any_active(theta, k, x):
            status = DEAD
            break
        if norm <= tol:
            status = CONVERGED
            break
        if step == max_steps:
            break
        for p in range(3 * k + 1):
            theta[p] -= eta * grad[p]
        step += 1
    if in_episode and run_min > 0.0:
        max_ratio = max(max_ratio, peak / run_min)
    return status, step, loss, norm, n_cat, max_ratio
