"""The order measurements: one function per kind of check (see :mod:`validation.orders`)."""

from __future__ import annotations

import warnings

import numpy as np

import numdiff as nd
from theory.flows import gaussian_marginal, gaussian_pf_flow
from theory.mixture import mixture_mean, mixture_second_moment

from .references import (
    MEAN,
    SCHEDULES,
    VAR,
    GaussianScore,
    exact_reverse_path,
    nested_noise,
    ratio_grids,
)


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
