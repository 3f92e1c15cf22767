"""What the engines return: plain named tuples of arrays, the same from every engine."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Moments(NamedTuple):
    """First moments of the softmax average, per query.

    Parameters
    ----------
    mean : ndarray, shape (M, d)
        ``sum_k w_k v_k`` (the denoiser, for the empirical score).
    logsum : ndarray, shape (M,)
        ``log sum_k exp(-|q - a k_k|^2 / (2 s2))``, absolute (not relative to a
        reference).
    resid : ndarray, shape (M, d)
        ``a mean - q``, compensated about the query's nearest key
        (docs/numerics.md#accuracy): ``s2 * score``.
    """

    mean: np.ndarray
    logsum: np.ndarray
    resid: np.ndarray

    @classmethod
    def empty(cls, queries):
        """Uninitialised outputs for ``queries (M, d)``."""
        return cls(np.empty_like(queries), np.empty(queries.shape[0]), np.empty_like(queries))


class Centred(NamedTuple):
    """Centred second moments of the values under the weights, per query.

    Parameters
    ----------
    trace : ndarray, shape (M,)
        ``tr Cov_w[v]``.
    vec : ndarray, shape (M, d), or None
        ``Cov_w[v] t`` for the tangents ``t`` asked for, else None.
    """

    trace: np.ndarray
    vec: np.ndarray | None


class TopWeights(NamedTuple):
    """The largest posterior weights of each query (:meth:`EmpiricalScore.top_weights`).

    Parameters
    ----------
    index : ndarray of int64, shape (M, k)
        Data indices, by decreasing weight.
    weight : ndarray, shape (M, k)
        The weights ``w_k(t, x)`` (normalised over all ``N`` points).
    """

    index: np.ndarray
    weight: np.ndarray
