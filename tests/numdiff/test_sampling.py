"""nd.sample: result contents, reproducibility, chunking, initial laws, validation, overhead."""

import time

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

import numdiff as nd
from numdiff import sampling
from validation.orders import GaussianScore

DATA = np.random.default_rng(0).standard_normal((6, 2))


@pytest.fixture(scope="module")
def f():
    return nd.EmpiricalScore(DATA, nd.OU())


def test_result_contents(f):
    times = nd.grids.uniform_lambda(f.schedule, 2.0, 0.01, 10)
    r = nd.sample(f, 50, T=2.0, delta=0.01, steps=10, process="ode", solver="heun",
                  grid="uniform_lambda", rng=1, save_at=[times[0], times[5], 0.01])
    assert r.success and r.message == "ok"
    assert r.x.shape == (50, 2) and np.isfinite(r.x).all()
    np.testing.assert_array_equal(r.times, times)
    assert r.nfev == 20  # Heun: two denoiser calls per step
    assert r.trajectory.shape == (3, 50, 2)
    np.testing.assert_array_equal(r.trajectory[2], r.x)
    dist = cdist(r.x, DATA)
    np.testing.assert_array_equal(r.nearest_index, dist.argmin(axis=1))
    np.testing.assert_allclose(r.nearest_distance, dist.min(axis=1), rtol=1e-12)


@pytest.mark.parametrize(("process", "solver", "per_step"),
                         [("sde", "euler", 1), ("sde", "exp_em", 1), ("ode", "dpmpp_2m", 1),
                          ("ode", "ddim", 1), ("sde", "heun", 2)])
def test_nfev_counts_denoiser_calls(f, process, solver, per_step):
    r = nd.sample(f, 5, T=1.0, delta=0.1, steps=7, process=process, solver=solver, rng=0,
                  chunk=2)
    assert r.nfev == 7 * per_step


def test_same_seed_same_output_and_generator_accepted(f):
    kw = {"T": 1.0, "delta": 0.05, "steps": 8, "process": "sde", "solver": "euler"}
    a = nd.sample(f, 20, rng=3, **kw).x
    np.testing.assert_array_equal(a, nd.sample(f, 20, rng=3, **kw).x)
    np.testing.assert_array_equal(a, nd.sample(f, 20, rng=np.random.default_rng(3), **kw).x)
    assert not np.array_equal(a, nd.sample(f, 20, rng=4, **kw).x)


def test_chunking_does_not_change_a_run_with_given_noise(f):
    rng = np.random.default_rng(5)
    x_T, noise = rng.standard_normal((9, 2)), rng.standard_normal((6, 9, 2))
    kw = {"T": 1.0, "delta": 0.05, "steps": 6, "process": "sde", "solver": "heun", "x_T": x_T,
          "noise": noise}
    whole = nd.sample(f, 9, **kw)
    parts = nd.sample(f, 9, chunk=4, **kw)
    np.testing.assert_array_equal(whole.x, parts.x)


def test_noise_is_the_brownian_increment_over_sqrt_h(f):
    # Euler-Maruyama, one step: x_s = x + h drift + a sqrt(h) z, with the drift from f.score.
    x_T, z = np.array([[0.3, -0.2]]), np.array([[[1.5, -0.5]]])
    r = nd.sample(f, 1, T=0.5, delta=0.2, steps=1, process="sde", solver="euler", x_T=x_T,
                  noise=z)
    s = f.schedule
    drift = s.b(0.5) * x_T + s.a2(0.5) * f.score(0.5, x_T)
    np.testing.assert_allclose(r.x, x_T + 0.3 * drift + np.sqrt(s.a2(0.5) * 0.3) * z[0],
                               rtol=1e-13)


def test_init_exact_draws_from_p_T():
    # d = 1: Kolmogorov-Smirnov of x_T against the exact mixture CDF, n = 4000, seed 7;
    # false-failure probability 1e-3.
    data = np.array([[-2.0], [0.5], [3.0]])
    g = nd.EmpiricalScore(data, nd.OU())
    T = 0.4
    r = nd.sample(g, 4000, T=T, delta=0.1, steps=1, process="ode", solver="ddim", init="exact",
                  rng=7, save_at=[T])
    alpha, sigma = float(np.exp(-T)), float(np.sqrt(-np.expm1(-2 * T)))
    cdf = lambda y: stats.norm.cdf((y[:, None] - alpha * data[:, 0]) / sigma).mean(axis=1)
    assert stats.kstest(r.trajectory[0, :, 0], cdf).pvalue > 1e-3
    # and init="normal" is not that law (its mean is 0, the mixture's is 0.5 * alpha)
    r0 = nd.sample(g, 4000, T=T, delta=0.1, steps=1, process="ode", solver="ddim", rng=7,
                   save_at=[T])
    assert stats.kstest(r0.trajectory[0, :, 0], cdf).pvalue < 1e-3


def test_duck_typed_model_without_nearest_or_data():
    g = GaussianScore([1.0, 2.0], [0.5, 0.5], nd.OU())
    r = nd.sample(g, 4, T=1.0, delta=0.1, steps=3, process="ode", solver="dpmpp_2m", rng=0)
    assert r.success and r.nearest_index is None and r.nearest_distance is None
    with pytest.raises(ValueError, match="init"):
        nd.sample(g, 4, T=1.0, delta=0.1, steps=3, init="exact")
    with pytest.raises(TypeError, match="f"):
        nd.sample(object(), 4, T=1.0, delta=0.1, steps=3)


def test_non_finite_output_is_reported_not_raised():
    class Exploding(GaussianScore):
        def denoise(self, t, x):
            return np.full_like(x, np.inf)

    r = nd.sample(Exploding([0.0], [1.0], nd.OU()), 3, T=1.0, delta=0.1, steps=2, rng=0,
                  process="ode", solver="ddim")
    assert not r.success and "not finite" in r.message and r.nearest_index is None


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"delta": 0.0}, ValueError, "delta"),
        ({"delta": 2.0}, ValueError, "delta"),
        ({"steps": 0}, ValueError, "steps"),
        ({"process": "pde"}, ValueError, "process"),
        ({"solver": "rk4"}, ValueError, "solver"),
        ({"solver": "ddim"}, ValueError, "not valid"),  # ddim is an ODE solver, process is sde
        ({"grid": "cosine"}, ValueError, "grid"),
        ({"x_T": np.zeros((3, 2))}, ValueError, "x_T"),
        ({"x_T": np.zeros((4, 3))}, ValueError, "x_T"),
        ({"x_T": np.full((4, 2), np.nan)}, ValueError, "x_T"),
        ({"init": "uniform"}, ValueError, "init"),
        ({"save_at": [0.5 + 1e-3]}, ValueError, "save_at"),
        ({"noise": np.zeros((3, 4, 2))}, ValueError, "noise"),
        ({"chunk": 0}, ValueError, "chunk"),
        ({"progress": "yes"}, TypeError, "progress"),
    ],
)
def test_bad_input_names_the_argument(f, kwargs, exc, match):
    args = {"T": 1.0, "delta": 0.1, "steps": 2} | kwargs
    with pytest.raises(exc, match=match):
        nd.sample(f, 4, **args)


def test_bad_n_and_noise_for_the_ode(f):
    with pytest.raises(ValueError, match="n"):
        nd.sample(f, 0, T=1.0, delta=0.1, steps=2)
    with pytest.raises(ValueError, match="noise"):
        nd.sample(f, 4, T=1.0, delta=0.1, steps=2, process="ode", solver="ddim",
                  noise=np.zeros((2, 4, 2)))


def test_progress_bar_only_when_asked_or_on_a_terminal(f, capsys, monkeypatch):
    monkeypatch.setattr(sampling, "PROGRESS_DELAY", 0.0)
    kw = {"T": 1.0, "delta": 0.1, "steps": 3, "process": "ode", "solver": "ddim", "rng": 0}
    nd.sample(f, 4, progress=None, **kw)  # captured stderr is not a terminal
    nd.sample(f, 4, progress=False, **kw)
    assert capsys.readouterr().err == ""
    nd.sample(f, 4, progress=True, **kw)
    err = capsys.readouterr().err
    assert "3/3" in err and err.endswith("\n")


def test_python_overhead_is_under_ten_percent_of_the_kernel():
    # n = N = 4096, d = 2: time spent in sample() outside the denoiser calls (and
    # the final nearest-neighbour search, which is not per step) against the time
    # in the denoiser calls. Best of 2 runs; the measured ratio is about 1e-2.
    data = np.random.default_rng(0).standard_normal((4096, 2))
    inner = nd.EmpiricalScore(data, nd.OU())

    class Timed:
        schedule, dim, data = inner.schedule, inner.dim, inner.data

        def __init__(self):
            self.kernel = self.other = 0.0

        def denoise(self, t, x):
            t0 = time.perf_counter()
            out = inner.denoise(t, x)
            self.kernel += time.perf_counter() - t0
            return out

        def nearest(self, x, k=1):
            t0 = time.perf_counter()
            out = inner.nearest(x, k)
            self.other += time.perf_counter() - t0
            return out

    ratios = []
    for _ in range(2):
        g = Timed()
        t0 = time.perf_counter()
        nd.sample(g, 4096, T=1.0, delta=0.01, steps=4, process="sde", solver="euler",
                  grid="uniform_lambda", rng=0)
        total = time.perf_counter() - t0
        ratios.append((total - g.kernel - g.other) / g.kernel)
    assert min(ratios) < 0.10
