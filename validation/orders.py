"""Measured convergence orders of numdiff's solvers.

Every order is a fitted log-log slope of an error against the number of steps
on nested grids, compared with the order the solver declares
(``numdiff.solvers``), inside a stated band:

* **ODE** (``check = "ode N=1"``, ``"ode gauss"``): the probability-flow ODE
  against the closed-form flow of ``theory.flows.gaussian_pf_flow``, for one
  data point (the real :class:`numdiff.EmpiricalScore` with ``N = 1``) and for
  Gaussian data ``N(mu, diag s^2)`` (:class:`GaussianScore`). The exponential
  solvers are exact for ``N = 1`` (tests check that to 1e-10), so they are
  measured on Gaussian data only. Grid uniform in ``lambda``, ``delta = 1e-3``:
  on it the error is in its asymptotic regime from about 32 steps, whereas a
  grid uniform in ``t`` needs ``h << delta`` first (the ``1 / t`` stiffness).
  Error: max over 32 starting points. Band +-0.25.
* **ODE, varying step ratio** (``"ode gauss r=3"``): the exponential solvers
  on Gaussian data against the closed-form flow, on a grid whose steps in
  ``lambda`` alternate between ``h`` and ``3 h``. A uniform-``lambda`` grid has
  step ratio 1, where DPM-Solver++(2M)'s history weight is never exercised: a
  weight that ignores the ratio (``1/2`` for ``h / (2 h_prev)``) passes there
  and drops to order 1 here. (Swapping ``h / h_prev`` for its inverse stays
  second order on every grid -- the leading local errors telescope -- and is
  caught by the recursion check of ``validation.studies.exact_reference``.)
  Band +-0.25.
* **SDE strong, exact reference** (``"strong exact N=1"``, ``"strong exact
  gauss"``): one data point and Gaussian data, 256 paths, against the *exact*
  solution of the (linear) reverse SDE on the same Brownian path. Per step,
  ``Y_s = m(Y_t) + I`` with ``m`` and ``Var I`` the exact transition
  (``theory.flows.gaussian_reverse_transition``); ``I = int A(s, r) a_r dW_r``
  (``A(s, r) = alpha_r V_s / (alpha_s V_r)``, ``V = alpha^2 var + sigma^2``)
  is drawn jointly with the step's increment ``dW = sqrt(h) z``: its
  regression ``(int A a dr / h) dW`` (Gauss-Legendre, 16 nodes) plus an
  independent normal with the remaining variance. Unlike the self-referenced
  check below, a scheme converging to the wrong law fails it. Band +-0.3.
* **SDE strong** (``"strong"``): a finite dataset (``N = 5``, ``d = 2``), 128
  paths from fixed starting points, against the same solver on a geometric
  grid 16 times finer (8 in the quick run) driven by the same Brownian path
  (coarse grids are ``fine[::m]``, their increments sums of the fine ones). Error:
  root-mean-square distance. Band +-0.3. ``delta = 0.25``: at ``delta = 0.1``
  the few paths that end near the boundary between two data points' basins
  (where the score's Lipschitz constant ``~ alpha^2 |x_j - x_k|^2 / sigma^4``
  is largest) are still pre-asymptotic at 128 steps and dominate the RMS,
  while the median path already converges at order 1.
* **SDE weak, Monte Carlo** (``"weak E[X]"``, ``"weak E|X|^2"``):
  Euler-Maruyama started from the exact ``p_T`` (``init="exact"``) on a finite
  dataset; ``E[u . X]`` (``u`` the unit vector along the exact mean) and
  ``E|X|^2`` at ``delta`` against the exact mixture ``p_delta``
  (``theory.mixture``). Only levels whose error exceeds 3 Monte Carlo standard
  errors enter the fit. Band +-0.3.
* **SDE weak, exact moments** (``"weak mean"``, ``"weak var"``, Gaussian data):
  for Gaussian data every SDE step is affine in ``(x, z)``, so the mean and
  variance of the numerical solution propagate exactly, without Monte Carlo
  noise; compared with ``theory.flows.gaussian_marginal`` at ``delta``.
  ``exp_em`` reproduces the mean exactly (no order to fit; tests check it).
  Band +-0.25.

``python -m validation.orders [--quick] [--plot PATH]`` prints the table.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import numpy as np

import numdiff as nd
from theory.flows import gaussian_marginal, gaussian_pf_flow, gaussian_reverse_transition
from theory.mixture import mixture_mean, mixture_second_moment

__all__ = [
    "GaussianScore", "exact_reverse_path", "fit_order", "format_table", "measure_orders",
    "plot_orders", "ratio_grids",
]

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


def fit_order(steps, errors):
    """Least-squares slope of ``-log(error)`` against ``log(steps)``."""
    return float(-np.polyfit(np.log(steps), np.log(errors), 1)[0])


def _row(solver, process, schedule, check, predicted, steps, errors, band, n_fit, extra=None):
    steps, errors = np.asarray(steps), np.asarray(errors)
    measured = fit_order(steps[-n_fit:], errors[-n_fit:])
    row = {
        "solver": solver, "process": process, "schedule": schedule, "check": check,
        "predicted": float(predicted), "measured": measured, "band": band,
        "passed": bool(abs(measured - predicted) <= band),
        "steps": steps.tolist(), "errors": errors.tolist(),
    }
    row.update(extra or {})
    return row


def _levels(quick, lo, hi_quick, hi_full):
    return [2**k for k in range(lo, (hi_quick if quick else hi_full) + 1)]


def ode_orders(quick):
    """ODE orders against the closed-form flow (N = 1 and Gaussian data)."""
    rows, delta, levels = [], 1e-3, _levels(quick, 4, 7, 10)
    n_fit = 3 if quick else 4
    x_rng = np.random.default_rng(0)
    for sname, (factory, T) in SCHEDULES.items():
        schedule = factory()
        fine = nd.grids.uniform_lambda(schedule, T, delta, levels[-1])
        for check, var in (("ode N=1", 0.0), ("ode gauss", VAR)):
            if check == "ode N=1":
                model = nd.EmpiricalScore(MEAN[None, :], schedule)
            else:
                model = GaussianScore(MEAN, var, schedule)
            mean_T, var_T = gaussian_marginal(T, MEAN, var, schedule)
            x_T = mean_T + np.sqrt(var_T) * x_rng.standard_normal((32, MEAN.size))
            exact = gaussian_pf_flow(x_T, T, delta, MEAN, var, schedule)
            for name in ("euler", "heun", "ddim", "dpmpp_2m"):
                solver = nd.solvers.SOLVERS[("ode", name)]
                if solver.exponential and check == "ode N=1":
                    continue  # exact: checked to 1e-10 in the tests, no order to fit
                errors = [
                    np.abs(
                        nd.sample(model, 32, T=T, delta=delta, steps=k, process="ode",
                                  solver=name, grid=fine[:: levels[-1] // k], x_T=x_T).x - exact
                    ).max()
                    for k in levels
                ]
                rows.append(_row(name, "ode", sname, check, solver.ode_order, levels, errors,
                                 0.25, n_fit))
    return rows


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


def ode_orders_ratio(quick):
    """Exponential ODE solvers on Gaussian data on grids with step ratio 3 in lambda."""
    rows, delta, levels = [], 1e-3, _levels(quick, 4, 7, 9)
    n_fit = 3 if quick else 4
    x_rng = np.random.default_rng(3)
    for sname, (factory, T) in SCHEDULES.items():
        schedule = factory()
        model = GaussianScore(MEAN, VAR, schedule)
        mean_T, var_T = gaussian_marginal(T, MEAN, VAR, schedule)
        x_T = mean_T + np.sqrt(var_T) * x_rng.standard_normal((32, MEAN.size))
        exact = gaussian_pf_flow(x_T, T, delta, MEAN, VAR, schedule)
        grids = ratio_grids(schedule, T, delta, levels)
        for name in ("ddim", "dpmpp_2m"):
            solver = nd.solvers.SOLVERS[("ode", name)]
            errors = [
                np.abs(nd.sample(model, 32, T=T, delta=delta, steps=k, process="ode", solver=name,
                                 grid=grids[k], x_T=x_T).x - exact).max()
                for k in levels
            ]
            rows.append(_row(name, "ode", sname, "ode gauss r=3", solver.ode_order, levels,
                             errors, 0.25, n_fit))
    return rows


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


def strong_orders_exact(quick):
    """Strong orders of the SDE solvers against the exact solution on the same path."""
    rows, n, delta = [], 256, 1e-2
    # From 16 steps: at 8, Heun on VPLinear is still far from its asymptotic regime.
    levels = _levels(quick, 4, 7, 8)
    n_fit = 3 if quick else 4
    rng = np.random.default_rng(4)
    for sname, (factory, T) in SCHEDULES.items():
        schedule = factory()
        grids = ratio_grids(schedule, T, delta, levels, ratio=1.0)  # uniform in lambda
        for check, var in (("strong exact N=1", np.zeros(MEAN.size)), ("strong exact gauss", VAR)):
            if check == "strong exact N=1":
                model = nd.EmpiricalScore(MEAN[None, :], schedule)
            else:
                model = GaussianScore(MEAN, var, schedule)
            mean_T, var_T = gaussian_marginal(T, MEAN, var, schedule)
            errors = {name: [] for name in ("euler", "heun", "exp_em")}
            for k in levels:
                grid = grids[k]
                x_T = mean_T + np.sqrt(var_T) * rng.standard_normal((n, MEAN.size))
                z, xi = rng.standard_normal((2, k, n, MEAN.size))
                exact = exact_reverse_path(x_T, grid, z, MEAN, var, schedule, xi)
                for name, errs in errors.items():
                    x = nd.sample(model, n, T=T, delta=delta, steps=k, process="sde",
                                  solver=name, grid=grid, x_T=x_T, noise=z).x
                    errs.append(np.sqrt(np.mean(np.sum((x - exact) ** 2, axis=1))))
            for name, errs in errors.items():
                solver = nd.solvers.SOLVERS[("sde", name)]
                rows.append(_row(name, "sde", sname, check, solver.sde_strong_order, levels,
                                 errs, 0.3, n_fit))
    return rows


def strong_orders(quick):
    """Strong orders of the SDE solvers against a finer solution on the same path."""
    rows, n, delta = [], 128, 0.25
    ref_level, top = (9, 6) if quick else (12, 8)
    levels = [2**k for k in range(3, top + 1)]
    n_fit = 3 if quick else 4
    rng = np.random.default_rng(1)
    data = rng.standard_normal((5, 2))
    for sname, (factory, T) in SCHEDULES.items():
        schedule = factory()
        model = nd.EmpiricalScore(data, schedule)
        x_T = rng.standard_normal((n, 2))
        fine = nd.grids.geometric(schedule, T, delta, 2**ref_level)
        z_fine = rng.standard_normal((2**ref_level, n, 2))
        for name in ("euler", "heun", "exp_em"):
            solver = nd.solvers.SOLVERS[("sde", name)]
            kw = {"T": T, "delta": delta, "process": "sde", "solver": name, "x_T": x_T}
            ref = nd.sample(model, n, steps=2**ref_level, grid=fine, noise=z_fine, **kw).x
            errors = []
            for k in levels:
                factor = 2**ref_level // k
                z = nested_noise(fine, z_fine, factor)
                x = nd.sample(model, n, steps=k, grid=fine[::factor], noise=z, **kw).x
                errors.append(np.sqrt(np.mean(np.sum((x - ref) ** 2, axis=1))))
            rows.append(_row(name, "sde", sname, "strong", solver.sde_strong_order, levels,
                             errors, 0.3, n_fit))
    return rows


def weak_orders_mc(quick):
    """Weak order of Euler-Maruyama on a finite dataset, against the exact mixture."""
    # The errors are 10 to 100 Monte Carlo s.e. at 200000 paths; 100000 keeps every
    # level above the 3 s.e. floor at half the cost.
    n, dim, n_data = (40_000, 16, 8) if quick else (100_000, 32, 16)
    levels = [8, 16, 32] if quick else [8, 16, 32, 64]
    T, delta = 2.0, 0.2
    schedule = nd.OU()
    data = np.random.default_rng(2).standard_normal((n_data, dim)) + 1.0
    model = nd.EmpiricalScore(data, schedule)
    alpha, sigma2 = float(schedule.alpha(delta)), float(schedule.sigma2(delta))
    mean, second = mixture_mean(data, alpha), mixture_second_moment(data, alpha, sigma2)
    u = mean / np.linalg.norm(mean)
    err = {"weak E[X]": [], "weak E|X|^2": []}
    se = {"weak E[X]": [], "weak E|X|^2": []}
    for k in levels:
        x = nd.sample(model, n, T=T, delta=delta, steps=k, process="sde", solver="euler",
                      init="exact", rng=1000 + k).x
        for check, values, exact in (("weak E[X]", x @ u, u @ mean),
                                     ("weak E|X|^2", np.sum(x * x, axis=1), second)):
            err[check].append(abs(values.mean() - exact))
            se[check].append(values.std() / np.sqrt(n))
    rows = []
    for check, values in err.items():
        e, s = np.array(values), np.array(se[check])
        keep = e > 3.0 * s
        steps = np.array(levels)[keep]
        row = _row("euler", "sde", "OU", check, 1.0, steps, e[keep], 0.3, len(steps),
                   {"standard_errors": s[keep].tolist(), "n_paths": n})
        if keep.sum() < 3:
            row["passed"] = False  # too few levels above the noise to fit an order
        rows.append(row)
    return rows


def _affine_parts(solver, model, iv, dim):
    """``x_s = A x + c + B z`` per coordinate, for a step that is affine in ``(x, z)``."""
    zero, one = np.zeros((1, dim)), np.ones((1, dim))
    c = solver.step(model, iv, zero, zero)[0][0]
    gain = solver.step(model, iv, one, zero)[0][0] - c
    return gain, c, solver.step(model, iv, zero, one)[0][0] - c


def weak_orders_gaussian(quick):
    """Weak orders of all SDE solvers on Gaussian data, by exact moment propagation."""
    rows, delta, levels = [], 1e-2, _levels(quick, 4, 7, 10)
    n_fit = 3 if quick else 4
    for sname, (factory, T) in SCHEDULES.items():
        schedule = factory()
        model = GaussianScore(MEAN, VAR, schedule)
        mean_T, var_T = gaussian_marginal(T, MEAN, VAR, schedule)
        mean_d, var_d = gaussian_marginal(delta, MEAN, VAR, schedule)
        fine = nd.grids.uniform_lambda(schedule, T, delta, levels[-1])
        for name in ("euler", "heun", "exp_em"):
            solver = nd.solvers.SOLVERS[("sde", name)]
            err_m, err_v = [], []
            for k in levels:
                m, v = mean_T.copy(), var_T.copy()
                for iv in nd.solvers.intervals(schedule, fine[:: levels[-1] // k]):
                    a, c, b = _affine_parts(solver, model, iv, MEAN.size)
                    m, v = a * m + c, a * a * v + b * b
                err_m.append(np.abs(m - mean_d).max())
                err_v.append(np.abs(v - var_d).max())
            if name != "exp_em":
                rows.append(_row(name, "sde", sname, "weak mean", solver.sde_weak_order, levels,
                                 err_m, 0.25, n_fit))
            rows.append(_row(name, "sde", sname, "weak var", solver.sde_weak_order, levels,
                             err_v, 0.25, n_fit))
    return rows


def measure_orders(quick=True):
    """Measure every order; see the module docstring for the setups.

    Parameters
    ----------
    quick : bool
        A subset with fewer levels and samples (seconds) instead of the full
        study (a few minutes).

    Returns
    -------
    list of dict
        Keys ``solver, process, schedule, check, predicted, measured, band,
        passed, steps, errors`` (and ``standard_errors, n_paths`` for the Monte
        Carlo rows).
    """
    with warnings.catch_warnings():
        # Coarse levels of explicit solvers may be flagged as stiff; that is
        # part of what the errors show.
        warnings.simplefilter("ignore", RuntimeWarning)
        return (
            ode_orders(quick) + ode_orders_ratio(quick) + strong_orders(quick)
            + strong_orders_exact(quick) + weak_orders_mc(quick) + weak_orders_gaussian(quick)
        )


HEADER = ("solver", "process", "schedule", "check", "predicted", "measured", "band", "pass")


def format_table(rows):
    """Plain-text table of the rows (columns of :data:`HEADER`)."""
    cells = [
        (r["solver"], r["process"], r["schedule"], r["check"], f"{r['predicted']:g}",
         f"{r['measured']:.3f}", f"+-{r['band']:g}", "PASS" if r["passed"] else "FAIL")
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(HEADER)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(cell, widths)) for cell in cells]
    return "\n".join(lines)


def plot_orders(rows, path):
    """Log-log error-versus-steps figure, one panel per check, saved to ``path``.

    Parameters
    ----------
    rows : list of dict
        As returned by :func:`measure_orders`.
    path : str or Path
        Output file (format from the suffix).
    """
    from matplotlib.figure import Figure

    checks = list(dict.fromkeys(r["check"] for r in rows))
    ncols = min(3, len(checks))
    nrows = -(-len(checks) // ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.6 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, check in zip(axes, checks):
        for r in (r for r in rows if r["check"] == check):
            steps, errors = np.array(r["steps"]), np.array(r["errors"])
            label = f"{r['solver']}/{r['schedule']} p={r['measured']:.2f}"
            ax.loglog(steps, errors, "o-", ms=3, label=label)
            if "standard_errors" in r:  # Monte Carlo rows: 3 standard errors, the noise floor
                ax.loglog(steps, 3.0 * np.array(r["standard_errors"]), ":", color="0.5")
        ax.set_title(check)
        ax.set_xlabel("steps")
        ax.set_ylabel("error")
        ax.legend(fontsize=6)
    for ax in axes[len(checks):]:
        ax.set_visible(False)
    fig.savefig(path, dpi=120)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m validation.orders",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the quick subset of the tests")
    parser.add_argument("--plot", metavar="PATH", help="also write the log-log figure")
    args = parser.parse_args(argv)
    rows = measure_orders(quick=args.quick)
    print(format_table(rows))
    if args.plot:
        plot_orders(rows, args.plot)
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
