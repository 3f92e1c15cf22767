"""Properties of the empirical score (hypothesis), on both kernels.

d = 3 runs the direct-difference kernel, d = 24 the BLAS path (DIRECT_MAX_DIM = 16).
"""

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp

import numdiff as nd
from numdiff.engines import limits

DIMS = [3, 24]


def dense_reference(data, alpha, sigma2, x):
    """D and log p from full logits and scipy's logsumexp (small cases only)."""
    sq = ((x[:, None, :] - alpha * data[None, :, :]) ** 2).sum(-1)
    logits = -sq / (2 * sigma2)
    lse = logsumexp(logits, axis=1)
    den = np.exp(logits - lse[:, None]) @ data
    logp = lse - np.log(len(data)) - 0.5 * data.shape[1] * np.log(2 * np.pi * sigma2)
    return den, logp


@st.composite
def problems(draw, dim):
    n = draw(st.integers(1, 30))
    seed = draw(st.integers(0, 2**32 - 1))
    t = draw(st.floats(1e-3, 3.0))
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, dim)) * draw(st.floats(0.1, 5.0))
    x = rng.standard_normal((5, dim)) * 2.0
    return data, t, x


@pytest.mark.parametrize("dim", DIMS)
@given(data=st.data())
def test_agrees_with_dense_logsumexp(dim, data):
    points, t, x = data.draw(problems(dim))
    sched = nd.OU()
    f = nd.EmpiricalScore(points, sched)
    den, logp = dense_reference(points, float(sched.alpha(t)), float(sched.sigma2(t)), x)
    scale = np.abs(points).max()
    assert np.allclose(f.denoise(t, x), den, rtol=0, atol=1e-11 * scale)
    assert np.allclose(f.log_density(t, x), logp, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("dim", DIMS)
@given(data=st.data())
def test_permutation_invariance(dim, data):
    points, t, x = data.draw(problems(dim))
    perm = np.random.default_rng(0).permutation(len(points))
    f, g = nd.EmpiricalScore(points, nd.OU()), nd.EmpiricalScore(points[perm], nd.OU())
    scale = np.abs(points).max()
    assert np.allclose(f.denoise(t, x), g.denoise(t, x), rtol=0, atol=1e-12 * scale)
    assert np.allclose(f.log_density(t, x), g.log_density(t, x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dim", DIMS)
@given(data=st.data(), shift_scale=st.floats(-10, 10))
def test_translation_equivariance(dim, data, shift_scale):
    """Data shifted by c, queries by alpha c: D shifts by c, the score is unchanged."""
    points, t, x = data.draw(problems(dim))
    sched = nd.OU()
    c = shift_scale * np.linspace(-1, 1, dim)
    alpha = float(sched.alpha(t))
    f, g = nd.EmpiricalScore(points, sched), nd.EmpiricalScore(points + c, sched)
    scale = np.abs(points).max() + np.abs(c).max()
    assert np.allclose(g.denoise(t, x + alpha * c), f.denoise(t, x) + c, rtol=0, atol=1e-11 * scale)
    s_f, s_g = f.score(t, x), g.score(t, x + alpha * c)
    tol = 1e-11 * (np.abs(x).max() + np.abs(alpha * c).max() + scale) / float(sched.sigma2(t))
    assert np.allclose(s_g, s_f, rtol=0, atol=tol)


@pytest.mark.parametrize("dim", DIMS)
@given(data=st.data())
def test_rotation_equivariance(dim, data):
    points, t, x = data.draw(problems(dim))
    q, _ = np.linalg.qr(np.random.default_rng(1).standard_normal((dim, dim)))
    f, g = nd.EmpiricalScore(points, nd.OU()), nd.EmpiricalScore(points @ q.T, nd.OU())
    scale = np.abs(points).max() + np.abs(x).max()
    assert np.allclose(g.denoise(t, x @ q.T), f.denoise(t, x) @ q.T, rtol=0, atol=1e-11 * scale)
    assert np.allclose(g.log_density(t, x @ q.T), f.log_density(t, x), rtol=1e-11, atol=1e-10)


@pytest.mark.parametrize("dim", DIMS)
@given(seed=st.integers(0, 2**32 - 1), t=st.floats(1e-4, 5.0))
def test_single_point_is_the_gaussian_score(dim, seed, t):
    rng = np.random.default_rng(seed)
    x0, x = rng.standard_normal((1, dim)), rng.standard_normal((4, dim))
    sched = nd.VPLinear()
    t = min(t, 1.0)
    alpha, sigma2 = float(sched.alpha(t)), float(sched.sigma2(t))
    f = nd.EmpiricalScore(x0, sched)
    exact = (alpha * x0 - x) / sigma2
    assert np.allclose(f.score(t, x), exact, rtol=1e-12, atol=1e-12 * np.abs(exact).max())
    gauss = -0.5 * ((x - alpha * x0) ** 2).sum(1) / sigma2 - 0.5 * dim * np.log(2 * np.pi * sigma2)
    assert np.allclose(f.log_density(t, x), gauss, rtol=1e-13, atol=1e-12)


@pytest.mark.parametrize("dim", DIMS)
@given(data=st.data())
def test_score_is_gradient_of_log_density(dim, data):
    """Central differences with h = 1e-5 sigma: truncation ~ h^2 |d^3 log p| and
    rounding ~ eps |log p| / h, both below 1e-6 of the score's scale here."""
    points, t, x = data.draw(problems(dim))
    sched = nd.OU()
    f = nd.EmpiricalScore(points, sched)
    h = 1e-5 * np.sqrt(float(sched.sigma2(t)))
    grad = np.empty_like(x)
    for j in range(dim):
        e = np.zeros(dim)
        e[j] = h
        grad[:, j] = (f.log_density(t, x + e) - f.log_density(t, x - e)) / (2 * h)
    score = f.score(t, x)
    assert np.allclose(grad, score, rtol=0, atol=1e-6 * (1 + np.abs(score).max()))


@pytest.mark.parametrize("dim", DIMS)
@given(data=st.data())
def test_denoiser_stays_in_convex_hull(dim, data):
    """Support-function check: max_k v . x_k >= v . D for 64 directions v."""
    points, t, x = data.draw(problems(dim))
    den = nd.EmpiricalScore(points, nd.OU()).denoise(t, x * 10)
    dirs = np.random.default_rng(2).standard_normal((64, dim))
    slack = 1e-12 * np.abs(points).max() * np.abs(dirs).sum(1)
    assert np.all((dirs @ den.T).max(axis=1) <= (points @ dirs.T).max(axis=0) + slack)


@pytest.mark.parametrize("dim", DIMS)
def test_independent_of_block_size_and_threads(dim, monkeypatch):
    rng = np.random.default_rng(3)
    points = rng.standard_normal((3000, dim))
    x = rng.standard_normal((300, dim))
    f = nd.EmpiricalScore(points, nd.OU())
    base_d, base_l = f.denoise(0.2, x), f.log_density(0.2, x)
    runs = []
    for block, tile in [(64, 128), (1000, 3000)]:
        monkeypatch.setattr(limits, "DIRECT_BLOCK", block)
        monkeypatch.setattr(limits, "TILE_COLS", tile)
        runs.append((f.denoise(0.2, x), f.log_density(0.2, x)))
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        runs.append((f.denoise(0.2, x), f.log_density(0.2, x)))
    finally:
        numba.set_num_threads(threads)
    for den, logp in runs:
        assert np.allclose(den, base_d, rtol=1e-13, atol=1e-13 * np.abs(base_d).max())
        assert np.allclose(logp, base_l, rtol=1e-13)


@pytest.mark.parametrize("dim", DIMS)
def test_weights_and_nearest(dim):
    rng = np.random.default_rng(4)
    points = rng.standard_normal((40, dim))
    x = rng.standard_normal((6, dim))
    sched = nd.OU()
    f = nd.EmpiricalScore(points, sched)
    alpha, sigma2 = float(sched.alpha(0.3)), float(sched.sigma2(0.3))
    logits = -((x[:, None] - alpha * points[None]) ** 2).sum(-1) / (2 * sigma2)
    dense = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
    w = f.weights(0.3, x)
    assert np.allclose(w, dense, rtol=1e-11, atol=1e-300)
    idx, top = f.top_weights(0.3, x, 3)
    assert np.array_equal(idx, np.argsort(-dense, axis=1)[:, :3])
    assert np.allclose(top, np.sort(dense, axis=1)[:, ::-1][:, :3], rtol=1e-11)
    dist = np.linalg.norm(x[:, None] - points[None], axis=-1)
    nidx, ndist = f.nearest(x, k=2)
    assert np.array_equal(nidx, np.argsort(dist, axis=1)[:, :2])
    assert np.allclose(ndist, np.sort(dist, axis=1)[:, :2], rtol=1e-13)
