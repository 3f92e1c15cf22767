"""Exact nearest neighbours of queries among data points (Euclidean).

One implementation serves :meth:`numdiff.EmpiricalScore.nearest`, the
memorisation metrics and the reference point of the score kernels.

:class:`NeighborIndex` prepares the data once (for ``d > 16`` the centred keys
in float32 and their squared norms, for ``d <= 16`` the transpose);
:func:`nearest_neighbors` is the one-shot form. The score models and the audit
keep an index over their training set. For ``d > 16`` the data are ranked by the expansion
``|y|^2 - 2 x.y`` from matrix-multiply tiles, the best ``k + 7`` of each query
kept as the tiles stream by (:mod:`numdiff._kernels.knn`), recomputed as exact
differences of the raw coordinates, and certified by the ranking's rounding
bound; a query the bound cannot certify takes the direct search.
docs/numerics.md#nearest-neighbours gives the bound, the memory and the speed.
"""

from __future__ import annotations

import numpy as np

from numdiff._checks import as_count, as_points
from numdiff._kernels.knn import CHUNK, scan_columns, scan_rows
from numdiff._kernels.ranking import certified_search, in_threads, threads

__all__ = ["NeighborIndex", "nearest_neighbors"]

# Dimension up to which direct differences beat the BLAS expansion (the same
# crossover as the score kernels, benchmarks/bench_score.py).
DIRECT_MAX_DIM = 16
# Data points per block of the direct search (per-thread buffer in L2).
DIRECT_BLOCK = 512
# Queries per thread task of the direct search.
QUERY_BLOCK = 64
# Searches rank in float32 (a float32 copy of the data first, unless the index
# holds one) from this many queries on; fewer queries read the float64 data once.
FLOAT32_MIN_QUERIES = 64
# Squared distances of coordinates beyond this (or below its inverse) leave the
# float64 range; such queries are rescaled by an exact power of two.
SAFE_MAGNITUDE = 1e150
# Data whose mean lies within this fraction of their radius about it are ranked
# uncentred, without a copy: the rounding bound (largest |y|^2) grows by at most
# (1 + 1/4)^2 over that of the centred data.
CENTRING_SKIP = 0.25


class NeighborIndex:
    """Exact k-nearest-neighbour search among fixed data points (Euclidean).

    The work that does not depend on the queries is done once, here: for ``d > 16``
    the data centred about their mean (not copied when nearly centred already),
    in float32 for the first ranking tier (half the data's size), and their
    squared row norms; for ``d <= 16`` the transposed data. Distances are exact
    differences of the raw coordinates in float64
    (docs/numerics.md#nearest-neighbours).

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
        self._set(data, float32=True)
        self._prepare(float32=True)

    @classmethod
    def from_arrays(cls, data, *, data_t=None, centred=None, sq_norms=None, float32=False):
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
        float32 : bool, optional
            Whether searches of at least ``FLOAT32_MIN_QUERIES`` queries rank in
            float32 first: the float32 keys (half the data's size) are then built
            on the first such search and kept. Default False.

        Returns
        -------
        NeighborIndex
            Missing pieces are built on first use, and kept.
        """
        if (centred is None) != (sq_norms is None):
            raise ValueError("centred and sq_norms must be given together")
        index = cls.__new__(cls)
        index._set(data, data_t, centred, sq_norms, float32=float32)
        return index

    def _set(self, data, data_t=None, centred=None, sq_norms=None, *, float32):
        self.data = data
        self.n_data, self.dim = data.shape
        self._data_t, self._centred, self._sq_norms = data_t, centred, sq_norms
        # The float32 keys of the first ranking tier; the shift of the keys.
        self._keys_32 = None
        self._shift = None if centred is None else data[0] - centred[0]
        self._float32 = float32
        self._top = None

    def _prepare(self, float32):
        """Build what a search needs and the index does not hold yet; ``float32``:
        the float32 keys too."""
        if self.dim <= DIRECT_MAX_DIM:
            if self._data_t is None:
                self._data_t = np.ascontiguousarray(self.data.T)
            return
        if self._shift is None:
            self._centre(float32)
        if float32 and self._keys_32 is None:
            # From the centred copy where there is one, else centred block by block.
            source = self.data if self._centred is None else self._centred
            shift = None if self._centred is not None else self._shift
            self._keys_32 = np.empty(self.data.shape, np.float32)
            for lo in range(0, self.n_data, CHUNK):
                block = source[lo : lo + CHUNK]
                self._keys_32[lo : lo + CHUNK] = block if shift is None else block - shift

    def _centre(self, float32):
        """Choose the shift of the keys and form their squared norms (and, for data
        far off centre, the centred copy or, with ``float32``, the float32 keys)."""
        mean = self.data.mean(axis=0)
        with np.errstate(over="ignore"):
            sq_norms = np.einsum("ij,ij->i", self.data, self.data)
        with np.errstate(over="ignore", invalid="ignore"):  # data beyond 1e154: no ranking
            off_centre = np.linalg.norm(mean)
            radius = np.sqrt(sq_norms.max()) - off_centre
        if not off_centre > CENTRING_SKIP * radius:
            # Nearly centred already: the raw data serve as the centred keys.
            self._shift, self._centred, self._sq_norms = np.zeros(self.dim), self.data, sq_norms
        elif float32:
            # float32 keys only (half the data's size); the float64 tier centres its
            # tiles as they go.
            self._shift, self._keys_32 = mean, np.empty(self.data.shape, np.float32)
            self._sq_norms = np.empty(self.n_data)
            for lo in range(0, self.n_data, CHUNK):
                block = self.data[lo : lo + CHUNK] - mean
                self._keys_32[lo : lo + CHUNK] = block
                self._sq_norms[lo : lo + CHUNK] = np.einsum("ij,ij->i", block, block)
        else:
            self._shift, self._centred = mean, self.data - mean
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
        # A few queries read the float64 data once instead of converting them.
        float32 = self._float32 and (self._keys_32 is not None
                                     or x.shape[0] >= FLOAT32_MIN_QUERIES)
        self._prepare(float32)
        scale = self._query_scales(x)
        plain = scale == 1.0
        idx = np.empty((x.shape[0], k), dtype=np.int64)
        dist = np.empty((x.shape[0], k))
        if self.dim <= DIRECT_MAX_DIM:
            plain[:] = False
        elif plain.any():
            rows = np.flatnonzero(plain)
            sub = x[rows] if rows.size < x.shape[0] else x
            idx[rows], dist[rows], exact = certified_search(
                self.data, sub, k, self._sq_norms, self._shift, self._centred,
                self._keys_32 if float32 else None)
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
        rows = max(1, min(QUERY_BLOCK, n_query // (4 * threads())))

        def run(lo):
            q = slice(lo, lo + rows)
            if self.dim <= DIRECT_MAX_DIM:
                buf = np.empty(min(DIRECT_BLOCK, self.n_data))
                scan_columns(x[q], scale[q], self._data_t, buf, idx[q], sq[q])
            else:
                scan_rows(x[q], scale[q], self.data, idx[q], sq[q])

        in_threads(run, range(0, n_query, rows))


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
    data = as_points(data, None, "data")
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"data must be non-empty; got shape {data.shape}")
    x = as_points(x, data.shape[1], "x")
    index = NeighborIndex.from_arrays(data, float32=True)
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
    """The float64 ranking alone, on ``centred`` (``data`` less a constant row) and
    its squared norms: ``(idx, dist, exact)``, rows with ``exact`` False left for the
    caller's direct search (:func:`numdiff._kernels.ranking.certified_search`)."""
    return certified_search(data, x, k, sq_norms, data[0] - centred[0], keys=centred)


def _inverse_power_of_two(top):
    """``2^-e`` with ``2^(e-1) <= top < 2^e``."""
    return np.ldexp(1.0, -np.frexp(top)[1])
