"""Row kernel of the BLAS path: logits of one (query block x data block) tile.

The cross term ``x . x_k`` comes from a matrix multiply (done by the caller);
with centred data ``y_k`` the softmax argument is, up to a per-query constant,

    g_k = (alpha / sigma2) (x . y_k - alpha |y_k|^2 / 2)

(``|x|^2`` stays out of the softmax). Its rounding error is about
``eps alpha (|x| R + alpha R^2) / sigma2`` with ``R = max |y_k|``; for queries
where that is too large (tiny ``sigma2``) the caller marks the row ``refine``
and passes the nearest data point ``x_r``: the row's logits are then taken
relative to ``r`` and every entry within ``window`` (per row: a margin plus the
row's rounding bound, so that no entry near the top is missed) of it is recomputed by
direct differences of the raw data (``block_data``, not centred: ``x_k - x_r``
is exact for close points), as in :mod:`numdiff._kernels.direct`. Keys with
multiplicities (``log_counts`` not empty) add ``log c_k`` to every logit after
that; the caller widens ``window`` by the largest log count, so that a key left
with its BLAS logit still weighs below ``e^-REFINE_WINDOW`` of the top.

The kernel is serial on purpose: it runs between two BLAS calls, and a parallel
region there fights BLAS's own (spinning) threads for the cores; measured 5x
slower at d = 64 on two cores.
"""

import numpy as np

from numdiff._kernels.jit import jit
from numdiff._kernels.minmax import fast_max
from numdiff._kernels.vexp import exp_shifted_sum


@jit
def tile_weights(
    tile, alpha, sigma2, sq_norms, refine, ref_logit, ref_point, u, block_data, window,
    log_counts, block_max, block_sum, block_shift,
):
    """Turn ``tile (Mq, Nb)`` of ``x . y_k`` into ``exp(g - block_max)`` in place.

    Fills ``block_max (Mq,)`` and ``block_sum (Mq,)``. For ``refine`` rows the
    logits are relative to ``ref_logit`` (the approximate ``g`` of the nearest
    point ``ref_point (Mq, d)``, with ``u = x - alpha ref_point``), and
    ``block_shift (Mq, d)`` receives ``sum_k exp(g_k - block_max) (x_k - x_r)`` by
    direct differences over the entries that are not flushed to 0: the denoiser's
    offset from ``x_r`` without the ``eps |D|`` of ``D - x_r`` (the score needs it).
    ``log_counts (Nb,)`` are the block's keys' log multiplicities, or empty.
    """
    n_rows, n_cols = tile.shape
    dim = block_data.shape[1]
    for i in range(n_rows):
        a = alpha[i]
        coef = a / sigma2[i]
        row = tile[i]
        top = -np.inf
        for k in range(n_cols):
            row[k] = coef * (row[k] - 0.5 * a * sq_norms[k])
            top = fast_max(top, row[k])
        if refine[i]:
            top = -np.inf
            for k in range(n_cols):
                row[k] -= ref_logit[i]
                if row[k] >= -window[i]:
                    e = 0.0
                    for j in range(dim):
                        dx = block_data[k, j] - ref_point[i, j]
                        e += dx * (2.0 * u[i, j] - a * dx)
                    row[k] = 0.5 * coef * e
                top = max(top, row[k])
        if log_counts.shape[0]:
            top = -np.inf
            for k in range(n_cols):
                row[k] += log_counts[k]
                top = max(top, row[k])
        total = exp_shifted_sum(row, n_cols, top)
        block_max[i] = top
        block_sum[i] = total
        if refine[i]:
            for j in range(dim):
                block_shift[i, j] = 0.0
            for k in range(n_cols):
                if row[k] != 0.0:
                    for j in range(dim):
                        block_shift[i, j] += row[k] * (block_data[k, j] - ref_point[i, j])
