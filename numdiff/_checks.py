"""Input validation shared by the public functions: one message style, named arguments.

Every public entry point converts its inputs here, once, at the boundary; the
kernels behind them assume clean float64 arrays (docs/architecture.md).
"""

from __future__ import annotations

import numbers

import numpy as np

# numpy dtype kinds accepted as real numbers: signed/unsigned integers and floats.
# Booleans, complex numbers, strings and objects are rejected by name: numpy would
# otherwise truncate complex values or parse numeric strings silently.
_REAL_KINDS = "iuf"


def as_real_array(value, name):
    """``value`` as a float64 ndarray of real numbers, or a TypeError naming ``name``."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be real numbers; got a string")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as err:  # ragged nested lists
        raise TypeError(f"{name} must be an array of real numbers ({err})") from None
    if arr.dtype.kind not in _REAL_KINDS:
        raise TypeError(f"{name} must be real numbers; got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def as_points(x, dim, name="x"):
    """Validate points: ``(M, d)`` (or ``(d,)`` when ``dim`` is known) finite reals.

    Parameters
    ----------
    x : array_like, shape (M, d) or (d,)
    dim : int or None
        Required number of columns, or None to accept any.
    name : str
        Argument name used in error messages.

    Returns
    -------
    ndarray, shape (M, d)
        C-contiguous float64.
    """
    arr = as_real_array(x, name)
    if arr.ndim == 1 and dim is not None:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (M, d); got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} must have d = {dim} columns; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return np.ascontiguousarray(arr)


def as_count(value, name, low, high):
    """An int in ``[low, high]``, or a TypeError / ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in [{low}, {high}]; got {value}")
    return int(value)
