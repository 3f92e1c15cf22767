"""Pruned ``top_weights``: the ``k`` largest weights from the kept leaves only.

The logits of the kept points are those of ``log_weights_direct`` (relative to
the nearest point, scaled, clamped), their weights normalised by the kept sum,
which differs from the full sum by at most ``2^-60`` of it. The ``k`` largest are
exact when the ``k``-th logit, less its rounding, still exceeds the bound of every
skipped leaf, and its weight is not 0; otherwise the query is handed back to the
dense path.
"""

import numpy as np
from numba import prange

from numdiff._kernels.direct import _BIGGEST
from numdiff._kernels.jit import jit, jit_parallel
from numdiff._kernels.reference import relative_logits
from numdiff.pruned.moments import QUERY_GROUP, TINY_NORMAL
from numdiff.pruned.plan import REJECTED, plan_query, plan_scratch

_EPS = np.finfo(np.float64).eps


@jit
def logit_rounding(k, ref, u, a_s, coef, points):
    """A bound on the rounding of the computed relative logit of permuted point ``k``:
    ``coef sum_j |dx_j| (2 |u_j| + a_s |dx_j|)`` times ``2 (d + 8) eps``."""
    dim = u.shape[0]
    total = 0.0
    for j in range(dim):
        dx = abs(points[k, j] - points[ref, j])
        total += dx * (2.0 * abs(u[j]) + a_s * dx)
    return 2.0 * (dim + 8.0) * _EPS * coef * total * (1.0 + 4.0 * _EPS)


@jit_parallel
def pruned_top_weights(
    x, alpha, scale, coef, k_s, order, first, tree, levels, max_points, block, idx_out,
    w_out, taken,
):
    """Fill ``idx_out (M, k)`` (original indices) and ``w_out (M, k)`` for the queries
    it takes (``taken (M,)``), by decreasing weight, ties by lower index; the other
    arguments as for :func:`numdiff.pruned.moments.pruned_moments`."""
    dim = x.shape[1]
    n_top = idx_out.shape[1]
    points, points_t, perm, leaf_start = tree.points, tree.points_t, tree.perm, tree.leaf_start
    n_leaves = tree.leaf_weight.shape[0]
    n_order = order.shape[0]
    n_groups = (n_order + QUERY_GROUP - 1) // QUERY_GROUP
    for g in prange(n_groups):
        scratch = plan_scratch(dim, n_leaves, block)
        u, kept = scratch[0], scratch[4]
        sx = np.empty(dim)
        for i in range(g * QUERY_GROUP, min(n_order, (g + 1) * QUERY_GROUP)):
            m = order[i]
            taken[m] = False
            s = scale[m]
            a_s = alpha[m] * s
            if not a_s >= TINY_NORMAL:
                continue
            for j in range(dim):
                sx[j] = x[m, j] * s
            ref, n_kept, kept_points, skipped_top = plan_query(
                sx, a_s, k_s[m], first[m], tree, levels, max_points, scratch
            )
            if ref == REJECTED or kept_points < n_top:
                continue
            n_cand = int(kept_points)
            logit = np.empty(n_cand)
            cand = np.empty(n_cand, dtype=np.int64)
            pos = 0
            for c in range(n_kept):
                leaf = kept[c]
                start = leaf_start[leaf]
                nb = leaf_start[leaf + 1] - start
                relative_logits(ref, u, a_s, points, points_t, start, nb, logit[pos:])
                for k in range(nb):
                    logit[pos + k] = min(logit[pos + k] * coef[m], _BIGGEST)
                    cand[pos + k] = start + k
                pos += nb
            top = np.max(logit)
            if top > 0.0:
                # The dense kernel's re-pick case (see numdiff/_kernels/direct.py).
                continue
            weight = np.exp(logit - top)
            weight /= np.sum(weight)
            # Decreasing weight, ties by lower original index (the dense path's
            # order): a stable sort of the candidates in original order.
            by_index = np.argsort(perm[cand])
            weight = weight[by_index]
            logit = logit[by_index]
            cand = cand[by_index]
            best = np.argsort(-weight, kind="mergesort")[:n_top]
            last = best[n_top - 1]
            # The k-th must outweigh every skipped point for certain (its logit, less
            # its rounding, above their bound), and not be 0: zeros tie with skipped
            # points, which the dense path ranks by index.
            slack = logit_rounding(cand[last], ref, u, a_s, coef[m], points)
            if weight[last] == 0.0 or not logit[last] - slack > skipped_top:
                continue
            for c in range(n_top):
                idx_out[m, c] = perm[cand[best[c]]]
                w_out[m, c] = weight[best[c]]
            taken[m] = True
