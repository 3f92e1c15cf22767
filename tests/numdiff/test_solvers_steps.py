"""Solver registry, local orders of one step against the exact flow, stiffness warnings."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numdiff as nd
from numdiff.solvers import SOLVERS, Interval, get_solver
from theory.flows import gaussian_marginal, gaussian_pf_flow
from validation.orders import GaussianScore

MEAN, VAR = np.array([1.0, -0.5]), np.array([0.5, 2.0])


def test_registry_declares_process_and_orders():
    for (process, name), solver in SOLVERS.items():
        assert get_solver(name, process) is solver
        assert solver.name == name and solver.process == process
        if process == "ode":
            assert solver.ode_order in (1, 2)
        else:
            assert solver.sde_strong_order == 1.0 and solver.sde_weak_order in (1.0, 2.0)
    assert {k[1] for k in SOLVERS} == {"euler", "heun", "ddim", "dpmpp_2m", "exp_em"}


@pytest.mark.parametrize(
    ("name", "process", "match"),
    [("rk4", "ode", "solver"), ("euler", "pde", "process"), ("ddim", "sde", "not valid"),
     ("exp_em", "ode", "not valid"), (None, "sde", "solver")],
)
def test_registry_rejects_bad_names(name, process, match):
    with pytest.raises(ValueError, match=match):
        get_solver(name, process)


@pytest.mark.parametrize(("name", "local_order"), [("euler", 2), ("heun", 3), ("ddim", 2)])
def test_local_error_order_of_one_ode_step(name, local_order):
    # One step from the exact state at t: the error against the exact flow is
    # O(h^(p+1)); halving h divides it by 2^(p+1). Gaussian data, VP-linear schedule.
    schedule = nd.VPLinear()
    f = GaussianScore(MEAN, VAR, schedule)
    t = 0.6
    mean_t, var_t = gaussian_marginal(t, MEAN, VAR, schedule)
    x = mean_t + np.sqrt(var_t) * np.random.default_rng(0).standard_normal((8, 2))
    errors = []
    for h in (0.02, 0.01, 0.005):
        x_s, _ = SOLVERS[("ode", name)].step(f, Interval.between(schedule, t, t - h), x)
        errors.append(np.abs(x_s - gaussian_pf_flow(x, t, t - h, MEAN, VAR, schedule)).max())
    slopes = -np.diff(np.log2(errors))
    np.testing.assert_allclose(slopes, local_order, atol=0.15)


def test_dpmpp_2m_first_step_is_ddim_then_uses_history():
    schedule = nd.OU()
    f = GaussianScore(MEAN, VAR, schedule)
    x = np.random.default_rng(2).standard_normal((4, 2))
    iv1, iv2 = Interval.between(schedule, 1.0, 0.8), Interval.between(schedule, 0.8, 0.6)
    x1, state = SOLVERS[("ode", "dpmpp_2m")].step(f, iv1, x)
    np.testing.assert_array_equal(x1, SOLVERS[("ode", "ddim")].step(f, iv1, x)[0])
    x2, _ = SOLVERS[("ode", "dpmpp_2m")].step(f, iv2, x1, state=state)
    assert np.abs(x2 - SOLVERS[("ode", "ddim")].step(f, iv2, x1)[0]).max() > 1e-6


def _sample_warnings(**kwargs):
    f = nd.EmpiricalScore(np.array([[0.5, -0.5], [-1.0, 1.0]]), kwargs.pop("schedule", nd.OU()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = nd.sample(f, 8, rng=0, **kwargs)
    return r, [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_euler_maruyama_warns_once_beyond_its_stability_limit():
    # VP-linear at t = 1: b = 10, a^2 = 20, sigma^2 ~ 1, so h (a^2/sigma^2 - b) ~ 10 h > 2 at h = 0.45.
    _, caught = _sample_warnings(schedule=nd.VPLinear(), T=1.0, delta=0.1, steps=2,
                                 process="sde", solver="euler")
    assert len(caught) == 1
    assert "uniform_lambda" in str(caught[0].message) and "exp_em" in str(caught[0].message)
    _, caught = _sample_warnings(schedule=nd.VPLinear(), T=1.0, delta=0.1, steps=2,
                                 process="sde", solver="exp_em")
    assert not caught


@pytest.mark.parametrize(("h", "warns"), [(2.1, True), (1.9, False)])
def test_euler_criterion_is_h_times_rate_above_two(h, warns):
    # OU at t = 10: the SDE linear rate a^2/sigma^2 - b = 2/(1 - e^-20) - 1 = 1 + 4e-9.
    grid = np.concatenate([[10.0], np.linspace(10.0 - h, 1.0, 60)])
    _, caught = _sample_warnings(T=10.0, delta=1.0, steps=60, grid=grid, process="sde",
                                 solver="euler")
    assert bool(caught) is warns


def test_flagged_heun_run_really_amplifies():
    # One data point at the origin: the exact flow contracts by sigma_delta / sigma_T.
    # Two geometric steps from 1 to 1e-4 (ratio 100) are flagged, and blow the state up.
    f = nd.EmpiricalScore(np.zeros((1, 2)), nd.OU())
    x_T = np.ones((1, 2))
    kw = {"T": 1.0, "delta": 1e-4, "process": "ode", "solver": "heun", "x_T": x_T}
    with pytest.warns(RuntimeWarning, match="dpmpp_2m"):
        bad = nd.sample(f, 1, steps=2, grid="geometric", **kw)
    assert np.abs(bad.x).max() > 10.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        good = nd.sample(f, 1, steps=64, grid="uniform_lambda", **kw)
    exact = np.sqrt(-np.expm1(-2e-4) / -np.expm1(-2.0))
    np.testing.assert_allclose(good.x, exact, rtol=5e-2)


@given(
    T=st.floats(0.2, 5.0),
    frac=st.floats(1e-5, 0.5),
    steps=st.integers(1, 6),
    grid=st.sampled_from(["uniform_t", "uniform_lambda", "edm", "geometric"]),
    key=st.sampled_from([("ode", "ddim"), ("ode", "dpmpp_2m"), ("sde", "exp_em")]),
)
def test_exponential_solvers_never_warn(T, frac, steps, grid, key):
    process, solver = key
    r, caught = _sample_warnings(T=T, delta=T * frac, steps=steps, grid=grid,
                                 process=process, solver=solver)
    assert not caught and r.success
