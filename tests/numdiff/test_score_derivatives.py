"""Properties of the score's derivatives (hypothesis) and their argument checks.

d = 3 runs the direct-difference kernel, d = 24 the BLAS path (DIRECT_MAX_DIM = 16).
Tolerances are ``C eps`` (``C = 64``) of the scale ``alpha R^2 / sigma2`` of ``grad D``,
``R = max_k |x_k - D|`` (twice the data radius at most); the oracle file
(test_score_derivatives_oracle.py) holds the tight, per-case bounds.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numdiff as nd
import numdiff.derivatives as derivatives_mod
from numdiff.engines import limits

DIMS = [3, 24]
C = 64
EPS = np.finfo(np.float64).eps


@st.composite
def problems(draw, dim, n_query=4):
    n = draw(st.integers(1, 30))
    seed = draw(st.integers(0, 2**32 - 1))
    t = draw(st.floats(0.05, 3.0))
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, dim)) * draw(st.floats(0.2, 3.0))
    x = rng.standard_normal((n_query, dim)) * 1.5
    return data, t, x


def setup(points, t):
    sched = nd.OU()
    f = nd.EmpiricalScore(points, sched)
    alpha, sigma2 = float(sched.alpha(t)), float(sched.sigma2(t))
    diam = 2.0 * np.linalg.norm(points - points.mean(0), axis=1).max()
    return f, alpha, sigma2, diam


@pytest.mark.parametrize("dim", DIMS)
@given(data=st.data())
def test_jacobian_is_symmetric_psd_and_of_rank_at_most_n_minus_1(dim, data):
    points, t, x = data.draw(problems(dim))
    f, alpha, sigma2, diam = setup(points, t)
    jac = f.jacobian(t, x)
    assert jac.shape == (x.shape[0], dim, dim)
    assert np.array_equal(jac, np.swapaxes(jac, 1, 2))
    bound = C * EPS * alpha * diam**2 / sigma2
    eig = np.linalg.eigvalsh(jac)[:, ::-1]  # descending
    assert (eig >= -bound).all()
    rank = min(dim, len(points) - 1)
    assert (np.abs(eig[:, rank:]) <= bound).all()


@pytest.mark.parametrize("dim", DIMS)
@given(data=st.data())
def test_jacobian_equals_central_differences_of_denoise(dim, data):
    """Central differences with step ``h``: truncation ``(h^2 / 6) |D'''|`` with
    ``|D'''| = (alpha / sigma2)^3 |kappa_4| <= 6 (alpha / sigma2)^3 R^4`` (the fourth
    cumulant of the weights, supported on a ball of radius ``R``), and rounding
    ``2 * 4 eps max|x_k| / (2h)`` (two denoiser values, each within a few eps of
    ``max|x_k|``). ``h = 1e-3 sigma2 / (alpha R)`` balances them; the tolerance is
    their sum times 4."""
    points, t, x = data.draw(problems(dim, n_query=2))
    f, alpha, sigma2, diam = setup(points, t)
    jac = f.jacobian(t, x)
    scale = alpha * max(diam, 1e-3) / sigma2
    h = 1e-3 / scale
    fd = np.empty_like(jac)
    for j in range(dim):
        step = np.zeros(dim)
        step[j] = h
        fd[:, :, j] = (f.denoise(t, x + step) - f.denoise(t, x - step)) / (2 * h)
    big = np.abs(points).max()
    tol = 4 * (h**2 * (alpha / sigma2) ** 3 * diam**4 + 4 * EPS * big / h + EPS * scale * diam)
    assert np.abs(fd - jac).max() <= tol


@pytest.mark.parametrize("dim", DIMS)
@given(data=st.data())
def test_divergence_is_the_trace_of_the_score_jacobian(dim, data):
    points, t, x = data.draw(problems(dim))
    f, alpha, sigma2, diam = setup(points, t)
    trace = np.trace(f.jacobian(t, x, of="score"), axis1=1, axis2=2)
    tol = C * EPS * dim * (alpha**2 * diam**2 / sigma2**2 + 1.0 / sigma2)
    assert np.abs(f.divergence(t, x) - trace).max() <= tol


@pytest.mark.parametrize("dim", DIMS)
@given(data=st.data())
def test_jvp_equals_jacobian_times_v(dim, data):
    points, t, x = data.draw(problems(dim))
    f, alpha, sigma2, diam = setup(points, t)
    v = np.random.default_rng(1).standard_normal(x.shape)
    norm_v = np.linalg.norm(v, axis=1)
    for of in ["denoiser", "score"]:
        expect = np.einsum("mij,mj->mi", f.jacobian(t, x, of=of), v)
        tol = C * EPS * norm_v[:, None] * alpha * diam**2 / sigma2
        if of == "score":
            tol = tol * alpha / sigma2 + C * EPS * norm_v[:, None] / sigma2
        assert (np.abs(f.jvp(t, x, v, of=of) - expect) <= tol).all()
    # One tangent for all queries.
    assert np.array_equal(f.jvp(t, x, v[0]), f.jvp(t, x, np.broadcast_to(v[0], x.shape)))


@pytest.mark.parametrize("dim,k", [(3, 1), (24, 4)])
@given(data=st.data())
def test_jacobian_eigs_equal_dense_eigh(dim, k, data):
    points, t, x = data.draw(problems(dim, n_query=1))
    f, alpha, sigma2, diam = setup(points, t)
    res = f.jacobian_eigs(t, x[0], k=k)
    jac = f.jacobian(t, x)[0]
    dense = np.linalg.eigvalsh(jac)[::-1][:k]
    scale = alpha * diam**2 / sigma2
    # eigsh converges to ~1e-15 relative of the largest eigenvalue.
    tol = 1e-9 * max(dense[0], 0.0) + C * EPS * scale
    assert res.eigenvalues.shape == (k,) and res.eigenvectors.shape == (dim, k)
    assert (np.diff(res.eigenvalues) <= 0).all()
    assert np.abs(res.eigenvalues - dense).max() <= tol
    resid = jac @ res.eigenvectors - res.eigenvectors * res.eigenvalues
    assert np.abs(resid).max() <= 1e-6 * max(dense[0], 0.0) + C * EPS * scale
    assert res.t == t and np.array_equal(res.x, x[0])


@pytest.mark.parametrize("dim", DIMS)
def test_dense_fallback_for_k_near_d(dim):
    rng = np.random.default_rng(5)
    points = rng.standard_normal((40, dim))
    f = nd.EmpiricalScore(points, nd.OU())
    x = rng.standard_normal(dim)
    res = f.jacobian_eigs(0.7, x, k=dim)
    expect = np.linalg.eigvalsh(f.jacobian(0.7, x)[0])[::-1]
    assert np.allclose(res.eigenvalues, expect, rtol=0, atol=1e-13 * expect[0])
    if dim >= 6:
        assert f.jacobian_eigs(0.7, x).k == 6


# -- argument checks ---------------------------------------------------------------------


@pytest.fixture
def small():
    rng = np.random.default_rng(0)
    return nd.EmpiricalScore(rng.standard_normal((5, 3)), nd.OU()), rng.standard_normal((2, 3))


def test_bad_of_is_named(small):
    f, x = small
    with pytest.raises(ValueError, match="of must be"):
        f.jacobian(0.5, x, of="hessian")
    with pytest.raises(TypeError, match="of must be"):
        f.jvp(0.5, x, x, of=1)


def test_bad_tangents_are_named(small):
    f, x = small
    with pytest.raises(ValueError, match="v must have"):
        f.jvp(0.5, x, np.ones((3, 3)))
    with pytest.raises(ValueError, match="v"):
        f.jvp(0.5, x, np.ones((2, 4)))
    with pytest.raises(ValueError, match="v contains NaN"):
        f.jvp(0.5, x, np.full((2, 3), np.nan))


def test_dense_jacobian_refuses_large_sizes(small, monkeypatch):
    f, x = small
    monkeypatch.setattr(derivatives_mod, "JACOBIAN_MAX", 17)
    with pytest.raises(ValueError, match="x: .*jvp.*jacobian_eigs"):
        f.jacobian(0.5, x)


def test_jacobian_eigs_takes_one_query(small):
    f, x = small
    with pytest.raises(ValueError, match="one query"):
        f.jacobian_eigs(0.5, x)
    with pytest.raises(ValueError, match="k must be"):
        f.jacobian_eigs(0.5, x[0], k=4)
    with pytest.raises(TypeError, match="k must be an int"):
        f.jacobian_eigs(0.5, x[0], k=1.5)


def test_empty_batches(small):
    f, _ = small
    empty = np.empty((0, 3))
    assert f.divergence(0.5, empty).shape == (0,)
    assert f.jvp(0.5, empty, empty).shape == (0, 3)
    assert f.jacobian(0.5, empty).shape == (0, 3, 3)


def test_results_do_not_depend_on_block_size(monkeypatch):
    rng = np.random.default_rng(9)
    points = rng.standard_normal((700, 3))
    x = rng.standard_normal((5, 3))
    v = rng.standard_normal((5, 3))
    f = nd.EmpiricalScore(points, nd.OU())
    base = f.divergence(0.1, x), f.jvp(0.1, x, v)
    monkeypatch.setattr(limits, "DIRECT_BLOCK", 64)
    other = f.divergence(0.1, x), f.jvp(0.1, x, v)
    scale = 0.9 * 16 / 0.18
    assert np.allclose(base[0], other[0], rtol=1e-13, atol=1e-13 * scale / 0.18)
    assert np.allclose(base[1], other[1], rtol=0, atol=1e-13 * scale * math.sqrt(3))
