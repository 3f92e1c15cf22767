"""The convergence-order study: helpers, the quick table, the figure; the full study is slow."""

import numpy as np
import pytest

import numdiff as nd
import theory.flows as theory_flows
from validation import orders


def test_fit_order_recovers_a_power_law():
    steps = np.array([8, 16, 32, 64])
    assert orders.fit_order(steps, 3.0 * steps**-1.5) == pytest.approx(1.5, abs=1e-12)


def test_nested_noise_sums_the_fine_increments():
    rng = np.random.default_rng(0)
    times = nd.grids.geometric(nd.OU(), 1.0, 0.1, 8)
    z = rng.standard_normal((8, 3, 2))
    coarse = orders.nested_noise(times, z, 4)
    dw_fine = np.sqrt(-np.diff(times))[:, None, None] * z
    dw_coarse = np.sqrt(-np.diff(times[::4]))[:, None, None] * coarse
    np.testing.assert_allclose(dw_coarse, dw_fine.reshape(2, 4, 3, 2).sum(axis=1), rtol=1e-13)


def test_gaussian_score_is_the_posterior_mean():
    # Tweedie: D = x + sigma^2 * score / alpha with the Gaussian marginal's score.
    schedule = nd.VPLinear()
    mean, var = np.array([1.0, -2.0]), np.array([0.3, 4.0])
    g = orders.GaussianScore(mean, var, schedule)
    x = np.random.default_rng(1).standard_normal((5, 2))
    alpha, sigma2 = float(schedule.alpha(0.4)), float(schedule.sigma2(0.4))
    score = -(x - alpha * mean) / (alpha**2 * var + sigma2)
    np.testing.assert_allclose(g.denoise(0.4, x), (x + sigma2 * score) / alpha, rtol=1e-12)


def test_ratio_grids_alternate_their_steps_in_lambda():
    schedule = nd.VPLinear()
    grids = orders.ratio_grids(schedule, 1.0, 1e-3, [4, 8])
    for steps, times in grids.items():
        assert times.size == steps + 1 and times[0] == 1.0 and times[-1] == 1e-3
        h = np.diff(schedule.lam(times))
        np.testing.assert_allclose(h[1::2] / h[::2], 3.0, rtol=1e-9)
    uniform = orders.ratio_grids(schedule, 1.0, 1e-3, [8], ratio=1.0)[8]
    np.testing.assert_allclose(uniform, nd.grids.uniform_lambda(schedule, 1.0, 1e-3, 8),
                               rtol=1e-12)


def test_exact_reverse_path_has_the_exact_transition_law():
    # The output is affine in (x_T, z, xi): with zero noise it is the exact mean of
    # the whole transition (Markov property), and the squared coefficients of the
    # noises add up to its variance.
    schedule, T, delta = orders.custom_schedule(), 2.0, 0.05
    mean, var = orders.MEAN, orders.VAR
    times = orders.ratio_grids(schedule, T, delta, [6])[6]
    x_T = np.array([[0.3, -1.2]])
    zero = np.zeros((6, 1, 2))
    base = orders.exact_reverse_path(x_T, times, zero, mean, var, schedule, zero)
    m, v = theory_flows.gaussian_reverse_transition(x_T, T, delta, mean, var, schedule)
    np.testing.assert_allclose(base, m, rtol=1e-12)
    total = np.zeros(2)
    for i in range(6):
        for which in range(2):
            noise = [zero.copy(), zero.copy()]
            noise[which][i] = 1.0
            out = orders.exact_reverse_path(x_T, times, noise[0], mean, var, schedule, noise[1])
            total += (out - base)[0] ** 2
    np.testing.assert_allclose(total, v, rtol=1e-10)


@pytest.fixture(scope="module")
def quick_rows():
    return orders.measure_orders(quick=True)


def test_quick_orders_all_within_their_bands(quick_rows):
    failed = [r for r in quick_rows if not r["passed"]]
    assert not failed, orders.format_table(failed)
    checks = {(r["solver"], r["process"], r["check"]) for r in quick_rows}
    for key in [("euler", "ode", "ode N=1"), ("heun", "ode", "ode gauss"),
                ("dpmpp_2m", "ode", "ode gauss"), ("dpmpp_2m", "ode", "ode gauss r=3"),
                ("euler", "sde", "strong"), ("exp_em", "sde", "strong exact N=1"),
                ("heun", "sde", "strong exact gauss"),
                ("heun", "sde", "strong"), ("euler", "sde", "weak E[X]"),
                ("euler", "sde", "weak E|X|^2")]:
        assert key in checks
    assert {r["schedule"] for r in quick_rows} == {"OU", "VPLinear", "custom"}


def test_weak_rows_keep_only_levels_above_three_standard_errors(quick_rows):
    for r in quick_rows:
        if "standard_errors" in r:
            assert len(r["steps"]) >= 3
            assert (np.array(r["errors"]) > 3 * np.array(r["standard_errors"])).all()


def test_table_and_figure(quick_rows, tmp_path):
    table = orders.format_table(quick_rows)
    assert table.splitlines()[0].split() == list(orders.HEADER)
    assert len(table.splitlines()) == len(quick_rows) + 2
    path = orders.plot_orders(quick_rows, tmp_path / "orders.png")
    assert path.stat().st_size > 10_000


@pytest.mark.slow
def test_full_orders_all_within_their_bands():
    rows = orders.measure_orders(quick=False)
    failed = [r for r in rows if not r["passed"]]
    assert not failed, orders.format_table(failed)
