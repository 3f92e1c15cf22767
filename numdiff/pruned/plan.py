"""Per-query plan: the nearest point, the kept leaves.

:func:`plan_query` runs, for one query: the nearest point by a best-first search
(:mod:`numdiff.pruned.search`, seeded with the leaf of the query's region), a walk
down the tree that stops at subtrees whose logit bound is far below the budget or
whose points all count, and the selection of the kept leaves
(:mod:`numdiff.pruned.bounds`). The nearest point is the dense kernel's reference
(rounded scaled distance, ties by lowest index). It is always kept: its leaf's
bound is ``+inf`` relative to any reference, and one point alone outweighs the
budget.

Where boxes prune little (high ``d``, queries far from the data) the search is
capped; the selection then runs relative to the best point found (any data
point's logit bounds the largest from below), and the nearest point is completed
among the kept leaves, which hold it.
"""

import numpy as np

from numdiff._kernels.exact import residual
from numdiff._kernels.jit import jit
from numdiff.pruned.bounds import (
    box_bound,
    box_shrink,
    logit_bound,
    residual_upper,
    select_leaves,
    walk,
)
from numdiff.pruned.search import best_first, scan_leaf

# plan_query's answer when the kept points exceed the caller's limit.
REJECTED = -1
# Entries of the walk's stack: two per level of a tree of depth <= 64.
STACK = 130


@jit
def plan_scratch(dim, n_leaves, block):
    """Per-thread scratch of :func:`plan_query`: ``(u, reached, b_reached, e_up, kept,
    marginal, band, stack, heap_b, heap_code, best, best_sq, buf)``."""
    return (
        np.empty(dim), np.empty(n_leaves, dtype=np.int64), np.empty(n_leaves),
        np.empty(n_leaves), np.empty(n_leaves, dtype=np.int64),
        np.empty(n_leaves, dtype=np.int64), np.empty(n_leaves),
        np.empty(STACK, dtype=np.int64),
        np.empty(2 * n_leaves), np.empty(2 * n_leaves, dtype=np.int64),
        np.empty(1, dtype=np.int64), np.empty(1), np.empty(block),
    )


@jit
def _select(sx, a_s, k_s, tree, levels, max_points, scratch):
    """Walk and selection relative to the reference ``u`` (``scratch[0]``); a walk
    stopped early returns its lower count of kept points, above ``max_points``."""
    u, reached, b_reached, e_up, kept, marginal, band, stack = scratch[:8]
    shrink = box_shrink(sx.shape[0])
    u2_up = residual_upper(u)
    n_reached, n_kept, kept_points, deep_points, deep_top, complete = walk(
        sx, a_s, k_s, u2_up, tree, levels, max_points, reached, b_reached, kept, stack
    )
    if not complete:
        return n_kept, kept_points, np.inf
    for i in range(n_reached):
        e_up[i] = logit_bound(u2_up, k_s, b_reached[i], shrink)
    return select_leaves(
        e_up, reached, n_reached, tree.leaf_weight, tree.log_weight, levels, deep_points,
        deep_top, kept, n_kept, kept_points, marginal, band,
    )


@jit
def plan_query(sx, a_s, k_s, first, tree, levels, max_points, scratch, node_effort=0.0):
    """Nearest point and kept leaves of one scaled query ``sx = s x``.

    Parameters
    ----------
    sx : ndarray, shape (d,)
    a_s, k_s : float
        ``s alpha`` and ``alpha / (2 sigma2 s) / a_s`` (clamped to the float range).
    first : int
        The leaf of the query's region: scanned first.
    tree : TreeArrays
        The index (:meth:`LeafIndex.arrays`).
    levels : ndarray, shape (4,)
        :func:`numdiff.pruned.bounds.selection_levels`.
    max_points : float
        Give up (``REJECTED``) when more points than this are kept; the search
        for the nearest point scans at most a sixteenth of it.
    scratch : tuple
        :func:`plan_scratch`; on return ``u = sx - a_s x_ref`` and ``kept[:n_kept]``
        the kept leaves.
    node_effort : float, optional
        What opening an internal node counts towards that search's cap, in
        points (:data:`numdiff.pruned.search.NODE_EFFORT`). 0 (default) for the
        plans that run the merge: stopping early at a farther reference loosens
        every bound, and 13 of 150 near queries at ``d = 64`` then went dense. The
        dispatch's survey of a sample passes ``NODE_EFFORT``: far queries in high
        ``d`` would otherwise open most of the tree, and the survey of a call that
        ends dense is pure overhead (at ``d = 64`` far from the data, 0.86 of the
        dense speed without it).

    Returns
    -------
    ref : int
        Permuted index of the nearest point, or ``REJECTED``.
    n_kept : int
    kept_points : float
        Points in the kept leaves (when rejected, possibly only a count above
        ``max_points``).
    skipped_top : float
        An upper bound of every skipped logit relative to ``x_ref`` (bounds
        relative to a farther reference are, since a nearer reference only lowers
        the logits relative to it).
    """
    u, kept = scratch[0], scratch[4]
    heap_b, heap_code, best, best_sq, buf = scratch[8:]
    leaf_start, points = tree.leaf_start, tree.points
    best[0] = -1
    best_sq[0] = np.inf
    scan_leaf(sx, a_s, tree.points_t, tree.perm, leaf_start[first], leaf_start[first + 1], buf,
              best, best_sq)
    exact = best_first(sx, a_s, tree, first, best, best_sq, max_points / 16.0, heap_b,
                       heap_code, buf, node_effort)
    # u = sx - a_s x_ref, compensated as in the dense kernel. (This loop and the scan
    # below are written out: as functions of their own each costs a compilation.)
    for j in range(sx.shape[0]):
        u[j] = residual(sx[j], a_s, points[best[0], j])
    n_kept, kept_points, skipped_top = _select(sx, a_s, k_s, tree, levels, max_points, scratch)
    if kept_points > max_points:
        return REJECTED, n_kept, kept_points, skipped_top
    if not exact:
        found = best[0]
        u2_found = residual_upper(u)
        # Complete the nearest point over the kept leaves, which hold it (its leaf's
        # bound is +inf relative to any reference). The box bound also bounds the
        # rounded distances: a leaf above the best holds neither a nearer point nor a
        # tie.
        shrink = box_shrink(sx.shape[0])
        for i in range(n_kept):
            leaf = kept[i]
            if box_bound(sx, a_s, tree.leaf_lo, tree.leaf_hi, leaf) * shrink <= best_sq[0]:
                scan_leaf(sx, a_s, tree.points_t, tree.perm, leaf_start[leaf],
                          leaf_start[leaf + 1], buf, best, best_sq)
        if best[0] != found:
            for j in range(sx.shape[0]):
                u[j] = residual(sx[j], a_s, points[best[0], j])
            # Bounds relative to the nearer point are lower by k_s (|u_found|^2 -
            # |u|^2): worth a second walk only when that is a nat or more.
            if (u2_found - residual_upper(u)) * k_s >= 1.0:
                n_kept, kept_points, skipped_top = _select(
                    sx, a_s, k_s, tree, levels, max_points, scratch
                )
    return best[0], n_kept, kept_points, skipped_top
