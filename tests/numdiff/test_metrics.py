"""Memorisation metrics against a brute-force distance matrix."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from numdiff import metrics
from numdiff.neighbors import nearest_neighbors


def _brute_ratio(x, data):
    d = np.sort(cdist(x, data), axis=1)
    return d[:, 0] / d[:, 1]


def test_nearest_ratio_matches_brute_force():
    rng = np.random.default_rng(0)
    data, x = rng.standard_normal((300, 5)), rng.standard_normal((200, 5))
    np.testing.assert_allclose(metrics.nearest_ratio(x, data), _brute_ratio(x, data), rtol=1e-12)


def test_copies_have_ratio_zero_and_count_as_memorized():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((10, 3))
    x = np.vstack([data[:4], data[:4] + 0.01, rng.standard_normal((2, 3)) * 10])
    ratio = metrics.nearest_ratio(x, data)
    assert (ratio[:4] == 0).all()
    expected = np.mean(_brute_ratio(x, data) < 1 / 3)
    assert metrics.memorized_fraction(x, data) == expected
    assert metrics.memorized_fraction(x, data, threshold=1.0) == np.mean(ratio < 1.0)
    # a copy of a duplicated training point: both distances 0, ratio defined as 0
    dup = np.vstack([data, data[:1]])
    assert metrics.nearest_ratio(data[:1], dup)[0] == 0.0


@given(seed=st.integers(0, 2**31), shift=st.floats(-100, 100))
def test_ratio_in_unit_interval_and_translation_invariant(seed, shift):
    rng = np.random.default_rng(seed)
    data, x = rng.standard_normal((20, 2)), rng.standard_normal((15, 2))
    ratio = metrics.nearest_ratio(x, data)
    assert ((ratio >= 0) & (ratio <= 1)).all()
    np.testing.assert_allclose(metrics.nearest_ratio(x + shift, data + shift), ratio, atol=1e-9)
    np.testing.assert_allclose(metrics.nearest_ratio(x, data[rng.permutation(20)]), ratio)


@pytest.mark.parametrize(
    ("x", "data", "kwargs", "exc", "name"),
    [
        (np.zeros((2, 2)), np.zeros((1, 2)), {}, ValueError, "data"),
        (np.zeros((2, 3)), np.ones((4, 2)), {}, ValueError, "x"),
        (np.full((2, 2), np.nan), np.ones((4, 2)), {}, ValueError, "x"),
        (np.zeros((2, 2)) + 0j, np.ones((4, 2)), {}, TypeError, "x"),
        (np.zeros((2, 2)), np.ones((4, 2)) + 0j, {}, TypeError, "data"),
        (np.zeros((2, 2)), np.ones((4, 2)), {"threshold": 0.0}, ValueError, "threshold"),
        (np.zeros((2, 2)), np.ones((4, 2)), {"threshold": np.nan}, ValueError, "threshold"),
        (np.zeros((2, 2)), np.ones((4, 2)), {"threshold": 0.5 + 0j}, TypeError, "threshold"),
        (np.zeros((2, 2)), np.ones((4, 2)), {"threshold": "1"}, TypeError, "threshold"),
        (np.zeros((0, 2)), np.ones((4, 2)), {}, ValueError, "x"),
    ],
)
def test_metrics_validate_input(x, data, kwargs, exc, name):
    with pytest.raises(exc, match=rf"\b{name}\b"):
        metrics.memorized_fraction(x, data, **kwargs)


def test_ratio_uses_the_standalone_neighbour_search(monkeypatch):
    # One nearest-neighbour implementation: metrics calls nd.nearest_neighbors
    # (no EmpiricalScore with a dummy schedule).
    rng = np.random.default_rng(3)
    data, x = rng.standard_normal((30, 4)), rng.standard_normal((7, 4))
    calls = []

    def spy(data_, x_, k=1):
        calls.append(k)
        return nearest_neighbors(data_, x_, k)

    monkeypatch.setattr(metrics, "nearest_neighbors", spy)
    np.testing.assert_allclose(metrics.nearest_ratio(x, data), _brute_ratio(x, data), rtol=1e-12)
    assert calls == [2]


def test_a_score_model_serves_the_search_through_its_index():
    """Passing the model instead of its data: the same ratios (the pruned search is
    exact, ties by lower index), with the model's leaf index built and used."""
    import numdiff as nd

    rng = np.random.default_rng(9)
    data = rng.standard_normal((20000, 2))
    x = data[rng.integers(20000, size=400)] + 1e-3 * rng.standard_normal((400, 2))
    f = nd.EmpiricalScore(data, nd.OU())
    expected = metrics.nearest_ratio(x, data)
    assert np.array_equal(metrics.nearest_ratio(x, f), expected)
    assert f.keys.pruned_index is not None
    assert metrics.memorized_fraction(x, f) == metrics.memorized_fraction(x, data)
    with pytest.raises(ValueError, match="data"):
        metrics.nearest_ratio(x, nd.EmpiricalScore(data[:1], nd.OU()))
