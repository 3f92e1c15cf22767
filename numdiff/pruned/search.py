"""Exact nearest points through the index: leaves by increasing box distance.

:func:`best_first` keeps a heap of subtrees keyed by their box bound
(:func:`numdiff.pruned.bounds.box_bound`, which bounds the rounded distances of
their points from below) and scans leaves in that order until the smallest bound
exceeds the current ``k``-th distance: the result is then the exact ``k`` nearest
by the rounded scaled distance ``sum_j (sx_j - a_s x_kj)^2`` (the dense kernels',
term by term), ties by lowest original index. A cap on the points scanned bounds
the effort where boxes prune little (high ``d``, queries far from the data).
"""


from numdiff._kernels.jit import jit
from numdiff.pruned.bounds import box_bound, box_shrink

# Effort of opening an internal node (two box bounds), in points scanned (one
# distance each): about the ratio of their costs. Counted by the k-nearest search
# and by the dispatch's survey (a far query in high d would open most of the
# tree); not by the plans that run the merge (see plan_query).
NODE_EFFORT = 8.0


@jit
def scan_leaf(sx, a_s, points_t, perm, start, stop, buf, best, best_sq):
    """Insert the permuted points ``start:stop`` into the sorted lists ``best``
    (permuted indices, ``-1`` empty) and ``best_sq`` (rounded scaled squared
    distances) by ``(distance, original index)``."""
    dim = sx.shape[0]
    k = best.shape[0]
    for lo in range(start, stop, buf.shape[0]):
        n = min(buf.shape[0], stop - lo)
        buf[:n] = 0.0
        for j in range(dim):
            xj = sx[j]
            row = points_t[j, lo : lo + n]
            for i in range(n):
                diff = xj - a_s * row[i]
                buf[i] += diff * diff
        for i in range(n):
            value = buf[i]
            if value > best_sq[k - 1]:
                continue
            key = perm[lo + i]
            if value == best_sq[k - 1] and best[k - 1] >= 0 and perm[best[k - 1]] < key:
                continue
            pos = k - 1
            while pos > 0 and (
                best_sq[pos - 1] > value
                or (best_sq[pos - 1] == value and (best[pos - 1] < 0 or perm[best[pos - 1]] > key))
            ):
                best_sq[pos] = best_sq[pos - 1]
                best[pos] = best[pos - 1]
                pos -= 1
            best_sq[pos] = value
            best[pos] = lo + i


@jit
def best_first(sx, a_s, tree, skip_leaf, best, best_sq, scan_cap, heap_b, heap_code, buf,
               node_effort):
    """Complete the ``k`` nearest of ``sx (d,)`` (the lists ``best``, ``best_sq`` of
    :func:`scan_leaf`, possibly seeded from the leaf ``skip_leaf``).

    Scans leaves by increasing box bound and stops when the smallest bound left
    exceeds the ``k``-th distance (exact), or, with ``k`` in hand, once the effort
    reaches ``scan_cap`` (not exact): the points scanned plus ``node_effort`` per
    internal node opened (in high ``d`` the boxes of large nodes are about as near
    as the leaves', and a far query would open most of the tree). ``heap_b``,
    ``heap_code``: scratch of length ``>= 2 L``. Returns whether the result is
    exact.
    """
    shrink = box_shrink(sx.shape[0])
    k = best.shape[0]
    child = tree.child
    if child.shape[0] == 0:
        if skip_leaf != 0:
            # leaf_start[0] (= 0), not a literal 0: that would compile another
            # specialisation of scan_leaf.
            scan_leaf(sx, a_s, tree.points_t, tree.perm, tree.leaf_start[0], tree.leaf_start[1],
                      buf, best, best_sq)
        return True
    # A binary min-heap of (bound, code) in heap_b[:n], heap_code[:n], written out
    # here (its push and pop as functions of their own cost a second each to compile
    # on the first call); the root first, at bound 0.
    heap_b[0] = 0.0
    heap_code[0] = 0
    n = 1
    effort = 0.0
    while n > 0:
        b, code = heap_b[0], heap_code[0]
        n -= 1
        last_b, last_code = heap_b[n], heap_code[n]
        hole = 0
        while True:
            small = 2 * hole + 1
            if small >= n:
                break
            if small + 1 < n and heap_b[small + 1] < heap_b[small]:
                small += 1
            if heap_b[small] >= last_b:
                break
            heap_b[hole] = heap_b[small]
            heap_code[hole] = heap_code[small]
            hole = small
        heap_b[hole] = last_b
        heap_code[hole] = last_code
        if b * shrink > best_sq[k - 1]:
            return True
        if effort >= scan_cap and best[k - 1] >= 0:
            return False
        if code >= 0:
            effort += node_effort
            for side in range(2):
                sub = child[code, side]
                if sub >= 0:
                    b_sub = box_bound(sx, a_s, tree.node_lo, tree.node_hi, sub)
                else:
                    b_sub = box_bound(sx, a_s, tree.leaf_lo, tree.leaf_hi, -1 - sub)
                if b_sub * shrink <= best_sq[k - 1]:
                    hole = n
                    while hole > 0:
                        parent = (hole - 1) // 2
                        if heap_b[parent] <= b_sub:
                            break
                        heap_b[hole] = heap_b[parent]
                        heap_code[hole] = heap_code[parent]
                        hole = parent
                    heap_b[hole] = b_sub
                    heap_code[hole] = sub
                    n += 1
        elif -1 - code != skip_leaf:
            leaf = -1 - code
            scan_leaf(sx, a_s, tree.points_t, tree.perm, tree.leaf_start[leaf],
                      tree.leaf_start[leaf + 1], buf, best, best_sq)
            effort += tree.leaf_start[leaf + 1] - tree.leaf_start[leaf]
    return True
