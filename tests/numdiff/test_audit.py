"""The audit on synthetic models whose memorisation is known.

The data law is ``N(0, I_d)``. The "models":

* *copying*: each sample is, with probability ``f``, a uniformly chosen
  training point plus ``N(0, 0.01^2 I)`` noise, otherwise a fresh draw of the law;
* *true law*: fresh draws of the law (no memorisation);
* *over-dispersed*: draws of ``N(0, 1.5^2 I)`` (under-fitting);
* numdiff's own reverse SDE with the exact empirical score run to
  ``delta = 1e-6`` (no early stopping: Theorem 3's limit, the uniform law on
  the training set).

Each statistical assertion states its sample sizes, seed and false-failure
probability. The seeds are fixed, so every test is deterministic; the stated
probability is that of a failure over a random seed.
"""

from __future__ import annotations

import numpy as np
import pytest

import numdiff as nd
from numdiff.audit import CLASSES, audit

VERBATIM = CLASSES.index("verbatim")


def copying_model(train, n, fraction, rng, noise=0.01):
    """``n`` samples, each a noisy training point with probability ``fraction``.

    Returns ``(samples (n, d), copied (n,) bool)``.
    """
    copied = rng.random(n) < fraction
    x = rng.standard_normal((n, train.shape[1]))
    k = rng.integers(train.shape[0], size=int(copied.sum()))
    x[copied] = train[k] + noise * rng.standard_normal((k.size, train.shape[1]))
    return x, copied


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.3, 0.6])
def test_copying_model_fraction_recovered_within_wilson(fraction):
    """N = 500 training points, d = 32, 2000 samples, 2000 held-out, seed 10.

    The copies are Bernoulli(f), so the recovered fraction's Wilson interval at
    level 1 - 1e-6 misses f with probability about 1e-6 per fraction (a fresh
    draw in d = 32 passes the ratio test with probability below 1e-9, and a copy
    at noise 0.01 fails it never: its ratio is about 0.01). The copies are all
    verbatim. C_T: for f = 0.1 its expected z is about -5.5 (flag at level 0.05
    missed with probability < 1e-4); for f >= 0.3 below -15 (z <= -4.5 fails
    with probability < 1e-20).
    """
    rng = np.random.default_rng(10)
    d, n_train, n = 32, 500, 2000
    train = rng.standard_normal((n_train, d))
    holdout = rng.standard_normal((n, d))
    x, copied = copying_model(train, n, fraction, rng)
    res = audit(train, x, holdout, level=1 - 1e-6)
    lo, hi = res.memorized_interval
    assert lo <= fraction <= hi
    assert res.memorized_count == copied.sum()
    assert np.all(res.classes[copied] == VERBATIM)
    assert not np.any(res.classes[~copied] == VERBATIM)
    if fraction >= 0.3:
        assert res.c_t.z <= -4.5 and res.c_t.statistic < 0 and res.flagged
        assert res.c_t_by_distance["cell"].z <= -4.5
        assert res.mann_whitney.z < -4.5
    if fraction > 0:
        assert res.flagged and res.verdict == "data-copying"


def test_true_law_false_positive_rate_at_nominal_level():
    """200 seeds (0..199) of the true-law model; N = 300, d = 8, 300 samples and 300 held-out.

    Under the null each side of the verdict (C_T's one-sided p-value < 0.05) is
    Bernoulli(0.05), with either distance: 200 seeds give 10 on average with
    s.e. 3.1; the band is 4.5 s.e. either side (false failure 7e-6, normal
    approximation). The near-copy count of a perfect model falls inside its
    stated 95% interval in at least 88% of seeds (expected about 95%, s.e.
    1.5%: false failure below 1e-5), and no sample of the law is classed verbatim.
    """
    alpha, seeds = 0.05, 200
    copying = {"train": 0, "cell": 0}
    underfit = {"train": 0, "cell": 0}
    verbatim = covered = 0
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        train, holdout, x = (rng.standard_normal((300, 8)) for _ in range(3))
        # The cells are fitted on the training set alone, so under the null any partition
        # gives a calibrated test: one k-means restart keeps this loop quick.
        res = audit(train, x, holdout, alpha=alpha, seed=seed, progress=False,
                    kmeans_n_init=1)
        assert res.flagged == (res.verdict == "data-copying")
        for name, ct in res.c_t_by_distance.items():
            copying[name] += ct.pvalue < alpha
            underfit[name] += ct.pvalue_underfit < alpha
        verbatim += res.class_counts["verbatim"]
        lo, hi = res.perfect_model["near copy"]["interval"]
        covered += lo <= res.class_counts["near copy"] <= hi
    band = 4.5 * np.sqrt(seeds * alpha * (1 - alpha))
    for counts in (copying, underfit):
        for name, count in counts.items():
            assert abs(count - seeds * alpha) <= band, (name, counts)
    assert verbatim <= 0.01 * seeds * 300
    assert covered >= 0.88 * seeds


def test_over_dispersed_model_gives_positive_c_t():
    """N = 500, d = 8, 1000 samples of N(0, 1.5^2 I), 1000 held-out, seed 3.

    The samples lie farther from the training set than fresh data: C_T > 0,
    with z far above 4.5 (expected above 20; false failure negligible), with
    both distances: the verdict is under-fitting.
    """
    rng = np.random.default_rng(3)
    train, holdout = rng.standard_normal((500, 8)), rng.standard_normal((1000, 8))
    res = audit(train, 1.5 * rng.standard_normal((1000, 8)), holdout)
    assert res.c_t.statistic > 0 and res.c_t.z >= 4.5
    assert res.c_t_by_distance["cell"].z >= 4.5
    assert not res.flagged and res.c_t.pvalue_underfit < 1e-6
    assert res.verdict == "under-fitting"


def test_numdiff_sampler_without_early_stopping_is_all_verbatim():
    """numdiff's SDE (exp_em, uniform log-SNR grid) at delta = 1e-6: N = 40, d = 4,
    200 samples, 400 held-out, seed 5. The samples sit within sigma_delta sqrt(d) ~ 3e-3
    of a training point, far below the training points' spacing: all memorised
    and verbatim (deterministic given the seed), and C_T flags the set."""
    rng = np.random.default_rng(5)
    train, holdout = rng.standard_normal((40, 4)), rng.standard_normal((400, 4))
    out = nd.sample(nd.EmpiricalScore(train, nd.OU()), 200, T=8.0, delta=1e-6, steps=200,
                    process="sde", solver="exp_em", grid="uniform_lambda", rng=5,
                    progress=False)
    res = audit(train, out.x, holdout, n_cells=2)
    assert res.class_counts["verbatim"] == 200 and res.memorized_fraction == 1.0
    assert res.flagged and res.c_t.z < -4.5
    assert res.memorized_fraction == nd.metrics.memorized_fraction(out.x, train)


def test_audit_matches_numdiff_metric_and_brute_force():
    rng = np.random.default_rng(7)
    train, x = rng.standard_normal((120, 20)), rng.standard_normal((50, 20))
    x[:10] = train[:10] + 1e-3
    res = audit(train, x, chunk=7)
    dist = np.linalg.norm(x[:, None, :] - train[None, :, :], axis=2)
    order = np.argsort(dist, axis=1)
    np.testing.assert_array_equal(res.nearest_index, order[:, 0])
    np.testing.assert_allclose(res.nearest_distance, dist[np.arange(50), order[:, 0]],
                               rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(res.ratio, nd.metrics.nearest_ratio(x, train), rtol=1e-12)
    assert res.calibration == "train leave-one-out" and res.c_t is None and res.flagged is None
    assert res.class_counts["verbatim"] == 10


def test_caller_arrays_are_left_untouched_unless_copy_false():
    rng = np.random.default_rng(8)
    train, x = rng.standard_normal((60, 3)) + 5.0, rng.standard_normal((10, 3))
    before = train.copy()
    audit(train, x)
    np.testing.assert_array_equal(train, before)
    res = audit(train, x, copy=False)
    np.testing.assert_allclose(train + res.extra["train_mean"], before, atol=1e-12)


def test_leave_one_out_distances_match_brute_force_with_duplicates():
    from numdiff.audit.search import TrainIndex

    rng = np.random.default_rng(9)
    train = rng.standard_normal((80, 5))
    train[10] = train[3]  # a duplicated pair: each is at distance 0 from the other
    train[20] = train[21] = train[22]  # a triple
    rows = np.arange(0, 80, 3)
    first, second = TrainIndex(train - train.mean(0)).leave_one_out(rows, second=True)
    dist = np.linalg.norm(train[rows, None] - train[None], axis=2)
    dist[np.arange(rows.size), rows] = np.inf  # leave the point itself out
    dist.sort(axis=1)
    np.testing.assert_allclose(first, dist[:, 0], atol=1e-12)
    np.testing.assert_allclose(second, dist[:, 1], atol=1e-12)
    assert first[rows == 3][0] == 0.0 and second[rows == 21][0] == 0.0
