"""Tests of theory.denoisers: Wiener and smoothed-KDE denoisers, Jacobians, effective ranks."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory.denoisers import (
    entropy_rank,
    gaussian_denoiser,
    gaussian_denoiser_eigs,
    gaussian_denoiser_jacobian,
    gaussian_sample,
    kde_denoiser,
    kde_denoiser_jacobian,
    kde_sample,
    trace_rank,
)
from theory.identities import tweedie_gaussian
from theory.mixture import mixture_denoise


def _random_cov(d, rank, seed):
    a = np.random.default_rng(seed).standard_normal((d, rank))
    return a @ a.T / rank


def _central_difference(func, x, step):
    """Jacobian ``d func_i / d x_j`` of a map R^d -> R^d at one point, shape (d, d)."""
    d = x.size
    jac = np.empty((d, d))
    for j in range(d):
        e = np.zeros(d)
        e[j] = step
        jac[:, j] = (func(x + e) - func(x - e)) / (2 * step)
    return jac


# -- Gaussian (Wiener) ----------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [5, 2])  # full rank and singular
def test_gaussian_denoiser_matches_conditioning_by_solve(rank):
    d, alpha, sigma2 = 5, 0.7, 0.3
    cov = _random_cov(d, rank, 1)
    mean = np.arange(d, dtype=float)
    x = np.random.default_rng(2).standard_normal((7, d))
    # Cov(X_0, X_t) Var(X_t)^{-1} written with a linear solve.
    gain = alpha * cov @ np.linalg.inv(alpha**2 * cov + sigma2 * np.eye(d))
    expected = mean + (x - alpha * mean) @ gain.T
    np.testing.assert_allclose(gaussian_denoiser(x, mean, cov, alpha, sigma2), expected,
                               rtol=1e-12, atol=1e-12)
    jac = gaussian_denoiser_jacobian(cov, alpha, sigma2)
    np.testing.assert_allclose(jac, gain, rtol=1e-12, atol=1e-13)
    np.testing.assert_array_equal(jac, jac.T)


def test_gaussian_jacobian_is_finite_difference():
    d, alpha, sigma2 = 4, 0.5, 0.2
    cov, mean = _random_cov(d, 4, 3), np.ones(d)
    x0 = np.random.default_rng(4).standard_normal(d)
    fd = _central_difference(lambda y: gaussian_denoiser(y, mean, cov, alpha, sigma2)[0], x0, 1e-4)
    np.testing.assert_allclose(gaussian_denoiser_jacobian(cov, alpha, sigma2), fd, atol=1e-9)


def test_gaussian_eigs_closed_form_and_tweedie():
    var, alpha, sigma2 = np.array([2.0, 0.5, 0.0, 1e-3]), 0.8, 0.1
    lam, vec = gaussian_denoiser_eigs(np.diag(var), alpha, sigma2)
    expected = np.sort(alpha * var / (alpha**2 * var + sigma2))[::-1]
    np.testing.assert_allclose(lam, expected, rtol=1e-14)
    np.testing.assert_allclose(vec.T @ vec, np.eye(4), atol=1e-14)
    mse, scaled = tweedie_gaussian(var, alpha, sigma2)
    # (sigma2 / alpha) tr grad D is the right-hand side of the identity.
    assert sigma2 / alpha * lam.sum() == pytest.approx(scaled, rel=1e-14)
    assert trace_rank(lam, alpha) == pytest.approx(alpha**2 * mse / sigma2, rel=1e-13)


def test_gaussian_trace_rank_limits():
    cov = _random_cov(6, 3, 5)  # rank 3
    small = gaussian_denoiser_eigs(cov, 1.0, 1e-10)[0]
    large = gaussian_denoiser_eigs(cov, 1.0, 1e10)[0]
    assert trace_rank(small, 1.0) == pytest.approx(3.0, rel=1e-8)
    assert trace_rank(large, 1.0) < 1e-9


def test_gaussian_sample_moments():
    # n = 100_000, seed 6: sample covariance within 4.5 s.e. (entrywise, var of the
    # product of two Gaussians is c_ii c_jj + c_ij^2).
    cov, mean, n = _random_cov(3, 2, 7), np.array([1.0, -1.0, 0.5]), 100_000
    x = gaussian_sample(n, mean, cov, rng=6)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(np.cov(x.T, bias=True) - cov) <= 4.5 * se + 1e-12)
    assert np.all(np.abs(x.mean(axis=0) - mean) <= 4.5 * np.sqrt(np.diag(cov) / n) + 1e-12)


def test_gaussian_input_checks():
    with pytest.raises(ValueError, match="cov"):
        gaussian_denoiser_eigs(np.ones((2, 3)), 1.0, 1.0)
    with pytest.raises(ValueError, match="symmetric"):
        gaussian_denoiser_eigs(np.array([[1.0, 0.5], [0.0, 1.0]]), 1.0, 1.0)
    with pytest.raises(ValueError, match="semidefinite"):
        gaussian_denoiser_eigs(-np.eye(2), 1.0, 1.0)
    with pytest.raises(ValueError, match="sigma2"):
        gaussian_denoiser_eigs(np.eye(2), 1.0, 0.0)
    with pytest.raises(ValueError, match="mean"):
        gaussian_denoiser(np.zeros((1, 2)), np.zeros(3), np.eye(2), 1.0, 1.0)


# -- smoothed KDE -------------------------------------------------------------------------------


def test_kde_at_zero_bandwidth_is_the_empirical_denoiser():
    rng = np.random.default_rng(8)
    data, x = rng.standard_normal((30, 3)), rng.standard_normal((12, 3))
    for alpha, sigma2 in ((0.9, 0.05), (0.3, 2.0)):
        np.testing.assert_allclose(kde_denoiser(x, data, 0.0, alpha, sigma2),
                                   mixture_denoise(x, data, alpha, sigma2), rtol=1e-13,
                                   atol=1e-14)


def test_kde_jacobian_at_zero_bandwidth_is_the_weighted_covariance():
    # grad D = (alpha / sigma2) sum_k w_k (x_k - D)(x_k - D)^T, written densely here.
    rng = np.random.default_rng(9)
    data, x = rng.standard_normal((20, 4)), rng.standard_normal((5, 4))
    alpha, sigma2 = 0.8, 0.4
    jac = kde_denoiser_jacobian(x, data, 0.0, alpha, sigma2)
    for m in range(len(x)):
        logw = -np.sum((x[m] - alpha * data) ** 2, axis=1) / (2 * sigma2)
        w = np.exp(logw - logw.max())
        w /= w.sum()
        e = data - w @ data
        np.testing.assert_allclose(jac[m], alpha / sigma2 * (e.T * w) @ e, rtol=1e-11,
                                   atol=1e-14)


def test_kde_with_one_point_is_the_gaussian_denoiser():
    point, h, alpha, sigma2 = np.array([[1.0, -2.0, 0.5]]), 0.7, 0.6, 0.3
    x = np.random.default_rng(10).standard_normal((4, 3))
    cov = h * h * np.eye(3)
    np.testing.assert_allclose(kde_denoiser(x, point, h, alpha, sigma2),
                               gaussian_denoiser(x, point[0], cov, alpha, sigma2), rtol=1e-13)
    jac = kde_denoiser_jacobian(x, point, h, alpha, sigma2)
    np.testing.assert_allclose(jac, np.broadcast_to(gaussian_denoiser_jacobian(cov, alpha, sigma2),
                                                    jac.shape), rtol=1e-13, atol=1e-16)


@given(h=st.sampled_from([0.0, 0.1, 0.5]), sigma2=st.sampled_from([0.05, 0.3, 2.0]),
       seed=st.integers(0, 2**16))
def test_kde_jacobian_is_finite_difference(h, sigma2, seed):
    rng = np.random.default_rng(seed)
    data, x0 = rng.standard_normal((15, 3)), rng.standard_normal(3)
    alpha = 0.7
    jac = kde_denoiser_jacobian(x0, data, h, alpha, sigma2)[0]
    step = 1e-5 * np.sqrt(sigma2)
    fd = _central_difference(lambda y: kde_denoiser(y, data, h, alpha, sigma2)[0], x0, step)
    # Central differences: truncation ~ step^2 |D'''| and rounding ~ eps |D| / step.
    scale = alpha / sigma2 * np.abs(data).max() ** 2
    np.testing.assert_allclose(jac, fd, atol=1e-6 * max(scale, 1.0))
    np.testing.assert_allclose(jac, jac.T, atol=1e-15 * max(scale, 1.0))
    assert np.linalg.eigvalsh(jac).min() >= -1e-12 * max(scale, 1.0)


def test_kde_jacobian_accurate_when_one_point_dominates():
    # Two points, query at the first: Cov_w = w1 w2 (x1 - x2)(x1 - x2)^T with
    # w2 / w1 = exp(-alpha^2 |x1 - x2|^2 / (2 sigma2)) ~ 1e-40: exact to a few ulps.
    data = np.array([[0.0, 0.0], [1.0, 2.0]])
    alpha, sigma2 = 1.0, 0.0273
    ratio = np.exp(-5.0 / (2 * sigma2))
    w1, w2 = 1 / (1 + ratio), ratio / (1 + ratio)
    delta = data[1] - data[0]
    expected = alpha / sigma2 * w1 * w2 * np.outer(delta, delta)
    jac = kde_denoiser_jacobian(data[:1], data, 0.0, alpha, sigma2)[0]
    np.testing.assert_allclose(jac, expected, rtol=1e-13)


def test_kde_identity_holds_under_its_own_prior():
    # Tweedie for the KDE prior: E|X0 - D|^2 = (sigma2 / alpha) E tr grad D, paired
    # per-sample differences, n = 20_000, seed 11, band 4.5 s.e. (false failure ~7e-6).
    rng = np.random.default_rng(11)
    data, h, alpha, sigma2, n = rng.standard_normal((10, 2)), 0.3, 0.8, 0.2, 20_000
    x0 = kde_sample(n, data, h, rng)
    xt = alpha * x0 + np.sqrt(sigma2) * rng.standard_normal(x0.shape)
    err = np.sum((x0 - kde_denoiser(xt, data, h, alpha, sigma2)) ** 2, axis=1)
    tr = np.trace(kde_denoiser_jacobian(xt, data, h, alpha, sigma2), axis1=1, axis2=2)
    q = err - sigma2 / alpha * tr
    assert abs(q.mean()) <= 4.5 * q.std(ddof=1) / np.sqrt(n)
    # and it fails when the denoiser is dropped to the empirical one (h = 0): x0 off the data.
    err0 = np.sum((x0 - kde_denoiser(xt, data, 0.0, alpha, sigma2)) ** 2, axis=1)
    tr0 = np.trace(kde_denoiser_jacobian(xt, data, 0.0, alpha, sigma2), axis1=1, axis2=2)
    q0 = err0 - sigma2 / alpha * tr0
    assert q0.mean() > 4.5 * q0.std(ddof=1) / np.sqrt(n)


def test_kde_sample_and_checks():
    data = np.array([[0.0, 0.0], [10.0, 10.0]])
    x = kde_sample(1000, data, 0.0, rng=1)
    assert set(map(tuple, x)) <= {(0.0, 0.0), (10.0, 10.0)}
    with pytest.raises(ValueError, match="h"):
        kde_denoiser(np.zeros(2), data, -1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="x"):
        kde_denoiser_jacobian(np.zeros(3), data, 0.1, 1.0, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        kde_denoiser(np.zeros(2), data, 0.1, 0.0, 1.0)


# -- effective ranks ----------------------------------------------------------------------------


def test_effective_ranks():
    assert entropy_rank([2.0, 2.0, 2.0, 0.0]) == pytest.approx(3.0)
    assert entropy_rank([5.0, 0.0]) == pytest.approx(1.0)
    assert entropy_rank([0.0, 0.0]) == 0.0
    assert entropy_rank([1.0, -1e-17]) == pytest.approx(1.0)  # rounding negatives clipped
    np.testing.assert_allclose(entropy_rank(np.array([[1.0, 1.0], [1.0, 0.0]])), [2.0, 1.0])
    assert 1.0 < entropy_rank([1.0, 0.5, 0.25]) < 3.0
    assert trace_rank([0.5, 0.25], 2.0) == pytest.approx(1.5)
    np.testing.assert_allclose(trace_rank(np.ones((3, 4)), 0.5), [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="alpha"):
        trace_rank([1.0], 0.0)
    with pytest.raises(ValueError, match="eigenvalues"):
        entropy_rank([np.nan])
