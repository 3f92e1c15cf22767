"""Tests of theory.tv against closed-form total variations."""

from itertools import pairwise

import numpy as np
import pytest
from scipy.stats import norm

from theory.mixture import mixture_logpdf, mixture_sample
from theory.tv import tv_monte_carlo, tv_quadrature_1d


def _gauss_1d(m, s):
    return lambda x: norm.logpdf(x[:, 0], loc=m, scale=s)


def _tv_gauss_closed(m1, s1, m2, s2):
    """TV between N(m1, s1^2) and N(m2, s2^2) from the crossings of the densities."""
    if s1 == s2:
        return 2 * norm.cdf(abs(m1 - m2) / (2 * s1)) - 1
    # log p - log q = A x^2 + B x + C
    a = 0.5 / s2**2 - 0.5 / s1**2
    b = m1 / s1**2 - m2 / s2**2
    c = 0.5 * m2**2 / s2**2 - 0.5 * m1**2 / s1**2 + np.log(s2 / s1)
    roots = np.sort(np.roots([a, b, c]).real)
    edges = np.concatenate([[-np.inf], roots, [np.inf]])
    total = 0.0
    for lo, hi in pairwise(edges):
        gap = (norm.cdf(hi, m1, s1) - norm.cdf(lo, m1, s1)) - (
            norm.cdf(hi, m2, s2) - norm.cdf(lo, m2, s2)
        )
        total += max(gap, 0.0)
    return total


@pytest.mark.parametrize(
    ("m1", "m2", "s"), [(0.0, 1.0, 1.0), (0.0, 0.01, 1.0), (-2.0, 3.0, 0.5), (1.0, 1.0, 2.0)]
)
def test_quadrature_equal_variance_closed_form(m1, m2, s):
    exact = 2 * norm.cdf(abs(m1 - m2) / (2 * s)) - 1
    got = tv_quadrature_1d(_gauss_1d(m1, s), _gauss_1d(m2, s), -30.0, 30.0)
    assert abs(got - exact) <= 1e-10


@pytest.mark.parametrize(
    ("m1", "s1", "m2", "s2"), [(0.0, 1.0, 0.5, 2.0), (0.0, 1.0, 0.0, 0.05), (3.0, 0.2, -1.0, 1.5)]
)
def test_quadrature_unequal_variance_closed_form(m1, s1, m2, s2):
    # Two crossings, and in the second case a peak 40x narrower than the first law.
    exact = _tv_gauss_closed(m1, s1, m2, s2)
    got = tv_quadrature_1d(_gauss_1d(m1, s1), _gauss_1d(m2, s2), -40.0, 40.0)
    assert abs(got - exact) <= 1e-10


def test_quadrature_finds_narrow_peak_on_wide_interval():
    # A law of width 1e-3 on [-100, 100]: its mass lies inside one grid cell
    # (200 / 4096 ~ 0.05), so only the mode breakpoint lets quad see it.
    exact = _tv_gauss_closed(0.0, 1.0, 0.3, 1e-3)
    got = tv_quadrature_1d(_gauss_1d(0.0, 1.0), _gauss_1d(0.3, 1e-3), -100.0, 100.0)
    assert abs(got - exact) <= 1e-9


def test_quadrature_narrow_mixture_needs_its_centres():
    # Three components of width 1e-4 on [-50, 50] (grid spacing ~0.024): TV to
    # N(0, 1) is 1 - int min(p, q). Components are 1e4 widths apart, so each one's
    # crossings with q can be taken against q alone (neglected terms < e^{-1e6}).
    centres, s = np.array([-1.0, 0.5, 2.0]), 1e-4
    data, weight = centres[:, None], 1.0 / 3.0

    def logp(x):
        return mixture_logpdf(x, data, 1.0, s * s)

    overlap = 0.0
    for c in centres:
        # where weight * N(c, s^2) < N(0, 1): outside the two roots of a quadratic
        a, b = 0.5 / s**2 - 0.5, -c / s**2
        cc = 0.5 * c * c / s**2 - np.log(weight / s)
        r1, r2 = np.sort(np.roots([a, b, cc]).real)
        inside_q = norm.cdf(r2) - norm.cdf(r1)
        outside_p = weight * (norm.cdf(r1, c, s) + norm.sf(r2, c, s))
        overlap += inside_q + outside_p
    exact = 1.0 - overlap
    got = tv_quadrature_1d(logp, _gauss_1d(0, 1), -50.0, 50.0, points=centres)
    assert abs(got - exact) <= 1e-10
    # Without the centres two of the three peaks fall between grid points.
    assert abs(tv_quadrature_1d(logp, _gauss_1d(0, 1), -50.0, 50.0) - exact) > 1e-3


@pytest.mark.parametrize("shift", [0.3, 1.5])
def test_monte_carlo_within_four_standard_errors_in_3d(shift):
    # TV(N(m1, I), N(m2, I)) = 2 Phi(|m1 - m2| / 2) - 1 in any dimension.
    # n = 20_000, seed 1234; the 4-s.e. band fails with probability ~6e-5.
    m1, m2 = np.zeros(3), np.array([shift, 0.0, 0.0])

    def logp(x):
        return norm.logpdf(x - m1).sum(axis=1)

    def logq(x):
        return norm.logpdf(x - m2).sum(axis=1)

    def sample(n, rng):
        return m1 + rng.standard_normal((n, 3))

    exact = 2 * norm.cdf(shift / 2) - 1
    est, se = tv_monte_carlo(logp, logq, sample, 20_000, rng=1234)
    assert se > 0
    assert abs(est - exact) <= 4 * se
    assert tv_monte_carlo(logp, logq, sample, 100, rng=7) == tv_monte_carlo(
        logp, logq, sample, 100, rng=7
    )


def test_monte_carlo_agrees_with_quadrature_for_mixture_vs_normal():
    # TV(p_T, N(0, 1)) for a 1-D mixture: MC (n = 40_000, seed 99) within 4 s.e.
    data = np.array([[-1.0], [0.5], [2.0]])
    alpha, sigma2 = 0.6, 0.64

    def logp(x):
        return mixture_logpdf(x, data, alpha, sigma2)

    def logq(x):
        return norm.logpdf(x[:, 0])

    def sample(n, rng):
        return mixture_sample(n, data, alpha, sigma2, rng)

    quad_tv = tv_quadrature_1d(logp, logq, -15.0, 15.0)
    est, se = tv_monte_carlo(logp, logq, sample, 40_000, rng=99)
    assert abs(est - quad_tv) <= 4 * se


def test_disjoint_support_gives_one():
    # q = 0 where p lives: every term is exactly 1, the standard error 0.
    def logq(x):
        return np.where(x[:, 0] < -10, 0.0, -np.inf)

    est, se = tv_monte_carlo(
        _gauss_1d(0, 1), logq, lambda n, rng: rng.standard_normal((n, 1)), 50, rng=0
    )
    assert est == 1.0 and se == 0.0


def test_invalid_arguments():
    lp = _gauss_1d(0, 1)
    with pytest.raises(ValueError, match=r"\blo\b"):
        tv_quadrature_1d(lp, lp, 1.0, -1.0)
    with pytest.raises(TypeError, match=r"\blogq\b"):
        tv_quadrature_1d(lp, None, -1.0, 1.0)
    with pytest.raises(ValueError, match=r"\bn\b"):
        tv_monte_carlo(lp, lp, lambda n, rng: rng.standard_normal((n, 1)), 1, rng=0)
    with pytest.raises(ValueError, match="sample_p"):
        tv_monte_carlo(lp, lp, lambda n, rng: rng.standard_normal((n + 1, 1)), 10, rng=0)
    with pytest.raises(ValueError, match=r"\blogp\b"):
        tv_monte_carlo(lambda x: x, lp, lambda n, rng: rng.standard_normal((n, 1)), 10, rng=0)
