"""Exact Hessian of the training loss: products, the dense matrix, ``lambda_max``.

Wherever no pre-activation ``z_ij = w1_j x_i + b1_j`` is exactly 0, the loss
``L = (1/(2n)) sum_i r_i^2`` (``r_i = f(x_i) - y_i``) is twice differentiable and

    H = (1/n) J^T J  +  (1/n) sum_i r_i  d^2 f(x_i) / dtheta^2,

with ``J`` the ``n x (3k+1)`` Jacobian of the outputs (rows ``df(x_i)/dtheta``).
The first term is the Gauss-Newton part ``G``. In the second, ReLU'' = 0 leaves
only the bilinear couplings of ``w2_j relu(w1_j x + b1_j)``:

    d^2 f / dw2_j dw1_j = 1[z_j > 0] x,    d^2 f / dw2_j db1_j = 1[z_j > 0],

so with ``A_j = (1/n) sum_i r_i 1[z_ij > 0] x_i`` and ``B_j = (1/n) sum_i r_i
1[z_ij > 0]`` the residual part maps ``v = (alpha, delta, gamma, iota)`` to
``(gamma A, gamma B, alpha A + delta B, 0)``. Each product costs ``O(k n)``.

This is the decomposition used in the proof of Theorem 3.2 of Liang, Qiao, Wang
& Parhi (2025), "Stable minima of ReLU neural networks suffer from the curse of
dimensionality" (Appendix C, "Term A" and "Term B"), and in Qiao et al. (2024).
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator, eigsh

from numdiff.nets._checks import data, flat_params, non_negative, vector, width_of

__all__ = ["hessian", "hessian_operator", "hvp", "lambda_max"]

PARTS = ("full", "gauss_newton")
# Dense Hessians are for tests and small nets: 3001 parameters is a 72 MB matrix.
MAX_DENSE_PARAMS = 3001


def _check_part(part):
    if not isinstance(part, str):
        raise TypeError(f"part must be 'full' or 'gauss_newton'; got {type(part).__name__}")
    if part not in PARTS:
        raise ValueError(f"part must be 'full' or 'gauss_newton'; got {part!r}")
    return part


class _Pieces:
    """The activation pattern and residual sums at one parameter point."""

    def __init__(self, theta, x, y):
        k = width_of(theta)
        self.k, self.n = k, x.shape[0]
        self.w2 = theta[2 * k:3 * k]
        z = theta[:k, None] * x[None, :] + theta[k:2 * k, None]
        self.mask = (z > 0.0).astype(np.float64)
        self.mask_x = self.mask * x[None, :]
        self.relu = np.maximum(z, 0.0)
        r = self.w2 @ self.relu + theta[3 * k] - y
        self.residual_a = self.mask_x @ r / self.n
        self.residual_b = self.mask @ r / self.n

    def jvp(self, v):
        """``J v``, shape (n,)."""
        k = self.k
        return ((self.w2 * v[:k]) @ self.mask_x + (self.w2 * v[k:2 * k]) @ self.mask
                + v[2 * k:3 * k] @ self.relu + v[3 * k])

    def vjp(self, u):
        """``J^T u``, shape (3k + 1,)."""
        return np.concatenate([self.w2 * (self.mask_x @ u), self.w2 * (self.mask @ u),
                               self.relu @ u, [u.sum()]])

    def gauss_newton(self, v):
        return self.vjp(self.jvp(v)) / self.n

    def residual(self, v):
        k, a, b = self.k, self.residual_a, self.residual_b
        gamma = v[2 * k:3 * k]
        return np.concatenate([gamma * a, gamma * b, v[:k] * a + v[k:2 * k] * b, [0.0]])

    def product(self, v, part):
        out = self.gauss_newton(v)
        if part == "full":
            out += self.residual(v)
        return out

    def jacobian(self):
        """``J``, shape (n, 3k + 1)."""
        return np.hstack([(self.mask_x * self.w2[:, None]).T, (self.mask * self.w2[:, None]).T,
                          self.relu.T, np.ones((self.n, 1))])


def _pieces(params, x, y):
    theta = flat_params(params)
    x, y = data(x, y)
    return _Pieces(theta, x, y)


def hessian_operator(params, x, y, part="full"):
    """The Hessian of the loss at ``params`` as a symmetric :class:`LinearOperator`.

    Parameters
    ----------
    params : array_like, shape (3 k + 1,), or Params
    x, y : array_like, shape (n,)
        Training inputs and labels.
    part : {"full", "gauss_newton"}
        The whole Hessian ``H``, or its Gauss-Newton part ``J^T J / n``.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator, shape (3 k + 1, 3 k + 1)
        Holds the ``k x n`` activation pattern (three float64 blocks); each
        product costs six ``k x n`` matrix-vector products.
    """
    part = _check_part(part)
    pieces = _pieces(params, x, y)
    size = 3 * pieces.k + 1

    def matvec(v):
        return pieces.product(np.asarray(v, dtype=np.float64).reshape(size), part)

    return LinearOperator((size, size), matvec=matvec, rmatvec=matvec, dtype=np.float64)


def hvp(params, x, y, v, part="full"):
    """Exact Hessian-vector product ``H v``.

    Parameters
    ----------
    params : array_like, shape (3 k + 1,), or Params
    x, y : array_like, shape (n,)
    v : array_like, shape (3 k + 1,)
    part : {"full", "gauss_newton"}

    Returns
    -------
    ndarray, shape (3 k + 1,)
    """
    part = _check_part(part)
    pieces = _pieces(params, x, y)
    v = vector(v, "v", size=3 * pieces.k + 1)
    return pieces.product(v, part)


def hessian(params, x, y, part="full"):
    """The dense Hessian (for small nets and tests).

    Parameters
    ----------
    params : array_like, shape (3 k + 1,), or Params
        At most :data:`MAX_DENSE_PARAMS` entries.
    x, y : array_like, shape (n,)
    part : {"full", "gauss_newton"}

    Returns
    -------
    ndarray, shape (3 k + 1, 3 k + 1)
        Symmetric.
    """
    part = _check_part(part)
    pieces = _pieces(params, x, y)
    k, size = pieces.k, 3 * pieces.k + 1
    if size > MAX_DENSE_PARAMS:
        raise ValueError(f"params has {size} entries; a dense Hessian takes at most "
                         f"{MAX_DENSE_PARAMS}: use hvp or hessian_operator")
    jac = pieces.jacobian()
    out = jac.T @ jac / pieces.n
    if part == "full":
        j = np.arange(k)
        for block, sums in ((0, pieces.residual_a), (k, pieces.residual_b)):
            out[block + j, 2 * k + j] += sums
            out[2 * k + j, block + j] += sums
    return out


def lambda_max(params, x, y, part="full", tol=1e-10):
    """Largest eigenvalue of the Hessian (or of its Gauss-Newton part), by Lanczos.

    ``scipy.sparse.linalg.eigsh`` (implicitly restarted Lanczos) on
    :func:`hessian_operator`, from a fixed start vector so that repeated calls
    agree. Gradient descent at step ``eta`` is linearly stable at a twice
    differentiable minimum iff ``lambda_max <= 2 / eta`` (Qiao et al. 2024,
    Lemma 2.2; Mulayoff et al. 2021, Lemma 1; Liang et al. 2025, Proposition 2.1).

    Parameters
    ----------
    params : array_like, shape (3 k + 1,), or Params
    x, y : array_like, shape (n,)
    part : {"full", "gauss_newton"}
    tol : float
        Relative accuracy asked of ARPACK (0: machine precision).

    Returns
    -------
    float
        The largest algebraic eigenvalue; ``H`` may be indefinite away from minima.
    """
    tol = non_negative(tol, "tol")
    op = hessian_operator(params, x, y, part)
    start = np.random.default_rng(0).standard_normal(op.shape[0])
    value = eigsh(op, k=1, which="LA", v0=start, tol=tol, return_eigenvectors=False)
    return float(value[0])
