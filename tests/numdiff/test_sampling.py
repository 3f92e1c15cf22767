"""nd.sample: result contents, reproducibility, chunking, initial laws, validation, progress.

The timing of the Python overhead per step lives in benchmarks/bench_sampling.py
(a busy machine makes any timing assertion flaky); here only its smoke run.
"""

import sys
from pathlib import Path

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
    b = nd.sample(f, 20, rng=[3, 1], **kw).x  # a sequence of ints seeds as in numpy
    np.testing.assert_array_equal(b, nd.sample(f, 20, rng=np.random.default_rng([3, 1]), **kw).x)
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
    with pytest.raises(ValueError, match=r"\binit\b"):
        nd.sample(g, 4, T=1.0, delta=0.1, steps=3, init="exact")
    with pytest.raises(TypeError, match=r"\bf\b"):
        nd.sample(object(), 4, T=1.0, delta=0.1, steps=3)


def test_non_finite_output_is_reported_not_raised():
    # A genuine divergence: the model's values are finite (1e307), but two
    # geometric Heun steps from 1 to 1e-4 amplify them past float64's range.
    class Huge(GaussianScore):
        def denoise(self, t, x):
            return np.full_like(x, 1e307)

    with np.errstate(over="ignore", invalid="ignore"), pytest.warns(RuntimeWarning):
        r = nd.sample(Huge([0.0], [1.0], nd.OU()), 3, T=1.0, delta=1e-4, steps=2, rng=0,
                      grid="geometric", process="ode", solver="heun")
    assert not r.success and "not finite" in r.message and r.nearest_index is None


class _Returns(GaussianScore):
    """A model whose denoiser returns ``make(x)``."""

    def __init__(self, make, dim=1):
        super().__init__(np.zeros(dim), np.ones(dim), nd.OU())
        self.make = make

    def denoise(self, t, x):
        return self.make(x)


@pytest.mark.parametrize(
    ("make", "exc"),
    [
        (lambda x: np.full_like(x, np.inf), ValueError),  # non-finite for finite x
        (lambda x: np.full_like(x, np.nan), ValueError),
        (lambda x: x[:, :1], ValueError),  # wrong shape (d = 2 -> 1 column)
        (lambda x: x[:-1], ValueError),
        (lambda x: x.ravel(), ValueError),
        (lambda x: x + 0j, TypeError),
        (lambda x: np.full(x.shape, "a"), TypeError),
    ],
)
@pytest.mark.parametrize(("process", "solver"), [("ode", "ddim"), ("sde", "exp_em")])
def test_a_bad_denoiser_gets_a_named_error(make, exc, process, solver):
    with pytest.raises(exc, match=r"\bf\.denoise\b|\bf\b"):
        nd.sample(_Returns(make, dim=2), 3, T=1.0, delta=0.1, steps=2, rng=0,
                  process=process, solver=solver)


@pytest.mark.parametrize(("dim", "exc"), [(0, ValueError), (-2, ValueError), (2.7, TypeError),
                                          ("two", TypeError), (True, TypeError),
                                          (None, TypeError)])
def test_model_dim_must_be_a_positive_int(dim, exc):
    g = GaussianScore([0.0, 0.0], [1.0, 1.0], nd.OU())
    g.dim = dim
    with pytest.raises(exc, match=r"\bf\.dim\b"):
        nd.sample(g, 3, T=1.0, delta=0.1, steps=2, rng=0)


def test_numpy_integer_dim_is_accepted():
    g = GaussianScore([0.0, 0.0], [1.0, 1.0], nd.OU())
    g.dim = np.int64(2)
    assert nd.sample(g, 3, T=1.0, delta=0.1, steps=2, rng=0).x.shape == (3, 2)


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"delta": 0.0}, ValueError, "delta"),
        ({"delta": 2.0}, ValueError, "delta"),
        ({"delta": 0.1 + 0j}, TypeError, "delta"),
        ({"delta": np.nan}, ValueError, "delta"),
        ({"T": 1.0 + 1e-9j}, TypeError, "T"),
        ({"T": np.complex128(1.0)}, TypeError, "T"),
        ({"T": np.nan}, ValueError, "T"),
        ({"T": True}, TypeError, "T"),
        ({"steps": 0}, ValueError, "steps"),
        ({"steps": 2.0}, TypeError, "steps"),
        ({"process": "pde"}, ValueError, "process"),
        ({"solver": "rk4"}, ValueError, "solver"),
        ({"solver": "ddim"}, ValueError, "process"),  # ddim is an ODE solver, process is sde
        ({"grid": "cosine"}, ValueError, "grid"),
        ({"grid": [1.0, 0.5 + 0j, 0.1]}, TypeError, "grid"),
        ({"grid": [1.0, np.nan, 0.1]}, ValueError, "grid"),
        ({"x_T": np.zeros((3, 2))}, ValueError, "x_T"),
        ({"x_T": np.zeros((4, 3))}, ValueError, "x_T"),
        ({"x_T": np.full((4, 2), np.nan)}, ValueError, "x_T"),
        ({"x_T": np.zeros((4, 2), dtype=complex)}, TypeError, "x_T"),
        ({"x_T": "zeros"}, TypeError, "x_T"),
        ({"init": "uniform"}, ValueError, "init"),
        ({"save_at": [0.5 + 1e-3]}, ValueError, "save_at"),
        ({"save_at": [0.1 + 0j]}, TypeError, "save_at"),
        ({"noise": np.zeros((3, 4, 2))}, ValueError, "noise"),
        ({"noise": np.zeros((2, 4, 2), dtype=complex)}, TypeError, "noise"),
        ({"chunk": 0}, ValueError, "chunk"),
        ({"progress": "yes"}, TypeError, "progress"),
        ({"rng": "abc"}, TypeError, "rng"),
        ({"rng": 1.5}, TypeError, "rng"),
        ({"rng": -1}, ValueError, "rng"),
        ({"rng": object()}, TypeError, "rng"),
        ({"rng": True}, TypeError, "rng"),
        ({"rng": [1, -2]}, ValueError, "rng"),
        ({"rng": [1.5]}, ValueError, "rng"),
        ({"rng": []}, ValueError, "rng"),
    ],
)
def test_bad_input_names_the_argument(f, kwargs, exc, name):
    # The name as a word: "t" must not pass by matching "must".
    args = {"T": 1.0, "delta": 0.1, "steps": 2} | kwargs
    with pytest.raises(exc, match=rf"(?<![\w.]){name}\b"):
        nd.sample(f, 4, **args)


@pytest.mark.parametrize("process", ["sde", "ode"])
def test_rng_is_rejected_before_any_work(f, process):
    # A bad rng fails at the boundary for both processes (the SDE used to fail
    # inside the chunk loop, after the ODE-compatible part had run).
    solver = "exp_em" if process == "sde" else "ddim"
    for rng in ("abc", 1.5, -1, object()):
        with pytest.raises((TypeError, ValueError), match=r"\brng\b"):
            nd.sample(f, 4, T=1.0, delta=0.1, steps=2, process=process, solver=solver, rng=rng)


@pytest.mark.parametrize(("process", "solver"), [("sde", "exp_em"), ("sde", "heun"),
                                                 ("ode", "dpmpp_2m")])
def test_legacy_random_state_is_supported_for_both_processes(f, process, solver):
    kw = {"T": 1.0, "delta": 0.05, "steps": 4, "process": process, "solver": solver}
    a = nd.sample(f, 10, rng=np.random.RandomState(3), **kw)
    b = nd.sample(f, 10, rng=np.random.RandomState(3), **kw)
    assert a.success and np.isfinite(a.x).all()
    np.testing.assert_array_equal(a.x, b.x)  # same state, same output
    state = np.random.RandomState(3)
    first = nd.sample(f, 10, rng=state, **kw).x
    assert not np.array_equal(first, nd.sample(f, 10, rng=state, **kw).x)  # it advances


def test_a_generator_that_cannot_spawn_still_drives_the_sde(f):
    # Generator(MT19937) taken from a RandomState has no seed sequence to spawn
    # chunk streams from; the driver seeds one from the generator instead.
    kw = {"T": 1.0, "delta": 0.05, "steps": 4, "process": "sde", "solver": "euler", "chunk": 3}
    try:
        gens = [np.random.default_rng(np.random.RandomState(5)) for _ in range(2)]
    except TypeError:
        pytest.skip("this numpy's default_rng does not wrap a RandomState")
    with pytest.raises(TypeError):
        gens[0].spawn(1)  # the premise
    a, b = nd.sample(f, 10, rng=gens[0], **kw), nd.sample(f, 10, rng=gens[1], **kw)
    np.testing.assert_array_equal(a.x, b.x)


def test_bad_n_and_noise_for_the_ode(f):
    with pytest.raises(ValueError, match=r"\bn\b"):
        nd.sample(f, 0, T=1.0, delta=0.1, steps=2)
    with pytest.raises(TypeError, match=r"\bn\b"):
        nd.sample(f, 2.0, T=1.0, delta=0.1, steps=2)
    with pytest.raises(ValueError, match=r"\bnoise\b"):
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


def test_progress_none_follows_the_terminal(f, capsys, monkeypatch):
    # progress=None is tqdm's disable=None: on when stderr is a terminal.
    monkeypatch.setattr(sampling, "PROGRESS_DELAY", 0.0)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    nd.sample(f, 4, T=1.0, delta=0.1, steps=3, process="ode", solver="ddim", rng=0)
    assert "3/3" in capsys.readouterr().err


def test_short_runs_stay_silent_even_when_asked(f, capsys):
    # The bar draws only after PROGRESS_DELAY (1 s): a quick run prints nothing.
    nd.sample(f, 4, T=1.0, delta=0.1, steps=3, process="ode", solver="ddim", rng=0,
              progress=True)
    assert capsys.readouterr().err == ""


def test_overhead_benchmark_runs_at_tiny_sizes(capsys):
    # Smoke run of benchmarks/bench_sampling.py: it runs and prints its table.
    # No timing is asserted (the benchmark prints the overhead ratios).
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    try:
        import bench_sampling
    finally:
        sys.path.pop(0)
    rows = bench_sampling.bench(bench_sampling.QUICK_SIZES[:1], repeats=1)
    assert len(rows) == 1 and np.isfinite(rows[0][5]) and rows[0][8] > 0
    assert "overhead median" in capsys.readouterr().out
