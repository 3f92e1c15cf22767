"""Bad input to EmpiricalScore raises ValueError / TypeError naming the argument.

Each message is matched on the argument's name as a whole word (``\\bt\\b``), so
that "t" is not found inside "must".
"""

import numpy as np
import pytest

import numdiff as nd

DATA = np.random.default_rng(0).standard_normal((5, 2))
F = nd.EmpiricalScore(DATA, nd.VPLinear())
X = np.zeros((3, 2))


def word(name):
    return rf"\b{name}\b"


@pytest.mark.parametrize(
    "make, exc, name",
    [
        (lambda: nd.EmpiricalScore(np.zeros(4), nd.OU()), ValueError, "data"),
        (lambda: nd.EmpiricalScore(np.zeros((0, 2)), nd.OU()), ValueError, "data"),
        (lambda: nd.EmpiricalScore([[1.0, np.nan]], nd.OU()), ValueError, "data"),
        (lambda: nd.EmpiricalScore([["a", "b"]], nd.OU()), TypeError, "data"),
        (lambda: nd.EmpiricalScore([["1.0", "2.0"]], nd.OU()), TypeError, "data"),
        (lambda: nd.EmpiricalScore([[1.0 + 2.0j, 0.0]], nd.OU()), TypeError, "data"),
        (lambda: nd.EmpiricalScore([[True, False]], nd.OU()), TypeError, "data"),
        (lambda: nd.EmpiricalScore([[1.0, 2.0], [1.0]], nd.OU()), TypeError, "data"),
        (lambda: nd.EmpiricalScore([[1e301, 0.0]], nd.OU()), ValueError, "data"),
        (lambda: nd.EmpiricalScore(DATA, "OU"), TypeError, "schedule"),
        (lambda: F.score(0.5, np.zeros((3, 3))), ValueError, "x"),
        (lambda: F.score(0.5, np.full((3, 2), np.inf)), ValueError, "x"),
        (lambda: F.score(0.5, X + 1j), TypeError, "x"),
        (lambda: F.score(0.5, [[1e301, 0.0]]), ValueError, "x"),
        (lambda: F.denoise(0.0, X), ValueError, "t"),
        (lambda: F.denoise(-1.0, X), ValueError, "t"),
        (lambda: F.denoise(np.nan, X), ValueError, "t"),
        (lambda: F.denoise(1.5, X), ValueError, "t"),
        (lambda: F.denoise(np.array([0.5, 0.5]), X), ValueError, "t"),
        (lambda: F.denoise(0.5 + 0.1j, X), TypeError, "t"),
        (lambda: F.log_density("0.5", X), TypeError, "t"),
        # OU's sigma2 at t = 1e-309 is subnormal: a named error, not NaN.
        (lambda: nd.EmpiricalScore(DATA, nd.OU()).denoise(1e-309, X), ValueError, "t"),
        (lambda: F.weights(0.5, np.zeros((0, 2))), ValueError, "x"),
        (lambda: F.top_weights(0.5, np.zeros((0, 2)), 1), ValueError, "x"),
        (lambda: F.top_weights(0.5, X, 0), ValueError, "k"),
        (lambda: F.top_weights(0.5, X, 2.0), TypeError, "k"),
        (lambda: F.nearest(X, k=6), ValueError, "k"),
        (lambda: nd.EmpiricalScore(np.zeros((1 << 15, 1)), nd.OU()).weights(0.5, np.zeros((1 << 13, 1))),
         ValueError, "x"),
    ],
)
def test_bad_input(make, exc, name):
    with pytest.raises(exc, match=word(name)):
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


@pytest.mark.parametrize("order", ["C", "F", "strided", "float32", "int"])
def test_memory_layout_and_dtype_do_not_change_results(order):
    rng = np.random.default_rng(2)
    data = np.round(rng.standard_normal((30, 20)) * 4)
    x = np.round(rng.standard_normal((5, 20)) * 4)
    ref = nd.EmpiricalScore(data, nd.OU()).score(0.2, x)
    convert = {
        "C": np.ascontiguousarray,
        "F": np.asfortranarray,
        "strided": lambda a: np.repeat(a, 2, axis=1)[:, ::2],
        "float32": lambda a: a.astype(np.float32),
        "int": lambda a: a.astype(np.int64),
    }[order]
    out = nd.EmpiricalScore(convert(data), nd.OU()).score(0.2, convert(x))
    np.testing.assert_array_equal(out, ref)
