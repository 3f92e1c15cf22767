"""EmpiricalScore against the exact mixture on hard cases, at the accuracy it reaches.

The reference (:mod:`exact_mixture`) is exact: rational logits from the very float64
inputs (data, x, alpha, sigma2), 256-bit exp/log. The bounds are
:func:`exact_mixture.achieved_bounds` with ``C = 64`` (``64 eps = 1.4e-14``), a small
multiple of what both kernels reach (about ``1e-16`` relative: the worst ratio
error/bound over these cases is 0.04 for ``D`` and 0.1 for ``log p``; ``python
benchmarks/accuracy_score.py`` prints them):

* ``|dD_j| <= 64 eps max|x_k| + (softmax sensitivity)``,
* ``|d log p| <= 64 eps (1 + |l_r| + log N + (d/2)|log(2 pi sigma2)|) + (sensitivity)``,
* ``|ds_j| <= (64 eps (|u_rj| + alpha sum_k w_k |x_kj - x_rj|) + alpha (sensitivity_j))
  / sigma2``: the score relative to its own scale, as formed from the compensated
  residual ``u_r = x - alpha x_r`` -- no ``eps |x| / sigma2`` term;

where the sensitivity propagates logit-gap errors ``Lambda_k = 64 eps alpha |x_k -
x_r| (|u_r| + alpha |x_k - x_r|) / sigma2`` (direct differences relative to the
nearest point ``x_r``) exactly through the softmax. Where ``Lambda`` is tiny this is
``64 eps`` of the natural scale; where the softmax is ill-conditioned (midway
between far-apart points at small ``sigma2``) it grows with the conditioning.

The BLAS kernel (``d > 16``) computes ``x . y_k`` by a matrix multiply and refines,
by direct differences, the rows whose rounding estimate exceeds ``LOGIT_TOL``
(1e-12). :func:`test_loosened_refinement_threshold_is_caught` loosens it to 1e-6 and
shows these checks fail (the denoiser's error grows from ~1e-16 to ~1e-12 at ``d =
40``, ``sigma2 = 1e-6``).
"""

from __future__ import annotations

import math

import exact_mixture
import mpmath
import numpy as np
import pytest

import numdiff as nd
import numdiff.engines.limits

C = 64


def ou_time_for_sigma2(s2):
    return -0.5 * math.log1p(-s2)


def oracle_errors(data, t, x, schedule=None, c=C, device="cpu"):
    """Worst ``error / bound`` of ``denoise``, ``log_density`` and ``score`` over the
    queries ``x (M, d)``, with :func:`exact_mixture.achieved_bounds` (``c`` rounding
    units), for the model on ``device``. NaN or an infinity gives ``inf``."""
    schedule = schedule or nd.OU()
    f = nd.EmpiricalScore(data, schedule, device=device)
    values = (f.denoise(t, x), f.score(t, x), f.log_density(t, x))
    if device == "cuda":
        values = tuple(f.to_host(v) for v in values)
    return error_ratios(data, t, x, schedule, *values, c=c)


def error_ratios(data, t, x, schedule, den, score, logp, c=C):
    """:func:`oracle_errors` for values computed elsewhere."""
    alpha, sigma2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    worst = dict.fromkeys(["denoise", "log_density", "score"], 0.0)
    for m in range(x.shape[0]):
        ref = exact_mixture.reference(data, alpha, sigma2, x[m])
        b = exact_mixture.achieved_bounds(ref, c)
        for key, value, exact, bound in [
            ("denoise", den[m], ref.denoise, b.denoise),
            ("log_density", logp[m], ref.log_density, b.log_density),
            ("score", score[m], ref.score, b.score),
        ]:
            ratio = exact_mixture.error_ratio(value, exact, bound)
            if not np.isfinite(value).all():
                ratio = math.inf
            worst[key] = max(worst[key], ratio)
    return worst


def check(data, t, x, schedule=None):
    worst = oracle_errors(data, t, x, schedule)
    assert all(v <= 1.0 for v in worst.values()), f"error / bound: {worst}"


# -- the reference itself -------------------------------------------------------------


def _mp_naive(data, alpha, sigma2, x, dps=60):
    """An independent evaluation: every logit in ``dps``-digit mpmath, then softmax."""
    with mpmath.workdps(dps):
        a, s2 = mpmath.mpf(float(alpha)), mpmath.mpf(float(sigma2))
        n, d = data.shape
        logits = [
            -mpmath.fsum((mpmath.mpf(float(x[j])) - a * mpmath.mpf(float(data[k, j]))) ** 2
                         for j in range(d)) / (2 * s2)
            for k in range(n)
        ]
        top = max(logits)
        w = [mpmath.exp(lg - top) for lg in logits]
        total = mpmath.fsum(w)
        den = [mpmath.fsum(w[k] * mpmath.mpf(float(data[k, j])) for k in range(n)) / total
               for j in range(d)]
        logp = top + mpmath.log(total) - mpmath.log(n) - mpmath.mpf(d) / 2 * mpmath.log(2 * mpmath.pi * s2)
        return float(logp), np.array([float(v) for v in den])


@pytest.mark.parametrize("dim", [2, 40])
def test_reference_agrees_with_a_naive_60_digit_evaluation(dim):
    rng = np.random.default_rng(60 + dim)
    data = rng.standard_normal((7, dim))
    x = 0.9 * data[2] + 0.05 * rng.standard_normal(dim)
    ref = exact_mixture.reference(data, 0.9, 0.0025, x)
    logp, den = _mp_naive(data, 0.9, 0.0025, x)
    assert ref.log_density == logp
    assert np.array_equal(ref.denoise, den)
    assert ref.weights.sum() == pytest.approx(1.0, abs=1e-15)


# -- both kernels on hard cases ----------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 2, 3, 40])
def test_tiny_sigma2_near_the_data(dim):
    rng = np.random.default_rng(dim)
    data = rng.standard_normal((12, dim))
    t = ou_time_for_sigma2(1e-10)
    alpha, sigma = math.exp(-t), 1e-5
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
    alpha, sigma = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    x = alpha * data[:3] + sigma * rng.standard_normal((3, 256))
    check(data, t, x)


def test_other_schedules():
    rng = np.random.default_rng(50)
    data = rng.standard_normal((10, 3))
    x = rng.standard_normal((3, 3))
    for sched, t in [(nd.VPLinear(), 0.01), (nd.VPCosine(), 0.5), (nd.VE(), 0.3)]:
        check(data, t, x, sched)


# -- the BLAS kernel (d > 16) at small and intermediate sigma2 ---------------------------


def blas_case(sigma2, where, dim=40, seed=70):
    """``(data, t, x)`` at ``d = 40``: 16 points, one with a neighbour ``2 sigma``
    away (so that two weights matter near it); queries near the data (``sigma``
    noise), far (``|x| ~ 30``) or midway between two points (plus ``1e-3 sigma``)."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((16, dim))
    sigma = math.sqrt(sigma2)
    data[1] = data[0] + 2.0 * sigma * rng.standard_normal(dim) / math.sqrt(dim)
    t = ou_time_for_sigma2(sigma2)
    alpha = math.exp(-t)
    if where == "near":
        x = alpha * data[[0, 0, 1, 5]] + sigma * rng.standard_normal((4, dim))
    elif where == "far":
        x = 30.0 * rng.standard_normal((3, dim)) / math.sqrt(dim) * 5.0
    else:
        x = alpha * 0.5 * (data[[2, 3, 0]] + data[[4, 6, 7]]) + 1e-3 * sigma * rng.standard_normal((3, dim))
    return data, t, x


@pytest.mark.parametrize("where", ["near", "far", "midway"])
@pytest.mark.parametrize("sigma2", [1e-10, 1e-6, 1e-3, 0.1])
def test_blas_kernel_small_and_intermediate_sigma2(sigma2, where):
    check(*blas_case(sigma2, where))


def test_loosened_refinement_threshold_is_caught(monkeypatch):
    """An injected bug: ``LOGIT_TOL`` 1e-12 -> 1e-6 leaves BLAS rows unrefined whose
    logits are off by up to 1e-6 nats. At ``d = 40``, ``sigma2 = 1e-6`` near the data
    the denoiser's error exceeds its bound (measured 7.9e-12 against 2.5e-16)."""
    data, t, x = blas_case(1e-6, "near")
    assert oracle_errors(data, t, x)["denoise"] <= 1.0
    monkeypatch.setattr(numdiff.engines.limits, "LOGIT_TOL", 1e-6)
    assert oracle_errors(data, t, x)["denoise"] > 1.0


# -- the score from the compensated residual (issue 7, section 1) -------------------------


@pytest.mark.parametrize("dim", [3, 40])
def test_score_keeps_relative_accuracy_at_large_x(dim):
    """N = 1, |x| = 5.6e6, sigma2 = 1.3e-3: the exact score is ``-(x - alpha x_1) /
    sigma2`` of size ~1/sigma; ``(alpha D - x) / sigma2`` lost 1.7e-7 of it."""
    rng = np.random.default_rng(80 + dim)
    x1 = 5.6e6 * rng.standard_normal((1, dim)) / math.sqrt(dim)
    t = ou_time_for_sigma2(1.3e-3)
    alpha, sigma = math.exp(-t), math.sqrt(1.3e-3)
    x = alpha * x1 + sigma * rng.standard_normal((2, dim))
    score = nd.EmpiricalScore(x1, nd.OU()).score(t, x)
    for m in range(2):
        ref = exact_mixture.reference(x1, nd.OU().alpha(t), nd.OU().sigma2(t), x[m])
        rel = np.abs(score[m] - ref.score).max() / np.abs(ref.score).max()
        assert rel <= C * exact_mixture.EPS, rel
    check(x1, t, x)


@pytest.mark.parametrize("t", [0.05, 0.3])
def test_blas_unrefined_score_on_the_sampler_path(t):
    """Unrefined BLAS rows form ``(alpha D - x) / sigma2``: within the direct kernel's
    bound plus ``C eps (|x_j| + alpha |D_j|) / sigma2`` per component
    (docs/numerics.md#blas-kernel). Queries ``alpha x_k + sigma z`` at ``d = N = 40``."""
    rng = np.random.default_rng(5)
    data = rng.standard_normal((40, 40))
    schedule = nd.OU()
    alpha, sigma2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    x = alpha * data[:5] + math.sqrt(sigma2) * rng.standard_normal((5, 40))
    f = nd.EmpiricalScore(data, schedule)
    score, den = f.score(t, x), f.denoise(t, x)
    for m in range(x.shape[0]):
        ref = exact_mixture.reference(data, alpha, sigma2, x[m])
        bound = exact_mixture.achieved_bounds(ref, C).score + C * exact_mixture.EPS * (
            np.abs(x[m]) + alpha * np.abs(den[m])) / sigma2
        assert exact_mixture.error_ratio(score[m], ref.score, bound) <= 1.0
