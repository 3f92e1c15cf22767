"""Memorisation metrics of generated samples against the training set.

A sample is *memorised* when it is much closer to one training point than to
any other: the ratio of its nearest to its second-nearest training distance is
below a threshold, ``1/3`` by convention (Yoon et al. 2023).
"""

from __future__ import annotations

import numbers

import numpy as np

from numdiff._checks import as_points
from numdiff.neighbors import nearest_neighbors

__all__ = ["memorized_fraction", "nearest_ratio"]


def nearest_ratio(x, data):
    """Nearest over second-nearest training distance of each sample.

    Parameters
    ----------
    x : array_like, shape (M, d)
        Samples, finite.
    data : array_like, shape (N, d), or a score model or an index
        Training points, finite, ``N >= 2``; or an object with ``nearest(x, k)``
        and ``n_data``, whose search then serves: a
        :class:`~numdiff.NeighborIndex` prepares the training set once for
        repeated calls (docs/numerics.md#nearest-neighbours); an
        :class:`~numdiff.EmpiricalScore` at low ``d`` goes through its leaf index
        (docs/numerics.md#pruning). The array form prepares the data on every call.

    Returns
    -------
    ndarray, shape (M,)
        In ``[0, 1]``; 0 when a sample coincides with a training point.
    """
    if hasattr(data, "nearest") and hasattr(data, "n_data"):
        if data.n_data < 2:
            raise ValueError(f"data must have at least 2 points; got N = {data.n_data}")
        dist = data.nearest(as_points(x, data.dim, "x"), 2)[1]
    else:
        data = as_points(data, None, "data")
        if data.shape[0] < 2:
            raise ValueError(f"data must have at least 2 points; got shape {data.shape}")
        dist = nearest_neighbors(data, as_points(x, data.shape[1], "x"), 2)[1]
    first, second = dist[:, 0], dist[:, 1]
    # second == 0 forces first == 0: an exact copy of a duplicated training point.
    return np.divide(first, second, out=np.zeros_like(first), where=second > 0)


def memorized_fraction(x, data, threshold=1.0 / 3.0):
    """Fraction of samples whose :func:`nearest_ratio` is below ``threshold``.

    Parameters
    ----------
    x : array_like, shape (M, d)
        Samples, finite, ``M >= 1``.
    data : array_like, shape (N, d), or a score model
        Training points, finite, ``N >= 2``, or a model with ``nearest`` (as for
        :func:`nearest_ratio`).
    threshold : float, optional
        In ``(0, 1]``; default ``1/3``.

    Returns
    -------
    float
        In ``[0, 1]``.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a real number; got {threshold!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold!r}")
    ratio = nearest_ratio(x, data)
    if ratio.size == 0:
        raise ValueError("x must hold at least one sample")
    return float(np.mean(ratio < threshold))
