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

from numdiff._checks import as_real_array

__all__ = ["GRIDS", "edm", "geometric", "get_grid", "make_grid", "uniform_lambda", "uniform_t"]


# Relative slack when checking that lam_inv returned times inside [delta, T]: its
# round trip is accurate to ~1e-15, so anything outside this is a failed inversion.
LAM_INV_SLACK = 1e-8


def _real(value, name):
    """``value`` as a float; TypeError naming ``name`` for bool, complex, str, arrays."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    return float(value)


def _check(schedule, T, delta, steps):
    """Validate the common arguments; return ``(T, delta, steps)`` as float, float, int."""
    T, delta = _real(T, "T"), _real(delta, "delta")
    if not (np.isfinite(T) and T > 0):
        raise ValueError(f"T must be finite and > 0; got {T!r}")
    if not np.isfinite(delta) or delta <= 0:
        raise ValueError(f"delta must be finite and > 0; got {delta!r}")
    if delta >= T:
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


def _lam_ends(schedule, T, delta):
    """``(lambda_T, lambda_delta)``, or a ValueError naming the end whose lambda is not finite."""
    ends = []
    for name, t in (("T", T), ("delta", delta)):
        lam = float(schedule.lam(t))
        if not np.isfinite(lam):
            raise ValueError(
                f"{name} = {t!r}: lambda = log(alpha / sigma) is {lam!r} there for "
                f"{schedule!r}, so no log-SNR grid reaches it"
            )
        ends.append(lam)
    return ends[0], ends[1]


def _times_of_lam(schedule, lam, T, delta):
    """``schedule.lam_inv(lam)`` for a lambda grid running from ``lambda_T`` to ``lambda_delta``.

    A schedule's ``lam_inv`` can fail where ``lambda`` is far from 0 (e.g. where
    ``alpha`` or ``sigma`` underflows). That is a property of ``T`` or ``delta``
    for this schedule, not of ``steps``: the error names the end nearer to the
    first lambda that fails, and the schedule.
    """
    try:
        # An overflow inside lam_inv shows up as a non-finite time, reported below.
        with np.errstate(over="ignore", invalid="ignore"):
            times = np.asarray(schedule.lam_inv(lam), dtype=np.float64)
    except ValueError as err:
        times, cause = None, f" ({err})"
    else:
        cause = ""
    lo, hi = delta * (1.0 - LAM_INV_SLACK), T * (1.0 + LAM_INV_SLACK)
    if times is not None:
        bad = ~(np.isfinite(times) & (times >= lo) & (times <= hi))
        if not bad.any():
            return times
        first = int(np.argmax(bad))
        got = f"t = {float(times[first])!r}"
    else:
        # Locate the failing end: lam_inv at each end alone.
        first = 0 if _inverse_fails(schedule, lam[0], lo, hi) else lam.size - 1
        got = "an error"
    name = "T" if abs(lam[first] - lam[0]) <= abs(lam[first] - lam[-1]) else "delta"
    value = T if name == "T" else delta
    raise ValueError(
        f"{name} = {value!r} is beyond what {schedule!r}.lam_inv can represent: "
        f"lambda = {float(lam[first])!r} (the grid runs from lambda_T = {float(lam[0])!r} to "
        f"lambda_delta = {float(lam[-1])!r}) gave {got}{cause}; use a "
        f"{'smaller T' if name == 'T' else 'larger delta'} or grid='uniform_t'"
    )


def _inverse_fails(schedule, lam, lo, hi):
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            t = float(np.asarray(schedule.lam_inv(np.array([lam])))[0])
    except ValueError:
        return True
    return not (np.isfinite(t) and lo <= t <= hi)


def uniform_t(schedule, T, delta, steps):
    """Grid uniform in ``t``.

    Parameters
    ----------
    schedule : Schedule
        The forward process; only ``t_max`` is used.
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

    Parameters
    ----------
    schedule : Schedule
        The forward process; needs ``lam`` and ``lam_inv``.
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

    Raises
    ------
    ValueError
        Naming ``T`` (or ``delta``) when the schedule cannot represent
        ``lambda`` there or invert it (e.g. ``alpha_T`` underflows).
    """
    T, delta, steps = _check(schedule, T, delta, steps)
    lam_T, lam_delta = _lam_ends(schedule, T, delta)
    lam = np.linspace(lam_T, lam_delta, steps + 1)
    return _finish(_times_of_lam(schedule, lam, T, delta), T, delta)


def edm(schedule, T, delta, steps, rho=7.0):
    """The rho-grid of Karras et al. (2022) in ``sigma_t / alpha_t = exp(-lambda_t)``.

    Uniform in ``(sigma_t / alpha_t)^(1 / rho)``, so steps shrink like a power
    law toward ``delta``.

    Parameters
    ----------
    schedule : Schedule
        The forward process; needs ``lam`` and ``lam_inv``.
    T : float
        Start of the reverse process, ``delta < T <= schedule.t_max``.
    delta : float
        Early-stopping time, ``> 0``.
    steps : int
        Number of steps, ``>= 1``.
    rho : float, optional
        Exponent, ``> 0`` (default 7; ``rho -> inf`` tends to ``uniform_lambda``).

    Returns
    -------
    ndarray, shape (steps + 1,)
        Decreasing from ``T`` to ``delta``.
    """
    T, delta, steps = _check(schedule, T, delta, steps)
    rho = _real(rho, "rho")
    if not 0 < rho < np.inf:
        raise ValueError(f"rho must be a finite number > 0; got {rho!r}")
    lam_T, lam_delta = _lam_ends(schedule, T, delta)
    # (sigma/alpha)^(1/rho) = exp(-lambda / rho): work in that variable, then back to lambda.
    u = np.linspace(np.exp(-lam_T / rho), np.exp(-lam_delta / rho), steps + 1)
    with np.errstate(divide="ignore"):
        lam = -rho * np.log(u)
    lam[0], lam[-1] = lam_T, lam_delta  # exp/log round trip; an overflowed u is caught below
    return _finish(_times_of_lam(schedule, lam, T, delta), T, delta)


def geometric(schedule, T, delta, steps):
    """Grid uniform in ``log t``: ``t_i = T (delta / T)^(i / steps)``.

    Steps shrink in proportion to ``t``, which matches the ``1 / t`` stiffness
    near ``t = 0`` of every schedule with ``a_0 > 0``.

    Parameters
    ----------
    schedule : Schedule
        The forward process; only ``t_max`` is used.
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
    return _finish(np.exp(np.linspace(np.log(T), np.log(delta), steps + 1)), T, delta)


GRIDS = {
    "uniform_t": uniform_t,
    "uniform_lambda": uniform_lambda,
    "edm": edm,
    "geometric": geometric,
}


def get_grid(name):
    """The grid function called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`GRIDS`.

    Returns
    -------
    callable
        ``(schedule, T, delta, steps) -> ndarray``; ``ValueError`` naming
        ``grid`` if ``name`` is unknown.
    """
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
        The forward process.
    grid : str or array_like, shape (steps + 1,)
        A name of :data:`GRIDS`, or times strictly decreasing from ``T`` to
        ``delta`` (end points equal to ``T`` and ``delta``).
    T : float
        Start of the reverse process, ``delta < T <= schedule.t_max``.
    delta : float
        Early-stopping time, ``> 0``.
    steps : int
        Number of steps, ``>= 1``.

    Returns
    -------
    ndarray, shape (steps + 1,)
    """
    if isinstance(grid, str):
        return get_grid(grid)(schedule, T, delta, steps)
    T, delta, steps = _check(schedule, T, delta, steps)
    try:
        times = np.array(as_real_array(grid, "grid"), dtype=np.float64)
    except TypeError as err:
        raise TypeError(f"grid must be one of {sorted(GRIDS)} or an array of times ({err})") from None
    if not np.isfinite(times).all():
        raise ValueError("grid contains NaN or infinite times")
    if times.shape != (steps + 1,):
        raise ValueError(f"grid must have shape (steps + 1,) = ({steps + 1},); got {times.shape}")
    if times[0] != T or times[-1] != delta:
        raise ValueError(f"grid must run from T = {T!r} to delta = {delta!r}; "
                         f"got {times[0]!r} to {times[-1]!r}")
    if not (np.diff(times) < 0).all():
        raise ValueError("grid must be strictly decreasing")
    return times
