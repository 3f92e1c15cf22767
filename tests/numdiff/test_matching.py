"""Tests of numdiff.matching: score-matching objectives against quadrature and closed forms.

Oracles: ``theory.score_matching`` (1-D adaptive quadrature under the diffused
mixture; Gaussian closed forms in any d) and ``theory.mixture`` (exact samples,
the dense mixture score). Monte Carlo checks state their seeds and hold to 4.5
standard errors (false failure ~7e-6 each, two-sided).
"""

import numpy as np
import pytest
from scipy.special import logsumexp

import numdiff as nd
from numdiff import matching
from theory.mixture import mixture_sample, mixture_score
from theory.score_matching import gaussian_score_matching, score_matching_1d

SE_BAND = 4.5
OU = nd.OU()


class LinearScore:
    """``s(t, x) = -A (x - alpha_t c) / V_t``-style test double with a closed-form divergence.

    ``s(t, x) = -G_t (x - alpha_t mean)`` with ``G_t = (alpha_t^2 cov + sigma_t^2 I)^-1``:
    the exact score of Gaussian data ``N(mean, cov)``; ``divergence = -tr G_t``.
    """

    def __init__(self, mean, cov, schedule=OU, exact=True):
        self.mean = np.asarray(mean, dtype=float)
        self.cov = np.atleast_2d(np.asarray(cov, dtype=float))
        self.schedule, self.dim = schedule, self.mean.size
        if exact:
            self.divergence = self._divergence

    def _gain(self, t):
        t = float(np.asarray(t).ravel()[0])  # tests use one time per call
        a, s2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        return a, np.linalg.inv(a**2 * self.cov + s2 * np.eye(self.dim))

    def score(self, t, x):
        a, g = self._gain(t)
        return -(np.asarray(x) - a * self.mean) @ g

    def _divergence(self, t, x):
        return np.full(len(x), -np.trace(self._gain(t)[1]))


class MixtureScore:
    """Score of ``(1/N) sum_k N(alpha x_k, (alpha^2 h^2 + sigma^2) I)``: the diffused
    smoothed KDE with bandwidth ``h`` (``h = 0``: the empirical score), by theory."""

    def __init__(self, data, h=0.0, schedule=OU):
        self.data, self.h, self.schedule, self.dim = data, h, schedule, data.shape[1]

    def score(self, t, x):
        a, s2 = float(self.schedule.alpha(t)), float(self.schedule.sigma2(t))
        return mixture_score(x, self.data, a, a**2 * self.h**2 + s2)


def mixture_divergence(x, data, alpha, sigma2):
    """``div s = (alpha^2 / sigma2^2) tr Cov_w - d / sigma2``, densely (a reference)."""
    logw = -0.5 * np.sum((x[:, None, :] - alpha * data[None]) ** 2, axis=2) / sigma2
    w = np.exp(logw - logsumexp(logw, axis=1, keepdims=True))
    mean = w @ data
    tr_cov = w @ np.sum(data**2, axis=1) - np.sum(mean**2, axis=1)
    return alpha**2 / sigma2**2 * tr_cov - data.shape[1] / sigma2


def ou(t):
    return float(OU.alpha(t)), float(OU.sigma2(t))


# -- d = 1 by quadrature ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def line():
    data = np.random.default_rng(11).standard_normal((6, 1))
    return data, nd.EmpiricalScore(data, OU), 0.1


def test_empirical_score_minimises_the_dsm_loss_by_quadrature(line):
    # Eq. (10) minimises eq. (9): L(s_hat + eps h) - L(s_hat) = eps^2 E|h|^2 to 1e-10
    # for several h (each L its own quadrature over the training mixture).
    data, f, t = line
    alpha, sigma2 = ou(t)

    def s_hat(y):
        return f.score(t, y[:, None])[:, 0]

    base = score_matching_1d(s_hat, data, alpha, sigma2).dsm
    for h in (np.sin, np.tanh, lambda y: np.exp(-(y**2)), lambda y: 0.2 * y):
        norm = score_matching_1d(lambda y, h=h: s_hat(y) + h(y), data, alpha, sigma2).explicit
        for eps in (0.3, 0.03):
            moved = score_matching_1d(lambda y, h=h, e=eps: s_hat(y) + e * h(y),
                                      data, alpha, sigma2).dsm
            assert abs(moved - base - eps**2 * norm) <= 1e-10
    # And its minimum is Theorem 2's constant d / sigma2 - I(p_t).
    res = score_matching_1d(s_hat, data, alpha, sigma2)
    assert res.explicit <= 1e-20
    assert base == pytest.approx(res.dsm_gap, rel=1e-12)


def test_theorem1_for_the_empirical_score_by_quadrature(line):
    # Under the training mixture (explicit loss 0) and under the true law N(0, 1)
    # diffused, N(0, alpha^2 + sigma2): explicit - implicit = I(p), with numdiff's exact
    # divergence (each term a quadrature to 1e-13; achieved ~1e-16 relative), and with
    # the Hutchinson estimate (one Rademacher probe is exact in d = 1, up to the central
    # difference's ~1e-11 relative error, hence rel_tol 1e-9 and a 1e-8 bound).
    data, f, t = line
    alpha, sigma2 = ou(t)

    def s_hat(y):
        return f.score(t, y[:, None])[:, 0]

    def exact(y):
        return matching.divergence(f, t, y[:, None], method="exact").value

    def hutchinson(y):
        return matching.divergence(f, t, y[:, None], method="hutchinson", n_probes=1,
                                   rng=0).value

    for law in ((data, alpha, sigma2), ([[0.0]], 1.0, alpha**2 + sigma2)):
        for div, rel_tol, bound in ((exact, 1e-13, 1e-12), (hutchinson, 1e-9, 1e-8)):
            res = score_matching_1d(s_hat, *law, divergence=div, rel_tol=rel_tol)
            residual = res.explicit - res.implicit - res.fisher
            assert abs(residual) <= bound * (res.explicit + res.fisher)
    assert res.explicit > 1.0  # the true law: the memorising score is far from it


def test_hutchinson_is_the_derivative_in_one_dimension(line):
    data, f, t = line
    alpha, sigma2 = ou(t)
    x = np.linspace(-3, 3, 41)[:, None]
    est = matching.hutchinson_divergence(f, t, x, n_probes=2, rng=1)
    ref = mixture_divergence(x, data, alpha, sigma2)
    assert np.allclose(est.value, ref, rtol=1e-8, atol=1e-8 / sigma2)
    assert np.all(est.stderr == 0.0)  # v^2 = 1: no probe noise in d = 1


def test_dsm_monte_carlo_against_quadrature(line):
    # n_noise = 20_000 per point, seed 4; the empirical score and a tanh model.
    data, f, t = line
    alpha, sigma2 = ou(t)

    class Tanh:
        dim, schedule = 1, OU

        def score(self, t, x):
            return -3.0 * np.tanh(np.asarray(x))

    for model, func in ((f, lambda y: f.score(t, y[:, None])[:, 0]),
                        (Tanh(), lambda y: -3.0 * np.tanh(y))):
        est = matching.dsm_loss(model, data, OU, t, n_noise=20_000, rng=4)
        ref = score_matching_1d(func, data, alpha, sigma2).dsm
        assert est.terms.shape == (6, 20_000)
        assert abs(est.value - ref) <= SE_BAND * est.stderr


# -- Gaussian closed forms, any d -------------------------------------------------------------


def test_gaussian_model_losses_against_closed_forms():
    # Data N(m, diag v) in d = 4 (one model per check); X_0 drawn fresh with n_noise = 1
    # so the standard error is the law's; n = 200_000, seeds 1, 2, 3.
    mean, var, t = np.array([0.5, -1.0, 0.0, 2.0]), np.array([1.0, 0.3, 2.0, 0.5]), 0.3
    alpha, sigma2 = ou(t)
    # The model: exact score of a *different* Gaussian (mean 0, correlation 1/2): all
    # losses > 0, and a full Jacobian, so that the Hutchinson probes are noisy.
    model = LinearScore(np.zeros(4), 0.5 * np.eye(4) + 0.5)
    gain = model._gain(t)[1]
    ref = gaussian_score_matching(mean, var, alpha, sigma2, 0.5 * (gain + gain.T), 0.0)
    rng = np.random.default_rng(1)
    x0 = mean + np.sqrt(var) * rng.standard_normal((200_000, 4))
    dsm = matching.dsm_loss(model, x0, None, t, n_noise=1, rng=2)
    assert abs(dsm.value - ref.dsm) <= SE_BAND * dsm.stderr
    xt = alpha * x0 + np.sqrt(sigma2) * rng.standard_normal(x0.shape)
    for method in ("exact", "hutchinson"):
        imp = matching.implicit_loss(model, t, xt, method=method, n_probes=2, rng=3)
        assert abs(imp.value - ref.implicit) <= SE_BAND * imp.stderr
    true = LinearScore(mean, np.diag(var))
    fish = matching.fisher_divergence(model, true, t, xt)
    assert abs(fish.value - ref.explicit) <= SE_BAND * fish.stderr
    # A callable reference gives the same terms.
    same = matching.fisher_divergence(model, true.score, t, xt)
    np.testing.assert_array_equal(same.terms, fish.terms)


def test_hutchinson_agrees_with_the_exact_divergence():
    # A full (non-diagonal) linear score in d = 6: v.Jv has variance 2 sum_{i!=j} J_ij^2,
    # so the probes are noisy; per point within 4.5 s.e. (64 probes, 50 points, seed 6),
    # and the mean over points likewise.
    rng = np.random.default_rng(6)
    a = rng.standard_normal((6, 6))
    model = LinearScore(rng.normal(size=6), a @ a.T / 6)
    x = rng.standard_normal((50, 6))
    exact = matching.divergence(model, 0.2, x)
    assert exact.n_probes == 0 and np.all(exact.stderr == 0)
    est = matching.divergence(model, 0.2, x, method="hutchinson", n_probes=64, rng=7)
    assert np.all(est.stderr > 0)
    z = (est.value - exact.value) / est.stderr
    assert np.max(np.abs(z)) <= SE_BAND
    mean_se = np.sqrt(np.sum(est.stderr**2)) / 50
    assert abs(np.mean(est.value - exact.value)) <= SE_BAND * mean_se


@pytest.mark.parametrize("jvp", [None, "model"])
def test_hutchinson_for_the_empirical_score_in_higher_dimension(jvp):
    # EmpiricalScore in d = 5 against the dense divergence formula and against its exact
    # divergence: central differences or its own jvp; 200 probes, seed 9; per point
    # within 4.5 s.e.
    rng = np.random.default_rng(8)
    data = rng.standard_normal((20, 5))
    f, t = nd.EmpiricalScore(data, OU), 0.4
    alpha, sigma2 = ou(t)
    x = mixture_sample(30, data, alpha, sigma2, rng)
    est = matching.hutchinson_divergence(f, t, x, n_probes=200, rng=9, jvp=jvp)
    ref = mixture_divergence(x, data, alpha, sigma2)
    ok = est.stderr > 0
    assert ok.sum() >= 25
    assert np.max(np.abs(est.value - ref)[ok] / est.stderr[ok]) <= SE_BAND
    exact = matching.divergence(f, t, x)
    assert exact.n_probes == 0
    np.testing.assert_allclose(exact.value, ref, rtol=1e-9, atol=1e-9 / sigma2)
    # With the same probes, differences and jvp agree to the differences' error.
    other = matching.hutchinson_divergence(f, t, x, n_probes=200, rng=9,
                                           jvp=None if jvp else "model")
    np.testing.assert_allclose(other.value, est.value, rtol=1e-7, atol=1e-7 / sigma2)


def test_time_weighted_form_against_closed_form():
    # tau ~ U[0.1, 1.1], w(t) = 1 + t: E[w L_tau] = int w(t) L_t dt (closed form per t,
    # Gauss-Legendre in t). n = 100_000 data draws, n_noise = 1, seed 12.
    mean, var = np.array([1.0, -1.0]), np.array([0.5, 2.0])
    model = LinearScore(np.zeros(2), np.eye(2))
    rng = np.random.default_rng(12)
    x0 = mean + np.sqrt(var) * rng.standard_normal((100_000, 2))

    def sampler(gen, size):
        return gen.uniform(0.1, 1.1, size=size)

    class PerRow(LinearScore):  # one time per row
        def score(self, t, x):
            t = np.broadcast_to(np.asarray(t, dtype=float), (len(x),))
            a, s2 = OU.alpha(t)[:, None], OU.sigma2(t)[:, None]
            return -(x - a * self.mean) / (a**2 + s2)

    est = matching.dsm_loss(PerRow(np.zeros(2), np.eye(2)), x0, OU, n_noise=1, rng=13,
                            t_sampler=sampler, weight=lambda t: 1.0 + t)
    nodes, weights = np.polynomial.legendre.leggauss(40)
    ts = 0.6 + 0.5 * nodes
    vals = []
    for s in ts:
        a, s2 = ou(s)
        vals.append(gaussian_score_matching(mean, var, a, s2, 1.0 / (a**2 + s2), 0.0).dsm)
    ref = 0.5 * np.sum(weights * (1.0 + ts) * np.asarray(vals))  # mean over U[0.1, 1.1]
    assert abs(est.value - ref) <= SE_BAND * est.stderr
    assert model.score(0.3, x0[:2]).shape == (2, 2)


# -- higher d, common random numbers ----------------------------------------------------------


@pytest.fixture(scope="module")
def cloud():
    # 40 training points from N(0, I_4); t = 0.15 (sigma2 = 0.26: partly memorising).
    data = np.random.default_rng(21).standard_normal((40, 4))
    return data, nd.EmpiricalScore(data, OU), 0.15


def test_cross_term_vanishes_with_common_random_numbers(cloud):
    # L(s_hat + eps h) - L(s_hat - eps h) = 4 eps E[h . (s_hat + z / sigma)] = 0 for
    # every h (eq. (10) minimises (9)): paired on the same noise (seed 31), the
    # difference is within 4.5 s.e. of 0; the same difference for a *wrong* centre
    # (the Gaussian fit) is many s.e. away (power).
    data, f, t = cloud
    fit = LinearScore(data.mean(axis=0), np.cov(data.T))
    directions = {
        "true-law score": LinearScore(np.zeros(4), np.eye(4)),
        "sine": type("Sine", (), {"score": lambda self, t, x: np.sin(x[:, ::-1]),
                                  "dim": 4, "schedule": OU})(),
        "gaussian fit": fit,
        "smoothed KDE": MixtureScore(data, 0.3),
    }
    eps, n_noise = 0.1, 400

    class Shifted:
        dim, schedule = 4, OU

        def __init__(self, base, h, e):
            self.base, self.h, self.e = base, h, e

        def score(self, t, x):
            return self.base.score(t, x) + self.e * self.h.score(t, x)

    for h in directions.values():
        plus = matching.dsm_loss(Shifted(f, h, eps), data, OU, t, n_noise=n_noise, rng=31)
        minus = matching.dsm_loss(Shifted(f, h, -eps), data, OU, t, n_noise=n_noise, rng=31)
        cross = plus.minus(minus)
        assert abs(cross.value) <= SE_BAND * cross.stderr
    # Power: around a wrong centre (the smoothed KDE score) the same difference in the
    # direction h = kde - s_hat is 4 eps E|kde - s_hat|^2 > 0, many s.e. from 0.
    kde = MixtureScore(data, 0.3)
    away = Shifted(kde, f, -1.0)  # the field kde - s_hat
    plus = matching.dsm_loss(Shifted(kde, away, eps), data, OU, t, n_noise=n_noise, rng=31)
    minus = matching.dsm_loss(Shifted(kde, away, -eps), data, OU, t, n_noise=n_noise, rng=31)
    assert plus.minus(minus).value > 10 * plus.minus(minus).stderr


def test_empirical_score_beats_every_alternative(cloud):
    # Paired on the same noise (seed 41): L(alt) - L(s_hat) > 0, and it equals
    # E_{p_t}|alt - s_hat|^2 measured independently on exact mixture samples (seed 42)
    # with theory's dense mixture score, within 4.5 combined s.e.
    data, f, t = cloud
    alpha, sigma2 = ou(t)
    alternatives = {
        "true-law score": LinearScore(np.zeros(4), np.eye(4)),
        "gaussian fit": LinearScore(data.mean(axis=0), np.cov(data.T)),
        "smoothed KDE h=0.3": MixtureScore(data, 0.3),
        "smoothed KDE h=0.1": MixtureScore(data, 0.1),
    }
    base = matching.dsm_loss(f, data, OU, t, n_noise=500, rng=41)
    xs = mixture_sample(100_000, data, alpha, sigma2, np.random.default_rng(42))
    exact = MixtureScore(data, 0.0)
    for alt in alternatives.values():
        gap = matching.dsm_loss(alt, data, OU, t, n_noise=500, rng=41).minus(base)
        pred = matching.fisher_divergence(alt, exact, t, xs)
        assert gap.value > SE_BAND * gap.stderr
        se = np.hypot(gap.stderr, pred.stderr)
        assert abs(gap.value - pred.value) <= SE_BAND * se
    # Unpaired noise would blur the comparison: the paired s.e. is much smaller.
    other = matching.dsm_loss(alternatives["smoothed KDE h=0.1"], data, OU, t, n_noise=500,
                              rng=99)
    assert np.hypot(other.stderr, base.stderr) > 3 * matching.dsm_loss(
        alternatives["smoothed KDE h=0.1"], data, OU, t, n_noise=500, rng=41).minus(base).stderr


def test_same_seed_same_numbers(cloud):
    data, f, t = cloud
    a = matching.dsm_loss(f, data, OU, t, n_noise=3, rng=5)
    b = matching.dsm_loss(f, data, None, t, n_noise=3, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a.terms, b.terms)
    noise = np.random.default_rng(5).standard_normal((40, 3, 4))
    c = matching.dsm_loss(f, data, OU, t, n_noise=3, noise=noise)
    np.testing.assert_array_equal(a.terms, c.terms)
    assert a.n == 120 and a.value == pytest.approx(a.terms.mean())


def test_standard_errors():
    iid = matching.MonteCarloEstimate.from_terms(np.array([1.0, 2.0, 3.0, 4.0]))
    assert iid.stderr == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    strat = matching.MonteCarloEstimate.from_terms(np.array([[0.0, 2.0], [10.0, 12.0]]))
    # Within-row variances 2 and 2: sqrt((2 + 2) / 2) / 2; the row means' spread is no noise.
    assert strat.stderr == pytest.approx(np.sqrt(2.0) / 2)
    assert np.isnan(matching.MonteCarloEstimate.from_terms(np.array([1.0])).stderr)


# -- bad input ---------------------------------------------------------------------------------


def test_bad_input_is_named(cloud):
    data, f, t = cloud
    with pytest.raises(TypeError, match="model"):
        matching.dsm_loss(object(), data, OU, t, n_noise=2)
    with pytest.raises(ValueError, match="data"):
        matching.dsm_loss(f, data[:, :2], OU, t, n_noise=2)
    with pytest.raises(TypeError, match="n_noise"):
        matching.dsm_loss(f, data, OU, t, n_noise=2.0)
    with pytest.raises(ValueError, match="n_noise"):
        matching.dsm_loss(f, data, OU, t, n_noise=0)
    with pytest.raises(ValueError, match="exactly one of t"):
        matching.dsm_loss(f, data, OU, n_noise=2)
    with pytest.raises(ValueError, match="exactly one of t"):
        matching.dsm_loss(f, data, OU, t, n_noise=2, t_sampler=lambda g, s: np.ones(s))
    with pytest.raises(ValueError, match="t must be > 0"):
        matching.dsm_loss(f, data, OU, -1.0, n_noise=2)
    with pytest.raises(TypeError, match="rng"):
        matching.dsm_loss(f, data, OU, t, n_noise=2, rng=1.5)
    with pytest.raises(TypeError, match="weight"):
        matching.dsm_loss(f, data, OU, t, n_noise=2, weight=3.0)
    with pytest.raises(TypeError, match="schedule"):
        matching.dsm_loss(f, data, "OU", t, n_noise=2)
    with pytest.raises(ValueError, match="noise"):
        matching.dsm_loss(f, data, OU, t, n_noise=2, noise=np.zeros((40, 3, 4)))
    with pytest.raises(ValueError, match="t_sampler"):
        matching.dsm_loss(f, data, OU, n_noise=2, t_sampler=lambda g, s: np.zeros(s))
    with pytest.raises(ValueError, match="x"):
        matching.implicit_loss(f, t, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="method"):
        matching.implicit_loss(f, t, np.zeros((3, 4)), method="magic")
    with pytest.raises(TypeError, match="exact"):
        matching.divergence(MixtureScore(data), t, np.zeros((3, 4)), method="exact")
    with pytest.raises(TypeError, match="n_probes"):
        matching.hutchinson_divergence(f, t, np.zeros((3, 4)), n_probes=None)
    with pytest.raises(TypeError, match="jvp"):
        matching.hutchinson_divergence(MixtureScore(data), t, np.zeros((3, 4)), jvp="model")
    with pytest.raises(ValueError, match="jvp"):
        matching.hutchinson_divergence(f, t, np.zeros((3, 4)), jvp=lambda t, x, v: v[:, :2])
    with pytest.raises(ValueError, match="step"):
        matching.hutchinson_divergence(f, t, np.zeros((3, 4)), step=-1.0)
    with pytest.raises(ValueError, match="t must be a scalar or of shape"):
        matching.implicit_loss(f, np.ones(2), np.zeros((3, 4)))
    with pytest.raises(TypeError, match="reference"):
        matching.fisher_divergence(f, 3, t, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="reference.score"):
        matching.fisher_divergence(f, lambda t, x: x[:, :2], t, np.zeros((3, 4)))

    class Broken:
        dim, schedule = 4, OU

        def score(self, t, x):
            return np.full_like(x, np.nan)

    with pytest.raises(ValueError, match="NaN"):
        matching.dsm_loss(Broken(), data, OU, t, n_noise=2)
    est = matching.MonteCarloEstimate.from_terms(np.ones(3))
    with pytest.raises(ValueError, match="other"):
        est.minus(matching.MonteCarloEstimate.from_terms(np.ones(4)))
    with pytest.raises(TypeError, match="other"):
        est.minus(1.0)
