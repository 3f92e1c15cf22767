"""Theorems 1 and 2 of the seed essay (section 1.2) as checkable identities.

For a law ``p`` on ``R^d``, a score model ``s`` and ``X ~ p``, write

    explicit(s) = E|grad log p(X) - s(X)|^2      (Fisher divergence to p)
    implicit(s) = E[|s(X)|^2 + 2 div s(X)]       (Hyvarinen's loss, eq. (8))
    I(p)        = E|grad log p(X)|^2             (Fisher information)

**Theorem 1** (Hyvarinen 2005): ``explicit(s) - implicit(s) = I(p)`` for every
``s`` decaying fast enough. Expanding the square, it is
``E[grad log p . s] = -E[div s]``, integration by parts against ``p``.

**Theorem 2** (Vincent 2011) for the diffusion: ``X_t = alpha X_0 + eps`` with
``eps = sigma Z ~ g = N(0, sigma^2 I)``. The denoising loss is
``dsm(s) = E|grad log g(eps) - s(X_t)|^2 = E|s(X_t) + Z / sigma|^2`` and the
theorem says ``explicit(s) = c + dsm(s)`` with ``c`` free of ``s``.

*Derivation of c.* Expand both squares. The ``E|s|^2`` terms are equal. The
cross terms are equal because ``E[grad log g(eps) | X_t = y] = grad log p_t(y)``
for any ``g``: ``p_t(y) = int p_0(x) g(y - alpha x) dx``, so
``grad p_t(y) = int p_0(x) g(y - alpha x) grad log g(y - alpha x) dx``, and
dividing by ``p_t(y)`` gives the posterior mean of ``grad log g(eps)``. What is
left is ``c = E|grad log p_t|^2 - E|grad log g(eps)|^2 = I(p_t) - J(g)`` with
``J(g) = E|Z / sigma|^2 = d / sigma^2`` for the Gaussian ``g``. Hence

    dsm(s) - explicit(s) = -c = d / sigma^2 - I(p_t)  >= 0,

and the smallest DSM loss, reached at ``s = grad log p_t``, is
``d / sigma^2 - I(p_t)`` (non-negative by the Fisher-information inequality
``I(p * g) <= I(g)``). For the diffused empirical law (``X_0`` uniform on the
data) the minimiser is the empirical score of eq. (10).

Closed forms for Gaussian data ``X_0 ~ N(m, diag v)``: ``p_t = N(alpha m, diag V)``,
``V = alpha^2 v + sigma^2``, ``I(p_t) = sum_j 1 / V_j``, so
``d / sigma^2 - I(p_t) = sum_j alpha^2 v_j / (sigma^2 V_j)``.

This module computes each side *separately* (never one from the identity), so
that the identities are checks: :func:`gaussian_score_matching` in closed form
for a linear model in any ``d``, and :func:`score_matching_1d` by adaptive
quadrature for any model and a Gaussian-mixture law in ``d = 1``. numpy / scipy
only; it never calls numdiff.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from theory._quadrature import adaptive_gauss
from theory._validate import coordinate_vector, data_matrix, float_array, real_scalar
from theory.mixture import mixture_logpdf, mixture_score

__all__ = [
    "ScoreMatchingLosses",
    "fisher_information_1d",
    "gaussian_score_matching",
    "score_matching_1d",
]

# Integration range: the Gaussian tail beyond 14 s.d. holds less than 1e-44 of the mass,
# and the integrands grow only polynomially there.
_WIDTH_SD = 14.0
_QUAD_REL_TOL = 1e-13
# Integrand points allowed per integral: a noisy integrand (a finite-difference
# divergence, say) never meets the tolerance and bisection would double its pieces
# every round; it is stopped with an error instead.
_MAX_POINTS = 4_000_000
# Absolute tolerance in units of 1 / sigma2, the scale of every loss here: pieces where
# an integrand changes sign (the implicit loss) cannot meet a relative tolerance.
_QUAD_ABS_TOL = 1e-15


class ScoreMatchingLosses(NamedTuple):
    """The score-matching losses of one model under one law, computed separately.

    Attributes
    ----------
    explicit : float
        ``E|grad log p - s|^2``.
    implicit : float or None
        ``E[|s|^2 + 2 div s]`` (None when no divergence was given).
    dsm : float
        ``E|s(X_t) + Z / sigma|^2`` with ``X_t = alpha X_0 + sigma Z``.
    fisher : float
        ``I(p) = E|grad log p|^2``.
    dsm_gap : float
        ``d / sigma^2 - I(p)``: Theorem 2's ``dsm - explicit`` (its ``c`` is
        minus this).
    """

    explicit: float
    implicit: float | None
    dsm: float
    fisher: float
    dsm_gap: float


def gaussian_score_matching(mean, var, alpha, sigma2, gain, centre):
    """Closed-form losses of the linear model ``s(x) = -A (x - b)`` on Gaussian data.

    Data ``X_0 ~ N(mean, diag var)``; ``X_t = alpha X_0 + sigma Z``, law
    ``N(mu, diag V)`` with ``mu = alpha mean``, ``V = alpha^2 var + sigma2``. With
    ``A = gain`` (a diagonal given as a vector, or a symmetric matrix),
    ``b = centre``, ``u = A (mu - b)`` and ``W = diag V``:

    * explicit: ``s_p - s = (A - W^-1)(x - mu) + u``, so
      ``tr((A - W^-1) W (A - W^-1)) + |u|^2``;
    * implicit: ``E|s|^2 = tr(A W A) + |u|^2``, ``div s = -tr A``, so
      ``tr(A W A) + |u|^2 - 2 tr A``;
    * dsm: ``s + Z / sigma = -A (alpha X_0 - b) + (I / sigma - sigma A) Z`` with
      ``X_0`` and ``Z`` independent, so
      ``alpha^2 tr(A diag(var) A) + |u|^2 + |I / sigma - sigma A|_F^2``;
    * fisher: ``tr W^-1``; dsm_gap: ``d / sigma2 - tr W^-1``, written as
      ``sum_j alpha^2 var_j / (sigma2 V_j)``.

    Parameters
    ----------
    mean, var : float or array_like, shape (d,)
        Data mean and variance per coordinate (``var >= 0``).
    alpha : float
        ``alpha_t >= 0``.
    sigma2 : float
        ``sigma_t^2 > 0``.
    gain : float, array_like of shape (d,), or symmetric array_like of shape (d, d)
        The model's gain ``A``; ``gain = 1 / V`` and ``centre = mu`` give the
        true score (explicit loss 0).
    centre : float or array_like, shape (d,)
        The model's centre ``b``.

    Returns
    -------
    ScoreMatchingLosses
    """
    mean = coordinate_vector(mean, "mean")
    var = coordinate_vector(var, "var", nonnegative=True)
    centre = coordinate_vector(centre, "centre")
    alpha = real_scalar(alpha, "alpha", nonnegative=True)
    sigma2 = real_scalar(sigma2, "sigma2", positive=True)
    gain = float_array(gain, "gain")
    full = gain.ndim == 2
    if gain.ndim > 2 or (full and (gain.shape[0] != gain.shape[1]
                                   or not np.array_equal(gain, gain.T))):
        raise ValueError(f"gain must be a scalar, a vector or a symmetric (d, d) matrix; "
                         f"got shape {gain.shape}")
    try:
        vec_gain = np.diagonal(gain) if full else np.atleast_1d(gain)
        mean, var, centre, _ = np.broadcast_arrays(mean, var, centre, vec_gain)
    except ValueError:
        raise ValueError("mean, var, gain and centre must have the same length d") from None
    d = mean.size
    a = gain if full else np.diag(np.broadcast_to(vec_gain, (d,)))
    mu, big_v = alpha * mean, alpha**2 * var + sigma2
    u = a @ (mu - centre)
    diff = a - np.diag(1.0 / big_v)
    explicit = np.sum(diff * diff * big_v[None, :]) + u @ u  # tr(D W D) for symmetric D
    implicit = np.sum(a * a * big_v[None, :]) + u @ u - 2.0 * np.trace(a)
    sigma = np.sqrt(sigma2)
    resid = np.eye(d) / sigma - sigma * a
    dsm = alpha**2 * np.sum(a * a * var[None, :]) + u @ u + np.sum(resid * resid)
    fisher = np.sum(1.0 / big_v)
    gap = np.sum(alpha**2 * var / (sigma2 * big_v))
    return ScoreMatchingLosses(float(explicit), float(implicit), float(dsm), float(fisher),
                               float(gap))


def _check_callable(f, name):
    if not callable(f):
        raise TypeError(f"{name} must be callable; got {type(f).__name__}")
    return f


def _values(f, y, name):
    out = np.asarray(f(y), dtype=np.float64).reshape(-1)
    if out.shape != y.shape:
        raise ValueError(f"{name} must map shape (n,) to (n,); got {out.shape} for {y.shape}")
    return out


def _edges(centres, sigma):
    """Breakpoints: the centres and shells at 1/4..14 s.d. around each, clipped."""
    lo, hi = centres.min() - _WIDTH_SD * sigma, centres.max() + _WIDTH_SD * sigma
    offs = sigma * np.concatenate([[0.0], 0.25 * 2.0 ** np.arange(0, 6), [_WIDTH_SD]])
    pts = (centres[:, None] + np.concatenate([-offs, offs])[None, :]).ravel()
    return np.unique(np.clip(pts, lo, hi))


def _integrate(f, centres, sigma, rel_tol=_QUAD_REL_TOL):
    used = [0]

    def counted(y):
        used[0] += y.size
        if used[0] > _MAX_POINTS:
            raise RuntimeError(
                f"quadrature did not converge within {_MAX_POINTS} points (rel_tol = "
                f"{rel_tol:g}); is the integrand noisy? Pass a larger rel_tol")
        return f(y)

    return adaptive_gauss(counted, _edges(centres, sigma), _QUAD_ABS_TOL / sigma**2, rel_tol)


def fisher_information_1d(data, alpha, sigma2):
    """``I(p) = int p (log p)'^2`` of ``p = (1/N) sum_k N(alpha x_k, sigma2)`` in ``d = 1``.

    By adaptive Gauss-Legendre quadrature (relative tolerance ``1e-13`` per
    piece) over ``alpha x_k +- 14 sigma``, split at the centres and at shells
    around them; the density and score are :mod:`theory.mixture`'s.

    Parameters
    ----------
    data : array_like, shape (N, 1)
    alpha : float
        ``>= 0``.
    sigma2 : float
        ``> 0``.

    Returns
    -------
    float
    """
    data = data_matrix(data)
    if data.shape[1] != 1:
        raise ValueError(f"data must have shape (N, 1) in d = 1; got {data.shape}")
    alpha = real_scalar(alpha, "alpha", nonnegative=True)
    sigma2 = real_scalar(sigma2, "sigma2", positive=True)

    def integrand(y):
        pts = y[:, None]
        return np.exp(mixture_logpdf(pts, data, alpha, sigma2)) * (
            mixture_score(pts, data, alpha, sigma2)[:, 0] ** 2)

    return _integrate(integrand, alpha * data[:, 0], np.sqrt(sigma2))


def score_matching_1d(score, data, alpha, sigma2, *, divergence=None, rel_tol=_QUAD_REL_TOL):
    """Losses of a 1-D score model under the mixture ``p = (1/N) sum_k N(alpha x_k, sigma2)``.

    Each loss is its own quadrature (never derived from another): with
    ``phi_k`` the density of ``N(alpha x_k, sigma2)`` and ``s_p`` the mixture
    score,

    * explicit ``= int p (s_p - s)^2``,
    * implicit ``= int p (s^2 + 2 s')`` (``s' = divergence``),
    * dsm ``= (1/N) sum_k int phi_k(y) (s(y) + (y - alpha x_k) / sigma2)^2 dy``
      (``X_0`` uniform on the data: the training objective of eq. (9) at one
      time; ``(y - alpha x_k) / sigma2 = Z / sigma``),
    * fisher ``= int p s_p^2``, dsm_gap ``= 1 / sigma2 - fisher``.

    The ``dsm`` integrand is formed as a difference of squares per point, so
    ``dsm(s1) - dsm(s2)`` carries no cancellation beyond the integrands' own.
    Adaptive Gauss-Legendre with relative tolerance ``rel_tol`` per piece over
    ``alpha x_k +- 14 sigma``; the achieved relative error is about ``1e-13``
    for smooth models (tests).

    Parameters
    ----------
    score : callable
        ``score(y) -> (n,)`` for ``y`` of shape ``(n,)``.
    data : array_like, shape (N, 1)
        Mixture centres before scaling (a single point with ``sigma2 = V`` is
        the Gaussian ``N(alpha x_1, V)``).
    alpha : float
        ``>= 0``.
    sigma2 : float
        ``> 0``.
    divergence : callable, optional
        ``divergence(y) -> (n,)``, the derivative ``s'``; the implicit loss is
        None without it.
    rel_tol : float, optional
        Relative tolerance per piece (default ``1e-13``; the absolute one is
        ``1e-15 / sigma2``). An integrand with noise above it (a finite-difference
        divergence) needs a larger one, else a ``RuntimeError`` after 4e6 points.

    Returns
    -------
    ScoreMatchingLosses
    """
    _check_callable(score, "score")
    rel_tol = real_scalar(rel_tol, "rel_tol", positive=True)
    if divergence is not None:
        _check_callable(divergence, "divergence")
    data = data_matrix(data)
    if data.shape[1] != 1:
        raise ValueError(f"data must have shape (N, 1) in d = 1; got {data.shape}")
    alpha = real_scalar(alpha, "alpha", nonnegative=True)
    sigma2 = real_scalar(sigma2, "sigma2", positive=True)
    centres, sigma = alpha * data[:, 0], np.sqrt(sigma2)

    def density_and_score(y):
        pts = y[:, None]
        return (np.exp(mixture_logpdf(pts, data, alpha, sigma2)),
                mixture_score(pts, data, alpha, sigma2)[:, 0])

    def explicit(y):
        p, sp = density_and_score(y)
        return p * (sp - _values(score, y, "score")) ** 2

    def implicit(y):
        p, _ = density_and_score(y)
        s = _values(score, y, "score")
        return p * (s * s + 2.0 * _values(divergence, y, "divergence"))

    def fisher(y):
        p, sp = density_and_score(y)
        return p * sp * sp

    def dsm(y):
        s = _values(score, y, "score")
        u = (y[:, None] - centres[None, :]) / sigma  # Z per component
        phi = np.exp(-0.5 * u * u) / np.sqrt(2.0 * np.pi * sigma2)
        return np.mean(phi * (s[:, None] + u / sigma) ** 2, axis=1)

    f = _integrate(fisher, centres, sigma)
    return ScoreMatchingLosses(
        explicit=_integrate(explicit, centres, sigma, rel_tol),
        implicit=None if divergence is None else _integrate(implicit, centres, sigma, rel_tol),
        dsm=_integrate(dsm, centres, sigma, rel_tol),
        fisher=f,
        dsm_gap=1.0 / sigma2 - f,
    )
