"""EmpiricalScore against a 50-digit mpmath oracle on hard cases.

Tolerances (issue 2): |dD| <= 1e-12 max|x_k|, |d log p| <= 1e-12 (1 + |log p|),
|d score| sigma2 / (|x| + alpha max|x_k|) <= 1e-12. The oracle sees the very same
float64 inputs (data, x, alpha, sigma2), converted exactly to mpmath numbers.
"""

import mpmath
import numpy as np
import pytest

import numdiff as nd

mpmath.mp.dps = 50


def mp_oracle(data, alpha, sigma2, x):
    """log p, D and score of the mixture at one point, in 50-digit arithmetic."""
    a, s2 = mpmath.mpf(float(alpha)), mpmath.mpf(float(sigma2))
    n, d = data.shape
    logits = []
    for k in range(n):
        sq = mpmath.fsum((mpmath.mpf(float(x[j])) - a * mpmath.mpf(float(data[k, j]))) ** 2 for j in range(d))
        logits.append(-sq / (2 * s2))
    top = max(logits)
    w = [mpmath.exp(lg - top) for lg in logits]
    total = mpmath.fsum(w)
    den = [mpmath.fsum(w[k] * mpmath.mpf(float(data[k, j])) for k in range(n)) / total for j in range(d)]
    logp = top + mpmath.log(total) - mpmath.log(n) - mpmath.mpf(d) / 2 * mpmath.log(2 * mpmath.pi * s2)
    score = [(a * den[j] - mpmath.mpf(float(x[j]))) / s2 for j in range(d)]
    return float(logp), np.array([float(v) for v in den]), np.array([float(v) for v in score])


def ou_time_for_sigma2(s2):
    return -0.5 * np.log1p(-s2)


def check(data, t, x, schedule=None):
    schedule = schedule or nd.OU()
    f = nd.EmpiricalScore(data, schedule)
    alpha, sigma2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    den, score, logp = f.denoise(t, x), f.score(t, x), f.log_density(t, x)
    assert np.isfinite(den).all() and np.isfinite(score).all() and np.isfinite(logp).all()
    scale = np.abs(data).max()
    for m in range(x.shape[0]):
        lp, dn, sc = mp_oracle(data, alpha, sigma2, x[m])
        assert abs(logp[m] - lp) <= 1e-12 * (1 + abs(lp)), (m, logp[m], lp)
        assert np.abs(den[m] - dn).max() <= 1e-12 * scale, (m, np.abs(den[m] - dn).max())
        norm = np.linalg.norm(x[m]) + alpha * scale
        assert np.abs(score[m] - sc).max() * sigma2 / norm <= 1e-12


@pytest.mark.parametrize("dim", [1, 2, 3, 40])
def test_tiny_sigma2_near_the_data(dim):
    rng = np.random.default_rng(dim)
    data = rng.standard_normal((12, dim))
    t = ou_time_for_sigma2(1e-10)
    alpha, sigma = np.exp(-t), 1e-5
    # Queries within a few sigma of a data point, where several weights matter.
    x = alpha * data[:4] + sigma * rng.standard_normal((4, dim))
    data[5] = data[0] + 2e-5  # a close neighbour: non-trivial softmax
    check(data, t, x)


@pytest.mark.parametrize("dim", [2, 40])
def test_far_queries(dim):
    rng = np.random.default_rng(10 + dim)
    data = rng.standard_normal((15, dim))
    x = 1e4 * rng.standard_normal((3, dim)) / np.sqrt(dim)
    for t in [0.05, 1.0, 8.0]:
        check(data, t, x)


@pytest.mark.parametrize("dim", [2, 40])
def test_duplicated_points(dim):
    rng = np.random.default_rng(20 + dim)
    base = rng.standard_normal((4, dim))
    data = np.concatenate([base, base, base[:1]])
    x = rng.standard_normal((4, dim))
    for t in [ou_time_for_sigma2(1e-6), 0.3, 3.0]:
        check(data, t, x)


@pytest.mark.parametrize("dim", [1, 5, 40])
def test_single_point(dim):
    rng = np.random.default_rng(30 + dim)
    data = rng.standard_normal((1, dim))
    x = rng.standard_normal((3, dim))
    for t in [ou_time_for_sigma2(1e-10), 0.5]:
        check(data, t, x)


@pytest.mark.parametrize("t", [ou_time_for_sigma2(1e-10), ou_time_for_sigma2(1e-4), 0.2, 2.0])
def test_off_centre_data_d256(t):
    rng = np.random.default_rng(40)
    data = 50.0 + rng.standard_normal((10, 256))
    alpha, sigma = np.exp(-t), np.sqrt(-np.expm1(-2 * t))
    x = alpha * data[:3] + sigma * rng.standard_normal((3, 256))
    check(data, t, x)


def test_other_schedules():
    rng = np.random.default_rng(50)
    data = rng.standard_normal((10, 3))
    x = rng.standard_normal((3, 3))
    for sched, t in [(nd.VPLinear(), 0.01), (nd.VPCosine(), 0.5), (nd.VE(), 0.3)]:
        check(data, t, x, sched)
