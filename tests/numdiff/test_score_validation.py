"""Bad input to EmpiricalScore raises ValueError / TypeError naming the argument."""

import numpy as np
import pytest

import numdiff as nd

DATA = np.random.default_rng(0).standard_normal((5, 2))
F = nd.EmpiricalScore(DATA, nd.VPLinear())
X = np.zeros((3, 2))


@pytest.mark.parametrize(
    "make, exc, match",
    [
        (lambda: nd.EmpiricalScore(np.zeros(4), nd.OU()), ValueError, "data"),
        (lambda: nd.EmpiricalScore(np.zeros((0, 2)), nd.OU()), ValueError, "data"),
        (lambda: nd.EmpiricalScore([[1.0, np.nan]], nd.OU()), ValueError, "data"),
        (lambda: nd.EmpiricalScore([["a", "b"]], nd.OU()), TypeError, "data"),
        (lambda: nd.EmpiricalScore(DATA, "OU"), TypeError, "schedule"),
        (lambda: F.score(0.5, np.zeros((3, 3))), ValueError, "x"),
        (lambda: F.score(0.5, np.full((3, 2), np.inf)), ValueError, "x"),
        (lambda: F.denoise(0.0, X), ValueError, "t"),
        (lambda: F.denoise(-1.0, X), ValueError, "t"),
        (lambda: F.denoise(np.nan, X), ValueError, "t"),
        (lambda: F.denoise(1.5, X), ValueError, "t"),
        (lambda: F.denoise(np.array([0.5, 0.5]), X), ValueError, "t"),
        (lambda: F.log_density("0.5", X), TypeError, "t"),
        (lambda: F.weights(0.5, X, top_k=0), ValueError, "top_k"),
        (lambda: F.weights(0.5, X, top_k=2.0), TypeError, "top_k"),
        (lambda: F.nearest(X, k=6), ValueError, "k"),
        (lambda: nd.EmpiricalScore(np.zeros((1 << 15, 1)), nd.OU()).weights(0.5, np.zeros((1 << 13, 1))),
         ValueError, "top_k"),
    ],
)
def test_bad_input(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_one_time_per_query_matches_scalar_times():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 2))
    t = np.array([0.1, 0.2, 0.3, 0.1])
    per_query = F.score(t, x)
    one_by_one = np.concatenate([F.score(ti, xi[None]) for ti, xi in zip(t, x)])
    assert np.array_equal(per_query, one_by_one)


def test_never_nan_for_extreme_finite_input():
    x = np.array([[1e150, -1e150], [0.0, 0.0], [1e-300, 1e-300]])
    for t in [1e-9, 0.5, 1.0]:
        for out in (F.score(t, x), F.denoise(t, x), F.log_density(t, x)):
            assert not np.isnan(out).any()
        assert np.isfinite(F.denoise(t, x)).all()
