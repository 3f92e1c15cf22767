"""The equivariant local score (ELS) against this machine's roofline, and pruning.

    python benchmarks/bench_local.py [--quick] [--repeats R] [--k 5 7 9] [--no-small-noise]

An ELS call at patch size ``k`` is ``Q = M H W`` query patches against ``K = N P``
training patches (``P = (H - k + 1)(W - k + 1)``, valid training patches) in
dimension ``d = k^2 C``: the engines' softmax average, whose bound on this machine
is ``t_roof = 4 Q K d / P_gemm + Q K / R_exp`` with both rates measured in the same
run (``bench_score.py``). Data: MNIST-5k (28 x 28, ``N = 5000``; ``--quick``: the
first 200), ``M`` images of noise at ``t = T_BENCH`` (``sigma2 = 0.63``, no
refinement, nothing pruned).

MNIST patches repeat (44 % of the ``k = 5`` patches are all zero), and the models
merge repeated keys into one with its count (``merge_repeats``). Printed per case,
as medians of interleaved repeats: ``denoise`` on all ``K`` patches
(``merge_repeats = False``) and its roofline fraction ``t_roof(K) / t``; ``denoise``
on the ``K_u`` distinct patches, the speed-up, and the engine's own fraction
``t_roof(K_u) / t`` against the keys it actually reads.

Small noise (``sigma2 = 1e-3``, images near the data, slow; off with
``--no-small-noise``): all patches with ``pruning = "auto"`` and ``"off"``, and
merged (which takes the pruned engine out), interleaved. At ``sigma2 = 1e-3`` the
BLAS rows are refined about their nearest key and every key near the top, exact
ties included, is recomputed by direct differences: ties are what pruning cannot
skip and merging removes.
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
from bench_score import T_BENCH, exp_rate, gemm_rate

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


def els(images, k, merge):
    """An ELS whose key set of size ``k`` is built (outside any timing)."""
    model = EquivariantLocalScore(images, nd.OU(), k)
    model.merge_repeats = merge
    model.engines(k)
    return model


def run_case(images, k, n_query, repeats, p_gemm, r_exp, rng, small_noise=True):
    """Times (medians) of one patch size; see the module docstring."""
    schedule = nd.OU()
    models = {"all": els(images, k, False), "merged": els(images, k, True)}
    n, h, w, c = images.shape
    start = rng.integers(0, n, n_query)

    def noisy(t):
        return (schedule.alpha(t) * images[start].reshape(n_query, -1)
                + np.sqrt(schedule.sigma2(t)) * rng.standard_normal((n_query, h * w * c)))

    def call(name, t, x, pruning="auto"):
        def run():
            models[name].pruning = pruning
            models[name].denoise(t, x)
        return run

    x = noisy(T_BENCH)
    dense = interleaved({name: call(name, T_BENCH, x) for name in models}, repeats)
    q, dim = n_query * h * w, k * k * c
    sizes = {"all": models["all"].engines(k).keys.n_data,
             "merged": models["merged"].engines(k).keys.n_data}
    roof = {name: 4.0 * q * size * dim / p_gemm + q * size / r_exp
            for name, size in sizes.items()}
    small = dict.fromkeys(["pruned", "off", "merged"], np.nan)
    if small_noise:
        near = noisy(SMALL_NOISE_T)
        small = interleaved({"pruned": call("all", SMALL_NOISE_T, near, "auto"),
                             "off": call("all", SMALL_NOISE_T, near, "off"),
                             "merged": call("merged", SMALL_NOISE_T, near)}, repeats)
    return q, sizes, dim, dense, roof, small


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
    print(f"{'k':>3} {'Q':>5} {'K':>8} {'K_u':>8} {'d':>3} | {'all s':>7} {'frac':>5} | "
          f"{'merged s':>8} {'speed-up':>8} {'frac':>5} | small noise: {'pruned s':>8} "
          f"{'dense s':>8} {'merged s':>8}")
    rng = np.random.default_rng(0)
    for k in args.k:
        q, sizes, dim, dense, roof, small = run_case(images, k, n_query, args.repeats, p_gemm,
                                                     r_exp, rng, not args.no_small_noise)
        print(f"{k:>3} {q:>5} {sizes['all']:>8} {sizes['merged']:>8} {dim:>3} | "
              f"{dense['all']:7.3f} {roof['all'] / dense['all']:5.2f} | {dense['merged']:8.3f} "
              f"{dense['all'] / dense['merged']:8.2f} {roof['merged'] / dense['merged']:5.2f} | "
              f"{'':13}{small['pruned']:8.3f} {small['off']:8.3f} {small['merged']:8.3f}",
              flush=True)


if __name__ == "__main__":
    main()
