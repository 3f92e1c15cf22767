"""Local scores with a neighbourhood per pixel: the local score (LS, Kamb &
Ganguli) and PCA-locality (Lukoianov et al. 2025); definitions in
docs/local_scores.md.

Output coordinate ``b`` weighs training image ``n`` by
``exp(-sum_a m_b[a] (x_a - alpha y_{n,a})^2 / (2 sigma2))`` with a non-negative
mask ``m_b`` and takes the value ``y_{n,b}``. On the coordinates where ``m_b > 0``,
scaled by ``sqrt(m_b)``, that is the empirical score's softmax with ``N`` keys, so
each coordinate (each pixel, for LS) is one engine call over a small key set.
"""

from __future__ import annotations

import numpy as np

from numdiff.local.base import ImageScoreModel
from numdiff.local.patches import all_patches, centre_coordinates


def masked_means(engine_for, train, queries, alpha, sigma2, support, scale, outputs):
    """The posterior means of ``outputs`` under one mask.

    Parameters
    ----------
    engine_for : callable
        ``keys (K, S) -> engine`` (the model's :meth:`~ImageScoreModel.engine`).
    train : ndarray, shape (N, D)
    queries : ndarray, shape (M, D)
    alpha, sigma2 : float
    support : ndarray of int, shape (S,)
        Coordinates with a positive mask weight.
    scale : ndarray, shape (S,)
        ``sqrt`` of those weights.
    outputs : ndarray of int, shape (C,)
        Coordinates whose means are wanted; each must be in ``support``.

    Returns
    -------
    ndarray, shape (M, C)
    """
    q = np.ascontiguousarray(queries[:, support] * scale)
    n = q.shape[0]
    mean = engine_for(train[:, support] * scale).moments(q, np.full(n, alpha), np.full(n, sigma2)).mean
    where = np.searchsorted(support, outputs)
    return mean[:, where] / scale[where]


class LocalScore(ImageScoreModel):
    """Local score machine (LS): pixel ``p``'s posterior runs over the same-location
    ``k x k`` patch of every training image (zero padding), value ``y_n[p]``.

    Equal to :class:`~numdiff.EmpiricalScore` of the flattened images when every
    pixel's window covers the image, ``k >= 2 max(H, W) - 1``.

    Parameters
    ----------
    data : array_like, shape (N, H, W, C)
        Training images.
    schedule : Schedule
    k : int or callable, optional
        Odd patch size, or ``k(t)``; default 3.
    device : {"cpu", "cuda"}, optional
        Where the softmax averages run (see :class:`~numdiff.local.base.ImageScoreModel`).
    """

    def _denoise_images(self, images, alpha, sigma2, k):
        h, w, c = images.shape[1:]
        train = all_patches(self.images, k, "zero")
        query = all_patches(images, k, "zero")
        dim = train.shape[-1]
        full = np.arange(dim)
        ones = np.ones(dim)
        centre = centre_coordinates(k, c)
        out = np.empty_like(images)
        for i in range(h):
            for j in range(w):
                out[:, i, j] = masked_means(self.engine, train[:, i, j], query[:, i, j], alpha,
                                            sigma2, full, ones, centre)
        return out


class PCALocalityScore(ImageScoreModel):
    """PCA-locality (Lukoianov et al. 2025): coordinate ``b``'s posterior weighs each
    coordinate ``a`` by the mask ``m_b[a] = G[a, b] / G[b, b]`` of the Wiener gain
    ``G = Sigma (Sigma + (sigma2 / alpha^2) I)^-1`` of the training covariance,
    binarised at ``threshold`` of its largest entry.

    Parameters
    ----------
    data : array_like, shape (N, H, W, C)
        Training images, ``N >= 2``.
    schedule : Schedule
    threshold : float, optional
        In ``(0, 1]``; default 0.1. The binary mask keeps ``|m_b[a]| >= threshold
        max |m|``, and coordinate ``b`` itself always (the reference's mask drops it
        only for coordinates whose gain ``G[b, b]`` is below ``1e-6``, nearly constant
        over the data, whose value the posterior then barely moves).
    device : {"cpu", "cuda"}, optional
        Where the softmax averages run (see :class:`~numdiff.local.base.ImageScoreModel`).

    Notes
    -----
    The mask is recomputed per time from one eigendecomposition of ``Sigma``
    (made once).
    """

    def __init__(self, data, schedule, threshold=0.1, device="cpu"):
        super().__init__(data, schedule, k=1, device=device)
        if self.n_data < 2:
            raise ValueError("data must hold at least 2 images for a covariance")
        if not (isinstance(threshold, int | float) and 0.0 < threshold <= 1.0):
            raise ValueError(f"threshold must be a number in (0, 1]; got {threshold!r}")
        self.threshold = float(threshold)
        cov = np.atleast_2d(np.cov(self.data, rowvar=False, ddof=1))
        lam, self._vectors = np.linalg.eigh(cov)
        self._eigenvalues = np.clip(lam, 0.0, None)

    def mask(self, alpha, sigma2):
        """The binary mask, ``mask[b, a]`` for output coordinate ``b``: shape (D, D).

        Parameters
        ----------
        alpha, sigma2 : float

        Returns
        -------
        ndarray of bool, shape (D, D)
        """
        lam = self._eigenvalues
        gain = (self._vectors * (alpha**2 * lam / (sigma2 + alpha**2 * lam))) @ self._vectors.T
        diag = np.diagonal(gain).copy()
        diag[np.abs(diag) < 1e-6] = 1.0  # flat coordinates, as the reference code
        ratio = np.abs(gain / diag[:, None]).T
        keep = ratio >= self.threshold * ratio.max()
        np.fill_diagonal(keep, True)
        return keep

    def _denoise_images(self, images, alpha, sigma2, k):
        queries = images.reshape(images.shape[0], -1)
        keep = self.mask(alpha, sigma2)
        out = np.empty_like(queries)
        for b in range(self.dim):
            support = np.flatnonzero(keep[b])
            out[:, b] = masked_means(self.engine, self.data, queries, alpha, sigma2, support,
                                     np.ones(support.size), np.array([b]))[:, 0]
        return out.reshape(images.shape)
