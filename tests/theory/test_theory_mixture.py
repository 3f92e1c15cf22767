"""Tests of theory.mixture: the dense Gaussian-mixture reference.

Oracle on hard cases: mpmath at 60 digits on the exact double inputs. Tolerances
are the conditioning of the problem times a small multiple of the float64 epsilon
(see ``_tolerances``), so they are tight where the problem is well conditioned
and a method that squares ``|x|`` (plain differences for far queries, or the BLAS
expansion near the data) fails them.
"""

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.stats import multivariate_normal

from theory import mixture
from theory.mixture import (
    mixture_cov,
    mixture_denoise,
    mixture_logpdf,
    mixture_mean,
    mixture_sample,
    mixture_score,
    mixture_second_moment,
)

EPS = np.finfo(np.float64).eps


def _mp_reference(x, data, alpha, sigma2, dps=60):
    """log p, D and score at each query in mpmath, from the exact double inputs."""
    with mp.workdps(dps):
        a, s2 = mp.mpf(alpha), mp.mpf(sigma2)
        n_data, d = data.shape
        const = -mp.log(n_data) - mp.mpf(d) / 2 * mp.log(2 * mp.pi * s2)
        out_lp, out_d, out_s, out_min = [], [], [], []
        for xm in x:
            expo = [
                -mp.fsum((mp.mpf(xm[j]) - a * mp.mpf(data[k, j])) ** 2 for j in range(d)) / (2 * s2)
                for k in range(n_data)
            ]
            top = max(expo)
            w = [mp.exp(e - top) for e in expo]
            total = mp.fsum(w)
            den = [
                mp.fsum(w[k] * mp.mpf(data[k, j]) for k in range(n_data)) / total for j in range(d)
            ]
            out_lp.append(float(const + top + mp.log(total)))
            out_d.append([float(v) for v in den])
            out_s.append([float((a * den[j] - mp.mpf(xm[j])) / s2) for j in range(d)])
            out_min.append(float(-top))
        return np.array(out_lp), np.array(out_d), np.array(out_s), np.array(out_min), float(const)


def _tolerances(x, data, alpha, sigma2, min_expo, const):
    """First-order error bounds of a backward-stable evaluation.

    Rounding the inputs (``x``, ``alpha x_k``) by a few ulps moves each exponent
    difference by about ``eps (|x| + alpha |x_k|) alpha |x_k - x_l| / sigma2``;
    the weights then move by that much relatively, the denoiser by that times the
    data spread, the score by alpha times the denoiser error over sigma2 plus the
    rounding of ``x - alpha x_k``.
    """
    d = data.shape[1]
    norm_x = np.linalg.norm(x, axis=1)
    norm_data = np.linalg.norm(data, axis=1).max()
    spread = max(np.linalg.norm(data[:, None, :] - data[None, :, :], axis=2).max(), 1e-300)
    scale = norm_x + alpha * norm_data
    d_expo = 8 * d * EPS * scale * alpha * spread / sigma2
    tol_lp = d_expo + 16 * EPS * (min_expo + abs(const) + 1.0)
    tol_den = 4 * d_expo * spread + 8 * EPS * norm_data
    tol_score = (alpha * tol_den + 8 * EPS * scale) / sigma2
    return tol_lp, tol_den, tol_score


def _check_against_mpmath(x, data, alpha, sigma2):
    lp, den, score, min_expo, const = _mp_reference(x, data, alpha, sigma2)
    tol_lp, tol_den, tol_score = _tolerances(x, data, alpha, sigma2, min_expo, const)
    err_lp = np.abs(mixture_logpdf(x, data, alpha, sigma2) - lp)
    err_den = np.abs(mixture_denoise(x, data, alpha, sigma2) - den).max(axis=1)
    err_score = np.abs(mixture_score(x, data, alpha, sigma2) - score).max(axis=1)
    assert (err_lp <= tol_lp).all(), (err_lp, tol_lp)
    assert (err_den <= tol_den).all(), (err_den, tol_den)
    assert (err_score <= tol_score).all(), (err_score, tol_score)


@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.7])
def test_small_noise_matches_mpmath(alpha):
    # sigma2 = 1e-10: queries near a point, on a point, near the bisector of two
    # points (where the weights are balanced), with duplicated data points.
    rng = np.random.default_rng(11)
    base = rng.standard_normal((7, 3))
    data = np.vstack([base, base[:2]])
    sigma2 = 1e-10
    mid = 0.5 * alpha * (data[0] + data[1])
    normal = alpha * (data[0] - data[1])
    x = np.vstack(
        [
            alpha * data[3] + 1e-5 * rng.standard_normal(3),
            alpha * data[0],
            mid + 2e-11 * normal / np.linalg.norm(normal),
            mid,
        ]
    )
    _check_against_mpmath(x, data, alpha, sigma2)


@pytest.mark.parametrize(("alpha", "sigma2"), [(1.0, 1.0), (0.7, 1.0), (0.7, 3.0), (0.5, 1e4)])
def test_far_queries_match_mpmath(alpha, sigma2):
    # |x| ~ 1e4, including queries near the boundary between two Voronoi cells,
    # where squared distances ~1e8 must not be subtracted from each other.
    data = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, -1.0], [0.5, -0.2], [1.0, 0.0]])
    x = np.array([[0.1, 1e4], [-0.3, -1e4 + 0.5], [0.123456789, 12345.678], [7e3, -7e3]])
    _check_against_mpmath(x, data, alpha, sigma2)


def test_single_point_is_the_gaussian():
    # N = 1 with alpha a power of two: the score is -(x - alpha x_1) / sigma2 with
    # one rounding, so it must agree with mpmath to a few ulps even at sigma2 = 1e-10.
    data = np.array([[0.3, -1.7, 2.2]])
    x = np.array([[0.15 + 1e-6, -0.85, 1.1 - 3e-7], [1e4, -1e4, 3.0]])
    for sigma2 in (1e-10, 1.0):
        lp, den, score, _, _ = _mp_reference(x, data, 0.5, sigma2)
        np.testing.assert_allclose(mixture_score(x, data, 0.5, sigma2), score, rtol=4 * EPS)
        np.testing.assert_array_equal(mixture_denoise(x, data, 0.5, sigma2), den)
        np.testing.assert_allclose(mixture_logpdf(x, data, 0.5, sigma2), lp, rtol=8 * EPS)
    ref = multivariate_normal(mean=0.5 * data[0], cov=0.3 * np.eye(3)).logpdf(x)
    np.testing.assert_allclose(mixture_logpdf(x, data, 0.5, 0.3), ref, rtol=1e-13)


def test_duplicates_count_as_weight():
    # Duplicating a point is the same as giving it twice the mixture weight.
    data = np.array([[0.0], [0.0], [2.0]])
    x = np.array([[0.4], [1.0], [3.0]])
    alpha, sigma2 = 0.8, 0.5
    comp = [multivariate_normal(mean=alpha * c, cov=sigma2).pdf(x[:, 0]) for c in (0.0, 2.0)]
    ref = np.log((2 * comp[0] + comp[1]) / 3)
    np.testing.assert_allclose(mixture_logpdf(x, data, alpha, sigma2), ref, rtol=1e-13)
    w_far = comp[1] / (2 * comp[0] + comp[1])
    np.testing.assert_allclose(
        mixture_denoise(x, data, alpha, sigma2)[:, 0], 2.0 * w_far, rtol=1e-12
    )


def test_density_is_normalised_in_1d():
    data = np.array([[-1.0], [0.2], [0.25], [3.0]])
    alpha, sigma2 = 0.9, 0.04

    def pdf(v):
        return float(np.exp(mixture_logpdf(np.array([[v]]), data, alpha, sigma2)[0]))

    total, _ = quad(pdf, -8.0, 10.0, points=list(alpha * data[:, 0]), epsabs=1e-13, limit=200)
    assert abs(total - 1.0) < 1e-10


@given(
    seed=st.integers(0, 2**32 - 1),
    n_data=st.integers(1, 6),
    d=st.integers(1, 3),
    log_sigma2=st.floats(-3.0, 1.0),
)
def test_score_is_gradient_of_log_density(seed, n_data, d, log_sigma2):
    # Central differences with step h have error ~ h^2 |third derivative|; h is
    # scaled with sigma so the bound below is uniform over the drawn cases.
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n_data, d))
    sigma2 = 10.0**log_sigma2
    x = 0.8 * data[rng.integers(n_data)] + np.sqrt(sigma2) * rng.standard_normal(d)
    h = 1e-4 * np.sqrt(sigma2)
    grad = np.empty(d)
    for j in range(d):
        e = np.zeros(d)
        e[j] = h
        up, down = mixture_logpdf(np.vstack([x + e, x - e]), data, 0.8, sigma2)
        grad[j] = (up - down) / (2 * h)
    score = mixture_score(x, data, 0.8, sigma2)[0]
    assert np.abs(score - grad).max() <= 1e-5 * (1 + np.abs(score).max())


@given(seed=st.integers(0, 2**32 - 1), n_data=st.integers(1, 8), log_sigma2=st.floats(-6.0, 2.0))
def test_denoiser_properties(seed, n_data, log_sigma2):
    # Permutation invariance, convex hull in 1-D, and s = (alpha D - x) / sigma2.
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n_data, 1))
    x = 3.0 * rng.standard_normal((5, 1))
    alpha, sigma2 = 0.6, 10.0**log_sigma2
    den = mixture_denoise(x, data, alpha, sigma2)
    perm = rng.permutation(n_data)
    np.testing.assert_allclose(
        mixture_denoise(x, data[perm], alpha, sigma2), den, rtol=1e-12, atol=1e-14
    )
    assert (den >= data.min() - 1e-15).all() and (den <= data.max() + 1e-15).all()
    score = mixture_score(x, data, alpha, sigma2)
    np.testing.assert_allclose(score, (alpha * den - x) / sigma2, rtol=1e-9, atol=1e-9 / sigma2)


def test_blocking_does_not_change_results(monkeypatch):
    # Processing queries in blocks of 1 must give bitwise the same numbers.
    rng = np.random.default_rng(3)
    data, x = rng.standard_normal((9, 2)), rng.standard_normal((7, 2))
    full = (mixture_logpdf(x, data, 0.7, 0.2), mixture_score(x, data, 0.7, 0.2))
    monkeypatch.setattr(mixture, "_BLOCK_ENTRIES", 1)
    np.testing.assert_array_equal(mixture_logpdf(x, data, 0.7, 0.2), full[0])
    np.testing.assert_array_equal(mixture_score(x, data, 0.7, 0.2), full[1])


def test_moments_closed_forms_agree():
    # tr Cov + |mean|^2 = E|X|^2, from three separately written formulas.
    rng = np.random.default_rng(5)
    data = rng.standard_normal((6, 4)) + 2.0
    alpha, sigma2 = 0.7, 0.3
    lhs = np.trace(mixture_cov(data, alpha, sigma2)) + np.sum(mixture_mean(data, alpha) ** 2)
    assert abs(lhs - mixture_second_moment(data, alpha, sigma2)) <= 1e-13 * lhs
    ref_cov = alpha**2 * np.cov(data.T, bias=True) + sigma2 * np.eye(4)
    np.testing.assert_allclose(mixture_cov(data, alpha, sigma2), ref_cov, rtol=1e-13, atol=1e-15)


def test_samples_match_moments():
    # n = 200_000, seed 2024; each statistic within 4.5 standard errors
    # (false-failure probability below 1e-4 for the 1 + 3 + 9 + 1 checks).
    data = np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 0.5], [-2.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    alpha, sigma2, n = 0.8, 0.25, 200_000
    x = mixture_sample(n, data, alpha, sigma2, rng=2024)
    assert x.shape == (n, 3)
    mean = mixture_mean(data, alpha)
    assert (np.abs(x.mean(0) - mean) <= 4.5 * x.std(0, ddof=1) / np.sqrt(n)).all()
    centred = x - mean
    prods = centred[:, :, None] * centred[:, None, :]
    se = prods.std(0, ddof=1) / np.sqrt(n)
    assert (np.abs(prods.mean(0) - mixture_cov(data, alpha, sigma2)) <= 4.5 * se).all()
    sq = np.sum(x * x, axis=1)
    assert abs(sq.mean() - mixture_second_moment(data, alpha, sigma2)) <= 4.5 * sq.std(
        ddof=1
    ) / np.sqrt(n)
    # Same seed, same samples.
    np.testing.assert_array_equal(
        mixture_sample(5, data, alpha, sigma2, rng=1), mixture_sample(5, data, alpha, sigma2, rng=1)
    )


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"data": np.zeros(3)}, "data"),
        ({"data": np.array([[np.nan, 0.0]])}, "data"),
        ({"sigma2": 0.0}, "sigma2"),
        ({"sigma2": np.inf}, "sigma2"),
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": np.ones(2)}, "alpha"),
        ({"x": np.zeros((2, 3))}, "x"),
    ],
)
def test_invalid_inputs_name_the_argument(kwargs, name):
    args = {"x": np.zeros((2, 2)), "data": np.ones((3, 2)), "alpha": 1.0, "sigma2": 1.0} | kwargs
    for f in (mixture_logpdf, mixture_score, mixture_denoise):
        with pytest.raises(ValueError, match=rf"\b{name}\b"):
            f(**args)
    with pytest.raises(TypeError, match="sigma2"):
        mixture_logpdf(np.zeros(2), np.ones((3, 2)), 1.0, "big")
    with pytest.raises(ValueError, match=r"\bn\b"):
        mixture_sample(0, np.ones((3, 2)), 1.0, 1.0, rng=0)
