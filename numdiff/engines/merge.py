"""The one merge of partial softmax sums (docs/numerics.md#online-merge).

A part of the key set (a block, a tile, a data split on a GPU, a shard on a
worker) summarises its weights ``e_k = exp(l_k)`` for one query as

    (max, sum, mean, m2, acc) = (m, sum_k e_k / e^m, sum_k e_k v_k / sum_k e_k,
                                 sum_k e_k |v_k - mean|^2 / e^m,
                                 sum_k e_k (v_k - mean)((v_k - mean) . t) / e^m),

the last two only when centred second moments are asked for. Two summaries
merge by rescaling both to the larger maximum (``e^{-inf} = 0``) and, for the
second moments, by Chan's parallel formula. The merge is associative, so parts
can be reduced anywhere -- across tiles in a loop, across GPU splits, across
Dask workers -- and give the same result up to rounding.

Two entry points, one formula:

* :func:`combine` merges two summaries row by row (a running summary and the
  next tile's);
* :func:`reduce_parts` merges ``S`` summaries at once (GPU data splits, Dask
  shards), with the means carried as unnormalised sums.

Both take the array module ``xp`` (NumPy or CuPy). The kernels' own in-register
merges (:mod:`numdiff._kernels.direct`, :mod:`numdiff._kernels.second_moments`)
are this formula written for one query at a time.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Summary(NamedTuple):
    """Per-query summaries of a part, rows batch first.

    Parameters
    ----------
    max : ndarray, shape (M,)
        ``-inf`` for a part with no weight.
    sum : ndarray, shape (M,)
        ``sum_k e_k / e^max``.
    mean : ndarray, shape (M, d)
        Without ``m2``: the unnormalised ``sum_k e_k v_k / e^max``; with it, the
        weighted mean.
    m2 : ndarray, shape (M,), or None
        ``sum_k e_k |v_k - mean|^2 / e^max``.
    acc : ndarray, shape (M, d), or None
        ``sum_k e_k (v_k - mean)((v_k - mean) . t) / e^max``.
    """

    max: np.ndarray
    sum: np.ndarray
    mean: np.ndarray
    m2: np.ndarray | None = None
    acc: np.ndarray | None = None

    @classmethod
    def zero(cls, n_rows, dim, centred=False, tangents=False):
        """The summary of an empty part (the merge's identity)."""
        m2 = np.zeros(n_rows) if centred else None
        acc = np.zeros((n_rows, dim)) if tangents else None
        return cls(np.full(n_rows, -np.inf), np.zeros(n_rows), np.zeros((n_rows, dim)), m2, acc)


def combine(run, block, tangents=None, xp=np):
    """Merge two summaries row by row.

    Parameters
    ----------
    run, block : Summary
        ``block`` may have rows with ``max = -inf`` (no weight); ``run`` too.
    tangents : ndarray, shape (M, d), optional
        The ``t`` of ``acc`` (needed when the summaries carry ``acc``).
    xp : module, optional
        NumPy or CuPy.

    Returns
    -------
    Summary
    """
    new_max = xp.maximum(run.max, block.max)
    shrink = xp.exp(run.max - new_max)
    if run.m2 is None:
        grow = xp.exp(block.max - new_max)
        return Summary(
            new_max,
            run.sum * shrink + block.sum * grow,
            run.mean * shrink[:, None] + block.mean * grow[:, None],
        )
    # Chan's merge of centred moments; rows of an empty block keep run as it is.
    valid = block.max > -np.inf
    grow = xp.where(valid, xp.exp(block.max - new_max), 0.0)
    sa = run.sum * shrink
    sb = xp.where(valid, block.sum, 0.0) * grow
    total = sa + sb
    cross = sa * (sb / total)
    delta = xp.where(valid[:, None], block.mean - run.mean, 0.0)
    m2 = run.m2 * shrink + block.m2 * grow + xp.einsum("ij,ij->i", delta, delta) * cross
    acc = None
    if run.acc is not None:
        dv = xp.einsum("ij,ij->i", delta, tangents)
        acc = run.acc * shrink[:, None] + block.acc * grow[:, None] + delta * (dv * cross)[:, None]
    return Summary(new_max, total, run.mean + delta * (sb / total)[:, None], m2, acc)


def reduce_parts(part_max, part_sum, part_mean, xp=np):
    """Merge ``S`` summaries per query at once (means as unnormalised sums).

    Parameters
    ----------
    part_max : ndarray, shape (M, S)
    part_sum : ndarray, shape (M, S), or None
        None for parts of one unit weight each (``sum = 1``).
    part_mean : ndarray, shape (M, S, d)
        ``sum_k e_k v_k / e^max`` of each part (or, with ``part_sum`` None, the
        value to average).
    xp : module, optional

    Returns
    -------
    run_max : ndarray, shape (M,)
    run_sum : ndarray, shape (M,)
    mean : ndarray, shape (M, d)
        ``sum_s e^{max_s - run_max} mean_s / run_sum``: the normalised average.
    """
    run_max = part_max.max(axis=1)
    grow = xp.exp(part_max - run_max[:, None])
    run_sum = grow.sum(axis=1) if part_sum is None else (grow * part_sum).sum(axis=1)
    mean = (grow[:, :, None] * part_mean).sum(axis=1) / run_sum[:, None]
    return run_max, run_sum, mean
