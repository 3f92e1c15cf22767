"""Reference solutions of the convergence checks: Gaussian data, exact reverse paths, grids.

Everything a check compares numdiff's solvers with, apart from the closed forms
of :mod:`theory.flows` themselves: the exact score of Gaussian data, the exact
solution of the reverse SDE on a given Brownian path, grids with a varying step
ratio and the coarse-grid noise of a fine Brownian path.
"""

from __future__ import annotations

import numpy as np

import numdiff as nd
from theory.flows import gaussian_reverse_transition

MEAN = np.array([1.0, -0.5])
VAR = np.array([0.5, 2.0])


def custom_schedule():
    """A schedule that is neither VP nor VE: ``b = 0.3 + 0.4 t``, ``a = 1 + 0.5 sin t``."""
    return nd.Schedule(b=lambda t: 0.3 + 0.4 * t, a=lambda t: 1.0 + 0.5 * np.sin(t))


# name -> (schedule factory, T for the ODE and exact-moment checks)
SCHEDULES = {"OU": (nd.OU, 2.0), "VPLinear": (nd.VPLinear, 1.0), "custom": (custom_schedule, 2.0)}


class GaussianScore:
    """Exact score model of Gaussian data ``N(mean, diag var)``; a test double.

    ``D(t, x) = mean + alpha var / (alpha^2 var + sigma^2) (x - alpha mean)``,
    per coordinate. Implements the score-model protocol of
    :class:`numdiff.solvers.Solver` (``denoise``, ``schedule``, ``dim``).

    Parameters
    ----------
    mean, var : array_like, shape (d,)
    schedule : Schedule
    """

    def __init__(self, mean, var, schedule):
        self.mean = np.asarray(mean, dtype=np.float64)
        self.var = np.broadcast_to(np.asarray(var, dtype=np.float64), self.mean.shape)
        self.schedule = schedule
        self.dim = self.mean.size
        self._at = {}

    def _alpha_sigma2(self, t):
        # A generic schedule integrates b and a at every evaluation; the solvers and
        # the moment propagation ask for the same grid times over and over.
        t = float(t)
        if t not in self._at:
            self._at[t] = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        return self._at[t]

    def denoise(self, t, x):
        alpha, sigma2 = self._alpha_sigma2(t)
        gain = alpha * self.var / (alpha**2 * self.var + sigma2)
        return self.mean + gain * (np.asarray(x, dtype=np.float64) - alpha * self.mean)


def ratio_grids(schedule, T, delta, levels, ratio=3.0):
    """Grids from ``T`` to ``delta`` whose steps in ``lambda`` alternate ``h, ratio h``.

    Parameters
    ----------
    schedule : Schedule
    T, delta : float
    levels : sequence of int
        Even numbers of steps, one grid each.
    ratio : float
        Ratio of consecutive steps in ``lambda`` (and its inverse, alternately).

    Returns
    -------
    dict
        Steps -> ndarray of shape (steps + 1,): decreasing times, ``T`` first and
        ``delta`` last. ``lam_inv`` is called once for all of them (for a
        generic schedule each call runs a Newton iteration with quadratures).
    """
    lam_T, lam_d = float(schedule.lam(T)), float(schedule.lam(delta))
    lams = []
    for steps in levels:
        unit = (lam_d - lam_T) / (0.5 * steps * (1.0 + ratio))
        spacing = np.tile([unit, ratio * unit], steps // 2)
        lams.append(lam_T + np.concatenate([[0.0], np.cumsum(spacing)]))
    times = np.split(schedule.lam_inv(np.concatenate(lams)), np.cumsum([x.size for x in lams])[:-1])
    for t in times:
        t[0], t[-1] = T, delta
    return dict(zip(levels, times))


def nested_noise(times, z_fine, factor):
    """Standard normals of the coarse grid ``times[::factor]`` on the same Brownian path.

    Parameters
    ----------
    times : ndarray, shape (K + 1,)
        The fine grid.
    z_fine : ndarray, shape (K, n, d)
        Its standard normals (increment ``sqrt(h_i) z_i``).
    factor : int
        Fine steps per coarse step; divides ``K``.

    Returns
    -------
    ndarray, shape (K // factor, n, d)
    """
    h = -np.diff(times)
    dw = np.sqrt(h)[:, None, None] * z_fine
    coarse = dw.shape[0] // factor
    dw = dw.reshape(coarse, factor, *dw.shape[1:]).sum(axis=1)
    return dw / np.sqrt(h.reshape(coarse, factor).sum(axis=1))[:, None, None]


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)


class _ScalarMemo:
    """A schedule's ``alpha``, ``sigma2`` and ``a2`` with scalar calls memoised.

    ``theory.flows`` evaluates the schedule one time at a time; a generic
    schedule integrates ``b`` and ``a`` at each call, so repeated grid times
    are looked up instead. Array arguments go to the schedule unchanged.
    """

    def __init__(self, schedule):
        self.schedule, self._memo = schedule, {}

    def _get(self, name, t):
        if np.ndim(t):
            return getattr(self.schedule, name)(t)
        key = (name, float(t))
        if key not in self._memo:
            self._memo[key] = getattr(self.schedule, name)(t)
        return self._memo[key]

    def alpha(self, t):
        return self._get("alpha", t)

    def sigma2(self, t):
        return self._get("sigma2", t)

    def a2(self, t):
        return self._get("a2", t)


def exact_reverse_path(x_T, times, z, mean, var, schedule, xi):
    """Exact solution of the reverse SDE for Gaussian data on a given Brownian path.

    Parameters
    ----------
    x_T : ndarray, shape (n, d)
        States at ``times[0]``.
    times : ndarray, shape (K + 1,)
        Decreasing grid.
    z : ndarray, shape (K, n, d)
        The solver's standard normals: step ``i``'s increment is ``sqrt(h_i) z_i``.
    mean, var : ndarray, shape (d,)
        Data mean and variance per coordinate (``var = 0``: one data point).
    schedule : Schedule
        Supplies ``alpha``, ``sigma2`` and the diffusion ``a2`` of the problem.
    xi : ndarray, shape (K, n, d)
        Independent standard normals: the part of the path between the grid
        points that the increments do not determine.

    Returns
    -------
    ndarray, shape (n, d)
        ``Y`` at ``times[-1]``.
    """
    y = np.array(x_T, dtype=np.float64)
    schedule = _ScalarMemo(schedule)
    # Every quadrature node of every step, evaluated in one call per quantity.
    half = 0.5 * (times[:-1] - times[1:])
    nodes = (0.5 * (times[:-1] + times[1:]))[:, None] + half[:, None] * _GL_NODES
    alpha_n, sigma2_n = schedule.alpha(nodes.ravel()), schedule.sigma2(nodes.ravel())
    a_n = np.sqrt(schedule.a2(nodes.ravel())).reshape(nodes.shape)
    v_n = (alpha_n[:, None] ** 2 * var + sigma2_n[:, None]).reshape(*nodes.shape, -1)
    alpha_n = alpha_n.reshape(nodes.shape)
    for i in range(times.size - 1):
        t, s = float(times[i]), float(times[i + 1])
        h = t - s
        m, v = gaussian_reverse_transition(y, t, s, mean, var, schedule)
        # Cov(I, dW) = int_s^t A(s, r) a_r dr by Gauss-Legendre on [s, t].
        alpha_s, sigma2_s = float(schedule.alpha(s)), float(schedule.sigma2(s))
        gain = (alpha_n[i][:, None] / alpha_s) * (alpha_s**2 * var + sigma2_s) / v_n[i]
        cov = half[i] * (_GL_WEIGHTS * a_n[i]) @ gain
        rest = np.sqrt(np.maximum(v - cov**2 / h, 0.0))
        y = m + (cov / np.sqrt(h)) * z[i] + rest * xi[i]
    return y
