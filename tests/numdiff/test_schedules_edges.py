"""Schedules at the edges of the float range, and bad input named by argument.

Oracles: closed forms evaluated in 50-digit mpmath; the generic quadrature
:class:`numdiff.Schedule` given the same coefficients.
"""

import mpmath
import numpy as np
import pytest

import numdiff as nd

mpmath.mp.dps = 50


def word(name):
    return rf"\b{name}\b"


def test_ve_wide_range_sigma2_and_lam_are_finite_and_exact():
    ve = nd.VE(1e-10, 1e150)
    exact = mpmath.mpf(1e-10) ** 2 * mpmath.expm1(2 * mpmath.log(mpmath.mpf(1e150) / mpmath.mpf(1e-10)))
    assert abs(ve.sigma2(1.0) / float(exact) - 1) < 1e-13
    lam = ve.lam(1.0)
    assert np.isfinite(lam)
    assert abs(ve.lam_inv(lam) - 1.0) < 1e-13
    # Near t = 0 still no cancellation.
    t = 1e-12
    exact_small = mpmath.mpf(1e-10) ** 2 * mpmath.expm1(2 * t * mpmath.log(mpmath.mpf(1e160)))
    assert abs(ve.sigma2(t) / float(exact_small) - 1) < 1e-13


@pytest.mark.parametrize("lam", [-400.0, -30.0, 0.0, 30.0])
def test_variance_preserving_lam_inv_far_in_the_tail(lam):
    exact = float(0.5 * mpmath.log1p(mpmath.exp(-2 * mpmath.mpf(lam))))  # OU: t = mu
    assert abs(nd.OU().lam_inv(lam) / exact - 1) < 1e-14
    generic = nd.Schedule(lambda t: np.ones_like(t), lambda t: np.full_like(t, np.sqrt(2.0)))
    assert abs(generic.lam_inv(lam) / exact - 1) < 1e-10


def test_uniform_lambda_grid_from_a_large_horizon():
    grid = nd.grids.uniform_lambda(nd.OU(), 400.0, 1e-3, 10)
    assert grid[0] == pytest.approx(400.0, rel=1e-14)
    assert grid[-1] == pytest.approx(1e-3, rel=1e-12)
    assert np.all(np.diff(grid) < 0)


def test_lam_inv_of_an_unreachable_value_says_so():
    # a_t = e^{-t}, b = 0: sigma2 -> 1/2, so lam stays above log(sqrt(2)).
    bounded = nd.Schedule(lambda t: np.zeros_like(t), lambda t: np.exp(-t))
    with pytest.raises(ValueError, match=r"\blam\b.*not reached"):
        bounded.lam_inv(-5.0)


@pytest.mark.parametrize(
    "make, exc, name",
    [
        (lambda: nd.VPLinear("a"), TypeError, "beta_min"),
        (lambda: nd.VPLinear(None), TypeError, "beta_min"),
        (lambda: nd.VPLinear(0.1, 1 + 2j), TypeError, "beta_max"),
        (lambda: nd.VPLinear(True), TypeError, "beta_min"),
        (lambda: nd.VE("x"), TypeError, "sigma_min"),
        (lambda: nd.VPCosine(s=[0.1]), TypeError, "s"),
        (lambda: nd.Schedule(np.sin, np.cos, t_max="x"), TypeError, "t_max"),
        (lambda: nd.OU().alpha(0.5 + 1j), TypeError, "t"),
        (lambda: nd.OU().lam_inv(1j), TypeError, "lam"),
        (lambda: nd.OU().lam_inv("1"), TypeError, "lam"),
    ],
)
def test_bad_parameters(make, exc, name):
    with pytest.raises(exc, match=word(name)):
        make()


ONES = np.ones_like


@pytest.mark.parametrize(
    "b, a, exc, name",
    [
        (lambda t: ONES(t) + 1j, lambda t: ONES(t), TypeError, "b"),
        (lambda t: ONES(t), lambda t: np.full(t.shape, np.nan), ValueError, "a"),
        (lambda t: ONES(t), lambda t: np.ones(3), ValueError, "a"),
        (lambda t: np.full(t.shape, "x"), lambda t: ONES(t), TypeError, "b"),
        (lambda t: ONES(t), lambda t: 1e200 * ONES(t), ValueError, "a"),
        (lambda t: -1e3 * ONES(t), lambda t: ONES(t), ValueError, "b"),
    ],
)
def test_bad_coefficients_are_named(b, a, exc, name):
    sched = nd.Schedule(b, a)
    with pytest.raises(exc, match=word(name)):
        sched.alpha(0.9)
        sched.sigma2(0.9)


@pytest.mark.parametrize(
    "sched",
    [nd.OU(), nd.VPLinear(), nd.VPCosine(), nd.VE(),
     nd.Schedule(lambda t: 1 + np.sin(3 * t), lambda t: 0.5 + t)],
    ids=repr,
)
def test_alpha_sigma2_equals_the_separate_calls_bit_for_bit(sched):
    t = np.array([1e-12, 1e-3, 0.3, 0.9])
    alpha, sigma2 = sched.alpha_sigma2(t)
    np.testing.assert_array_equal(alpha, sched.alpha(t))
    np.testing.assert_array_equal(sigma2, sched.sigma2(t))


def test_alpha_sigma2_names_an_overflowing_coefficient():
    sched = nd.Schedule(lambda t: -1e3 * ONES(t), lambda t: ONES(t))
    with pytest.raises(ValueError, match=word("b")):
        sched.alpha_sigma2(0.9)
