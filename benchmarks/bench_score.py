"""Empirical-score kernel against this machine's roofline (docs/numerics.md#roofline).

    python benchmarks/bench_score.py [--quick] [--memory]

For each (M, N, d) it prints the kernel's median time over repeats, the fraction
of ``t_roof = 4 M N d / P_gemm + M N / R_exp`` it reaches, and the speed-up over
a naive dense numpy reference. Both rates are measured in the same run:
``P_gemm`` is float64 ``numpy`` matmul on all cores (BLAS threads); ``R_exp`` is
``np.exp`` on an L2-resident block, one thread per core at once (see
:func:`exp_rate`: on a large array it would measure memory bandwidth instead).
``--memory`` measures the peak traced memory of ``denoise`` at M = N = 65536,
d = 64.
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
# R_exp: 32768 float64 (256 KiB) per thread, input and output L2-resident; a call
# count giving about 0.1 s per timing at 1 Gexp/s per core.
EXP_BLOCK = 1 << 15
EXP_CALLS = 3000


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


def n_cores():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def exp_rate(block=EXP_BLOCK, calls=EXP_CALLS, repeats=5, workers=None):
    """``np.exp`` rate in evaluations/s, all cores together: ``(total, workers)``.

    Each of ``workers`` threads (default: one per core) owns a block of
    ``block`` float64 arguments in ``[-50, 0]`` (shifted softmax logits are
    ``<= 0``) and a preallocated output, and calls ``np.exp(z, out=out)``
    ``calls`` times; the threads run at once, and the rate is the median over
    ``repeats`` of the total count over the wall time. Input and output
    (2 x 256 KiB by default) stay in L2, so this is the rate of ``exp`` itself:
    on a 128 MB array the same call streams from memory and measures the
    memory bandwidth, a markedly lower rate, which would flatter the kernel's
    roofline fraction wherever the ``exp`` term dominates (small ``d``).

    numpy drops the GIL inside a ufunc loop of more than 500 elements (below
    that the threads would run one at a time), so the threads do overlap. The
    Python overhead per call (about 1 us) is small next to the call itself
    (about 30 us at 1 Gexp/s).
    """
    workers = n_cores() if workers is None else workers
    if block <= 500:
        raise ValueError(f"block must be > 500 so that np.exp releases the GIL; got {block}")
    rng = np.random.default_rng(0)
    args = [-rng.uniform(0.0, 50.0, block) for _ in range(workers)]
    outs = [np.empty(block) for _ in range(workers)]

    def one_thread(i):
        z, out = args[i], outs[i]
        for _ in range(calls):
            np.exp(z, out=out)

    with ThreadPoolExecutor(workers) as pool:
        def run():
            list(pool.map(one_thread, range(workers)))
        run()  # warm the caches and start the threads
        return workers * block * calls / median_time(run, repeats), workers


def naive_dense(data, alpha, sigma2, x):
    """Dense numpy reference: full M x N logits, scipy logsumexp, weights @ data."""
    sq = (x * x).sum(1)[:, None] - 2.0 * alpha * (x @ data.T) + alpha**2 * (data * data).sum(1)
    logits = -sq / (2.0 * sigma2)
    lse = logsumexp(logits, axis=1, keepdims=True)
    return np.exp(logits - lse) @ data


def bench(sizes, repeats):
    p_gemm = gemm_rate()
    r_exp, cores = exp_rate()
    print(f"P_gemm = {p_gemm / 1e9:.1f} GFLOP/s (numpy matmul, all cores)   "
          f"R_exp = {r_exp / 1e9:.2f} Gexp/s = {cores} x {r_exp / cores / 1e9:.2f} per core "
          f"(np.exp on L2-resident blocks, one thread per core)   measured now")
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
