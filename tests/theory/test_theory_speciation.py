"""Tests of theory.speciation: the speciation time of Biroli et al. (2024)."""

import mpmath as mp
import numpy as np
import pytest

from theory.speciation import (
    speciation_eigenvalue,
    speciation_snr,
    speciation_time,
    speciation_time_ou,
)


class OUSchedule:
    t_max = np.inf

    def alpha(self, t):
        return np.exp(-np.asarray(t, dtype=float))

    def sigma2(self, t):
        return -np.expm1(-2.0 * np.asarray(t, dtype=float))


class VPLinearSchedule:
    """alpha^2 = exp(-(b0 t + (b1 - b0) t^2 / 2)), sigma^2 = 1 - alpha^2 on [0, 1]."""

    t_max = 1.0

    def __init__(self, b0=0.1, b1=20.0):
        self.b0, self.b1 = b0, b1

    def _integral(self, t):
        t = np.asarray(t, dtype=float)
        return self.b0 * t + 0.5 * (self.b1 - self.b0) * t * t

    def alpha(self, t):
        return np.exp(-0.5 * self._integral(t))

    def sigma2(self, t):
        return -np.expm1(-self._integral(t))


class VESchedule:
    t_max = np.inf

    def alpha(self, t):
        return np.ones_like(np.asarray(t, dtype=float))

    def sigma2(self, t):
        return np.asarray(t, dtype=float) ** 2


def test_eigenvalue_against_a_dense_eigensolver():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((300, 12)) @ rng.standard_normal((12, 12)) + 3.0
    dense = np.linalg.eigvalsh(np.cov(data, rowvar=False, ddof=0))[-1]
    assert speciation_eigenvalue(data) == pytest.approx(dense, rel=1e-12)


def test_eigenvalue_of_two_symmetric_points_is_the_squared_half_distance():
    m = np.array([1.5, -2.0, 0.5])
    assert speciation_eigenvalue(np.stack([m, -m]) + 7.0) == pytest.approx(m @ m, rel=1e-14)


@pytest.mark.parametrize("eigenvalue", [0.3, 1.0, 17.0, 1e6])
def test_ou_root_is_half_log_one_plus_lambda(eigenvalue):
    t_s = speciation_time(eigenvalue, OUSchedule())
    assert t_s == pytest.approx(0.5 * np.log1p(eigenvalue), rel=1e-13)
    # The paper's large-Lambda formula differs by (1/2) log(1 + 1/Lambda) <= 1/(2 Lambda).
    gap = t_s - speciation_time_ou(eigenvalue)
    assert 0 < gap <= 0.5 / eigenvalue * (1 + 1e-12)


def test_vp_linear_root_against_its_quadratic():
    sched = VPLinearSchedule()
    eigenvalue = 40.0
    # alpha^2 (1 + Lambda) = 1  <=>  b0 t + (b1 - b0) t^2 / 2 = log(1 + Lambda).
    a, b, c = 0.5 * (sched.b1 - sched.b0), sched.b0, -np.log1p(eigenvalue)
    expected = (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
    assert speciation_time(eigenvalue, sched) == pytest.approx(expected, rel=1e-12)


def test_ve_root_is_the_square_root_of_lambda():
    assert speciation_time(9.0, VESchedule()) == pytest.approx(3.0, rel=1e-13)
    assert speciation_snr(9.0) == pytest.approx(1 / 9.0, rel=1e-15)


def test_no_root_on_a_bounded_domain_returns_inf():
    # VP-linear at t = 1 has SNR ~ exp(-10): above 1/Lambda only for Lambda > e^10.
    assert speciation_time(1e6, VPLinearSchedule()) == np.inf


def test_the_criterion_is_the_sign_change_of_the_curvature_at_the_centre():
    # Two points +-m: log p_t(s e) along e = m/|m| at s = 0 has curvature
    # -1/sigma^2 + alpha^2 |m|^2 / sigma^4 exactly; find its zero in t from the
    # density itself (50-digit mpmath, numerical second derivative, root finder),
    # independently of the closed form used by speciation_time.
    mp.mp.dps = 50
    m = [mp.mpf("1.5"), mp.mpf("-2.0"), mp.mpf("0.5")]
    norm = mp.sqrt(sum(v * v for v in m))
    unit = [v / norm for v in m]

    def log_density(s, t):
        alpha, sigma2 = mp.e ** (-t), -mp.expm1(-2 * t)
        x = [s * u for u in unit]
        parts = [sum((xi - sign * alpha * mi) ** 2 for xi, mi in zip(x, m)) for sign in (1, -1)]
        return mp.log((mp.e ** (-parts[0] / (2 * sigma2)) + mp.e ** (-parts[1] / (2 * sigma2))) / 2)

    def curvature(t):
        return mp.diff(lambda s: log_density(s, t), 0, 2)

    t_root = mp.findroot(curvature, mp.mpf("0.9"))
    predicted = speciation_time(speciation_eigenvalue(np.array([[1.5, -2.0, 0.5],
                                                                [-1.5, 2.0, -0.5]])), OUSchedule())
    assert predicted == pytest.approx(float(t_root), rel=1e-12)
    # Before t_S (smaller t) the centre is a saddle between the two classes.
    assert curvature(t_root - mp.mpf("0.05")) > 0 > curvature(t_root + mp.mpf("0.05"))


@pytest.mark.parametrize("bad, error", [(0.0, ValueError), (-1.0, ValueError),
                                        (np.nan, ValueError), ("x", TypeError)])
def test_eigenvalue_argument_is_checked(bad, error):
    with pytest.raises(error, match="eigenvalue"):
        speciation_time(bad, OUSchedule())
    with pytest.raises(error, match="eigenvalue"):
        speciation_time_ou(bad)


def test_other_arguments_are_checked():
    with pytest.raises(TypeError, match="schedule"):
        speciation_time(2.0, object())
    with pytest.raises(ValueError, match="at least 2"):
        speciation_eigenvalue(np.ones((1, 3)))
    with pytest.raises(ValueError, match="data"):
        speciation_eigenvalue(np.ones(3))
