"""Derivatives of the empirical score against an exact reference, on hard cases.

The reference: :func:`exact_mixture.reference` gives the logit gaps ``l_k - l_r`` as
exact rationals rounded to 256 bits; here the weights, the offsets ``dx_k = x_k -
x_r`` (exact at 256 bits) and ``Cov_w = sum_k w_k (dx_k - mu)(dx_k - mu)^T``, ``mu =
sum_k w_k dx_k``, are formed at 256 bits (more than the 50 digits asked), centred,
so that the reference's own error is below ``2^-200`` of every scale used below.

**Bounds** (derived in docs/numerics.md#derivatives), for the entries of ``grad D =
(alpha / sigma2) Cov_w`` (and ``Cov_w v`` for a unit ``v``, ``tr Cov_w`` for the
divergence), with ``A = sum_k w_k |x_k - x_r|^2`` (the second moment about the
nearest point) and ``R = max_k |x_k - x_r|`` (the data radius about it):

* forming: ``C eps (alpha / sigma2) A`` on the direct kernel (``d <= 16``) and the
  dense Jacobian; the BLAS path (``d > 16``) adds ``C eps (alpha / sigma2) R^2``
  (the issue's scale ``alpha R^2 / sigma2``): unrefined rows take moments about the
  data mean from matrix products, refined rows keep BLAS logits beyond 40 nats;
* sensitivity: the logit-gap errors ``Lambda_k`` of the direct differences
  (:func:`exact_mixture.achieved_bounds`) and the flush of weights below ``e^-99``
  move the weights by at most ``delta_k`` (:func:`exact_mixture._softmax_spread`),
  and ``|d Cov| <= sum_k delta_k |dx_k - mu|^2 + (sum_k delta_k |dx_k - mu|)^2``
  (exact: ``Cov_{w'} - Cov_w = sum_k (w'_k - w_k)(dx_k - mu)(dx_k - mu)^T - (mu' -
  mu)(mu' - mu)^T``), times ``alpha / sigma2``;
* the divergence: ``alpha^2 / sigma2^2`` times the ``tr`` bound, plus ``C eps d / sigma2``.

``C = 64``. Measured worst error / bound over these cases (one run): 0.014 on the
direct kernel (``d = 3``), 0.008 for ``jvp`` / ``divergence`` on the BLAS path and
0.16 for the dense Jacobian (far queries, ``d = 24``); the naive ``E_w|x_k|^2 -
|D|^2`` in raw coordinates exceeds the bound by a factor 3.5e8 on the tiny-``sigma2``
case (:func:`test_naive_second_moment_is_caught`).
"""

from __future__ import annotations

import math

import exact_mixture
import mpmath
import numpy as np
import pytest

import numdiff as nd
import numdiff.engines.dispatch as dispatch_mod
from numdiff.engines import limits
from numdiff.engines.results import Centred

C = 64
EPS = exact_mixture.EPS
PREC = 256
FLUSH_GAP = 99.0


def ou_time_for_sigma2(s2):
    return -0.5 * math.log1p(-s2)


def exact_covariance(data, alpha, sigma2, x, c=C, blas=False):
    """Exact ``Cov_w (d, d)`` at ``x`` and the bound on its entries (module docstring).

    Returns ``(cov, bound, ref)``; ``cov`` rounded to float64, ``bound`` a float
    (the same for every entry, for ``tr Cov`` and for ``Cov v`` with ``|v| = 1``).
    """
    ref = exact_mixture.reference(data, alpha, sigma2, x)
    n, d = data.shape
    r = ref.top
    with mpmath.workprec(PREC):
        terms = [mpmath.exp(g) if g > -exact_mixture.GAP_CUTOFF else mpmath.mpf(0)
                 for g in ref.gap_mp]
        z = mpmath.fsum(terms)
        w = [t / z for t in terms]
        dx = [[mpmath.mpf(float(data[k, j])) - mpmath.mpf(float(data[r, j])) for j in range(d)]
              for k in range(n)]
        mu = [mpmath.fsum(w[k] * dx[k][j] for k in range(n)) for j in range(d)]
        cen = [[dx[k][j] - mu[j] for j in range(d)] for k in range(n)]
        cov = np.array([[float(mpmath.fsum(w[k] * cen[k][i] * cen[k][j] for k in range(n)))
                         for j in range(d)] for i in range(d)])
        cen_sq = [mpmath.fsum(v * v for v in cen[k]) for k in range(n)]
        big_a = mpmath.fsum(w[k] * mpmath.fsum(v * v for v in dx[k]) for k in range(n))
        radius_sq = max(mpmath.fsum(v * v for v in dx[k]) for k in range(n))
    lam = exact_mixture.achieved_bounds(ref, c).logit_gap
    spread = exact_mixture._softmax_spread(ref, lam)
    with mpmath.workprec(64):
        flushed = [k for k in range(n) if ref.gap_mp[k] < -FLUSH_GAP]
        w_flush = mpmath.fsum(w[k] for k in flushed) if flushed else mpmath.mpf(0)
        delta = [spread[k] + (w[k] if k in flushed else 2 * w_flush * w[k]) for k in range(n)]
        sens = (mpmath.fsum(delta[k] * cen_sq[k] for k in range(n))
                + mpmath.fsum(delta[k] * mpmath.sqrt(cen_sq[k]) for k in range(n)) ** 2)
        forming = c * EPS * (big_a + (radius_sq if blas else 0))
        bound = float(forming + sens)
    return cov, bound, ref


def derivative_errors(data, t, x, schedule=None, blas=None, v_seed=0):
    """Worst error / bound of ``jacobian`` (both kinds), ``jvp`` and ``divergence``."""
    schedule = schedule or nd.OU()
    f = nd.EmpiricalScore(data, schedule)
    blas = data.shape[1] > limits.DIRECT_MAX_DIM if blas is None else blas
    alpha, sigma2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    d = data.shape[1]
    v = np.random.default_rng(v_seed).standard_normal(x.shape)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    jac, jac_s = f.jacobian(t, x), f.jacobian(t, x, of="score")
    jv, div = f.jvp(t, x, v), f.divergence(t, x)
    worst = dict.fromkeys(["jacobian", "jacobian_score", "jvp", "divergence"], 0.0)
    k = alpha / sigma2
    for m in range(x.shape[0]):
        cov, b, _ = exact_covariance(data, alpha, sigma2, x[m], blas=blas)
        # The dense Jacobian is the direct route in every d: no BLAS term.
        _, b_dense, _ = exact_covariance(data, alpha, sigma2, x[m], blas=False)
        exact_j = k * cov
        exact_s = (alpha * exact_j - np.eye(d)) / sigma2
        exact_div = alpha * k * np.trace(cov) / sigma2 - d / sigma2
        for key, value, exact, bound in [
            ("jacobian", jac[m], exact_j, k * b_dense),
            ("jacobian_score", jac_s[m], exact_s,
             alpha * k * b_dense / sigma2 + C * EPS * np.abs(exact_s)),
            ("jvp", jv[m], exact_j @ v[m], k * b),
            ("divergence", div[m], exact_div,
             alpha * k * b / sigma2 + C * EPS * d / sigma2),
        ]:
            worst[key] = max(worst[key], exact_mixture.error_ratio(value, exact, bound))
    return worst


def check(data, t, x, **kw):
    worst = derivative_errors(data, t, x, **kw)
    assert all(v <= 1.0 for v in worst.values()), f"error / bound: {worst}"
    return worst


# -- hard cases, both kernels (d = 3: direct, d = 24: BLAS) --------------------------------


@pytest.mark.parametrize("dim", [2, 3, 24])
def test_tiny_sigma2_near_a_data_point(dim):
    rng = np.random.default_rng(dim)
    data = rng.standard_normal((10, dim))
    data[5] = data[0] + 2e-5 * rng.standard_normal(dim) / math.sqrt(dim)  # two weights matter
    t = ou_time_for_sigma2(1e-10)
    alpha = math.exp(-t)
    x = alpha * data[[0, 0, 3]] + 1e-5 * rng.standard_normal((3, dim))
    check(data, t, x)


@pytest.mark.parametrize("dim", [2, 3, 24])
def test_far_queries(dim):
    rng = np.random.default_rng(10 + dim)
    data = rng.standard_normal((10, dim))
    x = 1e4 * rng.standard_normal((2, dim)) / math.sqrt(dim)
    for t in [0.05, 1.0, 8.0]:
        check(data, t, x)


@pytest.mark.parametrize("dim", [2, 3, 24])
def test_duplicated_points(dim):
    rng = np.random.default_rng(20 + dim)
    base = rng.standard_normal((4, dim))
    data = np.concatenate([base, base, base[:1]])
    x = rng.standard_normal((3, dim))
    for t in [ou_time_for_sigma2(1e-6), 0.3, 3.0]:
        check(data, t, x)


@pytest.mark.parametrize("dim", [2, 3, 24])
def test_single_point_is_exact(dim):
    """N = 1: ``grad D = 0`` and ``div s = -d / sigma2`` exactly."""
    rng = np.random.default_rng(30 + dim)
    data = rng.standard_normal((1, dim))
    x = rng.standard_normal((3, dim))
    f = nd.EmpiricalScore(data, nd.OU())
    for t in [ou_time_for_sigma2(1e-10), 0.5]:
        sigma2 = float(nd.OU().sigma2(t))
        assert np.array_equal(f.jacobian(t, x), np.zeros((3, dim, dim)))
        assert np.array_equal(f.jvp(t, x, x), np.zeros((3, dim)))
        assert np.array_equal(f.divergence(t, x), np.full(3, -dim / sigma2))
        check(data, t, x)


@pytest.mark.parametrize("dim", [2, 3, 24])
def test_off_centre_data(dim):
    rng = np.random.default_rng(40 + dim)
    data = 1e6 + rng.standard_normal((8, dim))
    for t in [ou_time_for_sigma2(1e-10), ou_time_for_sigma2(1e-4), 0.2, 2.0]:
        alpha, sigma = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
        x = alpha * data[:2] + sigma * rng.standard_normal((2, dim))
        check(data, t, x)


@pytest.mark.parametrize("sigma2", [1e-6, 1e-3, 0.1])
def test_blas_intermediate_sigma2(sigma2):
    """d = 24 between the refined and unrefined regimes of the BLAS path."""
    rng = np.random.default_rng(70)
    data = rng.standard_normal((12, 24))
    data[1] = data[0] + 2.0 * math.sqrt(sigma2) * rng.standard_normal(24) / math.sqrt(24)
    t = ou_time_for_sigma2(sigma2)
    alpha = math.exp(-t)
    x = alpha * data[[0, 1, 5]] + math.sqrt(sigma2) * rng.standard_normal((3, 24))
    check(data, t, x)


# -- an injected bug --------------------------------------------------------------------


def test_naive_second_moment_is_caught(monkeypatch):
    """Replace the centred merge by the textbook ``E_w|x_k|^2 - |D|^2`` in raw
    coordinates: at ``sigma2 = 1e-10`` next to a data point of norm ~2 its rounding
    (``eps |x_r|^2``) swamps ``tr Cov_w`` (~``1e-10``) and the bound (``64 eps A``)."""
    rng = np.random.default_rng(3)
    data = rng.standard_normal((10, 3)) + 1.0
    data[5] = data[0] + 2e-5 * rng.standard_normal(3) / math.sqrt(3)
    t = ou_time_for_sigma2(1e-10)
    x = math.exp(-t) * data[[0]] + 1e-5 * rng.standard_normal((1, 3))
    assert check(data, t, x)["divergence"] <= 1.0

    def naive(self, x, alpha, sigma2, v=None):
        w = self.weights(x, alpha, sigma2)
        data = self.keys.data
        mean = w @ data
        trace = w @ (data**2).sum(axis=1) - (mean**2).sum(axis=1)
        vec = None if v is None else (w * (data @ v.T).T) @ data - mean * (
            (mean * v).sum(axis=1)[:, None])
        return Centred(trace, vec)

    monkeypatch.setattr(dispatch_mod.Dispatcher, "centred", naive)
    worst = derivative_errors(data, t, x)
    assert worst["divergence"] > 1e3 and worst["jvp"] > 1e3, worst

