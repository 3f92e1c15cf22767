"""The reference point of a query: the data point the direct kernels measure from.

Every direct kernel (``direct.py``, ``second_moments.py``, the sweep, the pruned and
sharded paths) takes as reference the data point nearest to ``x / alpha`` by rounded
scaled distances (:func:`nearest_scaled`; the sweep of ``sweep.py`` uses the same
expression, :func:`scaled_sq_distances`, so both pick the same point), and falls
back to the point of largest logit (:func:`largest_logit`) when rounding made the
nearest one not the largest. :func:`relative_logits` is the logit of ``direct.py``'s
docstring before its factor ``coef``.
"""

import numpy as np

from numdiff._kernels.jit import jit
from numdiff._kernels.minmax import fast_min


@jit
def nearest_scaled(xm, a, data_t, buf):
    """Index of the data point nearest to ``xm / a`` by a scan of ``data_t (d, N)`` in
    blocks of ``buf``'s length: the smallest rounded ``|xm - a x_k|^2``, ties to the
    lowest index."""
    n_data = data_t.shape[1]
    block = buf.shape[0]
    best = np.inf
    best_k = 0
    for start in range(0, n_data, block):
        nb = min(block, n_data - start)
        # A min reduction vectorises; locating it afterwards is a short scan.
        block_best = scaled_sq_distances(xm, a, data_t, start, nb, buf)
        if block_best < best:
            best = block_best
            for k in range(nb):
                if buf[k] == block_best:
                    best_k = start + k
                    break
    return best_k


@jit
def scaled_sq_distances(xm, a, data_t, start, nb, buf):
    """``buf[:nb]`` = the rounded ``|xm - a x_k|^2`` of the points ``start .. start +
    nb`` of ``data_t (d, N)``; returns their minimum. The one expression by which the
    reference points are chosen (the scan above, the sweep of ``sweep.py``)."""
    dim = xm.shape[0]
    least = np.inf
    if dim == 2:  # one pass (see block_logits)
        x0, x1 = xm[0], xm[1]
        row0 = data_t[0, start : start + nb]
        row1 = data_t[1, start : start + nb]
        for k in range(nb):
            diff0 = x0 - a * row0[k]
            diff1 = x1 - a * row1[k]
            sq = diff0 * diff0 + diff1 * diff1
            buf[k] = sq
            least = fast_min(least, sq)
        return least
    buf[:nb] = 0.0
    for j in range(dim):
        row = data_t[j, start : start + nb]
        xj = xm[j]
        for k in range(nb):
            diff = xj - a * row[k]
            buf[k] += diff * diff
    for k in range(nb):
        least = fast_min(least, buf[k])
    return least


@jit
def relative_logits(ref, u, a_s, data, data_t, start, nb, out):
    """``out[:nb] = dx_k . (2u - a_s dx_k)`` for ``k`` in ``start .. start + nb``
    (the logits ``e_k`` before the factor ``coef``)."""
    out[:nb] = 0.0
    for j in range(u.shape[0]):
        two_u = 2.0 * u[j]
        ref_j = data[ref, j]
        row = data_t[j, start : start + nb]
        for k in range(nb):
            dx = row[k] - ref_j
            out[k] += dx * (two_u - a_s * dx)


@jit
def largest_logit(ref, u, a_s, data, data_t, buf):
    """Index of the largest relative logit (first of ties), exact up to its rounding."""
    n_data = data.shape[0]
    block = buf.shape[0]
    best = -np.inf
    best_k = ref
    for start in range(0, n_data, block):
        nb = min(block, n_data - start)
        relative_logits(ref, u, a_s, data, data_t, start, nb, buf)
        for k in range(nb):
            if buf[k] > best:
                best = buf[k]
                best_k = start + k
    return best_k
