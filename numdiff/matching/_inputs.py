"""Input checks shared by the objectives: one message style, named arguments."""

from __future__ import annotations

import numbers

import numpy as np

from numdiff._checks import as_real_array

_EPS = float(np.finfo(np.float64).eps)
# Central differences: truncation ~ (h / scale)^2, rounding ~ eps / (h / scale).
_FD_STEP = _EPS ** (1.0 / 3.0)
# Rows per score call when the model is evaluated on many noisy points.
_CHUNK = 1 << 16


# -- input checks -------------------------------------------------------------------------------


def _check_model(model, name="model"):
    if not callable(getattr(model, "score", None)):
        raise TypeError(f"{name} must be a score model with a score(t, x) method; "
                        f"got {type(model).__name__}")
    return model


def _model_dim(model, x_dim=None, name="model"):
    dim = getattr(model, "dim", None)
    if dim is None:
        return x_dim
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
        raise TypeError(f"{name}.dim must be a positive int; got {dim!r}")
    return int(dim)


def _check_times(t, m, name="t"):
    arr = as_real_array(t, name)
    if arr.ndim != 0 and arr.shape != (m,):
        raise ValueError(f"{name} must be a scalar or of shape (M,) = ({m},); got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if (arr <= 0).any():
        raise ValueError(f"{name} must be > 0; got min {arr.min()!r}")
    return arr


def _count(value, name, low=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value!r}")
    return int(value)


def _score(model, t, x, name="model"):
    """``model.score(t, x)`` checked for shape and finiteness."""
    out = as_real_array(model.score(t, x), f"{name}.score(t, x)")
    if out.shape != x.shape:
        raise ValueError(f"{name}.score(t, x) must return x's shape {x.shape}; got {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError(f"{name}.score(t, x) returned NaN or infinite values")
    return out


def _sigma2(model, t, name="model"):
    schedule = getattr(model, "schedule", None)
    if schedule is None or not callable(getattr(schedule, "sigma2", None)):
        return None
    return np.asarray(schedule.sigma2(t), dtype=np.float64)
