"""The diffused empirical law: a Gaussian mixture, computed densely as a reference.

For a dataset ``x_1..x_N`` in ``R^d`` and one time ``t`` (given through
``alpha = alpha_t`` and ``sigma2 = sigma_t^2``)

    p_t = (1/N) sum_k N(alpha x_k, sigma2 I),
    w_k(x) = softmax_k(-|x - alpha x_k|^2 / (2 sigma2))   (posterior weights),
    D(x)   = sum_k w_k(x) x_k                              (E[X_0 | X_t = x]),
    s(x)   = sum_k w_k(x) (alpha x_k - x) / sigma2 = (alpha D(x) - x) / sigma2.

This module is the *dense reference* that faster kernels are tested against, so it
favours accuracy over speed and uses nothing but numpy and scipy.

Numerics
--------
Squared distances are formed from direct coordinate differences, never from the
expansion ``|x|^2 - 2 x.y + |y|^2``, which cancels catastrophically when a query
sits near a (scaled) data point and ``sigma2`` is small. Further, for each query
the exponents are *pivoted* on its nearest scaled data point ``alpha x_p``: with
``u = x - alpha x_p`` and ``v_k = alpha (x_p - x_k)``,

    |x - alpha x_k|^2 - |x - alpha x_p|^2 = v_k . (2 u + v_k),

which is computed with a relative error of a few ulps of ``|x| |v_k|`` instead of
``|x|^2``. That matters for queries far from the data (``|x| ~ 1e4``) near the
boundary between two Voronoi cells, where the plain differences would lose eight
digits of the weights. The remaining error is the conditioning of the problem
itself: rounding ``alpha x_k`` perturbs an exponent by about
``eps alpha |x_k| |v_k| / sigma2``. The denoiser and score are written the same
way, ``D = x_p - sum_k w_k (x_p - x_k)`` and ``s = -(u + sum_k w_k v_k) / sigma2``,
so a single dominant data point gives them with no cancellation at all.

Queries are processed in blocks so that temporaries stay ``O(block x N)``: there
is never an ``M x N x d`` array.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from theory._validate import data_matrix, positive_int, query_matrix, real_scalar

__all__ = [
    "mixture_cov",
    "mixture_denoise",
    "mixture_logpdf",
    "mixture_mean",
    "mixture_sample",
    "mixture_score",
    "mixture_second_moment",
]

# Upper bound on the number of float64 entries of one (queries x data) temporary.
_BLOCK_ENTRIES = 1 << 20


def _check(data, alpha, sigma2):
    data = data_matrix(data)
    alpha = real_scalar(alpha, "alpha", nonnegative=True)
    sigma2 = real_scalar(sigma2, "sigma2", positive=True)
    return data, alpha, sigma2


def _blocks(m, n_data):
    step = max(1, _BLOCK_ENTRIES // n_data)
    for start in range(0, m, step):
        yield slice(start, min(m, start + step))


def _pivoted(x, data, alpha, sigma2):
    """Pivoted exponents of one block of queries.

    Returns
    -------
    sq_pivot : ndarray, shape (B,)
        ``|x - alpha x_p|^2`` for each query's nearest scaled data point ``x_p``.
    log_w : ndarray, shape (B, N)
        Unnormalised log weights ``-(|x - alpha x_k|^2 - sq_pivot) / (2 sigma2)``.
    pivot : ndarray, shape (B, d)
        The pivot data points ``x_p`` (unscaled).
    u : ndarray, shape (B, d)
        ``x - alpha x_p``.
    """
    sq = np.zeros((x.shape[0], data.shape[0]))
    for j in range(data.shape[1]):
        diff = x[:, j, None] - alpha * data[None, :, j]
        sq += diff * diff
    pivot_index = np.argmin(sq, axis=1)
    sq_pivot = sq[np.arange(x.shape[0]), pivot_index]
    pivot = data[pivot_index]
    u = x - alpha * pivot
    excess = np.zeros_like(sq)
    for j in range(data.shape[1]):
        v = alpha * (pivot[:, j, None] - data[None, :, j])
        excess += v * (2.0 * u[:, j, None] + v)
    return sq_pivot, excess / (-2.0 * sigma2), pivot, u


def _normalised_weights(log_w):
    return np.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))


def mixture_logpdf(x, data, alpha, sigma2):
    """Log-density of ``p = (1/N) sum_k N(alpha x_k, sigma2 I)`` at each query.

    Parameters
    ----------
    x : array_like, shape (M, d) or (d,)
        Query points; a 1-D array is one query.
    data : array_like, shape (N, d)
        The dataset ``x_1..x_N``.
    alpha : float
        Scale ``alpha_t >= 0`` of the data at the time of interest.
    sigma2 : float
        Noise variance ``sigma_t^2 > 0``.

    Returns
    -------
    ndarray, shape (M,)
        ``log p(x_m)``, normalised (the Gaussian constants included).
    """
    data, alpha, sigma2 = _check(data, alpha, sigma2)
    x = query_matrix(x, data.shape[1])
    n_data, d = data.shape
    const = -np.log(n_data) - 0.5 * d * np.log(2.0 * np.pi * sigma2)
    out = np.empty(x.shape[0])
    for rows in _blocks(x.shape[0], n_data):
        sq_pivot, log_w, _, _ = _pivoted(x[rows], data, alpha, sigma2)
        out[rows] = const - sq_pivot / (2.0 * sigma2) + logsumexp(log_w, axis=1)
    return out


def _posterior_sums(x, data, alpha, sigma2):
    """Yield, per block, ``(rows, pivot, u, sum_k w_k (x_p - x_k))``."""
    for rows in _blocks(x.shape[0], data.shape[0]):
        _, log_w, pivot, u = _pivoted(x[rows], data, alpha, sigma2)
        w = _normalised_weights(log_w)
        shift = np.empty_like(pivot)
        for j in range(data.shape[1]):
            shift[:, j] = np.sum(w * (pivot[:, j, None] - data[None, :, j]), axis=1)
        yield rows, pivot, u, shift


def mixture_denoise(x, data, alpha, sigma2):
    """Posterior mean ``D(x) = E[X_0 | X_t = x] = sum_k w_k(x) x_k``.

    Parameters
    ----------
    x : array_like, shape (M, d) or (d,)
    data : array_like, shape (N, d)
    alpha : float
        ``alpha_t >= 0``.
    sigma2 : float
        ``sigma_t^2 > 0``.

    Returns
    -------
    ndarray, shape (M, d)
        The denoiser; a convex combination of the data points.
    """
    data, alpha, sigma2 = _check(data, alpha, sigma2)
    x = query_matrix(x, data.shape[1])
    out = np.empty_like(x)
    for rows, pivot, _, shift in _posterior_sums(x, data, alpha, sigma2):
        out[rows] = pivot - shift
    return out


def mixture_score(x, data, alpha, sigma2):
    """Score ``grad log p(x) = (alpha D(x) - x) / sigma2`` of the mixture.

    Parameters
    ----------
    x : array_like, shape (M, d) or (d,)
    data : array_like, shape (N, d)
    alpha : float
        ``alpha_t >= 0``.
    sigma2 : float
        ``sigma_t^2 > 0``.

    Returns
    -------
    ndarray, shape (M, d)
    """
    data, alpha, sigma2 = _check(data, alpha, sigma2)
    x = query_matrix(x, data.shape[1])
    out = np.empty_like(x)
    for rows, _, u, shift in _posterior_sums(x, data, alpha, sigma2):
        # x - alpha x_k = u + alpha (x_p - x_k), averaged over the posterior.
        out[rows] = -(u + alpha * shift) / sigma2
    return out


def mixture_sample(n, data, alpha, sigma2, rng=None):
    """Exact samples of the mixture: pick ``k`` uniformly, add ``N(0, sigma2 I)``.

    Parameters
    ----------
    n : int
        Number of samples, >= 1.
    data : array_like, shape (N, d)
    alpha : float
        ``alpha_t >= 0``.
    sigma2 : float
        ``sigma_t^2 > 0``.
    rng : None, int or numpy.random.Generator
        Seed or generator, normalised with :func:`numpy.random.default_rng`.

    Returns
    -------
    ndarray, shape (n, d)
    """
    n = positive_int(n, "n")
    data, alpha, sigma2 = _check(data, alpha, sigma2)
    rng = np.random.default_rng(rng)
    index = rng.integers(data.shape[0], size=n)
    return alpha * data[index] + np.sqrt(sigma2) * rng.standard_normal((n, data.shape[1]))


def mixture_mean(data, alpha):
    """Mean ``alpha * mean_k x_k`` of the mixture.

    Parameters
    ----------
    data : array_like, shape (N, d)
    alpha : float
        ``alpha_t >= 0``.

    Returns
    -------
    ndarray, shape (d,)
    """
    data = data_matrix(data)
    alpha = real_scalar(alpha, "alpha", nonnegative=True)
    return alpha * data.mean(axis=0)


def mixture_second_moment(data, alpha, sigma2):
    """``E|X|^2 = alpha^2 mean_k |x_k|^2 + d sigma2`` for ``X ~ p``.

    Parameters
    ----------
    data : array_like, shape (N, d)
    alpha : float
    sigma2 : float

    Returns
    -------
    float
    """
    data, alpha, sigma2 = _check(data, alpha, sigma2)
    return float(alpha**2 * np.mean(np.sum(data * data, axis=1)) + data.shape[1] * sigma2)


def mixture_cov(data, alpha, sigma2):
    """Covariance ``alpha^2 C + sigma2 I`` of the mixture.

    ``C = (1/N) sum_k (x_k - m)(x_k - m)^T`` is the (biased, 1/N) covariance of
    the dataset about its mean ``m``: the mixture weights each point ``1/N``.

    Parameters
    ----------
    data : array_like, shape (N, d)
    alpha : float
    sigma2 : float

    Returns
    -------
    ndarray, shape (d, d)
    """
    data, alpha, sigma2 = _check(data, alpha, sigma2)
    centred = data - data.mean(axis=0)
    cov = (alpha**2 / data.shape[0]) * (centred.T @ centred)
    cov[np.diag_indices_from(cov)] += sigma2
    return cov
