"""Time grids: end points, monotonicity, the variable each is uniform in, nesting, validation."""

import re

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
    ("kwargs", "exc", "name"),
    [
        ({"delta": 0.0}, ValueError, "delta"),
        ({"delta": -1.0}, ValueError, "delta"),
        ({"delta": 1.0}, ValueError, "delta"),
        ({"delta": 2.0}, ValueError, "delta"),
        ({"delta": np.nan}, ValueError, "delta"),
        ({"delta": 1e-3 + 0j}, TypeError, "delta"),
        ({"delta": False}, TypeError, "delta"),
        ({"T": 1.5}, ValueError, "T"),
        ({"T": np.nan}, ValueError, "T"),
        ({"T": np.inf}, ValueError, "T"),
        ({"T": 1.0 + 0j}, TypeError, "T"),
        ({"T": np.complex128(0.5)}, TypeError, "T"),
        ({"T": True}, TypeError, "T"),
        ({"T": "1"}, TypeError, "T"),
        ({"steps": 0}, ValueError, "steps"),
        ({"steps": 2.5}, TypeError, "steps"),
        ({"steps": True}, TypeError, "steps"),
        ({"steps": 4 + 0j}, TypeError, "steps"),
    ],
)
@pytest.mark.parametrize("name_", list(grids.GRIDS))
def test_grid_validation(name_, kwargs, exc, name):
    # The argument's name as a word: "t" alone would also match "must".
    args = {"T": 1.0, "delta": 1e-3, "steps": 4} | kwargs
    with pytest.raises(exc, match=rf"\b{name}\b"):
        grids.GRIDS[name_](nd.VPLinear(), **args)  # t_max = 1


@pytest.mark.parametrize(("rho", "exc"), [(0.0, ValueError), (np.nan, ValueError),
                                          (np.inf, ValueError), (-1.0, ValueError),
                                          (7 + 0j, TypeError), (True, TypeError),
                                          ("7", TypeError)])
def test_edm_rho_validated(rho, exc):
    with pytest.raises(exc, match=r"\brho\b"):
        grids.edm(nd.OU(), 1.0, 0.1, 4, rho=rho)


def test_grid_names_validated():
    with pytest.raises(ValueError, match=r"\bgrid\b"):
        grids.get_grid("cosine")


def test_make_grid_accepts_a_checked_array():
    fine = grids.uniform_t(nd.OU(), 1.0, 0.1, 8)
    np.testing.assert_array_equal(grids.make_grid(nd.OU(), fine[::2], 1.0, 0.1, 4), fine[::2])
    for bad, exc in [(fine[::2][:-1], ValueError), (fine[::-1][::2], ValueError),
                     (fine[::2] + 0j, TypeError), (np.where(fine == 0.55, np.nan, fine), ValueError),
                     (["1", "0.5", "0.1"], TypeError), (np.array([True, False]), TypeError)]:
        steps = max(1, len(bad) - 1)
        with pytest.raises(exc, match=r"\bgrid\b"):
            grids.make_grid(nd.OU(), bad, 1.0, 0.1, steps)


@pytest.mark.parametrize("name", ["uniform_lambda", "edm"])
def test_far_horizon_blames_T_not_steps(name):
    # OU at T = 400: lambda_T = -400; an OU().lam_inv that overflows there
    # (exp(800)) must not be reported as "steps: the grid is not strictly
    # decreasing". Either the grid is right, or the error names T.
    try:
        times = grids.GRIDS[name](nd.OU(), 400.0, 1e-3, 10)
    except ValueError as err:
        assert re.search(r"\bT\b", str(err)) and "steps" not in str(err)
    else:
        assert times[0] == 400.0 and times[-1] == 1e-3 and (np.diff(times) < 0).all()
        assert np.isfinite(times).all()


class _BrokenInverse(type(nd.OU())):
    """OU whose lam_inv fails beyond ``|lambda| > 50``: returns inf, or raises."""

    def __init__(self, mode):
        super().__init__()
        self.mode = mode

    def lam_inv(self, lam):
        lam = np.asarray(lam, dtype=np.float64)
        if (np.abs(lam) > 50).any():
            if self.mode == "raise":
                raise ValueError("lam is out of range")
            return np.where(np.abs(lam) > 50, np.inf, super().lam_inv(np.clip(lam, -50, 50)))
        return super().lam_inv(lam)


@pytest.mark.parametrize("mode", ["inf", "raise"])
@pytest.mark.parametrize("name", ["uniform_lambda", "edm"])
def test_unrepresentable_lambda_names_the_end_that_causes_it(name, mode):
    schedule = _BrokenInverse(mode)
    with pytest.raises(ValueError, match=r"^T = 60\.0 .*lam_inv") as err:
        grids.GRIDS[name](schedule, 60.0, 1e-3, 10)  # lambda_T = -60
    assert "steps" not in str(err.value)
    with pytest.raises(ValueError, match=r"^delta = 1e-50 .*lam_inv"):
        grids.GRIDS[name](schedule, 1.0, 1e-50, 10)  # lambda_delta = 57
    assert (np.diff(grids.GRIDS[name](schedule, 40.0, 1e-3, 10)) < 0).all()  # inside: fine


def test_non_finite_lambda_at_an_end_names_it():
    # A schedule whose lambda underflows to -inf beyond t = 1.5 (as sigma2 overflowing would).
    class Flat(type(nd.OU())):
        def lam(self, t):
            return np.where(np.asarray(t) > 1.5, -np.inf, super().lam(t))

    with pytest.raises(ValueError, match=r"^T = 2\.0: lambda"):
        grids.uniform_lambda(Flat(), 2.0, 1e-3, 4)
