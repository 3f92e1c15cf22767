"""Certified bounds: which leaves a query may skip (docs/numerics.md#pruning).

Work in the direct kernel's scaled form (numdiff/_kernels/direct.py): per query an
exact power of two ``s`` with ``s |x_j| < 1`` and ``s alpha |x_kj| <= 1 + eps``,
``sx = s x``, ``a_s = s alpha``, ``k_s = coef / a_s = 1 / (2 sigma2 s^2)``. For a
reference point ``x_0`` with ``|u|^2 = |sx - a_s x_0|^2`` the logit of ``x_k``
relative to it is

    e_k = k_s (|u|^2 - |sx - a_s x_k|^2)  <=  E_leaf = k_s (|u|^2 - b_leaf)

for every ``x_k`` in a leaf whose scaled box is at squared distance ``>= b_leaf``.
The skipped weights sum to at most ``sum_skipped n_leaf exp(E_leaf)`` times the
kept sum (which is ``>= exp(0)``: ``x_0`` is kept). Leaves are kept in decreasing
``E_leaf`` until that sum is ``<= SKIP_MASS`` (:func:`select_leaves`); whole
subtrees far below the budget are skipped unvisited by :func:`walk`, their sum
bounded by their point count times ``exp`` of a level above all their bounds
(the bound of a node's box is above that of every box inside it).

Rounding. Every bound is made to hold for the exact values of the float inputs:

* ``b_leaf``: per coordinate the gap ``max(a_s lo - sx, sx - a_s hi, 0)`` is formed
  with an absolute error ``<= 1.6 eps`` (one product ``<= 1``, one difference
  ``<= 2``), so ``gap - BOX_SLACK`` (``4 eps``) is a lower bound of the exact gap,
  also of the gap of any *rounded* distance of a point in the box; the sum of
  ``d`` squares is then lowered by the relative ``rho = (2 d + 16) eps``, which
  exceeds the rounding of ``d + 2`` operations in any order (reassociation) or
  contraction (an FMA rounds less).
* ``|u|^2`` from the compensated residual (numdiff/_kernels/exact.py), each entry
  within ``3 eps`` relative (plus underflow), is raised by ``rho`` and by
  ``UNDERFLOW_SLACK`` (``2^-1000``, far above any underflowed part of a scaled
  coordinate ``<= 1``).
* ``E``: a subtraction, a product and ``k_s`` (itself one division, clamped
  downwards, which only raises ``E`` when ``E < 0``) round by ``<= 2 eps``
  relative; ``E < 0`` is raised by at least ``3 eps |E|`` (a product by ``1 - 4 eps``).
* The sum ``sum n exp(E)`` of up to ``L <= 2^31`` leaves rounds by at most ``(L +
  4) eps < 2^-20`` relative (the vectorised ``exp`` of ``E + log n`` to
  ``3.5e-16``, the addition ``E + log n`` to ``150 eps``), so it is compared with
  ``SKIP_MASS (1 - 2^-20)``. The vectorised ``exp`` flushes terms below ``e^-100``
  to 0: at most ``L e^-100 < 2^-50 SKIP_MASS`` in all, far inside that slack.
"""

import numpy as np

from numdiff._kernels.jit import jit
from numdiff._kernels.vexp import exp_shifted_sum

# The certified bound: the skipped weights sum to at most this fraction of the kept.
SKIP_MASS = 2.0**-60
# Relative slack for the rounding of the bound's own sum (module docstring).
SUM_SLACK = 2.0**-20
_EPS = np.finfo(np.float64).eps
BOX_SLACK = 4.0 * _EPS
UNDERFLOW_SLACK = 2.0**-1000
_RAISE = 1.0 - 4.0 * _EPS


def skip_budget(skip_mass):
    """The threshold the computed bound sums are compared with."""
    return skip_mass * (1.0 - SUM_SLACK)


def selection_levels(skip_mass, weight):
    """``(keep_above, far_below, deep_below, budget)`` for :func:`select_leaves`.

    A leaf at or above ``keep_above = log(budget)`` alone reaches the budget. The
    leaves below ``far_below = keep_above - log(sum n_leaf)`` hold at most ``N``
    points of weight ``< budget / N`` each: all of them are skipped. Below
    ``deep_below = far_below - 40`` each point weighs ``< e^-40 budget / N``: whole
    subtrees there are skipped unvisited, their sum bounded by their count times
    ``exp(deep_below)``.
    """
    budget = skip_budget(skip_mass)
    keep_above = float(np.log(budget))
    far_below = keep_above - float(np.log(np.sum(weight)))
    return np.array([keep_above, far_below, far_below - 40.0, budget])


@jit
def box_shrink(dim):
    """``1 - rho``, ``rho = (2 d + 16) eps``: the relative margin on a sum of ``d``
    squares (box bounds are multiplied by it)."""
    return 1.0 - (2.0 * dim + 16.0) * _EPS


@jit
def box_bound(sx, a_s, lo, hi, row):
    """``b`` with ``b * box_shrink(d) <=`` the squared distance from ``sx (d,)`` to
    every point of the scaled box ``a_s [lo[row], hi[row]]``, exact or as rounded
    by the kernels. (Row indices, not row views: a view costs reference counting.)"""
    total = 0.0
    for j in range(sx.shape[0]):
        gap = max(max(a_s * lo[row, j] - sx[j], sx[j] - a_s * hi[row, j]) - BOX_SLACK, 0.0)
        total += gap * gap
    return total


@jit
def residual_upper(u):
    """An upper bound of the exact ``|u|^2`` from the compensated ``u (d,)``."""
    total = 0.0
    for j in range(u.shape[0]):
        total += u[j] * u[j]
    return total * (2.0 - box_shrink(u.shape[0])) + UNDERFLOW_SLACK


@jit
def logit_bound(u2_up, k_s, b, shrink):
    """An upper bound of every logit in a box relative to the reference (``u2_up >=
    |u|^2``, ``b`` from :func:`box_bound`, ``shrink`` its :func:`box_shrink`);
    ``+inf`` where the box may hold a point at least as close as the reference."""
    diff = u2_up - b * shrink
    if diff >= 0.0:
        return np.inf
    # Raised by 4 eps |e| (1 - 2^-50 is exact; the product rounds by eps / 2); a
    # product, not e - 4 eps e, which is NaN at e = -inf.
    return diff * k_s * _RAISE


@jit
def walk(sx, a_s, k_s, u2_up, tree, levels, max_points, reached, b_reached, kept, stack):
    """Walk down the tree: skip every subtree whose logit bound is below
    ``deep_below``, keep every subtree whose logits all exceed ``keep_above`` by a
    nat (they would be kept leaf by leaf), and list the other leaves.

    Returns ``(n_reached, n_kept, kept_points, deep_points, deep_top, complete)``:
    the listed leaves in ``reached[:n_reached]`` with their box bounds in
    ``b_reached``; the kept leaves in ``kept[:n_kept]`` and their points; the
    points of the skipped subtrees and the largest of their bounds; and False if
    the walk stopped early because more than ``max_points`` points are certainly
    kept (``kept_points`` is then that lower count).
    """
    keep_above, deep_below = levels[0], levels[2]
    node_lo, node_hi, node_weight = tree.node_lo, tree.node_hi, tree.node_weight
    leaf_lo, leaf_hi, leaf_weight = tree.leaf_lo, tree.leaf_hi, tree.leaf_weight
    node_leaves, child = tree.node_leaves, tree.child
    shrink = box_shrink(sx.shape[0])
    n_reached = 0
    n_kept = 0
    kept_points = 0.0
    certain = 0.0  # points kept for certain: kept subtrees, listed leaves above keep_above
    deep_points = 0.0
    deep_top = -np.inf
    stack[0] = 0 if child.shape[0] > 0 else -1
    depth = 1
    while depth > 0:
        depth -= 1
        code = stack[depth]
        if code >= 0:
            b = box_bound(sx, a_s, node_lo, node_hi, code)
            count = node_weight[code]
        else:
            b = box_bound(sx, a_s, leaf_lo, leaf_hi, -1 - code)
            count = leaf_weight[-1 - code]
        e = logit_bound(u2_up, k_s, b, shrink)
        if e < deep_below:
            deep_points += count
            deep_top = max(deep_top, e)
        elif code < 0:
            reached[n_reached] = -1 - code
            b_reached[n_reached] = b
            n_reached += 1
            if e >= keep_above:
                certain += count
        else:
            # The farthest corner of the node's scaled box (rounded: hence the margin
            # of one nat below).
            far = 0.0
            for j in range(sx.shape[0]):
                gap = max(abs(sx[j] - a_s * node_lo[code, j]), abs(sx[j] - a_s * node_hi[code, j]))
                far += gap * gap
            if k_s * (u2_up - far) >= keep_above + 1.0:
                for leaf in range(node_leaves[code, 0], node_leaves[code, 1]):
                    kept[n_kept] = leaf
                    n_kept += 1
                kept_points += count
                certain += count
            else:
                # Right pushed first: leaves come out in increasing order.
                stack[depth] = child[code, 1]
                stack[depth + 1] = child[code, 0]
                depth += 2
        if certain > max_points:
            return n_reached, n_kept, certain, deep_points, deep_top, False
    return n_reached, n_kept, kept_points, deep_points, deep_top, True


@jit
def select_leaves(e_up, reached, n_reached, weight, log_weight, levels, deep_points, deep_top,
                  kept, n_kept, kept_points, marginal, band):
    """Keep leaves in decreasing bound until the skipped ``sum n_leaf exp(e_up)`` is
    ``<= budget``.

    Parameters
    ----------
    e_up : ndarray, shape (>= n_reached,)
        Logit bounds of the listed leaves (:func:`walk`, :func:`logit_bound`).
    reached : ndarray of int64, shape (>= n_reached,)
        The listed leaves, in increasing order.
    n_reached : int
    weight, log_weight : ndarray, shape (L,)
        ``n_leaf`` and ``log n_leaf`` of every leaf.
    levels : ndarray, shape (4,)
        :func:`selection_levels`.
    deep_points, deep_top : float
        Points in skipped subtrees (each of weight ``< exp(deep_below)``) and the
        largest of their bounds.
    kept : ndarray of int64, shape (L,)
        The leaves kept so far, ``kept[:n_kept]``, in increasing order; on return
        ``kept[:n_kept]`` holds them and the kept listed leaves, in increasing order.
    n_kept : int
    kept_points : float
        Points in ``kept[:n_kept]``.
    marginal, band : ndarray, shape (>= n_reached,)
        Scratch (int64, float).

    Returns
    -------
    n_kept : int
    kept_points : float
    skipped_top : float
        The largest bound of a skipped leaf or subtree.
    """
    keep_above, far_below, deep_below, budget = levels[0], levels[1], levels[2], levels[3]
    skipped_top = deep_top
    # Counters passed to jitted functions start as int64, not as the literal 0: Numba
    # would compile those functions once more for the literal's type.
    n_marginal = np.int64(0)
    n_band = np.int64(0)
    for i in range(n_reached):
        e = e_up[i]
        leaf = reached[i]
        if e >= keep_above:
            continue
        if e >= far_below:
            marginal[n_marginal] = i
            n_marginal += 1
        else:
            skipped_top = max(skipped_top, e)
            if e >= deep_below:
                band[n_band] = e + log_weight[leaf]
                n_band += 1
            else:
                deep_points += weight[leaf]
    skipped = deep_points * np.exp(deep_below) + exp_shifted_sum(band, n_band, 0.0)
    # The marginal leaves, smallest bound first, are skipped while the sum allows;
    # the rest are kept, flagged in ``band`` (free once summed).
    sort_by_key(marginal, n_marginal, e_up)
    n_skip = 0
    while n_skip < n_marginal:
        i = marginal[n_skip]
        term = weight[reached[i]] * np.exp(e_up[i])
        if skipped + term > budget:
            break
        skipped += term
        skipped_top = max(skipped_top, e_up[i])
        n_skip += 1
    for i in range(n_reached):
        band[i] = 1.0 if e_up[i] >= keep_above else 0.0
    for j in range(n_skip, n_marginal):
        band[marginal[j]] = 1.0
    # The kept listed leaves in increasing order (``reached`` is), then merged from
    # the back with the walk's kept leaves (increasing too): the merge reads the
    # kept points in increasing order without sorting them.
    n_listed = 0
    for i in range(n_reached):
        if band[i] > 0.0:
            marginal[n_listed] = reached[i]
            n_listed += 1
            kept_points += weight[reached[i]]
    i = n_kept - 1
    n_kept += n_listed
    for k in range(n_kept - 1, -1, -1):
        if n_listed == 0:
            break
        if i >= 0 and kept[i] > marginal[n_listed - 1]:
            kept[k] = kept[i]
            i -= 1
        else:
            n_listed -= 1
            kept[k] = marginal[n_listed]
    return n_kept, kept_points, skipped_top


@jit
def sort_by_key(items, n, key):
    """Sort ``items[:n]`` (int64) in place by increasing ``key[item]``, ties by the
    smaller item: a heap sort (no allocation, ``O(n log n)`` at worst, and one small
    function to compile where Numba's ``argsort`` compiles a quicksort's five)."""
    heap = n
    root = n // 2
    while True:
        if root > 0:
            root -= 1
        else:
            heap -= 1
            if heap <= 0:
                return
            items[0], items[heap] = items[heap], items[0]
        # Sift items[root] down within items[:heap] (a max-heap by (key, item)).
        node = root
        item = items[node]
        while True:
            child = 2 * node + 1
            if child >= heap:
                break
            if child + 1 < heap:
                a, b = items[child], items[child + 1]
                if key[a] < key[b] or (key[a] == key[b] and a < b):
                    child += 1
            c = items[child]
            if not (key[item] < key[c] or (key[item] == key[c] and item < c)):
                break
            items[node] = c
            node = child
        items[node] = item
