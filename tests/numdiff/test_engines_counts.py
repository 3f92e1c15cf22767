"""Keys with multiplicities: a softmax over the distinct keys, each weighted by its
count, against the exact 256-bit reference over the keys repeated
(tests/numdiff/exact_mixture.py), on the direct engine (``d <= 16``) and the BLAS
engine, at small, intermediate and large ``sigma2``."""

import math

import numpy as np
import pytest
from test_score_oracle import error_ratios, ou_time_for_sigma2

import numdiff as nd
from numdiff.engines.dispatch import Dispatcher
from numdiff.engines.keys import KeySet, distinct_keys


def repeated_keys(dim, seed):
    """12 distinct keys, one a close neighbour of another, repeated 1 to 40 times
    (one key 200 times, as the all-zero patch of an image set), shuffled."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((12, dim))
    base[1] = base[0] + 1e-3 * rng.standard_normal(dim)
    base[2] = 0.0
    reps = rng.integers(1, 41, size=12)
    reps[2] = 200
    keys = np.repeat(base, reps, axis=0)
    return np.ascontiguousarray(keys[rng.permutation(keys.shape[0])])


def weighted_values(keys, t, x, schedule):
    """``(denoise, score, log p)`` from the distinct keys with counts."""
    unique, counts = distinct_keys(keys)
    engine = Dispatcher(KeySet(unique, counts), lambda: "auto")
    alpha = np.full(x.shape[0], float(schedule.alpha(t)))
    sigma2 = np.full(x.shape[0], float(schedule.sigma2(t)))
    mom = engine.moments(x, alpha, sigma2)
    logp = (mom.logsum - math.log(keys.shape[0])
            - 0.5 * keys.shape[1] * np.log(2.0 * np.pi * sigma2))
    return mom.mean, mom.resid / sigma2[:, None], logp


def queries(keys, t, seed):
    rng = np.random.default_rng(seed)
    alpha, sigma = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    near = alpha * keys[[0, 5, 9]] + sigma * rng.standard_normal((3, keys.shape[1]))
    far = 20.0 * rng.standard_normal((2, keys.shape[1]))
    return np.concatenate([near, far])


def test_distinct_keys_counts_every_row_once():
    keys = repeated_keys(3, 1)
    unique, counts = distinct_keys(keys)
    assert counts.sum() == keys.shape[0]
    assert unique.shape[0] == 12
    for row, c in zip(unique, counts, strict=True):
        assert (keys == row).all(axis=1).sum() == c


@pytest.mark.parametrize("dim", [3, 24])
@pytest.mark.parametrize("sigma2", [1e-8, 1e-3, 0.3, 0.95])
def test_counted_keys_match_the_exact_softmax_over_repeats(dim, sigma2):
    keys = repeated_keys(dim, 10 + dim)
    schedule = nd.OU()
    t = ou_time_for_sigma2(sigma2)
    x = queries(keys, t, 20 + dim)
    worst = error_ratios(keys, t, x, schedule, *weighted_values(keys, t, x, schedule))
    assert all(v <= 1.0 for v in worst.values()), f"error / bound: {worst}"


@pytest.mark.parametrize("dim", [3, 24])
def test_ignoring_the_counts_is_caught(dim):
    """An injected bug: the distinct keys without their counts. The all-zero key's 200
    copies then weigh as one, and the denoiser misses its bound by far."""
    keys = repeated_keys(dim, 10 + dim)
    schedule = nd.OU()
    t = ou_time_for_sigma2(0.3)
    x = queries(keys, t, 20 + dim)
    unique, _ = distinct_keys(keys)
    engine = Dispatcher(KeySet(unique), lambda: "auto")
    alpha, sigma2 = np.full(5, math.exp(-t)), np.full(5, 0.3)
    mom = engine.moments(x, alpha, sigma2)
    logp = mom.logsum - math.log(keys.shape[0]) - 0.5 * dim * np.log(2.0 * np.pi * sigma2)
    worst = error_ratios(keys, t, x, schedule, mom.mean, mom.resid / 0.3, logp)
    assert worst["denoise"] > 1e6


def test_counts_are_checked_and_second_moments_refused():
    keys = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(ValueError, match="counts"):
        KeySet(keys, np.array([1, 0, 2, 1]))
    with pytest.raises(ValueError, match="counts"):
        KeySet(keys, np.array([1, 2]))
    engine = Dispatcher(KeySet(keys, np.array([1, 3, 2, 1])), lambda: "auto")
    x, ones = keys[:2] + 0.1, np.ones(2)
    with pytest.raises(ValueError, match="multiplicities"):
        engine.centred(x, ones, ones)
    with pytest.raises(ValueError, match="multiplicities"):
        engine.covariances(x, ones, ones)


def test_weights_sum_the_copies():
    """The dense weights of a counted key equal the sum of its copies' weights."""
    keys = repeated_keys(3, 5)
    unique, counts = distinct_keys(keys)
    x = keys[:4] + 0.2
    ones, s2 = np.ones(4), np.full(4, 0.5)
    counted = Dispatcher(KeySet(unique, counts), lambda: "auto").weights(x, ones, s2)
    full = Dispatcher(KeySet(keys), lambda: "off").weights(x, ones, s2)
    copies = np.stack([full[:, (keys == row).all(axis=1)].sum(axis=1) for row in unique], axis=1)
    np.testing.assert_allclose(counted, copies, rtol=1e-13, atol=1e-300)


def window_case(dim=24, sigma2=1e-8, seed=3):
    """A BLAS row refined about key 0 (count 1), with key 1 (count 200) at relative
    logit -7: ``200 e^-7 = 0.18`` of the reference's weight."""
    rng = np.random.default_rng(seed)
    keys = rng.standard_normal((12, dim))
    step = rng.standard_normal(dim)
    keys[1] = keys[0] + math.sqrt(14.0 * sigma2) * step / np.linalg.norm(step)
    counts = np.ones(12, dtype=np.int64)
    counts[1] = 200
    t = ou_time_for_sigma2(sigma2)
    x = math.exp(-t) * keys[[0]] + 1e-3 * math.sqrt(sigma2) * rng.standard_normal((1, dim))
    return keys, counts, t, x


@pytest.mark.parametrize("widened", [True, False])
def test_refinement_window_is_widened_by_the_counts(monkeypatch, widened):
    """With the refinement window shrunk to 5 nats, key 1 (-7 nats, 200 copies) is
    recomputed by direct differences only because the window grows by log 200; an
    injected bug (no widening) leaves its BLAS logit, and the denoiser misses its
    bound (``widened=False``)."""
    monkeypatch.setattr(nd.engines.limits, "REFINE_WINDOW", 5.0)
    keys, counts, t, x = window_case()
    engine = Dispatcher(KeySet(keys, counts), lambda: "auto")
    if not widened:
        engine.keys.log_count_max = 0.0
    schedule = nd.OU()
    alpha, sigma2 = np.array([float(schedule.alpha(t))]), np.array([float(schedule.sigma2(t))])
    mom = engine.moments(x, alpha, sigma2)
    logp = mom.logsum - math.log(counts.sum()) - 0.5 * keys.shape[1] * np.log(2.0 * np.pi * sigma2)
    expanded = np.repeat(keys, counts, axis=0)
    worst = error_ratios(expanded, t, x, schedule, mom.mean, mom.resid / sigma2[:, None], logp)
    assert (worst["denoise"] <= 1.0) == widened, worst
