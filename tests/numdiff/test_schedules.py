"""Schedules: closed forms against the general quadrature path and mpmath."""

import mpmath
import numpy as np
import pytest

import numdiff as nd

TIMES = np.array([1e-12, 1e-9, 1e-6, 1e-3, 0.01, 0.1, 0.3, 0.5, 0.9, 0.99, 0.999])


def _theta(t, s=0.008):
    return 0.5 * np.pi * (t + s) / (1.0 + s)


def _log_ratio():
    return np.log(50.0 / 0.01)


# Each preset beside a generic Schedule with the same b and a.
PAIRS = [
    (nd.OU(), nd.Schedule(lambda t: np.ones_like(t), lambda t: np.full_like(t, np.sqrt(2.0)))),
    (
        nd.VPLinear(0.1, 20.0),
        nd.Schedule(lambda t: 0.5 * (0.1 + 19.9 * t), lambda t: np.sqrt(0.1 + 19.9 * t), t_max=1.0),
    ),
    (
        nd.VPCosine(),
        nd.Schedule(
            lambda t: 0.5 * np.pi / 1.008 * np.tan(_theta(t)),
            lambda t: np.sqrt(np.pi / 1.008 * np.tan(_theta(t))),
            t_max=0.999,
        ),
    ),
    (
        nd.VE(0.01, 50.0),
        nd.Schedule(
            lambda t: np.zeros_like(t),
            lambda t: 0.01 * np.sqrt(2.0 * _log_ratio()) * np.exp(_log_ratio() * t),
            t_max=1.0,
        ),
    ),
]


@pytest.mark.parametrize("preset, generic", PAIRS, ids=lambda s: repr(s)[:12])
def test_closed_forms_match_quadrature(preset, generic):
    t = TIMES[TIMES <= preset.t_max]
    for name in ["mu", "alpha", "sigma2", "lam", "b", "a2"]:
        closed, quad = getattr(preset, name)(t), getattr(generic, name)(t)
        scale = np.maximum(np.abs(closed), 1e-300)
        if name == "mu" or name == "b":  # zero for VE: compare absolutely
            scale = np.maximum(scale, 1.0)
        assert np.max(np.abs(quad - closed) / scale) <= 1e-10, name


def _mp_ou_sigma2(t):
    return -mpmath.expm1(-2 * mpmath.mpf(t))


def test_ou_sigma2_near_zero_has_no_cancellation():
    mpmath.mp.dps = 50
    t = np.array([1e-15, 1e-12, 1e-9, 1e-6, 1e-3])
    for sched in PAIRS[0]:
        got = sched.sigma2(t)
        want = np.array([float(_mp_ou_sigma2(float(ti))) for ti in t])
        assert np.max(np.abs(got / want - 1)) <= 1e-13


def test_custom_schedule_against_mpmath_quadrature():
    """sigma2 = int_0^t exp(2(mu_s - mu_t)) a_s^2 ds with mpmath's nested quad (30 digits)."""
    mpmath.mp.dps = 30
    sched = nd.Schedule(lambda t: 1.0 + np.sin(3.0 * t), lambda t: 0.5 + t, t_max=5.0)

    def mu(s):
        s = mpmath.mpf(s)
        return s + (1 - mpmath.cos(3 * s)) / 3

    for t in [1e-8, 0.05, 1.0, 4.5]:
        t_mp = mpmath.mpf(t)
        want = mpmath.quad(lambda s, t_mp=t_mp: mpmath.exp(2 * (mu(s) - mu(t_mp))) * (0.5 + s) ** 2, [0, t_mp])
        assert abs(float(sched.sigma2(t)) / float(want) - 1) <= 1e-10
        assert abs(float(sched.alpha(t)) / float(mpmath.exp(-mu(t_mp))) - 1) <= 1e-12


@pytest.mark.parametrize("sched", [p for pair in PAIRS for p in pair], ids=lambda s: repr(s)[:12])
def test_lam_inv_inverts_lam(sched):
    t = TIMES[TIMES <= sched.t_max]
    assert np.max(np.abs(sched.lam_inv(sched.lam(t)) / t - 1)) <= 1e-11
    # lambda decreases strictly: d lam / dt = -a^2 / (2 sigma2) < 0.
    assert np.all(np.diff(sched.lam(t)) < 0)


def test_lam_derivative_matches_closed_form():
    """d lam / dt = -a_t^2 / (2 sigma2_t), by central differences on VPLinear."""
    sched, t, h = nd.VPLinear(), np.array([0.05, 0.3, 0.8]), 1e-6
    numeric = (sched.lam(t + h) - sched.lam(t - h)) / (2 * h)
    assert np.allclose(numeric, -sched.a2(t) / (2 * sched.sigma2(t)), rtol=1e-7)


def test_shapes_are_preserved():
    sched = nd.VPLinear()
    assert sched.alpha(0.5).shape == ()
    assert sched.sigma2(np.full((2, 3), 0.5)).shape == (2, 3)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: nd.OU().alpha(-0.1), "t"),
        (lambda: nd.OU().sigma2(np.nan), "t"),
        (lambda: nd.VPLinear().alpha(1.5), "t"),
        (lambda: nd.VPCosine().sigma2(0.9995), "t"),
        (lambda: nd.Schedule(lambda t: t, lambda t: np.full_like(t, np.nan)).sigma2(0.5), "a"),
        (lambda: nd.Schedule(lambda t: np.full_like(t, np.inf), lambda t: t).alpha(0.5), "b"),
        (lambda: nd.Schedule(lambda t: t, lambda t: np.zeros_like(t)).sigma2(0.5), "a"),
        (lambda: nd.VPLinear(beta_min=1.0, beta_max=0.5), "beta_max"),
        (lambda: nd.VE(sigma_min=-1.0), "sigma_min"),
        (lambda: nd.Schedule(lambda t: t, lambda t: t, t_max=-1.0), "t_max"),
        (lambda: nd.OU().lam_inv(np.nan), "lam"),
    ],
)
def test_bad_input_raises_value_error_naming_argument(call, match):
    with pytest.raises(ValueError, match=rf"\b{match}\b"):
        call()


def test_non_callable_coefficients_raise_type_error():
    with pytest.raises(TypeError, match=r"\bb\b"):
        nd.Schedule(1.0, lambda t: t)
    with pytest.raises(TypeError, match=r"\ba\b"):
        nd.Schedule(lambda t: t, "x")
