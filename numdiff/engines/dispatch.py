"""The dispatcher: one entry per question a model asks, one engine chosen per call.

Dense engines: :class:`~numdiff.engines.direct.DirectEngine` for ``d <= 16``,
:class:`~numdiff.engines.blas.BlasEngine` beyond. Before either, the pruned
engine (:mod:`numdiff.pruned`) takes the queries whose certified bound keeps few
keys, at small ``s2``; the dense engine runs on the rest, for the direct kernel
bit for bit as without pruning. Models never know which ran.

Keys with multiplicities (:class:`~numdiff.engines.keys.KeySet` ``counts``) take
the first moments, the weights and the nearest keys, on the dense engines only
(the pruned bounds count every key once); the second moments refuse them.
"""

from __future__ import annotations

import numpy as np

from numdiff import pruned
from numdiff.engines import limits
from numdiff.engines.blas import BlasEngine
from numdiff.engines.direct import DirectEngine
from numdiff.engines.results import Centred, Moments, TopWeights


class Dispatcher:
    """Chooses and runs an engine over one :class:`~numdiff.engines.keys.KeySet`.

    Parameters
    ----------
    keys : KeySet
    pruning : callable
        Returns the model's current pruning mode (``"auto"``, ``"off"`` or
        ``"always"``): users set it on the model after construction.
    """

    def __init__(self, keys, pruning):
        self.keys = keys
        self._pruning = pruning
        self.direct = DirectEngine(keys)
        self.blas = BlasEngine(keys, self.direct, moments_fallback=self._direct_moments)

    @property
    def low_dim(self):
        """Whether the direct engine is the dense one (``d <= DIRECT_MAX_DIM``)."""
        return self.keys.dim <= limits.DIRECT_MAX_DIM

    def moments(self, x, alpha, sigma2):
        """:class:`Moments` ``(mean, logsum, resid)`` of ``x (M, d)`` at ``alpha,
        sigma2 (M,)``."""
        out = Moments.empty(x)
        if x.shape[0]:
            run = self._direct_moments if self.low_dim else self._blas_moments
            run(x, alpha, sigma2, *out)
        return out

    def _pruning_mode(self):
        return "off" if self.keys.log_counts is not None else self._pruning()

    def _require_unit_counts(self, what):
        if self.keys.log_counts is not None:
            raise ValueError(f"{what} is not available on keys with multiplicities; build the "
                             "KeySet without counts")

    def centred(self, x, alpha, sigma2, v=None):
        """:class:`Centred` ``(trace, vec)``: ``tr Cov_w`` and, with tangents ``v (M,
        d)``, ``Cov_w v``."""
        self._require_unit_counts("centred")
        out = Centred(np.empty(x.shape[0]), None if v is None else np.empty_like(x))
        if x.shape[0]:
            engine = self.direct if self.low_dim else self.blas
            engine.centred_into(x, alpha, sigma2, v, *out)
        return out

    def covariances(self, x, alpha, sigma2):
        """``Cov_w (M, d, d)``, exactly symmetric, centred about the nearest key."""
        self._require_unit_counts("covariances")
        if x.shape[0] == 0:
            return np.empty((0, self.keys.dim, self.keys.dim))
        engine = self.direct if self.low_dim else self.blas
        cov = engine.covariances(x, alpha, sigma2)
        # Symmetric to the last bit (the kernel fills both triangles alike; BLAS may not).
        return 0.5 * (cov + np.swapaxes(cov, 1, 2))

    def weights(self, x, alpha, sigma2):
        """Dense normalised weights ``(M, N)``, from logits relative to each query's
        nearest key, normalised by their own sum."""
        logits = self.direct.log_weights(x, alpha, sigma2)
        if self.keys.log_counts is not None:
            logits += self.keys.log_counts
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        return w / w.sum(axis=1, keepdims=True)

    def top_weights(self, x, alpha, sigma2, k):
        """:class:`TopWeights` of the ``k`` largest weights per query."""
        found = pruned.top_weights(self.keys, self._pruning_mode(), self._top_weights_dense,
                                   x, alpha, sigma2, k)
        if found is not None:
            return TopWeights(*found)
        return self._top_weights_dense(x, alpha, sigma2, k)

    def nearest(self, x, k):
        """The ``k`` nearest keys ``(idx (M, k), dist (M, k))``, exact."""
        found = pruned.nearest(self.keys, self._pruning_mode(), self._nearest_dense, x, k)
        return self._nearest_dense(x, k) if found is None else found

    # -- the pruned engine first, then the dense one -------------------------------
    def _direct_moments(self, x, alpha, sigma2, mean, logsum, resid):
        if not pruned.moments(self.keys, self._pruning_mode(), self.direct.moments_into, x, alpha,
                              sigma2, mean, logsum, resid):
            self.direct.moments_into(x, alpha, sigma2, mean, logsum, resid)

    def _blas_moments(self, x, alpha, sigma2, mean, logsum, resid):
        if not pruned.moments(self.keys, self._pruning_mode(), self.blas.moments_into, x, alpha,
                              sigma2, mean, logsum, resid):
            self.blas.moments_into(x, alpha, sigma2, mean, logsum, resid)

    def _top_weights_dense(self, x, alpha, sigma2, k):
        rows = max(1, limits.DENSE_BLOCK_ENTRIES // self.keys.n_data)
        idx_out, w_out = [], []
        for lo in range(0, x.shape[0], rows):
            sl = slice(lo, lo + rows)
            w = self.weights(x[sl], alpha[sl], sigma2[sl])
            idx = np.argsort(-w, axis=1, kind="stable")[:, :k]
            idx_out.append(idx)
            w_out.append(np.take_along_axis(w, idx, axis=1))
        return TopWeights(np.concatenate(idx_out).astype(np.int64), np.concatenate(w_out))

    def _nearest_dense(self, x, k):
        return self.keys.neighbors.search(x, k)
