"""The score model and the audit keep one prepared NeighborIndex over their data.

Two things are checked: the answers are those of the one-shot form
``nd.nearest_neighbors`` (indices exactly, distances to a few ulps, both being
exact float64 differences), and the data are prepared once: a second search
allocates nothing of the data's size (``tracemalloc``, which sees numpy's
buffers), where the first built the float32 ranking keys (half the data).
"""

import tracemalloc

import numpy as np
import pytest

import numdiff as nd
from numdiff._kernels import ranking
from numdiff.audit import audit
from numdiff.audit.search import TrainIndex


def assert_same(found, want):
    np.testing.assert_array_equal(found[0], want[0])
    np.testing.assert_allclose(found[1], want[1], rtol=1e-13, atol=0)


def traced_peak(call):
    """Peak bytes that numpy allocated during ``call()``, above what was live before."""
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def tile_bytes(dim):
    """What one search may allocate per thread: a ranking tile and a block of keys."""
    per_thread = ranking.RANK_TILE + ranking.RANK_TILE // ranking.RANK_ROWS * dim
    return ranking.threads() * per_thread * 8


@pytest.mark.parametrize("offset", [0.0, 1e3])
@pytest.mark.parametrize("m", [10, 100])  # below and above the float32 tier's threshold
def test_model_nearest_is_the_one_shot_search(offset, m):
    rng = np.random.default_rng(11)
    data = rng.standard_normal((900, 40)) + offset
    f = nd.EmpiricalScore(data, nd.OU())
    f.pruning = "off"
    for k in (1, 3):
        x = rng.standard_normal((m, 40)) + offset
        assert_same(f.nearest(x, k), nd.nearest_neighbors(data, x, k))


def test_model_prepares_its_index_once():
    """The first nearest() of many queries builds the float32 keys; the next ones
    reuse them (a fresh index per call would build them again)."""
    rng = np.random.default_rng(12)
    n, dim = 40000, 64
    data = rng.standard_normal((n, dim))
    f = nd.EmpiricalScore(data, nd.OU())
    f.pruning = "off"
    x = rng.standard_normal((100, dim))
    keys_32 = n * dim * 4
    assert traced_peak(lambda: f.nearest(x, 2)) >= keys_32
    for _ in range(2):
        assert traced_peak(lambda: f.nearest(x, 2)) < 0.5 * keys_32 + tile_bytes(dim)
    assert_same(f.nearest(x, 2), nd.nearest_neighbors(data, x, 2))


def test_audit_searches_are_the_one_shot_search():
    """Samples (several chunks), held-out points and the leave-one-out pass through
    the audit's one index, against the one-shot search on the caller's arrays."""
    rng = np.random.default_rng(13)
    train = rng.standard_normal((600, 30)) + 5.0
    x = rng.standard_normal((150, 30)) + 5.0
    x[:20] = train[:20] + 1e-3
    holdout = rng.standard_normal((90, 30)) + 5.0
    res = audit(train, x, holdout, chunk=64, n_cells=1)
    idx, dist = nd.nearest_neighbors(train, x, 2)
    np.testing.assert_array_equal(res.nearest_index, idx[:, 0])
    # The audit measures on the centred copy: the same differences up to the centring's
    # rounding.
    np.testing.assert_allclose(res.nearest_distance, dist[:, 0], rtol=1e-12)
    np.testing.assert_allclose(res.second_distance, dist[:, 1], rtol=1e-12)
    held_dist = nd.nearest_neighbors(train, holdout)[1][:, 0]
    np.testing.assert_allclose(res.reference_distance, held_dist, rtol=1e-12)
    centred = train - train.mean(axis=0)
    index = TrainIndex(centred)
    rows = np.arange(0, 600, 7)
    want = nd.nearest_neighbors(centred, centred[rows], 2)[1][:, 1]
    np.testing.assert_allclose(index.leave_one_out(rows, chunk=50), want, rtol=1e-13, atol=0)


def test_audit_prepares_the_training_set_once():
    """The first query of the audit's index builds the float32 keys; a second query
    set, in chunks, reuses them."""
    rng = np.random.default_rng(14)
    n, dim = 40000, 64
    index = TrainIndex(rng.standard_normal((n, dim)))
    keys_32 = n * dim * 4
    x = rng.standard_normal((300, dim))
    assert traced_peak(lambda: index.query(x, 2, chunk=100, progress=False)) >= keys_32
    peak = traced_peak(lambda: index.query(x, 2, chunk=100, progress=False))
    assert peak < 0.5 * keys_32 + tile_bytes(dim)
