"""The cost estimate: kept points per query from the plan alone.

No exponential and no merge: the nearest point, the tree walk and the leaf
selection of :func:`numdiff.pruned.plan.plan_query`, which counts the kept points
before it decides.
"""

import numpy as np
from numba import prange

from numdiff._kernels.jit import jit_parallel
from numdiff.pruned.moments import TINY_NORMAL
from numdiff.pruned.plan import plan_query, plan_scratch
from numdiff.pruned.search import NODE_EFFORT

# Scratch per query for the leaf scans.
_SCAN_BLOCK = 512


@jit_parallel
def survey(x, alpha, scale, k_s, rows, first, tree, levels, max_points):
    """Kept points ``(len(rows),)`` of the queries ``x[rows]`` (``inf`` where the
    scaled ``alpha`` is not a normal float and nothing is certified); the other
    arguments as for :func:`numdiff.pruned.moments.pruned_moments`."""
    dim = x.shape[1]
    n_leaves = tree.leaf_weight.shape[0]
    out = np.empty(rows.shape[0])
    for i in prange(rows.shape[0]):
        m = rows[i]
        s = scale[m]
        a_s = alpha[m] * s
        if not a_s >= TINY_NORMAL:
            out[i] = np.inf
            continue
        scratch = plan_scratch(dim, n_leaves, _SCAN_BLOCK)
        out[i] = plan_query(x[m] * s, a_s, k_s[m], first[m], tree, levels, max_points,
                            scratch, NODE_EFFORT)[2]
    return out
