"""GPU benchmark of the equivariant local score (ELS) at MNIST size.

Prints, in one run on one GPU, for ``k`` in 5, 7, 9 (MNIST-5k: ``N = 5000`` images
of 28 x 28, valid training patches, ``M`` noisy images at ``t = 0.5`` of OU):

* the median time of ``EquivariantLocalScore(..., device="cuda").denoise`` (the
  whole call: patches cut on the host, moments on the GPU, results back), and its
  fraction of the card's roofline ``4 Q K d / P_dgemm + Q K / R_exp`` with
  ``Q = M H W`` query patches, ``K = N (H - k + 1)(W - k + 1)`` keys, ``d = k^2``
  (rates measured in the same run by ``bench_gpu.py``'s functions);
* the CPU model's time on the first ``CPU_IMAGES`` images, scaled to ``M``
  (the pair count is linear in ``M``), and the speed-up;
* a torch float64 reference of the same softmax (logits by one matrix product,
  ``softmax``, the weighted centre pixels) over query chunks, its time and ratio;
* the largest difference of the GPU result from the CPU model's and from torch's,
  relative to ``max |D|``.

Run through ``benchmarks/gpu/run.sh``; ``--quick`` uses ``N = 500`` and ``M = 32``.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from bench_gpu import dgemm_rate, exp_rate, median_time

import numdiff as nd
from numdiff.local import EquivariantLocalScore
from numdiff.local.patches import all_patches

CPU_IMAGES = 2
T = 0.5


def torch_els(images, x_images, k, alpha, sigma2, budget=2e9):
    """The ELS denoiser in torch float64 on the GPU: valid training patches as keys,
    circularly padded query patches, centre pixel as value; shape (M, H, W, C).
    Query chunks keep each ``(chunk, K)`` logit matrix within ``budget`` bytes."""
    import torch

    _, h, w, c = images.shape
    r = k // 2
    keys = all_patches(images, k, "zero")[:, r : h - r, r : w - r].reshape(-1, k * k * c)
    queries = all_patches(x_images, k, "circular").reshape(-1, k * k * c)
    centre = (r * k + r) * c + np.arange(c)
    keys_t = torch.as_tensor(keys, device="cuda", dtype=torch.float64)
    values_t = keys_t[:, torch.as_tensor(centre, device="cuda")]
    sq = (keys_t * keys_t).sum(dim=1)
    q_t = torch.as_tensor(queries, device="cuda", dtype=torch.float64)
    chunk = max(1, int(budget / (8 * keys.shape[0])))

    def run():
        out = []
        for lo in range(0, q_t.shape[0], chunk):
            q = q_t[lo : lo + chunk]
            logits = (2.0 * alpha * (q @ keys_t.T) - alpha**2 * sq) / (2.0 * sigma2)
            out.append(torch.softmax(logits, dim=1) @ values_t)
        return torch.cat(out)

    def timed():
        run()
        torch.cuda.synchronize()

    return median_time(timed, 3), run().cpu().numpy().reshape(x_images.shape)


def case(images, k, m, p_dgemm, r_exp, rng):
    n, h, w, c = images.shape
    sched = nd.OU()
    alpha, sigma2 = float(sched.alpha(T)), float(sched.sigma2(T))
    x = (alpha * images[rng.integers(n, size=m)].reshape(m, -1)
         + math.sqrt(sigma2) * rng.standard_normal((m, h * w * c)))
    gpu = EquivariantLocalScore(images, sched, k, device="cuda")
    cpu = EquivariantLocalScore(images, sched, k)
    gpu.engines(k)  # the key set goes to the GPU once, outside the timing
    ours = median_time(lambda: gpu.denoise(T, x), 3)
    den = gpu.denoise(T, x)
    start = time.perf_counter()
    cpu_den = cpu.denoise(T, x[:CPU_IMAGES])
    cpu_t = (time.perf_counter() - start) * m / CPU_IMAGES
    scale = np.abs(cpu_den).max()
    agree = float(np.abs(den[:CPU_IMAGES] - cpu_den).max() / scale)
    q, keys, dim = m * h * w, n * (h - k + 1) * (w - k + 1), k * k * c
    roof = 4.0 * q * keys * dim / p_dgemm + q * keys / r_exp
    try:
        torch_t, torch_den = torch_els(images, x.reshape(m, h, w, c), k, alpha, sigma2)
        torch_agree = float(np.abs(torch_den.reshape(m, -1) - den).max() / scale)
    except Exception as err:  # noqa: BLE001 - the reference may not fit; say so
        torch_t, torch_agree = math.nan, math.nan
        print(f"  torch reference failed: {err!r}")
    print(f"k={k} Q={q:7d} K={keys:8d} d={dim:3d}  GPU {ours:8.3f} s  roofline {roof:8.3f} s "
          f"fraction {roof / ours:5.3f}  CPU (x{m}/{CPU_IMAGES}) {cpu_t:8.1f} s "
          f"(x{cpu_t / ours:6.1f})  |GPU-CPU|/max|D| {agree:.1e}  torch {torch_t:8.3f} s "
          f"(x{torch_t / ours:5.2f} slower, |diff| {torch_agree:.1e})", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 500, M = 32")
    args = parser.parse_args(argv)
    images = nd.data.mnist5k().images
    m = 256
    if args.quick:
        images, m = images[:500], 32
    p_dgemm, r_exp = dgemm_rate(), exp_rate()
    print(f"ELS at MNIST size: N = {images.shape[0]}, M = {m} images; "
          f"P_dgemm = {p_dgemm / 1e12:.2f} TFLOP/s, R_exp = {r_exp / 1e9:.1f} Gexp/s")
    rng = np.random.default_rng(0)
    for k in (5, 7, 9):
        case(images, k, m, p_dgemm, r_exp, rng)


if __name__ == "__main__":
    main()
