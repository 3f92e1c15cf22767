"""Tests of numdiff.nets.function_space: knots, f'', the weight g, the bounds.

Oracles: ``g`` by enumerating the empirical law point by point (the definition
read literally), one of its factors by quadrature of the tail probability; the
slope jumps of ``f`` by finite differences of ``predict``; the papers'
inequalities against dense ``eigh`` of the Hessian. Liang, Qiao, Wang & Parhi
(2025, Theorem 3.2) claim their bound at every parameter point where the loss
is twice differentiable, so it is tested on random parameters; the bound
``1/eta - 1/2`` for interpolating stable minima is tested on interpolants built
directly.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import quad

from numdiff import nets


def g_by_enumeration(data, t):
    """``min(g-, g+)`` at one point, summing over the data one point at a time."""
    n = len(data)
    above = [v for v in data if v > t]
    below = [v for v in data if v < t]
    g_plus = g_minus = 0.0
    if above:
        mean = sum(above) / len(above)
        g_plus = (len(above) / n) ** 2 * sum(v - t for v in above) / len(above) * np.sqrt(1 + mean**2)
    if below:
        mean = sum(below) / len(below)
        g_minus = (len(below) / n) ** 2 * sum(t - v for v in below) / len(below) * np.sqrt(1 + mean**2)
    return min(g_minus, g_plus), g_minus, g_plus


@given(st.integers(1, 15), st.integers(0, 2**32 - 1), st.booleans())
def test_g_against_enumeration_of_the_empirical_law(n, seed, ties):
    rng = np.random.default_rng(seed)
    data = rng.normal(0.5, 2.0, n)
    if ties:
        data = np.round(data)  # repeated inputs count with multiplicity
    at = np.concatenate([data, rng.uniform(data.min() - 1, data.max() + 1, 20),
                         [data.min() - 5.0, data.max() + 5.0]])
    expected = np.array([g_by_enumeration(list(data), t) for t in at])
    for column, side in enumerate(["min", "left", "right"]):
        np.testing.assert_allclose(nets.weight_function(data, at, side=side), expected[:, column],
                                   rtol=1e-12, atol=1e-12)
    outside = nets.weight_function(data, [data.min() - 5.0, data.min(), data.max(), data.max() + 5.0])
    assert np.array_equal(outside, np.zeros(4))


def test_g_tail_factor_by_quadrature():
    # P(X > t) E[X - t | X > t] = int_t^inf P(X > s) ds, so
    # g+(t) = P(X > t) sqrt(1 + E[X | X > t]^2) int_t^inf P(X > s) ds.
    data = np.random.default_rng(2).uniform(-1.0, 3.0, 9)
    for t in (-0.5, 0.3, 1.1, 2.0):
        tail = np.mean(data > t)
        integral = quad(lambda s: np.mean(data > s), t, data.max(), points=np.sort(data), limit=200)[0]
        mean = data[data > t].mean()
        expected = tail * np.sqrt(1 + mean**2) * integral
        assert nets.weight_function(data, t, side="right") == pytest.approx(expected, rel=1e-9)
    assert nets.weight_function(data, 0.3).shape == ()


def test_masses_are_the_slope_jumps_and_merge():
    # f' jumps by w2 |w1| at -b1 / w1, for either sign of w1.
    theta = nets.pack([2.0, -0.5, 1.0, 0.0], [-1.0, 0.25, 3.0, 1.0], [1.5, -4.0, 0.7, 9.0], 0.3)
    positions, masses, neurons = nets.knots(theta)
    assert neurons.tolist() == [0, 1, 2]  # w1 = 0 is a constant: no knot
    np.testing.assert_allclose(positions, [0.5, 0.5, -3.0])
    np.testing.assert_allclose(masses, [3.0, -2.0, 0.7])
    eps = 1e-6
    for t, mass in [(0.5, 1.0), (-3.0, 0.7)]:  # the two knots at 0.5 merge: 3 - 2
        f = nets.predict(theta, [t - eps, t, t + eps])
        assert (f[2] - 2 * f[1] + f[0]) / eps == pytest.approx(mass, rel=1e-6)
    measure = nets.second_derivative(theta)
    np.testing.assert_allclose(measure.positions, [-3.0, 0.5])
    np.testing.assert_allclose(measure.masses, [0.7, 1.0])
    assert measure.total_variation() == pytest.approx(1.7)


def test_merging_rule():
    w1 = np.array([1.0, 1.0, -1.0, 1.0, 1.0])
    t = np.array([1.0, 1.0 + 1e-12, 1.0, 2.0, 2.0 + 1e-3])
    theta = nets.pack(w1, -w1 * t, [1.0, 2.0, -3.0, 1.0, 1.0], 0.0)
    # Default rtol = 1e-9: 1 + 2 - 3 cancels exactly at t = 1 and is dropped;
    # 2 and 2.001 stay apart.
    measure = nets.second_derivative(theta)
    np.testing.assert_allclose(measure.positions, [2.0, 2.001])
    np.testing.assert_allclose(measure.masses, [1.0, 1.0])
    exact = nets.second_derivative(theta, rtol=0.0)  # only equal knots merge
    np.testing.assert_allclose(exact.positions, [1.0, 1.0 + 1e-12, 2.0, 2.001], rtol=1e-15)
    np.testing.assert_allclose(exact.masses, [-2.0, 2.0, 1.0, 1.0])
    wide = nets.second_derivative(theta, atol=1e-2)
    np.testing.assert_allclose(wide.masses, [2.0])
    assert wide.positions[0] == pytest.approx(2.0005)  # |mass|-weighted mean
    assert nets.weighted_tv(theta, [0.0, 3.0]) == pytest.approx(
        nets.weight_function([0.0, 3.0], [2.0, 2.001]).sum())


def interpolant(x, y):
    """A net with zero loss on sorted ``x``: knots at midpoints, twice differentiable."""
    n = x.size
    mids = 0.5 * (x[1:-1] + x[2:])  # no knot in the first gap
    # Columns: b2, a linear neuron active on all data, one neuron per midpoint.
    shift = x[0] - 1.0
    design = np.column_stack([np.ones(n), x - shift, np.maximum(x[:, None] - mids[None, :], 0.0)])
    coef = np.linalg.solve(design, y)
    w1 = np.ones(n - 1)
    b1 = -np.concatenate([[shift], mids])
    return nets.pack(w1, b1, coef[1:], coef[0])


cases = st.tuples(st.integers(3, 9), st.integers(0, 2**32 - 1), st.sampled_from([0.2, 1.0, 5.0]))


@given(cases)
def test_flatness_bound_on_random_parameters(case):
    # Liang et al. (2025), Theorem 3.2 (d = 1), and its Gauss-Newton step
    # lambda_max(J^T J / n) >= 1 + 2 sum_j |w2_j w1_j| g(t_j), at any point.
    k, seed, scale = case
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, 10)
    y = np.sin(2.0 * x) + 0.5 * rng.standard_normal(10)
    theta = scale * rng.standard_normal(3 * k + 1)
    lam = np.linalg.eigvalsh(nets.hessian(theta, x, y)).max()
    lam_gn = np.linalg.eigvalsh(nets.hessian(theta, x, y, part="gauss_newton")).max()
    tv = nets.weighted_tv(theta, x)
    positions, masses, _ = nets.knots(theta)
    unmerged = np.abs(masses) @ nets.weight_function(x, positions)
    assert tv <= unmerged + 1e-12
    assert lam_gn >= 1.0 + 2.0 * unmerged - 1e-9 * lam_gn
    loss, radius = nets.loss(theta, x, y), np.abs(x).max()
    assert tv <= nets.flatness_tv_bound(lam, loss, radius) + 1e-9 * max(1.0, lam)
    # The constant the proof's steps give, sqrt(1 + R^2) / 2 in place of R + 1.
    sharper = lam / 2 - 0.5 + np.sqrt(1 + radius**2) / 2 * np.sqrt(2 * loss)
    assert tv <= sharper + 1e-9 * max(1.0, lam)


@given(st.integers(3, 12), st.integers(0, 2**32 - 1), st.floats(0.25, 4.0))
def test_interpolating_minima_obey_one_over_eta_minus_half(n, seed, rescale):
    # At a zero-loss point GD with eta is stable iff lambda_max <= 2 / eta;
    # at the largest such eta, Mulayoff et al.'s bound reads TV_g <= 1/eta - 1/2.
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-1.0, 1.0, n))
    x = x[np.concatenate([[True], np.diff(x) > 1e-3])]
    y = rng.standard_normal(x.size)
    theta = interpolant(x, y)
    p = nets.unpack(theta)
    # Rescaling neurons (w1, b1) -> c (w1, b1), w2 -> w2 / c keeps f, changes the Hessian.
    theta = nets.pack(rescale * p.w1, rescale * p.b1, p.w2 / rescale, p.b2)
    loss = nets.loss(theta, x, y)
    assert loss <= 1e-20 * (1.0 + np.mean(y**2))
    eta = 2.0 / np.linalg.eigvalsh(nets.hessian(theta, x, y)).max()
    assert nets.weighted_tv(theta, x) <= nets.stable_tv_bound(eta, loss, 1.0) + 1e-9 / eta


def test_bound_functions():
    assert nets.stable_tv_bound(0.5) == 1.5
    assert nets.flatness_tv_bound(4.0) == 1.5
    assert nets.stable_tv_bound(0.5, loss=0.02, radius=1.0) == pytest.approx(1.5 + 2.0 * 0.2)
    for make, exc, name in [
        (lambda: nets.stable_tv_bound(0.0), ValueError, "eta"),
        (lambda: nets.stable_tv_bound(0.1, loss=-1.0), ValueError, "loss"),
        (lambda: nets.flatness_tv_bound(1.0, radius=np.nan), ValueError, "radius"),
        (lambda: nets.flatness_tv_bound(None), TypeError, "lam_max"),
        (lambda: nets.weight_function([0.0, 1.0], [np.inf]), ValueError, "at"),
        (lambda: nets.weight_function([0.0, 1.0], 0.5, side="up"), ValueError, "side"),
        (lambda: nets.weight_function([], 0.5), ValueError, "x"),
        (lambda: nets.second_derivative(np.zeros(4), rtol=-1.0), ValueError, "rtol"),
    ]:
        with pytest.raises(exc, match=rf"\b{name}\b"):
            make()
