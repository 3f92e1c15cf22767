"""When classes form: the speciation time of Biroli, Bonnaire, de Bortoli & Mezard (2024).

"Dynamical regimes of diffusion models" (arXiv:2402.18491, Nature Communications
2024) finds that the backward dynamics first commits to a class ("speciation")
when the signal along the data's top principal direction emerges from the noise.
Their forward process is the Ornstein-Uhlenbeck process ``dx = -x dt + dB`` with
``<dB dB> = 2 dt`` (numdiff's ``OU``: ``alpha_t = e^-t``, ``sigma_t^2 = 1 -
e^-2t``), and their result, for large dimension, is

    t_S = (1/2) log Lambda,     Lambda = largest eigenvalue of the data covariance.

The criterion behind it is a linear instability at the centre of the noisy law: at
large ``t`` the posterior of ``x_0`` given ``x_t`` near the centre is close to the
data law, so the Hessian of ``log p_t`` there is
``-I / sigma^2 + alpha^2 C / sigma^4`` (``C`` the data covariance), whose top
eigenvalue changes sign when

    alpha_t^2 Lambda = sigma_t^2,   i.e.   SNR(t_S) = alpha^2 / sigma^2 = 1 / Lambda.

That is the form this module uses for any linear forward process
(:func:`speciation_snr`, :func:`speciation_time`). For OU it gives
``t_S = (1/2) log(1 + Lambda)``, which is the paper's ``(1/2) log Lambda`` up to
``(1/2) log(1 + 1/Lambda) <= 1 / (2 Lambda)``, the order the large-dimension
analysis (``Lambda`` of order ``d``) neglects; :func:`speciation_time_ou` gives the
paper's formula itself. For two symmetric points ``+-m`` the posterior at the
centre is exactly the data law, so the criterion is then exact: the curvature of
``log p_t`` at 0 along ``m`` changes sign at ``alpha^2 |m|^2 = sigma^2``.
"""

from __future__ import annotations

import numpy as np

from theory._validate import data_matrix, real_scalar, schedule_like
from theory.memorization import snr_crossing_time

__all__ = [
    "speciation_eigenvalue",
    "speciation_snr",
    "speciation_time",
    "speciation_time_ou",
]


def speciation_eigenvalue(data):
    """``Lambda``: the largest eigenvalue of the data's covariance.

    Parameters
    ----------
    data : array_like, shape (N, d)
        Data points (flatten images first), N >= 2.

    Returns
    -------
    float
        The top eigenvalue of ``(1/N) sum_k (x_k - mean)(x_k - mean)^T``, the
        covariance of the empirical law (the law the empirical score diffuses;
        ``N - 1`` instead of ``N`` changes it by the factor ``N / (N - 1)``).
        Computed as the square of the top singular value of the centred data over
        ``N``, which never forms the ``d x d`` matrix.
    """
    data = data_matrix(data)
    if data.shape[0] < 2:
        raise ValueError("data must hold at least 2 points for a covariance")
    centred = data - data.mean(axis=0)
    top = np.linalg.svd(centred, compute_uv=False)[0]
    return float(top * top / data.shape[0])


def speciation_snr(eigenvalue):
    """Signal-to-noise ratio ``alpha_t^2 / sigma_t^2`` at speciation: ``1 / Lambda``.

    Parameters
    ----------
    eigenvalue : float
        ``Lambda > 0``, from :func:`speciation_eigenvalue`.

    Returns
    -------
    float
        ``1 / Lambda``, so that ``lambda_S = -log(Lambda) / 2`` compares directly
        with a schedule's ``lam`` (half the log-SNR).
    """
    eigenvalue = real_scalar(eigenvalue, "eigenvalue", positive=True)
    return 1.0 / eigenvalue


def speciation_time_ou(eigenvalue):
    """The paper's ``t_S = (1/2) log Lambda`` for the OU process (large ``Lambda``).

    Parameters
    ----------
    eigenvalue : float
        ``Lambda > 0``.

    Returns
    -------
    float
        ``log(Lambda) / 2``; negative for ``Lambda < 1``, where the formula is
        outside its large-dimension validity. :func:`speciation_time` with an OU
        schedule gives the criterion's exact root ``log(1 + Lambda) / 2``.
    """
    eigenvalue = real_scalar(eigenvalue, "eigenvalue", positive=True)
    return 0.5 * float(np.log(eigenvalue))


def speciation_time(eigenvalue, schedule):
    """``t_S`` solving ``alpha_t^2 Lambda = sigma_t^2`` for a forward schedule.

    The SNR of a forward schedule decreases in ``t`` from ``+inf``, so the root is
    unique; it is bracketed by doubling / halving from ``t = 1`` and found with
    Brent's method (:func:`theory.memorization.snr_crossing_time`).

    Parameters
    ----------
    eigenvalue : float
        ``Lambda > 0``.
    schedule : object
        Offers ``alpha(t)`` and ``sigma2(t)`` (nothing else is called); an
        attribute ``t_max`` bounds the search if present.

    Returns
    -------
    float
        ``t_S``; ``inf`` if the SNR stays above ``1 / Lambda`` on the whole domain,
        ``0.0`` if it is already below at ``t = 1e-300``.
    """
    eigenvalue = real_scalar(eigenvalue, "eigenvalue", positive=True)
    schedule_like(schedule)
    # alpha^2 Lambda = sigma^2 is the SNR 1 / Lambda.
    return snr_crossing_time(schedule, 1.0 / eigenvalue)
