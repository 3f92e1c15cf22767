"""Tests of numdiff.nets: the model, its gradient and Hessian, and gradient descent.

Oracles: central finite differences of the loss (for the gradient) and of the
gradient (for Hessian-vector products and the dense Hessian), dense
``numpy.linalg.eigh`` for Lanczos, a plain numpy forward pass, and a Python
re-implementation of the catapult-episode rule. The loss is a polynomial of
degree 4 in the parameters between kinks, so central differences with step
``h`` are exact up to ``O(h^2)`` and rounding, as long as no pre-activation
crosses 0 within ``h``: examples closer than ``KINK_GAP`` to a kink are skipped.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from numdiff import nets
from numdiff.nets import _kernels

H_FD = 1e-6
KINK_GAP = 1e-3


def problem(seed, k, n, scale=1.0):
    """Data and parameters drawn from ``seed``: inputs in [-2, 2], parameters N(0, scale^2)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, n)
    y = np.sin(2.0 * x) + 0.3 * rng.standard_normal(n)
    theta = scale * rng.standard_normal(3 * k + 1)
    return x, y, theta


def min_preactivation(theta, x):
    p = nets.unpack(theta)
    return np.abs(p.w1[:, None] * x[None, :] + p.b1[:, None]).min()


def fd_gradient_error(grad_fn, theta, x, y):
    """Largest ``|grad_fn - central FD of the loss|`` over the coordinates, relative."""
    grad = grad_fn(theta, x, y)
    fd = np.empty_like(theta)
    for p in range(theta.size):
        step = np.zeros_like(theta)
        step[p] = H_FD
        fd[p] = (nets.loss(theta + step, x, y) - nets.loss(theta - step, x, y)) / (2 * H_FD)
    return np.abs(grad - fd).max() / (1.0 + np.abs(fd).max())


def exact_gradient(theta, x, y):
    return nets.loss_and_gradient(theta, x, y)[1]


sizes = st.tuples(st.integers(1, 6), st.integers(1, 12), st.integers(0, 2**32 - 1),
                  st.sampled_from([0.3, 1.0, 3.0]))


# -- model and gradient ----------------------------------------------------------------------


def test_layout_and_predict_against_numpy():
    x, y, theta = problem(0, 5, 9)
    p = nets.unpack(theta)
    assert p.k == 5 and p.w1.base is theta and nets.n_params(5) == theta.size
    assert np.array_equal(nets.pack(*p), theta)
    dense = np.maximum(np.outer(x, p.w1) + p.b1, 0.0) @ p.w2 + p.b2
    np.testing.assert_allclose(nets.predict(theta, x), dense, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(nets.predict(p, x), dense, rtol=1e-14, atol=1e-14)
    assert nets.loss(theta, x, y) == pytest.approx(0.5 * np.mean((dense - y) ** 2), rel=1e-14)
    assert nets.predict(theta, []).shape == (0,)


@given(sizes)
def test_gradient_matches_finite_differences(case):
    k, n, seed, scale = case
    x, y, theta = problem(seed, k, n, scale)
    assume(min_preactivation(theta, x) > KINK_GAP * scale)
    assert fd_gradient_error(exact_gradient, theta, x, y) < 1e-7


def test_a_wrong_gradient_is_caught():
    # The same comparison fails for a gradient with the sign of the b1 block flipped.
    x, y, theta = problem(8, 4, 10)
    assert min_preactivation(theta, x) > KINK_GAP

    def flipped(theta, x, y):
        grad = exact_gradient(theta, x, y)
        grad[4:8] *= -1.0
        return grad

    assert fd_gradient_error(exact_gradient, theta, x, y) < 1e-7
    assert fd_gradient_error(flipped, theta, x, y) > 1e-3


# -- Hessian ---------------------------------------------------------------------------------


@given(sizes)
def test_hvp_matches_finite_differences_of_the_gradient(case):
    k, n, seed, scale = case
    x, y, theta = problem(seed, k, n, scale)
    assume(min_preactivation(theta, x) > KINK_GAP * scale)
    v = np.random.default_rng(seed + 1).standard_normal(theta.size)
    fd = (exact_gradient(theta + H_FD * v, x, y) - exact_gradient(theta - H_FD * v, x, y)) / (2 * H_FD)
    hv = nets.hvp(theta, x, y, v)
    assert np.abs(hv - fd).max() <= 1e-6 * (1.0 + np.abs(fd).max())
    dense = nets.hessian(theta, x, y)
    np.testing.assert_array_equal(dense, dense.T)
    assert np.abs(dense @ v - hv).max() <= 1e-12 * (1.0 + np.abs(hv).max())
    gn = nets.hessian(theta, x, y, part="gauss_newton")
    np.testing.assert_allclose(gn @ v, nets.hvp(theta, x, y, v, part="gauss_newton"),
                               rtol=1e-12, atol=1e-12 * (1.0 + np.abs(hv).max()))
    assert np.linalg.eigvalsh(gn).min() > -1e-10 * np.abs(gn).max()  # J^T J / n is PSD


def test_dense_hessian_matches_finite_differences_column_by_column():
    x, y, theta = problem(3, 4, 8)
    assert min_preactivation(theta, x) > KINK_GAP
    columns = [(exact_gradient(theta + H_FD * e, x, y) - exact_gradient(theta - H_FD * e, x, y))
               / (2 * H_FD) for e in np.eye(theta.size)]
    np.testing.assert_allclose(nets.hessian(theta, x, y), np.array(columns).T, atol=1e-8)


@pytest.mark.parametrize("seed, k, n", [(0, 2, 5), (1, 3, 12), (2, 8, 20), (3, 20, 7), (4, 30, 40)])
@pytest.mark.parametrize("part", ["full", "gauss_newton"])
def test_lambda_max_lanczos_agrees_with_eigh(seed, k, n, part):
    x, y, theta = problem(seed, k, n)
    dense = np.linalg.eigvalsh(nets.hessian(theta, x, y, part=part)).max()
    assert abs(nets.lambda_max(theta, x, y, part=part) - dense) <= 1e-8 * max(1.0, abs(dense))


# -- gradient descent ------------------------------------------------------------------------


def test_one_step_is_theta_minus_eta_gradient():
    x, y, theta = problem(5, 6, 15)
    result = nets.train_gd(x, y, theta, 0.1, max_steps=1, tol=0.0, sharpness=False)
    assert result.status == "max_steps" and result.steps == 1
    np.testing.assert_allclose(result.params, theta - 0.1 * exact_gradient(theta, x, y),
                               rtol=1e-14, atol=1e-15)
    assert result.losses[0] == pytest.approx(nets.loss(theta, x, y), rel=1e-14)
    assert result.losses[1] == pytest.approx(result.loss, rel=1e-14)


def test_converged_minimum_is_stable_and_obeys_the_bound():
    # If GD settles, lambda_max <= 2 / eta there, and the weighted TV obeys the
    # bound of Liang et al. (2025, Theorem 3.2) / Qiao et al. (2024).
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(-1.0, 1.0, 12))
    y = np.sin(3.0 * x) + 0.2 * rng.standard_normal(12)
    eta = 0.5
    result = nets.train_gd(x, y, nets.init_standard(30, 0), eta, max_steps=200_000, tol=1e-9)
    assert result.status == "converged" and result.grad_norm <= 1e-9
    assert result.sharpness <= 1.0 + 1e-6
    tv = nets.weighted_tv(result.params, x)
    assert 0.0 < tv <= nets.stable_tv_bound(eta, result.loss, np.abs(x).max())
    assert result.view.k == 30


def test_dead_network_is_not_converged():
    x, y, _ = problem(2, 3, 10)
    dead = nets.pack(np.zeros(3), -np.ones(3), np.ones(3), 0.0)  # relu(-1) = 0 everywhere
    result = nets.train_gd(x, y, dead, 0.5, max_steps=1000, tol=1e-3)
    assert result.status == "dead" and result.steps == 0
    # Inactive on the data only: knots right of every point, slopes up.
    right = nets.pack(np.ones(3), -(x.max() + np.arange(1.0, 4.0)), np.ones(3), 0.0)
    assert nets.train_gd(x, y, right, 0.5, max_steps=10).status == "dead"


def test_divergence_and_budget():
    x, y, theta = problem(4, 10, 20)
    diverged = nets.train_gd(x, y, theta, 50.0, max_steps=10_000)
    assert diverged.status == "diverged" and diverged.sharpness is None
    assert diverged.grad_norm == np.inf
    assert diverged.steps < 200 and np.isfinite(diverged.params).all()
    assert diverged.losses[-1] > 1e6 * diverged.losses[0]
    budget = nets.train_gd(x, y, theta, 1e-3, max_steps=7, tol=0.0)
    assert budget.status == "max_steps" and budget.steps == 7 and budget.losses.shape == (8,)
    assert not budget.catapulted and budget.max_catapult_ratio == 1.0


def episodes(losses, rtol):
    """The kernel's catapult rule, in Python: (count, start steps, largest ratio)."""
    run_min, starts, ratio, peak, inside = losses[0], [], 1.0, 0.0, False
    for step, value in enumerate(losses[1:], start=1):
        if inside:
            peak = max(peak, value)
            if value <= run_min * (1 + rtol):
                inside, ratio, run_min = False, max(ratio, peak / run_min), min(run_min, value)
        elif value > run_min * (1 + rtol):
            inside, peak = True, value
            starts.append(step)
        else:
            run_min = min(run_min, value)
    if inside:
        ratio = max(ratio, peak / run_min)
    return len(starts), starts, ratio


@pytest.mark.parametrize("eta, seed", [(0.5, 2), (0.5, 3), (1.0, 0)])
def test_catapult_record_matches_the_loss_history(eta, seed):
    rng = np.random.default_rng(3)
    x = np.sort(rng.uniform(-1.0, 1.0, 12))
    y = np.sin(3.0 * x) + 0.2 * rng.standard_normal(12)
    result = nets.train_gd(x, y, nets.init_standard(30, seed), eta, max_steps=20_000,
                           sharpness=False)
    count, starts, ratio = episodes(result.losses, 1e-2)
    assert result.catapulted and result.n_catapults == count
    assert result.catapult_starts.tolist() == starts
    assert result.max_catapult_ratio == pytest.approx(ratio, rel=1e-14)


def test_stable_start_and_sweep():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.0, 1.0, 40)
    y = np.cos(2.0 * x) + 0.1 * rng.standard_normal(40)
    for eta in (0.3, 1.2, 1.7):
        start = nets.init_stable(x, y, 25, eta, rng=4)
        assert nets.lambda_max(start, x, y) * eta / 2 <= 0.9
    with pytest.raises(ValueError, match=r"\beta\b"):
        nets.init_stable(x, y, 25, 1.9)  # the output bias alone has curvature 1
    results = nets.gd_sweep(x, y, 8, [0.2, 0.6], [0, 1, 2], max_steps=300, workers=2)
    assert len(results) == 6 and [r.eta for r in results] == [0.2] * 3 + [0.6] * 3
    again = nets.train_gd(x, y, nets.init_standard(8, 1), 0.6, max_steps=300)
    np.testing.assert_array_equal(results[4].params, again.params)
    assert results[4].sharpness == pytest.approx(again.sharpness, rel=1e-12)
    stable = nets.gd_sweep(x, y, 8, [1.5], [0], init="stable", max_steps=10, sharpness=False)
    assert stable[0].sharpness is None and stable[0].losses.shape == (11,)


def test_kernel_status_codes_are_named():
    from numdiff.nets.training import STATUS

    assert sorted(STATUS.values()) == ["converged", "dead", "diverged", "max_steps"]
    assert STATUS[_kernels.DEAD] == "dead"


# -- validation ------------------------------------------------------------------------------

X, Y, THETA = problem(0, 3, 6)


def word(name):
    return rf"\b{name}\b"


@pytest.mark.parametrize(
    "make, exc, name",
    [
        (lambda: nets.train_gd(X, Y, THETA, 0.0), ValueError, "eta"),
        (lambda: nets.train_gd(X, Y, THETA, -1.0), ValueError, "eta"),
        (lambda: nets.train_gd(X, Y, THETA, np.nan), ValueError, "eta"),
        (lambda: nets.train_gd(X, Y, THETA, "0.1"), TypeError, "eta"),
        (lambda: nets.train_gd(X, Y, THETA, 0.1, max_steps=-1), ValueError, "max_steps"),
        (lambda: nets.train_gd(X, Y, THETA, 0.1, max_steps=1.5), TypeError, "max_steps"),
        (lambda: nets.train_gd(X, Y, THETA, 0.1, tol=-1.0), ValueError, "tol"),
        (lambda: nets.train_gd(X, Y, THETA, 0.1, divergence_factor=1.0), ValueError,
         "divergence_factor"),
        (lambda: nets.train_gd(X, Y, THETA, 0.1, catapult_rtol=np.inf), ValueError,
         "catapult_rtol"),
        (lambda: nets.train_gd(X, Y, THETA[:-1], 0.1), ValueError, "params"),
        (lambda: nets.train_gd(X, Y, np.zeros(1), 0.1), ValueError, "params"),
        (lambda: nets.train_gd(X, Y[:-1], THETA, 0.1), ValueError, "y"),
        (lambda: nets.train_gd([], [], THETA, 0.1), ValueError, "x"),
        (lambda: nets.train_gd(X[:, None], Y, THETA, 0.1), ValueError, "x"),
        (lambda: nets.train_gd(X + 1j, Y, THETA, 0.1), TypeError, "x"),
        (lambda: nets.train_gd(X, np.where(Y > 0, np.nan, Y), THETA, 0.1), ValueError, "y"),
        (lambda: nets.loss(np.full(10, np.inf), X, Y), ValueError, "params"),
        (lambda: nets.loss(THETA, X * 1e40, Y), ValueError, "x"),
        (lambda: nets.hvp(THETA, X, Y, np.ones(3)), ValueError, "v"),
        (lambda: nets.hessian(THETA, X, Y, part="gn"), ValueError, "part"),
        (lambda: nets.lambda_max(THETA, X, Y, tol=-1.0), ValueError, "tol"),
        (lambda: nets.hessian(np.zeros(3 * 1001 + 1), X, Y), ValueError, "params"),
        (lambda: nets.init_standard(0), ValueError, "k"),
        (lambda: nets.init_standard(2.0), TypeError, "k"),
        (lambda: nets.init_standard(3, rng=True), TypeError, "rng"),
        (lambda: nets.init_standard(3, rng=-1), ValueError, "rng"),
        (lambda: nets.init_stable(X, Y, 3, 0.5, margin=1.5), ValueError, "margin"),
        (lambda: nets.gd_sweep(X, Y, 3, [0.1], [0], init="xavier"), ValueError, "init"),
        (lambda: nets.gd_sweep(X, Y, 3, [0.1, -0.1], [0]), ValueError, "etas"),
        (lambda: nets.gd_sweep(X, Y, 3, [0.1], [-3]), ValueError, "seeds"),
        (lambda: nets.gd_sweep(X, Y, 3, [0.1], [0], workers=0), ValueError, "workers"),
    ],
)
def test_bad_input(make, exc, name):
    with pytest.raises(exc, match=word(name)):
        make()
