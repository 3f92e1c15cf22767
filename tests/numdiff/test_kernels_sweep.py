"""The sweep over sorted data finds the nearest points that the scan finds, ties included.

The scan (all ``N`` points, smallest rounded squared distance, lowest index among
ties) is the reference; the sweep must return the very same indices, for queries
near and far, with ``alpha`` from 1 down to 1e-3, on data with many exact ties (an
integer grid queried at midpoints) and duplicates.
"""

import numpy as np
import pytest

import numdiff as nd
import numdiff.engines.keys as keys_mod
from numdiff._kernels.sweep import nearest_references, sweep_order


def references(data, x, alpha, sorted_index):
    m, dim = x.shape
    alpha = np.full(m, alpha)
    scale = np.ones(m)
    refs = np.empty(m, dtype=np.int64)
    order, sorted_t = sweep_order(data) if sorted_index else (
        np.empty(0, dtype=np.int64), np.empty((dim, 0)))
    nearest_references(x, alpha, scale, np.ascontiguousarray(data.T), order, sorted_t, 256, refs)
    return refs


def queries(rng, data, alpha, m=200):
    near = alpha * data[rng.integers(len(data), size=m)] + 0.01 * rng.standard_normal((m, data.shape[1]))
    far = 30.0 * rng.standard_normal((m // 4, data.shape[1]))
    return np.concatenate([near, far])


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("alpha", [1.0, 0.3, 1e-3])
def test_sweep_matches_the_scan_on_random_data(dim, alpha):
    rng = np.random.default_rng(dim)
    data = rng.standard_normal((5000, dim))
    x = queries(rng, data, alpha)
    assert np.array_equal(references(data, x, alpha, True), references(data, x, alpha, False))


@pytest.mark.parametrize("dim", [2, 3])
def test_sweep_resolves_exact_ties_as_the_scan_does(dim):
    """A shuffled integer grid with duplicates, queried at midpoints and corners: the
    squared distances tie exactly, and the lowest index must win. (Stopping a
    direction at ``gap^2 >= best`` instead of ``>`` misses tied points.)"""
    rng = np.random.default_rng(40 + dim)
    side = 18 if dim == 2 else 8
    grid = np.stack(np.meshgrid(*[np.arange(side, dtype=float)] * dim), -1).reshape(-1, dim)
    data = rng.permutation(np.concatenate([grid, grid[:50]]))
    x = rng.integers(0, side, size=(300, dim)) + rng.choice([0.0, 0.5], size=(300, dim))
    got = references(data, x, 1.0, True)
    assert np.array_equal(got, references(data, x, 1.0, False))
    d2 = ((x[:, None, :] - data[None]) ** 2).sum(-1)
    assert np.array_equal(got, d2.argmin(axis=1))  # first index of the minimum


def test_score_with_and_without_the_sweep_agrees_to_the_bit(monkeypatch):
    """``d = 2``, ``N = 5000``: the sweep (N >= SWEEP_MIN_POINTS) and the scan give the
    kernels the same references, hence the same bits."""
    rng = np.random.default_rng(5)
    data = rng.standard_normal((5000, 2))
    x = queries(rng, data, 0.9, m=64)
    v = rng.standard_normal(x.shape)
    results = []
    for threshold in (1, 10**9):
        monkeypatch.setattr(keys_mod, "SWEEP_MIN_POINTS", threshold)
        f = nd.EmpiricalScore(data, nd.OU())
        f.pruning = "off"
        results.append([f.denoise(0.1, x), f.divergence(0.1, x), f.jvp(0.1, x, v)])
    for a, b in zip(*results):
        assert np.array_equal(a, b)
