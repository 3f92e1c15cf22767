"""The Miyasawa / Tweedie identity in closed form for Gaussian data.

For ``X_t = alpha X_0 + sigma Z`` the posterior mean ``D(x) = E[X_0 | X_t = x]``
satisfies ``E|X_0 - D(X_t)|^2 = (sigma^2 / alpha) E tr grad D(X_t)``: the
denoising error equals the average divergence of the denoiser, scaled.

For ``X_0 ~ N(m, diag(v))`` both sides are explicit. Per coordinate, with
``V = alpha^2 v + sigma^2``, ``D(x) = m + (alpha v / V)(x - alpha m)`` is affine,
so ``tr grad D = sum_j alpha v_j / V_j`` everywhere, and the error is the
posterior variance ``v - (alpha v)^2 / V = v sigma^2 / V``. The two closed forms
are returned separately so that a caller can check them against each other and
against simulation.
"""

from __future__ import annotations

import numpy as np

from theory._validate import coordinate_vector, real_scalar

__all__ = ["tweedie_gaussian"]


def tweedie_gaussian(var, alpha, sigma2):
    """Both sides of the Tweedie identity for data ``N(mean, diag(var))``.

    Parameters
    ----------
    var : float or array_like, shape (d,)
        Data variance per coordinate, >= 0 (0: a single point; both sides vanish).
    alpha : float
        ``alpha_t > 0``.
    sigma2 : float
        ``sigma_t^2 > 0``.

    Returns
    -------
    mse : float
        ``E|X_0 - D(X_t)|^2 = sum_j var_j sigma2 / (alpha^2 var_j + sigma2)``.
    scaled_divergence : float
        ``(sigma2 / alpha) tr grad D = (sigma2 / alpha) sum_j alpha var_j /
        (alpha^2 var_j + sigma2)``. Equal to ``mse`` up to rounding.

    Notes
    -----
    Neither side depends on the data mean.
    """
    var = coordinate_vector(var, "var", nonnegative=True)
    alpha = real_scalar(alpha, "alpha", positive=True)
    sigma2 = real_scalar(sigma2, "sigma2", positive=True)
    v_t = alpha**2 * var + sigma2
    mse = float(np.sum(var * sigma2 / v_t))
    trace_grad = float(np.sum(alpha * var / v_t))
    return mse, sigma2 / alpha * trace_grad
