"""The direct kernels' two merges: unshifted weights with a cap, and the running maximum.

Both must give the same moments; the unshifted one must hand a query over to the
running one whenever a logit exceeds ``LOGIT_CAP`` (here: a reference point that is
not the nearest) or the folded constants leave the float range. The oracle is a
float64 softmax of ``-|x - alpha x_k|^2 / (2 sigma2)`` at moderate ``sigma2``, where
it is accurate to ``1e-15`` relative; tolerance ``1e-12`` of the data scale.
"""

import numpy as np
import pytest

from numdiff._kernels.direct import LOGIT_CAP, _merge_blocks, capped_block, running_run
from numdiff._kernels.second_moments import MODE_TRACE, MODE_VECTOR, _merge_centred

TOL = 1e-12


def problem(dim, n=3000, seed=0, sigma2=0.05):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, dim))
    alpha = 0.8
    x = alpha * data[7] + np.sqrt(sigma2) * rng.standard_normal(dim)
    return data, np.ascontiguousarray(data.T), x, alpha, sigma2


def oracle(data, x, alpha, sigma2, v):
    logits = -((x - alpha * data) ** 2).sum(axis=1) / (2 * sigma2)
    w = np.exp(logits - logits.max())
    w /= w.sum()
    mean = w @ data
    centred = data - mean
    return mean, (w * (centred**2).sum(axis=1)).sum(), (w * (centred @ v)) @ centred


def reference_args(data, x, alpha, sigma2, ref):
    """Unit scale: ``u = x - alpha x_ref``, ``coef = alpha / (2 sigma2)``."""
    return ref, x - alpha * data[ref], alpha, alpha / (2 * sigma2)


def nearest(data, x, alpha):
    return int(np.argmin(((x - alpha * data) ** 2).sum(axis=1)))


def far_point(data, x, alpha):
    return int(np.argmax(((x - alpha * data) ** 2).sum(axis=1)))


def denoised(data, data_t, args, block=512):
    ref, u, a_s, coef = args
    acc = np.empty(data.shape[1])
    shift, total = _merge_blocks(ref, u, a_s, coef, data, data_t, np.empty(block), acc)
    return shift, data[ref] + acc / total


def centred(data, data_t, args, v, mode, capped, block=512):
    ref, u, a_s, coef = args
    dim = data.shape[1]
    mean, acc = np.empty(dim), np.empty(dim)
    shift, total, m2 = _merge_centred(
        ref, u, a_s, coef, data, data_t, v, mode, capped, np.empty(block), np.empty(block),
        mean, np.empty(dim), np.empty(dim), acc, np.empty(dim), np.empty((1, 1)),
        np.empty((1, 1)),
    )
    return shift, total, data[ref] + mean, m2 / total, acc / total


@pytest.mark.parametrize("dim", [2, 3])
def test_unshifted_merge_from_the_nearest_point_matches_the_oracle(dim):
    data, data_t, x, alpha, sigma2 = problem(dim)
    args = reference_args(data, x, alpha, sigma2, nearest(data, x, alpha))
    mean, _, _ = oracle(data, x, alpha, sigma2, np.ones(dim))
    shift, den = denoised(data, data_t, args)
    assert shift == 0.0  # the unshifted merge was taken
    assert np.abs(den - mean).max() <= TOL


@pytest.mark.parametrize("dim", [2, 3])
def test_a_logit_above_the_cap_hands_over_to_the_running_merge(dim):
    """Relative to the farthest point the nearest one's logit is far above the cap:
    the unshifted block reports it, and ``_merge_blocks`` answers with the running
    merge (shift = the largest logit), still matching the oracle."""
    data, data_t, x, alpha, sigma2 = problem(dim)
    args = reference_args(data, x, alpha, sigma2, far_point(data, x, alpha))
    ref, u, a_s, coef = args
    assert capped_block(ref, u, a_s, coef, data, data_t, 0, data.shape[0],
                        np.empty(data.shape[0]), np.zeros(dim)) == -1.0
    mean, _, _ = oracle(data, x, alpha, sigma2, np.ones(dim))
    shift, den = denoised(data, data_t, args)
    assert shift > LOGIT_CAP
    assert np.abs(den - mean).max() <= TOL


def test_constants_beyond_the_float_range_take_the_running_merge():
    """``d = 2`` folds ``coef`` into ``2 u coef`` and ``a_s coef``; when one is not
    finite the block refuses, and the running merge (which clamps) gives the answer."""
    data, data_t, x, alpha, _ = problem(2, n=40)
    ref = nearest(data, x, alpha)
    u = x - alpha * data[ref]
    huge = np.finfo(np.float64).max
    assert capped_block(ref, u, alpha, huge, data, data_t, 0, 40, np.empty(40), np.zeros(2)) == -1.0
    acc = np.zeros(2)
    shift, total = running_run(ref, u, alpha, huge, data, data_t, 0, 40, np.empty(64), acc,
                               -np.inf, 0.0)
    assert shift == 0.0 and total == 1.0 and np.all(acc == 0.0)  # only x_r has weight


def test_folded_terms_that_could_overflow_apart_take_the_running_merge():
    """Finite folded constants whose two terms overflow with opposite signs (``dx =
    (1e10, 1e10)``, ``2 u coef = (2e300, -2e300)``: ``inf - inf``, a NaN logit) are
    beyond the fold's reach bound: the block refuses before forming any logit."""
    data = np.array([[1e10, 1e10], [0.0, 0.0], [1e-3, 1e-3]])
    u = np.array([1e300, -1e300])
    w = np.full(3, 7.0)
    assert capped_block(1, u, 1e-12, 1.0, data, np.ascontiguousarray(data.T), 0, 3, w,
                        np.zeros(2)) == -1.0
    assert np.all(w == 7.0)  # refused up front, not after a pass that met the NaN


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("mode", [MODE_TRACE, MODE_VECTOR])
def test_both_centred_merges_match_the_oracle_and_each_other(dim, mode):
    data, data_t, x, alpha, sigma2 = problem(dim, seed=1)
    v = np.random.default_rng(2).standard_normal(dim)
    mean, trace, cov_v = oracle(data, x, alpha, sigma2, v)
    args = reference_args(data, x, alpha, sigma2, nearest(data, x, alpha))
    results = [centred(data, data_t, args, v, mode, capped) for capped in (True, False)]
    for shift, total, got_mean, got_trace, got_vec in results:
        assert total > 0.0
        assert np.abs(got_mean - mean).max() <= TOL
        if mode == MODE_TRACE:
            assert abs(got_trace - trace) <= TOL * trace
        else:
            assert np.abs(got_vec - cov_v).max() <= TOL * np.abs(cov_v).max()
    assert results[0][0] == 0.0 and results[1][0] <= LOGIT_CAP  # unshifted / running


@pytest.mark.parametrize("dim", [2, 3])
def test_capped_centred_merge_refuses_a_logit_above_the_cap(dim):
    data, data_t, x, alpha, sigma2 = problem(dim, seed=3)
    args = reference_args(data, x, alpha, sigma2, far_point(data, x, alpha))
    _, total, _, _, _ = centred(data, data_t, args, np.ones(dim), MODE_TRACE, True)
    assert total == -1.0
    mean, trace, _ = oracle(data, x, alpha, sigma2, np.ones(dim))
    _, total, got_mean, got_trace, _ = centred(data, data_t, args, np.ones(dim), MODE_TRACE, False)
    assert np.abs(got_mean - mean).max() <= TOL and abs(got_trace - trace) <= TOL * trace
