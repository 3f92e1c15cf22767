"""Closed-form local image denoisers, computed densely as a reference.

Kamb & Ganguli (ICML 2025, "An analytic theory of creativity in convolutional
diffusion models", arXiv:2412.20292; code ``Kambm/convolutional_diffusion``,
``utils/idealscore.py``) and Lukoianov et al. (2025, arXiv:2509.09672; code
``ottogin/locality-in-diffusion-models``, ``models/pca_locality.py``) replace the
empirical posterior over whole training images by one posterior *per pixel*, over a
set of training patches (the keys), each carrying the value of one training pixel.
For one time (``alpha = alpha_t``, ``sigma2 = sigma_t^2``), a query image ``x`` of
shape ``(H, W, C)`` and pixel ``p = (i, j)``::

    w_K(p) = softmax_K( -|q_p(x) - alpha K|^2 / (2 sigma2) )   over the keys K of p
    D(x)_p = sum_K w_K(p) v_K                                   (a C-vector)
    s(x)   = (alpha D(x) - x) / sigma2                          (see image_score)

with ``q_p(x)`` the query's ``k x k`` patch centred on ``p`` (all channels). The
models differ only in the key set of each pixel and in how patches are padded;
``docs/local_scores.md`` states every convention and where it comes from. ``k`` is
odd and ``r = k // 2``.

* :func:`local_denoise` (LS, Kamb & Ganguli's local score machine; their
  ``LocalScoreModule``, lines 497-557 at commit 6a87f3f): the keys of ``p`` are
  the ``N`` patches centred on ``p`` itself, one per training image, values
  ``y_n[p]``. Query and training images are zero padded: equivalently the sum runs
  over the window's pixels inside the image.
* :func:`els_denoise` (ELS, their ``LocalEquivScoreModule``, lines 397-473): the
  keys of every pixel are all ``k x k`` training patches that fit inside a
  training image (``train_padding="valid"``, ``(H - k + 1)(W - k + 1)`` per image,
  as their ``F.unfold(images, k, padding=0)``) or all ``H W`` circularly padded
  ones (``"circular"``); the value is the patch's centre pixel; the query is padded
  circularly (their ``F.pad(x, ..., mode='circular')``).
* :func:`boundary_els_denoise` (``LocalEquivBordersScoreModule``, lines 156-372):
  a pixel less than ``r`` from the top (bottom) edge matches only training patches
  centred on the same row; likewise for columns; the interior pixels match every
  patch centred in the interior. Query and training patches are zero padded.
* :func:`pca_locality_denoise` with :func:`pca_locality_mask` (Lukoianov et al.):
  coordinate ``i``'s distance is ``sum_j mask[i, j] (x_j - alpha y_j)^2`` over the
  flattened image; the keys are the ``N`` training images, the value ``y_n[i]``.

Numerics: exponents come from direct differences ``q - alpha K`` (never the
expansion ``|q|^2 - 2 q.K + |K|^2``) and each query's weights are normalised by its
own maximum exponent (log-sum-exp), so no weight underflows to an all-zero row and
nothing is shared across queries. Sums run in a fixed order per query, so the
output for one query does not depend on the other queries in the batch (ELS is
therefore *exactly* translation-equivariant). Memory is ``O(N H W k^2 C)`` for the
patches: this is an oracle for small cases, not a fast implementation.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from theory._validate import float_array, real_scalar

__all__ = [
    "boundary_els_denoise",
    "els_denoise",
    "image_score",
    "local_denoise",
    "pca_locality_denoise",
    "pca_locality_mask",
]

# Upper bound on the float64 entries of one (queries x keys x dim) temporary.
_BLOCK_ENTRIES = 1 << 22


def _images(value, name):
    arr = float_array(value, name)
    if arr.ndim != 4 or min(arr.shape) < 1:
        raise ValueError(f"{name} must have shape (N, H, W, C) with all sizes >= 1; "
                         f"got {arr.shape}")
    return arr


def _check(train, query, alpha, sigma2):
    train = _images(train, "train")
    query = _images(query, "query")
    if query.shape[1:] != train.shape[1:]:
        raise ValueError(f"query images must have the training shape (H, W, C) = "
                         f"{train.shape[1:]}; got {query.shape[1:]}")
    alpha = real_scalar(alpha, "alpha", nonnegative=True)
    sigma2 = real_scalar(sigma2, "sigma2", positive=True)
    return train, query, alpha, sigma2


def _patch_size(k):
    if isinstance(k, bool | np.bool_) or not isinstance(k, numbers.Integral):
        raise TypeError(f"k must be an odd integer; got {k!r}")
    if k < 1 or k % 2 == 0:
        raise ValueError(f"k must be an odd integer >= 1 (a patch has a centre pixel); got {k}")
    return int(k)


def _patches(images, k, mode):
    """Every pixel's ``k x k`` patch, padded by ``mode``: shape (N, H, W, k*k*C).

    ``mode`` is numpy's pad mode: ``"constant"`` (zeros) or ``"wrap"`` (circular).
    The flattening order (channel, row, column) is the same for every caller, so
    query and training patches are always compared coordinate by coordinate.
    """
    r = k // 2
    padded = np.pad(images, ((0, 0), (r, r), (r, r), (0, 0)), mode=mode)
    view = sliding_window_view(padded, (k, k), axis=(1, 2))  # (N, H, W, C, k, k)
    n, h, w = images.shape[:3]
    return view.reshape(n, h, w, -1)


def _posterior_mean(queries, keys, values, alpha, sigma2):
    """``sum_K softmax_K(-|q - alpha K|^2 / (2 sigma2)) v_K`` per query row.

    Parameters
    ----------
    queries : ndarray, shape (B, d)
    keys : ndarray, shape (K, d)
    values : ndarray, shape (K, C)

    Returns
    -------
    ndarray, shape (B, C)
    """
    n_keys, dim = keys.shape
    scaled = alpha * keys
    out = np.empty((queries.shape[0], values.shape[1]))
    step = max(1, _BLOCK_ENTRIES // (n_keys * max(dim, values.shape[1])))
    for start in range(0, queries.shape[0], step):
        block = slice(start, start + step)
        diff = queries[block, None, :] - scaled[None, :, :]
        logits = -np.sum(diff * diff, axis=2) / (2.0 * sigma2)
        logits -= logits.max(axis=1, keepdims=True)  # each query's own maximum
        weights = np.exp(logits)
        weights /= np.sum(weights, axis=1, keepdims=True)
        # Elementwise product and a reduction over keys: the same order for each
        # row whatever the block, unlike a BLAS product.
        out[block] = np.sum(weights[:, :, None] * values[None, :, :], axis=1)
    return out


def local_denoise(train, query, alpha, sigma2, k):
    """Local score machine (LS): each pixel's posterior over its own location.

    Kamb & Ganguli (2025), the local score machine (``LocalScoreModule`` in
    ``utils/idealscore.py``): pixel ``p`` weighs training image ``n`` by
    ``exp(-sum_{u in window(p)} |x_u - alpha y_{n,u}|^2 / (2 sigma2))``, the window
    being the ``k x k`` square centred on ``p`` clipped to the image (zero padding
    of both images), and takes the value ``y_{n,p}`` (all channels).

    Parameters
    ----------
    train : array_like, shape (N, H, W, C)
        Training images.
    query : array_like, shape (M, H, W, C)
        Noisy images ``x``.
    alpha : float
        ``alpha_t >= 0``.
    sigma2 : float
        ``sigma_t^2 > 0``.
    k : int
        Odd patch side. With ``k >= 2 max(H, W) - 1`` every window covers the whole
        image and LS is the empirical denoiser of the flattened images.

    Returns
    -------
    ndarray, shape (M, H, W, C)
        The denoiser ``D(x)``.
    """
    train, query, alpha, sigma2 = _check(train, query, alpha, sigma2)
    k = _patch_size(k)
    keys = _patches(train, k, "constant")
    queries = _patches(query, k, "constant")
    out = np.empty_like(query)
    for i in range(query.shape[1]):
        for j in range(query.shape[2]):
            out[:, i, j] = _posterior_mean(queries[:, i, j], keys[:, i, j], train[:, i, j],
                                           alpha, sigma2)
    return out


def els_denoise(train, query, alpha, sigma2, k, train_padding="valid"):
    """Equivariant local score machine (ELS): every pixel against every patch.

    Kamb & Ganguli (2025), the equivariant local score machine
    (``LocalEquivScoreModule``): the keys are the training patches at every
    position, the value of a key is its centre pixel (all channels), and the
    query is padded circularly, so a circular shift of the query shifts the output.

    Parameters
    ----------
    train : array_like, shape (N, H, W, C)
        Training images.
    query : array_like, shape (M, H, W, C)
        Noisy images ``x``.
    alpha : float
        ``alpha_t >= 0``.
    sigma2 : float
        ``sigma_t^2 > 0``.
    k : int
        Odd patch side; ``k <= min(H, W)`` for ``train_padding="valid"``.
    train_padding : {"valid", "circular"}
        ``"valid"``: the ``(H - k + 1)(W - k + 1)`` patches inside each training
        image (the reference code). ``"circular"``: all ``H W`` patches of the
        circularly padded training image.

    Returns
    -------
    ndarray, shape (M, H, W, C)
        The denoiser ``D(x)``.
    """
    train, query, alpha, sigma2 = _check(train, query, alpha, sigma2)
    k = _patch_size(k)
    h, w, c = train.shape[1:]
    r = k // 2
    if train_padding == "valid":
        if k > min(h, w):
            raise ValueError(f"k must be <= min(H, W) = {min(h, w)} for valid training "
                             f"patches; got {k}")
        rows, cols = slice(r, h - r), slice(r, w - r)
        keys = _patches(train, k, "constant")[:, rows, cols]
        values = train[:, rows, cols]
    elif train_padding == "circular":
        keys = _patches(train, k, "wrap")
        values = train
    else:
        raise ValueError(f"train_padding must be 'valid' or 'circular'; got {train_padding!r}")
    queries = _patches(query, k, "wrap").reshape(-1, keys.shape[-1])
    out = _posterior_mean(queries, keys.reshape(-1, keys.shape[-1]), values.reshape(-1, c),
                          alpha, sigma2)
    return out.reshape(query.shape)


def _allowed_centres(index, size, r):
    """Key centres for a pixel at ``index`` along one axis (boundary-aware ELS)."""
    if index < r or index >= size - r:
        return (index,)  # near an edge: the same offset from it only
    return tuple(range(r, size - r))


def boundary_els_denoise(train, query, alpha, sigma2, k):
    """Boundary-aware ELS: pixels near an edge match patches at the same edge offset.

    Kamb & Ganguli (2025), the ELS with boundaries (``LocalEquivBordersScoreModule``):
    along each axis a pixel whose distance to an edge is below ``r = k // 2`` keeps
    its own coordinate, an interior pixel may take any interior coordinate
    ``r .. size - 1 - r``; the keys are the zero-padded training patches centred on
    the allowed (row, column) pairs, the value the training pixel at that centre.
    So corners are LS, edge pixels slide along their edge, the interior is the
    valid ELS. Along an axis of size ``S`` with ``k >= S`` every pixel keeps its
    own coordinate, so with ``k >= max(H, W)`` this is LS (the reference code
    switches to LS when ``k >= H``).

    Parameters
    ----------
    train : array_like, shape (N, H, W, C)
        Training images.
    query : array_like, shape (M, H, W, C)
        Noisy images ``x``.
    alpha : float
        ``alpha_t >= 0``.
    sigma2 : float
        ``sigma_t^2 > 0``.
    k : int
        Odd patch side.

    Returns
    -------
    ndarray, shape (M, H, W, C)
        The denoiser ``D(x)``.
    """
    train, query, alpha, sigma2 = _check(train, query, alpha, sigma2)
    k = _patch_size(k)
    h, w, c = train.shape[1:]
    r = k // 2
    keys = _patches(train, k, "constant")
    queries = _patches(query, k, "constant")
    groups = {}
    for i in range(h):
        for j in range(w):
            groups.setdefault((_allowed_centres(i, h, r), _allowed_centres(j, w, r)), []).append(
                (i, j))
    out = np.empty_like(query)
    for (rows, cols), pixels in groups.items():
        rows, cols = np.asarray(rows), np.asarray(cols)
        group_keys = keys[:, rows][:, :, cols].reshape(-1, keys.shape[-1])
        group_values = train[:, rows][:, :, cols].reshape(-1, c)
        for i, j in pixels:
            out[:, i, j] = _posterior_mean(queries[:, i, j], group_keys, group_values,
                                           alpha, sigma2)
    return out


def pca_locality_mask(train, alpha, sigma2, threshold=0.0):
    """Per-coordinate locality masks from the data covariance (Lukoianov et al. 2025).

    With ``Sigma`` the training covariance of the flattened images (``d = H W C``,
    normalised by ``N - 1`` as in the reference ``compute_wiener_filter``) and the
    Wiener gain ``G = Sigma (Sigma + (sigma2 / alpha^2) I)^{-1}`` (the reference's
    ``U diag(alpha^2 lambda / (sigma2 + alpha^2 lambda)) V^T``), their mask is
    ``M[a, b] = G[a, b] / G[a, a]`` and, for ``threshold > 0``, the indicator
    ``|M[a, b]| >= threshold max |M|``. Their logits for coordinate ``b`` are
    ``-sum_a M[a, b] (x_a - alpha y_a)^2 / (2 sigma2)``, so this function returns
    the transpose, ``mask[i, j] = M[j, i]``: row ``i`` holds coordinate ``i``'s
    weights, the convention of :func:`pca_locality_denoise`. A zero diagonal entry
    (a coordinate of zero variance) is replaced by 1 before dividing, as there.

    Parameters
    ----------
    train : array_like, shape (N, H, W, C)
        Training images, N >= 2.
    alpha : float
        ``alpha_t > 0``.
    sigma2 : float
        ``sigma_t^2 > 0``.
    threshold : float
        0 for the real-valued mask, in ``(0, 1]`` for its binarisation.

    Returns
    -------
    ndarray, shape (d, d)
        ``d = H W C`` in the row-major order of ``train[n].ravel()``.
    """
    train = _images(train, "train")
    if train.shape[0] < 2:
        raise ValueError("train must hold at least 2 images for a covariance")
    alpha = real_scalar(alpha, "alpha", positive=True)
    sigma2 = real_scalar(sigma2, "sigma2", positive=True)
    threshold = real_scalar(threshold, "threshold", nonnegative=True)
    if threshold > 1:
        raise ValueError(f"threshold must be in [0, 1]; got {threshold}")
    flat = train.reshape(train.shape[0], -1)
    cov = np.cov(flat, rowvar=False, ddof=1).reshape(flat.shape[1], flat.shape[1])
    lam, vec = np.linalg.eigh(cov)
    lam = np.clip(lam, 0.0, None)
    shrink = alpha * alpha * lam / (sigma2 + alpha * alpha * lam)
    gain = (vec * shrink) @ vec.T
    diag = np.diagonal(gain).copy()
    diag[np.abs(diag) < 1e-6] = 1.0  # the reference's guard for flat coordinates
    mask = gain / diag[:, None]
    if threshold > 0:
        mask = (np.abs(mask) >= threshold * np.abs(mask).max()).astype(np.float64)
    return np.ascontiguousarray(mask.T)


def pca_locality_denoise(train, query, alpha, sigma2, mask):
    """Masked per-coordinate posterior mean (the PCA-locality denoiser).

    Lukoianov et al. (2025), ``PCALocalityDenoiser.denoise``: coordinate ``i`` of
    the flattened image weighs training image ``n`` by
    ``exp(-sum_j mask[i, j] (x_j - alpha y_{n,j})^2 / (2 sigma2))`` and takes the
    value ``y_{n,i}``. The softmax runs over the whole training set at once (the
    reference normalises per data batch and averages the batches, which equals
    this only with one batch).

    Parameters
    ----------
    train : array_like, shape (N, H, W, C)
        Training images.
    query : array_like, shape (M, H, W, C)
        Noisy images ``x``.
    alpha : float
        ``alpha_t >= 0``.
    sigma2 : float
        ``sigma_t^2 > 0``.
    mask : array_like, shape (d, d)
        ``d = H W C``; row ``i`` weighs coordinate ``i``'s distance (see
        :func:`pca_locality_mask`), entries >= 0.

    Returns
    -------
    ndarray, shape (M, H, W, C)
        The denoiser ``D(x)``.
    """
    train, query, alpha, sigma2 = _check(train, query, alpha, sigma2)
    flat_train = train.reshape(train.shape[0], -1)
    flat_query = query.reshape(query.shape[0], -1)
    d = flat_train.shape[1]
    mask = float_array(mask, "mask")
    if mask.shape != (d, d):
        raise ValueError(f"mask must have shape ({d}, {d}); got {mask.shape}")
    if (mask < 0).any():
        raise ValueError("mask must be >= 0 (it weighs squared distances)")
    out = np.empty_like(flat_query)
    for m in range(flat_query.shape[0]):
        diff = flat_query[m] - alpha * flat_train  # (N, d)
        logits = -(diff * diff) @ mask.T / (2.0 * sigma2)  # (N, d): column i is coordinate i
        logits -= logits.max(axis=0, keepdims=True)
        weights = np.exp(logits)
        out[m] = np.sum(weights * flat_train, axis=0) / np.sum(weights, axis=0)
    return out.reshape(query.shape)


def image_score(denoised, query, alpha, sigma2):
    """The score ``(alpha D(x) - x) / sigma2`` from a denoiser's output.

    Parameters
    ----------
    denoised : array_like, shape (M, H, W, C)
        ``D(x)``, from any function of this module.
    query : array_like, shape (M, H, W, C)
        The noisy images ``x`` it was computed at.
    alpha : float
        ``alpha_t >= 0``.
    sigma2 : float
        ``sigma_t^2 > 0``.

    Returns
    -------
    ndarray, shape (M, H, W, C)
    """
    denoised = _images(denoised, "denoised")
    query = _images(query, "query")
    if denoised.shape != query.shape:
        raise ValueError(f"denoised and query must have the same shape; got "
                         f"{denoised.shape} and {query.shape}")
    alpha = real_scalar(alpha, "alpha", nonnegative=True)
    sigma2 = real_scalar(sigma2, "sigma2", positive=True)
    return (alpha * denoised - query) / sigma2
