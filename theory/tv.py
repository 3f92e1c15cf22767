"""Total-variation distance between two laws with known log-densities.

Both estimators use ``TV(P, Q) = int (p - q)_+ = (1/2) int |p - q|``.

* :func:`tv_monte_carlo` works in any dimension: ``TV = E_P[(1 - q/p)_+]``, and
  the integrand lies in ``[0, 1]``, so the sample mean has finite variance and the
  usual standard error applies.
* :func:`tv_quadrature_1d` is deterministic, for ``d = 1``: adaptive quadrature of
  ``|p - q| / 2`` between the crossings of the two densities, found on a grid
  refined around the modes and solved by root finding, so that each piece is
  smooth.

Log-density callables follow the ``(M, d)`` batch convention of the rest of the
package: they take an array of shape ``(n, d)`` (``(n, 1)`` in 1-D) and return
shape ``(n,)``; e.g. ``lambda x: mixture_logpdf(x, data, alpha, sigma2)``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from theory._quadrature import adaptive_gauss
from theory._validate import float_array, positive_int, real_scalar

__all__ = ["tv_monte_carlo", "tv_quadrature_1d"]

# Grid used to locate the crossings of p and q and the modes of both densities,
# and the depth of the geometric refinement around features (2^-40 spacing).
_GRID_POINTS = 4097
_REFINE_LEVELS = 40
_QUAD_ABS_TOL = 1e-13
_QUAD_REL_TOL = 1e-12
_BRENT_RTOL = 4 * np.finfo(np.float64).eps  # the smallest brentq accepts


def _check_callable(f, name):
    if not callable(f):
        raise TypeError(f"{name} must be callable")


def _log_density(f, x, name):
    out = np.asarray(f(x), dtype=np.float64)
    if out.shape != (x.shape[0],):
        raise ValueError(f"{name} must return shape ({x.shape[0]},); got {out.shape}")
    if np.isnan(out).any() or (out == np.inf).any():
        raise ValueError(f"{name} returned NaN or +inf")
    return out


def tv_monte_carlo(logp, logq, sample_p, n, rng=None):
    """Monte Carlo estimate of ``TV(P, Q) = E_P[(1 - q(X)/p(X))_+]``.

    Parameters
    ----------
    logp, logq : callable
        ``(n, d) -> (n,)`` log-densities of ``P`` and ``Q`` (normalised).
        ``logq`` may return ``-inf``; ``logp`` must be finite on ``P``'s samples.
    sample_p : callable
        ``sample_p(n, rng) -> (n, d)`` exact samples of ``P``.
    n : int
        Sample size, >= 2.
    rng : None, int or numpy.random.Generator
        Passed to ``sample_p`` after :func:`numpy.random.default_rng`.

    Returns
    -------
    estimate : float
        The sample mean, in ``[0, 1]``.
    standard_error : float
        Its standard error, ``std(ddof=1) / sqrt(n)``. The estimator is unbiased
        and the integrand bounded, so ``estimate +- 4 standard_error`` covers the
        true TV with probability about ``1 - 6e-5`` for moderate ``n``.
    """
    for f, name in ((logp, "logp"), (logq, "logq"), (sample_p, "sample_p")):
        _check_callable(f, name)
    n = positive_int(n, "n")
    if n < 2:
        raise ValueError("n must be >= 2 to estimate a standard error")
    rng = np.random.default_rng(rng)
    x = np.asarray(sample_p(n, rng), dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != n:
        raise ValueError(f"sample_p must return shape ({n}, d); got {x.shape}")
    lp = _log_density(logp, x, "logp")
    if not np.isfinite(lp).all():
        raise ValueError("logp must be finite at the samples of P")
    lq = _log_density(logq, x, "logq")
    # (1 - q/p)_+ = -expm1(min(0, log q - log p)): exact near q = p, and 1 when q = 0.
    values = -np.expm1(np.minimum(0.0, lq - lp))
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(n))


def _mode(f, grid, spacing):
    """Locate the global maximum of a log-density: grid argmax, then Brent."""
    values = _log_density(f, grid[:, None], "log-density")
    i = int(np.argmax(values))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]

    def negative(v):
        return -float(_log_density(f, np.array([[v]]), "log-density")[0])

    res = minimize_scalar(
        negative, bounds=(a, b), method="bounded", options={"xatol": 1e-12 * spacing}
    )
    return float(res.x)


def tv_quadrature_1d(logp, logq, lo, hi, *, points=None):
    """Total variation ``(1/2) int_lo^hi |p - q| dx`` between two 1-D densities.

    The interval must hold all but a negligible part of both laws' mass: what
    lies outside it is not counted. The integrand has kinks where ``p = q``, so
    the interval is split there and the smooth pieces are integrated with
    vectorised adaptive Gauss-Legendre quadrature (10 points per piece, bisected
    until halving changes a piece's value by less than its share of
    ``1e-13 + 1e-12 TV``). Crossings are located by sign changes of
    ``log p - log q`` on a uniform grid of 4097 points, refined around
    *features* -- the modes of ``p`` and ``q`` and the optional ``points`` -- by
    geometric shells at distances ``2^j`` grid spacings (``j = -40 .. 13``), and
    then solved with Brent's method. The features, shells and crossings are the
    breakpoints of the quadrature, so a narrow peak or tail next to a feature is
    never stepped over.

    Accuracy: about ``1e-10`` (absolute) when every feature narrower than the grid
    spacing ``(hi - lo) / 4096`` sits at a mode of ``p`` or ``q`` or at one of
    ``points`` (for a Gaussian mixture with small variance, pass the centres
    ``alpha x_k``). Tested against closed forms for pairs of Gaussians.

    Parameters
    ----------
    logp, logq : callable
        ``(n, 1) -> (n,)`` log-densities of continuous, piecewise smooth
        densities (jumps are not located and cost accuracy).
    lo, hi : float
        Finite integration limits, ``lo < hi``.
    points : array_like, shape (K,), optional
        Locations of narrow features of ``p`` or ``q`` (peaks, crossings).

    Returns
    -------
    float
    """
    _check_callable(logp, "logp")
    _check_callable(logq, "logq")
    lo = real_scalar(lo, "lo")
    hi = real_scalar(hi, "hi")
    if not lo < hi:
        raise ValueError(f"lo must be < hi; got lo={lo!r}, hi={hi!r}")
    extra = np.zeros(0) if points is None else float_array(points, "points").ravel()

    def balance(x):
        # (p - q) / (p + q) = tanh((log p - log q) / 2): the sign of p - q, but
        # bounded, so root finding stays finite where one density vanishes.
        arr = np.atleast_1d(np.asarray(x, dtype=np.float64))[:, None]
        lp, lq = _log_density(logp, arr, "logp"), _log_density(logq, arr, "logq")
        with np.errstate(invalid="ignore"):  # -inf - -inf: no mass on either side
            return np.tanh(0.5 * (lp - lq))

    def scalar_balance(x):
        return float(balance(x)[0])

    def half_abs_gap(x):
        arr = x[:, None]
        gap = np.exp(_log_density(logp, arr, "logp")) - np.exp(_log_density(logq, arr, "logq"))
        return 0.5 * np.abs(gap)

    grid = np.linspace(lo, hi, _GRID_POINTS)
    spacing = grid[1] - grid[0]
    features = np.concatenate([[_mode(logp, grid, spacing), _mode(logq, grid, spacing)], extra])
    features = features[(features > lo) & (features < hi)]
    # Shells around each feature at distances spacing * 2^j, from 2^-40 of the grid
    # spacing out to the whole interval: every piece then spans at most a factor 2
    # in distance from a feature, so a peak of any width there is resolved.
    top = int(np.ceil(np.log2(_GRID_POINTS)))
    offsets = spacing * 2.0 ** np.arange(-_REFINE_LEVELS, top + 1)
    shells = (features[:, None] + np.concatenate([-offsets, offsets])).ravel()
    shells = shells[(shells > lo) & (shells < hi)]
    nodes = np.unique(np.concatenate([grid, features, shells]))
    # Where both log-densities are -inf (no mass) the balance is NaN: count it as 0.
    sign = np.nan_to_num(np.sign(balance(nodes)), nan=0.0)
    crossings = [
        brentq(scalar_balance, nodes[i], nodes[i + 1], xtol=1e-15, rtol=_BRENT_RTOL)
        for i in np.flatnonzero(sign[:-1] * sign[1:] < 0)
    ]
    edges = np.unique(np.concatenate([[lo, hi], crossings, features, shells]))
    return adaptive_gauss(half_abs_gap, edges, _QUAD_ABS_TOL, _QUAD_REL_TOL)
