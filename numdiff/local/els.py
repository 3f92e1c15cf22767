"""Equivariant local scores: the equivariant local score (ELS) and its
boundary-aware variant (Kamb & Ganguli 2024, ICML 2025; definitions and the
reference code's conventions in docs/local_scores.md).

Both are, per query pixel, the empirical score's softmax over training patches:
keys = ``k x k`` training patches (``d = k^2 C``), values = their centre pixels,
queries = the noisy image's patch at that pixel. The engines
(:mod:`numdiff.engines`) compute it exactly; the value is the centre coordinates
of the weighted mean patch, so no new kernel is needed, and pruning at small
noise applies as it is.
"""

from __future__ import annotations

import numpy as np

from numdiff.local.base import ImageScoreModel
from numdiff.local.patches import all_patches, centre_coordinates, edge_class


def patch_means(engines, queries, alpha, sigma2, centre):
    """Centre coordinates of the weighted mean key per query, shape (Q, C)."""
    n = queries.shape[0]
    moments = engines.moments(queries, np.full(n, alpha), np.full(n, sigma2))
    return moments.mean[:, centre]


class EquivariantLocalScore(ImageScoreModel):
    """Equivariant local score machine (ELS).

    Every pixel's posterior runs over every ``k x k`` patch of every training
    image; the query image is padded circularly, the value is the training patch's
    centre pixel (all channels). Exactly equivariant to circular shifts of the
    query.

    Parameters
    ----------
    data : array_like, shape (N, H, W, C)
        Training images.
    schedule : Schedule
    k : int or callable, optional
        Odd patch size, or ``k(t)``; default 3.
    train_padding : {"valid", "circular"}, optional
        ``"valid"`` (default, Kamb's code): the ``(H - k + 1)(W - k + 1)`` patches
        inside each training image (``k <= min(H, W)``); ``"circular"``: all ``H
        W`` patches of the circularly padded image.
    device : {"cpu", "cuda"}, optional
        Where the softmax averages run (see :class:`~numdiff.local.base.ImageScoreModel`).

    Notes
    -----
    The key set of each ``k`` (``N P`` patches of ``k^2 C`` numbers, and the
    engines' copies of it) is built on first use and kept.
    """

    def __init__(self, data, schedule, k=3, train_padding="valid", device="cpu"):
        if train_padding not in ("valid", "circular"):
            raise ValueError(f"train_padding must be 'valid' or 'circular'; got {train_padding!r}")
        self.train_padding = train_padding
        self._engines = {}
        super().__init__(data, schedule, k, device)

    def _check_k(self, k):
        k = super()._check_k(k)
        if self.train_padding == "valid" and k > min(self.images.shape[1:3]):
            raise ValueError(f"k must be <= min(H, W) = {min(self.images.shape[1:3])} with "
                             f"train_padding='valid'; got {k}")
        return k

    def engines(self, k):
        """The :class:`~numdiff.engines.dispatch.Dispatcher` over the training patches
        of size ``k`` (built on first use)."""
        if k not in self._engines:
            padding = "circular" if self.train_padding == "circular" else "zero"
            patches = all_patches(self.images, k, padding)
            if self.train_padding == "valid":
                r = k // 2
                h, w = self.images.shape[1:3]
                patches = patches[:, r : h - r, r : w - r]
            self._engines[k] = self.engine(patches.reshape(-1, patches.shape[-1]))
        return self._engines[k]

    def _denoise_images(self, images, alpha, sigma2, k):
        queries = np.ascontiguousarray(all_patches(images, k, "circular").reshape(
            -1, k * k * images.shape[3]))
        centre = centre_coordinates(k, images.shape[3])
        return patch_means(self.engines(k), queries, alpha, sigma2, centre).reshape(images.shape)


class BoundaryAwareELS(ImageScoreModel):
    """Boundary-aware equivariant local score machine.

    A pixel within ``r = k // 2`` of an edge matches only training patches at the
    same offset from that edge; interior pixels match every interior patch. Query
    and training patches are zero padded. Corners reduce to the local score (LS),
    the interior to the valid ELS, and ``k >= max(H, W)`` to LS everywhere.

    Parameters
    ----------
    data : array_like, shape (N, H, W, C)
        Training images.
    schedule : Schedule
    k : int or callable, optional
        Odd patch size, or ``k(t)``; default 3.
    device : {"cpu", "cuda"}, optional
        Where the softmax averages run (see :class:`~numdiff.local.base.ImageScoreModel`).

    Notes
    -----
    The pixels fall into at most ``(2 r + 1)^2`` classes (a row class times a column
    class), each with its own key set, built on first use and kept.
    """

    def __init__(self, data, schedule, k=3, device="cpu"):
        self._engines = {}
        super().__init__(data, schedule, k, device)

    def _classes(self, k):
        """``{(row class, column class): (rows, columns)}`` of the pixels."""
        h, w = self.images.shape[1:3]
        r = k // 2
        rows, cols = {}, {}
        for i in range(h):
            rows.setdefault(edge_class(i, h, r), []).append(i)
        for j in range(w):
            cols.setdefault(edge_class(j, w, r), []).append(j)
        return {(a, b): (np.array(ri), np.array(cj))
                for a, ri in rows.items() for b, cj in cols.items()}

    def engines(self, k, row_class, col_class):
        """The dispatcher over the training patches a pixel class may match."""
        key = (k, row_class, col_class)
        if key not in self._engines:
            h, w = self.images.shape[1:3]
            r = k // 2
            centre_rows = [row_class] if row_class >= 0 else list(range(r, h - r))
            centre_cols = [col_class] if col_class >= 0 else list(range(r, w - r))
            patches = all_patches(self.images, k, "zero")[:, centre_rows][:, :, centre_cols]
            self._engines[key] = self.engine(patches.reshape(-1, patches.shape[-1]))
        return self._engines[key]

    def _denoise_images(self, images, alpha, sigma2, k):
        patches = all_patches(images, k, "zero")
        centre = centre_coordinates(k, images.shape[3])
        out = np.empty_like(images)
        for (row_class, col_class), (rows, cols) in self._classes(k).items():
            queries = np.ascontiguousarray(
                patches[:, rows][:, :, cols].reshape(-1, patches.shape[-1]))
            means = patch_means(self.engines(k, row_class, col_class), queries, alpha, sigma2,
                                centre)
            out[:, rows[:, None], cols[None, :]] = means.reshape(
                images.shape[0], rows.size, cols.size, -1)
        return out


__all__ = ["BoundaryAwareELS", "EquivariantLocalScore"]
