"""Reference points of the direct kernels: the nearest data point of each query.

The direct kernels take their logits relative to the nearest (scaled) data point
``x_r`` (:mod:`numdiff._kernels.direct`). A scan of all ``N`` points costs about
a sixth of a derivative kernel's work at ``d = 2``. In low dimension a sweep is
sublinear: with the points sorted by their first coordinate, start where the
query's first coordinate falls and walk outwards in both directions, a chunk at a
time, until the squared gap in that coordinate alone exceeds the best squared
distance so far (about ``sqrt(N)`` points for a query near 2-D data). The chunks
double from ``CHUNK`` to ``CHUNK_MAX`` points as a direction goes on: queries far
from the data (early sampling steps) visit every point, and in large chunks their
sweep costs about what the scan does.

The sweep finds what the scan finds: the same rounded squared distances (one
function computes them for both, ``scaled_sq_distances``), the smallest, ties to
the lowest data index. It stops a direction only when ``fl(gap^2) > best``, the
gap formed by the same expression as the first coordinate's difference there;
every point beyond has ``|gap|`` at least as large (``x0 - a x_k0`` is monotone in
``x_k0``, rounded or fused), and its rounded squared distance, a rounded sum of
``fl(gap^2)`` or ``gap^2`` and non-negative terms, is at least ``fl(gap^2)``, so no
point that could win or tie is skipped.
"""

import numpy as np

from numdiff._kernels.direct import QUERY_GROUP
from numdiff._kernels.jit import jit
from numdiff._kernels.reference import nearest_scaled, scaled_sq_distances
from numdiff._kernels.threads import run_groups

# Where the sweep pays off: the band of candidates is thin in low dimension, and
# the sort and the per-query set-up pay from a few thousand points. Measured per
# query on one core (Gaussian data, queries near it / 30x farther than it): at N =
# 16384 the sweep took 1/9 / 0.8 of the scan's time at d = 2, 1/5 / 1.0 at d = 3,
# 1/1.9 / 0.8 at d = 8; at N = 1024, d = 2, 1/1.6 / 1.4.
SWEEP_MAX_DIM = 3
SWEEP_MIN_POINTS = 4096
# Points in the first step of the sweep in each direction (one vectorised distance
# loop), doubling at each step up to the last.
CHUNK = 64
CHUNK_MAX = 1024


def sweep_order(data):
    """``(order, sorted_t)``: the permutation sorting ``data (N, d)`` by its first
    coordinate (stable: equal keys keep index order) and the sorted points,
    transposed, shape ``(d, N)``."""
    order = np.argsort(data[:, 0], kind="stable")
    return order, np.ascontiguousarray(data[order].T)


def nearest_references(x, alpha, scale, data_t, order, sorted_t, block, refs):
    """Fill ``refs (M,)`` with the index of the data point nearest to each ``x[m] /
    alpha[m]``, by the rounded squared distances of ``scale[m] x[m] - scale[m]
    alpha[m] x_k`` (those of the direct kernels), ties to the lowest index.

    ``order`` and ``sorted_t`` from :func:`sweep_order`, or empty (shapes ``(0,)``
    and ``(d, 0)``) for a scan of ``data_t (d, N)`` in blocks of ``block``.
    """
    # Queries in groups, scratch allocated once per group (as in the direct kernels).
    n_groups = (x.shape[0] + QUERY_GROUP - 1) // QUERY_GROUP
    run_groups(_references_groups, n_groups, x.shape[0] * data_t.shape[1], x, alpha, scale,
               data_t, order, sorted_t, block, refs)


@jit
def _references_groups(lo, hi, x, alpha, scale, data_t, order, sorted_t, block, refs):
    """:func:`nearest_references` for the query groups ``lo .. hi - 1``."""
    n_query, dim = x.shape
    for g in range(lo, hi):
        sx = np.empty(dim)
        buf = np.empty(CHUNK_MAX if order.shape[0] > 0 else block)
        for m in range(g * QUERY_GROUP, min(n_query, (g + 1) * QUERY_GROUP)):
            s = scale[m]
            for j in range(dim):
                sx[j] = x[m, j] * s
            a_s = alpha[m] * s
            if order.shape[0] > 0:
                refs[m] = _sweep(sx, a_s, order, sorted_t, buf)
            else:
                refs[m] = nearest_scaled(sx, a_s, data_t, buf)


@jit
def _sweep(xm, a, order, sorted_t, buf):
    """The nearest point of ``xm / a`` (module docstring); ``buf`` holds ``CHUNK_MAX``."""
    n_data = order.shape[0]
    keys = sorted_t[0]
    x0 = xm[0]
    lo = 0
    hi = n_data
    while lo < hi:  # first position whose scaled key reaches the query's
        mid = (lo + hi) // 2
        if a * keys[mid] < x0:
            lo = mid + 1
        else:
            hi = mid
    best = np.inf
    best_k = n_data
    up = lo
    down = lo  # the next chunk down ends just below this position
    step_up = CHUNK
    step_down = CHUNK
    while up < n_data or down > 0:
        if up < n_data:
            gap = x0 - a * keys[up]
            if gap * gap > best:
                up = n_data
            else:
                stop = min(up + step_up, n_data)
                best, best_k = _chunk(xm, a, order, sorted_t, up, stop, buf, best, best_k)
                up = stop
                step_up = min(2 * step_up, CHUNK_MAX)
        if down > 0:
            gap = x0 - a * keys[down - 1]
            if gap * gap > best:
                down = 0
            else:
                start = max(down - step_down, 0)
                best, best_k = _chunk(xm, a, order, sorted_t, start, down, buf, best, best_k)
                down = start
                step_down = min(2 * step_down, CHUNK_MAX)
    return best_k


@jit
def _chunk(xm, a, order, sorted_t, start, stop, buf, best, best_k):
    """Fold the sorted points ``start .. stop`` into ``(best, best_k)``."""
    nb = stop - start
    chunk_best = scaled_sq_distances(xm, a, sorted_t, start, nb, buf)
    if chunk_best <= best:
        for k in range(nb):
            if buf[k] == chunk_best and (chunk_best < best or order[start + k] < best_k):
                best = chunk_best
                best_k = order[start + k]
    return best, best_k
