"""Exact k nearest neighbours through the leaf index.

Per query: the points of its region leaf, then the best-first search of
:mod:`numdiff.pruned.search` with the data scaled by the query's power of two
``s`` (exact scaling: the distances are those of the dense search), ranked with
ties by lower original index. A query whose search would scan more points than
the caller's limit is handed back to the dense search.
"""

import numpy as np
from numba import prange

from numdiff._kernels.jit import jit_parallel
from numdiff.pruned.moments import QUERY_GROUP
from numdiff.pruned.search import NODE_EFFORT, best_first, scan_leaf


@jit_parallel
def pruned_knn(x, scale, order, first, tree, max_points, block, idx_out, sq_out, taken):
    """Fill ``idx_out (M, k)`` (original indices) and ``sq_out (M, k)`` (scaled squared
    distances) for the queries it takes (``taken (M,)``) among the rows in ``order``
    (the processing order); ``first (M,)`` the queries' region leaves."""
    dim = x.shape[1]
    k = idx_out.shape[1]
    points_t, perm, leaf_start = tree.points_t, tree.perm, tree.leaf_start
    n_leaves = leaf_start.shape[0] - 1
    n_order = order.shape[0]
    n_groups = (n_order + QUERY_GROUP - 1) // QUERY_GROUP
    for g in prange(n_groups):
        sx = np.empty(dim)
        heap_b = np.empty(2 * n_leaves)
        heap_code = np.empty(2 * n_leaves, dtype=np.int64)
        buf = np.empty(block)
        best = np.empty(k, dtype=np.int64)
        best_sq = np.empty(k)
        for i in range(g * QUERY_GROUP, min(n_order, (g + 1) * QUERY_GROUP)):
            m = order[i]
            s = scale[m]
            for j in range(dim):
                sx[j] = x[m, j] * s
            best[:] = -1
            best_sq[:] = np.inf
            home = first[m]
            scan_leaf(sx, s, points_t, perm, leaf_start[home], leaf_start[home + 1], buf, best,
                      best_sq)
            taken[m] = best_first(sx, s, tree, home, best, best_sq, max_points, heap_b,
                                  heap_code, buf, NODE_EFFORT)
            if taken[m]:
                for c in range(k):
                    idx_out[m, c] = perm[best[c]]
                    sq_out[m, c] = best_sq[c]
