"""The leaf index: a kd-tree partition of the data with tight axis-aligned boxes.

The data are split recursively at the median of the widest coordinate of the
node's bounding box until a node holds at most ``leaf_size`` points; the points are
permuted so that every leaf is a contiguous block. Every leaf and every internal
node keeps the tight box ``[lo, hi]`` of its own points (not the cell of the
split, which is larger). Boxes may overlap where points tie at a median; nothing
relies on disjointness.

The internal nodes also keep ``(split_dim, split_value)`` so that a query descends
to the leaf of its own region in ``O(depth)``: its nearest point there is the
first reference of the bounds, and queries are processed in leaf order, so that
consecutive queries reuse the same leaves from cache.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import numpy as np

from numdiff._kernels.jit import jit

# Points per leaf, by dimension (benchmarks/bench_pruned.py --leaf-sweep): smaller
# leaves give tighter boxes and keep fewer points, at more nodes per tree walk.
LEAF_SIZE_LOW_DIM = 256  # d <= 3
LEAF_SIZE_MID_DIM = 128  # d <= 16
LEAF_SIZE_HIGH_DIM = 64  # d > 16

# The index as the kernels take it (a named tuple of arrays; see LeafIndex).
TreeArrays = namedtuple(
    "TreeArrays",
    [
        "points", "points_t", "perm", "leaf_start", "leaf_lo", "leaf_hi", "leaf_weight",
        "log_weight", "node_lo", "node_hi", "node_weight", "node_leaves", "child",
    ],
)


def default_leaf_size(dim):
    """Points per leaf for data of dimension ``dim``.

    Parameters
    ----------
    dim : int

    Returns
    -------
    int
    """
    if dim <= 3:
        return LEAF_SIZE_LOW_DIM
    if dim <= 16:
        return LEAF_SIZE_MID_DIM
    return LEAF_SIZE_HIGH_DIM


@dataclass(frozen=True)
class LeafIndex:
    """Data permuted into contiguous kd-tree leaves, with one box per leaf and node.

    Parameters
    ----------
    perm : ndarray of int64, shape (N,)
        Original index of each permuted point.
    points : ndarray, shape (N, d)
        ``data[perm]``, C-contiguous.
    points_t : ndarray, shape (d, N)
        ``points.T``, C-contiguous (the kernels' layout for per-coordinate loops).
    leaf_start : ndarray of int64, shape (L + 1,)
        Leaf ``l`` holds the permuted points ``leaf_start[l] : leaf_start[l + 1]``.
    leaf_lo, leaf_hi : ndarray, shape (L, d)
        Per-leaf box corners.
    leaf_weight : ndarray, shape (L,)
        Points per leaf as floats: the factor ``n_leaf`` of the skipped-mass bound.
    split_dim : ndarray of int64, shape (L - 1,)
        Coordinate split at each internal node.
    split_value : ndarray, shape (L - 1,)
        Queries with ``x[split_dim] < split_value`` descend to the left child.
    child : ndarray of int64, shape (L - 1, 2)
        Children of each internal node: ``>= 0`` an internal node, ``< 0`` the leaf
        ``-1 - child``. Node 0 is the root (absent when ``L = 1``).
    node_lo, node_hi : ndarray, shape (L - 1, d)
        Per-node box corners.
    node_weight : ndarray, shape (L - 1,)
        Points per node.
    node_leaves : ndarray of int64, shape (L - 1, 2)
        Each node's leaves ``node_leaves[n, 0] : node_leaves[n, 1]`` (a subtree's
        leaves are consecutive).
    """

    perm: np.ndarray
    points: np.ndarray
    points_t: np.ndarray
    leaf_start: np.ndarray
    leaf_lo: np.ndarray
    leaf_hi: np.ndarray
    leaf_weight: np.ndarray
    split_dim: np.ndarray
    split_value: np.ndarray
    child: np.ndarray
    node_lo: np.ndarray
    node_hi: np.ndarray
    node_weight: np.ndarray
    node_leaves: np.ndarray

    @property
    def n_leaves(self):
        return self.leaf_start.size - 1

    def arrays(self, leaf_weight=None):
        """The index as the kernels take it.

        Parameters
        ----------
        leaf_weight : ndarray, shape (L,), optional
            Replaces the leaf counts in the bound (tests inject a wrong one).

        Returns
        -------
        TreeArrays
        """
        weight = self.leaf_weight if leaf_weight is None else leaf_weight
        return TreeArrays(
            self.points, self.points_t, self.perm, self.leaf_start, self.leaf_lo,
            self.leaf_hi, weight, np.log(weight), self.node_lo, self.node_hi,
            self.node_weight, self.node_leaves, self.child,
        )

    def leaf_of(self, y):
        """The leaf whose region (of the splits, not the box) holds each point.

        Parameters
        ----------
        y : ndarray, shape (M, d)
            Points in data coordinates (queries divided by ``alpha``).

        Returns
        -------
        ndarray of int64, shape (M,)
        """
        node = np.zeros(y.shape[0], dtype=np.int64)
        if self.split_dim.size == 0:
            return node
        active = np.ones(y.shape[0], dtype=bool)
        while active.any():
            rows = np.flatnonzero(active)
            at = node[rows]
            right = y[rows, self.split_dim[at]] >= self.split_value[at]
            node[rows] = self.child[at, right.astype(np.int64)]
            active[rows] = node[rows] >= 0
        return -1 - node


def build_index(data, leaf_size=None):
    """Build the :class:`LeafIndex` of a data set.

    ``O(N d log(N / leaf_size))`` time, ``O(N d)`` memory.

    Parameters
    ----------
    data : ndarray, shape (N, d)
        Finite, ``N >= 1``.
    leaf_size : int, optional
        Most points per leaf (a leaf of identical points may hold more);
        default :func:`default_leaf_size`.

    Returns
    -------
    LeafIndex
    """
    data = np.ascontiguousarray(data, dtype=np.float64)
    n_points, dim = data.shape
    leaf_size = default_leaf_size(dim) if leaf_size is None else int(leaf_size)
    if leaf_size < 1:
        raise ValueError(f"leaf_size must be >= 1; got {leaf_size}")
    perm = np.arange(n_points, dtype=np.int64)
    points = data.copy()
    starts = np.empty(n_points + 1, dtype=np.int64)
    most_nodes = max(n_points - 1, 1)
    split_dim = np.empty(most_nodes, dtype=np.int64)
    split_value = np.empty(most_nodes)
    child = np.empty((most_nodes, 2), dtype=np.int64)
    # Written for the nodes only (the untouched rows cost no memory).
    node_lo = np.empty((most_nodes, dim))
    node_hi = np.empty((most_nodes, dim))
    node_range = np.empty((most_nodes, 2), dtype=np.int64)
    n_leaves, n_nodes = _split(points, leaf_size, perm, starts, split_dim, split_value, child,
                               node_lo, node_hi, node_range)
    leaf_start = starts[: n_leaves + 1].copy()
    leaf_start[n_leaves] = n_points
    leaf_lo = np.minimum.reduceat(points, leaf_start[:-1], axis=0)
    leaf_hi = np.maximum.reduceat(points, leaf_start[:-1], axis=0)
    node_range = node_range[:n_nodes]
    # A node's points are a run of whole leaves: its first and last leaf by their starts.
    node_leaves = np.searchsorted(leaf_start, node_range).astype(np.int64)
    return LeafIndex(
        perm=perm,
        points=points,
        points_t=np.ascontiguousarray(points.T),
        leaf_start=leaf_start,
        leaf_lo=leaf_lo,
        leaf_hi=leaf_hi,
        leaf_weight=np.diff(leaf_start).astype(np.float64),
        split_dim=split_dim[:n_nodes].copy(),
        split_value=split_value[:n_nodes].copy(),
        child=child[:n_nodes].copy(),
        node_lo=node_lo[:n_nodes].copy(),
        node_hi=node_hi[:n_nodes].copy(),
        node_weight=np.diff(node_range, axis=1)[:, 0].astype(np.float64),
        node_leaves=node_leaves,
    )


# The kd-tree kernels index and loop element by element: slice assignments of
# arrays and np.arange / np.argmax each make Numba compile their implementations
# (with the formatting of their error messages), about 1.5 s on the first call.


@jit
def _split(points, leaf_size, perm, starts, split_dim, split_value, child, node_lo, node_hi,
           node_range):
    """The kd-tree of :func:`build_index`: permutes the rows of ``points`` and
    ``perm`` alike, in place (so that every pass reads rows in order), and fills
    the leaf starts and the internal nodes: splits, children, tight boxes and
    ranges of permuted points; returns ``(n_leaves, n_nodes)``."""
    dim = points.shape[1]
    # Depth-first, left child first, so that leaves come out in permuted order;
    # each entry is (start, stop, parent node, side). The depth is <= 64.
    stack = np.empty((130, 4), dtype=np.int64)
    stack[0, 0], stack[0, 1], stack[0, 2], stack[0, 3] = 0, points.shape[0], -1, 0
    depth = 1
    n_leaves = 0
    n_nodes = 0
    low = np.empty(dim)
    high = np.empty(dim)
    while depth > 0:
        depth -= 1
        start, stop = stack[depth, 0], stack[depth, 1]
        parent, side = stack[depth, 2], stack[depth, 3]
        for j in range(dim):
            low[j] = np.inf
            high[j] = -np.inf
        for i in range(start, stop):
            for j in range(dim):
                low[j] = min(low[j], points[i, j])
                high[j] = max(high[j], points[i, j])
        # The widest coordinate, the first of equal widths.
        axis = np.int64(0)  # not the literal 0: a second compilation of _select
        for j in range(1, dim):
            if high[j] - low[j] > high[axis] - low[axis]:
                axis = j
        if stop - start <= leaf_size or high[axis] == low[axis]:
            code = -1 - n_leaves
            starts[n_leaves] = start
            n_leaves += 1
        else:
            middle = start + (stop - start) // 2
            split_value[n_nodes] = _select(points, axis, perm, start, stop, middle)
            split_dim[n_nodes] = axis
            code = n_nodes
            for j in range(dim):
                node_lo[code, j] = low[j]
                node_hi[code, j] = high[j]
            node_range[code, 0] = start
            node_range[code, 1] = stop
            n_nodes += 1
            # Right first, so that the left subtree is laid out first.
            stack[depth, 0], stack[depth, 1], stack[depth, 2], stack[depth, 3] = (
                middle, stop, code, 1)
            below = depth + 1
            stack[below, 0], stack[below, 1], stack[below, 2], stack[below, 3] = (
                start, middle, code, 0)
            depth += 2
        if parent >= 0:
            child[parent, side] = code
    return n_leaves, n_nodes


@jit
def _select(points, axis, perm, start, stop, target):
    """Reorder the rows ``start:stop`` of ``points`` (and ``perm``) so that the key
    ``points[i, axis]`` is ``<=`` at ``i < target`` and ``>=`` from ``target`` on;
    returns the key at ``target``. Three-way quickselect on a copy of the keys
    (duplicates cost nothing; median-of-three pivots), then one pass that applies
    the permutation to the rows."""
    n = stop - start
    keys = points[start:stop, axis].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[i] = i
    lo = 0
    hi = n
    want = target - start
    value = np.nan
    while hi - lo > 1:
        a, b, c = keys[lo], keys[(lo + hi) // 2], keys[hi - 1]
        pivot = max(min(a, b), min(max(a, b), c))
        lt = lo
        i = lo
        gt = hi
        while i < gt:
            v = keys[i]
            if v < pivot:
                keys[i], keys[lt] = keys[lt], v
                order[i], order[lt] = order[lt], order[i]
                lt += 1
                i += 1
            elif v > pivot:
                gt -= 1
                keys[i], keys[gt] = keys[gt], v
                order[i], order[gt] = order[gt], order[i]
            else:
                i += 1
        if want < lt:
            hi = lt
        elif want >= gt:
            lo = gt
        else:
            value = pivot
            break
    if hi - lo <= 1:
        value = keys[want]
    rows = points[start:stop].copy()
    ids = perm[start:stop].copy()
    for i in range(n):
        for j in range(points.shape[1]):
            points[start + i, j] = rows[order[i], j]
        perm[start + i] = ids[order[i]]
    return value
