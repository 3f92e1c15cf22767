"""The dense direct engine: fused difference loops over blocks of keys (``d <= 16``).

Every query is merged relative to its nearest key, where the differences
``y_k - y_r`` are exact for close keys (docs/numerics.md#online-merge); the
kernels live in :mod:`numdiff._kernels.direct` and
:mod:`numdiff._kernels.second_moments`.
"""

from __future__ import annotations

import numpy as np

from numdiff._kernels.direct import log_weights_direct, mixture_moments_direct
from numdiff._kernels.second_moments import (
    MODE_MATRIX,
    MODE_TRACE,
    MODE_VECTOR,
    centred_moments_direct,
)
from numdiff._kernels.weighted import weighted_moments_direct
from numdiff.engines import limits


class DirectEngine:
    """Direct-difference kernels over a :class:`~numdiff.engines.keys.KeySet`.

    Parameters
    ----------
    keys : KeySet
    """

    name = "direct"

    def __init__(self, keys):
        self.keys = keys

    def _block(self):
        return min(limits.DIRECT_BLOCK, self.keys.n_data)

    def moments_into(self, x, alpha, sigma2, mean, logsum, resid):
        """Fill :class:`~numdiff.engines.results.Moments` ``(mean, logsum, resid)``
        for ``x (M, d)`` at ``alpha, sigma2 (M,)``."""
        keys = self.keys
        scale, coef, mant, expo = keys.scales(x, alpha, sigma2)
        u2 = np.empty(x.shape[0])
        refs = keys.references(x, alpha, scale)
        if keys.log_counts is None:
            mixture_moments_direct(
                x, alpha, scale, coef, keys.data, keys.data_t, refs, self._block(), mean,
                logsum, u2, resid,
            )
        else:
            weighted_moments_direct(
                x, alpha, scale, coef, keys.data, keys.data_t, keys.log_counts, refs,
                self._block(), mean, logsum, u2, resid,
            )
        # |u|^2 / (2 sigma2) = u2 * mant * 2^expo; ldexp saturates to inf, the
        # correctly rounded value when it exceeds the float range.
        with np.errstate(over="ignore"):
            logsum -= np.ldexp(u2 * mant, expo)

    def centred_into(self, x, alpha, sigma2, v, trace, vec):
        """Fill ``trace (M,)`` with ``tr Cov_w`` and, when tangents ``v (M, d)`` are
        given, ``vec (M, d)`` with ``Cov_w v``; centred about the nearest key."""
        keys = self.keys
        scale, coef, _, _ = keys.scales(x, alpha, sigma2)
        mode = MODE_TRACE if v is None else MODE_VECTOR
        tangents = np.zeros((1, keys.dim)) if v is None else v
        out_vec = np.empty((1, keys.dim)) if vec is None else vec
        centred_moments_direct(
            x, alpha, scale, coef, keys.data, keys.data_t, keys.references(x, alpha, scale),
            self._block(), tangents, mode, trace, out_vec, np.empty((1, 1, 1)),
        )

    def covariances(self, x, alpha, sigma2):
        """``Cov_w (M, d, d)`` about the nearest key, both triangles filled alike."""
        keys = self.keys
        n_query, dim = x.shape
        cov = np.empty((n_query, dim, dim))
        scale, coef, _, _ = keys.scales(x, alpha, sigma2)
        centred_moments_direct(
            x, alpha, scale, coef, keys.data, keys.data_t, keys.references(x, alpha, scale),
            self._block(), np.zeros((1, dim)), MODE_MATRIX, np.empty(n_query),
            np.empty((1, dim)), cov,
        )
        return cov

    def log_weights(self, x, alpha, sigma2):
        """Dense logits ``(M, N)`` relative to each query's nearest key (0 there),
        without the keys' log counts."""
        keys = self.keys
        scale, coef, _, _ = keys.scales(x, alpha, sigma2)
        logits = np.empty((x.shape[0], keys.n_data))
        log_weights_direct(x, alpha, scale, coef, keys.data, keys.data_t, self._block(), logits)
        return logits
