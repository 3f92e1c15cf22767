"""Empirical-score kernel against this machine's roofline (DESIGN.md §6).

    python benchmarks/bench_score.py [--quick] [--memory]

For each (M, N, d) it prints the kernel's median time over repeats, the fraction
of ``t_roof = 4 M N d / P_gemm + M N / R_exp`` it reaches, with ``P_gemm`` (float64
matmul) and ``R_exp`` (``np.exp`` on all cores) measured in the same run, and the
speed-up over a naive dense numpy reference. ``--memory`` measures the peak
resident memory of ``denoise`` at M = N = 65536, d = 64 in a child process.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.special import logsumexp

import numdiff as nd

SIZES = [(4096, 16384, 2), (4096, 16384, 64), (1024, 16384, 784)]
QUICK_SIZES = [(512, 4096, 2), (512, 4096, 64), (256, 4096, 784)]
T_BENCH = 0.5  # OU time: sigma2 = 0.63, a regime where the BLAS path needs no refinement


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def gemm_rate(n=2048, repeats=5):
    """float64 matmul rate in flop/s, all cores (BLAS threads)."""
    a = np.random.default_rng(0).standard_normal((n, n))
    a @ a
    return 2.0 * n**3 / median_time(lambda: a @ a, repeats)


def exp_rate(n=1 << 24, repeats=5):
    """``np.exp`` rate in evaluations/s, one thread per core (numpy releases the GIL)."""
    workers = os.cpu_count() or 1
    parts = np.array_split(-np.random.default_rng(0).uniform(0, 50, n), workers)
    outs = [np.empty_like(p) for p in parts]
    with ThreadPoolExecutor(workers) as pool:
        def run():
            list(pool.map(lambda i: np.exp(parts[i], out=outs[i]), range(workers)))
        run()
        return n / median_time(run, repeats)


def naive_dense(data, alpha, sigma2, x):
    """Dense numpy reference: full M x N logits, scipy logsumexp, weights @ data."""
    sq = (x * x).sum(1)[:, None] - 2.0 * alpha * (x @ data.T) + alpha**2 * (data * data).sum(1)
    logits = -sq / (2.0 * sigma2)
    lse = logsumexp(logits, axis=1, keepdims=True)
    return np.exp(logits - lse) @ data


def bench(sizes, repeats):
    p_gemm, r_exp = gemm_rate(), exp_rate()
    print(f"P_gemm = {p_gemm / 1e9:.1f} GFLOP/s   R_exp = {r_exp / 1e9:.2f} Gexp/s   "
          f"(measured now, {os.cpu_count()} cores)")
    header = f"{'M':>6} {'N':>6} {'d':>4} | {'kernel s':>9} {'t_roof s':>9} {'roof frac':>9} | {'naive s':>8} {'speed-up':>8}"
    print(header)
    print("-" * len(header))
    rows = []
    schedule = nd.OU()
    alpha, sigma2 = float(schedule.alpha(T_BENCH)), float(schedule.sigma2(T_BENCH))
    for m, n, d in sizes:
        rng = np.random.default_rng(1)
        data = rng.standard_normal((n, d))
        x = alpha * data[rng.integers(n, size=m)] + np.sqrt(sigma2) * rng.standard_normal((m, d))
        f = nd.EmpiricalScore(data, schedule)
        f.denoise(T_BENCH, x[:8])  # compile outside the timing
        t_kernel = median_time(lambda f=f, x=x: f.denoise(T_BENCH, x), repeats)
        t_naive = median_time(lambda data=data, x=x: naive_dense(data, alpha, sigma2, x), max(1, repeats // 2))
        t_roof = 4.0 * m * n * d / p_gemm + m * n / r_exp
        rows.append((m, n, d, t_kernel, t_roof, t_roof / t_kernel, t_naive, t_naive / t_kernel))
        print(f"{m:>6} {n:>6} {d:>4} | {t_kernel:>9.4f} {t_roof:>9.4f} {t_roof / t_kernel:>9.2f} | "
              f"{t_naive:>8.3f} {t_naive / t_kernel:>8.1f}")
    return rows


def memory(m=65536, n=65536, d=64):
    """Peak memory of one ``denoise`` call above its inputs and output, in MB.

    numpy reports its allocations to ``tracemalloc``, so the traced peak during
    the call, less what was traced before it and less the output, is the
    kernel's own working memory (the per-thread scratch of the Numba kernels,
    a few blocks of ``block`` doubles, is not traced and is negligible).
    """
    import tracemalloc

    rng = np.random.default_rng(0)
    data = rng.standard_normal((n, d))
    x = rng.standard_normal((m, d))
    f = nd.EmpiricalScore(data, nd.OU())
    f.denoise(T_BENCH, x[:8])
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    out = f.denoise(T_BENCH, x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    working = (peak - before - out.nbytes) / 2**20
    io_mb = (data.nbytes + x.nbytes + out.nbytes) / 2**20
    print(f"peak memory of denoise at M = N = {m}, d = {d}: {working:.1f} MB above inputs + "
          f"output ({io_mb:.1f} MB); budget 256 MB")
    return working


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory at M = N = 65536")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    bench(QUICK_SIZES if args.quick else SIZES, args.repeats)
    if args.memory:
        memory()


if __name__ == "__main__":
    main()
