"""Random starting points for gradient descent: the standard one and a stable one."""

from __future__ import annotations

import numpy as np

from numdiff._checks import as_count
from numdiff.nets._checks import data, generator, positive
from numdiff.nets.curvature import lambda_max

__all__ = ["init_stable", "init_standard"]

# Widths beyond this are refused: the GD kernel's O(k n) work per step is the limit.
MAX_WIDTH = 1 << 20
# Halvings of the hidden weights tried by init_stable before giving up (2^-60 ~ 1e-18).
MAX_HALVINGS = 60


def init_standard(k, rng=None):
    """The common default for fully connected layers, with fan-in 1 then ``k``.

    ``w1_j, b1_j ~ U(-1, 1)`` and ``w2_j, b2 ~ U(-1/sqrt(k), 1/sqrt(k))``, all
    independent; the knots ``-b1_j / w1_j`` then follow the ratio of two
    uniforms (density 1/4 on ``[-1, 1]``, ``1 / (4 t^2)`` outside).

    Parameters
    ----------
    k : int
        Number of hidden neurons, ``>= 1``.
    rng : None, int, or numpy.random.Generator
        Normalised with :func:`numpy.random.default_rng`.

    Returns
    -------
    ndarray, shape (3 k + 1,)
        The flat parameter vector ``[w1, b1, w2, b2]``.
    """
    k = as_count(k, "k", 1, MAX_WIDTH)
    rng = generator(rng)
    hidden = rng.uniform(-1.0, 1.0, size=2 * k)
    bound = 1.0 / np.sqrt(k)
    return np.concatenate([hidden, rng.uniform(-bound, bound, size=k + 1)])


def check_margin(margin):
    """``margin`` as a float in ``(0, 1]``, or an error naming it."""
    margin = positive(margin, "margin")
    if margin > 1.0:
        raise ValueError(f"margin must be in (0, 1]; got {margin!r}")
    return margin


def _limit_curvature(theta, k, x, y):
    """``lambda_max`` as the hidden weights shrink to 0 with their knots fixed.

    The Gauss-Newton part tends to ``e_b2 e_b2^T`` (eigenvalue 1) and the residual
    part, with ``r = b2 - y``, to blocks ``[[0, 0, A], [0, 0, B], [A, B, 0]]`` on
    ``(w1_j, b1_j, w2_j)`` with eigenvalues ``+-sqrt(A_j^2 + B_j^2)``.
    """
    active = (theta[:k, None] * x[None, :] + theta[k:2 * k, None]) > 0.0
    r = theta[3 * k] - y
    a = active @ (r * x) / x.shape[0]
    b = active @ r / x.shape[0]
    return max(1.0, float(np.sqrt(a * a + b * b).max()))


def init_stable(x, y, k, eta, rng=None, margin=0.9):
    """A standard draw shrunk until ``lambda_max(H) <= margin * 2 / eta``.

    Starts from :func:`init_standard`, sets ``b2 = mean(y)`` (the best constant,
    which shrinks the residual part of the Hessian), then halves ``w1, b1, w2``
    together until the sharpness is below ``margin * 2 / eta``. Scaling them by
    ``s`` keeps every knot in place and scales ``f - b2`` by ``s^2``, so the
    function shape of the draw is kept. Each trial costs one :func:`lambda_max`.

    Parameters
    ----------
    x, y : array_like, shape (n,)
        Training inputs and labels.
    k : int
        Number of hidden neurons, ``>= 1``.
    eta : float
        The step size the start must be stable for, ``> 0``.
    rng : None, int, or numpy.random.Generator
    margin : float
        In ``(0, 1]``: the start's ``lambda_max * eta / 2``, at most.

    Returns
    -------
    ndarray, shape (3 k + 1,)

    Raises
    ------
    ValueError
        If no shrinking reaches the target: even vanishing hidden weights leave
        curvature ``max(1, max_j sqrt(A_j^2 + B_j^2))`` (the output bias and the
        residual couplings), which needs ``eta < 2 margin`` at least.
    """
    x, y = data(x, y)
    eta = positive(eta, "eta")
    margin = check_margin(margin)
    theta = init_standard(k, rng)
    k = (theta.shape[0] - 1) // 3
    theta[3 * k] = y.mean()
    target = margin * 2.0 / eta
    floor = _limit_curvature(theta, k, x, y)
    if floor >= target:
        raise ValueError(
            f"eta = {eta!r} is too large for a stable start on these data: the curvature at "
            f"vanishing hidden weights is {floor:.6g} >= margin * 2 / eta = {target:.6g}")
    for _ in range(MAX_HALVINGS):
        if lambda_max(theta, x, y) <= target:
            return theta
        theta[:3 * k] *= 0.5
    raise ValueError(f"eta = {eta!r}: no stable start found after {MAX_HALVINGS} halvings")
