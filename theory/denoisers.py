"""Closed-form denoisers and their Jacobians; effective ranks of a Jacobian's spectrum.

For ``X_t = alpha X_0 + sigma Z`` (``sigma^2 = sigma2``) the optimal denoiser of a
prior is the posterior mean ``D(x) = E[X_0 | X_t = x]``. Two priors have it in
closed form beside the empirical law of :mod:`theory.mixture`:

**Gaussian (Wiener)**, ``X_0 ~ N(mu, Sigma)``, ``Sigma`` symmetric PSD (singular
allowed)::

    D(x)    = mu + G (x - alpha mu),   G = alpha Sigma (alpha^2 Sigma + sigma2 I)^{-1},
    grad D  = G,  eigenvalues  alpha v_j / (alpha^2 v_j + sigma2)  (v_j those of Sigma).

``G`` is formed from the eigendecomposition ``Sigma = U diag(v) U^T`` and
symmetrised, so no linear solve is needed; eigenvalues ``v_j <= d eps max v``
(below the eigensolver's rounding) are set to 0, so that a singular ``Sigma``
keeps its null space however small ``sigma2`` is.

**Smoothed empirical law (Gaussian KDE)**, ``X_0 ~ (1/N) sum_k N(x_k, h^2 I)``: the
data convolved with a Gaussian of bandwidth ``h``. Given the component ``k``,
``X_t ~ N(alpha x_k, s2 I)`` with the *effective noise* ``s2 = alpha^2 h^2 + sigma2``,
so the posterior component weights are those of the empirical denoiser at noise
``s2``, ``w_k = softmax_k(-|x - alpha x_k|^2 / (2 s2))``, and within a component
``E[X_0 | x, k] = x_k + c (x - alpha x_k)`` with ``c = alpha h^2 / s2``. Hence::

    D(x)   = (sigma2 / s2) D_emp(x; alpha, s2) + c x,
    grad D = (sigma2 / s2) (alpha / s2) Cov_w[x_k] + c I,

``D_emp(x; alpha, s2) = sum_k w_k x_k`` and ``Cov_w`` the weighted covariance of the
data points under ``w``. ``h = 0`` is the empirical denoiser itself, with
``grad D = (alpha / sigma2) Cov_w``: an oracle for numdiff's Jacobian written with
nothing from numdiff. The weights use the pivoted exponents of
:mod:`theory.mixture` (accurate when one data point dominates), and ``Cov_w`` is
accumulated about the query's nearest data point, so it is accurate when the
covariance is exponentially small.

**Effective ranks.** For the eigenvalues ``lambda_j >= 0`` of ``grad D``:

* ``trace_rank = alpha sum_j lambda_j = alpha tr grad D``, the *degrees of freedom*
  of the denoiser (Stein's unbiased risk estimate counts it; for the Wiener
  denoiser ``alpha lambda_j = alpha^2 v_j / (alpha^2 v_j + sigma2)`` is the
  fraction of direction ``j`` kept, so it counts the directions with signal above
  the noise and tends to ``rank(Sigma)`` as ``sigma2 -> 0``). For the optimal
  denoiser of a prior the Miyasawa / Tweedie identity ties its mean to the error:
  ``E[trace_rank] = (alpha^2 / sigma2) E|X_0 - D(X_t)|^2``. It is the effective
  rank that can collapse to 0: a denoiser that snaps to one training point keeps
  no direction of the input.
* ``entropy_rank = exp(-sum_j p_j log p_j)``, ``p_j = lambda_j / sum lambda``
  (Roy & Vetterli 2007): the number of directions the shrinkage is spread over,
  regardless of its size; in ``[1, d]``, 0 by convention for a zero spectrum.
"""

from __future__ import annotations

import numpy as np

from theory._validate import data_matrix, float_array, positive_int, query_matrix, real_scalar
from theory.mixture import _normalised_weights, _pivoted

__all__ = [
    "entropy_rank",
    "gaussian_denoiser",
    "gaussian_denoiser_eigs",
    "gaussian_denoiser_jacobian",
    "gaussian_sample",
    "kde_denoiser",
    "kde_denoiser_jacobian",
    "kde_sample",
    "trace_rank",
]

# Upper bound on the float64 entries of one (queries x data x d) temporary.
_BLOCK_ENTRIES = 1 << 21


def _scalars(alpha, sigma2):
    return (real_scalar(alpha, "alpha", positive=True),
            real_scalar(sigma2, "sigma2", positive=True))


def _cov_eigh(cov, d=None):
    """Symmetric eigendecomposition of a covariance, eigenvalues clipped at 0."""
    cov = float_array(cov, "cov")
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] < 1:
        raise ValueError(f"cov must be a square (d, d) matrix; got shape {cov.shape}")
    if d is not None and cov.shape[0] != d:
        raise ValueError(f"cov must have shape ({d}, {d}); got {cov.shape}")
    scale = max(float(np.abs(cov).max()), np.finfo(float).tiny)
    if np.abs(cov - cov.T).max() > 1e-12 * scale:
        raise ValueError("cov must be symmetric")
    v, u = np.linalg.eigh(0.5 * (cov + cov.T))
    if v.min() < -1e-10 * scale:
        raise ValueError(f"cov must be positive semidefinite; smallest eigenvalue {v.min():.3g}")
    # Eigenvalues below the eigensolver's rounding level are indistinguishable from 0:
    # a singular covariance keeps its null space however small sigma2 is.
    v[v <= len(v) * np.finfo(float).eps * max(v.max(), 0.0)] = 0.0
    return v, u


def _mean_vector(mean, d):
    mean = float_array(mean, "mean")
    if mean.shape != (d,):
        raise ValueError(f"mean must have shape ({d},); got {mean.shape}")
    return mean


def gaussian_denoiser_eigs(cov, alpha, sigma2):
    """Eigenpairs of the Wiener denoiser's Jacobian ``G = alpha Sigma (alpha^2 Sigma + sigma2 I)^-1``.

    Parameters
    ----------
    cov : array_like, shape (d, d)
        Prior covariance ``Sigma``, symmetric PSD.
    alpha, sigma2 : float
        ``alpha_t > 0``, ``sigma_t^2 > 0``.

    Returns
    -------
    eigenvalues : ndarray, shape (d,)
        ``alpha v_j / (alpha^2 v_j + sigma2)``, descending, in ``[0, 1 / alpha)``.
    eigenvectors : ndarray, shape (d, d)
        Orthonormal columns, those of ``Sigma``.
    """
    alpha, sigma2 = _scalars(alpha, sigma2)
    v, u = _cov_eigh(cov)
    lam = alpha * v / (alpha * alpha * v + sigma2)
    order = np.argsort(-lam, kind="stable")
    return lam[order], u[:, order]


def gaussian_denoiser_jacobian(cov, alpha, sigma2):
    """``grad D = G = alpha Sigma (alpha^2 Sigma + sigma2 I)^{-1}``, shape (d, d), symmetric.

    Constant in ``x``: the Wiener denoiser is affine. See
    :func:`gaussian_denoiser_eigs` for the arguments.
    """
    lam, u = gaussian_denoiser_eigs(cov, alpha, sigma2)
    gain = (u * lam) @ u.T
    return 0.5 * (gain + gain.T)


def gaussian_denoiser(x, mean, cov, alpha, sigma2):
    """Posterior mean ``D(x) = mu + G (x - alpha mu)`` of the prior ``N(mu, Sigma)``.

    Parameters
    ----------
    x : array_like, shape (M, d) or (d,)
        Noisy observations ``alpha X_0 + sigma Z``.
    mean : array_like, shape (d,)
    cov : array_like, shape (d, d)
        Symmetric PSD (singular allowed).
    alpha, sigma2 : float
        ``alpha_t > 0``, ``sigma_t^2 > 0``.

    Returns
    -------
    ndarray, shape (M, d)
    """
    gain = gaussian_denoiser_jacobian(cov, alpha, sigma2)
    d = gain.shape[0]
    x = query_matrix(x, d)
    mean = _mean_vector(mean, d)
    return mean + (x - alpha * mean) @ gain


def gaussian_sample(n, mean, cov, rng=None):
    """``n`` draws of ``N(mean, cov)`` through the eigendecomposition (singular ``cov`` allowed).

    Returns
    -------
    ndarray, shape (n, d)
    """
    n = positive_int(n, "n")
    v, u = _cov_eigh(cov)
    mean = _mean_vector(mean, len(v))
    rng = np.random.default_rng(rng)
    return mean + (rng.standard_normal((n, len(v))) * np.sqrt(v)) @ u.T


def _kde_check(x, data, h, alpha, sigma2):
    data = data_matrix(data)
    x = query_matrix(x, data.shape[1])
    h = real_scalar(h, "h", nonnegative=True)
    alpha, sigma2 = _scalars(alpha, sigma2)
    return x, data, h, alpha, sigma2


def _kde_blocks(x, data, h, alpha, sigma2):
    """Per block of queries: rows, weights (B, N), pivots (B, d), ``D_emp - x_p`` (B, d)."""
    s2 = alpha * alpha * h * h + sigma2
    n_data, d = data.shape
    step = max(1, _BLOCK_ENTRIES // (n_data * d))
    for start in range(0, x.shape[0], step):
        rows = slice(start, min(x.shape[0], start + step))
        _, log_w, pivot, _ = _pivoted(x[rows], data, alpha, s2)
        w = _normalised_weights(log_w)
        offsets = data[None, :, :] - pivot[:, None, :]  # x_k - x_p, exact to one rounding
        mean_offset = np.einsum("bn,bnj->bj", w, offsets)
        yield rows, w, pivot, offsets, mean_offset, s2


def kde_denoiser(x, data, h, alpha, sigma2):
    """Posterior mean under the smoothed empirical law ``(1/N) sum_k N(x_k, h^2 I)``.

    ``D(x) = (sigma2 / s2) D_emp(x; alpha, s2) + (alpha h^2 / s2) x`` with the
    effective noise ``s2 = alpha^2 h^2 + sigma2`` (module docstring); ``h = 0`` is
    the empirical denoiser.

    Parameters
    ----------
    x : array_like, shape (M, d) or (d,)
    data : array_like, shape (N, d)
    h : float
        Bandwidth, >= 0.
    alpha, sigma2 : float
        ``alpha_t > 0``, ``sigma_t^2 > 0``.

    Returns
    -------
    ndarray, shape (M, d)
    """
    x, data, h, alpha, sigma2 = _kde_check(x, data, h, alpha, sigma2)
    out = np.empty_like(x)
    for rows, _, pivot, _, mean_offset, s2 in _kde_blocks(x, data, h, alpha, sigma2):
        out[rows] = (sigma2 / s2) * (pivot + mean_offset) + (alpha * h * h / s2) * x[rows]
    return out


def kde_denoiser_jacobian(x, data, h, alpha, sigma2):
    """``grad D = (sigma2 / s2)(alpha / s2) Cov_w[x_k] + (alpha h^2 / s2) I`` at each query.

    ``Cov_w = sum_k w_k (x_k - x_p)(x_k - x_p)^T - m m^T`` with ``m = sum_k w_k
    (x_k - x_p)`` and ``x_p`` the query's nearest scaled data point: when ``x_p``
    carries almost all the weight, ``m`` is small and both terms are of the size
    of the covariance, so nothing cancels. Same arguments as :func:`kde_denoiser`.

    Returns
    -------
    ndarray, shape (M, d, d)
        Symmetric PSD.
    """
    x, data, h, alpha, sigma2 = _kde_check(x, data, h, alpha, sigma2)
    d = data.shape[1]
    out = np.empty((x.shape[0], d, d))
    for rows, w, _, offsets, m, s2 in _kde_blocks(x, data, h, alpha, sigma2):
        second = np.matmul(np.transpose(offsets * w[:, :, None], (0, 2, 1)), offsets)
        cov = second - m[:, :, None] * m[:, None, :]
        cov = 0.5 * (cov + np.transpose(cov, (0, 2, 1)))
        jac = (sigma2 / s2) * (alpha / s2) * cov
        jac[:, np.arange(d), np.arange(d)] += alpha * h * h / s2
        out[rows] = jac
    return out


def kde_sample(n, data, h, rng=None):
    """``n`` draws of the smoothed empirical law: a uniform data point plus ``N(0, h^2 I)``."""
    n = positive_int(n, "n")
    data = data_matrix(data)
    h = real_scalar(h, "h", nonnegative=True)
    rng = np.random.default_rng(rng)
    index = rng.integers(data.shape[0], size=n)
    return data[index] + h * rng.standard_normal((n, data.shape[1]))


def _spectrum(eigenvalues):
    lam = float_array(eigenvalues, "eigenvalues")
    if lam.ndim < 1 or lam.shape[-1] < 1:
        raise ValueError("eigenvalues must have a last axis of length >= 1")
    return lam


def trace_rank(eigenvalues, alpha):
    """Degrees of freedom ``alpha sum_j lambda_j = alpha tr grad D`` (module docstring).

    Parameters
    ----------
    eigenvalues : array_like, shape (..., d)
        Eigenvalues of ``grad D`` (the whole spectrum, or all the nonzero ones).
    alpha : float
        ``alpha_t > 0``.

    Returns
    -------
    ndarray, shape (...)
        0 for a denoiser that ignores its input; ``rank(Sigma)`` for the Wiener
        denoiser as ``sigma2 -> 0``.
    """
    alpha = real_scalar(alpha, "alpha", positive=True)
    return alpha * _spectrum(eigenvalues).sum(axis=-1)


def entropy_rank(eigenvalues):
    """``exp(entropy of p)``, ``p_j = max(lambda_j, 0) / sum max(lambda, 0)`` (Roy & Vetterli 2007).

    Parameters
    ----------
    eigenvalues : array_like, shape (..., d)

    Returns
    -------
    ndarray, shape (...)
        In ``[1, d]``: ``k`` for ``k`` equal nonzero eigenvalues; 0 for an all-zero
        spectrum.
    """
    lam = np.clip(_spectrum(eigenvalues), 0.0, None)
    total = lam.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(total > 0, lam / np.where(total > 0, total, 1.0), 0.0)
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return np.where(total[..., 0] > 0, np.exp(-plogp.sum(axis=-1)), 0.0)
