"""The equivariant local score (ELS) against this machine's roofline, and pruning.

    python benchmarks/bench_local.py [--quick] [--repeats R] [--k 5 7 9] [--no-small-noise]

An ELS call at patch size ``k`` is ``Q = M H W`` query patches against ``K = N P``
training patches (``P = (H - k + 1)(W - k + 1)``, valid training patches) in
dimension ``d = k^2 C``: the engines' softmax average, whose bound on this machine
is ``t_roof = 4 Q K d / P_gemm + Q K / R_exp`` with both rates measured in the same
run (``bench_score.py``). Printed per case: the median time of ``denoise`` over
the repeats, ``t_roof`` and their ratio. Data: MNIST-5k (28 x 28, ``N = 5000``;
``--quick``: the first 200), ``M`` images of noise at ``t = T_BENCH`` (``sigma2 =
0.63``, no refinement, nothing pruned).

Pruning: the same ``denoise`` at ``sigma2 = 1e-3`` on images near the data, with
``pruning = "auto"`` and ``"off"``, interleaved; their ratio (``> 1``: pruning
helps). On MNIST this part is slow, pruned or dense: at ``sigma2 = 1e-3`` the BLAS
rows are refined about their nearest key, and every key near the top, exact ties
included, is recomputed by direct differences. MNIST patches repeat: of the
576000 ``k = 5`` patches of the first 1000 images, 255348 are all zero
(background) and 291581 are distinct. On those images (2 queries, one run, loaded
machine) a dense call took 8.96 s at ``t = 0.5`` and 50.7 s at ``sigma2 = 1e-3``;
on the distinct patches alone 4.44 s and 18.6 s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import numdiff as nd
from numdiff.local import EquivariantLocalScore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_score import T_BENCH, exp_rate, gemm_rate, median_time

SMALL_NOISE_T = 5e-4  # OU: sigma2 = 1e-3


def interleaved(calls, repeats):
    """Median seconds of each of ``calls`` (name -> callable), run in turn."""
    times = {name: [] for name in calls}
    for r in range(repeats):
        for name in (list(calls) if r % 2 == 0 else list(calls)[::-1]):
            start = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(v)) for name, v in times.items()}


def run_case(images, k, n_query, repeats, p_gemm, r_exp, rng, small_noise=True):
    schedule = nd.OU()
    model = EquivariantLocalScore(images, schedule, k)
    n, h, w, c = images.shape
    model.engines(k)  # the key set is built once per model, outside the timing
    start = rng.integers(0, n, n_query)
    noisy = (
        schedule.alpha(T_BENCH) * images[start].reshape(n_query, -1)
        + np.sqrt(schedule.sigma2(T_BENCH)) * rng.standard_normal((n_query, h * w * c)))
    seconds = median_time(lambda: model.denoise(T_BENCH, noisy), repeats)
    q, keys, dim = n_query * h * w, n * (h - k + 1) * (w - k + 1), k * k * c
    t_roof = 4.0 * q * keys * dim / p_gemm + q * keys / r_exp
    near = (schedule.alpha(SMALL_NOISE_T) * images[start].reshape(n_query, -1)
            + np.sqrt(schedule.sigma2(SMALL_NOISE_T)) * rng.standard_normal((n_query, h * w * c)))

    def call(mode):
        def run():
            model.pruning = mode
            model.denoise(SMALL_NOISE_T, near)
        return run

    if not small_noise:
        return q, keys, dim, seconds, t_roof, {"auto": np.nan, "off": np.nan}
    pruned = interleaved({"auto": call("auto"), "off": call("off")}, repeats)
    return q, keys, dim, seconds, t_roof, pruned


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 200 training images")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, nargs="+", default=[5, 7, 9], help="patch sizes")
    parser.add_argument("--no-small-noise", action="store_true",
                        help="skip the pruning comparison at sigma2 = 1e-3 (the slow part)")
    args = parser.parse_args(argv)
    images = nd.data.mnist5k().images
    if args.quick:
        images = images[:200]
    n_query = 2 if args.quick else 4
    p_gemm, r_exp = gemm_rate(), exp_rate()[0]
    print(f"P_gemm = {p_gemm / 1e9:.1f} GFLOP/s   R_exp = {r_exp / 1e9:.2f} Gexp/s   measured now")
    print(f"ELS on MNIST (N = {images.shape[0]}, 28 x 28), M = {n_query} images")
    print(f"{'k':>3} {'Q':>7} {'K':>9} {'d':>4} | {'denoise s':>9} {'t_roof s':>9} {'frac':>6} |"
          f" {'pruned s':>9} {'dense s':>9} {'gain':>6}")
    rng = np.random.default_rng(0)
    for k in args.k:
        q, keys, dim, seconds, t_roof, pruned = run_case(images, k, n_query, args.repeats,
                                                         p_gemm, r_exp, rng,
                                                         not args.no_small_noise)
        print(f"{k:>3} {q:>7} {keys:>9} {dim:>4} | {seconds:9.3f} {t_roof:9.3f} "
              f"{t_roof / seconds:6.2f} | {pruned['auto']:9.3f} {pruned['off']:9.3f} "
              f"{pruned['off'] / pruned['auto']:6.2f}", flush=True)


if __name__ == "__main__":
    main()
