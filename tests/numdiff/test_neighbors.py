"""Exact k nearest neighbours (numdiff/neighbors.py) against a dense numpy oracle.

The oracle sorts all ``|x - y_j|`` (numpy, float64) by (distance, index). The
search must return the same indices, ties to the lower index, and the distances
to within a few ulps of the oracle's (both are rounded sums of ``d`` squares).
"""

import tracemalloc

import numpy as np
import pytest

import numdiff as nd
from numdiff import neighbors
from numdiff._kernels import ranking
from numdiff._kernels.knn import refine
from numdiff.metrics import nearest_ratio


def oracle(data, x, k):
    dist = np.sqrt(((x[:, None, :] - data[None, :, :]) ** 2).sum(axis=-1))
    order = np.lexsort((np.broadcast_to(np.arange(data.shape[0]), dist.shape), dist), axis=1)
    return order[:, :k], np.take_along_axis(dist, order[:, :k], axis=1)


def assert_oracle(data, x, k, result):
    idx, dist = result
    want_idx, want_dist = oracle(data, x, k)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-13, atol=0)


@pytest.mark.parametrize("dim", [2, 17, 64])
@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_matches_the_oracle(dim, offset):
    """Nearly centred data (ranked without a copy) and data far off centre (copied
    and centred), several k; the index and the one-shot form agree."""
    rng = np.random.default_rng(dim)
    data = rng.standard_normal((700, dim)) + offset
    x = rng.standard_normal((90, dim)) + offset
    index = nd.NeighborIndex(data)
    for k in (1, 4, 700):
        assert_oracle(data, x, k, nd.nearest_neighbors(data, x, k))
        assert_oracle(data, x, k, index.nearest(x, k))


def test_many_tiles_and_data_ranges(monkeypatch):
    """Tiles of 8 queries x 32 points: many query blocks, and with 3 queries fewer
    blocks than threads, so the data are split in ranges whose candidates are
    combined."""
    monkeypatch.setattr(ranking, "RANK_ROWS", 8)
    monkeypatch.setattr(ranking, "RANK_TILE", 8 * 32)
    rng = np.random.default_rng(1)
    data = rng.standard_normal((1000, 30))
    for m in (3, 45):
        x = rng.standard_normal((m, 30))
        for k in (1, 5):
            assert_oracle(data, x, k, nd.nearest_neighbors(data, x, k))


@pytest.mark.parametrize("dim", [2, 24])
def test_ties_go_to_the_lower_index(dim):
    """Duplicated points and points at equal distances: ties by lower index, also
    where the ranking of d > 16 cuts its candidates among equal values."""
    rng = np.random.default_rng(3)
    base = rng.integers(-2, 3, size=(40, dim)).astype(float)
    data = np.concatenate([base, base[::-1], base[:25]])  # every point two or three times
    x = rng.integers(-2, 3, size=(60, dim)).astype(float)
    for k in (1, 2, 9, 20):
        assert_oracle(data, x, k, nd.nearest_neighbors(data, x, k))


def test_refine_orders_candidates_by_distance_then_index():
    """The ranking hands candidates over in its own order, which need not be the
    index order among equal distances (its rounding differs between points)."""
    rng = np.random.default_rng(9)
    data = rng.standard_normal((8, 20))
    data[[1, 3, 5]] = data[6]
    x = data[6:7] + 0.5
    cand = np.array([[5, 0, 3, 6, 1, 7]])
    idx, sq = np.empty((1, 5), dtype=np.int64), np.empty((1, 5))
    refine(x, data, cand, idx, sq)
    # The oracle over the candidates listed by index: its ties go to the lower index.
    by_index = np.sort(cand[0])
    want_idx, want_dist = oracle(data[by_index], x, 5)
    np.testing.assert_array_equal(idx[0], by_index[want_idx[0]])
    assert idx[0, :4].tolist() == [1, 3, 5, 6]  # the four copies, at one distance
    np.testing.assert_allclose(np.sqrt(sq), want_dist, rtol=1e-14)


@pytest.mark.parametrize("offset", [0.0, 50.0])
def test_the_float32_bound_hands_rows_to_the_float64_ranking(offset):
    """Points 1e-5 apart along one axis, around +-e_0 (nearly centred: offset 0) or
    around 50 (1, ..., 1) + e_0 (centred by the index, the float64 tier centring its
    tiles as they go): squared gaps of 1e-10 are far below the float32 ranking's
    rounding (about 1e-5) and far above the float64 one (about 1e-13). The float32
    tier must leave these queries to the float64 one."""
    rng = np.random.default_rng(10)
    dim = 20
    cluster = np.zeros((40, dim))
    cluster[:, 0] = 1.0
    cluster[:, 1] = 1e-5 * rng.permutation(40)
    data = np.concatenate([cluster, -cluster]) + offset
    x = cluster[:8].copy() + offset
    x[:, 1] += 1e-5 * rng.uniform(-0.5, 0.5, 8)
    for k in (1, 3):
        assert_oracle(data, x, k, nd.NeighborIndex(data).nearest(x, k))


def test_the_rounding_bound_sends_unranked_queries_to_the_direct_search():
    """Two clusters at +-1e4 (1, ..., 1), so the data are ranked uncentred: the
    expansion's rounding (about 1e-5) dwarfs the squared gaps within a cluster
    (points 1e-6 apart along one axis, squared gaps of 1e-12). The ranking then
    cannot order them; the check must see it and the direct search answer."""
    rng = np.random.default_rng(4)
    dim = 20
    offsets = np.zeros((30, dim))
    offsets[:, 1] = 1e-6 * rng.permutation(30)
    data = np.concatenate([1e4 + offsets, -1e4 + offsets])
    x = np.full((6, dim), 1e4)
    x[:, 1] += 1e-6 * np.array([3.2, 10.4, 20.1, 27.3, 0.2, 15.6])
    assert_oracle(data, x, 3, nd.nearest_neighbors(data, x, 3))
    index = nd.NeighborIndex(data)
    assert index._centred is data  # the case is the uncentred ranking
    _, _, exact = neighbors._knn_blas(data, data, x, 3, index._sq_norms)
    assert not exact.any()  # and one the ranking cannot certify


@pytest.mark.parametrize("dim", [2, 20])
@pytest.mark.parametrize("magnitude", [1e-200, 1e200])
def test_coordinates_beyond_the_squared_range(dim, magnitude):
    """Squares of 1e200 overflow and of 1e-200 underflow: the search rescales by
    powers of two, so the answer is the oracle's on the rescaled problem, scaled
    back exactly."""
    rng = np.random.default_rng(5)
    unit = rng.standard_normal((50, dim))
    queries = rng.standard_normal((7, dim))
    idx, dist = nd.nearest_neighbors(unit * magnitude, queries * magnitude, 3)
    # Power-of-two scalings are exact: the problem at unit scale has the same answer.
    scale = 2.0 ** np.round(np.log2(magnitude))
    want_idx, want_dist = oracle(unit * magnitude / scale, queries * magnitude / scale, 3)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(dist / scale, want_dist, rtol=1e-13)


def test_index_is_reused_and_arrays_are_not_copied():
    rng = np.random.default_rng(6)
    data = rng.standard_normal((300, 40))
    index = nd.NeighborIndex(data)
    assert index.data is data and index.n_data == 300 and index.dim == 40
    first = index.nearest(rng.standard_normal(40), 2)
    assert first[0].shape == (1, 2)
    centred = data - data.mean(axis=0)
    wrapped = nd.NeighborIndex.from_arrays(
        data, centred=centred, sq_norms=np.einsum("ij,ij->i", centred, centred))
    x = rng.standard_normal((20, 40))
    assert wrapped._centred is centred
    np.testing.assert_array_equal(wrapped.nearest(x, 3)[0], index.nearest(x, 3)[0])


def test_memory_is_half_the_data_more():
    """tracemalloc (numpy reports its buffers to it): building an index and querying
    it allocates at most the float32 keys (half the data) plus the ranking tiles
    and O(M (d + k)) (+10%), for nearly centred data and for data far off centre
    (no float64 centred copy)."""
    rng = np.random.default_rng(7)
    n, m, dim = 20000, 300, 128
    data = rng.standard_normal((n, dim))
    x = rng.standard_normal((m, dim))
    # One tile and one block of centred keys per thread, up to 4 threads.
    tiles = 4 * (ranking.RANK_TILE + ranking.RANK_TILE // ranking.RANK_ROWS * dim) * 8
    for shift, copies in ((0.0, 0.5), (100.0, 0.5)):
        moved = data + shift
        queries = x + shift
        tracemalloc.start()
        nd.NeighborIndex(moved).nearest(queries, 2)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= 1.1 * (copies * moved.nbytes + tiles + 8 * queries.nbytes), (shift, peak)


def test_metrics_take_an_index():
    rng = np.random.default_rng(8)
    data = rng.standard_normal((200, 30))
    x = rng.standard_normal((40, 30))
    np.testing.assert_array_equal(nearest_ratio(x, nd.NeighborIndex(data)), nearest_ratio(x, data))


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: nd.NeighborIndex(np.zeros((0, 3))), ValueError, "data"),
        (lambda: nd.NeighborIndex([[0.0, np.nan]]), ValueError, "data"),
        (lambda: nd.NeighborIndex(np.zeros((4, 3))).nearest(np.zeros((2, 2))), ValueError, "x"),
        (lambda: nd.NeighborIndex(np.zeros((4, 3))).nearest(np.zeros(3), k=5), ValueError, "k"),
        (lambda: nd.NeighborIndex(np.zeros((4, 3))).nearest(np.zeros(3), k=1.5), TypeError, "k"),
        (lambda: nd.nearest_neighbors(np.zeros((4, 3)), [[np.inf, 0, 0]]), ValueError, "x"),
        (lambda: nd.NeighborIndex.from_arrays(np.zeros((4, 20)), centred=np.zeros((4, 20))),
         ValueError, "sq_norms"),
    ],
)
def test_bad_input_names_the_argument(call, error, name):
    with pytest.raises(error, match=name):
        call()
