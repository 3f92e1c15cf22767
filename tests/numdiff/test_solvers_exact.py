"""Exponential integrators are exact for one data point, on any schedule and grid.

Oracle: theory.flows (closed-form PF-ODE map and reverse-SDE transition of
Gaussian data, here with variance 0), written independently of numdiff.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numdiff as nd
from numdiff.solvers import SOLVERS, Interval
from theory.flows import gaussian_marginal, gaussian_pf_flow, gaussian_reverse_transition
from validation.orders import GaussianScore

SCHEDULES = {
    "OU": nd.OU(),
    "VPLinear": nd.VPLinear(),
    "VPCosine": nd.VPCosine(),
    "VE": nd.VE(),
    "custom": nd.Schedule(b=lambda t: 0.3 + 0.4 * t, a=lambda t: 1.0 + 0.5 * np.sin(t)),
}
POINT = np.array([0.7, -1.2, 2.5])
TOL = 1e-10


def _T(schedule):
    return min(2.0, schedule.t_max)


@pytest.mark.parametrize("grid", ["uniform_t", "uniform_lambda", "edm", "geometric"])
@pytest.mark.parametrize("solver", ["ddim", "dpmpp_2m"])
@pytest.mark.parametrize("sched", list(SCHEDULES))
def test_ode_exponential_solvers_reproduce_the_flow_for_one_point(sched, solver, grid):
    schedule = SCHEDULES[sched]
    T, delta = _T(schedule), 1e-3
    f = nd.EmpiricalScore(POINT[None, :], schedule)
    x_T = np.random.default_rng(0).standard_normal((16, 3)) * 3.0
    r = nd.sample(f, 16, T=T, delta=delta, steps=7, process="ode", solver=solver, grid=grid,
                  x_T=x_T)
    exact = gaussian_pf_flow(x_T, T, delta, POINT, 0.0, schedule)
    assert np.abs(r.x - exact).max() <= TOL * max(1.0, np.abs(exact).max())


@pytest.mark.parametrize("sched", list(SCHEDULES))
def test_exp_em_step_is_the_exact_gaussian_transition(sched):
    schedule = SCHEDULES[sched]
    f = nd.EmpiricalScore(POINT[None, :], schedule)
    rng = np.random.default_rng(1)
    x_t, z = rng.standard_normal((16, 3)), rng.standard_normal((16, 3))
    for t, s in [(_T(schedule), 0.3), (0.3, 0.29), (0.05, 1e-3)]:
        x_s, _ = SOLVERS[("sde", "exp_em")].step(f, Interval.between(schedule, t, s), x_t, z)
        mean, var = gaussian_reverse_transition(x_t, t, s, POINT, 0.0, schedule)
        assert np.abs(x_s - (mean + np.sqrt(var) * z)).max() <= TOL


@given(t=st.floats(0.01, 2.0), frac=st.floats(0.01, 0.99), seed=st.integers(0, 2**31))
def test_exp_em_transition_property(t, frac, seed):
    schedule = SCHEDULES["OU"]
    s = t * frac
    f = nd.EmpiricalScore(POINT[None, :], schedule)
    rng = np.random.default_rng(seed)
    x_t, z = 3.0 * rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    x_s, _ = SOLVERS[("sde", "exp_em")].step(f, Interval.between(schedule, t, s), x_t, z)
    mean, var = gaussian_reverse_transition(x_t, t, s, POINT, 0.0, schedule)
    assert np.abs(x_s - (mean + np.sqrt(var) * z)).max() <= TOL * 10


def test_exp_em_keeps_the_gaussian_mean_exactly():
    # The step is affine in x and D(t, alpha_t mu) = mu for Gaussian data, so from the
    # exact mean with z = 0 it follows the exact mean path alpha_t mu (no Monte Carlo).
    schedule = SCHEDULES["VPLinear"]
    var = np.array([0.5, 2.0, 0.1])
    f = GaussianScore(POINT, var, schedule)
    mean_T, _ = gaussian_marginal(1.0, POINT, var, schedule)
    r = nd.sample(f, 1, T=1.0, delta=1e-2, steps=9, process="sde", solver="exp_em",
                  x_T=mean_T[None, :], noise=np.zeros((9, 1, 3)))
    mean_d, _ = gaussian_marginal(1e-2, POINT, var, schedule)
    assert np.abs(r.x[0] - mean_d).max() <= TOL


def test_explicit_solvers_are_not_exact_for_one_point():
    # Guards the exactness tests against a vacuous oracle: Euler is visibly off.
    schedule = SCHEDULES["OU"]
    f = nd.EmpiricalScore(POINT[None, :], schedule)
    x_T = np.ones((2, 3))
    r = nd.sample(f, 2, T=2.0, delta=1e-3, steps=7, process="ode", solver="euler",
                  grid="uniform_lambda", x_T=x_T)
    assert np.abs(r.x - gaussian_pf_flow(x_T, 2.0, 1e-3, POINT, 0.0, schedule)).max() > 1e-3
