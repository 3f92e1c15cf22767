"""What the closed-form image scores share: training images, the schedule, the
patch size ``k`` (fixed or a schedule ``k(t)``), input checks and the score formula.

Images are ``(N, H, W, C)``; the models work on flattened points ``(M, H W C)``
(row-major ``image.ravel()``), the score-model protocol of :func:`numdiff.sample`
and :mod:`numdiff.metrics`.
"""

from __future__ import annotations

import numbers

import numpy as np

from numdiff._checks import alpha_sigma2, as_points, as_real_array
from numdiff.engines.dispatch import Dispatcher
from numdiff.engines.keys import KeySet, distinct_keys
from numdiff.engines.limits import check_magnitude
from numdiff.neighbors import nearest_neighbors
from numdiff.schedules import Schedule


def as_images(images, name="data"):
    """``images`` as C-contiguous float64 ``(N, H, W, C)``, finite, non-empty."""
    arr = as_real_array(images, name)
    if arr.ndim != 4 or min(arr.shape) < 1:
        raise ValueError(f"{name} must have shape (N, H, W, C) with all sizes >= 1; "
                         f"got {arr.shape}")
    flat = check_magnitude(as_points(arr.reshape(arr.shape[0], -1), None, name), name)
    return flat.reshape(arr.shape)


def as_patch_size(k, name="k"):
    """An odd int ``>= 1`` (a patch has a centre pixel), or an error naming ``name``."""
    if isinstance(k, bool | np.bool_) or not isinstance(k, numbers.Integral):
        raise TypeError(f"{name} must be an odd int; got {k!r}")
    if k < 1 or k % 2 == 0:
        raise ValueError(f"{name} must be an odd int >= 1 (a patch has a centre pixel); got {k}")
    return int(k)


class ImageScoreModel:
    """Base of the local image scores: ``s(t, x) = (alpha_t D(t, x) - x) / sigma2_t``
    with ``D`` computed pixel by pixel by a subclass's ``_denoise_images``.

    Parameters
    ----------
    data : array_like, shape (N, H, W, C)
        Training images.
    schedule : Schedule
    k : int or callable, optional
        Patch size (odd), or ``k(t) -> int`` (e.g. :class:`PatchSchedule
        <numdiff.local.calibration.PatchSchedule>`).
    device : {"cpu", "cuda"}, optional
        Where the softmax averages run: ``"cuda"`` puts each key set on the GPU once
        (:class:`~numdiff.gpu.engine.CudaEngine`, needs the ``[gpu]`` extra, or
        ``NUMBA_ENABLE_CUDASIM=1``); the patches are cut on the host, and the rows
        the GPU kernels do not cover go to the CPU engines, as for
        :class:`~numdiff.EmpiricalScore`.

    Attributes
    ----------
    images : ndarray, shape (N, H, W, C)
    data : ndarray, shape (N, H W C)
        The flattened training images (for ``nd.sample(init="exact")`` and the
        memorisation metrics).
    image_shape : tuple of int
        ``(H, W, C)``.
    n_data, dim : int
        ``N`` and ``H W C``.
    """

    # Certified pruning of the engines at small noise: "auto", "off" or "always".
    pruning = "auto"
    # Merge repeated keys into one with its count (CPU; see `engine`). Set before the
    # first call: key sets are built on first use and kept.
    merge_repeats = True

    def __init__(self, data, schedule, k=3, device="cpu"):
        if not isinstance(device, str) or device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda'; got {device!r}")
        if not isinstance(schedule, Schedule):
            raise TypeError(f"schedule must be a numdiff Schedule; got {type(schedule).__name__}")
        self.images = as_images(data)
        self.schedule = schedule
        self.image_shape = self.images.shape[1:]
        self.n_data = self.images.shape[0]
        self.data = self.images.reshape(self.n_data, -1)
        self.dim = self.data.shape[1]
        self.k = k if callable(k) else self._check_k(k)
        self.device = device
        if device == "cuda":
            from numdiff.gpu._runtime import runtime

            runtime()  # a missing GPU or extra fails here, not at the first call

    def __repr__(self):
        return (f"{type(self).__name__}(N={self.n_data}, image_shape={self.image_shape}, "
                f"k={self.k!r}, schedule={self.schedule!r})")

    def patch_size(self, t):
        """The patch size used at time ``t`` (float)."""
        return self._check_k(self.k(t)) if callable(self.k) else self.k

    def _check_k(self, k):
        return as_patch_size(k)

    # -- the score-model protocol -------------------------------------------------
    def denoise(self, t, x):
        """The model's denoiser ``D(t, x)``, pixel by pixel.

        Parameters
        ----------
        t : float or array_like, shape (M,)
            Times in ``(0, schedule.t_max]``.
        x : array_like, shape (M, H W C)
            Noisy images, flattened.

        Returns
        -------
        ndarray, shape (M, H W C)
        """
        x, alpha, sigma2 = self._prepare(t, x)
        times = np.broadcast_to(np.asarray(t, dtype=np.float64), (x.shape[0],))
        out = np.empty_like(x)
        # One pass per distinct time (a sampler step has one).
        for value in np.unique(times):
            rows = np.flatnonzero(times == value)
            images = x[rows].reshape(-1, *self.image_shape)
            k = self.patch_size(float(value))
            out[rows] = self._denoise_images(images, float(alpha[rows[0]]),
                                             float(sigma2[rows[0]]), k).reshape(rows.size, -1)
        return out

    def score(self, t, x):
        """Score ``(alpha_t D(t, x) - x) / sigma2_t``.

        Parameters
        ----------
        t : float or array_like, shape (M,)
            Times in ``(0, schedule.t_max]``.
        x : array_like, shape (M, H W C)
            Noisy images, flattened.

        Returns
        -------
        ndarray, shape (M, H W C)
        """
        x, alpha, sigma2 = self._prepare(t, x)
        return (alpha[:, None] * self.denoise(t, x) - x) / sigma2[:, None]

    def nearest(self, x, k=1):
        """The ``k`` training images nearest to each query (Euclidean, exact).

        Parameters
        ----------
        x : array_like, shape (M, H W C)
        k : int, optional

        Returns
        -------
        idx : ndarray of int64, shape (M, k)
        dist : ndarray, shape (M, k)
        """
        return nearest_neighbors(self.data, x, k)

    # -- internals ----------------------------------------------------------------
    def _prepare(self, t, x):
        x = check_magnitude(as_points(x, self.dim), "x")
        return (x, *alpha_sigma2(self.schedule, t, x.shape[0]))

    def engine(self, keys):
        """The softmax engine over ``keys (K, d)`` with ``moments(x, alpha, sigma2)``:
        the CPU :class:`~numdiff.engines.dispatch.Dispatcher`, or the CUDA engine in
        front of it for ``device="cuda"``.

        On the CPU, repeated keys (patches repeat: background, borders) are merged
        into one key with its count (:func:`~numdiff.engines.keys.distinct_keys`),
        which takes the pruned engine out of the call; a key set without repeats is
        kept as it is, and so is every key set when ``merge_repeats`` is False. The
        GPU engine counts every key once, so it gets them all."""
        keys = np.ascontiguousarray(keys)
        if self.device == "cpu" and self.merge_repeats:
            unique, counts = distinct_keys(keys)
            if unique.shape[0] == keys.shape[0]:
                return Dispatcher(KeySet(keys), lambda: self.pruning)
            return Dispatcher(KeySet(unique, counts), lambda: self.pruning)
        cpu = Dispatcher(KeySet(keys), lambda: self.pruning)
        if self.device == "cpu":
            return cpu
        from numdiff.gpu.engine import CudaEngine

        return CudaEngine(cpu.keys, cpu.moments)

    def _denoise_images(self, images, alpha, sigma2, k):
        """``D`` of ``images (B, H, W, C)`` at one ``(alpha, sigma2)`` and patch size."""
        raise NotImplementedError
