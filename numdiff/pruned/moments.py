"""Pruned mixture moments: the dense direct kernel's block merge over kept leaves.

For each query the plan (:mod:`numdiff.pruned.plan`) gives the kept leaves and the
nearest point ``x_r``; the logits relative to ``x_r``, their scaling, the flushed
``exp`` and the ``(max, sum, weighted sum)`` merge are those of
``numdiff/_kernels/direct.py``, over the kept leaves only (runs of consecutive
kept leaves in blocks of ``block`` points, as the dense kernel's blocks):
unshifted weights, and the running-maximum merge for a query with a logit above
``LOGIT_CAP``.

The skipped weights are at most ``2^-60`` of the kept sum, so ``D``, the score
residual and ``log sum exp`` agree with the dense kernel to that relative amount
plus rounding. A query is handed back (``taken = False``) when too many points are
kept or in the dense kernel's re-pick case (the nearest point by rounded distance
falls short of the largest logit by more than the float range).
"""

import numpy as np

from numdiff._kernels.direct import _BIGGEST, capped_run, running_run
from numdiff._kernels.jit import jit
from numdiff._kernels.threads import run_groups
from numdiff.pruned.plan import REJECTED, plan_query, plan_scratch

# Queries per parallel task: scratch is allocated once per group, and the group's
# queries, sorted by leaf, share the leaves in cache.
QUERY_GROUP = 16
# a_s = s alpha below the smallest normal float would round in the products.
TINY_NORMAL = np.finfo(np.float64).tiny


@jit
def kept_runs(kept, n_kept, leaf_start, runs):
    """The kept leaves as runs of consecutive permuted points, ``runs[:n] = (start,
    stop)``, in increasing order (blocks then span leaves, as the dense kernel's
    span the data: fewer, larger partial sums). Sorts ``kept[:n_kept]``; returns ``n``."""
    kept[:n_kept].sort()
    n_runs = 0
    for i in range(n_kept):
        leaf = kept[i]
        if n_runs > 0 and runs[n_runs - 1, 1] == leaf_start[leaf]:
            runs[n_runs - 1, 1] = leaf_start[leaf + 1]
        else:
            runs[n_runs, 0] = leaf_start[leaf]
            runs[n_runs, 1] = leaf_start[leaf + 1]
            n_runs += 1
    return n_runs


@jit
def merge_capped(ref, u, a_s, coef, points, points_t, leaf_start, kept, n_kept, runs, buf, acc):
    """``sum_k exp(e_k)`` and ``acc = sum_k exp(e_k) (x_k - x_r)`` over the kept
    leaves, or ``-1`` if a logit exceeds ``LOGIT_CAP``."""
    acc[:] = 0.0
    run_sum = 0.0
    n_runs = kept_runs(kept, n_kept, leaf_start, runs)
    for i in range(n_runs):
        part = capped_run(ref, u, a_s, coef, points, points_t, runs[i, 0], runs[i, 1], buf, acc)
        if part < 0.0:
            return -1.0
        run_sum += part
    return run_sum


@jit
def merge_running(ref, u, a_s, coef, points, points_t, leaf_start, kept, n_kept, runs, buf, acc):
    """The dense kernel's merge with a running maximum, over the kept leaves; fills
    ``acc (d,)`` and returns ``(max, sum)``."""
    acc[:] = 0.0
    run_max = -np.inf
    run_sum = 0.0
    n_runs = kept_runs(kept, n_kept, leaf_start, runs)
    for i in range(n_runs):
        run_max, run_sum = running_run(ref, u, a_s, coef, points, points_t, runs[i, 0],
                                       runs[i, 1], buf, acc, run_max, run_sum)
    return run_max, run_sum


def pruned_moments(
    x, alpha, scale, coef, k_s, order, first, tree, levels, max_points, block,
    denoised, logsum, u2, resid, taken,
):
    """The dense kernel's outputs for the queries it takes.

    Parameters
    ----------
    x : ndarray, shape (M, d)
    alpha, scale, coef, k_s : ndarray, shape (M,)
        As for the dense kernel; ``k_s = coef / (alpha scale)``, clamped.
    order : ndarray of int64, shape (M,)
        Processing order (queries sharing leaves adjacent).
    first : ndarray of int64, shape (M,)
        Each query's region leaf (:meth:`LeafIndex.leaf_of`).
    tree : TreeArrays
        The index (:meth:`LeafIndex.arrays`).
    levels : ndarray, shape (4,)
        :func:`numdiff.pruned.bounds.selection_levels`.
    max_points : float
        Most points a query may keep.
    block : int
        Data points per merge block.
    denoised, resid : ndarray, shape (M, d)
    logsum, u2 : ndarray, shape (M,)
        Filled where taken, as by ``mixture_moments_direct``.
    taken : ndarray of bool, shape (M,)
    """
    n_groups = (order.shape[0] + QUERY_GROUP - 1) // QUERY_GROUP
    pairs = order.shape[0] * min(max_points, tree.points.shape[0])
    run_groups(_pruned_groups, n_groups, pairs, x, alpha, scale, coef, k_s, order, first, tree,
               levels, max_points, block, denoised, logsum, u2, resid, taken)


@jit
def _pruned_groups(lo, hi, x, alpha, scale, coef, k_s, order, first, tree, levels, max_points,
                   block, denoised, logsum, u2, resid, taken):
    """:func:`pruned_moments` for the query groups ``lo .. hi - 1`` (of ``order``)."""
    dim = x.shape[1]
    points, points_t, leaf_start = tree.points, tree.points_t, tree.leaf_start
    n_leaves = tree.leaf_weight.shape[0]
    n_order = order.shape[0]
    for g in range(lo, hi):
        scratch = plan_scratch(dim, n_leaves, block)
        u, kept, buf = scratch[0], scratch[4], scratch[12]
        sx = np.empty(dim)
        acc = np.empty(dim)
        runs = np.empty((n_leaves, 2), dtype=np.int64)
        for i in range(g * QUERY_GROUP, min(n_order, (g + 1) * QUERY_GROUP)):
            m = order[i]
            taken[m] = False
            s = scale[m]
            a_s = alpha[m] * s
            if not a_s >= TINY_NORMAL:
                continue
            for j in range(dim):
                sx[j] = x[m, j] * s
            ref, n_kept, _, _ = plan_query(
                sx, a_s, k_s[m], first[m], tree, levels, max_points, scratch
            )
            if ref == REJECTED:
                continue
            run_max = 0.0
            run_sum = merge_capped(
                ref, u, a_s, coef[m], points, points_t, leaf_start, kept, n_kept, runs, buf, acc,
            )
            if run_sum < 0.0:
                run_max, run_sum = merge_running(
                    ref, u, a_s, coef[m], points, points_t, leaf_start, kept, n_kept, runs, buf,
                    acc,
                )
                if run_max >= _BIGGEST:
                    continue
            sq = 0.0
            for j in range(dim):
                shift = acc[j] / run_sum
                denoised[m, j] = points[ref, j] + shift
                resid[m, j] = alpha[m] * shift - u[j] / s
                sq += u[j] * u[j]
            u2[m] = sq
            logsum[m] = run_max + np.log(run_sum)
            taken[m] = True
