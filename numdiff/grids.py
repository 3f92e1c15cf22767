"""Time grids for the reverse process, from ``T`` down to the early-stopping time ``delta``.

Every grid is uniform in some decreasing-with-``t`` (or increasing) variable
``u(t)`` and mapped back to ``t``:

=================  ==========================================  =====================
grid               uniform in                                  use it when
=================  ==========================================  =====================
``uniform_t``      ``t``                                       smooth problems, tests
``uniform_lambda`` ``lambda_t = log(alpha_t / sigma_t)``       explicit solvers near
                                                               ``delta`` (stiffness)
``edm``            ``(sigma_t / alpha_t)^(1/rho)``, ``rho=7``  few steps (Karras et al.)
``geometric``      ``log t``                                   steps refined near
                                                               ``delta``, any schedule
=================  ==========================================  =====================

Because each grid is uniform in its variable, doubling ``steps`` keeps every old
point: the grids are nested, which convergence studies need. Near ``t = 0``
the score's stiffness ``a_t^2 / sigma_t^2`` behaves like ``1 / t``; a step of
``uniform_lambda`` has ``h a_t^2 / sigma_t^2 ~ 2 * (lambda step)`` everywhere,
so explicit solvers stay stable there with a modest number of steps.

Every function returns a float64 array of shape ``(steps + 1,)``, strictly
decreasing, with ``times[0] == T`` and ``times[-1] == delta`` exactly.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["GRIDS", "edm", "geometric", "get_grid", "make_grid", "uniform_lambda", "uniform_t"]


def _check(schedule, T, delta, steps):
    """Validate the common arguments; return ``(T, delta, steps)`` as float, float, int."""
    for name, value in (("T", T), ("delta", delta)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number; got {value!r}")
    T, delta = float(T), float(delta)
    if not np.isfinite(delta) or delta <= 0:
        raise ValueError(f"delta must be finite and > 0; got {delta!r}")
    if not np.isfinite(T) or delta >= T:
        raise ValueError(f"delta must be < T; got delta={delta!r}, T={T!r}")
    t_max = getattr(schedule, "t_max", None)
    if t_max is None:
        raise TypeError(f"schedule must be a numdiff Schedule; got {type(schedule).__name__}")
    if T > t_max:
        raise ValueError(f"T must be <= the schedule's t_max = {t_max}; got {T!r}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"steps must be an integer; got {steps!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1; got {steps!r}")
    return T, delta, int(steps)


def _finish(times, T, delta):
    """Pin the end points exactly and check that rounding kept the grid decreasing."""
    times = np.asarray(times, dtype=np.float64)
    times[0], times[-1] = T, delta
    if not (np.diff(times) < 0).all():
        raise ValueError(
            "steps: the grid is not strictly decreasing at this many steps "
            "(adjacent times coincide in float64); use fewer steps"
        )
    return times


def uniform_t(schedule, T, delta, steps):
    """Grid uniform in ``t``.

    Parameters
    ----------
    schedule : Schedule
    T : float
        Start of the reverse process, ``delta < T <= schedule.t_max``.
    delta : float
        Early-stopping time, ``> 0``.
    steps : int
        Number of steps, ``>= 1``.

    Returns
    -------
    ndarray, shape (steps + 1,)
        Decreasing from ``T`` to ``delta``.
    """
    T, delta, steps = _check(schedule, T, delta, steps)
    return _finish(np.linspace(T, delta, steps + 1), T, delta)


def uniform_lambda(schedule, T, delta, steps):
    """Grid uniform in ``lambda_t = log(alpha_t / sigma_t)`` (half the log-SNR).

    Same parameters and return value as :func:`uniform_t`; needs
    ``schedule.lam`` and ``schedule.lam_inv``.
    """
    T, delta, steps = _check(schedule, T, delta, steps)
    lam = np.linspace(float(schedule.lam(T)), float(schedule.lam(delta)), steps + 1)
    return _finish(schedule.lam_inv(lam), T, delta)


def edm(schedule, T, delta, steps, rho=7.0):
    """The rho-grid of Karras et al. (2022) in ``sigma_t / alpha_t = exp(-lambda_t)``.

    Uniform in ``(sigma_t / alpha_t)^(1 / rho)``, so steps shrink like a power
    law toward ``delta``. Same parameters and return value as
    :func:`uniform_t`, plus

    Parameters
    ----------
    rho : float, optional
        Exponent, ``> 0`` (default 7; ``rho -> inf`` tends to ``uniform_lambda``).
    """
    T, delta, steps = _check(schedule, T, delta, steps)
    if isinstance(rho, bool) or not isinstance(rho, numbers.Real) or not (0 < rho < np.inf):
        raise ValueError(f"rho must be a finite number > 0; got {rho!r}")
    # (sigma/alpha)^(1/rho) = exp(-lambda / rho): work in that variable, then back to lambda.
    u = np.linspace(
        np.exp(-float(schedule.lam(T)) / rho), np.exp(-float(schedule.lam(delta)) / rho), steps + 1
    )
    return _finish(schedule.lam_inv(-rho * np.log(u)), T, delta)


def geometric(schedule, T, delta, steps):
    """Grid uniform in ``log t``: ``t_i = T (delta / T)^(i / steps)``.

    Same parameters and return value as :func:`uniform_t`. Steps shrink in
    proportion to ``t``, which matches the ``1 / t`` stiffness near ``t = 0``
    of every schedule with ``a_0 > 0``.
    """
    T, delta, steps = _check(schedule, T, delta, steps)
    return _finish(np.exp(np.linspace(np.log(T), np.log(delta), steps + 1)), T, delta)


GRIDS = {
    "uniform_t": uniform_t,
    "uniform_lambda": uniform_lambda,
    "edm": edm,
    "geometric": geometric,
}


def get_grid(name):
    """The grid function called ``name``; ``ValueError`` naming ``grid`` if unknown."""
    if not isinstance(name, str) or name not in GRIDS:
        raise ValueError(f"grid must be one of {sorted(GRIDS)} or an array of times; got {name!r}")
    return GRIDS[name]


def make_grid(schedule, grid, T, delta, steps):
    """The time grid named ``grid``, or ``grid`` itself checked if it is an array.

    An explicit grid lets a study build a fine grid once and take nested
    coarse grids as ``fine[::2**k]``.

    Parameters
    ----------
    schedule : Schedule
    grid : str or array_like, shape (steps + 1,)
        A name of :data:`GRIDS`, or times strictly decreasing from ``T`` to
        ``delta`` (end points equal to ``T`` and ``delta``).
    T, delta, steps
        As for :func:`uniform_t`.

    Returns
    -------
    ndarray, shape (steps + 1,)
    """
    if isinstance(grid, str):
        return get_grid(grid)(schedule, T, delta, steps)
    T, delta, steps = _check(schedule, T, delta, steps)
    try:
        times = np.array(grid, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"grid must be one of {sorted(GRIDS)} or an array of times") from err
    if times.shape != (steps + 1,):
        raise ValueError(f"grid must have shape (steps + 1,) = ({steps + 1},); got {times.shape}")
    if times[0] != T or times[-1] != delta:
        raise ValueError(f"grid must run from T = {T!r} to delta = {delta!r}; "
                         f"got {times[0]!r} to {times[-1]!r}")
    if not (np.diff(times) < 0).all():
        raise ValueError("grid must be strictly decreasing")
    return times
