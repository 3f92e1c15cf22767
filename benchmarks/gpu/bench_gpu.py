"""GPU benchmark of the empirical score: roofline fraction, agreement, torch reference.

Prints, in one run on one GPU:

* the GPU's measured float64 rates: DGEMM (CuPy, 8192^3) and ``exp`` (a Numba-CUDA
  kernel of independent libdevice ``exp`` chains, the function our kernels call);
* for each ``(M, N, d)``: the median time of ``EmpiricalScore(..., device="cuda")
  .denoise`` (the whole call, validation included), the fraction of the roofline
  ``4 M N d / P_dgemm + M N / R_exp``, the largest difference from the CPU model on
  the first ``CHECK_ROWS`` queries (relative to ``max|D|``), and the ratio to a torch
  float64 ``cdist`` + ``softmax`` + matmul reference on the same card;
* a 100-step reverse-SDE run at CIFAR-10 size (N = 50000, d = 3072).

Run through ``benchmarks/gpu/run.sh``; ``--quick`` shrinks every size by 8 (a smoke test).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time

import cupy
import numpy as np
from numba import cuda

import numdiff as nd

CASES = [(8192, 65536, 2), (8192, 65536, 64), (4096, 50000, 3072)]
CHECK_ROWS = 256
REPEATS = 5


def median_time(fn, repeats=REPEATS):
    fn()  # compile / warm up
    cupy.cuda.Device().synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        cupy.cuda.Device().synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def dgemm_rate(n=8192):
    a = cupy.random.default_rng(0).standard_normal((n, n))
    b = cupy.random.default_rng(1).standard_normal((n, n))
    return 2.0 * n**3 / median_time(lambda: a @ b, 3)


@cuda.jit
def _exp_chains(out, steps):
    i = cuda.grid(1)
    x0 = -1e-3 * (i % 97)
    s0 = s1 = s2 = s3 = 0.0
    for k in range(steps):
        h = -1e-6 * k
        s0 += math.exp(x0 + h)
        s1 += math.exp(x0 - 0.5 + h)
        s2 += math.exp(x0 - 1.0 + h)
        s3 += math.exp(x0 - 1.5 + h)
    out[i] = s0 + s1 + s2 + s3


def exp_rate(steps=4096):
    n_sm = cuda.get_current_device().MULTIPROCESSOR_COUNT
    threads, blocks = 256, 16 * n_sm
    out = cupy.empty(threads * blocks)
    arg = cuda.as_cuda_array(out, sync=False)
    t = median_time(lambda: _exp_chains[blocks, threads](arg, steps), 3)
    return 4.0 * threads * blocks * steps / t


def torch_reference(data, x, alpha, sigma2):
    import torch

    d_t = torch.as_tensor(data, device="cuda", dtype=torch.float64)
    x_t = torch.as_tensor(x, device="cuda", dtype=torch.float64)

    def run():
        d2 = torch.cdist(x_t, alpha * d_t) ** 2
        w = torch.softmax(-d2 / (2.0 * sigma2), dim=1)
        return w @ d_t

    def timed():
        run()
        torch.cuda.synchronize()

    return median_time(timed, 3), run().cpu().numpy()


def case(m, n, d, p_dgemm, r_exp, rng):
    if d > 1000:  # CIFAR-like: pixels in [0, 1]
        data = rng.random((n, d))
    else:
        data = rng.standard_normal((n, d))
    t = 0.5
    sched = nd.OU()
    alpha, sigma2 = float(sched.alpha(t)), float(sched.sigma2(t))
    x = alpha * data[rng.integers(n, size=m)] + math.sqrt(sigma2) * rng.standard_normal((m, d))
    gpu = nd.EmpiricalScore(data, sched, device="cuda")
    x_dev = cupy.asarray(x)
    ours = median_time(lambda: gpu.denoise(t, x_dev))
    den = gpu.denoise(t, x_dev).get()
    roof = 4.0 * m * n * d / p_dgemm + m * n / r_exp
    cpu = nd.EmpiricalScore(data, sched).denoise(t, x[:CHECK_ROWS])
    scale = np.abs(cpu).max()
    agree = float(np.abs(den[:CHECK_ROWS] - cpu).max() / scale)
    try:
        torch_t, torch_den = torch_reference(data, x, alpha, sigma2)
        torch_agree = float(np.abs(torch_den - den).max() / scale)
    except Exception as err:  # noqa: BLE001 - the reference may not fit; say so
        torch_t, torch_agree = math.nan, math.nan
        print(f"  torch reference failed: {err!r}")
    print(f"M={m:5d} N={n:6d} d={d:5d}  time {ours * 1e3:9.3f} ms  roofline {roof * 1e3:8.3f} ms "
          f"fraction {roof / ours:5.3f}  |GPU-CPU|/max|D| {agree:.2e}  "
          f"torch {torch_t * 1e3:9.3f} ms (x{torch_t / ours:5.2f} slower, |diff| {torch_agree:.1e})",
          flush=True)


def sampling(n_samples, steps, n, d, rng):
    data = rng.random((n, d))
    gpu = nd.EmpiricalScore(data, nd.OU(), device="cuda")
    kw = {"T": 5.0, "delta": 1e-3, "steps": steps, "solver": "exp_em", "grid": "uniform_lambda",
              "progress": False}
    nd.sample(gpu, 8, **{**kw, "steps": 2}, rng=0)  # compile
    start = time.perf_counter()
    res = nd.sample(gpu, n_samples, rng=1, **kw)
    wall = time.perf_counter() - start
    again = nd.sample(gpu, n_samples, rng=1, **kw)
    memorised = float(np.mean(res.nearest_distance < 1e-2 * math.sqrt(d)))
    print(f"sampling n={n_samples} steps={steps} N={n} d={d}: {wall:.2f} s wall "
          f"({wall / steps * 1e3:.1f} ms per step incl. the final CPU nearest search), "
          f"success={res.success}, same seed same output: {np.array_equal(res.x, again.x)}, "
          f"fraction within 0.01 sqrt(d) of a training point {memorised:.3f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every size / 8")
    args = parser.parse_args(argv)
    shrink = 8 if args.quick else 1
    dev = cuda.get_current_device()
    print(f"device: {dev.name.decode() if isinstance(dev.name, bytes) else dev.name}, "
          f"{dev.MULTIPROCESSOR_COUNT} SMs; cupy {cupy.__version__}", flush=True)
    p_dgemm, r_exp = dgemm_rate(), exp_rate()
    print(f"measured: DGEMM {p_dgemm / 1e12:.2f} TFLOP/s, exp {r_exp / 1e9:.1f} G/s (float64)",
          flush=True)
    rng = np.random.default_rng(0)
    for m, n, d in CASES:
        try:
            case(m // shrink, n // shrink, d, p_dgemm, r_exp, rng)
        except Exception as err:  # noqa: BLE001 - report and go on to the next case
            print(f"M={m} N={n} d={d}: FAILED {err!r}", flush=True)
    try:
        sampling(1000 // shrink, 100, 50000 // shrink, 3072, rng)
    except Exception as err:  # noqa: BLE001
        print(f"sampling: FAILED {err!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
