"""Image patches as the engines' keys and queries.

A patch is flattened in (channel, row, column) order, the same for keys and
queries, so that they compare coordinate by coordinate; the centre pixel of
channel ``c`` is coordinate ``c k^2 + r k + r`` (``r = k // 2``).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PADDINGS = ("zero", "circular")
_NUMPY_MODE = {"zero": "constant", "circular": "wrap"}


def all_patches(images, k, padding):
    """Every pixel's ``k x k`` patch.

    Parameters
    ----------
    images : ndarray, shape (N, H, W, C)
    k : int
        Odd patch size.
    padding : {"zero", "circular"}
        How a patch that leaves the image is filled.

    Returns
    -------
    ndarray, shape (N, H, W, k k C)
        A read-only view where possible; copy before handing it to an engine.
    """
    r = k // 2
    padded = np.pad(images, ((0, 0), (r, r), (r, r), (0, 0)), mode=_NUMPY_MODE[padding])
    view = sliding_window_view(padded, (k, k), axis=(1, 2))  # (N, H, W, C, k, k)
    return view.reshape(*images.shape[:3], -1)


def centre_coordinates(k, channels):
    """Coordinates of the centre pixel's channels in a flattened patch, shape (C,)."""
    r = k // 2
    return np.arange(channels) * k * k + r * k + r


def allowed_centres(index, size, r):
    """Centres a pixel at ``index`` (of ``size``) may match in the boundary-aware ELS:
    its own if it lies within ``r`` of an edge, else every interior centre."""
    if index < r or index >= size - r:
        return np.array([index])
    return np.arange(r, size - r)


def edge_class(index, size, r):
    """The boundary-aware ELS's class of a row or column: ``index`` itself near an
    edge, ``-1`` for the interior."""
    return index if (index < r or index >= size - r) else -1
