"""Time grids: end points, monotonicity, the variable each is uniform in, nesting, validation."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numdiff as nd
from numdiff import grids

SCHEDULES = {
    "OU": nd.OU(),
    "VPLinear": nd.VPLinear(),
    "VPCosine": nd.VPCosine(),
    "VE": nd.VE(),
    "custom": nd.Schedule(b=lambda t: 0.3 + 0.4 * t, a=lambda t: 1.0 + 0.5 * np.sin(t)),
}


def _T(schedule):
    return min(2.0, schedule.t_max)


@pytest.mark.parametrize("name", list(grids.GRIDS))
@pytest.mark.parametrize("sched", list(SCHEDULES))
def test_grid_shape_ends_and_order(name, sched):
    schedule = SCHEDULES[sched]
    T = _T(schedule)
    times = grids.GRIDS[name](schedule, T, 1e-3, 12)
    assert times.shape == (13,) and times.dtype == np.float64
    assert times[0] == T and times[-1] == 1e-3
    assert (np.diff(times) < 0).all()


@pytest.mark.parametrize("sched", ["OU", "VPLinear", "custom"])
def test_each_grid_is_uniform_in_its_variable(sched):
    schedule, T, delta, k = SCHEDULES[sched], _T(SCHEDULES[sched]), 1e-3, 10
    checks = {
        "uniform_t": lambda t: t,
        "uniform_lambda": schedule.lam,
        "edm": lambda t: np.exp(-schedule.lam(t) / 7.0),  # (sigma / alpha)^(1/7)
        "geometric": np.log,
    }
    for name, u in checks.items():
        steps = np.diff(u(grids.GRIDS[name](schedule, T, delta, k)))
        np.testing.assert_allclose(steps, steps.mean(), rtol=1e-9, err_msg=name)


@pytest.mark.parametrize("name", list(grids.GRIDS))
def test_grids_are_nested(name):
    schedule = nd.VPLinear()
    coarse = grids.GRIDS[name](schedule, 1.0, 1e-3, 8)
    fine = grids.GRIDS[name](schedule, 1.0, 1e-3, 32)
    np.testing.assert_allclose(fine[::4], coarse, rtol=1e-12)


@given(
    T=st.floats(0.05, 5.0),
    frac=st.floats(1e-6, 0.9),
    steps=st.integers(1, 200),
    name=st.sampled_from(sorted(grids.GRIDS)),
)
def test_grid_property_any_horizon(T, frac, steps, name):
    delta = T * frac
    times = grids.GRIDS[name](nd.OU(), T, delta, steps)
    assert times.shape == (steps + 1,)
    assert times[0] == T and times[-1] == delta
    assert (np.diff(times) < 0).all()


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"delta": 0.0}, ValueError, "delta"),
        ({"delta": -1.0}, ValueError, "delta"),
        ({"delta": 1.0}, ValueError, "delta"),
        ({"delta": 2.0}, ValueError, "delta"),
        ({"T": 1.5}, ValueError, "T"),
        ({"steps": 0}, ValueError, "steps"),
        ({"steps": 2.5}, TypeError, "steps"),
        ({"T": "1"}, TypeError, "T"),
    ],
)
@pytest.mark.parametrize("name", list(grids.GRIDS))
def test_grid_validation(name, kwargs, exc, match):
    args = {"T": 1.0, "delta": 1e-3, "steps": 4} | kwargs
    with pytest.raises(exc, match=match):
        grids.GRIDS[name](nd.VPLinear(), **args)  # t_max = 1


def test_edm_rho_and_names_validated():
    with pytest.raises(ValueError, match="rho"):
        grids.edm(nd.OU(), 1.0, 0.1, 4, rho=0.0)
    with pytest.raises(ValueError, match="grid"):
        grids.get_grid("cosine")


def test_make_grid_accepts_a_checked_array():
    fine = grids.uniform_t(nd.OU(), 1.0, 0.1, 8)
    np.testing.assert_array_equal(grids.make_grid(nd.OU(), fine[::2], 1.0, 0.1, 4), fine[::2])
    with pytest.raises(ValueError, match="grid"):
        grids.make_grid(nd.OU(), fine[::2], 1.0, 0.1, 5)
    with pytest.raises(ValueError, match="grid"):
        grids.make_grid(nd.OU(), fine[::-1][::2], 1.0, 0.1, 4)
