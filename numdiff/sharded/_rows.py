"""Rows of a sharded dataset by global index, fetched from the workers on demand."""

from __future__ import annotations

import numpy as np

from numdiff.sharded._worker import take_rows


class ShardedRows:
    """Rows of a :class:`ShardedScore`'s data by global index, fetched on demand.

    Supports ``shape``, ``len`` and indexing by an int, a slice or an integer array
    (what ``nd.sample(..., init="exact")`` needs); only the requested rows travel.

    Parameters
    ----------
    model : ShardedScore
        The model whose shards hold the rows.
    """

    ndim = 2
    dtype = np.dtype(np.float64)

    def __init__(self, model):
        self._model = model
        self.shape = (model.n_data, model.dim)

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return f"ShardedRows(shape={self.shape})"

    def __getitem__(self, key):
        n_data = self.shape[0]
        if isinstance(key, slice):
            key = np.arange(*key.indices(n_data))
        index = np.asarray(key)
        if index.dtype.kind not in "iu":
            raise TypeError(f"rows are indexed by ints, slices or integer arrays; got {key!r}")
        flat = index.astype(np.int64).ravel()
        if ((flat < -n_data) | (flat >= n_data)).any():
            raise IndexError(f"row index out of range for {n_data} rows")
        flat = np.where(flat < 0, flat + n_data, flat)
        model = self._model
        owner = np.searchsorted(model._offsets, flat, side="right") - 1
        wanted = [(s, np.flatnonzero(owner == s)) for s in np.unique(owner)]
        futures = [model.client.submit(take_rows, model._shards[s], flat[pos] - model._offsets[s],
                                       pure=False) for s, pos in wanted]
        out = np.empty((flat.size, self.shape[1]))
        for (_, pos), rows in zip(wanted, model.client.gather(futures)):
            out[pos] = rows
        return out.reshape(index.shape + (self.shape[1],))
