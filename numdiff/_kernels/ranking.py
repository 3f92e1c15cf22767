"""The ranked search of :mod:`numdiff.neighbors` for ``d > 16``.

Candidates are ranked by the expansion ``|y|^2 - 2 x.y`` of centred points, from
matrix-multiply tiles (:func:`rank`), the best ``k + EXTRA_CANDIDATES`` of each
query recomputed as exact float64 differences of the raw coordinates, and a query
is *certified* when the best value left out ranks behind the ``k``-th kept by more
than twice the ranking's rounding bound (:func:`certified_search`). Two tiers:

1. float32 keys and queries (single-precision GEMM, about twice the float64 rate)
   with the bound of their rounding and of the float32 products;
2. float64, for the rows the first tier could not certify, with the bound it has
   always had, ``2 d eps reach``; rows it cannot certify either take the direct
   search (the caller's).

docs/numerics.md#nearest-neighbours gives the bounds.
"""

from __future__ import annotations

import numpy as np

from numdiff._kernels.knn import CHUNK, merge_tile, refine
from numdiff._kernels.threads import in_threads, threads

# Candidates beyond k recomputed exactly.
EXTRA_CANDIDATES = 7
# Entries of one ranking tile (queries x data points), per thread: merged while it
# is in the core's L2 cache. 512 x 512 against the 128 x 1024 it was: fewer,
# larger matrix multiplies (each packs its data block once per 512 queries, not
# 128); the index's search took 0.64-0.79x the time at d = 3072 (N = 5e4, M =
# 1000) and 0.57-0.76x at d = 64 (N = 1e5, M = 5000), two interleaved runs each on
# the loaded 2-core host, 1 MiB L2 per core.
RANK_TILE = 1 << 18
# Queries per ranking tile, at most.
RANK_ROWS = 512
# Queries per thread task of the exact recomputation.
QUERY_BLOCK = 64
# Ranking values beyond these could overflow in a tile: such rows skip that tier.
RANK_LIMIT = 1e300
RANK_LIMIT_32 = 1e36
_EPS = np.finfo(np.float64).eps
_EPS_32 = float(np.finfo(np.float32).eps)
# Smallest normal float32: the absolute error of rounding to float32, and of a
# float32 product, below it.
_TINY_32 = float(np.finfo(np.float32).tiny)


def certified_search(data, x, k, sq_norms, shift, keys=None, keys_32=None):
    """k nearest of ``x (M, d)`` among ``data (N, d)``, for the rows the ranking
    certifies.

    ``sq_norms (N,)`` are the squared norms of ``data - shift`` (``shift (d,)``);
    ``keys`` is that difference in float64 (or None: it is formed tile by tile),
    ``keys_32`` in float32 (or None: no float32 tier). Returns ``(idx, dist,
    exact)``, the rows with ``exact`` False left for the caller's direct search.
    """
    n_data, dim = data.shape
    n_query = x.shape[0]
    xc = x - shift
    top_sq = sq_norms.max()
    with np.errstate(over="ignore", invalid="ignore"):  # overflow: left to the direct search
        x_norm = np.linalg.norm(xc, axis=1)
        top = np.sqrt(top_sq)
        reach = top_sq + 2.0 * x_norm * top
    idx = np.zeros((n_query, k), dtype=np.int64)
    sq = np.full((n_query, k), np.inf)
    exact = np.zeros(n_query, dtype=bool)
    tiers = []
    if keys_32 is not None:
        # Rounding x and y to float32 moves x.y by <= 2 eps32 |x||y| (plus absolute
        # terms below the smallest normal); the float32 products and sums by
        # gamma_d. Both doubled, as the float64 bound; |y|^2 stays float64.
        err_32 = (2.0 * dim * _EPS * top_sq + 2.0 * (dim + 3) * _EPS_32 * 2.0 * x_norm * top
                  + 8.0 * np.sqrt(dim) * _TINY_32 * (x_norm + top + _TINY_32))
        tiers.append((keys_32, None, np.float32, reach <= RANK_LIMIT_32, err_32))
    # |fl(x.y) - x.y| <= d eps |x| |y| and likewise for |y|^2 (gamma_d, doubled), with
    # the largest |y|: one bound per row, so the check costs no pass over the tile.
    tiers.append((data, shift) if keys is None else (keys, None))
    tiers[-1] += (np.float64, reach <= RANK_LIMIT, 2.0 * dim * _EPS * reach)
    for tier_keys, tile_shift, dtype, rankable, err in tiers:
        rows = np.flatnonzero(rankable & ~exact)
        if rows.size == 0:
            continue
        cand, cand_idx, left_out = rank(xc[rows].astype(dtype), tier_keys, sq_norms,
                                        min(n_data, k + EXTRA_CANDIDATES), tile_shift)
        sub_idx = np.empty((rows.size, k), dtype=np.int64)
        sub_sq = np.empty((rows.size, k))
        sub_x = x[rows]

        def run_refine(lo, sub_x=sub_x, cand_idx=cand_idx, sub_idx=sub_idx, sub_sq=sub_sq):
            q = slice(lo, lo + QUERY_BLOCK)
            refine(sub_x[q], data, cand_idx[q], sub_idx[q], sub_sq[q])

        in_threads(run_refine, range(0, rows.size, QUERY_BLOCK))
        good = (left_out - cand[:, k - 1] > 2.0 * err[rows]) & np.isfinite(sub_sq[:, -1])
        done = rows[good]
        idx[done], sq[done], exact[done] = sub_idx[good], sub_sq[good], True
    return idx, np.sqrt(sq), exact


def rank(xc, keys, sq_norms, n_keep, shift=None):
    """Per query of ``xc (m, d)``: the ``n_keep`` smallest ranking values ``(m,
    n_keep)`` ascending, their data indices, and the smallest value left out ``(m,)``.

    ``keys (N, d)`` of ``xc``'s dtype; with ``shift`` the keys are ``keys - shift``,
    formed tile by tile. Work items are (query block, data range) pairs, run by one
    thread each with single-threaded BLAS, each merging its tile while it is in
    cache; queries are split in blocks of ``RANK_ROWS``, and the data in ranges
    when there are fewer blocks than threads. Each range keeps its own candidates,
    combined at the end.
    """
    m = xc.shape[0]
    n_data, dim = keys.shape
    rows = min(m, RANK_ROWS)
    cols = min(n_data, RANK_TILE // RANK_ROWS)
    row_starts = range(0, m, rows)
    n_ranges = min(-(-threads() // len(row_starts)), -(-n_data // cols))
    bounds = np.linspace(0, n_data, n_ranges + 1).astype(np.int64)
    cand = np.full((n_ranges, m, n_keep), np.inf)
    cand_idx = np.zeros((n_ranges, m, n_keep), dtype=np.int64)
    left_out = np.full((n_ranges, m), np.inf)

    def run(item):
        lo, part = item
        hi = min(m, lo + rows)
        buf = np.empty(rows * cols, dtype=xc.dtype)
        block = None if shift is None else np.empty((cols, dim))
        scratch = np.empty(CHUNK)
        for start in range(bounds[part], bounds[part + 1], cols):
            stop = min(bounds[part + 1], start + cols)
            tile = buf[: (hi - lo) * (stop - start)].reshape(hi - lo, stop - start)
            if shift is None:
                these = keys[start:stop]
            else:
                these = np.subtract(keys[start:stop], shift, out=block[: stop - start])
            np.matmul(xc[lo:hi], these.T, out=tile)
            merge_tile(tile, sq_norms, start, cand[part, lo:hi], cand_idx[part, lo:hi],
                       left_out[part, lo:hi], scratch)

    in_threads(run, [(lo, part) for lo in row_starts for part in range(n_ranges)])
    if n_ranges == 1:
        return cand[0], cand_idx[0], left_out[0]
    # Combine the ranges: the n_keep smallest of all; what is dropped joins left_out.
    values = np.concatenate(list(cand), axis=1)
    order = np.argsort(values, axis=1, kind="stable")
    kept = order[:, :n_keep]
    dropped = np.take_along_axis(values, order[:, n_keep : n_keep + 1], axis=1)[:, 0]
    return (np.take_along_axis(values, kept, axis=1),
            np.take_along_axis(np.concatenate(list(cand_idx), axis=1), kept, axis=1),
            np.minimum(left_out.min(axis=0), dropped))
