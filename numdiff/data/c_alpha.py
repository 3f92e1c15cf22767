"""Synthetic C^alpha images: two textured regions separated by a regular contour.

Kadkhodaie, Guth, Simoncelli & Mallat (ICLR 2024, "Generalization in diffusion
models arises from geometry-adaptive harmonic representations") use images whose
contour is a curve drawn from noise filtered by ``|f|^-alpha``, between two
backgrounds drawn from noise filtered by ``|f|^-beta`` (their public generator
filters uniform white noise in Fourier space and cuts the image along the curve).
This module writes that construction down in its own way, with its conventions
explicit (Gaussian instead of uniform white noise: the same flat spectrum):

* **Power-law noise** (:func:`power_law_noise`): periodic Gaussian white noise
  ``z`` on a grid, filtered in Fourier space by ``F(f) = |f|^-exponent`` (``f`` in
  cycles per sample, the zero frequency removed), then scaled to unit expected
  variance. Its expected power spectrum is ``c |f|^(-2 exponent)`` exactly, on
  every non-zero frequency. A 1-D draw with ``exponent = alpha`` is "C^alpha" in
  the naming of Kadkhodaie et al.; its Holder exponent in the strict sense is
  ``alpha - 1/2`` (for ``1/2 < alpha < 3/2``, like fractional Brownian motion).
* **The contour**: for an image of side ``s``, the height of the boundary in
  column ``j`` is ``h_j = s/2 + amplitude * s * g_j``, ``g`` a 1-D power-law draw
  of exponent ``alpha`` along the (periodic) columns. Pixel ``(r, j)`` (row ``r``
  counted from the top, centre at ``r + 1/2``) lies in the lower region when
  ``r + 1/2 > h_j``.
* **Backgrounds**: two independent 2-D power-law draws of exponent ``beta``. So
  that the regions differ in brightness, one is rescaled affinely to
  ``[u, 1]`` and the other to ``[0, v]``, ``u, v ~ U(0, 1)`` (which region is the
  bright one is a fair coin), as in the reference construction. An affine
  rescaling leaves the spectral slope unchanged. Images take values in ``[0, 1]``.
* **Perturbed border** (``border_noise > 0``): independent Gaussian noise of
  standard deviation ``border_noise`` pixels is added to each ``h_j`` before the
  regions are cut. The border becomes rough (its spectrum flattens at high
  frequency), the variant in which the seed's Section 3.2 reports a slower
  eigenvalue decay of the denoiser's Jacobian.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from numdiff._checks import as_count, as_real_array

__all__ = ["CAlphaImages", "c_alpha_images", "power_law_noise"]


def _finite_scalar(value, name, low=None):
    arr = as_real_array(value, name)
    if arr.ndim != 0 or not np.isfinite(arr):
        raise ValueError(f"{name} must be a finite scalar; got {value!r}")
    out = float(arr)
    if low is not None and out < low:
        raise ValueError(f"{name} must be >= {low}; got {out}")
    return out


def _frequency_radius(shape):
    """``|f|`` on the FFT grid of ``shape``, in cycles per sample."""
    grids = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    return np.sqrt(sum(g * g for g in grids))


def power_law_noise(n, shape, exponent, rng=None):
    """Periodic Gaussian noise whose power spectrum is ``|f|^(-2 exponent)``.

    Parameters
    ----------
    n : int
        Number of independent draws, >= 1.
    shape : int or tuple of int
        Grid shape, one or more axes, each >= 2 (an int is one axis).
    exponent : float
        Filter exponent: the amplitude spectrum is multiplied by ``|f|^-exponent``
        (``f`` in cycles per sample); >= 0.
    rng : None, int or numpy.random.Generator
        Seed, normalised with ``numpy.random.default_rng``.

    Returns
    -------
    ndarray, shape (n, *shape)
        Real, zero mean over the grid (the zero frequency is removed), unit
        expected variance per entry.
    """
    n = as_count(n, "n", 1, np.iinfo(np.int32).max)
    shape = (shape,) if isinstance(shape, int | np.integer) else tuple(shape)
    shape = tuple(as_count(s, "shape", 2, np.iinfo(np.int32).max) for s in shape)
    if not shape:
        raise ValueError("shape must have at least one axis")
    exponent = _finite_scalar(exponent, "exponent", low=0.0)
    rng = np.random.default_rng(rng)
    radius = _frequency_radius(shape)
    gain = np.zeros(shape)
    nonzero = radius > 0
    gain[nonzero] = radius[nonzero] ** -exponent
    # Parseval: the variance of ifft(fft(z) * gain) is mean(gain^2) for unit white z.
    gain /= np.sqrt(np.mean(gain * gain))
    axes = tuple(range(1, len(shape) + 1))
    white = rng.standard_normal((n, *shape))
    return np.fft.ifftn(np.fft.fftn(white, axes=axes) * gain, axes=axes).real


class CAlphaImages(NamedTuple):
    """C^alpha images and the contour each was cut along.

    Attributes
    ----------
    images : ndarray, shape (n, size, size, 1)
        float64 in ``[0, 1]``.
    contours : ndarray, shape (n, size)
        Boundary height ``h_j`` of each column, in pixels from the top, border
        noise included.
    """

    images: np.ndarray
    contours: np.ndarray


def c_alpha_images(n, size=32, alpha=1.0, beta=1.0, *, amplitude=0.1, border_noise=0.0,
                   rng=None):
    """Draw C^alpha images (Kadkhodaie et al. 2024), optionally with a rough border.

    Parameters
    ----------
    n : int
        Number of images, >= 1.
    size : int
        Side of the square images, >= 4.
    alpha : float
        Contour filter exponent (regularity ``alpha - 1/2`` of the curve), >= 0.
    beta : float
        Background filter exponent, >= 0.
    amplitude : float
        Standard deviation of the contour height, as a fraction of ``size``, >= 0.
    border_noise : float
        Standard deviation, in pixels, of independent noise added to each column's
        contour height (the perturbed-border variant); 0 for the smooth contour.
    rng : None, int or numpy.random.Generator
        Seed, normalised with ``numpy.random.default_rng``.

    Returns
    -------
    CAlphaImages
        ``images`` of shape (n, size, size, 1) and ``contours`` of shape (n, size).
        The module docstring gives the construction.
    """
    n = as_count(n, "n", 1, np.iinfo(np.int32).max)
    size = as_count(size, "size", 4, np.iinfo(np.int32).max)
    alpha = _finite_scalar(alpha, "alpha", low=0.0)
    beta = _finite_scalar(beta, "beta", low=0.0)
    amplitude = _finite_scalar(amplitude, "amplitude", low=0.0)
    border_noise = _finite_scalar(border_noise, "border_noise", low=0.0)
    rng = np.random.default_rng(rng)

    heights = size / 2 + amplitude * size * power_law_noise(n, (size,), alpha, rng)
    backgrounds = power_law_noise(2 * n, (size, size), beta, rng).reshape(n, 2, size, size)
    lows = backgrounds.min(axis=(2, 3), keepdims=True)
    highs = backgrounds.max(axis=(2, 3), keepdims=True)
    unit = (backgrounds - lows) / (highs - lows)
    u, v = rng.uniform(size=(2, n, 1, 1))
    bright = u + (1 - u) * unit[:, 0]  # in [u, 1]
    dark = v * unit[:, 1]  # in [0, v]
    lower_is_bright = rng.integers(0, 2, size=(n, 1, 1)).astype(bool)
    if border_noise > 0:
        # Drawn last, so that the same seed gives the same contour and backgrounds
        # with and without the perturbation (and whatever the amplitude).
        heights = heights + border_noise * rng.standard_normal((n, size))
    rows = np.arange(size)[None, :, None] + 0.5
    lower = rows > heights[:, None, :]
    upper_img = np.where(lower_is_bright, dark, bright)
    lower_img = np.where(lower_is_bright, bright, dark)
    images = np.where(lower, lower_img, upper_img)
    return CAlphaImages(images[..., None], heights)
