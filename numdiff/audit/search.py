"""Exact nearest training points of many queries, in bounded memory.

The search is numdiff's own (:class:`numdiff.NeighborIndex`): for ``d > 16`` the
candidates are ranked by a matrix multiply on centred data (in float32 first,
then float64 for the queries the float32 rounding bound cannot certify) and the
best ``k + 7`` recomputed as exact differences; a query whose ranking neither
bound certifies, or whose coordinates need rescaling, takes the direct search.
:class:`TrainIndex` holds one index over the training set for all the audit's
searches (the samples, the held-out points, the leave-one-out pass), so that
nothing of the size of the training set is built per chunk or per search:

* the training set is centred *in place* by the caller (distances do not
  change) and serves as its own centred copy;
* the float32 keys of the first ranking tier (half the training set's size)
  are built on the first chunk and kept;
* the transpose that the direct search needs in ``d <= 16`` is built once.

Peak memory is then the training set, half of it again in float32, and ``O(N)``
per chunk (the ranking tiles of ``numdiff._kernels.ranking``).
"""

from __future__ import annotations

import sys

import numpy as np

from numdiff.neighbors import NeighborIndex

__all__ = ["TrainIndex"]

#: Queries per progress step.
CHUNK = 1024


class TrainIndex:
    """Exact ``k``-nearest-neighbour search among training points.

    Parameters
    ----------
    train : ndarray, shape (N, d)
        C-contiguous float64 training points. Not copied: it must not be
        modified while the index is used.
    centred : bool, optional
        True (default): the caller has centred ``train`` (it subtracts the
        training mean from every set), which then serves as its own centred
        copy. False: the index chooses the centring itself (a subset of the
        training set, e.g. one k-means cell).
    """

    def __init__(self, train, *, centred=True):
        if train.dtype != np.float64 or not train.flags.c_contiguous or train.ndim != 2:
            raise ValueError("train must be a C-contiguous float64 array of shape (N, d)")
        self.data = train
        arrays = {}
        if centred:
            arrays = {"centred": train, "sq_norms": np.einsum("ij,ij->i", train, train)}
        self.index = NeighborIndex.from_arrays(train, float32=True, **arrays)

    def _chunk(self, x, k):
        return self.index.search(np.ascontiguousarray(x, dtype=np.float64), k)

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
