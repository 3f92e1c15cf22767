"""The client side of the sharded score: validation, scheduling of the shards'
tasks, and the merge of their statistics."""

from __future__ import annotations

import numpy as np

from numdiff._checks import as_count, as_points
from numdiff.engines.keys import query_scales
from numdiff.engines.limits import DIRECT_MAX_DIM, LOGIT_TOL, REFINE_WINDOW
from numdiff.engines.results import Moments
from numdiff.model import MixtureScoreModel
from numdiff.schedules import Schedule
from numdiff.sharded._merge import merge_absolute, merge_from_reference, merge_nearest
from numdiff.sharded._rows import ShardedRows
from numdiff.sharded._sources import require_distributed, shard_tasks
from numdiff.sharded._worker import (
    describe,
    moments_absolute,
    moments_from_reference,
    nearest_in_shard,
)

# Bytes of queries per task: blocks keep each task's graph far below Dask's
# large-graph warning (10 MB) and its result to a few MiB, and let blocks overlap.
QUERY_BLOCK_BYTES = 1 << 22
_EPS = np.finfo(np.float64).eps


class ShardedScore(MixtureScoreModel):
    """The empirical score of data held in shards on a Dask cluster.

    Each shard is loaded once on a worker, where it keeps its own
    :class:`~numdiff.EmpiricalScore`; a call sends each shard the queries, the
    shard computes its per-query statistics there, and the client merges them by
    the associative log-sum-exp merge (docs/sharded.md#merge). The results equal
    those of ``EmpiricalScore(all the data, schedule)`` to a few ulps where the
    softmax is well conditioned, and are as accurate as them everywhere
    (docs/sharded.md#accuracy). It has the score-model protocol (``schedule``,
    ``dim``, ``n_data``, ``denoise``, ``score``, ``log_density``, ``nearest``, and
    ``data`` for ``nd.sample(..., init="exact")``), so the sampler and code written
    against the protocol take it unchanged.

    Parameters
    ----------
    data : dask.array.Array, shape (N, d), or list
        A dask array (one shard per chunk along ``N``; chunks along ``d`` are
        joined), or a list of shards, each an array ``(n_s, d)``, a zero-argument
        callable returning one, or a ``dask.delayed`` object computing one. Points
        are finite with ``|x_k| <= 1e300``; every shard is non-empty and all have
        the same ``d``. Callables and delayed loaders are the way to large data:
        the scheduler then keeps only the loader, which it re-runs if a worker
        holding the shard is lost.
    schedule : Schedule
        The forward process.
    client : distributed.Client
        The cluster to use, e.g. ``Client("tcp://scheduler:8786")``; its workers
        must be able to import ``numdiff``.

    Attributes
    ----------
    n_data, dim : int
        ``N`` and ``d`` over all shards.
    shard_sizes : ndarray of int64, shape (S,)
        Points per shard; global indices run through the shards in order.
    data : ShardedRows
        Rows by global index, fetched from the workers (``data[idx]``).

    Raises
    ------
    TypeError, ValueError
        Naming ``client``, ``schedule``, ``data`` or the shard at fault
        (``data[i]``, ``data (chunk i)``); loaders are run, and their output checked,
        before the constructor returns.
    ImportError
        Without ``dask.distributed`` (``pip install 'numdiff[dask]'``).

    Notes
    -----
    Per call, each shard receives the queries and ``t`` (``M d`` numbers, plus
    ``2 M`` when ``t`` differs between queries) and returns ``M (2 d + 1)``; the
    data never move. For ``d > 16``, rows far from all the data (log-sums beyond
    ``LOGIT_TOL / (2 eps)``, about 2e3 nats) take a second round. Queries travel in
    blocks of ``QUERY_BLOCK_BYTES``, one task per block and shard. A worker keeps
    about three copies of its shard (the data, its transpose and the centred data
    of :class:`~numdiff.EmpiricalScore`) and runs numdiff's kernels with Numba's
    threads: give a worker the cores it owns (``NUMBA_NUM_THREADS``) when several
    share a machine.
    """

    device = "cpu"

    def __init__(self, data, schedule, *, client=None):
        distributed = require_distributed()
        if not isinstance(client, distributed.Client):
            raise TypeError(
                "client must be a dask.distributed.Client (e.g. Client('tcp://host:8786') "
                f"or Client(LocalCluster())); got {type(client).__name__}"
            )
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a numdiff Schedule; got {type(schedule).__name__}")
        self.client = client
        self.schedule = schedule
        self._shards = client.compute(shard_tasks(data, schedule))
        try:
            meta = client.gather(client.map(describe, self._shards, pure=False))
        except BaseException:
            client.cancel(self._shards)
            raise
        sizes, dims, absmax = zip(*meta)
        for i, dim in enumerate(dims):
            if dim != dims[0]:
                client.cancel(self._shards)
                raise ValueError(f"shard {i} of data has d = {dim} columns; shard 0 has {dims[0]}")
        self.shard_sizes = np.array(sizes, dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self.shard_sizes)[:-1]])
        self.n_data, self.dim = int(self.shard_sizes.sum()), int(dims[0])
        self._data_absmax = max(absmax)
        self.data = ShardedRows(self)

    def __repr__(self):
        return (f"ShardedScore(N={self.n_data}, d={self.dim}, shards={self.n_shards}, "
                f"schedule={self.schedule!r})")

    @property
    def n_shards(self):
        """Number of shards ``S``."""
        return len(self.shard_sizes)

    def nearest(self, x, k=1):
        """The ``k`` training points nearest to each query, over all shards.

        Parameters
        ----------
        x : array_like, shape (M, d)
            Queries.
        k : int, optional
            ``1 <= k <= N``; default 1.

        Returns
        -------
        idx : ndarray of int64, shape (M, k)
            Global indices (shard ``s`` holds ``offset_s .. offset_s + n_s - 1``).
        dist : ndarray, shape (M, k)
            Sorted by increasing distance, ties by lower index.
        """
        x = as_points(x, self.dim)
        k = as_count(k, "k", 1, self.n_data)
        idx = np.empty((x.shape[0], k), dtype=np.int64)
        dist = np.empty((x.shape[0], k))
        for rows, parts in self._per_shard(nearest_in_shard, np.arange(x.shape[0]), x, k):
            found = [(i + off, dd) for (i, dd), off in zip(parts, self._offsets)]
            idx[rows], dist[rows] = merge_nearest(*zip(*found), k)
        return idx, dist

    def close(self):
        """Release the shards on the workers; the model is unusable afterwards.

        Returns
        -------
        None
        """
        self.client.cancel(self._shards)
        self._shards = []

    # -- internals ------------------------------------------------------------
    def _moments(self, t, x):
        x, alpha, sigma2 = self._prepare(t, x)
        return self._merged_moments(x, alpha, sigma2), sigma2

    def _merged_moments(self, x, alpha, sigma2):
        """:class:`~numdiff.engines.results.Moments` merged over the shards.

        ``d <= 16``: every row by the relative merge (the shards run the in-process
        direct kernel). ``d > 16``: first by the absolute merge (the shards run the
        in-process BLAS path); rows whose log-sum is too large for it (queries far
        from all the data) again by the relative merge.
        """
        denoised, logsum, resid = np.empty_like(x), np.empty(x.shape[0]), np.empty_like(x)
        relative = np.arange(x.shape[0])
        if self.dim > DIRECT_MAX_DIM:
            for rows, parts in self._per_shard(moments_absolute, relative, x, alpha, sigma2):
                shard_denoised, shard_logsum, shard_resid = (np.stack(p) for p in zip(*parts))
                merged = merge_absolute(shard_logsum, shard_denoised, shard_resid)
                denoised[rows], logsum[rows], resid[rows] = merged
            relative = np.flatnonzero(~self._absolute_is_accurate(logsum))
        scales = query_scales(x, alpha, sigma2, self._data_absmax)
        for rows, parts in self._per_shard(moments_from_reference, relative, x, alpha, sigma2):
            rel, points, shift = (np.stack(p) for p in zip(*parts))
            merged = merge_from_reference(x[rows], alpha[rows], [s[rows] for s in scales],
                                          rel, points, shift)
            denoised[rows], logsum[rows], resid[rows] = merged
        return Moments(denoised, logsum, resid)

    def _absolute_is_accurate(self, logsum):
        """Rows where the absolute merge's weights are good to ``LOGIT_TOL`` nats.

        A shard's ``logsum_s`` is rounded to ``eps |logsum_s|``; a weight
        ``e^{logsum_s - max}`` then errs by the rounding of both. Shards more than
        ``REFINE_WINDOW`` nats below the largest weigh below ``e^-40``, so only
        ``|logsum_s| <= |logsum| + log S + REFINE_WINDOW`` matter (the merged
        ``logsum`` is within ``log S`` of the largest).
        """
        reach = np.abs(logsum) + np.log(self.n_shards) + REFINE_WINDOW
        with np.errstate(invalid="ignore"):
            return 2.0 * _EPS * reach <= LOGIT_TOL

    def _per_shard(self, func, rows, *args):
        """Run ``func(shard, *args)`` for every block of ``rows`` and every shard, with
        each array in ``args`` cut to the block; yield ``(block_rows, [result of each
        shard])`` per block.

        A per-query column that is constant over the block (``alpha`` and ``sigma2``
        when ``t`` is a scalar) travels as one number. All tasks are submitted before
        the first result is awaited, so that blocks and shards run concurrently; the
        results are fetched one block at a time, so that the client holds one
        block's statistics (``S x block x (2 d + 1)`` numbers) at once.
        """
        if not self._shards:
            raise RuntimeError("this ShardedScore is closed")
        per_block = max(1, QUERY_BLOCK_BYTES // (8 * self.dim))
        blocks = [rows[lo : lo + per_block] for lo in range(0, rows.size, per_block)]
        futures = [
            [self.client.submit(func, shard, *_cut(args, block), pure=False)
             for shard in self._shards]
            for block in blocks
        ]
        for i, block in enumerate(blocks):
            parts = self.client.gather(futures[i])
            futures[i] = None  # releases the block's results on the workers
            yield block, parts


def _cut(args, block):
    """``args`` with every array restricted to the rows ``block``; a 1-D array that is
    constant there becomes a float."""
    out = []
    for arg in args:
        if isinstance(arg, np.ndarray):
            arg = arg[block]
            if arg.ndim == 1 and (arg == arg[0]).all():
                arg = float(arg[0])
        out.append(arg)
    return out
