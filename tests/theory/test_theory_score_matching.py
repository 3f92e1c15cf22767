"""Tests of theory.score_matching: Theorems 1 and 2 as identities.

Each loss is computed on its own (closed form or quadrature), so the identities
``explicit - implicit = I(p)`` (Theorem 1) and ``dsm - explicit = d / sigma2 -
I(p)`` (Theorem 2) are checks, not constructions. Oracles: Monte Carlo with
stated seeds and 4.5 standard-error bands (false failure ~7e-6 each), mpmath
quadrature at 30 digits.
"""

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory.mixture import mixture_sample, mixture_score
from theory.score_matching import (
    fisher_information_1d,
    gaussian_score_matching,
    score_matching_1d,
)

SE_BAND = 4.5


@given(
    d=st.integers(1, 5),
    seed=st.integers(0, 2**31),
    alpha=st.floats(0.05, 1.0),
    sigma2=st.floats(1e-3, 10.0),
)
def test_gaussian_closed_forms_satisfy_theorems_1_and_2(d, seed, alpha, sigma2):
    rng = np.random.default_rng(seed)
    mean, var = rng.normal(size=d), rng.uniform(0.0, 3.0, size=d)
    gain, centre = rng.uniform(-2.0, 3.0, size=d), rng.normal(size=d)
    if seed % 2:  # a full symmetric gain
        b = rng.normal(size=(d, d))
        gain = np.diag(gain) + 0.5 * (b + b.T)
    res = gaussian_score_matching(mean, var, alpha, sigma2, gain, centre)
    scale = res.explicit + abs(res.implicit) + res.fisher + res.dsm
    assert res.explicit - res.implicit == pytest.approx(res.fisher, abs=1e-13 * scale)
    assert res.dsm - res.explicit == pytest.approx(res.dsm_gap, abs=1e-13 * scale)
    # Theorem 2's constant is d / sigma2 - I(p_t), and the Fisher inequality makes it >= 0.
    assert res.dsm_gap == pytest.approx(d / sigma2 - res.fisher, abs=1e-13 * scale)
    assert res.dsm_gap >= -1e-13 * scale


def test_gaussian_true_score_has_zero_explicit_loss():
    mean, var, alpha, sigma2 = np.array([1.0, -0.5]), np.array([2.0, 0.3]), 0.7, 0.2
    big_v = alpha**2 * var + sigma2
    res = gaussian_score_matching(mean, var, alpha, sigma2, 1.0 / big_v, alpha * mean)
    assert res.explicit == pytest.approx(0.0, abs=1e-15)
    assert res.implicit == pytest.approx(-np.sum(1.0 / big_v), rel=1e-14)
    assert res.dsm == pytest.approx(res.dsm_gap, rel=1e-14)


@pytest.mark.parametrize("full", [False, True])
def test_gaussian_closed_forms_against_monte_carlo(full):
    # X_0 ~ N(m, diag v) in d = 3, X_t = alpha X_0 + sigma Z, the linear model
    # s(x) = -A (x - b), A diagonal or a full symmetric matrix; n = 400_000, seed 5;
    # each loss within 4.5 s.e.
    rng = np.random.default_rng(5)
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.2, 3.0])
    gain, centre = np.array([0.8, 2.0, -0.3]), np.array([0.0, 1.0, 0.5])
    if full:
        gain = np.diag(gain) + np.array([[0.0, 0.5, -0.4], [0.5, 0.0, 0.3], [-0.4, 0.3, 0.0]])
    matrix = gain if full else np.diag(gain)
    alpha, sigma2, n = 0.8, 0.3, 400_000
    x0 = mean + np.sqrt(var) * rng.standard_normal((n, 3))
    z = rng.standard_normal((n, 3))
    xt = alpha * x0 + np.sqrt(sigma2) * z
    s = -(xt - centre) @ matrix
    big_v = alpha**2 * var + sigma2
    true = -(xt - alpha * mean) / big_v
    res = gaussian_score_matching(mean, var, alpha, sigma2, gain, centre)
    for terms, predicted in (
        (np.sum((true - s) ** 2, axis=1), res.explicit),
        (np.sum(s**2, axis=1) - 2.0 * np.trace(matrix), res.implicit),
        (np.sum((s + z / np.sqrt(sigma2)) ** 2, axis=1), res.dsm),
        (np.sum(true**2, axis=1), res.fisher),
    ):
        se = terms.std(ddof=1) / np.sqrt(n)
        assert abs(terms.mean() - predicted) <= SE_BAND * se


def _mixture(seed=3, n=5):
    data = np.random.default_rng(seed).standard_normal((n, 1))
    return data, 0.9, 0.15


def test_fisher_information_against_mpmath():
    data, alpha, sigma2 = _mixture(n=3)
    mpmath.mp.dps = 30
    centres = [mpmath.mpf(float(alpha * x)) for x in data[:, 0]]
    s2 = mpmath.mpf(sigma2)

    def p(y):
        return sum(mpmath.exp(-(y - c) ** 2 / (2 * s2)) for c in centres) / (
            len(centres) * mpmath.sqrt(2 * mpmath.pi * s2))

    def dp(y):
        return sum(-(y - c) / s2 * mpmath.exp(-(y - c) ** 2 / (2 * s2)) for c in centres) / (
            len(centres) * mpmath.sqrt(2 * mpmath.pi * s2))

    lo, hi = min(centres) - 14 * mpmath.sqrt(s2), max(centres) + 14 * mpmath.sqrt(s2)
    ref = mpmath.quad(lambda y: dp(y) ** 2 / p(y), [lo, *sorted(centres), hi])
    got = fisher_information_1d(data, alpha, sigma2)
    assert got == pytest.approx(float(ref), rel=1e-12)
    # The bound I(p_t) <= 1 / sigma2 (Fisher inequality) is strict for N > 1 points.
    assert got < 1.0 / sigma2


def test_quadrature_matches_gaussian_closed_form():
    # One centre with sigma2 = V is the Gaussian N(alpha m, V) (data variance 0).
    mean, alpha, sigma2, gain, centre = 0.7, 0.8, 0.4, 1.7, -0.2
    res = score_matching_1d(lambda y: -gain * (y - centre), [[mean]], alpha, sigma2,
                            divergence=lambda y: np.full_like(y, -gain))
    ref = gaussian_score_matching(mean, 0.0, alpha, sigma2, gain, centre)
    for got, want in zip(res, ref, strict=True):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-13)


MODELS = {
    "tanh": (lambda y: -2.0 * np.tanh(y - 0.3), lambda y: -2.0 / np.cosh(y - 0.3) ** 2),
    "cubic": (lambda y: -y - 0.5 * y**3, lambda y: -1.0 - 1.5 * y**2),
    "sine": (lambda y: np.sin(3.0 * y) - y, lambda y: 3.0 * np.cos(3.0 * y) - 1.0),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_theorem1_for_the_mixture_by_quadrature(name):
    score, div = MODELS[name]
    data, alpha, sigma2 = _mixture()
    res = score_matching_1d(score, data, alpha, sigma2, divergence=div)
    residual = res.explicit - res.implicit - res.fisher
    # Each side a quadrature to 1e-13 per piece; achieved ~1e-16 relative.
    assert abs(residual) <= 1e-13 * (res.explicit + res.fisher)
    assert abs(res.dsm - res.explicit - res.dsm_gap) <= 1e-13 * (res.dsm + res.fisher)
    # Power: dropping the factor 2 of the divergence breaks the identity by far more.
    wrong = score_matching_1d(score, data, alpha, sigma2, divergence=lambda y: 0.5 * div(y))
    assert abs(wrong.explicit - wrong.implicit - wrong.fisher) > 1e-3


DIRECTIONS = {
    "sine": np.sin,
    "bump": lambda y: np.exp(-((y - 0.5) ** 2)),
    "linear": lambda y: 0.3 * y - 1.0,
}


@pytest.mark.parametrize("eps", [0.5, 0.05])
@pytest.mark.parametrize("name", sorted(DIRECTIONS))
def test_mixture_score_minimises_the_dsm_loss(name, eps):
    # Eq. (10) minimises eq. (9): L(s + eps h) - L(s) = eps^2 E_p |h|^2 with no linear
    # term, each side its own quadrature; to 1e-10 (achieved: ~1e-15).
    h = DIRECTIONS[name]
    data, alpha, sigma2 = _mixture()

    def s_hat(y):
        return mixture_score(y[:, None], data, alpha, sigma2)[:, 0]

    base = score_matching_1d(s_hat, data, alpha, sigma2)
    moved = score_matching_1d(lambda y: s_hat(y) + eps * h(y), data, alpha, sigma2)
    # E_p |h|^2 as the Fisher divergence of s_hat + h to p (the explicit loss).
    norm = score_matching_1d(lambda y: s_hat(y) + h(y), data, alpha, sigma2).explicit
    assert abs((moved.dsm - base.dsm) - eps**2 * norm) <= 1e-10
    assert norm > 0.1


def test_gaussian_fit_is_not_the_minimiser():
    # Negative control for the test above: a wrong "minimiser" has a linear term.
    data, alpha, sigma2 = _mixture()
    var = alpha**2 * data.var() + sigma2

    def fit(y):
        return -(y - alpha * data.mean()) / var

    base = score_matching_1d(fit, data, alpha, sigma2)
    moved = score_matching_1d(lambda y: fit(y) + 0.05 * np.sin(y), data, alpha, sigma2)
    norm = score_matching_1d(lambda y: mixture_score(y[:, None], data, alpha, sigma2)[:, 0]
                             + np.sin(y), data, alpha, sigma2).explicit
    assert abs((moved.dsm - base.dsm) - 0.05**2 * norm) > 1e-4


def test_dsm_quadrature_against_monte_carlo():
    # The quadrature's dsm is the training objective with X_0 uniform on the data:
    # exact samples, n = 200_000 per point... (5 points x 40_000), seed 9.
    data, alpha, sigma2 = _mixture()
    score, _ = MODELS["tanh"]
    rng = np.random.default_rng(9)
    z = rng.standard_normal((5, 40_000))
    y = alpha * data + np.sqrt(sigma2) * z
    terms = (score(y) + z / np.sqrt(sigma2)) ** 2
    se = np.sqrt(terms.var(axis=1, ddof=1).sum() / z.shape[1]) / 5
    res = score_matching_1d(score, data, alpha, sigma2)
    assert abs(terms.mean() - res.dsm) <= SE_BAND * se
    samples = mixture_sample(200_000, data, alpha, sigma2, rng)[:, 0]
    terms = (mixture_score(samples[:, None], data, alpha, sigma2)[:, 0] - score(samples)) ** 2
    assert abs(terms.mean() - res.explicit) <= SE_BAND * terms.std(ddof=1) / np.sqrt(terms.size)


def test_noisy_integrand_raises_instead_of_running_away():
    data, alpha, sigma2 = _mixture()
    noisy = np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="rel_tol"):
        score_matching_1d(lambda y: -y * (1 + 1e-6 * noisy.standard_normal(y.shape)),
                          data, alpha, sigma2)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="sigma2"):
        gaussian_score_matching(0.0, 1.0, 0.5, 0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"\bvar\b"):
        gaussian_score_matching(0.0, -1.0, 0.5, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="gain"):
        gaussian_score_matching(0.0, 1.0, 0.5, 1.0, [[1.0, 2.0], [0.0, 1.0]], 0.0)
    with pytest.raises(ValueError, match="same length"):
        gaussian_score_matching([0.0, 1.0], 1.0, 0.5, 1.0, [1.0, 2.0, 3.0], 0.0)
    with pytest.raises(TypeError, match="score"):
        score_matching_1d(None, [[0.0]], 0.5, 1.0)
    with pytest.raises(TypeError, match="divergence"):
        score_matching_1d(np.sin, [[0.0]], 0.5, 1.0, divergence=3)
    with pytest.raises(ValueError, match="data"):
        score_matching_1d(np.sin, [[0.0, 1.0]], 0.5, 1.0)
    with pytest.raises(ValueError, match="data"):
        fisher_information_1d(np.zeros((2, 2)), 0.5, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        fisher_information_1d([[0.0]], -0.5, 1.0)
    with pytest.raises(ValueError, match="rel_tol"):
        score_matching_1d(np.sin, [[0.0]], 0.5, 1.0, rel_tol=0.0)
    with pytest.raises(ValueError, match="score"):
        score_matching_1d(lambda y: y[:2], [[0.0]], 0.5, 1.0)
