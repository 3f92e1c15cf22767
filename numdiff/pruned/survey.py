"""The cost estimate: kept points per query from the plan alone.

No exponential and no merge: the nearest point, the tree walk and the leaf
selection of :func:`numdiff.pruned.plan.plan_query`, which counts the kept points
before it decides. It runs in the merge's kernel
(:func:`numdiff.pruned.moments.query_groups`), which then stops after the plans:
a kernel of its own would compile the whole plan a second time on the first call
of every ``"auto"`` pruned ``denoise``.
"""

import numpy as np

from numdiff._kernels.threads import run_groups
from numdiff.pruned.moments import QUERY_GROUP, query_groups
from numdiff.pruned.search import NODE_EFFORT

# Scratch per query for the leaf scans.
_SCAN_BLOCK = 512


def survey(x, alpha, scale, k_s, rows, first, tree, levels, max_points):
    """Kept points ``(len(rows),)`` of the queries ``x[rows]`` (``inf`` where the
    scaled ``alpha`` is not a normal float and nothing is certified); the other
    arguments as for :func:`numdiff.pruned.moments.pruned_moments`."""
    kept = np.empty(x.shape[0])
    n_groups = (rows.shape[0] + QUERY_GROUP - 1) // QUERY_GROUP
    pairs = rows.shape[0] * min(max_points, tree.points.shape[0])
    # The merge's outputs, untouched by a survey, empty; ``alpha`` stands for the
    # unused ``coef``.
    none_2d, none_1d = np.empty((0, x.shape[1])), np.empty(0)
    run_groups(query_groups, n_groups, pairs, x, alpha, scale, alpha, k_s, rows, first, tree,
               levels, max_points, _SCAN_BLOCK, NODE_EFFORT, kept, none_2d, none_1d, none_1d,
               none_2d, np.empty(0, dtype=bool), np.empty(0, dtype=bool))
    return kept[rows]
