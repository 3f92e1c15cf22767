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
# BLAS candidates beyond k recomputed exactly; a query whose ranking's rounding
# bound cannot exclude the next one takes the direct search instead.
EXTRA_CANDIDATES = 7
# Squared distances of coordinates beyond this (or below its inverse) leave the
# float64 range; such queries are rescaled by an exact power of two.
SAFE_MAGNITUDE = 1e150
# Entries of one ranking tile of the BLAS search (queries x data points).
RANK_TILE = 1 << 24


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
    return knn(data, x, k)


def knn(data, x, k, data_t=None, centred=None, sq_norms=None):
    """k nearest rows of ``data (N, d)`` to ``x (M, d)``; inputs already validated.

    Distances are exact differences of the raw coordinates. For ``d > 16`` the
    candidates are ranked by a matrix multiply on centred data; ``data_t``
    (``data.T``, contiguous), ``centred`` (``data`` minus its mean) and
    ``sq_norms`` (``centred``'s squared row norms) may be passed by callers that
    keep them.
    """
    if data_t is None:
        data_t = np.ascontiguousarray(data.T)
    dim = data.shape[1]
    scale = _query_scales(data, x)
    plain = scale == 1.0
    idx = np.empty((x.shape[0], k), dtype=np.int64)
    dist = np.empty((x.shape[0], k))
    if dim <= DIRECT_MAX_DIM:
        plain[:] = False
    elif plain.any():
        if centred is None:
            centred = data - data.mean(axis=0)
            sq_norms = np.einsum("ij,ij->i", centred, centred)
        idx[plain], dist[plain], exact = _knn_blas(data, centred, x[plain], k, sq_norms)
        # Rows whose candidate set the rounding bound could not keep small.
        plain[np.flatnonzero(plain)[~exact]] = False
    rows = np.flatnonzero(~plain)
    if rows.size:
        idx[rows], dist[rows] = _knn_scaled(data, data_t, x[rows], k, scale[rows])
    return idx, dist


def _query_scales(data, x):
    """Per query, 1 or an exact power of two keeping squared distances in range:
    queries beyond ``SAFE_MAGNITUDE`` are scaled by their own size, and queries
    whose whole problem is tiny are scaled up."""
    query_top = np.abs(x).max(axis=1, initial=0.0)
    top = np.maximum(query_top, np.abs(data).max(initial=0.0))
    scale = np.ones(x.shape[0])
    big = query_top > SAFE_MAGNITUDE
    tiny = (top < 1.0 / SAFE_MAGNITUDE) & (top > 0.0)
    scale[big] = _inverse_power_of_two(query_top[big])
    scale[tiny] = _inverse_power_of_two(top[tiny])
    return scale


def _inverse_power_of_two(top):
    """``2^-e`` with ``2^(e-1) <= top < 2^e``."""
    return np.ldexp(1.0, -np.frexp(top)[1])


def _knn_scaled(data, data_t, x, k, scale):
    """Direct search at the given per-query scales; rows whose k-th distance still
    overflows are searched again scaled by the largest coordinate of the problem."""
    idx = np.empty((x.shape[0], k), dtype=np.int64)
    sq = np.empty((x.shape[0], k))
    block = min(DIRECT_BLOCK, data.shape[0])
    knn_direct(x, scale, data_t, block, idx, sq)
    again = ~np.isfinite(sq[:, -1])
    if again.any():
        top = np.maximum(np.abs(x[again]).max(axis=1), np.abs(data).max())
        scale = scale.copy()
        scale[again] = _inverse_power_of_two(top)
        sub_idx, sub_sq = idx[again], sq[again]
        knn_direct(x[again], scale[again], data_t, block, sub_idx, sub_sq)
        idx[again], sq[again] = sub_idx, sub_sq
    return idx, np.sqrt(sq) / scale[:, None]


def _knn_blas(data, centred, x, k, sq_norms):
    """Rank by the expansion ``|y|^2 - 2 x.y``, then recompute the best ``k +
    EXTRA_CANDIDATES`` exactly. Returns ``(idx, dist, exact)``: a row is exact when
    the first candidate left out ranks behind the k-th by more than the ranking's
    rounding bound; other rows are left for the caller's direct search."""
    n_data, dim = centred.shape
    xc = x - (data[0] - centred[0])  # the same shift as the data's
    idx_out = np.zeros((xc.shape[0], k), dtype=np.int64)
    dist_out = np.zeros((xc.shape[0], k))
    exact_out = np.ones(xc.shape[0], dtype=bool)
    n_cand = min(n_data, k + EXTRA_CANDIDATES)
    # |fl(x.y) - x.y| <= d eps |x| |y| and likewise for |y|^2 (gamma_d, doubled), with
    # the largest |y|: one bound per row, so the check costs no pass over the tile.
    slack = 2.0 * dim * np.finfo(float).eps
    top_sq = sq_norms.max()
    rows = max(1, RANK_TILE // n_data)
    for lo in range(0, xc.shape[0], rows):
        q = slice(lo, lo + rows)
        approx = xc[q] @ centred.T
        approx *= -2.0  # in place: the tile is the largest array here
        approx += sq_norms
        if n_cand < n_data:
            part = np.argpartition(approx, n_cand, axis=1)
            cand = part[:, :n_cand]
            left_out = np.take_along_axis(approx, part[:, n_cand : n_cand + 1], axis=1)[:, 0]
            kth = np.partition(np.take_along_axis(approx, cand, axis=1), k - 1, axis=1)[:, k - 1]
            err = slack * (top_sq + 2.0 * np.linalg.norm(xc[q], axis=1) * np.sqrt(top_sq))
            exact_out[q] = left_out - kth > 2.0 * err
        else:
            cand = np.broadcast_to(np.arange(n_data), approx.shape)
        diff = x[q][:, None, :] - data[cand]
        exact = np.einsum("mcj,mcj->mc", diff, diff)
        # Ties by lower index, as the direct search.
        order = np.lexsort((cand, exact), axis=1)[:, :k]
        idx_out[q] = np.take_along_axis(cand, order, axis=1)
        dist_out[q] = np.sqrt(np.take_along_axis(exact, order, axis=1))
    return idx_out, dist_out, exact_out
