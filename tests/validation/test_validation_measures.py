"""The studies' measurement helpers, each against a closed form or an exact law.

Statistical checks use fixed seeds; the false-failure probability of each is
stated next to it.
"""

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import binomtest, kstest

from validation.studies.common import (
    categorical_tv,
    mixture_cdf_1d,
    nearest_points,
    rosenblatt_2d,
    two_proportion_test,
    uniform_hist_tv,
    wilson_ci,
)
from validation.studies.memorization import crossing_time, crossing_time_se, max_posterior_weight
from validation.studies.no_early_stopping import fit_slope, mean_norm_gaussian


def _mixture_samples(rng, means, sigma, n):
    k = rng.integers(len(means), size=n)
    return means[k] + sigma * rng.standard_normal((n, means.shape[1]))


def test_probability_transforms_make_exact_samples_uniform():
    # n = 20000 draws; a KS p-value below 1e-4 happens with probability 1e-4 per test.
    rng = np.random.default_rng(0)
    means = rng.standard_normal((7, 2)) * 2.0
    x = _mixture_samples(rng, means, 0.3, 20000)
    u = rosenblatt_2d(x, means, 0.3)
    assert kstest(u[:, 0], "uniform").pvalue > 1e-4
    assert kstest(u[:, 1], "uniform").pvalue > 1e-4
    # Independence of the two coordinates: the 2-D histogram TV stays at its null level.
    assert uniform_hist_tv(u, 8) < 3 * np.sqrt(64 / (2 * np.pi * 20000))
    assert kstest(mixture_cdf_1d(x[:, 0], means[:, 0], 0.3), "uniform").pvalue > 1e-4
    # A wrong width is detected (the transform is not a tautology).
    assert kstest(rosenblatt_2d(x, means, 0.2)[:, 1], "uniform").pvalue < 1e-6


def test_histogram_and_categorical_tv_closed_forms():
    u = np.linspace(0.0, 0.4999, 1000)  # all mass in the lower half: TV = 1/2 exactly
    assert uniform_hist_tv(u, 10) == pytest.approx(0.5)
    assert uniform_hist_tv(np.linspace(0, 1, 1000, endpoint=False), 10) == pytest.approx(0.0)
    assert categorical_tv(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 3) == pytest.approx(0.25)


def test_nearest_points_against_brute_force():
    rng = np.random.default_rng(1)
    data, x = rng.standard_normal((30, 3)), rng.standard_normal((200, 3))
    dist = np.linalg.norm(x[:, None, :] - data[None], axis=2)
    order = np.sort(dist, axis=1)
    idx, d1, ratio = nearest_points(x, data)
    np.testing.assert_array_equal(idx, dist.argmin(axis=1))
    np.testing.assert_allclose(d1, order[:, 0], rtol=1e-12)
    np.testing.assert_allclose(ratio, order[:, 0] / order[:, 1], rtol=1e-12)


def test_max_posterior_weight_against_dense_softmax():
    rng = np.random.default_rng(2)
    data, x = rng.standard_normal((40, 5)) + 3.0, rng.standard_normal((300, 5)) + 3.0
    alpha, sigma2 = 0.8, 0.3
    logits = -((x[:, None, :] - alpha * data[None]) ** 2).sum(axis=2) / (2 * sigma2)
    np.testing.assert_allclose(max_posterior_weight(x, data, alpha, sigma2, block=64),
                               softmax(logits, axis=1).max(axis=1), rtol=1e-10)


def test_wilson_ci_matches_scipy_and_never_collapses_at_the_edges():
    lo, hi = wilson_ci(600, 2000)
    ci = binomtest(600, 2000).proportion_ci(method="wilson")
    assert (lo, hi) == (pytest.approx(ci.low, rel=1e-12), pytest.approx(ci.high, rel=1e-12))
    # A percentile bootstrap gives [1, 1] for 400 successes in 400; Wilson does not.
    lo, hi = wilson_ci(400, 400)
    assert 0.98 < lo < 1.0 and hi == pytest.approx(1.0)
    assert wilson_ci(0, 50)[0] == pytest.approx(0.0, abs=1e-15) and wilson_ci(0, 50)[1] > 0.05


def test_two_proportion_test_at_the_edges_and_under_the_null():
    same = two_proportion_test(400, 400, 1000, 1000)  # both exactly 1
    assert same.se > 0 and same.z == 0.0 and same.diff == 0.0
    far = two_proportion_test(200, 400, 1000, 1000)
    assert far.z < -10 and far.pvalue < 1e-20
    with pytest.raises(ValueError, match="k1"):
        two_proportion_test(5, 4, 1, 1)
    # Level under the null: 4000 replications at p = 0.3, n = 400 and 1000, seed 6.
    # The rejection rate at |z| > 1.96 is 0.05 with binomial s.d. 0.0034; the band
    # 0.05 +- 0.015 (4.4 s.d.) fails falsely with probability about 1e-5.
    rng = np.random.default_rng(6)
    k1, k2 = rng.binomial(400, 0.3, 4000), rng.binomial(1000, 0.3, 4000)
    z = np.array([two_proportion_test(a, 400, b, 1000).z for a, b in zip(k1, k2)])
    assert abs(np.mean(np.abs(z) > 1.96) - 0.05) < 0.015


def test_crossing_time_standard_error_matches_simulation():
    # A fraction linear in log10(delta), 1/2 at 1e-2, estimated from n = 2000 draws at
    # each grid point, 2000 replications (seed 7): the spread of log t over the
    # replications against the delta-method s.e. The s.d. of an s.d. estimated from
    # 2000 draws is 1.6%; the band is 10%.
    deltas = np.logspace(-4, 0, 9)
    frac = np.clip(1.0 - (np.log10(deltas) + 4) / 4, 0, 1)
    rng = np.random.default_rng(7)
    n = 2000
    logs = [np.log(crossing_time(deltas, rng.binomial(n, frac) / n)) for _ in range(2000)]
    _, se = crossing_time_se(deltas, frac, n)
    assert np.std(logs) == pytest.approx(se, rel=0.1)
    assert np.isnan(crossing_time_se(deltas, np.ones(9), n)[1])


def test_crossing_time_and_slope_fit_on_closed_forms():
    deltas = np.logspace(-4, 0, 9)
    frac = np.clip(1.0 - (np.log10(deltas) + 4) / 4, 0, 1)  # linear in log10: 1/2 at 1e-2
    assert crossing_time(deltas, frac) == pytest.approx(1e-2, rel=1e-12)
    assert np.isnan(crossing_time(deltas, np.ones(9)))
    sig = np.logspace(-3, -1, 5)
    slope, se = fit_slope(sig, 1.7 * sig**1.25, 0.01 * sig)
    assert slope == pytest.approx(1.25, rel=1e-12) and se < 0.01


def test_mean_norm_of_a_standard_gaussian():
    assert mean_norm_gaussian(1) == pytest.approx(np.sqrt(2 / np.pi), rel=1e-14)
    assert mean_norm_gaussian(2) == pytest.approx(np.sqrt(np.pi / 2), rel=1e-14)
    # d = 5 by Monte Carlo: 2e5 draws, standard error 0.0013; band 0.006 is 4.6 s.e.
    z = np.random.default_rng(4).standard_normal((200000, 5))
    assert mean_norm_gaussian(5) == pytest.approx(np.linalg.norm(z, axis=1).mean(), abs=0.006)


def test_digits_memorization_cell_matches_exact_samples():
    """The 8x8 digits path: at each saved delta the sampler's memorized fraction
    agrees with exact p_delta samples within 4.5 Agresti-Caffo s.e. of the
    difference (n = 400 sampler, 4000 exact samples, seed 5; false failure about
    1e-5 per point). The deltas sit in the transition (fractions about 0.4 and
    0.93), where a wrong sampler would show."""
    pytest.importorskip("sklearn")
    from validation.studies.common import SE_BAND
    from validation.studies.memorization import memorization_cell

    config = {
        "family": "digits", "data_seed": 0, "n_data": 60, "T": 8.0, "deltas": [3e-3, 1e-3],
        "h_lambda": 0.05, "n": 400, "process": "ode", "solver": "ddim", "n_exact": 4000,
        "refine": 2,
    }
    out = memorization_cell(config, 5)
    assert out["dim"] == 64 and out["success"]
    for row in out["rows"]:
        test = two_proportion_test(row["memorized"], config["n"], row["memorized_exact"],
                                   config["n_exact"])
        assert abs(test.z) <= SE_BAND, row
