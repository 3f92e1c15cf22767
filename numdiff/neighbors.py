"""Exact nearest neighbours of queries among data points (Euclidean).

One implementation serves :meth:`numdiff.EmpiricalScore.nearest`, the
memorisation metrics and the reference point of the score kernels.
"""

from __future__ import annotations

import numpy as np

from numdiff._checks import as_count, as_points
from numdiff._kernels.direct import knn_direct

__all__ = ["nearest_neighbors"]

# Dimension up to which direct differences beat the BLAS expansion (the same
# crossover as the score kernels, benchmarks/bench_score.py).
DIRECT_MAX_DIM = 16
# Data points per block of the direct search (per-thread buffer in L2).
DIRECT_BLOCK = 512
# BLAS candidates beyond k that are re-ranked by exact differences: the expansion
# |x|^2 - 2 x.y + |y|^2 misorders points closer than its rounding, eps |x| |y|.
EXTRA_CANDIDATES = 7
# Squared distances of coordinates beyond this overflow float64; such inputs are
# rescaled by an exact power of two first.
SAFE_MAGNITUDE = 1e100


def nearest_neighbors(data, x, k=1):
    """The ``k`` data points nearest to each query.

    Parameters
    ----------
    data : array_like, shape (N, d)
        Data points, finite, ``N >= 1``.
    x : array_like, shape (M, d) or (d,)
        Queries, finite.
    k : int, optional
        Number of neighbours, ``1 <= k <= N``; default 1.

    Returns
    -------
    idx : ndarray of int64, shape (M, k)
        Indices into ``data``, by increasing distance (ties by lower index in
        ``d <= 16``).
    dist : ndarray, shape (M, k)
        The distances, increasing.

    Examples
    --------
    >>> import numdiff as nd
    >>> nd.nearest_neighbors([[0.0], [1.0], [3.0]], [[0.9]], k=2)[0]
    array([[1, 0]])
    """
    data = as_points(data, None, "data")
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"data must be non-empty; got shape {data.shape}")
    x = as_points(x, data.shape[1], "x")
    k = as_count(k, "k", 1, data.shape[0])
    centre = data.mean(axis=0)
    centred = data - centre
    return knn_centred(centred, x - centre, k)


def knn_centred(centred, xc, k, centred_t=None, sq_norms=None):
    """k nearest rows of ``centred (N, d)`` to ``xc (M, d)``; inputs already validated.

    ``centred_t`` (``centred.T``, contiguous) and ``sq_norms`` (row norms
    squared) may be passed by callers that keep them.
    """
    scale = _power_of_two_scale(centred, xc)
    if scale != 1.0:
        centred, xc = centred * scale, xc * scale
        centred_t = sq_norms = None
    idx, dist = _knn(centred, xc, k, centred_t, sq_norms)
    return idx, dist / scale


def _power_of_two_scale(centred, xc):
    """1, or an exact power of two bringing the largest coordinate near 1 when
    squared distances would overflow (or underflow) float64."""
    top = max(np.abs(centred).max(initial=0.0), np.abs(xc).max(initial=0.0))
    if top == 0.0 or 1.0 / SAFE_MAGNITUDE < top < SAFE_MAGNITUDE:
        return 1.0
    return float(np.ldexp(1.0, -np.frexp(top)[1]))


def _knn(centred, xc, k, centred_t, sq_norms):
    n_data, dim = centred.shape
    idx_out = np.empty((xc.shape[0], k), dtype=np.int64)
    dist_out = np.empty((xc.shape[0], k))
    if dim <= DIRECT_MAX_DIM:
        if centred_t is None:
            centred_t = np.ascontiguousarray(centred.T)
        knn_direct(xc, centred_t, min(DIRECT_BLOCK, n_data), idx_out, dist_out)
        return idx_out, np.sqrt(dist_out)
    if sq_norms is None:
        sq_norms = np.einsum("ij,ij->i", centred, centred)
    n_cand = min(n_data, k + EXTRA_CANDIDATES)
    rows = max(1, (1 << 22) // n_data)
    for lo in range(0, xc.shape[0], rows):
        q = slice(lo, lo + rows)
        # Rank by the BLAS expansion, then recompute the few candidates exactly.
        approx = sq_norms[None, :] - 2.0 * (xc[q] @ centred.T)
        cand = np.argpartition(approx, n_cand - 1, axis=1)[:, :n_cand]
        diff = xc[q][:, None, :] - centred[cand]
        exact = np.einsum("mcj,mcj->mc", diff, diff)
        order = np.argsort(exact, axis=1, kind="stable")[:, :k]
        idx_out[q] = np.take_along_axis(cand, order, axis=1)
        dist_out[q] = np.sqrt(np.take_along_axis(exact, order, axis=1))
    return idx_out, dist_out
