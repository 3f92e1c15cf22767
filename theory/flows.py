"""Exact flows of the linear forward SDE for Gaussian data.

Data ``X_0 ~ N(m, diag(v))`` (``v = 0``: a single data point, the ``N = 1``
case) and the forward process ``X_t = alpha_t X_0 + sigma_t Z``. Coordinates
are independent, so everything below is per coordinate.

Derivation
----------
*Marginal.* ``X_t ~ N(alpha_t m, V_t)`` with ``V_t = alpha_t^2 v + sigma_t^2``;
its score is ``-(x - alpha_t m) / V_t``.

*Probability-flow ODE.* In forward time ``x' = -b x - (a^2 / 2) score``, and the
schedule obeys ``alpha' = -b alpha``, ``(sigma^2)' = -2 b sigma^2 + a^2``, hence
``V' = -2 b V + a^2``. For ``z = (x - alpha_t m) / sqrt(V_t)``,

    z' = (x - alpha m) / sqrt(V) * [(-b + a^2 / (2V)) - V' / (2V)] = 0,

so ``z`` is constant along the flow: ``x_s = alpha_s m + sqrt(V_s / V_t)
(x_t - alpha_t m)``. The map needs only ``alpha`` and ``sigma^2``, not ``b, a``.

*Reverse-SDE transition.* The reverse SDE is the time reversal of the forward
one, so its transition from ``t`` to ``s < t`` is the law of ``X_s`` given
``X_t``. Forward, ``X_t = alpha_{t|s} X_s + sigma_{t|s} Z'`` with
``alpha_{t|s} = alpha_t / alpha_s`` and ``sigma_{t|s}^2 = sigma_t^2 -
alpha_{t|s}^2 sigma_s^2``; so ``Cov(X_s, X_t) = alpha_{t|s} V_s`` and
``V_t = alpha_{t|s}^2 V_s + sigma_{t|s}^2``. Gaussian conditioning gives

    mean = alpha_s m + (alpha_{t|s} V_s / V_t) (x_t - alpha_t m),
    var  = V_s - alpha_{t|s}^2 V_s^2 / V_t = V_s sigma_{t|s}^2 / V_t.

The last form is used: it has no cancellation between ``V_s`` and the
subtracted term. ``sigma_{t|s}^2`` itself cancels when ``s -> t``; with only
``alpha`` and ``sigma^2`` available that is the conditioning of the question.

Schedules are used by duck typing: only ``schedule.alpha(t)`` and
``schedule.sigma2(t)`` are called.
"""

from __future__ import annotations

import numpy as np

from theory._validate import (
    coordinate_vector,
    float_array,
    query_matrix,
    real_scalar,
    schedule_at,
    schedule_like,
)

__all__ = ["gaussian_marginal", "gaussian_pf_flow", "gaussian_reverse_transition"]


def _times(t, s):
    t = real_scalar(t, "t", positive=True)
    s = real_scalar(s, "s", nonnegative=True)
    if s > t:
        raise ValueError(f"s must be <= t (the flows run backward in time); got s={s!r}, t={t!r}")
    return t, s


def _moments(mean, var, d=None):
    mean = coordinate_vector(mean, "mean")
    var = coordinate_vector(var, "var", nonnegative=True)
    if d is None:
        try:
            d = np.broadcast_shapes(mean.shape, var.shape)[0]
        except ValueError as err:
            raise ValueError(f"mean {mean.shape} and var {var.shape} do not broadcast") from err
    for arr, name in ((mean, "mean"), (var, "var")):
        if arr.shape[0] not in (1, d):
            raise ValueError(f"{name} must be a scalar or have shape ({d},); got {arr.shape}")
    return np.broadcast_to(mean, (d,)), np.broadcast_to(var, (d,))


def gaussian_marginal(t, mean, var, schedule):
    """Law ``N(alpha_t mean, alpha_t^2 var + sigma_t^2)`` of ``X_t`` per coordinate.

    Parameters
    ----------
    t : float or array_like, shape (K,)
        Time(s) >= 0 in the schedule's domain.
    mean : float or array_like, shape (d,)
        Data mean.
    var : float or array_like, shape (d,)
        Data variance per coordinate, >= 0 (0: a single data point).
    schedule : object
        Offers ``alpha(t)`` and ``sigma2(t)``.

    Returns
    -------
    mean_t, var_t : ndarray, shape (d,) for scalar ``t``, else ``t.shape + (d,)``
    """
    schedule_like(schedule)
    t = float_array(t, "t")
    if (t < 0).any():
        raise ValueError("t must be >= 0")
    mean, var = _moments(mean, var)
    alpha = np.asarray(schedule.alpha(t), dtype=np.float64)[..., None]
    sigma2 = np.asarray(schedule.sigma2(t), dtype=np.float64)[..., None]
    return alpha * mean, alpha**2 * var + sigma2


def _setup(x_t, t, s, mean, var, schedule):
    schedule_like(schedule)
    t, s = _times(t, s)
    x_t = float_array(x_t, "x_t")
    d = x_t.shape[-1] if x_t.ndim else 1
    x_t = query_matrix(x_t, d, "x_t")
    mean, var = _moments(mean, var, d)
    alpha_t, sigma2_t = schedule_at(schedule, t)
    alpha_s, sigma2_s = schedule_at(schedule, s)
    v_t = alpha_t**2 * var + sigma2_t
    v_s = alpha_s**2 * var + sigma2_s
    return x_t, mean, alpha_t, alpha_s, sigma2_t, sigma2_s, v_t, v_s


def gaussian_pf_flow(x_t, t, s, mean, var, schedule):
    """Exact probability-flow ODE map from time ``t`` back to ``s <= t``.

    ``x_s = alpha_s mean + sqrt(V_s / V_t) (x_t - alpha_t mean)`` with
    ``V = alpha^2 var + sigma^2`` (see the module docstring for the derivation).

    Parameters
    ----------
    x_t : array_like, shape (M, d) or (d,)
        States at time ``t``.
    t : float
        Start time, > 0.
    s : float
        End time, ``0 <= s <= t``.
    mean, var : float or array_like, shape (d,)
        Data mean and per-coordinate variance (>= 0; 0 is the ``N = 1`` case).
    schedule : object
        Offers ``alpha(t)`` and ``sigma2(t)``.

    Returns
    -------
    ndarray, shape (M, d)
    """
    x_t, mean, alpha_t, alpha_s, _, _, v_t, v_s = _setup(x_t, t, s, mean, var, schedule)
    return alpha_s * mean + np.sqrt(v_s / v_t) * (x_t - alpha_t * mean)


def gaussian_reverse_transition(x_t, t, s, mean, var, schedule):
    """Exact transition of the reverse SDE: the law of ``X_s`` given ``X_t = x_t``.

    Parameters
    ----------
    x_t : array_like, shape (M, d) or (d,)
        States at time ``t``.
    t : float
        Start time, > 0.
    s : float
        End time, ``0 <= s <= t``; ``s = 0`` needs ``alpha_0 > 0``.
    mean, var : float or array_like, shape (d,)
        Data mean and per-coordinate variance (>= 0).
    schedule : object
        Offers ``alpha(t)`` and ``sigma2(t)``.

    Returns
    -------
    m : ndarray, shape (M, d)
        ``alpha_s mean + (alpha_{t|s} V_s / V_t) (x_t - alpha_t mean)``.
    v : ndarray, shape (d,)
        ``V_s sigma_{t|s}^2 / V_t`` (independent of ``x_t``), >= 0.
    """
    x_t, mean, alpha_t, alpha_s, sigma2_t, sigma2_s, v_t, v_s = _setup(
        x_t, t, s, mean, var, schedule
    )
    if alpha_s <= 0.0:
        raise ValueError(f"schedule.alpha(s) must be > 0; got {alpha_s!r}")
    alpha_ts = alpha_t / alpha_s
    # Rounding can make a vanishing bridge variance (s -> t) slightly negative.
    sigma2_ts = max(0.0, sigma2_t - alpha_ts**2 * sigma2_s)
    m = alpha_s * mean + (alpha_ts * v_s / v_t) * (x_t - alpha_t * mean)
    return m, v_s * sigma2_ts / v_t
