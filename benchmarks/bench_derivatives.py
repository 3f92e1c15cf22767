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
matrix products; the roofline is the same machine bound. Printed: the median time
over repeats, ``t_roof / t`` (the fraction of the roofline reached), and the time of
``denoise`` on the same inputs for comparison.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import numdiff as nd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_score import T_BENCH, exp_rate, gemm_rate, median_time

SIZES = [(4096, 16384, 2), (4096, 16384, 64), (1024, 16384, 784)]
QUICK_SIZES = [(512, 4096, 2), (512, 4096, 64), (256, 4096, 784)]
# Flop count of each method, in units of M N d (module docstring).
COST = {"divergence": 4.0, "jvp": 8.0}


def bench(sizes, repeats):
    p_gemm = gemm_rate()
    r_exp, cores = exp_rate()
    print(f"P_gemm = {p_gemm / 1e9:.1f} GFLOP/s   R_exp = {r_exp / 1e9:.2f} Gexp/s "
          f"({cores} threads)   measured now")
    header = (f"{'method':>10} {'M':>5} {'N':>6} {'d':>4} | {'time s':>8} {'t_roof s':>8} "
              f"{'roof frac':>9} | {'denoise s':>9}")
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
        t_den = median_time(lambda f=f, x=x: f.denoise(T_BENCH, x), repeats)
        calls = {
            "divergence": lambda f=f, x=x: f.divergence(T_BENCH, x),
            "jvp": lambda f=f, x=x, v=v: f.jvp(T_BENCH, x, v),
        }
        for name, call in calls.items():
            t = median_time(call, repeats)
            t_roof = COST[name] * m * n * d / p_gemm + m * n / r_exp
            rows.append((name, m, n, d, t, t_roof, t_roof / t))
            print(f"{name:>10} {m:>5} {n:>6} {d:>4} | {t:>8.4f} {t_roof:>8.4f} "
                  f"{t_roof / t:>9.2f} | {t_den:>9.4f}")
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    bench(QUICK_SIZES if args.quick else SIZES, args.repeats)


if __name__ == "__main__":
    main()
