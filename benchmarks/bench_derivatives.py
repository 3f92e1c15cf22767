"""Divergence and Jacobian-vector products against this machine's roofline.

    python benchmarks/bench_derivatives.py [--quick] [--repeats R]

Cost models (docs/numerics.md#derivatives), with ``P_gemm`` and ``R_exp`` measured
in the same run by the helpers of ``bench_score.py``:

* ``divergence``: ``t_roof = 4 M N d / P_gemm + M N / R_exp``: the cross term ``x .
  y_k`` (``2 M N d``) and the weighted sums of ``y_k`` and ``|y_k|^2`` (``2 M N (d +
  1)``, one product with ``[y, |y|^2]``), and ``M N`` exponentials. The centred
  second moment adds no ``d``-sized product: ``|y_k|^2`` is precomputed.
* ``jvp``: ``t_roof = 8 M N d / P_gemm + M N / R_exp``: the same plus the projections
  ``v . y_k`` (``2 M N d``) and the weighted sums of ``(v . y_k) y_k`` (``2 M N d``).

For ``d <= 16`` the direct kernel does this work as scalar (vectorised) loops, not
matrix products; the roofline is the same machine bound. ``denoise`` is timed on the
same inputs, against its own roofline (``c = 4``, as in ``bench_score.py``).

The machine's speed drifts (on a shared host, ``P_gemm`` measured twice a minute
apart has differed by 2x), so the rates are not measured once up front: each of
``R`` rounds measures ``P_gemm``, ``R_exp`` and every method once, in turn, and the
fractions use the best of the rounds on both sides (the highest rates, the shortest
times). Printed: those times, ``t_roof / t`` (the fraction of the roofline reached),
the range of the rates over the rounds, and the 1-minute load average before the run
(timings taken under load understate the fractions).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

import numdiff as nd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_score import T_BENCH, exp_rate, gemm_rate, median_time

SIZES = [(4096, 16384, 2), (4096, 16384, 64), (1024, 16384, 784)]
QUICK_SIZES = [(512, 4096, 2), (512, 4096, 64), (256, 4096, 784)]
# Flop count of each method, in units of M N d (module docstring).
COST = {"denoise": 4.0, "divergence": 4.0, "jvp": 8.0}


def bench(sizes, repeats):
    if hasattr(os, "getloadavg"):
        print(f"load average (1 min) = {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    header = (f"{'method':>10} {'M':>5} {'N':>6} {'d':>4} | {'time s':>8} {'t_roof s':>8} "
              f"{'roof frac':>9} | {'P_gemm GF/s':>13} {'R_exp Gexp/s':>12}")
    print(header)
    print("-" * len(header))
    schedule = nd.OU()
    alpha, sigma2 = float(schedule.alpha(T_BENCH)), float(schedule.sigma2(T_BENCH))
    rows = []
    for m, n, d in sizes:
        rng = np.random.default_rng(1)
        data = rng.standard_normal((n, d))
        x = alpha * data[rng.integers(n, size=m)] + np.sqrt(sigma2) * rng.standard_normal((m, d))
        v = rng.standard_normal((m, d))
        f = nd.EmpiricalScore(data, schedule)
        f.divergence(T_BENCH, x[:8])  # compile outside the timing
        f.jvp(T_BENCH, x[:8], v[:8])
        f.denoise(T_BENCH, x[:8])
        calls = {
            "denoise": lambda f=f, x=x: f.denoise(T_BENCH, x),
            "divergence": lambda f=f, x=x: f.divergence(T_BENCH, x),
            "jvp": lambda f=f, x=x, v=v: f.jvp(T_BENCH, x, v),
        }
        p_gemm, r_exp = [], []
        times = {name: [] for name in calls}
        for _ in range(repeats):
            p_gemm.append(gemm_rate(repeats=1))
            r_exp.append(exp_rate(repeats=1)[0])
            for name, call in calls.items():
                times[name].append(median_time(call, 1))
        p_best, r_best = max(p_gemm), max(r_exp)
        rates = (f"{min(p_gemm) / 1e9:5.0f}-{p_best / 1e9:<5.0f}  "
                 f"{min(r_exp) / 1e9:5.2f}-{r_best / 1e9:<5.2f}")
        for name in calls:
            t = min(times[name])
            t_roof = COST[name] * m * n * d / p_best + m * n / r_best
            rows.append((name, m, n, d, t, t_roof, t_roof / t))
            print(f"{name:>10} {m:>5} {n:>6} {d:>4} | {t:>8.4f} {t_roof:>8.4f} "
                  f"{t_roof / t:>9.2f} | {rates}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (default 5)")
    args = parser.parse_args(argv)
    bench(QUICK_SIZES if args.quick else SIZES, args.repeats)


if __name__ == "__main__":
    main()
