"""Exact nearest training points of many queries, in bounded memory.

The search is numdiff's own (:mod:`numdiff.neighbors`): for ``d > 16`` the
candidates are ranked by a matrix multiply on centred data and the best
``k + 7`` recomputed as exact differences; a query whose ranking the rounding
bound cannot certify, or whose coordinates need rescaling, takes the direct
search. :class:`TrainIndex` keeps what that search needs between query chunks
so that nothing of the size of the training set is built per chunk:

* the training set is centred *in place* (distances do not change) and serves
  as its own centred copy, so the only array of its size is the one the caller
  passed;
* the transpose that the direct search needs is built only if a query falls
  back to it (for ``d > 16``; in ``d <= 16`` it is small).

Peak memory is then the training set plus ``O(N)`` per chunk (the ranking
tile of ``numdiff.neighbors`` holds about ``2^22`` numbers).
"""

from __future__ import annotations

import sys

import numpy as np

from numdiff.neighbors import DIRECT_MAX_DIM, SAFE_MAGNITUDE, _knn_blas, knn

__all__ = ["TrainIndex"]

#: Queries per progress step.
CHUNK = 1024


class TrainIndex:
    """Exact ``k``-nearest-neighbour search among centred training points.

    Parameters
    ----------
    train : ndarray, shape (N, d)
        C-contiguous float64 training points, already centred (the caller
        subtracts the training mean from every set). Not copied: it must not be
        modified while the index is used.
    """

    def __init__(self, train):
        if train.dtype != np.float64 or not train.flags.c_contiguous or train.ndim != 2:
            raise ValueError("train must be a C-contiguous float64 array of shape (N, d)")
        self.data = train
        self.sq_norms = np.einsum("ij,ij->i", train, train)
        self.top = float(np.sqrt(self.sq_norms.max(initial=0.0)))
        self._data_t = None

    @property
    def data_t(self):
        """The transposed training set, built on first use."""
        if self._data_t is None:
            self._data_t = np.ascontiguousarray(self.data.T)
        return self._data_t

    def _chunk(self, x, k):
        dim = self.data.shape[1]
        if dim <= DIRECT_MAX_DIM:
            return knn(self.data, x, k, data_t=self.data_t)
        idx = np.empty((x.shape[0], k), dtype=np.int64)
        dist = np.empty((x.shape[0], k))
        query_top = np.abs(x).max(axis=1, initial=0.0)
        # Rows that numdiff rescales by a power of two: leave them to its full search.
        plain = query_top <= SAFE_MAGNITUDE
        if 0.0 < max(self.top, query_top.max(initial=0.0)) < 1.0 / SAFE_MAGNITUDE:
            plain[:] = False
        if plain.any():
            i, d, exact = _knn_blas(self.data, self.data, x[plain], k, self.sq_norms)
            idx[plain], dist[plain] = i, d
            plain[np.flatnonzero(plain)[~exact]] = False
        rows = np.flatnonzero(~plain)
        if rows.size:
            idx[rows], dist[rows] = knn(self.data, x[rows], k, data_t=self.data_t,
                                        centred=self.data, sq_norms=self.sq_norms)
        return idx, dist

    def query(self, x, k=2, *, chunk=CHUNK, progress=None, desc="nearest"):
        """The ``k`` nearest training points of each query.

        Parameters
        ----------
        x : ndarray, shape (M, d)
            Queries, float64, shifted by the same mean as the training set.
        k : int
            Number of neighbours, ``1 <= k <= N``.
        chunk : int
            Queries per step (and per progress-bar tick).
        progress : bool or None
            Show a tqdm bar; ``None``: only when stderr is a terminal.
        desc : str
            Label of the progress bar.

        Returns
        -------
        idx : ndarray of int64, shape (M, k)
            Indices into the training set, by increasing distance.
        dist : ndarray, shape (M, k)
            Exact Euclidean distances, increasing.
        """
        from tqdm.auto import tqdm

        idx = np.empty((x.shape[0], k), dtype=np.int64)
        dist = np.empty((x.shape[0], k))
        if progress is None:
            progress = sys.stderr.isatty()
        starts = range(0, x.shape[0], chunk)
        for lo in tqdm(starts, desc=desc, unit="chunk", disable=not progress, leave=False):
            hi = min(lo + chunk, x.shape[0])
            idx[lo:hi], dist[lo:hi] = self._chunk(x[lo:hi], k)
        return idx, dist

    def leave_one_out(self, rows, *, chunk=CHUNK, progress=None, second=False):
        """Distance of training points to their nearest *other* training point.

        Parameters
        ----------
        rows : ndarray of int, shape (n,)
            Indices of the training points to query.
        chunk, progress : see :meth:`query`.
        second : bool
            Also return the distance to the second-nearest other training point
            (``nan`` when the training set has fewer than 3 points).

        Returns
        -------
        nearest : ndarray, shape (n,)
            The nearest distance to the rest of the training set (0 for a
            duplicated point).
        second_nearest : ndarray, shape (n,)
            Only with ``second=True``.
        """
        n_train = self.data.shape[0]
        k = min(3 if second else 2, n_train)
        idx, dist = self.query(self.data[rows], k, chunk=chunk, progress=progress,
                               desc="leave-one-out")
        # The point itself is among its k nearest (at distance 0) unless it has
        # k - 1 duplicates before it; drop its own column, else the last one.
        own = idx == rows[:, None]
        drop = np.where(own.any(axis=1), own.argmax(axis=1), k - 1)
        keep = np.ones_like(own)
        keep[np.arange(rows.size), drop] = False
        others = dist[keep].reshape(rows.size, k - 1)
        if not second:
            return others[:, 0]
        second_nearest = others[:, 1] if k == 3 else np.full(rows.size, np.nan)
        return others[:, 0], second_nearest
