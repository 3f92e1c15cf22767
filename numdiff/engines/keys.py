"""A finite key set, prepared once for every engine that averages over it."""

from __future__ import annotations

import numpy as np

from numdiff._kernels.sweep import SWEEP_MAX_DIM, SWEEP_MIN_POINTS, nearest_references, sweep_order
from numdiff.engines import limits
from numdiff.neighbors import NeighborIndex


def query_scales(x, alpha, sigma2, absmax):
    """Per query: the power of two ``scale`` of the kernels, ``coef = alpha /
    (2 sigma2 scale)`` clamped to the float range, and ``(mant, expo)`` with
    ``1 / (2 sigma2 scale^2) = mant * 2^expo`` (formed without overflow).

    Parameters
    ----------
    x : ndarray, shape (M, d)
    alpha, sigma2 : ndarray, shape (M,)
    absmax : float
        ``max |y_kj|`` over the keys.

    Returns
    -------
    scale, coef, mant : ndarray, shape (M,)
    expo : ndarray of int, shape (M,)
    """
    top = np.maximum(np.abs(x).max(axis=1, initial=0.0), alpha * absmax)
    # scale = 2^-e with 2^(e-1) <= top < 2^e; kept within [2^-1000, 2^500] so that
    # the split in the compensated product cannot overflow.
    expo_top = np.clip(np.frexp(np.where(top > 0, top, 1.0))[1], -500, 1000)
    scale = np.ldexp(1.0, -expo_top)
    mant, expo_s2 = np.frexp(sigma2)
    with np.errstate(over="ignore"):
        coef = np.minimum(np.ldexp(alpha / (2.0 * mant), expo_top - expo_s2), limits.BIGGEST)
    return scale, coef, 1.0 / (2.0 * mant), 2 * expo_top - expo_s2


def distinct_keys(keys):
    """The distinct rows of ``keys`` and how often each occurs.

    Parameters
    ----------
    keys : ndarray, shape (K, d)
        C-contiguous float64.

    Returns
    -------
    unique : ndarray, shape (N, d)
        Distinct rows, C-contiguous, sorted by their bytes. Rows are compared bit
        for bit: ``-0.0`` and ``0.0`` stay apart, which costs a key, not accuracy.
    counts : ndarray of int64, shape (N,)

    Notes
    -----
    Image patches repeat (on MNIST, 44 % of the 5 x 5 patches are all zero): a
    softmax over the distinct patches, each weighted by its count, is the same sum
    over fewer keys (docs/local_scores.md, "Repeated patches").
    """
    rows = np.ascontiguousarray(keys).view(np.dtype((np.void, keys.shape[1] * 8))).ravel()
    _, first, counts = np.unique(rows, return_index=True, return_counts=True)
    return np.ascontiguousarray(keys[first]), counts


class KeySet:
    """Keys ``y_1..y_N`` in ``R^d`` and the copies of them the kernels read.

    Built once per model; engines and the pruned index share it. The softmax
    ``w_k ∝ exp(-|q - a y_k|^2 / (2 s2))`` is invariant to a common shift of the
    keys, so the BLAS path works on the centred copy, where the rounding of the
    cross term ``q . y_k`` is smaller.

    Parameters
    ----------
    data : ndarray, shape (N, d)
        C-contiguous float64, finite, already validated by the model.
    counts : ndarray of int, shape (N,), optional
        Multiplicities: key ``k`` stands for ``counts[k]`` equal keys, and its weight
        is ``counts[k] exp(logit_k)`` (keys from :func:`distinct_keys`). Only the
        first moments and the weights take them (:class:`Dispatcher
        <numdiff.engines.dispatch.Dispatcher>`).

    Attributes
    ----------
    data : ndarray, shape (N, d)
    log_counts : ndarray, shape (N,), or None
        ``log counts``; None when every key counts once.
    log_count_max : float
        ``max log_counts`` (0 without counts): a key's weight exceeds its softmax
        factor by at most ``e^log_count_max``, so the BLAS path widens its
        refinement window by this much.
    data_t : ndarray, shape (d, N)
        The transpose, contiguous (the direct kernels stream coordinates).
    absmax : float
        ``max |y_kj|``, for the kernels' per-query power-of-two scale.
    centre : ndarray, shape (d,)
    centred : ndarray, shape (N, d)
        ``y_k - centre``.
    sq_norms : ndarray, shape (N,)
        ``|y_k - centre|^2``.
    radius : float
        Scale of the rounding of ``q . (y_k - centre)``: ``max |y_k - centre|``
        plus ``|centre|`` (the centring's own error).
    """

    def __init__(self, data, counts=None):
        self.data = data
        self.n_data, self.dim = data.shape
        self.log_counts = None
        self.log_count_max = 0.0
        if counts is not None:
            counts = np.asarray(counts)
            if counts.shape != (self.n_data,) or counts.min(initial=1) < 1:
                raise ValueError(f"counts must be {self.n_data} integers >= 1; got shape "
                                 f"{counts.shape}")
            self.log_counts = np.log(counts.astype(np.float64))
            self.log_count_max = float(self.log_counts.max(initial=0.0))
        self.data_t = np.ascontiguousarray(data.T)
        self.absmax = float(np.abs(data).max())
        self.centre = data.mean(axis=0)
        self.centred = data - self.centre
        with np.errstate(over="ignore"):
            self.sq_norms = np.einsum("ij,ij->i", self.centred, self.centred)
            self.radius = float(np.sqrt(self.sq_norms.max()) + np.linalg.norm(self.centre))
        self._sweep = None  # the direct kernels' sorted copy, built on first use
        self._ext_t = None
        # The pruned engine's index and bounding box (numdiff/pruned), built on first use.
        self.pruned_index = None
        self.pruned_box = None
        self._neighbors = None

    @property
    def neighbors(self):
        """The exact nearest-neighbour search over the keys (:class:`NeighborIndex`
        on the arrays above, with its float32 keys built on the first search of
        many queries), built on first use and kept."""
        if self._neighbors is None:
            self._neighbors = NeighborIndex.from_arrays(
                self.data, data_t=self.data_t, centred=self.centred, sq_norms=self.sq_norms,
                float32=True)
        return self._neighbors

    def scales(self, x, alpha, sigma2):
        """:func:`query_scales` of ``x`` for these keys."""
        return query_scales(x, alpha, sigma2, self.absmax)

    def references(self, x, alpha, scale):
        """Each query's nearest key ``(M,)`` of int64, as the direct kernels take it:
        by a sweep over the keys sorted by one coordinate in low dimension, else a scan."""
        if self._sweep is None:
            if self.dim <= SWEEP_MAX_DIM and self.n_data >= SWEEP_MIN_POINTS:
                self._sweep = sweep_order(self.data)
            else:
                self._sweep = (np.empty(0, dtype=np.int64), np.empty((self.dim, 0)))
        refs = np.empty(x.shape[0], dtype=np.int64)
        nearest_references(x, alpha, scale, self.data_t, *self._sweep,
                           min(limits.DIRECT_BLOCK, self.n_data), refs)
        return refs

    def rounding_bounds(self, xc, alpha, sigma2):
        """Per query, ``eps`` times the scale of the BLAS logits' rounding (nats):
        ``eps alpha (|q - alpha c| R + alpha R^2) / sigma2``; ``xc = q - alpha c``."""
        with np.errstate(over="ignore", invalid="ignore"):
            return (
                limits.EPS * alpha
                * (np.linalg.norm(xc, axis=1) * self.radius + alpha * self.radius**2) / sigma2
            )

    @property
    def ext_t(self):
        """``[y_k - c, |y_k - c|^2, 1]^T`` (d + 2, N): one matrix product gives a tile's
        weighted sums of the centred keys, of their squared norms and of the weights.
        Stored transposed: the product ``ext^T tile^T`` (long inner dimension, d + 2
        output rows) runs 1.3-1.7x faster in OpenBLAS than ``tile ext`` with its
        narrow ``d + 2`` output columns."""
        if self._ext_t is None:
            ext_t = np.empty((self.dim + 2, self.n_data))
            ext_t[: self.dim] = self.data_t - self.centre[:, None]
            ext_t[self.dim] = self.sq_norms
            ext_t[self.dim + 1] = 1.0
            self._ext_t = ext_t
        return self._ext_t
