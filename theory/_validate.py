"""Input checks shared by the public functions of :mod:`theory`.

Every public function validates once, at its boundary, and raises ``TypeError``
(wrong kind of object) or ``ValueError`` (right kind, bad value) naming the
offending argument; the computations below that boundary assume clean input.
"""

from __future__ import annotations

import numbers

import numpy as np


def real_scalar(value, name, *, positive=False, nonnegative=False):
    """Return ``value`` as a finite Python float, checking its sign if asked."""
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a real number, not a bool")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a real number; got {value!r}") from err
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a scalar; got an array of shape {arr.shape}")
    out = float(arr)
    if not np.isfinite(out):
        raise ValueError(f"{name} must be finite; got {out!r}")
    if positive and out <= 0.0:
        raise ValueError(f"{name} must be > 0; got {out!r}")
    if nonnegative and out < 0.0:
        raise ValueError(f"{name} must be >= 0; got {out!r}")
    return out


def positive_int(value, name):
    """Return ``value`` as a Python int >= 1 (integral types only, no bools)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value!r}")
    return int(value)


def float_array(value, name):
    """Convert to a finite float64 ndarray (any shape)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an array of real numbers") from err
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} must contain only finite values")
    return arr


def data_matrix(data, name="data"):
    """Validate a dataset: a finite float64 array of shape ``(N, d)``, N, d >= 1."""
    arr = float_array(data, name)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must have shape (N, d) with N, d >= 1; got {arr.shape}")
    return arr


def query_matrix(x, d, name="x"):
    """Validate queries: shape ``(M, d)``, or ``(d,)`` which becomes ``(1, d)``."""
    arr = float_array(x, name)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != d:
        raise ValueError(f"{name} must have shape (M, {d}) or ({d},); got {np.shape(x)}")
    return arr


def coordinate_vector(value, name, *, nonnegative=False):
    """Validate a per-coordinate parameter: a scalar or a 1-D array, returned 1-D."""
    arr = float_array(value, name)
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or have shape (d,); got {arr.shape}")
    if nonnegative and (arr < 0).any():
        raise ValueError(f"{name} must be >= 0")
    return np.atleast_1d(arr)


def schedule_like(schedule, name="schedule"):
    """Check duck typing: the object must offer callable ``alpha`` and ``sigma2``."""
    for attr in ("alpha", "sigma2"):
        if not callable(getattr(schedule, attr, None)):
            raise TypeError(f"{name} must have a callable `{attr}(t)` method")
    return schedule


def schedule_at(schedule, t):
    """Evaluate ``(alpha_t, sigma2_t)`` of a schedule at a scalar time, as floats."""
    alpha = float(np.asarray(schedule.alpha(t), dtype=np.float64))
    sigma2 = float(np.asarray(schedule.sigma2(t), dtype=np.float64))
    return alpha, sigma2
