"""Kernels of the exact k-nearest-neighbour search (:mod:`numdiff.neighbors`).

For ``d > 16`` the search ranks the data by the expansion ``|y|^2 - 2 x.y`` of
centred points, from matrix-multiply tiles, and keeps per query the ``c``
smallest values seen so far (:func:`merge_tile`); the candidates are then
recomputed as exact differences of the raw coordinates (:func:`refine`). The
smallest value *not* kept is tracked as well: the caller compares it with the
``k``-th kept one against the ranking's rounding bound. A query that fails the
check, or needs rescaling, takes the direct search (:func:`scan_rows`).

Every kernel here is serial and releases the GIL: the caller runs blocks of
queries (or of data) in a thread pool beside single-threaded BLAS calls, which
also keeps the first call's compilation short (no parallel lowering). Each query
is reduced in data order, so the results do not depend on the thread count or
the tile shape (ties in the exact distances go to the lower index everywhere).
"""

import numpy as np

from numdiff._kernels.jit import jit
from numdiff._kernels.minmax import fast_min

# Ranking values per vectorised chunk (L1-resident).
CHUNK = 256
# Above every index: the first candidate of a query always enters its list.
_NO_INDEX = np.iinfo(np.int64).max


@jit
def _insert(value, index, best, best_idx):
    """Insert ``value`` into the ascending ``best`` (its last entry is dropped);
    equal values keep the earlier one first."""
    pos = best.shape[0] - 1
    while pos > 0 and best[pos - 1] > value:
        best[pos] = best[pos - 1]
        best_idx[pos] = best_idx[pos - 1]
        pos -= 1
    best[pos] = value
    best_idx[pos] = index


@jit
def merge_tile(tile, sq_norms, start, cand, cand_idx, left_out, buf):
    """Merge one ranking tile into each query's running candidates (one thread; the
    caller runs tiles of different queries in parallel, each beside its own matrix
    multiply, so that the tile is merged while it is in cache).

    ``tile (m, nb)`` holds ``x_c . y_j`` for the data points ``start .. start + nb``;
    their ranking values are ``sq_norms[j] - 2 tile[:, j]``. ``cand (m, c)`` (ascending)
    and ``cand_idx (m, c)`` keep the ``c`` smallest so far; ``left_out (m,)`` the
    smallest value not kept; ``buf (CHUNK,)`` scratch."""
    m, nb = tile.shape
    n_keep = cand.shape[1]
    for r in range(m):
        best, best_idx = cand[r], cand_idx[r]
        worst = best[n_keep - 1]
        lowest_dropped = left_out[r]
        for c0 in range(0, nb, CHUNK):
            cn = min(CHUNK, nb - c0)
            least = np.inf
            for i in range(cn):
                value = sq_norms[start + c0 + i] - 2.0 * tile[r, c0 + i]
                buf[i] = value
                least = fast_min(least, value)
            if least >= worst:  # the common case once the candidates settle
                lowest_dropped = fast_min(lowest_dropped, least)
                continue
            for i in range(cn):
                value = buf[i]
                if value < worst:
                    lowest_dropped = fast_min(lowest_dropped, worst)
                    _insert(value, start + c0 + i, best, best_idx)
                    worst = best[n_keep - 1]
                else:
                    lowest_dropped = fast_min(lowest_dropped, value)
        left_out[r] = lowest_dropped


@jit
def refine(x, data, cand_idx, idx_out, sq_out):
    """Exact squared distances ``|x_m - y_j|^2`` of each query's candidates
    ``cand_idx (m, c)``, as differences of the raw coordinates; the ``k =
    idx_out.shape[1]`` smallest go to ``idx_out`` and ``sq_out``, ties by lower
    index."""
    m, n_cand = cand_idx.shape
    k = idx_out.shape[1]
    dim = x.shape[1]
    for r in range(m):
        best = sq_out[r]
        best_idx = idx_out[r]
        best[:] = np.inf
        best_idx[:] = _NO_INDEX
        for c in range(n_cand):
            j = cand_idx[r, c]
            total = 0.0
            for i in range(dim):
                diff = x[r, i] - data[j, i]
                total += diff * diff
            # Ordered by (distance, index): candidates arrive by ranking, not index.
            if total < best[k - 1] or (total == best[k - 1] and j < best_idx[k - 1]):
                pos = k - 1
                while pos > 0 and (best[pos - 1] > total
                                   or (best[pos - 1] == total and best_idx[pos - 1] > j)):
                    best[pos] = best[pos - 1]
                    best_idx[pos] = best_idx[pos - 1]
                    pos -= 1
                best[pos] = total
                best_idx[pos] = j


@jit
def scan_rows(x, scale, data, idx_out, sq_out):
    """Direct search over row-major ``data (N, d)`` (for large ``d``): the ``k =
    idx_out.shape[1]`` smallest ``|s x_m - s y_j|^2`` (``s = scale[m]``, a power of
    two keeping squares in range), sorted, ties by lower index."""
    n_query, k = idx_out.shape
    n_data, dim = data.shape
    sx = np.empty(dim)
    for m in range(n_query):
        s = scale[m]
        for i in range(dim):
            sx[i] = x[m, i] * s
        best = sq_out[m]
        best_idx = idx_out[m]
        best[:] = np.inf
        best_idx[:] = 0
        for j in range(n_data):
            total = 0.0
            for i in range(dim):
                diff = sx[i] - s * data[j, i]
                total += diff * diff
            if total < best[k - 1]:
                _insert(total, j, best, best_idx)


@jit
def scan_columns(x, scale, data_t, buf, idx_out, sq_out):
    """Direct search over transposed ``data_t (d, N)`` (for small ``d``), in blocks
    of ``buf``'s length: vectorised over the data points of a block, whose best
    value is checked before any is inserted. Same results as :func:`scan_rows`."""
    n_query, k = idx_out.shape
    dim, n_data = data_t.shape
    block = buf.shape[0]
    for m in range(n_query):
        s = scale[m]
        best = sq_out[m]
        best_idx = idx_out[m]
        best[:] = np.inf
        best_idx[:] = 0
        for start in range(0, n_data, block):
            nb = min(block, n_data - start)
            buf[:nb] = 0.0
            for i in range(dim):
                row = data_t[i, start : start + nb]
                xi = x[m, i] * s
                for j in range(nb):
                    diff = xi - s * row[j]
                    buf[j] += diff * diff
            least = np.inf
            for j in range(nb):
                least = fast_min(least, buf[j])
            if least >= best[k - 1]:
                continue
            for j in range(nb):
                if buf[j] < best[k - 1]:
                    _insert(buf[j], start + j, best, best_idx)
