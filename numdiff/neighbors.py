"""Exact nearest neighbours of queries among data points (Euclidean).

One implementation serves :meth:`numdiff.EmpiricalScore.nearest`, the
memorisation metrics and the reference point of the score kernels.

:class:`NeighborIndex` prepares the data once (for ``d > 16`` a centred copy and
its squared norms, for ``d <= 16`` the transpose); :func:`nearest_neighbors` is
the one-shot form. For ``d > 16`` the data are ranked by the expansion
``|y|^2 - 2 x.y`` from matrix-multiply tiles, the best ``k + 7`` of each query
kept as the tiles stream by (:mod:`numdiff._kernels.knn`), recomputed as exact
differences of the raw coordinates, and certified by the ranking's rounding
bound; a query the bound cannot certify takes the direct search.
docs/numerics.md#nearest-neighbours gives the bound, the memory and the speed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

from numdiff._checks import as_count, as_points
from numdiff._kernels.knn import CHUNK, merge_tile, refine, scan_columns, scan_rows

__all__ = ["NeighborIndex", "nearest_neighbors"]

# Dimension up to which direct differences beat the BLAS expansion (the same
# crossover as the score kernels, benchmarks/bench_score.py).
DIRECT_MAX_DIM = 16
# Data points per block of the direct search (per-thread buffer in L2).
DIRECT_BLOCK = 512
# Queries per thread task of the direct search and of the exact recomputation.
QUERY_BLOCK = 64
# BLAS candidates beyond k recomputed exactly; a query whose ranking's rounding
# bound cannot exclude the next one takes the direct search instead.
EXTRA_CANDIDATES = 7
# Squared distances of coordinates beyond this (or below its inverse) leave the
# float64 range; such queries are rescaled by an exact power of two.
SAFE_MAGNITUDE = 1e150
# Entries of one ranking tile (queries x data points), per thread: merged while it
# is in the core's L2 cache (benchmarks/bench_neighbors.py).
RANK_TILE = 1 << 17
# Queries per ranking tile, at most.
RANK_ROWS = 128
# Data whose mean lies within this fraction of their radius about it are ranked
# uncentred, without a copy: the rounding bound (largest |y|^2) grows by at most
# (1 + 1/4)^2 over that of the centred data.
CENTRING_SKIP = 0.25
# Ranking values beyond this could overflow in the tile: such queries go direct.
_RANK_LIMIT = 1e300


class NeighborIndex:
    """Exact k-nearest-neighbour search among fixed data points (Euclidean).

    The work that does not depend on the queries is done once, here: for ``d > 16``
    a centred copy of the data and its squared row norms (the data's size once
    more), for ``d <= 16`` the transposed data. Distances are exact differences of
    the raw coordinates in float64 (docs/numerics.md#nearest-neighbours).

    Parameters
    ----------
    data : array_like, shape (N, d)
        Data points, finite, ``N >= 1``. Kept by reference when already a
        C-contiguous float64 array: it must not change while the index is used.

    Attributes
    ----------
    data : ndarray, shape (N, d)
    n_data, dim : int

    Examples
    --------
    >>> import numdiff as nd
    >>> index = nd.NeighborIndex([[0.0], [1.0], [3.0]])
    >>> index.nearest([[0.9], [2.5]], k=2)[0]
    array([[1, 0],
           [2, 1]])
    """

    def __init__(self, data):
        data = as_points(data, None, "data")
        if data.shape[0] == 0 or data.shape[1] == 0:
            raise ValueError(f"data must be non-empty; got shape {data.shape}")
        self._set(data)
        self._prepare()

    @classmethod
    def from_arrays(cls, data, *, data_t=None, centred=None, sq_norms=None):
        """An index over arrays the caller already holds, without copying them.

        Parameters
        ----------
        data : ndarray, shape (N, d)
            C-contiguous float64, finite, validated by the caller.
        data_t : ndarray, shape (d, N), optional
            ``data.T``, C-contiguous (used for ``d <= 16``).
        centred : ndarray, shape (N, d), optional
            ``data`` minus a constant row (its mean, or zero for data the caller
            centred itself), C-contiguous (used for ``d > 16``).
        sq_norms : ndarray, shape (N,), optional
            Squared row norms of ``centred``; required with it.

        Returns
        -------
        NeighborIndex
            Missing pieces are built on first use.
        """
        if (centred is None) != (sq_norms is None):
            raise ValueError("centred and sq_norms must be given together")
        index = cls.__new__(cls)
        index._set(data, data_t, centred, sq_norms)
        return index

    def _set(self, data, data_t=None, centred=None, sq_norms=None):
        self.data = data
        self.n_data, self.dim = data.shape
        self._data_t, self._centred, self._sq_norms = data_t, centred, sq_norms
        self._top = None

    def _prepare(self):
        if self.dim <= DIRECT_MAX_DIM:
            if self._data_t is None:
                self._data_t = np.ascontiguousarray(self.data.T)
        elif self._centred is None:
            mean = self.data.mean(axis=0)
            with np.errstate(over="ignore"):
                sq_norms = np.einsum("ij,ij->i", self.data, self.data)
            with np.errstate(over="ignore", invalid="ignore"):  # data beyond 1e154: no ranking
                off_centre = np.linalg.norm(mean)
                radius = np.sqrt(sq_norms.max()) - off_centre
            if not off_centre > CENTRING_SKIP * radius:
                # Nearly centred already: the raw data serve as the centred copy.
                self._centred, self._sq_norms = self.data, sq_norms
            else:
                self._centred = self.data - mean
                with np.errstate(over="ignore"):
                    self._sq_norms = np.einsum("ij,ij->i", self._centred, self._centred)

    @property
    def top(self):
        """``max |data|``, computed on first use (only tiny problems need it)."""
        if self._top is None:
            # In blocks of rows: no temporary of the data's size.
            self._top = max(float(np.abs(self.data[lo : lo + CHUNK]).max())
                            for lo in range(0, self.n_data, CHUNK))
        return self._top

    def nearest(self, x, k=1):
        """The ``k`` data points nearest to each query.

        Parameters
        ----------
        x : array_like, shape (M, d) or (d,)
            Queries, finite.
        k : int, optional
            Number of neighbours, ``1 <= k <= N``; default 1.

        Returns
        -------
        idx : ndarray of int64, shape (M, k)
            Indices into ``data``, by increasing distance, ties by lower index.
        dist : ndarray, shape (M, k)
            The distances, increasing.
        """
        x = as_points(x, self.dim, "x")
        k = as_count(k, "k", 1, self.n_data)
        return self.search(x, k)

    def search(self, x, k):
        """:meth:`nearest` without the input checks, for callers that validated.

        Parameters
        ----------
        x : ndarray, shape (M, d)
            C-contiguous float64, finite.
        k : int
            ``1 <= k <= N``.

        Returns
        -------
        idx : ndarray of int64, shape (M, k)
        dist : ndarray, shape (M, k)
            As for :meth:`nearest`.
        """
        self._prepare()
        scale = self._query_scales(x)
        plain = scale == 1.0
        idx = np.empty((x.shape[0], k), dtype=np.int64)
        dist = np.empty((x.shape[0], k))
        if self.dim <= DIRECT_MAX_DIM:
            plain[:] = False
        elif plain.any():
            rows = np.flatnonzero(plain)
            sub = x[rows] if rows.size < x.shape[0] else x
            idx[rows], dist[rows], exact = _knn_blas(self.data, self._centred, sub, k,
                                                     self._sq_norms)
            plain[rows[~exact]] = False
        rows = np.flatnonzero(~plain)
        if rows.size:
            idx[rows], dist[rows] = self._direct(x[rows], k, scale[rows])
        return idx, dist

    def _query_scales(self, x):
        """Per query, 1 or an exact power of two keeping squared distances in range:
        queries beyond ``SAFE_MAGNITUDE`` are scaled by their own size, and queries
        whose whole problem is tiny are scaled up."""
        query_top = np.abs(x).max(axis=1, initial=0.0)
        scale = np.ones(x.shape[0])
        big = query_top > SAFE_MAGNITUDE
        scale[big] = _inverse_power_of_two(query_top[big])
        # Only a query below 1/SAFE_MAGNITUDE can belong to a tiny problem.
        small = query_top < 1.0 / SAFE_MAGNITUDE
        if small.any():
            top = np.maximum(query_top, self.top)
            tiny = small & (top < 1.0 / SAFE_MAGNITUDE) & (top > 0.0)
            scale[tiny] = _inverse_power_of_two(top[tiny])
        return scale

    def _direct(self, x, k, scale):
        """Direct search at the given per-query scales; rows whose k-th distance
        still overflows are searched again scaled by the largest coordinate of the
        problem."""
        idx = np.empty((x.shape[0], k), dtype=np.int64)
        sq = np.empty((x.shape[0], k))
        self._scan(x, scale, idx, sq)
        again = ~np.isfinite(sq[:, -1])
        if again.any():
            top = np.maximum(np.abs(x[again]).max(axis=1), self.top)
            scale = scale.copy()
            scale[again] = _inverse_power_of_two(top)
            sub_idx, sub_sq = idx[again], sq[again]
            self._scan(x[again], scale[again], sub_idx, sub_sq)
            idx[again], sq[again] = sub_idx, sub_sq
        return idx, np.sqrt(sq) / scale[:, None]

    def _scan(self, x, scale, idx, sq):
        n_query = x.shape[0]
        # Blocks of queries, at least four per thread when there are few queries.
        rows = max(1, min(QUERY_BLOCK, n_query // (4 * _threads())))

        def run(lo):
            q = slice(lo, lo + rows)
            if self.dim <= DIRECT_MAX_DIM:
                buf = np.empty(min(DIRECT_BLOCK, self.n_data))
                scan_columns(x[q], scale[q], self._data_t, buf, idx[q], sq[q])
            else:
                scan_rows(x[q], scale[q], self.data, idx[q], sq[q])

        _in_threads(run, range(0, n_query, rows))


def nearest_neighbors(data, x, k=1):
    """The ``k`` data points nearest to each query.

    The one-shot form of :class:`NeighborIndex`: a caller that searches the same
    data again keeps an index instead.

    Parameters
    ----------
    data : array_like, shape (N, d)
        Data points, finite, ``N >= 1``.
    x : array_like, shape (M, d) or (d,)
        Queries, finite.
    k : int, optional
        Number of neighbours, ``1 <= k <= N``; default 1.

    Returns
    -------
    idx : ndarray of int64, shape (M, k)
        Indices into ``data``, by increasing distance, ties by lower index.
    dist : ndarray, shape (M, k)
        The distances, increasing.

    Examples
    --------
    >>> import numdiff as nd
    >>> nd.nearest_neighbors([[0.0], [1.0], [3.0]], [[0.9]], k=2)[0]
    array([[1, 0]])
    """
    index = NeighborIndex(data)
    x = as_points(x, index.dim, "x")
    return index.search(x, as_count(k, "k", 1, index.n_data))


def knn(data, x, k, data_t=None, centred=None, sq_norms=None):
    """k nearest rows of ``data (N, d)`` to ``x (M, d)``; inputs already validated.

    ``data_t`` (``data.T``, contiguous), ``centred`` (``data`` minus its mean) and
    ``sq_norms`` (``centred``'s squared row norms) may be passed by callers that
    keep them (:meth:`NeighborIndex.from_arrays`).
    """
    index = NeighborIndex.from_arrays(data, data_t=data_t, centred=centred, sq_norms=sq_norms)
    return index.search(x, k)


def _knn_blas(data, centred, x, k, sq_norms):
    """Rank by the expansion ``|y|^2 - 2 x.y`` in tiles, keep the best ``k +
    EXTRA_CANDIDATES`` per query and recompute them exactly. Returns ``(idx, dist,
    exact)``: a row is exact when the best value left out ranks behind the k-th kept
    by more than twice the ranking's rounding bound (and its distances are finite);
    other rows are left for the caller's direct search."""
    n_data, dim = centred.shape
    xc = x - (data[0] - centred[0])  # the same shift as the data's
    n_query = x.shape[0]
    n_keep = min(n_data, k + EXTRA_CANDIDATES)
    # |fl(x.y) - x.y| <= d eps |x| |y| and likewise for |y|^2 (gamma_d, doubled), with
    # the largest |y|: one bound per row, so the check costs no pass over the tile.
    top_sq = sq_norms.max()
    with np.errstate(over="ignore", invalid="ignore"):  # overflow: left to the direct search
        reach = top_sq + 2.0 * np.linalg.norm(xc, axis=1) * np.sqrt(top_sq)
    err = 2.0 * dim * np.finfo(float).eps * reach
    # Rows whose ranking values could overflow are left to the direct search.
    rankable = np.flatnonzero(reach <= _RANK_LIMIT)
    idx = np.zeros((n_query, k), dtype=np.int64)
    sq = np.full((n_query, k), np.inf)
    exact = np.zeros(n_query, dtype=bool)
    if rankable.size == 0:
        return idx, sq, exact
    if rankable.size < n_query:
        x, xc = x[rankable], xc[rankable]
    cand, cand_idx, left_out = _rank(xc, centred, sq_norms, n_keep)
    sub_idx = np.empty((rankable.size, k), dtype=np.int64)
    sub_sq = np.empty((rankable.size, k))

    def run_refine(lo):
        q = slice(lo, lo + QUERY_BLOCK)
        refine(x[q], data, cand_idx[q], sub_idx[q], sub_sq[q])

    _in_threads(run_refine, range(0, rankable.size, QUERY_BLOCK))
    certified = (left_out - cand[:, k - 1] > 2.0 * err[rankable]) & np.isfinite(sub_sq[:, -1])
    idx[rankable], sq[rankable], exact[rankable] = sub_idx, sub_sq, certified
    return idx, np.sqrt(sq), exact


def _rank(xc, centred, sq_norms, n_keep):
    """Per query of ``xc (m, d)``: the ``n_keep`` smallest ranking values ``(m,
    n_keep)`` ascending, their data indices, and the smallest value left out ``(m,)``.

    Work items are (query block, data range) pairs, run by one thread each with
    single-threaded BLAS, each merging its tile while it is in cache; queries are
    split in blocks of ``RANK_ROWS``, and the data in ranges when there are fewer
    blocks than threads. Each range keeps its own candidates, combined at the end.
    """
    m = xc.shape[0]
    n_data = centred.shape[0]
    rows = min(m, RANK_ROWS)
    cols = min(n_data, RANK_TILE // RANK_ROWS)
    row_starts = range(0, m, rows)
    workers = _threads()
    n_ranges = min(-(-workers // len(row_starts)), -(-n_data // cols))
    bounds = np.linspace(0, n_data, n_ranges + 1).astype(np.int64)
    cand = np.full((n_ranges, m, n_keep), np.inf)
    cand_idx = np.zeros((n_ranges, m, n_keep), dtype=np.int64)
    left_out = np.full((n_ranges, m), np.inf)

    def run(item):
        lo, part = item
        hi = min(m, lo + rows)
        buf = np.empty(rows * cols)
        scratch = np.empty(CHUNK)
        for start in range(bounds[part], bounds[part + 1], cols):
            stop = min(bounds[part + 1], start + cols)
            tile = buf[: (hi - lo) * (stop - start)].reshape(hi - lo, stop - start)
            np.matmul(xc[lo:hi], centred[start:stop].T, out=tile)
            merge_tile(tile, sq_norms, start, cand[part, lo:hi], cand_idx[part, lo:hi],
                       left_out[part, lo:hi], scratch)

    _in_threads(run, [(lo, part) for lo in row_starts for part in range(n_ranges)])
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


def _threads():
    return max(1, numba.get_num_threads())


def _in_threads(run, items):
    """``run(item)`` for each item, on up to ``numba.get_num_threads()`` threads
    (the kernels release the GIL) with single-threaded BLAS meanwhile."""
    workers = min(_threads(), len(items))
    if workers <= 1:
        for item in items:
            run(item)
        return
    with _blas_controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, items))


@cache
def _blas_controller():
    """One scan of the loaded BLAS libraries, kept (a scan per call costs 0.5 ms)."""
    return ThreadpoolController()


def _inverse_power_of_two(top):
    """``2^-e`` with ``2^(e-1) <= top < 2^e``."""
    return np.ldexp(1.0, -np.frexp(top)[1])
