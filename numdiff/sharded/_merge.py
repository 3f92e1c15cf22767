"""Client-side merges of the shards' per-query statistics (docs/sharded.md#merge).

Both are :func:`numdiff.engines.merge.reduce_parts`, the engines' one merge,
applied to one summary per shard, so they are associative and add a few ulps per
merge. They differ in what the shards send:

* :func:`merge_from_reference` -- each shard's ``(rel_s, x_s, shift_s)`` relative to
  its own nearest point ``x_s``. The client picks the global nearest point ``x_r``
  among the ``x_s`` and re-references each shard by the direct kernel's relative
  logit of ``x_s``, so that the weights never pass through ``|u|^2 / (2 sigma2)``.
  This is the in-process direct kernel's arithmetic, regrouped.
* :func:`merge_absolute` -- each shard's absolute ``(logsum_s, D_s, resid_s)``.
  A weight then carries the rounding of ``logsum_s``, ``eps |logsum_s|`` nats; the
  caller keeps a row only where that is below the in-process BLAS path's own
  tolerance (``LOGIT_TOL``) and redoes the others by the first merge.
"""

from __future__ import annotations

import numpy as np

from numdiff._kernels.exact import residual_rows
from numdiff.engines.merge import reduce_parts

_BIGGEST = np.finfo(np.float64).max


def merge_from_reference(x, alpha, scales, rel, points, shift):
    """Merge per-shard moments given relative to each shard's nearest point.

    Parameters
    ----------
    x : ndarray, shape (M, d)
        Queries.
    alpha : ndarray, shape (M,)
    scales : tuple
        ``(scale, coef, mant, expo)`` of :func:`numdiff.engines.keys.query_scales` for the whole
        data: ``scale`` a power of two per query, ``coef = alpha / (2 sigma2
        scale)``, and ``1 / (2 sigma2 scale^2) = mant * 2^expo``.
    rel : ndarray, shape (S, M)
        Per shard, ``log sum_k exp(e_k)`` relative to its reference point.
    points : ndarray, shape (S, M, d)
        Per shard, the reference point of each query.
    shift : ndarray, shape (S, M, d)
        Per shard, ``sum_k w_k (x_k - x_s)``.

    Returns
    -------
    denoised : ndarray, shape (M, d)
    logsum : ndarray, shape (M,)
        ``log sum_k exp(-|x - alpha x_k|^2 / (2 sigma2))`` over all shards.
    resid : ndarray, shape (M, d)
        ``alpha D - x``, compensated about the global nearest point.
    """
    scale, coef, mant, expo = scales
    rows = np.arange(x.shape[0])
    a_s = alpha * scale
    xs = x * scale[:, None]
    # The global reference: the nearest of the shards' nearest points, by the direct
    # kernel's scaled distances (first of ties: shards are in index order).
    diff = xs - a_s[:, None] * points
    best = _sum_last(diff * diff).argmin(axis=0)
    logits, u, ref_point = _relative_logits(xs, a_s, coef, points, best, rows)
    overflow = logits.max(axis=0) >= _BIGGEST
    if overflow.any():
        # The kernel's rule: a reference whose logit falls short of the largest by
        # more than the float range is replaced by the largest.
        best = np.where(overflow, logits.argmax(axis=0), best)
        logits, u, ref_point = _relative_logits(xs, a_s, coef, points, best, rows)
    offset = shift + (points - ref_point)
    run_max, run_sum, step = reduce_parts((rel + logits).T, None, offset.transpose(1, 0, 2))
    denoised = ref_point + step
    resid = alpha[:, None] * step - u / scale[:, None]
    with np.errstate(over="ignore"):
        logsum = run_max + np.log(run_sum) - np.ldexp(_sum_last(u * u) * mant, expo)
    return denoised, logsum, resid


def merge_absolute(logsum, denoised, resid):
    """Merge per-shard absolute moments.

    Parameters
    ----------
    logsum : ndarray, shape (S, M)
    denoised, resid : ndarray, shape (S, M, d)

    Returns
    -------
    denoised : ndarray, shape (M, d)
    logsum : ndarray, shape (M,)
    resid : ndarray, shape (M, d)
        NaN in a row whose log-sums are all ``-inf`` (the caller redoes such rows).
    """
    parts = np.concatenate([denoised, resid], axis=2).transpose(1, 0, 2)
    with np.errstate(invalid="ignore"):
        run_max, run_sum, mean = reduce_parts(logsum.T, None, parts)
    dim = denoised.shape[2]
    return mean[:, :dim], run_max + np.log(run_sum), mean[:, dim:]


def merge_nearest(idx, dist, k):
    """The ``k`` nearest over all shards from each shard's nearest.

    Parameters
    ----------
    idx : list of ndarray of int64, shape (M, k_s)
        Global indices from each shard, by increasing distance.
    dist : list of ndarray, shape (M, k_s)
    k : int

    Returns
    -------
    idx : ndarray of int64, shape (M, k)
    dist : ndarray, shape (M, k)
        By increasing distance, ties by lower index (as the in-process search).
    """
    idx, dist = np.concatenate(idx, axis=1), np.concatenate(dist, axis=1)
    order = np.lexsort((idx, dist), axis=1)[:, :k]
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(dist, order, axis=1)


def _relative_logits(xs, a_s, coef, points, best, rows):
    """Logits of every shard's reference point relative to ``points[best]``, the
    scaled compensated residual ``u = scale (x - alpha x_r)`` and ``x_r``."""
    ref_point = points[best, rows]
    u = residual_rows(xs, a_s, ref_point)
    dx = points - ref_point
    with np.errstate(over="ignore", invalid="ignore"):
        logits = np.minimum(_sum_last(dx * (2.0 * u - a_s[:, None] * dx)) * coef, _BIGGEST)
    return logits, u, ref_point


def _sum_last(a):
    """Sum over the last axis one coordinate after another, the kernels' order."""
    total = a[..., 0].copy()
    for j in range(1, a.shape[-1]):
        total += a[..., j]
    return total
