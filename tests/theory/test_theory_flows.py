"""Tests of theory.flows: exact Gaussian flows and transitions.

Oracles: a high-accuracy numerical integration of the probability-flow ODE
(``solve_ivp``, DOP853, rtol = atol = 1e-12); for the OU process, the joint law of
``(X_s, X_t)`` computed independently from the Ito isometry; and a Monte Carlo
regression of the forward process.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from theory.flows import gaussian_marginal, gaussian_pf_flow, gaussian_reverse_transition
from theory.mixture import mixture_cov, mixture_mean


class OUSchedule:
    """dX = -X dt + sqrt(2) dW: b = 1, a^2 = 2."""

    b, a2 = staticmethod(lambda t: 1.0), staticmethod(lambda t: 2.0)

    def alpha(self, t):
        return np.exp(-np.asarray(t, dtype=float))

    def sigma2(self, t):
        return -np.expm1(-2.0 * np.asarray(t, dtype=float))


class VESchedule:
    """dX = sqrt(2t) dW: alpha = 1, sigma2 = t^2 (b = 0, a^2 = 2t)."""

    b, a2 = staticmethod(lambda t: 0.0), staticmethod(lambda t: 2.0 * t)

    def alpha(self, t):
        return np.ones_like(np.asarray(t, dtype=float))

    def sigma2(self, t):
        return np.asarray(t, dtype=float) ** 2


MEAN, VAR = np.array([0.5, -1.0, 2.0]), np.array([0.3, 0.0, 4.0])


@pytest.mark.parametrize("schedule", [OUSchedule(), VESchedule()], ids=["ou", "ve"])
@pytest.mark.parametrize(("t", "s"), [(2.0, 0.05), (1.0, 0.5), (0.3, 1e-3)])
def test_pf_flow_matches_numerical_ode(schedule, t, s):
    rng = np.random.default_rng(0)
    x_t = rng.standard_normal((4, 3)) * 1.5

    def rhs(time, y):
        # Forward-time PF ODE: x' = -b x - (a^2 / 2) score, Gaussian score.
        alpha = float(schedule.alpha(time))
        v = alpha**2 * VAR + float(schedule.sigma2(time))
        x = y.reshape(4, 3)
        score = -(x - alpha * MEAN) / v
        return (-schedule.b(time) * x - 0.5 * schedule.a2(time) * score).ravel()

    sol = solve_ivp(rhs, (t, s), x_t.ravel(), method="DOP853", rtol=1e-12, atol=1e-12)
    assert sol.success
    got = gaussian_pf_flow(x_t, t, s, MEAN, VAR, schedule)
    np.testing.assert_allclose(got, sol.y[:, -1].reshape(4, 3), rtol=1e-9, atol=1e-9)


def test_transition_matches_ou_joint_law():
    # Independent route: for OU, Cov(X_s, X_t) = alpha_s alpha_t var + int_0^s 2
    # e^{-(s-r)} e^{-(t-r)} dr = alpha_s alpha_t var + e^{-(t-s)} - e^{-(t+s)};
    # condition the 2x2 Gaussian with a linear solve.
    t, s = 1.3, 0.4
    x_t = np.array([[0.1, 2.0, -3.0], [1.0, -1.0, 0.0]])
    m, v = gaussian_reverse_transition(x_t, t, s, MEAN, VAR, OUSchedule())
    for j in range(3):
        cov = np.array(
            [
                [np.exp(-2 * s) * VAR[j] + 1 - np.exp(-2 * s), 0.0],
                [np.exp(-s - t) * VAR[j] + np.exp(-(t - s)) - np.exp(-(t + s)), 0.0],
            ]
        )
        cov[0, 1] = cov[1, 0]
        cov[1, 1] = np.exp(-2 * t) * VAR[j] + 1 - np.exp(-2 * t)
        gain = np.linalg.solve(cov[1:, 1:], cov[1:, :1])[0, 0]
        ref_mean = np.exp(-s) * MEAN[j] + gain * (x_t[:, j] - np.exp(-t) * MEAN[j])
        ref_var = cov[0, 0] - gain * cov[1, 0]
        np.testing.assert_allclose(m[:, j], ref_mean, rtol=1e-13, atol=1e-14)
        assert v[j] == pytest.approx(ref_var, rel=1e-12)


def test_transition_matches_forward_monte_carlo():
    # VE schedule, n = 200_000, seed 31: draw X_0, X_s, then X_t | X_s exactly;
    # regress X_s on X_t per coordinate. Slope, intercept and residual variance
    # are within 4.5 standard errors (OLS formulas; ~2e-5 false failures in all).
    sched, t, s, n = VESchedule(), 1.5, 0.6, 200_000
    rng = np.random.default_rng(31)
    x0 = MEAN + np.sqrt(VAR) * rng.standard_normal((n, 3))
    xs = x0 + s * rng.standard_normal((n, 3))
    xt = xs + np.sqrt(t**2 - s**2) * rng.standard_normal((n, 3))
    m_at = gaussian_reverse_transition(np.vstack([np.zeros(3), np.ones(3)]), t, s, MEAN, VAR, sched)
    intercept, slope = m_at[0][0], m_at[0][1] - m_at[0][0]
    var = m_at[1]
    for j in range(3):
        design = np.column_stack([np.ones(n), xt[:, j]])
        coef, *_ = np.linalg.lstsq(design, xs[:, j], rcond=None)
        resid = xs[:, j] - design @ coef
        r_var = resid.var(ddof=2)
        se_slope = np.sqrt(r_var / (n * xt[:, j].var()))
        se_icpt = np.sqrt(r_var * (1 / n + xt[:, j].mean() ** 2 / (n * xt[:, j].var())))
        assert abs(coef[1] - slope[j]) <= 4.5 * se_slope
        assert abs(coef[0] - intercept[j]) <= 4.5 * se_icpt
        assert abs(r_var - var[j]) <= 4.5 * var[j] * np.sqrt(2 / n)


@given(
    t=st.floats(0.05, 5.0),
    frac=st.floats(0.0, 0.99),
    v=st.floats(0.0, 10.0),
    ou=st.booleans(),
)
def test_transition_preserves_marginals(t, frac, v, ou):
    # Law of total variance: slope^2 V_t + transition var = V_s; PF slope^2 V_t = V_s.
    # Slopes are read off with mean 0 (no cancellation); the centring separately.
    sched, s = (OUSchedule() if ou else VESchedule()), frac * t
    mt, vt = gaussian_marginal(t, 0.7, v, sched)
    ms, vs = gaussian_marginal(s, 0.7, v, sched)
    one = np.array([[1.0]])
    slope, var = gaussian_reverse_transition(one, t, s, 0.0, v, sched)
    assert slope[0] ** 2 * vt + var == pytest.approx(vs, rel=1e-12, abs=1e-300)
    assert gaussian_pf_flow(one, t, s, 0.0, v, sched)[0] ** 2 * vt == pytest.approx(
        vs, rel=1e-12, abs=1e-300
    )
    for flow in (gaussian_pf_flow, lambda *a: gaussian_reverse_transition(*a)[0]):
        assert flow(mt[None], t, s, 0.7, v, sched)[0] == pytest.approx(ms, rel=1e-14)


def test_single_point_limits():
    # var = 0 (N = 1): at s = 0 both maps land exactly on the data point.
    x_t = np.array([[3.0, -2.0, 0.5]])
    mean = np.array([1.0, 2.0, 3.0])
    for sched in (OUSchedule(), VESchedule()):
        np.testing.assert_allclose(gaussian_pf_flow(x_t, 1.0, 0.0, mean, 0.0, sched), mean[None])
        m, v = gaussian_reverse_transition(x_t, 1.0, 0.0, mean, 0.0, sched)
        np.testing.assert_allclose(m, mean[None])
        np.testing.assert_array_equal(v, np.zeros(3))
        # s = t is the identity with zero variance.
        np.testing.assert_allclose(
            gaussian_pf_flow(x_t, 0.8, 0.8, mean, 0.0, sched), x_t, rtol=1e-15
        )
        assert np.all(gaussian_reverse_transition(x_t, 0.8, 0.8, mean, 0.0, sched)[1] == 0)


def test_marginal_agrees_with_mixture_for_one_point_and_array_times():
    t = np.array([0.1, 1.0, 3.0])
    mean_t, var_t = gaussian_marginal(t, MEAN, 0.0, OUSchedule())
    assert mean_t.shape == var_t.shape == (3, 3)
    for i, ti in enumerate(t):
        alpha, sigma2 = np.exp(-ti), -np.expm1(-2 * ti)
        np.testing.assert_allclose(mean_t[i], mixture_mean(MEAN[None], alpha), rtol=1e-15)
        np.testing.assert_allclose(
            np.diag(mixture_cov(MEAN[None], alpha, sigma2)), var_t[i], rtol=1e-15
        )


def test_invalid_arguments():
    sched, x = OUSchedule(), np.zeros((2, 3))
    with pytest.raises(ValueError, match="s must be <= t"):
        gaussian_pf_flow(x, 0.5, 1.0, MEAN, VAR, sched)
    with pytest.raises(ValueError, match=r"\bt\b"):
        gaussian_reverse_transition(x, 0.0, 0.0, MEAN, VAR, sched)
    with pytest.raises(ValueError, match=r"\bvar\b"):
        gaussian_pf_flow(x, 1.0, 0.5, MEAN, -VAR - 1, sched)
    with pytest.raises(ValueError, match=r"\bmean\b"):
        gaussian_pf_flow(x, 1.0, 0.5, np.zeros(2), VAR, sched)
    with pytest.raises(TypeError, match="schedule"):
        gaussian_marginal(1.0, MEAN, VAR, object())
