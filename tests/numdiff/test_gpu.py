"""The GPU backend (``EmpiricalScore(..., device="cuda")``) against the exact oracle
and the CPU kernel.

Without a GPU these run the Numba-CUDA kernels in Numba's CUDA simulator
(tests/conftest.py sets ``NUMBA_ENABLE_CUDASIM=1``), at small sizes, with the
split and tile sizes shrunk so that every merge (data splits of the direct kernel,
data tiles of the matrix-multiply path, query row blocks) happens. Tests marked
``gpu`` need a real GPU; ``benchmarks/gpu/run.sh`` runs the whole file there with
``NUMBA_ENABLE_CUDASIM=0``.

Bands: the oracle bounds of tests/numdiff/test_score_oracle.py (``64 eps`` of the
natural scales, exactly as for the CPU), and ``1e-13`` relative agreement with the
CPU model, or, where the case's own conditioning allows more, the sum of the two
sides' oracle bounds (the triangle inequality): a query midway between two points
at ``sigma2 = 1e-6`` has logits of ``~1e7`` nats, whose rounding moves the two
weights by ``~1e-9``; on an H200 the GPU and the CPU then differed by ``1.2e-10``
relative, each inside its own bound.
"""

from __future__ import annotations

import math

import exact_mixture
import numpy as np
import pytest
from numba import config
from test_score_oracle import C, blas_case, error_ratios, oracle_errors, ou_time_for_sigma2

import numdiff as nd
import numdiff.gpu.engine as gpu_score
from numdiff.gpu import CudaUnavailableError, cuda_available

pytestmark = [
    pytest.mark.skipif(not cuda_available(), reason="no CUDA GPU and no simulator"),
    # The simulator runs the kernels on NumPy scalars, which warn where the GPU
    # overflows silently to the intended inf (clamped right after).
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]
REAL_GPU = cuda_available() and not config.ENABLE_CUDASIM
AGREE = 1e-13


@pytest.fixture
def small_blocks(monkeypatch):
    """Splits of 8 points, tiles of 8 columns and 3 query rows: every merge runs."""
    if not REAL_GPU:
        monkeypatch.setattr(gpu_score, "PER_SPLIT", 8)
        monkeypatch.setattr(gpu_score, "TILE_ENTRIES", 8)
        monkeypatch.setattr(gpu_score, "MIN_TILE_COLS", 8)
        monkeypatch.setattr(gpu_score, "TILE_ROWS", 3)


def host(a):
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def oracle_bands(data, t, x, schedule):
    """Twice the oracle's achieved bounds per entry (``denoise``, ``score``: (M, d);
    ``log_density``: (M,)): the most two results each within its bound can differ."""
    alpha, sigma2 = float(schedule.alpha(t)), float(schedule.sigma2(t))
    bands = {"denoise": [], "score": [], "log_density": []}
    for m in range(x.shape[0]):
        b = exact_mixture.achieved_bounds(exact_mixture.reference(data, alpha, sigma2, x[m]), C)
        for name, bound in (("denoise", b.denoise), ("score", b.score),
                            ("log_density", b.log_density)):
            bands[name].append(2.0 * np.asarray(bound, dtype=float))
    return {name: np.array(rows) for name, rows in bands.items()}


def compare(data, t, x, schedule=None, bands=None):
    """GPU values against the exact oracle (worst error / bound) and against the CPU
    model (worst difference relative to each row's natural scale: ``max|D|``,
    ``max(|s|, (|x| + alpha |D|) / sigma2)``, the scale of ``alpha D - x`` whose
    rounding both matrix-multiply paths share, and ``max(|log p|, 1)``). With
    ``bands`` (:func:`oracle_bands`) a difference within its band counts as 0."""
    schedule = schedule or nd.OU()
    cpu = nd.EmpiricalScore(data, schedule)
    gpu = nd.EmpiricalScore(data, schedule, device="cuda")
    names = ("denoise", "score", "log_density")
    ours = {name: host(getattr(gpu, name)(t, x)) for name in names}
    theirs = {name: getattr(cpu, name)(t, x) for name in names}
    t_arr = np.broadcast_to(np.asarray(t, dtype=float), (x.shape[0],))
    alpha, sigma2 = schedule.alpha(t_arr), schedule.sigma2(t_arr)
    den_max = np.abs(theirs["denoise"]).max(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):
        natural = {
            "denoise": den_max[:, None],
            "score": ((np.abs(x).max(axis=1) + alpha * den_max) / sigma2)[:, None],
            "log_density": 1.0,
        }
        diff = {}
        for name in names:
            a, b = theirs[name], ours[name]
            assert b.shape == a.shape and b.dtype == np.float64
            size = np.abs(a).max(axis=-1, keepdims=True) if a.ndim == 2 else np.abs(a)
            err = np.where(a == b, 0.0, np.abs(b - a) / np.maximum(size, natural[name]))
            if bands is not None:
                err = np.where(np.abs(b - a) <= bands[name].reshape(a.shape), 0.0, err)
            diff[name] = float(np.nan_to_num(err, nan=np.inf).max())  # equal infinities agree
    return ours, diff


def agree_with_cpu(data, t, x, schedule=None):
    return compare(data, t, x, schedule)[1]


def check(data, t, x, schedule=None):
    schedule = schedule or nd.OU()
    bands = oracle_bands(data, t, x, schedule) if np.ndim(t) == 0 else None
    ours, diff = compare(data, t, x, schedule, bands)
    if np.ndim(t) == 0:
        worst = error_ratios(data, t, x, schedule, ours["denoise"], ours["score"],
                             ours["log_density"])
        assert all(v <= 1.0 for v in worst.values()), f"error / bound: {worst}"
    assert all(v <= AGREE for v in diff.values()), f"GPU - CPU: {diff}"


# -- the direct kernels (d <= 32) -------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 2, 3, 32])
def test_direct_tiny_sigma2_near_the_data(small_blocks, dim):
    rng = np.random.default_rng(dim)
    data = rng.standard_normal((20, dim))
    data[5] = data[0] + 2e-5
    t = ou_time_for_sigma2(1e-10)
    x = math.exp(-t) * data[:4] + 1e-5 * rng.standard_normal((4, dim))
    check(data, t, x)


@pytest.mark.parametrize("t", [0.05, 1.0, 8.0])
def test_direct_far_queries(small_blocks, t):
    rng = np.random.default_rng(12)
    data = rng.standard_normal((19, 2))
    check(data, t, 1e4 * rng.standard_normal((3, 2)))


def test_direct_duplicates_single_point_and_schedules(small_blocks):
    rng = np.random.default_rng(22)
    base = rng.standard_normal((4, 3))
    data = np.concatenate([base, base, base[:1]])
    x = rng.standard_normal((4, 3))
    for t in [ou_time_for_sigma2(1e-6), 0.3, 3.0]:
        check(data, t, x)
    check(base[:1], 0.5, x)
    for sched, t in [(nd.VPLinear(), 0.01), (nd.VPCosine(), 0.5), (nd.VE(), 0.3)]:
        check(base, t, x, sched)


def test_direct_extreme_magnitudes(small_blocks):
    """The per-query power-of-two scales: data of 1e160 and |x| of 1e150 (the CPU's
    fuzz cases), against the CPU model (no oracle reaches these ranges cheaply)."""
    rng = np.random.default_rng(5)
    data = 1e160 * rng.standard_normal((11, 2))
    diff = agree_with_cpu(data, 0.4, 1e160 * rng.standard_normal((3, 2)))
    assert all(v <= AGREE for v in diff.values()), diff
    data = rng.standard_normal((11, 2))
    diff = agree_with_cpu(data, 0.4, 1e150 * rng.standard_normal((3, 2)))
    assert all(v <= AGREE for v in diff.values()), diff


def test_direct_rows_beyond_the_float_range_go_to_the_host(small_blocks):
    """|x| = 1e155 against data spaced 1: the nearest point by rounded distances is
    not the largest logit; those rows are recomputed by the CPU kernel."""
    data = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    x = np.array([[1e155, 3e154], [0.3, 0.2]])
    diff = agree_with_cpu(data, 0.5, x)
    assert all(v <= AGREE for v in diff.values()), diff


# -- the matrix-multiply path (d > 32) -------------------------------------------------


@pytest.mark.parametrize("where", ["near", "far", "midway"])
@pytest.mark.parametrize("sigma2", [1e-10, 1e-6, 1e-3, 0.1])
def test_gemm_small_and_intermediate_sigma2(sigma2, where):
    check(*blas_case(sigma2, where))


@pytest.mark.parametrize("t", [ou_time_for_sigma2(1e-10), 0.2])
def test_gemm_off_centre_data(t):
    rng = np.random.default_rng(40)
    data = 50.0 + rng.standard_normal((10, 64))
    alpha, sigma = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    check(data, t, alpha * data[:3] + sigma * rng.standard_normal((3, 64)))


@pytest.mark.parametrize("sigma2", [1e-6, 0.1])
def test_gemm_merges_of_tiles_and_row_blocks(small_blocks, sigma2):
    """Two data tiles and two query row blocks (refined rows at 1e-6, plain at 0.1)."""
    check(*blas_case(sigma2, "near"))


def test_gemm_rows_with_a_huge_rounding_bound_go_to_the_host(small_blocks):
    rng = np.random.default_rng(41)
    data = rng.standard_normal((9, 40))
    x = np.concatenate([1e12 * rng.standard_normal((1, 40)), rng.standard_normal((2, 40))])
    diff = agree_with_cpu(data, ou_time_for_sigma2(1e-8), x)
    assert all(v <= AGREE for v in diff.values()), diff


def test_an_injected_bug_is_caught(small_blocks, monkeypatch):
    """Shrinking the refinement window to 0 nats drops the weights of every entry but
    the reference (an off-by-window bug): the near/midway oracle cases must fail."""
    monkeypatch.setattr(gpu_score, "REFINE_WINDOW", 0.0)
    worst = oracle_errors(*blas_case(1e-6, "near"), device="cuda")
    assert max(worst.values()) > 1.0, worst


# -- API ---------------------------------------------------------------------------------


def test_per_query_times_and_empty_input(small_blocks):
    rng = np.random.default_rng(3)
    data = rng.standard_normal((10, 2))
    x = rng.standard_normal((4, 2))
    t = np.array([0.1, 0.5, 1.0, 0.1])
    diff = agree_with_cpu(data, t, x)
    assert all(v <= AGREE for v in diff.values()), diff
    gpu = nd.EmpiricalScore(data, nd.OU(), device="cuda")
    assert host(gpu.denoise(0.5, np.empty((0, 2)))).shape == (0, 2)


def test_bad_input_is_named():
    data = np.zeros((3, 2))
    with pytest.raises(ValueError, match="device"):
        nd.EmpiricalScore(data, nd.OU(), device="gpu")
    gpu = nd.EmpiricalScore(data, nd.OU(), device="cuda")
    with pytest.raises(ValueError, match="x"):
        gpu.denoise(0.5, np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="t"):
        gpu.denoise(-1.0, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="x"):
        gpu.denoise(0.5, np.zeros((1, 3)))


def test_missing_runtime_is_explained(monkeypatch):
    import numdiff.gpu._runtime as rt_module

    def unavailable():
        raise CudaUnavailableError("device='cuda' needs CuPy, which is not installed; install it")

    monkeypatch.setattr(gpu_score, "runtime", unavailable)
    with pytest.raises(CudaUnavailableError, match="CuPy"):
        nd.EmpiricalScore(np.zeros((2, 2)), nd.OU(), device="cuda")
    assert rt_module.cuda_available() is True  # the real runtime is untouched


def test_other_methods_run_on_the_host(small_blocks):
    rng = np.random.default_rng(8)
    data = rng.standard_normal((10, 3))
    x = rng.standard_normal((2, 3))
    cpu = nd.EmpiricalScore(data, nd.OU())
    gpu = nd.EmpiricalScore(data, nd.OU(), device="cuda")
    assert np.array_equal(gpu.divergence(0.3, x), cpu.divergence(0.3, x))
    assert np.array_equal(gpu.nearest(x, 2)[0], cpu.nearest(x, 2)[0])


def test_sampling_matches_the_cpu_in_the_simulator(small_blocks):
    """In the simulator the noise comes from the same NumPy streams, so a whole
    reverse-SDE run agrees with the CPU one to rounding."""
    if REAL_GPU:
        pytest.skip("on a GPU the noise comes from CuPy (test_sampling_on_the_gpu)")
    rng = np.random.default_rng(0)
    data = rng.standard_normal((30, 2))
    kw = {"T": 2.0, "delta": 1e-3, "steps": 8, "solver": "exp_em", "grid": "uniform_lambda", "rng": 3,
              "save_at": [2.0, 1e-3]}
    a = nd.sample(nd.EmpiricalScore(data, nd.OU()), 12, **kw)
    b = nd.sample(nd.EmpiricalScore(data, nd.OU(), device="cuda"), 12, **kw)
    assert isinstance(b.x, np.ndarray)
    assert np.abs(a.x - b.x).max() <= 1e-12
    assert np.abs(a.trajectory - b.trajectory).max() <= 1e-12
    assert np.array_equal(a.nearest_index, b.nearest_index)


# -- on a real GPU -------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not REAL_GPU, reason="needs a CUDA GPU")
@pytest.mark.parametrize("dim", [2, 64])
@pytest.mark.parametrize("where", ["near", "spread"])
def test_gpu_agrees_with_cpu_at_moderate_size(dim, where):
    """N = 20000 (10 splits / 3+ tiles at production sizes), 300 queries."""
    rng = np.random.default_rng(dim)
    data = rng.standard_normal((20000, dim))
    t = ou_time_for_sigma2(1e-4) if where == "near" else 0.7
    alpha, sigma = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
    x = alpha * data[:300] + sigma * rng.standard_normal((300, dim))
    diff = agree_with_cpu(data, t, x)
    assert all(v <= AGREE for v in diff.values()), diff


@pytest.mark.gpu
@pytest.mark.skipif(not REAL_GPU, reason="needs a CUDA GPU")
def test_device_arrays_in_and_out():
    import cupy

    rng = np.random.default_rng(1)
    data = rng.standard_normal((500, 3))
    gpu = nd.EmpiricalScore(data, nd.OU(), device="cuda")
    x = cupy.asarray(rng.standard_normal((7, 3)))
    out = gpu.score(0.3, x)
    assert isinstance(out, cupy.ndarray)
    expect = nd.EmpiricalScore(data, nd.OU()).score(0.3, x.get())
    assert np.abs(out.get() - expect).max() <= AGREE * np.abs(expect).max()
    with pytest.raises(ValueError, match="x"):
        gpu.score(0.3, cupy.asarray([[np.inf, 0.0, 0.0]]))


@pytest.mark.gpu
@pytest.mark.skipif(not REAL_GPU, reason="needs a CUDA GPU")
def test_sampling_on_the_gpu():
    """Same seed, same output; and the samples' law matches the CPU's: mean nearest
    distance within 4.5 standard errors (n = 2000 each, independent noise)."""
    rng = np.random.default_rng(2)
    data = rng.standard_normal((200, 2))
    kw = {"T": 3.0, "delta": 1e-2, "steps": 40, "solver": "exp_em", "grid": "uniform_lambda"}
    gpu = nd.EmpiricalScore(data, nd.OU(), device="cuda")
    a = nd.sample(gpu, 2000, rng=5, **kw)
    b = nd.sample(gpu, 2000, rng=5, **kw)
    assert np.array_equal(a.x, b.x)
    c = nd.sample(nd.EmpiricalScore(data, nd.OU()), 2000, rng=6, **kw)
    da, dc = a.nearest_distance, c.nearest_distance
    se = math.sqrt(da.var() / da.size + dc.var() / dc.size)
    assert abs(da.mean() - dc.mean()) <= 4.5 * se


# -- compiled for a real GPU -----------------------------------------------------------------


def test_kernels_compile_for_hopper():
    """Numba's CUDA compiler accepts every kernel (sm_90 PTX, no GPU needed): the
    simulator runs Python and would not notice a kernel that cannot be typed."""
    import importlib.util
    import os
    import subprocess
    import sys
    from pathlib import Path

    spec = importlib.util.find_spec("nvidia.cuda_nvcc")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("no NVVM: the nvidia-cuda-nvcc-cu12 wheel ([test] extra) is not installed")
    home = Path(next(iter(spec.submodule_search_locations)))
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0", "CUDA_HOME": str(home)}
    script = Path(__file__).with_name("gpu_compile_check.py")
    run = subprocess.run([sys.executable, str(script)], check=False, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.split("\n")
    assert sum(line.startswith(("nearest", "moments", "tile", "residual")) for line in lines) == 8
    assert all(line.endswith("True") for line in lines if line.startswith(("moments", "residual")))


def test_numpy_alias_for_numba_cuda_is_restored(monkeypatch):
    """NumPy 2.5 has no ``row_stack``, which numba-cuda 0.30 overloads on first compile."""
    from numdiff.gpu import _runtime

    monkeypatch.delattr(np, "row_stack", raising=False)
    _runtime._numpy_aliases_for_numba_cuda()
    assert np.row_stack is np.vstack
