"""Theorem 3 of Li, Chen & Li (2024): horizons and the prior-mismatch bounds.

With the Ornstein-Uhlenbeck forward process (``alpha_t = e^{-t}``,
``sigma_t^2 = 1 - e^{-2t}``) and the exact empirical score, Theorem 3 chooses the
horizon ``T = log(d / eps)`` and the early-stopping time ``delta = eps^2 / d`` so
that ``TV(q_{T - delta}, p_delta) <= eps``. The part of that error due to starting
the reverse process from ``N(0, I)`` instead of ``p_T`` is ``TV(N(0, I), p_T)``
(exactly, for the probability-flow ODE, whose flow is a bijection); this module
gives computable rigorous upper bounds on it.
"""

from __future__ import annotations

import numpy as np

from theory._validate import data_matrix, float_array, real_scalar

__all__ = ["kl_prior_bound", "theorem3_T", "theorem3_delta", "tv_prior_bound"]

# Below this |c| the series of c + log(1 - c) is used (see _gap); 26 terms reach
# a relative truncation error below 1e-19 there.
_SERIES_CUTOFF = 0.1
_SERIES_TERMS = 26


def _horizon_args(eps, d):
    eps = float_array(eps, "eps")
    if (eps <= 0).any():
        raise ValueError("eps must be > 0")
    d = float_array(d, "d")
    if (d < 1).any() or (d != np.round(d)).any():
        raise ValueError("d must be a positive integer (or an array of them)")
    return eps, d


def _scalar_or_array(out):
    return float(out) if np.ndim(out) == 0 else out


def theorem3_T(eps, d):
    """Horizon ``T(eps, d) = log(d / eps)`` of Theorem 3.

    Parameters
    ----------
    eps : float or array_like
        Target total-variation accuracy, > 0.
    d : int or array_like of int
        Dimension, >= 1. ``eps`` and ``d`` broadcast against each other.

    Returns
    -------
    float or ndarray
        Same shape as the broadcast inputs.
    """
    eps, d = _horizon_args(eps, d)
    return _scalar_or_array(np.log(d / eps))


def theorem3_delta(eps, d):
    """Early-stopping time ``delta(eps, d) = eps^2 / d`` of Theorem 3.

    Parameters
    ----------
    eps : float or array_like
        Target total-variation accuracy, > 0.
    d : int or array_like of int
        Dimension, >= 1.

    Returns
    -------
    float or ndarray
    """
    eps, d = _horizon_args(eps, d)
    return _scalar_or_array(eps**2 / d)


def _gap(sigma2):
    """``sigma2 - 1 - log(sigma2)`` without cancellation near ``sigma2 = 1``.

    With ``c = 1 - sigma2`` (exact in floating point for sigma2 in [0.5, 2]) the
    gap is ``-c - log(1 - c) = sum_{n >= 2} c^n / n``, summed directly for small
    ``|c|``; the closed form would lose all digits as ``c -> 0`` (large ``T``).
    """
    c = 1.0 - sigma2
    if abs(c) >= _SERIES_CUTOFF:
        return sigma2 - 1.0 - np.log(sigma2)
    n = np.arange(2, _SERIES_TERMS + 2)
    return float(np.sum(c**n / n))


def kl_prior_bound(data, alpha, sigma2):
    """Upper bound on ``KL(p_T || N(0, I))`` for the diffused empirical law.

    ``p_T = (1/N) sum_k N(alpha x_k, sigma2 I)`` is a mixture, and KL is jointly
    convex, hence convex in its first argument with the second fixed, so

        KL(p_T || N(0, I)) <= (1/N) sum_k KL(N(alpha x_k, sigma2 I) || N(0, I))
                            = (1/N) sum_k (d (sigma2 - 1 - log sigma2)
                                           + alpha^2 |x_k|^2) / 2.

    This is a rigorous upper bound (an equality when ``N = 1`` or all points
    coincide).

    Parameters
    ----------
    data : array_like, shape (N, d)
    alpha : float
        ``alpha_T >= 0``.
    sigma2 : float
        ``sigma_T^2 > 0``.

    Returns
    -------
    float
        The bound, >= 0.

    Notes
    -----
    Near ``sigma2 = 1`` the term ``sigma2 - 1 - log sigma2 ~ (1 - sigma2)^2 / 2`` is
    summed as a series, so the result is as accurate as ``sigma2`` itself: when
    ``1 - sigma2`` is tiny (OU at large ``T``), the rounding of ``sigma2`` limits the
    relative accuracy of that term to about ``1e-16 / (1 - sigma2)``.
    """
    data = data_matrix(data)
    alpha = real_scalar(alpha, "alpha", nonnegative=True)
    sigma2 = real_scalar(sigma2, "sigma2", positive=True)
    mean_sq_norm = float(np.mean(np.sum(data * data, axis=1)))
    return 0.5 * (data.shape[1] * _gap(sigma2) + alpha**2 * mean_sq_norm)


def tv_prior_bound(data, alpha, sigma2):
    """Upper bound on ``TV(N(0, I), p_T)``: Pinsker applied to :func:`kl_prior_bound`.

    Pinsker's inequality ``TV(P, Q) <= sqrt(KL(P || Q) / 2)`` holds for either
    order of the arguments, and TV is symmetric, so
    ``TV(N(0, I), p_T) <= min(1, sqrt(B / 2))`` with ``B`` the KL bound. The
    ``min(1, .)`` is the trivial bound on a total variation. Rigorous.

    Parameters
    ----------
    data : array_like, shape (N, d)
    alpha : float
    sigma2 : float

    Returns
    -------
    float
        In ``[0, 1]``.
    """
    return min(1.0, float(np.sqrt(0.5 * kl_prior_bound(data, alpha, sigma2))))
