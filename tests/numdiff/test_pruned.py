"""Certified pruning (numdiff/pruned) against the dense kernels and the exact mixture.

* Equality: the pruned path (``pruning = "always"``: every query the bound
  certifies) against the dense direct kernel on hypothesis-generated cases --
  ``sigma2`` from 1e-8 to 0.99, ``d`` in {1, 2, 3, 8, 20, 64}, uniform, clustered
  and duplicated data, ``N = 1``, queries near the data, midway between points
  and far away, leaves of 1 to 64 points. Each result within ``TOL = 1e-15`` of
  its scale: ``D`` of ``max |x_k|``; ``sigma2 s`` of ``|u_r| + alpha (sum_k w_k
  |x_k - x_r| + 2^-60 max_k |x_k - x_r|)`` -- the score relative to its own scale,
  as the oracle tests take it, plus what the skipped weights (``<= 2^-60`` of the
  kept) can move it by; ``log p`` of ``1 + |log p| + log N + (d/2) |log(2 pi
  sigma2)|``.
* The threshold: a far cluster of ``n`` duplicates whose bound ``n exp(U - L*)``
  is ``2^-60 (1 -+ 1e-3)`` is skipped / kept, and the results agree with the exact
  mixture (:mod:`exact_mixture`); injected bugs (the bound without ``n_leaf``,
  the threshold at ``2^-30``) are caught.
* The choice between pruned and dense, ``nearest`` and ``top_weights``, and input
  validation.
"""

from __future__ import annotations

import math

import exact_mixture
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

import numdiff as nd
from numdiff import pruned
from numdiff.engines.blas import BlasEngine
from numdiff.pruned import dispatch
from numdiff.pruned.bounds import selection_levels
from numdiff.pruned.index import build_index

TOL = 1e-15
SKIP_MASS = 2.0**-60
C = 64  # rounding units of the oracle bounds (tests/numdiff/test_score_oracle.py)


def ou_time(sigma2):
    return -0.5 * math.log1p(-sigma2)


def alpha_sigma2(f, t):
    """``(alpha, sigma2)`` at a scalar time."""
    alpha, sigma2 = f._prepare(t, np.zeros((1, f.dim)))[1:]
    return float(alpha[0]), float(sigma2[0])


def public_outputs(f, t, x, mode):
    """``D``, ``sigma2 s`` and ``log p`` through the public API with ``pruning = mode``."""
    sigma2 = f._prepare(t, x)[2]
    f.pruning = mode
    try:
        return f.denoise(t, x), f.score(t, x) * sigma2[:, None], f.log_density(t, x)
    finally:
        f.pruning = "auto"


def dense_direct_outputs(f, t, x):
    """``D``, ``sigma2 s`` and ``log p`` from the dense direct kernel (any ``d``)."""
    x, alpha, sigma2 = f._prepare(t, x)
    out = [np.empty_like(x), np.empty(x.shape[0]), np.empty_like(x)]
    f._engines.direct.moments_into(x, alpha, sigma2, *out)
    logp = out[1] - np.log(f.n_data) - 0.5 * f.dim * np.log(2.0 * np.pi * sigma2)
    return out[0], out[2], logp


def scaled_errors(f, t, x, got, want):
    """Worst ``|difference| / scale`` of ``(D, sigma2 s, log p)`` (module docstring)."""
    alpha, sigma2 = f._prepare(t, x)[1:]
    data = f.data
    mode = f.pruning
    f.pruning = "off"
    ref = f.nearest(x / alpha[:, None])[0][:, 0]
    weights = f.weights(t, x)
    f.pruning = mode
    u_norm = np.linalg.norm(x - alpha[:, None] * data[ref], axis=1)
    offset = cdist(data[ref], data)  # (M, N): |x_k - x_r|
    spread = (weights * offset).sum(axis=1) + SKIP_MASS * offset.max(axis=1)
    tiny = np.finfo(float).tiny
    scales = (
        max(np.abs(data).max(), tiny),
        np.maximum(u_norm + alpha * spread, tiny)[:, None],
        1.0 + np.abs(want[2]) + math.log(f.n_data)
        + 0.5 * f.dim * np.abs(np.log(2 * math.pi * sigma2)),
    )
    return [float(np.max(np.abs(g - w) / s)) for g, w, s in zip(got, want, scales)]


# -- equality with the dense kernel ---------------------------------------------------


def make_data(rng, kind, n, dim):
    if kind == "uniform":
        return rng.uniform(-1.0, 1.0, (n, dim))
    if kind == "clustered":
        centres = 4.0 * rng.standard_normal((max(1, n // 25), dim))
        return centres[rng.integers(len(centres), size=n)] + 0.02 * rng.standard_normal((n, dim))
    base = rng.standard_normal((max(1, n // 3), dim))
    return base[rng.integers(len(base), size=n)]  # duplicates


def make_queries(rng, data, alpha, sigma2, where, m):
    n, dim = data.shape
    if where == "near":
        return alpha * data[rng.integers(n, size=m)] + math.sqrt(sigma2) * rng.standard_normal((m, dim))
    if where == "midway":
        a, b = data[rng.integers(n, size=m)], data[rng.integers(n, size=m)]
        return alpha * 0.5 * (a + b) + 1e-3 * math.sqrt(sigma2) * rng.standard_normal((m, dim))
    return 1e3 * rng.standard_normal((m, dim))  # far from every point


case = st.fixed_dictionaries(
    {
        "dim": st.sampled_from([1, 2, 3, 8, 20, 64]),
        "n": st.one_of(st.just(1), st.integers(2, 400)),
        "kind": st.sampled_from(["uniform", "clustered", "duplicates"]),
        "log_sigma2": st.floats(-8.0, math.log10(0.99)),
        "where": st.sampled_from(["near", "midway", "far"]),
        "leaf": st.sampled_from([1, 4, 16, 64]),
        "seed": st.integers(0, 2**32 - 1),
    }
)


@settings(max_examples=60)
@given(case)
def test_pruned_equals_dense(c):
    rng = np.random.default_rng(c["seed"])
    data = make_data(rng, c["kind"], c["n"], c["dim"])
    f = nd.EmpiricalScore(data, nd.OU())
    pruned.index_of(f, c["leaf"])
    t = ou_time(10.0 ** c["log_sigma2"])
    alpha, sigma2 = alpha_sigma2(f, t)
    x = make_queries(rng, data, alpha, sigma2, c["where"], 6)
    got = public_outputs(f, t, x, "always")
    errors = scaled_errors(f, t, x, got, dense_direct_outputs(f, t, x))
    assert max(errors) <= TOL, f"scaled errors (D, sigma2 s, log p) = {errors}"
    if c["dim"] <= 16:
        # The dense path of the public API is the same kernel.
        assert max(scaled_errors(f, t, x, got, public_outputs(f, t, x, "off"))) <= TOL


@pytest.mark.parametrize(("dim", "sigma2"), [(2, 1e-4), (64, 1e-3)])
def test_pruned_equals_dense_at_scale(dim, sigma2):
    """Many leaves and queries: the pruning actually skips most of the data."""
    rng = np.random.default_rng(dim)
    data = rng.standard_normal((20000, dim))
    f = nd.EmpiricalScore(data, nd.OU())
    t = ou_time(sigma2)
    alpha, sigma2 = alpha_sigma2(f, t)
    x = make_queries(rng, data, alpha, sigma2, "near", 200)
    kept = pruned.kept_points(f, t, x)
    assert np.median(kept) < 0.05 * f.n_data
    got = public_outputs(f, t, x, "always")
    assert max(scaled_errors(f, t, x, got, dense_direct_outputs(f, t, x))) <= TOL


# -- the threshold ---------------------------------------------------------------------


def threshold_case(n, bound_mass, sigma2=1e-4):
    """A leaf of ``n`` points within ``sigma`` of 0 (one of them at 0, the query), and
    a leaf of ``n`` duplicates at ``R``: the bound on the far leaf relative to the
    point at 0 is ``n exp(-alpha^2 R^2 / (2 sigma2)) = bound_mass``."""
    t = ou_time(sigma2)
    probe = nd.EmpiricalScore(np.zeros((1, 1)), nd.OU())
    alpha, sigma2 = alpha_sigma2(probe, t)
    far = math.sqrt(2.0 * sigma2 * (math.log(n) - math.log(bound_mass))) / alpha
    near = np.random.default_rng(n).uniform(-1.0, 1.0, (n, 1)) * math.sqrt(sigma2)
    near[0] = 0.0
    data = np.concatenate([near, np.full((n, 1), far)])
    f = nd.EmpiricalScore(data, nd.OU())
    pruned.index_of(f, n)
    return f, t, np.zeros((1, 1))


def oracle_ratio(f, t, x):
    """Worst error / bound of the pruned ``D``, ``s`` and ``log p`` against the exact
    mixture (:func:`exact_mixture.achieved_bounds` with ``C = 64``)."""
    alpha, sigma2 = alpha_sigma2(f, t)
    den, sig_s, logp = public_outputs(f, t, x, "always")
    ref = exact_mixture.reference(f.data, alpha, sigma2, x[0])
    bounds = exact_mixture.achieved_bounds(ref, C)
    return max(
        exact_mixture.error_ratio(den[0], ref.denoise, bounds.denoise),
        exact_mixture.error_ratio(sig_s[0] / sigma2, ref.score, bounds.score),
        exact_mixture.error_ratio(logp[0], ref.log_density, bounds.log_density),
    )


def check_threshold_decisions():
    """Just below the threshold the far leaf is skipped, just above it is kept, and
    the results agree with the exact mixture either way."""
    n = 1024
    for factor, kept in [(1.0 - 1e-3, n), (1.0 + 1e-3, 2 * n)]:
        f, t, x = threshold_case(n, 2.0**-60 * factor)
        assert pruned.kept_points(f, t, x)[0] == kept, f"bound 2^-60 * {factor}"
        assert oracle_ratio(f, t, x) <= 1.0


def check_visible_mass():
    """A far cluster of bound 2^-40 (weight about 2^-44 of the total) must be kept:
    skipping it moves ``D`` by 2^-44 of the data's size, beyond the oracle's bound."""
    f, t, x = threshold_case(16, 2.0**-40)
    assert pruned.kept_points(f, t, x)[0] == 32
    assert oracle_ratio(f, t, x) <= 1.0


def test_threshold_decisions():
    check_threshold_decisions()


def test_visible_mass_is_kept():
    check_visible_mass()


def test_bound_without_leaf_counts_is_caught(monkeypatch):
    """Injected bug: each leaf counted as one point (no ``n_leaf`` factor)."""

    def tree_without_counts(index):
        ones = np.ones(index.n_leaves)
        return index.arrays(ones), selection_levels(dispatch.SKIP_MASS, ones)

    monkeypatch.setattr(dispatch, "_tree", tree_without_counts)
    with pytest.raises(AssertionError, match="bound 2"):
        check_threshold_decisions()


def test_threshold_at_2_to_the_minus_30_is_caught(monkeypatch):
    monkeypatch.setattr(dispatch, "SKIP_MASS", 2.0**-30)
    with pytest.raises(AssertionError, match="bound 2"):
        check_threshold_decisions()
    with pytest.raises(AssertionError):
        check_visible_mass()


# -- choosing between pruned and dense ------------------------------------------------


def grid_data(n=20000, dim=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim))


def spy(monkeypatch, name):
    calls = []
    kernel = getattr(dispatch, name)

    def counted(*args):
        calls.append(args[0].shape[0])
        return kernel(*args)

    monkeypatch.setattr(dispatch, name, counted)
    return calls


@pytest.mark.parametrize("dim", [2, 20])
def test_large_sigma_stays_dense_bit_for_bit(monkeypatch, dim):
    data = grid_data(dim=dim)
    f = nd.EmpiricalScore(data, nd.OU())
    calls = spy(monkeypatch, "pruned_moments")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, dim))
    dense = public_outputs(f, 0.5, x, "off")
    auto = public_outputs(f, 0.5, x, "auto")
    assert calls == []
    for a, b in zip(auto, dense):
        assert np.array_equal(a, b)


def test_large_sigma_builds_no_index():
    """At sigma2 near 1 the data's bounding box alone shows that every point counts."""
    f = nd.EmpiricalScore(grid_data(), nd.OU())
    f.denoise(4.0, np.random.default_rng(1).standard_normal((500, 2)))
    assert f.keys.pruned_index is None


def test_small_calls_build_no_index():
    f = nd.EmpiricalScore(grid_data(), nd.OU())
    x = np.random.default_rng(2).standard_normal((dispatch.BUILD_QUERIES - 1, 2))
    f.denoise(ou_time(1e-4), x)
    assert f.keys.pruned_index is None


def test_small_sigma_prunes_and_rejected_queries_are_dense_bit_for_bit(monkeypatch):
    """Queries at small sigma2 go pruned; those at large sigma2 in the same call
    (the bound keeps everything) run through the dense kernel exactly as in a
    dense call."""
    data = grid_data()
    f = nd.EmpiricalScore(data, nd.OU())
    calls = spy(monkeypatch, "pruned_moments")
    small, large = ou_time(1e-4), ou_time(0.9)
    alpha, sigma2 = alpha_sigma2(f, small)
    rng = np.random.default_rng(3)
    x = np.concatenate([make_queries(rng, data, alpha, sigma2, "near", 250),
                        rng.standard_normal((50, 2))])
    t = np.where(np.arange(300) < 250, small, large)
    kept = pruned.kept_points(f, t, x)
    dense_rows = kept > dispatch.MAX_FRACTION_DIRECT * f.n_data
    assert not dense_rows[:250].any() and dense_rows[250:].all()
    got = public_outputs(f, t, x, "auto")
    assert calls, "the pruned kernel was not run"
    want = public_outputs(f, t, x, "off")
    assert max(scaled_errors(f, t, x, got, want)) <= TOL
    for a, b in zip(got, want):
        assert np.array_equal(a[dense_rows], b[dense_rows])


def test_high_dimension_falls_back_to_blas_for_far_queries(monkeypatch):
    data = grid_data(n=4000, dim=64)
    f = nd.EmpiricalScore(data, nd.OU())
    t = ou_time(1e-3)
    alpha, sigma2 = alpha_sigma2(f, t)
    rng = np.random.default_rng(4)
    x = np.concatenate([make_queries(rng, data, alpha, sigma2, "near", 150),
                        make_queries(rng, data, alpha, sigma2, "far", 10)])
    kept = pruned.kept_points(f, t, x)
    dense_rows = kept > dispatch.MAX_FRACTION_BLAS * f.n_data
    assert dense_rows[:150].mean() < 0.1 and dense_rows[150:].all()
    blas_rows = []
    blas = BlasEngine.moments_into

    def counted(self, x, *args):
        blas_rows.append(x.shape[0])
        return blas(self, x, *args)

    monkeypatch.setattr(BlasEngine, "moments_into", counted)
    got = public_outputs(f, t, x, "auto")
    assert blas_rows[:3] == [dense_rows.sum()] * 3  # denoise, score, log_density
    want = dense_direct_outputs(f, t, x)
    assert max(scaled_errors(f, t, x, got, want)) <= TOL


# -- nearest and top_weights ----------------------------------------------------------


@settings(max_examples=30)
@given(case, st.integers(1, 5))
def test_nearest_equals_dense(c, k):
    rng = np.random.default_rng(c["seed"])
    data = make_data(rng, c["kind"], c["n"], c["dim"])
    f = nd.EmpiricalScore(data, nd.OU())
    pruned.index_of(f, c["leaf"])
    k = min(k, c["n"])
    x = make_queries(rng, data, 1.0, 10.0 ** c["log_sigma2"], c["where"], 6)
    f.pruning = "always"
    idx, dist = f.nearest(x, k)
    f.pruning = "off"
    idx0, dist0 = f.nearest(x, k)
    # Ties by lower index on both sides; distances equal to rounding (the BLAS
    # search of d > 16 sums the squares in another order).
    assert np.allclose(dist, dist0, rtol=TOL * 4, atol=0)
    same = np.isclose(dist, dist0, rtol=TOL * 4, atol=0) & ~np.isclose(
        np.diff(dist0, axis=1, prepend=-1.0), 0.0, atol=TOL * 8 * dist0.max()
    )
    assert np.array_equal(idx[same], idx0[same])
    if c["dim"] <= 16:
        assert np.array_equal(idx, idx0) and np.array_equal(dist, dist0)


def test_nearest_ties_and_duplicates():
    lattice = np.stack(np.meshgrid(np.arange(40.0), np.arange(40.0)), axis=-1).reshape(-1, 2)
    data = np.concatenate([lattice, lattice[::7]])
    f = nd.EmpiricalScore(data, nd.OU())
    pruned.index_of(f, 8)
    x = np.concatenate([lattice[::13] + 0.5, lattice[::11]])
    f.pruning = "always"
    got = f.nearest(x, 6)
    f.pruning = "off"
    want = f.nearest(x, 6)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@settings(max_examples=30)
@given(case, st.integers(1, 4))
def test_top_weights_equal_dense(c, k):
    rng = np.random.default_rng(c["seed"])
    data = make_data(rng, c["kind"], c["n"], c["dim"])
    f = nd.EmpiricalScore(data, nd.OU())
    pruned.index_of(f, c["leaf"])
    k = min(k, c["n"])
    t = ou_time(10.0 ** c["log_sigma2"])
    alpha, sigma2 = alpha_sigma2(f, t)
    x = make_queries(rng, data, alpha, sigma2, c["where"], 6)
    f.pruning = "always"
    got = f.top_weights(t, x, k)
    f.pruning = "off"
    want = f.top_weights(t, x, min(k + 1, c["n"]))
    assert np.allclose(got.weight, want.weight[:, :k], rtol=4 * TOL, atol=1e-300)
    # Indices agree wherever the weight is not tied, to rounding, with a neighbour
    # (the (k+1)-th included).
    w = want.weight
    gaps = np.abs(np.diff(w, axis=1)) > 1e-12 * w[:, 1:]
    distinct = (np.pad(gaps, ((0, 0), (1, 0)), constant_values=True)
                & np.pad(gaps, ((0, 0), (0, 1)), constant_values=True))[:, :k]
    assert np.array_equal(got.index[distinct], want.index[:, :k][distinct])


def test_metrics_through_the_index():
    """nearest() through the tree at scale, as the memorisation metrics use it."""
    data = grid_data(n=50000)
    f = nd.EmpiricalScore(data, nd.OU())
    x = data[:3000] + 1e-3 * np.random.default_rng(5).standard_normal((3000, 2))
    got = f.nearest(x, 2)
    assert f.keys.pruned_index is not None
    want = nd.nearest_neighbors(data, x, 2)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


# -- validation -------------------------------------------------------------------------


def test_validation():
    f = nd.EmpiricalScore(grid_data(n=100), nd.OU())
    f.pruning = "sometimes"
    with pytest.raises(ValueError, match="pruning"):
        f.denoise(0.1, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="pruning"):
        f.nearest(np.zeros((3, 2)))
    f.pruning = "always"
    with pytest.raises(ValueError, match="leaf_size"):
        build_index(f.data, 0)
    with pytest.raises(ValueError, match="t must be > 0"):
        pruned.kept_points(f, 0.0, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="d = 2 columns"):
        pruned.kept_points(f, 0.1, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="k must be in"):
        f.top_weights(0.1, np.zeros((1, 2)), 101)
    # Empty input through the pruned path.
    assert f.denoise(0.1, np.zeros((0, 2))).shape == (0, 2)
    assert f.nearest(np.zeros((0, 2)), 2)[0].shape == (0, 2)


def test_index_partition():
    rng = np.random.default_rng(6)
    data = np.concatenate([rng.standard_normal((3000, 3)), np.zeros((500, 3))])
    index = build_index(data, 32)
    assert np.array_equal(np.sort(index.perm), np.arange(len(data)))
    assert np.array_equal(index.points, data[index.perm])
    for leaf in range(index.n_leaves):
        block = index.points[index.leaf_start[leaf] : index.leaf_start[leaf + 1]]
        assert np.array_equal(block.min(axis=0), index.leaf_lo[leaf])
        assert np.array_equal(block.max(axis=0), index.leaf_hi[leaf])
        # At most leaf_size points, unless all equal (such a leaf cannot be split).
        assert len(block) <= 32 or np.array_equal(index.leaf_lo[leaf], index.leaf_hi[leaf])
    assert index.node_weight[0] == len(data)
    assert np.array_equal(index.node_lo[0], data.min(axis=0))


def test_nearest_with_rows_handed_back_raises_no_warning():
    """Queries at the centre of data on a circle are equidistant from every leaf, so
    the index hands them back to the dense search; their rows must come out as the
    dense search's, with nothing computed from uninitialised values (a sqrt of
    whatever the scratch held could warn before being overwritten)."""
    import warnings

    rng = np.random.default_rng(5)
    angle = rng.uniform(0.0, 2.0 * np.pi, 5000)
    f = nd.EmpiricalScore(np.column_stack([np.cos(angle), np.sin(angle)]), nd.OU())
    near = f.data[:300] * (1.0 + 1e-3)
    centre = 1e-9 * rng.standard_normal((300, 2))
    x = np.concatenate([near, centre])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        idx, dist = f.nearest(x, 2)
    f.pruning = "off"
    dense_idx, dense_dist = f.nearest(x, 2)
    assert np.array_equal(idx, dense_idx)
    assert np.array_equal(dist, dense_dist)
