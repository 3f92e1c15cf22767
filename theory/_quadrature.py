"""Vectorised adaptive Gauss-Legendre quadrature over many pieces at once.

Each piece ``[a, b]`` carries its own Gauss-Legendre estimate; a round evaluates
the rule on both halves of every open piece in a single call of the integrand,
and accepts the halves' sum when it differs from the piece's estimate by less
than its share of the tolerance. Otherwise the halves become pieces (their
estimates are already known, so no evaluation is wasted). One call per round
matters when the integrand is costly per call (e.g. a dense mixture density).
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.polynomial.legendre import leggauss

_ORDER = 10  # exact for polynomials of degree 19 on each piece
_MAX_ROUNDS = 60
_NODES, _WEIGHTS = leggauss(_ORDER)


def _rule(f, a, b):
    half = 0.5 * (b - a)
    x = 0.5 * (a + b)[:, None] + half[:, None] * _NODES
    return half * (f(x.ravel()).reshape(x.shape) @ _WEIGHTS)


def adaptive_gauss(f, edges, abs_tol, rel_tol):
    """``int f`` over ``[edges[0], edges[-1]]``, split at ``edges``.

    Parameters
    ----------
    f : callable
        Vectorised integrand, ``(n,) -> (n,)``.
    edges : ndarray, shape (K + 1,)
        Increasing breakpoints; the integrand should be smooth between them.
    abs_tol, rel_tol : float
        A piece of width ``w`` is accepted when its error estimate is below
        ``max(abs_tol * w / total_width, rel_tol * |estimate|)``, so the total
        error is about ``abs_tol + rel_tol * int |f|`` at most.

    Returns
    -------
    float
        The integral; a ``RuntimeWarning`` is issued if some piece did not
        converge within 60 bisections (its best estimate is still added).
    """
    a, b = edges[:-1], edges[1:]
    width = edges[-1] - edges[0]
    estimate = _rule(f, a, b)
    total = 0.0
    for _ in range(_MAX_ROUNDS):
        mid = 0.5 * (a + b)
        left, right = _rule(f, a, mid), _rule(f, mid, b)
        fine = left + right
        accept = np.abs(fine - estimate) <= np.maximum(
            abs_tol * (b - a) / width, rel_tol * np.abs(fine)
        )
        total += float(np.sum(fine[accept]))
        if accept.all():
            return total
        keep = ~accept
        a, b = np.concatenate([a[keep], mid[keep]]), np.concatenate([mid[keep], b[keep]])
        estimate = np.concatenate([left[keep], right[keep]])
    warnings.warn(
        "adaptive quadrature did not converge on some pieces", RuntimeWarning, stacklevel=3
    )
    return total + float(np.sum(estimate))
