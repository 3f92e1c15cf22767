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

from numdiff._kernels.direct import _BIGGEST, capped_block, running_run
from numdiff._kernels.jit import jit
from numdiff._kernels.threads import run_groups
from numdiff.pruned.plan import REJECTED, plan_query, plan_scratch

# Queries per parallel task: scratch is allocated once per group, and the group's
# queries, sorted by leaf, share the leaves in cache.
QUERY_GROUP = 16
# a_s = s alpha below the smallest normal float would round in the products.
TINY_NORMAL = np.finfo(np.float64).tiny
# plan_query's node_effort for the plans that run the merge (see there).
MERGE_EFFORT = 0.0


@jit
def merge_capped(ref, u, a_s, coef, points, points_t, runs, n_runs, buf, acc):
    """``(0, sum_k exp(e_k))`` and ``acc = sum_k exp(e_k) (x_k - x_r)`` over the
    points of ``runs[:n_runs]`` (:func:`query_groups`), or ``(0, -1)`` if a logit
    exceeds ``LOGIT_CAP``."""
    acc[:] = 0.0
    run_sum = 0.0
    block = buf.shape[0]
    for i in range(n_runs):
        # The dense kernel's capped_run, written out: one function fewer to compile.
        for first in range(runs[i, 0], runs[i, 1], block):
            part = capped_block(ref, u, a_s, coef, points, points_t, first,
                                min(block, runs[i, 1] - first), buf, acc)
            if part < 0.0:
                return 0.0, -1.0
            run_sum += part
    return 0.0, run_sum


@jit
def merge_running(ref, u, a_s, coef, points, points_t, runs, n_runs, buf, acc):
    """The dense kernel's merge with a running maximum, over the points of
    ``runs[:n_runs]``; fills ``acc (d,)`` and returns ``(max, sum)``."""
    acc[:] = 0.0
    run_max = -np.inf
    run_sum = 0.0
    for i in range(n_runs):
        run_max, run_sum = running_run(ref, u, a_s, coef, points, points_t, runs[i, 0],
                                       runs[i, 1], buf, acc, run_max, run_sum)
    return run_max, run_sum


def pruned_moments(
    x, alpha, scale, coef, k_s, order, first, tree, levels, max_points, block,
    denoised, logsum, u2, resid, taken,
):
    """The dense kernel's outputs for the queries it takes.

    The queries with a logit above ``LOGIT_CAP`` (rare) are merged again, with a
    running maximum, by a second kernel: its code is compiled on the first call
    that needs it, not on the first call of the path.

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
    capped = np.zeros(x.shape[0], dtype=bool)
    no_survey = np.empty(0)

    def run(queries, *running):
        n_groups = (queries.shape[0] + QUERY_GROUP - 1) // QUERY_GROUP
        pairs = queries.shape[0] * min(max_points, tree.points.shape[0])
        run_groups(query_groups, n_groups, pairs, x, alpha, scale, coef, k_s, queries, first,
                   tree, levels, max_points, block, MERGE_EFFORT, no_survey, denoised, logsum, u2,
                   resid, taken, capped, *running)

    run(order)
    if capped.any():
        run(order[capped[order]], True)


@jit
def query_groups(lo, hi, x, alpha, scale, coef, k_s, order, first, tree, levels, max_points,
                 block, node_effort, survey, denoised, logsum, u2, resid, taken, capped,
                 running=None):
    """:func:`pruned_moments` for the query groups ``lo .. hi - 1`` (of ``order``), or
    the plans alone (:func:`numdiff.pruned.survey.survey`).

    The merge is :func:`merge_capped`, which flags in ``capped`` the queries it
    cannot take, or, given ``running``, :func:`merge_running`. Left out,
    ``running`` is a constant None to Numba, which then drops the other branch
    before typing it: the running merge compiles only when a call needs it. With a
    ``survey (M,)`` of nonzero length only the plans run (``node_effort`` as for
    :func:`numdiff.pruned.plan.plan_query`), and ``survey[m]`` gets the points they
    keep (``inf`` where nothing is certified); the outputs of the merge are then
    not touched (they may be empty). One kernel for both: the plan, most of the
    code, is compiled once on the first call of the ``"auto"`` mode.
    """
    dim = x.shape[1]
    points, points_t, leaf_start = tree.points, tree.points_t, tree.leaf_start
    n_leaves = tree.leaf_weight.shape[0]
    n_order = order.shape[0]
    plans_only = survey.shape[0] > 0
    for g in range(lo, hi):
        scratch = plan_scratch(dim, n_leaves, block)
        u, kept, buf = scratch[0], scratch[4], scratch[12]
        sx = np.empty(dim)
        acc = np.empty(dim)
        runs = np.empty((n_leaves, 2), dtype=np.int64)
        for i in range(g * QUERY_GROUP, min(n_order, (g + 1) * QUERY_GROUP)):
            m = order[i]
            if plans_only:
                survey[m] = np.inf
            else:
                taken[m] = False
            s = scale[m]
            a_s = alpha[m] * s
            if not a_s >= TINY_NORMAL:
                continue
            for j in range(dim):
                sx[j] = x[m, j] * s
            ref, n_kept, kept_points, _ = plan_query(
                sx, a_s, k_s[m], first[m], tree, levels, max_points, scratch, node_effort
            )
            if plans_only:
                survey[m] = kept_points
                continue
            if ref == REJECTED:
                continue
            # The kept leaves (in increasing order, as select_leaves leaves them) as
            # runs of consecutive permuted points: blocks then span leaves, as the
            # dense kernel's span the data (fewer, larger partial sums).
            n_runs = np.int64(0)  # not the literal 0: see select_leaves
            for c in range(n_kept):
                leaf = kept[c]
                if n_runs > 0 and runs[n_runs - 1, 1] == leaf_start[leaf]:
                    runs[n_runs - 1, 1] = leaf_start[leaf + 1]
                else:
                    runs[n_runs, 0] = leaf_start[leaf]
                    runs[n_runs, 1] = leaf_start[leaf + 1]
                    n_runs += 1
            if running is None:
                run_max, run_sum = merge_capped(ref, u, a_s, coef[m], points, points_t, runs, n_runs,
                                                buf, acc)
            else:
                run_max, run_sum = merge_running(ref, u, a_s, coef[m], points, points_t, runs,
                                                 n_runs, buf, acc)
            if run_sum < 0.0:
                capped[m] = True
                continue
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
