"""Tests of theory.identities: the Miyasawa / Tweedie identity."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory.identities import tweedie_gaussian
from theory.mixture import mixture_denoise


def test_closed_form_matches_monte_carlo():
    # X_0 ~ N(m, diag v) in d = 4 (one coordinate degenerate), X_t = alpha X_0 +
    # sigma Z; D from Gaussian conditioning written here, Cov(X_0, X_t) / Var(X_t).
    # n = 200_000, seed 8; band 4.5 standard errors (false failures ~7e-6).
    mean, var = np.array([1.0, -2.0, 0.0, 0.5]), np.array([0.5, 2.0, 0.0, 0.1])
    alpha, sigma2, n = 0.6, 0.64, 200_000
    rng = np.random.default_rng(8)
    x0 = mean + np.sqrt(var) * rng.standard_normal((n, 4))
    xt = alpha * x0 + np.sqrt(sigma2) * rng.standard_normal((n, 4))
    gain = alpha * var / (alpha**2 * var + sigma2)
    den = mean + gain * (xt - alpha * mean)
    err = np.sum((x0 - den) ** 2, axis=1)
    mse, scaled_div = tweedie_gaussian(var, alpha, sigma2)
    assert abs(err.mean() - mse) <= 4.5 * err.std(ddof=1) / np.sqrt(n)
    assert scaled_div == pytest.approx(sigma2 / alpha * gain.sum(), rel=1e-14)


@given(
    # Subnormal variances lose relative precision in any formula; keep them out.
    var=st.lists(st.floats(0.0, 1e6, allow_subnormal=False), min_size=1, max_size=6),
    alpha=st.floats(1e-3, 1.0),
    sigma2=st.floats(1e-8, 1e3),
)
def test_both_sides_agree(var, alpha, sigma2):
    mse, scaled_div = tweedie_gaussian(var, alpha, sigma2)
    assert mse == pytest.approx(scaled_div, rel=1e-13, abs=1e-300)
    # Each coordinate's error is below both its prior variance and sigma2 / alpha^2.
    assert mse <= sum(min(v, sigma2 / alpha**2) for v in var) * (1 + 1e-13)


def test_limits():
    assert tweedie_gaussian(0.0, 0.5, 0.3) == (0.0, 0.0)
    # Diffuse prior: the error tends to sigma2 / alpha^2 per coordinate.
    mse, _ = tweedie_gaussian([1e12, 1e12], 0.5, 0.3)
    assert mse == pytest.approx(2 * 0.3 / 0.25, rel=1e-10)


def test_identity_holds_for_the_empirical_mixture():
    # Cross-check of the mixture denoiser: the identity holds for any prior, here
    # uniform on 5 points in d = 2. tr grad D by central differences (h = 1e-5,
    # error ~1e-9); both sides averaged over the same n = 20_000 exact samples
    # (seed 21); the paired difference is within 4.5 of its standard errors.
    rng = np.random.default_rng(21)
    data = rng.standard_normal((5, 2))
    alpha, sigma2, n, h = 0.8, 0.2, 20_000, 1e-5
    index = rng.integers(5, size=n)
    xt = alpha * data[index] + np.sqrt(sigma2) * rng.standard_normal((n, 2))
    den = mixture_denoise(xt, data, alpha, sigma2)
    trace = np.zeros(n)
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        up, down = (
            mixture_denoise(xt + e, data, alpha, sigma2),
            mixture_denoise(xt - e, data, alpha, sigma2),
        )
        trace += (up[:, j] - down[:, j]) / (2 * h)
    diff = np.sum((data[index] - den) ** 2, axis=1) - sigma2 / alpha * trace
    assert abs(diff.mean()) <= 4.5 * diff.std(ddof=1) / np.sqrt(n)
    # And the error is not trivially zero: the test has power.
    assert np.mean(np.sum((data[index] - den) ** 2, axis=1)) > 0.05


def test_invalid_arguments():
    with pytest.raises(ValueError, match="alpha"):
        tweedie_gaussian(1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"\bvar\b"):
        tweedie_gaussian([-1.0], 0.5, 1.0)
    with pytest.raises(ValueError, match="sigma2"):
        tweedie_gaussian(1.0, 0.5, -1.0)
