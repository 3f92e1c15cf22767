"""What runs on the workers: loading a shard once, and the per-call statistics.

Everything here is a plain function of plain arguments, so that Dask can re-run it
anywhere: a shard lost with its worker is rebuilt from its source, and a call's
task is rescheduled (docs/sharded.md#faults).
"""

from __future__ import annotations

import sys

import numpy as np

from numdiff._checks import as_points
from numdiff.engines import limits
from numdiff.engines.dispatch import Dispatcher
from numdiff.engines.keys import KeySet
from numdiff.engines.limits import check_magnitude
from numdiff.sharded._kernel import reference_moments


class Shard:
    """One shard of the data on a worker, with its key set and engines.

    The :class:`~numdiff.engines.keys.KeySet` (data, transposed and centred copies)
    is built once when the shard is loaded and then lives on the worker: calls send
    queries, never data. The shard runs the in-process engines (pruning ``"auto"``).

    Parameters
    ----------
    data : ndarray, shape (n, d)
        The shard's points, already validated.
    schedule : Schedule
        The forward process.
    """

    def __init__(self, data, schedule):
        self.schedule = schedule
        self.keys = KeySet(data)
        self.engines = Dispatcher(self.keys, lambda: "auto")

    def __sizeof__(self):
        # Dask places a call's task by the bytes it would move: the true size keeps
        # each task on the worker that holds its shard.
        k = self.keys
        arrays = (k.data, k.data_t, k.centred, k.sq_norms)
        return sys.getsizeof(object()) + sum(a.nbytes for a in arrays)

    def __reduce__(self):
        # A copy (spilling, or a move between workers) carries the data only; the
        # derived arrays are rebuilt where it lands.
        return Shard, (self.keys.data, self.schedule)


def load_shard(source, schedule, name):
    """Build a :class:`Shard` from an array, or from a callable that returns one.

    Parameters
    ----------
    source : array_like, shape (n, d), or callable
        The points, or a zero-argument function returning them.
    schedule : Schedule
        The forward process.
    name : str
        How errors name this shard (``"data[3]"``).

    Returns
    -------
    Shard
    """
    if callable(source):
        source = source()
    return Shard(as_shard(source, name), schedule)


def as_shard(source, name):
    """``source`` as a valid shard: a non-empty C-contiguous float64 ``(n, d)`` array of
    finite coordinates of magnitude ``<= 1e300``, or a TypeError / ValueError naming
    ``name``."""
    data = check_magnitude(as_points(source, None, name), name)
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty; got shape {data.shape}")
    return data


def describe(shard):
    """``(n, d, max |x_k|)`` of a shard: what the client needs to index and scale
    queries without holding any data."""
    k = shard.keys
    return k.n_data, k.dim, k.absmax


def moments_from_reference(shard, x, alpha, sigma2):
    """Per query, the shard's moments relative to its own nearest point.

    Parameters
    ----------
    shard : Shard
    x : ndarray, shape (M, d)
    alpha, sigma2 : float or ndarray, shape (M,)
        One value for all queries, or one each.

    Returns
    -------
    rel : ndarray, shape (M,)
        ``log sum_k exp(e_k)``, logits relative to the reference point.
    points : ndarray, shape (M, d)
        The reference point of each query.
    shift : ndarray, shape (M, d)
        ``sum_k w_k (x_k - x_r)``, the weights normalised within the shard.
    """
    s = shard.keys
    alpha, sigma2 = np.full(x.shape[0], alpha), np.full(x.shape[0], sigma2)
    scale, coef, _, _ = s.scales(x, alpha, sigma2)
    ref = np.empty(x.shape[0], dtype=np.int64)
    rel = np.empty(x.shape[0])
    shift = np.empty_like(x)
    block = min(limits.DIRECT_BLOCK, s.n_data)
    reference_moments(x, alpha, scale, coef, s.data, s.data_t, block, ref, rel, shift)
    return rel, s.data[ref], shift


def moments_absolute(shard, x, alpha, sigma2):
    """The shard's ``(denoised (M, d), logsum (M,), resid (M, d))`` as the in-process
    engines compute them (BLAS path for ``d > 16``); ``alpha`` and ``sigma2`` as in
    :func:`moments_from_reference`."""
    n_query = x.shape[0]
    return tuple(shard.engines.moments(x, np.full(n_query, alpha), np.full(n_query, sigma2)))


def nearest_in_shard(shard, x, k):
    """The ``min(k, n)`` nearest points of the shard: local ``idx (M, k')`` and
    ``dist (M, k')``, sorted."""
    return shard.keys.neighbors.search(x, min(k, shard.keys.n_data))


def take_rows(shard, idx):
    """Rows ``idx`` (local, int64) of the shard's data, shape ``(len(idx), d)``."""
    return shard.keys.data[idx]
