"""Input validation shared by the public functions: one message style, named arguments.

Every public entry point converts its inputs here, once, at the boundary; the
kernels behind them assume clean float64 arrays (docs/architecture.md).
"""

from __future__ import annotations

import numbers

import numpy as np

from numdiff.engines.limits import check_magnitude

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


def alpha_sigma2(schedule, t, n_query):
    """``alpha_t`` and ``sigma2_t`` of shape ``(M,)`` for ``t`` a scalar or ``(M,)``,
    or an error naming ``t`` (``t <= 0``, NaN, ``sigma2_t`` subnormal, ``alpha_t``
    underflowing)."""
    t_arr = as_real_array(t, "t")
    if t_arr.ndim != 0 and t_arr.shape != (n_query,):
        raise ValueError(f"t must be a scalar or of shape (M,) = ({n_query},); got {t_arr.shape}")
    if np.isnan(t_arr).any():
        raise ValueError("t contains NaN")
    if (t_arr <= 0).any():
        raise ValueError(f"t must be > 0 (sigma_t = 0 at t = 0); got min {t_arr.min()!r}")
    if t_arr.ndim == 0:
        # The sampler's case: one time for all queries, one schedule evaluation.
        alpha, sigma2 = (np.full(n_query, v) for v in schedule.alpha_sigma2(t_arr))
    else:
        uniq, inverse = np.unique(t_arr, return_inverse=True)
        alpha, sigma2 = (v[inverse] for v in schedule.alpha_sigma2(uniq))
    if not (sigma2 >= np.finfo(np.float64).tiny).all():
        # A subnormal sigma2 has lost relative precision (and 0 is a point mass).
        raise ValueError(
            "t: sigma_t^2 is below the smallest normal float (2.2e-308) at this time; "
            "use a larger t"
        )
    if not (alpha > 0).all():
        raise ValueError("t: alpha_t underflows to 0 at this time; use a smaller t")
    return alpha, sigma2


def as_tangents(v, dim, n_query):
    """``v`` as ``(M, d)`` tangents (a single ``(d,)`` or ``(1, d)`` is repeated), or
    an error naming ``v``."""
    v = check_magnitude(as_points(v, dim, "v"), "v")
    if v.shape[0] == 1 and n_query != 1:
        return np.ascontiguousarray(np.broadcast_to(v, (n_query, dim)))
    if v.shape[0] != n_query:
        raise ValueError(f"v must have shape (M, d) = ({n_query}, {dim}) or (d,); got {v.shape}")
    return v
