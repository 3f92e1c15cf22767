"""The studies' measurement helpers, each against a closed form or an exact law.

Statistical checks use fixed seeds; the false-failure probability of each is
stated next to it.
"""

import numpy as np
import pytest
from scipy.special import softmax
from scipy.stats import kstest

from validation.studies.common import (
    bootstrap_ci,
    categorical_tv,
    mixture_cdf_1d,
    nearest_points,
    rosenblatt_2d,
    uniform_hist_tv,
)
from validation.studies.memorization import crossing_time, max_posterior_weight
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


def test_bootstrap_ci_matches_the_normal_interval():
    # n = 2000 indicators at p = 0.3: the normal 95% half-width is 0.0201; 4000 resamples
    # estimate each quantile to about 0.001.
    ind = np.zeros(2000)
    ind[:600] = 1
    lo, hi = bootstrap_ci(ind, np.random.default_rng(3), n_boot=4000)
    half = 1.96 * np.sqrt(0.3 * 0.7 / 2000)
    assert lo == pytest.approx(0.3 - half, abs=0.003)
    assert hi == pytest.approx(0.3 + half, abs=0.003)


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
    """The 8x8 digits path (scikit-learn extra): at each saved delta the sampler's
    memorized fraction agrees with exact p_delta samples within 4 binomial s.e.
    (n = 400 sampler, 4000 exact samples, seed 5). The deltas sit in the transition
    (fractions about 0.4 and 0.93), where a wrong sampler would show."""
    pytest.importorskip("sklearn")
    from validation.studies.memorization import memorization_cell

    config = {
        "family": "digits", "data_seed": 0, "n_data": 60, "T": 8.0, "deltas": [3e-3, 1e-3],
        "h_lambda": 0.05, "n": 400, "process": "ode", "solver": "ddim", "n_exact": 4000,
        "n_boot": 50,
    }
    out = memorization_cell(config, 5)
    assert out["dim"] == 64 and out["success"]
    for row in out["rows"]:
        p = row["memorized_exact"]
        se = np.sqrt(max(p * (1 - p), 1e-4) / config["n"])
        assert abs(row["memorized"] - p) <= 4 * se, row
