"""Tests of theory.horizons: Theorem 3 horizons and the KL / TV prior bounds."""

import mpmath as mp
import numpy as np
import pytest
from scipy.integrate import quad

from theory.horizons import kl_prior_bound, theorem3_delta, theorem3_T, tv_prior_bound
from theory.mixture import mixture_logpdf
from theory.tv import tv_quadrature_1d


def test_horizons_values():
    assert theorem3_T(0.1, 16) == pytest.approx(np.log(160.0), rel=1e-15)
    assert theorem3_delta(0.1, 16) == pytest.approx(0.01 / 16, rel=1e-15)
    eps = np.array([0.5, 0.1, 0.01])
    np.testing.assert_allclose(theorem3_T(eps, 2), np.log(2 / eps), rtol=1e-15)
    np.testing.assert_allclose(
        theorem3_delta(0.1, np.array([1, 2, 16])), 0.01 / np.array([1, 2, 16])
    )


@pytest.mark.parametrize(("eps", "d"), [(0.0, 2), (-0.1, 2), (0.1, 0), (0.1, 1.5)])
def test_horizons_reject_bad_input(eps, d):
    name = "eps" if eps <= 0 else "d"
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        theorem3_T(eps, d)
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        theorem3_delta(eps, d)


@pytest.mark.parametrize("alpha", [0.375, 0.0])
@pytest.mark.parametrize(
    "sigma2", [1e-6, 0.3, 0.9, 0.95, 1 - 1e-3, 1 - 2**-30, 1.0, 1 + 1e-4, 1.08, 4.0]
)
def test_kl_bound_single_point_against_mpmath(sigma2, alpha):
    # N = 1: the bound is the exact Gaussian KL. mpmath at 50 digits on the exact
    # double inputs. With alpha = 0 only d (sigma2 - 1 - log sigma2) / 2 remains,
    # which the closed form would get wrong near sigma2 = 1 (cancellation).
    data = np.array([[0.3, -1.25, 2.0]])
    with mp.workdps(50):
        s = mp.mpf(sigma2)
        sq = mp.fsum(mp.mpf(v) ** 2 for v in data[0])
        ref = (3 * (s - 1 - mp.log(s)) + mp.mpf(alpha) ** 2 * sq) / 2
    assert abs(kl_prior_bound(data, alpha, sigma2) - float(ref)) <= 8e-16 * float(ref)


def _kl_1d(data, alpha, sigma2):
    """KL(p || N(0, 1)) in 1-D by quadrature, an independent reference."""

    def integrand(v):
        lp = mixture_logpdf(np.array([[v]]), data, alpha, sigma2)[0]
        return np.exp(lp) * (lp + 0.5 * v * v + 0.5 * np.log(2 * np.pi))

    pts = list(alpha * data[:, 0])
    value, _ = quad(integrand, -12.0, 12.0, points=pts, epsabs=1e-13, epsrel=1e-12, limit=400)
    return value


@pytest.mark.parametrize(
    ("alpha", "sigma2"), [(0.9, 0.19), (0.3, 0.91), (0.05, 0.9975), (1.0, 0.5)]
)
def test_bounds_dominate_true_kl_and_tv_in_1d(alpha, sigma2):
    data = np.array([[-1.0], [0.5], [2.0], [2.2]])
    kl = _kl_1d(data, alpha, sigma2)
    bound = kl_prior_bound(data, alpha, sigma2)
    assert kl <= bound + 1e-12
    # Convexity is strict for distinct means, so the bound is not attained.
    assert bound - kl > 1e-6 * bound
    tv = tv_quadrature_1d(
        lambda v: mixture_logpdf(v, data, alpha, sigma2),
        lambda v: -0.5 * v[:, 0] ** 2 - 0.5 * np.log(2 * np.pi),
        -12.0,
        12.0,
    )
    assert tv <= np.sqrt(kl / 2) + 1e-12  # Pinsker on the true KL
    assert tv <= tv_prior_bound(data, alpha, sigma2) + 1e-12


def test_single_point_kl_bound_equals_quadrature():
    data = np.array([[1.5]])
    assert kl_prior_bound(data, 0.6, 0.64) == pytest.approx(_kl_1d(data, 0.6, 0.64), rel=1e-10)


@pytest.mark.parametrize("d", [1, 2, 16, 64])
@pytest.mark.parametrize("eps", [0.5, 0.1, 0.01])
def test_theorem3_horizon_makes_prior_term_small(eps, d):
    # OU at T = log(d / eps): e^{-2T} = eps^2 / d^2. For data in [-1, 1]^d
    # (|x|^2 <= d) the bound is about eps |x| / (2 d) <= eps / 2: below eps.
    rng = np.random.default_rng(d)
    data = rng.uniform(-1.0, 1.0, size=(10, d))
    T = theorem3_T(eps, d)
    bound = tv_prior_bound(data, np.exp(-T), -np.expm1(-2 * T))
    assert 0.0 < bound <= 0.5 * eps * (1 + 1e-9)


def test_tv_bound_is_capped_at_one():
    assert tv_prior_bound(np.array([[100.0]]), 1.0, 1e-3) == 1.0


def test_bounds_validate_inputs():
    with pytest.raises(ValueError, match="sigma2"):
        kl_prior_bound(np.ones((2, 2)), 0.5, -1.0)
    with pytest.raises(ValueError, match=r"\bdata\b"):
        tv_prior_bound(np.ones(3), 0.5, 0.5)
