"""Gradient-descent throughput of the univariate ReLU net kernel (numdiff.nets).

    python benchmarks/bench_nets.py [--quick] [--repeats R]

For each width ``k`` and data size ``n`` it times :func:`numdiff.nets.train_gd`
with ``tol = 0`` (every step is taken) and no final Lanczos run, and prints the
median over repeats of steps per second and of neuron-point-steps per second
(``k n steps / s``: one step is two ``O(k n)`` passes, forward and backward).
Then it runs :func:`numdiff.nets.gd_sweep` on all cores and extrapolates the
wall time of a sweep of 1000 runs x 2000 steps at each size from the measured
parallel rate.

Measured with ``python benchmarks/bench_nets.py --repeats 7`` on a 2-core Intel
Xeon (2.1 GHz, AVX-512) shared with another job (load average 2.4-3.1), so
timings vary by up to 1.5x from run to run and the sweep got between one and
two cores' worth:

       k      n |   steps/s  G npps  ns/npps | sweep G npps  sweep time
      10    100 |   1395366    1.40     0.72 |         2.80        0.7s
      10   1000 |    225499    2.25     0.44 |         3.70        5.4s
     100    100 |    189283    1.89     0.53 |         3.48        5.8s
     100   1000 |     24361    2.44     0.41 |         2.62       76.4s
    1000    100 |     25354    2.54     0.39 |         4.15       48.2s
    1000   1000 |      2597    2.60     0.39 |         2.94      680.2s

(npps: neuron-point-steps.) Across repeated runs the single-thread rate was
1.2-4.0 G npps and the two-thread sweep rate 1.3-4.2 G npps: a sweep of 1000
runs x 2000 steps takes about 10-13 minutes at k = n = 1000, about a minute at
k = 100, n = 1000 or k = 1000, n = 100, and seconds below. The kernels release
the GIL (the calling thread keeps running during a run), so on two idle cores
the sweep rate approaches twice the single-thread rate.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from numdiff import nets

SIZES = [(10, 100), (10, 1000), (100, 100), (100, 1000), (1000, 100), (1000, 1000)]
QUICK_SIZES = [(10, 100), (100, 100), (100, 1000)]
# Neuron-point-steps per timing: about 0.1 s at 2 G/s.
WORK_PER_TIMING = 2e8
SWEEP_RUNS, SWEEP_STEPS = 1000, 2000
ETA = 0.01  # small enough that no run diverges or stops early


def n_cores():
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def problem(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, n)
    return x, np.sin(3.0 * x) + 0.1 * rng.standard_normal(n)


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def single_rate(k, n, repeats):
    """Steps per second of one run on one thread."""
    x, y = problem(n)
    start = nets.init_standard(k, 1)
    steps = max(100, int(WORK_PER_TIMING / (k * n)))
    nets.train_gd(x, y, start, ETA, max_steps=2, tol=0.0, sharpness=False)  # compile
    elapsed = median_time(
        lambda: nets.train_gd(x, y, start, ETA, max_steps=steps, tol=0.0, sharpness=False),
        repeats)
    return steps / elapsed


def sweep_rate(k, n, workers):
    """Neuron-point-steps per second of ``gd_sweep`` over ``2 workers`` runs."""
    x, y = problem(n)
    runs = 2 * workers
    steps = max(100, int(WORK_PER_TIMING / (k * n)))
    start = time.perf_counter()
    nets.gd_sweep(x, y, k, [ETA], range(runs), workers=workers, max_steps=steps, tol=0.0,
                  sharpness=False)
    return runs * steps * k * n / (time.perf_counter() - start)


def bench(sizes, repeats):
    workers = n_cores()
    print(f"one run on one thread; sweep: gd_sweep on {workers} threads, extrapolated to "
          f"{SWEEP_RUNS} runs x {SWEEP_STEPS} steps")
    header = (f"{'k':>6} {'n':>6} | {'steps/s':>9} {'G npps':>7} {'ns/npps':>8} | "
              f"{'sweep G npps':>12} {'sweep time':>11}")
    print(header)
    print("-" * len(header))
    rows = []
    for k, n in sizes:
        rate = single_rate(k, n, repeats)
        npps = rate * k * n
        parallel = sweep_rate(k, n, workers)
        sweep_s = SWEEP_RUNS * SWEEP_STEPS * k * n / parallel
        rows.append((k, n, rate, npps, parallel, sweep_s))
        print(f"{k:>6} {n:>6} | {rate:>9.0f} {npps / 1e9:>7.2f} {1e9 / npps:>8.2f} | "
              f"{parallel / 1e9:>12.2f} {sweep_s:>10.1f}s")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    bench(QUICK_SIZES if args.quick else SIZES, args.repeats)


if __name__ == "__main__":
    main()
