"""SDE and multistep solvers against EXACT references, and the bugs these checks catch.

Oracle: theory.flows (exact Gaussian transitions and flows, written without
numdiff's kernels or solvers). Data are Gaussian ``N(mean, diag var)`` (the
denoiser is affine and not constant) or one point (``N = 1``, var = 0, run
through the real :class:`numdiff.EmpiricalScore`).

Each check is a function returning its measurements; a test asserts it passes
on the real solvers, and a ``*_catches_*`` test patches a plausible bug into
the solver's step (a copy of the step with one change) and asserts that the
same check fails. The bugs:

* ``exp_em_sigma_t``: the exponential EM noise scaled by ``sigma_t`` where
  ``sigma_s`` belongs.
* ``heun_endpoint_noise``: stochastic Heun adding ``a_s dW`` (the step's end
  point) instead of the trapezoid ``(a_t + a_s) / 2 dW``.
* ``heun_corrector_noise_only``: stochastic Heun with no noise in the
  predictor (the end-point stage alone carries it).
* ``exp_em_variance_factor``: ``1 - e^{-h}`` for ``1 - e^{-2h}`` in the noise
  (a scheme that converges to the wrong law).
* ``dpmpp_2m_swapped_ratio``: DPM-Solver++(2M) with ``h_prev / h`` for ``h / h_prev``.
* ``dpmpp_2m_no_history``: DPM-Solver++(2M) with the history term dropped.

What each check can and cannot see (measured, VPLinear, geometric grid):
the two noise-coefficient bugs of exp_em and Heun are *consistent*: their
strong error against the exact path still shrinks at order 1 (fitted 1.03 and
1.05), so the strong check cannot catch them; the law checks do. The swapped
DPM ratio is second order globally on any grid (its leading error telescopes:
sum of (h_prev^2 - h^2) D'), fitted 1.97 (EDM), 1.99 (random pattern) and
2.02 (geometric); its *local* error is one order worse, which the local check sees.
"""

import numpy as np
import pytest
from numpy.polynomial import legendre
from scipy import stats

import numdiff as nd
from numdiff.solvers import SOLVERS, Interval
from numdiff.solvers.base import reverse_drift
from numdiff.solvers.dpmpp_2m import DPMSolverPP2M
from numdiff.solvers.exp_em import ExponentialEM
from numdiff.solvers.heun import Heun
from theory.flows import gaussian_marginal, gaussian_pf_flow, gaussian_reverse_transition
from validation.orders import GaussianScore

SCHEDULE = nd.VPLinear()  # a_t varies (0.3 to 4.5): noise-coefficient bugs are visible
T, DELTA = 1.0, 1e-2
MEAN, VAR = np.array([1.0, -0.5]), np.array([0.5, 0.5])
POINT = np.array([0.7, -1.2])
GL_X, GL_W = legendre.leggauss(8)


def _model(kind, schedule=SCHEDULE):
    """``(model, mean, var)``: one data point through EmpiricalScore, or Gaussian data."""
    if kind == "N=1":
        return nd.EmpiricalScore(POINT[None, :], schedule), POINT, np.zeros(2)
    return GaussianScore(MEAN, VAR, schedule), MEAN, VAR


# -- bugs, each a copy of the real step with one change --------------------------------


def _exp_em_sigma_t(self, model, iv, x, z=None, state=None):
    denoised = model.denoise(iv.t, x)
    one_minus = -np.expm1(-2.0 * iv.dlam)
    x_s = (iv.sigma_s / iv.sigma_t * np.exp(-iv.dlam)) * x + (iv.alpha_s * one_minus) * denoised
    return x_s + (iv.sigma_t * np.sqrt(one_minus)) * z, None  # BUG: sigma_t for sigma_s


def _exp_em_variance_factor(self, model, iv, x, z=None, state=None):
    denoised = model.denoise(iv.t, x)
    one_minus = -np.expm1(-2.0 * iv.dlam)
    x_s = (iv.sigma_s / iv.sigma_t * np.exp(-iv.dlam)) * x + (iv.alpha_s * one_minus) * denoised
    return x_s + (iv.sigma_s * np.sqrt(-np.expm1(-iv.dlam))) * z, None  # BUG: e^{-h}, not e^{-2h}


def _heun(endpoint_noise=False, predictor_noise=True):
    def step(self, model, iv, x, z=None, state=None):
        w = self._weight
        k1 = reverse_drift(w, iv.b_t, iv.a2_t, iv.alpha_t, iv.sigma2_t, x, model.denoise(iv.t, x))
        dw = np.sqrt(iv.h) * z
        x_pred = x + iv.h * k1 + (np.sqrt(iv.a2_t) * dw if predictor_noise else 0.0)
        k2 = reverse_drift(
            w, iv.b_s, iv.a2_s, iv.alpha_s, iv.sigma2_s, x_pred, model.denoise(iv.s, x_pred)
        )
        a_noise = np.sqrt(iv.a2_s) if endpoint_noise else 0.5 * (np.sqrt(iv.a2_t) + np.sqrt(iv.a2_s))
        return x + (0.5 * iv.h) * (k1 + k2) + a_noise * dw, None

    return step


def _dpmpp_2m(weight):
    def step(self, model, iv, x, z=None, state=None):
        denoised = model.denoise(iv.t, x)
        h = iv.dlam
        blended = denoised
        if state is not None:
            prev, h_prev = state
            c = weight(h, h_prev)
            blended = (1.0 + c) * denoised - c * prev
        x_s = (iv.sigma_s / iv.sigma_t) * x - (iv.alpha_s * np.expm1(-h)) * blended
        return x_s, (denoised, h)

    return step


BUGS = {
    "exp_em_sigma_t": (ExponentialEM, _exp_em_sigma_t),
    "exp_em_variance_factor": (ExponentialEM, _exp_em_variance_factor),
    "heun_endpoint_noise": (Heun, _heun(endpoint_noise=True)),
    "heun_corrector_noise_only": (Heun, _heun(predictor_noise=False)),
    "dpmpp_2m_swapped_ratio": (DPMSolverPP2M, _dpmpp_2m(lambda h, h_prev: 0.5 * h_prev / h)),
    "dpmpp_2m_no_history": (DPMSolverPP2M, _dpmpp_2m(lambda h, h_prev: 0.0)),
}


def _inject(monkeypatch, bug):
    cls, step = BUGS[bug]
    monkeypatch.setattr(cls, "step", step)


def test_the_bug_copies_equal_the_real_steps_without_their_change():
    # Guards the injections: with the change undone each copy is the real step,
    # so a failing check is due to the one change only.
    rng = np.random.default_rng(0)
    x, z = rng.standard_normal((5, 2)), rng.standard_normal((5, 2))
    f = GaussianScore(MEAN, VAR, SCHEDULE)
    iv = Interval.between(SCHEDULE, 0.6, 0.45)
    pairs = [(SOLVERS[("sde", "heun")], _heun()),
             (SOLVERS[("ode", "dpmpp_2m")], _dpmpp_2m(lambda h, h_prev: 0.5 * h / h_prev))]
    for solver, copy in pairs:
        state = (f.denoise(0.75, x), 0.3) if solver.needs_history else None
        np.testing.assert_allclose(copy(solver, f, iv, x, z, state)[0],
                                   solver.step(f, iv, x, z, state)[0], rtol=1e-15, atol=1e-15)


# -- the exact pathwise solution on a shared Brownian path ---------------------------


def _noise_integral_moments(schedule, t, s, mean, var):
    """Per coordinate, over one reverse step from ``t`` to ``s``: the exact
    transition variance ``v`` (theory.flows) and ``Cov(I, dB)`` of its noise
    integral ``I = int_s^t Phi(s, u) a_u dB_u`` with the Brownian increment
    ``dB``; ``Phi(s, u) = (alpha_u / alpha_s) V_s / V_u`` is the mean
    coefficient of theory's transition, ``V = alpha^2 var + sigma^2``.
    8-point Gauss-Legendre in ``u`` (smooth integrand). Also returns the
    quadrature value of ``int Phi^2 a^2 du``, which must equal ``v``."""
    _, v = gaussian_reverse_transition(np.zeros((1, mean.size)), t, s, mean, var, schedule)
    h = t - s
    u = 0.5 * (t + s) + 0.5 * h * GL_X
    v_u = schedule.alpha(u)[:, None] ** 2 * var + schedule.sigma2(u)[:, None]
    v_s = float(schedule.alpha(s)) ** 2 * var + float(schedule.sigma2(s))
    phi = schedule.alpha(u)[:, None] / float(schedule.alpha(s)) * v_s / v_u
    a = np.sqrt(schedule.a2(u))[:, None]
    cov = 0.5 * h * (GL_W[:, None] * phi * a).sum(axis=0)
    v_quad = 0.5 * h * (GL_W[:, None] * (phi * a) ** 2).sum(axis=0)
    return v, cov, v_quad


def _exact_path(schedule, times, mean, var, x_T, z, xi):
    """The exact reverse-SDE solution at ``times[-1]``, driven by the Brownian
    increments ``sqrt(h_j) z_j``: each step is theory's exact transition, with
    its noise integral drawn jointly with the increment (correlation
    ``Cov(I, dB) / sqrt(v h)``, the rest from the independent ``xi``). The
    composition of exact steps is exact on any grid, so this is the solution
    itself, not a finer approximation."""
    x = x_T
    for j in range(times.size - 1):
        t, s = times[j], times[j + 1]
        m, _ = gaussian_reverse_transition(x, t, s, mean, var, schedule)
        v, cov, _ = _noise_integral_moments(schedule, t, s, mean, var)
        rho = np.clip(cov / np.sqrt(v * (t - s)), -1.0, 1.0)
        x = m + np.sqrt(v) * (rho * z[j] + np.sqrt(1.0 - rho**2) * xi[j])
    return x


def _coarse_noise(fine, z, k):
    """Standard normals of the grid ``fine[::k]`` from those of ``fine``: sum the
    Brownian increments, divide by the square root of the coarse step."""
    db = np.sqrt(-np.diff(fine))[:, None, None] * z
    db = db.reshape(-1, k, *z.shape[1:]).sum(axis=1)
    return db / np.sqrt(-np.diff(fine[::k]))[:, None, None]


def _strong_errors(solver, kind, steps=(32, 64, 128, 256), n=2000, seed=0):
    """RMS error at ``delta`` against the exact path, on nested geometric grids.

    Returns the errors and, for contrast, the errors of the same solver against
    its own run on the finest grid (the self-convergence a wrong-law scheme passes).
    """
    f, mean, var = _model(kind)
    fine = nd.grids.geometric(SCHEDULE, T, DELTA, max(steps))
    rng = np.random.default_rng(seed)
    m_T, v_T = gaussian_marginal(T, mean, var, SCHEDULE)
    x_T = m_T + np.sqrt(v_T) * rng.standard_normal((n, 2))
    z, xi = rng.standard_normal((2, max(steps), n, 2))
    exact = _exact_path(SCHEDULE, fine, mean, var, x_T, z, xi)
    runs = []
    for k in steps:
        r = nd.sample(f, n, T=T, delta=DELTA, steps=k, process="sde", solver=solver,
                      grid=fine[:: max(steps) // k], x_T=x_T,
                      noise=_coarse_noise(fine, z, max(steps) // k))
        runs.append(r.x)
    return (np.array([_rms(x, exact) for x in runs]),
            np.array([_rms(x, runs[-1]) for x in runs[:-1]]))


def _rms(a, b):
    return float(np.sqrt(np.mean((a - b) ** 2)))


def _slope(steps, errors):
    return float(-np.polyfit(np.log(steps), np.log(errors), 1)[0])


def test_noise_integral_reference_is_consistent_with_theory():
    # The pathwise reference rests on Phi(s, u); its quadrature variance must
    # reproduce theory's exact transition variance.
    for kind in ("N=1", "gauss"):
        _, mean, var = _model(kind)
        for t, s in [(1.0, 0.8), (0.2, 0.1), (0.02, 0.01)]:
            v, cov, v_quad = _noise_integral_moments(SCHEDULE, t, s, mean, var)
            np.testing.assert_allclose(v_quad, v, rtol=1e-10)
            assert (cov**2 <= v * (t - s) * (1 + 1e-12)).all()  # a valid correlation


STRONG_BAND = 0.2  # around the declared order; measured slopes 0.98-1.035 (below)


@pytest.mark.parametrize("kind", ["N=1", "gauss"])
@pytest.mark.parametrize("solver", ["euler", "heun", "exp_em"])
def test_sde_strong_error_against_the_exact_path_shrinks_at_the_stated_order(solver, kind):
    # n = 2000 paths x 2 coordinates, seed 0, steps 32..256 (geometric grids,
    # nested, one Brownian path). The fitted slope's Monte Carlo s.d. is
    # 0.003-0.008 (seeds 0-4); the band is for pre-asymptotic curvature, not noise.
    # Measured (seed 0): euler 1.03 / 1.02, heun 1.02 / 1.01, exp_em 1.00 / 0.99
    # (N = 1 / Gaussian). Wrong-law bug (1 - e^{-h}): -0.03 / 0.04.
    order = SOLVERS[("sde", solver)].sde_strong_order
    steps = (32, 64, 128, 256)
    errors, _ = _strong_errors(solver, kind, steps)
    assert abs(_slope(steps, errors) - order) <= STRONG_BAND, errors


def test_strong_check_catches_a_scheme_that_converges_to_the_wrong_law(monkeypatch):
    # exp_em with 1 - e^{-h} for 1 - e^{-2h}: the output law has the wrong
    # variance, and its error against the exact path stalls (slope ~0), though
    # the self-convergence that the old claim measured still looks like order 1.
    _inject(monkeypatch, "exp_em_variance_factor")
    steps = (32, 64, 128, 256)
    errors, self_errors = _strong_errors("exp_em", "gauss", steps)
    assert abs(_slope(steps, errors) - 1.0) > STRONG_BAND
    assert _slope(steps[:-1], self_errors) >= 0.8  # the blind spot: it self-converges


@pytest.mark.parametrize(("bug", "solver"), [("exp_em_sigma_t", "exp_em"),
                                             ("heun_endpoint_noise", "heun")])
def test_consistent_noise_bugs_are_strong_order_one(monkeypatch, bug, solver):
    # Documents the limit of the strong check: these bugs converge to the
    # right law at order 1, so only the law checks below can catch them.
    _inject(monkeypatch, bug)
    steps = (32, 64, 128, 256)
    errors, _ = _strong_errors(solver, "N=1" if solver == "exp_em" else "gauss", steps)
    assert abs(_slope(steps, errors) - 1.0) <= STRONG_BAND


# -- the law of the output: Monte Carlo moments with a stated band -----------------------

# Per run: d = 2 coordinates x (mean, variance) = 4 statistics, each two-sided at
# level ALPHA / 4, so a correct solver fails with probability <= ALPHA (union bound).
# The output of these solvers is an affine map of Gaussian inputs, hence exactly
# Gaussian: the mean's z-score is N(0, 1) and (n - 1) s^2 / v is chi^2(n - 1),
# both exact, around the scheme's own law; its distance to the exact law (the
# discretisation bias, computed exactly by _scheme_law) is stated per case.
ALPHA = 1e-4


def _moments_check(model, mean, var, n, seed, **kw):
    """Sample ``n`` points from the exact ``p_T``; return (passed, z of the means,
    chi-square tail probabilities of the variances) against the exact ``p_delta``."""
    m_T, v_T = gaussian_marginal(T, mean, var, SCHEDULE)
    rng = np.random.default_rng(seed)
    x_T = m_T + np.sqrt(v_T) * rng.standard_normal((n, mean.size))
    r = nd.sample(model, n, T=T, delta=DELTA, process="sde", x_T=x_T, rng=rng, **kw)
    m_d, v_d = gaussian_marginal(DELTA, mean, var, SCHEDULE)
    z_mean = (r.x.mean(axis=0) - m_d) / np.sqrt(v_d / n)
    chi2 = (n - 1) * r.x.var(axis=0, ddof=1) / v_d
    p_var = 2 * np.minimum(stats.chi2.cdf(chi2, n - 1), stats.chi2.sf(chi2, n - 1))
    level = ALPHA / (2 * mean.size)
    passed = bool((np.abs(z_mean) <= stats.norm.isf(level / 2)).all() and (p_var >= level).all())
    return passed, z_mean, p_var


# exp_em with N = 1 is exact in law on any grid (bias 0 to 1e-16), so a coarse
# uniform-t grid (8 steps) is used, where a wrong noise scale shows most.
# n = 20000, seed 1; measured z of the means 0.8, 1.2, variance p-values 0.13, 0.17.
# sigma_t bug: variance 87x the exact one (mean z 7.9, 11.6; variance p = 0).
EXP_EM_CASE = {"solver": "exp_em", "steps": 8, "grid": "uniform_t"}
# Heun on Gaussian data, 64 uniform-lambda steps: exact-law bias of the variance
# 6.9e-4 (0.14%, 0.2 s.e. at n = 40000), of the mean 3.2e-4 (0.09 s.e.); seed 2
# measured p-values of the variances 0.014, 0.81. End-point-noise bug: variance
# bias 2.6e-2 (5.1%, 7 s.e.; p = 8e-22); corrector-only: 4.2e-2 (8.3%, 12 s.e.; p = 7e-20).
HEUN_CASE = {"solver": "heun", "steps": 64, "grid": "uniform_lambda"}


def test_exp_em_output_law_for_one_point_matches_the_exact_moments():
    f, mean, var = _model("N=1")
    passed, z, p = _moments_check(f, mean, var, 20000, 1, **EXP_EM_CASE)
    assert passed, (z, p)


def test_heun_output_law_for_gaussian_data_matches_the_exact_moments():
    f, mean, var = _model("gauss")
    passed, z, p = _moments_check(f, mean, var, 40000, 2, **HEUN_CASE)
    assert passed, (z, p)


@pytest.mark.parametrize(("bug", "kind", "n", "seed", "case"), [
    ("exp_em_sigma_t", "N=1", 20000, 1, EXP_EM_CASE),
    ("heun_endpoint_noise", "gauss", 40000, 2, HEUN_CASE),
    ("heun_corrector_noise_only", "gauss", 40000, 2, HEUN_CASE),
])
def test_moment_check_catches_noise_coefficient_bugs(monkeypatch, bug, kind, n, seed, case):
    _inject(monkeypatch, bug)
    f, mean, var = _model(kind)
    passed, z, p = _moments_check(f, mean, var, n, seed, **case)
    assert not passed, (z, p)


# -- the law of the output, exactly: weak order without Monte Carlo --------------------


def _scheme_law(model, times, solver, m_T, v_T):
    """Exact per-coordinate law ``N(mu, v)`` of the solver's output from
    ``x_T ~ N(m_T, v_T)``, for a model whose denoiser is affine in ``x``.

    The output is then ``c + A x_T + sum_i B_i z_i`` per coordinate; one run
    with a row per input reads off ``c`` (all zero), ``A`` (unit ``x_T``) and
    each ``B_i`` (unit noise at step ``i``)."""
    k, d = times.size - 1, model.dim
    x_T = np.zeros((k + 2, d))
    x_T[1] = 1.0
    noise = np.zeros((k, k + 2, d))
    noise[np.arange(k), np.arange(k) + 2] = 1.0
    r = nd.sample(model, k + 2, T=times[0], delta=times[-1], steps=k, process="sde",
                  solver=solver, grid=times, x_T=x_T, noise=noise)
    c, a, b = r.x[0], r.x[1] - r.x[0], r.x[2:] - r.x[0]
    return c + a * m_T, a**2 * v_T + (b**2).sum(axis=0), (c, a, b)


def test_scheme_law_reads_an_affine_scheme_exactly():
    # Guards _scheme_law: a random input reproduces c + A x_T + sum B_i z_i.
    f = _model("gauss")[0]
    times = nd.grids.uniform_lambda(SCHEDULE, T, DELTA, 16)
    _, _, (c, a, b) = _scheme_law(f, times, "heun", 0.0, 1.0)
    rng = np.random.default_rng(3)
    x_T, z = rng.standard_normal((1, 2)), rng.standard_normal((16, 1, 2))
    r = nd.sample(f, 1, T=T, delta=DELTA, steps=16, process="sde", solver="heun", grid=times,
                  x_T=x_T, noise=z)
    np.testing.assert_allclose(r.x[0], c + a * x_T[0] + (b * z[:, 0]).sum(axis=0), rtol=1e-12)


def _weak_errors(solver, kind, grid, steps):
    f, mean, var = _model(kind)
    m_T, v_T = gaussian_marginal(T, mean, var, SCHEDULE)
    m_d, v_d = gaussian_marginal(DELTA, mean, var, SCHEDULE)
    out = []
    for k in steps:
        mu, v, _ = _scheme_law(f, nd.grids.GRIDS[grid](SCHEDULE, T, DELTA, k), solver, m_T, v_T)
        out.append((np.abs(mu - m_d).max(), np.abs(v - v_d).max()))
    return np.array(out)


def test_exp_em_law_is_exact_for_one_point():
    # Exact in law on any grid: measured 1.1e-16 (mean) and 1.1e-17 (variance).
    # The sigma_t bug: variance off by 1.3e-2 at 8 steps (test below).
    errors = _weak_errors("exp_em", "N=1", "uniform_lambda", (8, 32))
    assert errors.max() <= 1e-12


def test_heun_weak_order_two_on_the_exact_law():
    # Variance error, 16..128 uniform-lambda steps: 1.3e-2 .. 1.7e-4, fitted order 2.10;
    # end-point-noise bug 1.2e-1 .. 1.3e-2 (order 1.07), corrector-only (order 1.10).
    steps = (16, 32, 64, 128)
    errors = _weak_errors("heun", "gauss", "uniform_lambda", steps)
    assert abs(_slope(steps, errors[:, 1]) - SOLVERS[("sde", "heun")].sde_weak_order) <= 0.3


def test_exact_law_checks_catch_the_noise_bugs(monkeypatch):
    with monkeypatch.context() as m:
        _inject(m, "exp_em_sigma_t")
        assert _weak_errors("exp_em", "N=1", "uniform_lambda", (8, 32)).max() > 1e-4
    steps = (16, 32, 64, 128)
    for bug in ("heun_endpoint_noise", "heun_corrector_noise_only"):
        with monkeypatch.context() as m:
            _inject(m, bug)
            errors = _weak_errors("heun", "gauss", "uniform_lambda", steps)
            assert abs(_slope(steps, errors[:, 1]) - 2.0) > 0.3, bug  # measured 1.1


# -- DPM-Solver++(2M): the history weight on varying step ratios ----------------------


def _dpm_local_errors(ratio, hs, t0=0.6):
    """One DPM-Solver++(2M) step with exact history, against the exact flow.

    From ``x0`` at ``t0``: the exact flow gives ``x1`` at ``t1``; the history is
    ``(D(t0, x0), h_prev)``; one step goes from ``t1`` to ``t2`` with
    ``lambda_2 - lambda_1 = h`` and ``h_prev = ratio * h``. Gaussian data, so
    ``D`` varies along the path (with N = 1 it is constant and the weight is
    invisible). Returns the max error per ``h``.
    """
    f = GaussianScore(MEAN, VAR, SCHEDULE)
    x0 = np.random.default_rng(4).standard_normal((8, 2))
    lam0 = float(SCHEDULE.lam(t0))
    solver = SOLVERS[("ode", "dpmpp_2m")]
    errors = []
    for h in hs:
        t1, t2 = SCHEDULE.lam_inv([lam0 + ratio * h, lam0 + ratio * h + h])
        x1 = gaussian_pf_flow(x0, t0, t1, MEAN, VAR, SCHEDULE)
        state = (f.denoise(t0, x0), ratio * h)
        x2, _ = solver.step(f, Interval.between(SCHEDULE, t1, t2), x1, state=state)
        errors.append(np.abs(x2 - gaussian_pf_flow(x0, t0, t2, MEAN, VAR, SCHEDULE)).max())
    return np.array(errors)


HS = (0.08, 0.04, 0.02, 0.01)


@pytest.mark.parametrize("ratio", [1 / 3, 0.5, 2.0, 3.0])
def test_dpmpp_2m_local_order_three_with_varying_step_ratio(ratio):
    # Local error O(h^3) for a second-order multistep step, whatever h_prev / h.
    # Measured slopes 3.04 (1/3), 3.05 (1/2), 3.13 (2), 3.18 (3); the swapped
    # weight: 2.06, 2.07, 2.10, 2.15 (errors 10-400x larger at h = 0.01).
    assert abs(_slope(1 / np.array(HS), _dpm_local_errors(ratio, HS)) - 3.0) <= 0.25


@pytest.mark.parametrize("ratio", [1 / 3, 3.0])
def test_local_check_catches_the_swapped_history_weight(monkeypatch, ratio):
    # With h_prev / h for h / h_prev the blend is off by O(h) when the ratio is
    # not 1: local order 2 (at ratio 1 the two agree, which is why
    # uniform-lambda grids never saw it).
    _inject(monkeypatch, "dpmpp_2m_swapped_ratio")
    assert abs(_slope(1 / np.array(HS), _dpm_local_errors(ratio, HS)) - 3.0) > 0.25


def _pattern_grid(weights, reps):
    """Times whose lambda steps follow ``weights`` tiled ``reps`` times: the
    step ratios stay away from 1 under refinement."""
    w = np.tile(weights, reps)
    lam_T, lam_d = float(SCHEDULE.lam(T)), float(SCHEDULE.lam(DELTA))
    lam = lam_T + (lam_d - lam_T) * np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    times = SCHEDULE.lam_inv(lam)
    times[0], times[-1] = T, DELTA
    return times


def _dpm_global_errors(grid, steps):
    f = GaussianScore(MEAN, VAR, SCHEDULE)
    m_T, v_T = gaussian_marginal(T, MEAN, VAR, SCHEDULE)
    x_T = m_T + np.sqrt(v_T) * np.random.default_rng(5).standard_normal((32, 2))
    exact = gaussian_pf_flow(x_T, T, DELTA, MEAN, VAR, SCHEDULE)
    weights = np.random.default_rng(6).uniform(0.2, 1.8, 8)  # random monotone pattern
    errors = []
    for k in steps:
        times = _pattern_grid(weights, k // 8) if grid == "random" else grid
        r = nd.sample(f, 32, T=T, delta=DELTA, steps=k, process="ode", solver="dpmpp_2m",
                      grid=times, x_T=x_T)
        errors.append(np.abs(r.x - exact).max())
    return np.array(errors)


DPM_STEPS = (64, 128, 256, 512)


@pytest.mark.parametrize("grid", ["edm", "random"])
def test_dpmpp_2m_global_order_two_on_varying_ratio_grids(grid):
    # Measured: 2.02 (EDM), 1.99 (random pattern); dropped history: 1.0, 1.0.
    steps = DPM_STEPS
    assert abs(_slope(steps, _dpm_global_errors(grid, steps)) - 2.0) <= 0.25


def test_global_check_catches_a_dropped_history(monkeypatch):
    # Without the history term the step is DDIM: global order 1.
    _inject(monkeypatch, "dpmpp_2m_no_history")
    steps = DPM_STEPS
    assert abs(_slope(steps, _dpm_global_errors("random", steps)) - 2.0) > 0.25
