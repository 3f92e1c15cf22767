"""Argument checks shared by :mod:`numdiff.nets`: one message style, named arguments.

Every public function converts its inputs here, once; the kernels behind them
assume clean, C-contiguous float64 arrays.
"""

from __future__ import annotations

import numbers

import numpy as np

from numdiff._checks import as_real_array

# Inputs, labels and parameters are bounded so that f, the loss and the Hessian
# stay finite: with entries below 1e30, |f| < 2 k 1e90 and the loss, at most
# about f^2, is finite for any practical width k.
MAX_MAGNITUDE = 1e30


def real_scalar(value, name):
    """``value`` as a finite float, or a TypeError / ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value!r}")
    return value


def positive(value, name):
    """``value`` as a finite float ``> 0``, or an error naming ``name``."""
    value = real_scalar(value, name)
    if value <= 0.0:
        raise ValueError(f"{name} must be > 0; got {value!r}")
    return value


def non_negative(value, name):
    """``value`` as a finite float ``>= 0``, or an error naming ``name``."""
    value = real_scalar(value, name)
    if value < 0.0:
        raise ValueError(f"{name} must be >= 0; got {value!r}")
    return value


def vector(value, name, size=None):
    """``value`` as a 1-D, finite, C-contiguous float64 array (of ``size`` if given)."""
    arr = as_real_array(value, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {arr.shape}")
    if size is not None and arr.shape[0] != size:
        raise ValueError(f"{name} must have length {size}; got {arr.shape[0]}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if np.abs(arr).max() > MAX_MAGNITUDE:
        raise ValueError(f"{name} has entries above {MAX_MAGNITUDE:g} in magnitude: "
                         "products in the loss could overflow")
    return np.ascontiguousarray(arr)


def data(x, y):
    """Training inputs and labels: two finite 1-D arrays of one length ``n >= 1``."""
    x = vector(x, "x")
    return x, vector(y, "y", size=x.shape[0])


def width_of(theta, name="params"):
    """Number of hidden neurons ``k`` of a flat parameter vector of length ``3 k + 1``."""
    size = theta.shape[0]
    if size < 4 or (size - 1) % 3:
        raise ValueError(f"{name} must have length 3 k + 1 with k >= 1; got {size}")
    return (size - 1) // 3


# Field names of numdiff.nets.relu.Params, recognised without importing it.
PARAM_FIELDS = ("w1", "b1", "w2", "b2")


def concat_blocks(w1, b1, w2, b2, name="params"):
    """``[w1, b1, w2, b2]`` as one float64 vector, or an error naming ``name``."""
    w1, b1, w2, b2 = (as_real_array(p, name) for p in (w1, b1, w2, b2))
    if not (w1.ndim == b1.ndim == w2.ndim == 1 and b2.ndim == 0):
        raise ValueError(f"{name} as (w1, b1, w2, b2) needs three 1-D arrays and a scalar")
    if not (w1.shape == b1.shape == w2.shape):
        raise ValueError(f"{name}: w1, b1 and w2 must have one length; got "
                         f"{w1.shape[0]}, {b1.shape[0]}, {w2.shape[0]}")
    return np.concatenate([w1, b1, w2, b2[None]])


def flat_params(params, name="params"):
    """A flat parameter vector (or a :class:`~numdiff.nets.relu.Params`) as checked float64."""
    if getattr(params, "_fields", None) == PARAM_FIELDS:
        params = concat_blocks(*params, name=name)
    theta = vector(params, name)
    width_of(theta, name)
    return theta


def generator(rng):
    """``rng`` through :func:`numpy.random.default_rng` (None, a seed, a Generator, ...).

    Booleans and floats are refused by name: numpy would read ``True`` as seed 1.
    """
    if isinstance(rng, (bool, float, complex, str, bytes)):
        raise TypeError(f"rng must be None, an int seed or a numpy Generator; got {rng!r}")
    try:
        return np.random.default_rng(rng)
    except TypeError as err:
        raise TypeError(f"rng must be None, an int seed or a numpy Generator ({err})") from None
    except ValueError as err:
        raise ValueError(f"rng must be a non-negative seed ({err})") from None
