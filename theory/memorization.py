"""Where memorization sets in: the collapse prediction of Biroli, Bonnaire,
de Bortoli & Mezard (2024), "Dynamical regimes of diffusion models".

Running the reverse process with the exact empirical score of ``N`` points drawn
from ``N(0, data_var I_d)``, trajectories are attracted to a single training point
(they "collapse") once the time falls below the collapse time ``t_C``. The paper
locates it where the entropy of the true diffused law ``N(0, (alpha^2 data_var +
sigma^2) I)`` exceeds that of one mixture component ``N(alpha x_k, sigma^2 I)`` by
``log N`` (an excess entropy per dimension equal to ``log(N) / d``):

    (d / 2) log(1 + alpha_t^2 data_var / sigma_t^2) = log N
    <=>  alpha_t^2 data_var / sigma_t^2 = N^(2/d) - 1.

For the Ornstein-Uhlenbeck process (``alpha = e^{-t}``, ``sigma^2 = 1 - e^{-2t}``)
this is the paper's ``t_C = (1/2) log(1 + data_var / (N^(2/d) - 1))``.

This is an *asymptotic* prediction: it is derived for ``N, d -> infinity`` with
``log(N) / d`` fixed, where the transition is sharp. At small ``d`` (say ``d < 10``)
the crossover is smooth and wide, and ``t_C`` only indicates its location.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from theory._validate import positive_int, real_scalar, schedule_at, schedule_like

__all__ = ["collapse_snr", "collapse_time"]

# Bracket search: start at t = 1 (clipped to the domain), expand or shrink by
# factors of 2; give up below this time (the collapse is then at t ~ 0).
_T_START = 1.0
_T_FLOOR = 1e-300


def collapse_snr(N, d, data_var=1.0):
    """Signal-to-noise ratio ``alpha_t^2 / sigma_t^2`` at the predicted collapse.

    Collapse happens when ``alpha_t^2 data_var / sigma_t^2 = N^(2/d) - 1``; this
    returns the schedule-level SNR ``(N^(2/d) - 1) / data_var`` (equal to the
    paper's ``N^(2/d) - 1`` for unit data variance), so that
    ``lambda_C = log(SNR) / 2`` is directly comparable with a schedule's ``lam``.

    Parameters
    ----------
    N : int
        Number of training points, >= 1.
    d : int
        Dimension, >= 1.
    data_var : float
        Variance per coordinate of the Gaussian data, > 0.

    Returns
    -------
    float
        ``>= 0``; 0 for ``N = 1`` (a single point is "collapsed" at every time).
        Asymptotic in ``N, d`` (see the module docstring).
    """
    N = positive_int(N, "N")
    d = positive_int(d, "d")
    data_var = real_scalar(data_var, "data_var", positive=True)
    # expm1 keeps N^(2/d) - 1 accurate when log(N)/d is small (large d).
    return float(np.expm1(2.0 * np.log(N) / d)) / data_var


def collapse_time(N, d, schedule, data_var=1.0):
    """Predicted collapse time ``t_C``: ``alpha_t^2 / sigma_t^2 = collapse_snr(N, d, data_var)``.

    The SNR of a forward schedule decreases in ``t`` (from ``+inf`` at ``t = 0``),
    so the root is unique; it is bracketed by doubling / halving from ``t = 1``
    and found with Brent's method on ``alpha^2 - target sigma^2`` (a
    difference, so nothing overflows or underflows as ``alpha -> 0``).

    Parameters
    ----------
    N : int
        Number of training points, >= 1.
    d : int
        Dimension, >= 1.
    schedule : object
        Offers ``alpha(t)`` and ``sigma2(t)`` (nothing else is called); an
        attribute ``t_max`` bounds the search if present.
    data_var : float
        Variance per coordinate of the Gaussian data, > 0.

    Returns
    -------
    float
        ``t_C``. ``inf`` if the SNR stays above the target on the whole domain
        (collapse before the reverse process even starts; always for ``N = 1``),
        ``0.0`` if it is below the target already at ``t = 1e-300``.
        Asymptotic in ``N, d`` (see the module docstring); only indicative at
        small ``d``.
    """
    schedule_like(schedule)
    target = collapse_snr(N, d, data_var)
    if target == 0.0:
        return float(np.inf)
    return snr_crossing_time(schedule, target)


def snr_crossing_time(schedule, target):
    """The time at which ``alpha_t^2 / sigma_t^2`` falls to ``target > 0``.

    The SNR of a forward schedule decreases in ``t`` (from ``+inf`` at ``t = 0``),
    so the root is unique; it is bracketed by doubling / halving from ``t = 1``
    and found with Brent's method on ``alpha^2 - target sigma^2`` (a difference,
    so nothing overflows or underflows as ``alpha -> 0``).

    Parameters
    ----------
    schedule : object
        Offers ``alpha(t)`` and ``sigma2(t)``; an attribute ``t_max`` bounds the
        search if present.
    target : float

    Returns
    -------
    float
        ``inf`` if the SNR stays above ``target`` on the whole domain, ``0.0`` if it
        is below it already at ``t = 1e-300``.
    """
    t_max = float(getattr(schedule, "t_max", np.inf))

    def excess(t):
        alpha, sigma2 = schedule_at(schedule, t)
        return alpha * alpha - target * sigma2

    hi = min(_T_START, t_max)
    while excess(hi) > 0.0:
        if hi >= t_max:
            return float(np.inf)
        hi = min(2.0 * hi, t_max)
    lo = hi
    while excess(lo) <= 0.0:
        if lo < _T_FLOOR:
            return 0.0
        lo *= 0.5
    return float(brentq(excess, lo, hi, xtol=_T_FLOOR, rtol=4.0 * np.finfo(float).eps))
