"""Independent references for the exact-reference study: the chain of exact reverse
transitions for one data point, and DPM-Solver++(2M) as published."""

from __future__ import annotations

import numpy as np

from theory.flows import gaussian_reverse_transition


def exact_chain(x_T, times, z, point, schedule):
    """The reverse SDE's exact transitions for one data point, driven by normals ``z``.

    ``x_{i+1} = m_i(x_i) + sqrt(v_i) z_i`` with ``(m_i, v_i)`` from
    ``theory.flows.gaussian_reverse_transition`` (data variance 0).
    """
    x = np.array(x_T, dtype=np.float64)
    for i in range(times.size - 1):
        m, v = gaussian_reverse_transition(x, times[i], times[i + 1], point, 0.0, schedule)
        x = m + np.sqrt(v) * z[i]
    return x


def dpmpp_2m_recursion(denoise, schedule, times, x_T):
    """DPM-Solver++(2M) as published (Lu et al. 2022, Algorithm 2), written independently.

    With ``lambda = log(alpha / sigma)`` from the schedule's ``alpha`` and
    ``sigma2``, ``h_i = lambda_i - lambda_{i-1}`` and ``r_i = h_{i-1} / h_i``:
    ``D~ = (1 + 1 / (2 r_i)) D_{i-1} - (1 / (2 r_i)) D_{i-2}`` (plain ``D_{i-1}``
    at the first step) and
    ``x_i = (sigma_i / sigma_{i-1}) x_{i-1} - alpha_i (e^{-h_i} - 1) D~``.

    Parameters
    ----------
    denoise : callable
        ``denoise(t, x) -> ndarray``, the data prediction.
    schedule : object
        Offers ``alpha(t)`` and ``sigma2(t)``.
    times : ndarray, shape (K + 1,)
        Decreasing grid.
    x_T : ndarray, shape (n, d)

    Returns
    -------
    ndarray, shape (n, d)
    """
    alpha = np.asarray(schedule.alpha(times), dtype=np.float64)
    sigma = np.sqrt(np.asarray(schedule.sigma2(times), dtype=np.float64))
    lam = np.log(alpha) - np.log(sigma)
    x, d_prev, h_prev = np.array(x_T, dtype=np.float64), None, None
    for i in range(1, times.size):
        h = lam[i] - lam[i - 1]
        d_now = denoise(times[i - 1], x)
        if d_prev is None:
            blend = d_now
        else:
            r = h_prev / h
            blend = (1.0 + 0.5 / r) * d_now - (0.5 / r) * d_prev
        x = (sigma[i] / sigma[i - 1]) * x - alpha[i] * np.expm1(-h) * blend
        d_prev, h_prev = d_now, h
    return x
