"""The audit's statistics against brute-force definitions (deterministic)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from numdiff.audit.result import verdict
from numdiff.audit.statistics import (
    CTResult,
    c_t_test,
    mann_whitney,
    perfect_model_count,
    wilson_interval,
    z_u,
)


def brute_z_u(gen, held):
    """(U - mn/2) / sqrt(mn(m+n+1)/12), U counting pairs with the generated one larger."""
    gen, held = np.asarray(gen), np.asarray(held)
    u = (gen[:, None] > held[None, :]).sum() + 0.5 * (gen[:, None] == held[None, :]).sum()
    m, n = gen.size, held.size
    return (u - m * n / 2) / np.sqrt(m * n * (m + n + 1) / 12)


def test_z_u_is_the_standardised_pair_count():
    rng = np.random.default_rng(0)
    gen, held = rng.random(37), rng.random(23)
    gen[:3] = held[:3]  # ties count one half
    assert z_u(gen, held) == pytest.approx(brute_z_u(gen, held), rel=1e-12)
    assert z_u(gen * 0.1, held) < 0 < z_u(gen + 1.0, held)
    # The companion code's continuity correction: U centred at mn/2 - 1/2.
    sd = np.sqrt(37 * 23 * (37 + 23 + 1) / 12)
    assert z_u(gen, held, continuity_correction=True) == pytest.approx(
        brute_z_u(gen, held) + 0.5 / sd, rel=1e-12)


def test_mann_whitney_direction_and_pvalues():
    rng = np.random.default_rng(1)
    held = rng.random(200)
    mw = mann_whitney(held * 0.5, held)
    assert mw.z < 0 and mw.pvalue_less < 1e-6 and mw.pvalue_two_sided == pytest.approx(
        2 * mw.pvalue_less, rel=1e-6)


def test_c_t_is_the_held_out_weighted_mean_of_kept_cells():
    rng = np.random.default_rng(2)
    gen_cell = np.repeat([0, 1, 2, 3], [30, 25, 5, 20])   # cell 2: too few generated
    held_cell = np.repeat([0, 1, 2, 3], [40, 10, 50, 0])  # cell 3: no held-out point
    gen, held = rng.random(gen_cell.size), rng.random(held_cell.size)
    res = c_t_test(gen, gen_cell, held, held_cell, 4, min_generated=20)
    z = [brute_z_u(gen[gen_cell == c], held[held_cell == c]) for c in (0, 1)]
    w = np.array([40, 10]) / held.size
    assert res.statistic == pytest.approx((w @ z) / w.sum(), rel=1e-12)
    assert res.z == pytest.approx(res.statistic * w.sum() / np.sqrt(w @ w), rel=1e-12)
    assert [c["kept"] for c in res.cells] == [True, True, False, False]
    assert res.dropped_no_held_out == 1
    assert res.tau == pytest.approx(20 / gen.size)
    assert res.pvalue + res.pvalue_underfit == pytest.approx(1.0)


def test_c_t_without_kept_cells_is_nan():
    res = c_t_test(np.ones(5), np.zeros(5, int), np.ones(5), np.zeros(5, int), 1)
    assert np.isnan(res.statistic) and np.isnan(res.pvalue)


def test_wilson_interval_is_scipys():
    ci = binomtest(7, 40).proportion_ci(confidence_level=0.9, method="wilson")
    assert wilson_interval(7, 40, 0.9) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert wilson_interval(40, 40)[1] == 1.0


def test_c_t_default_keeps_cells_with_more_than_20_generated_points():
    # The companion code's rule Q_m(pi) > 20 / m: 20 points are too few, 21 enough.
    rng = np.random.default_rng(3)
    gen_cell = np.repeat([0, 1], [20, 21])
    held_cell = np.repeat([0, 1], [30, 30])
    res = c_t_test(rng.random(41), gen_cell, rng.random(60), held_cell, 2)
    assert [c["kept"] for c in res.cells] == [False, True]


def test_perfect_model_interval_covers_exchangeable_counts():
    """4000 Monte Carlo draws: n = 300 reference and m = 300 sample values i.i.d.; the class
    is "below the reference's 0.05 quantile". The count's 95% interval from the reference's
    own count must cover at least 94% of draws (measured 96%; s.e. 0.35%, false failure
    below 1e-3). A binomial interval that ignores the estimated rate covers 87% here, so
    the test separates the two."""
    rng = np.random.default_rng(12)
    n = m = 300
    covered, intervals = 0, {}
    for _ in range(4000):
        ref, samples = rng.random(n), rng.random(m)
        t = np.quantile(ref, 0.05)
        hits = int(np.sum(ref < t))
        if hits not in intervals:
            intervals[hits] = perfect_model_count(hits, n, m, 0.95)[1]
        lo, hi = intervals[hits]
        covered += lo <= np.sum(samples < t) <= hi
    assert covered >= 0.94 * 4000


def test_verdict_sides():
    def fake(z):
        from scipy.special import ndtr

        return CTResult(z, z, float(ndtr(z)), float(ndtr(-z)), 1, 0.1)

    # |z| = 1.8: one-sided p = 0.036, below 0.05 but above 0.05 / 2 (each side at alpha).
    assert verdict(fake(-1.8), 0.05) == "data-copying"
    assert verdict(fake(1.8), 0.05) == "under-fitting"
    assert verdict(fake(1.6), 0.05) == verdict(fake(-1.6), 0.05) == "neither"
    assert verdict(fake(-1.0), 0.2) == "data-copying"
    assert verdict(fake(float("nan")), 0.05) is None and verdict(None, 0.05) is None
