"""Fused direct-difference kernels of the GPU backend, for small dimension.

The CPU kernel's algorithm (:mod:`numdiff._kernels.direct`) on a grid of
``(query blocks) x (data splits)``: each thread owns one query and walks one split
of the data, which the block stages through shared memory ``THREADS`` points at a
time. Two passes:

1. :func:`nearest_kernel`: per (query, split), the nearest scaled data point;
   the caller takes the first minimum over splits (the CPU's first-of-ties).
2. :func:`moments_kernel`: per (query, split), the online ``(max, sum, weighted
   sum of x_k - x_r)`` of the relative logits ``e_k = coef dx_k . (2u - a dx_k)``,
   with ``u = scale (x - alpha x_r)`` compensated. The caller merges the splits
   (docs/numerics.md#online-merge); no ``M x N`` array exists.

Each split is reduced sequentially in data order by one thread, so the result
does not depend on the launch configuration beyond the split size.
Kernels are compiled once per dimension (local arrays need it as a constant).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from numba import config, cuda

from numdiff.gpu._runtime import cuda_kernel, exact_residual

# Queries per block (one per thread) and data points staged per shared-memory tile;
# fewer in the simulator, which runs each thread as a Python thread.
THREADS = 8 if config.ENABLE_CUDASIM else 128
# Largest dimension of these kernels: their shared tile is ``d x THREADS`` floats
# (32 KiB at d = 32) and each thread keeps four d-vectors in registers.
MAX_DIM = 32
_BIGGEST = float(np.finfo(np.float64).max)


@cache
def nearest_kernel(dim):
    """Kernel ``(x, a_s, scale, data_t, per_split, best_out, idx_out)``.

    For query ``m`` and split ``s`` (data ``s * per_split ..``), the smallest
    ``|scale x_m - a_s x_k|^2`` (``a_s = scale * alpha``) and its first index, into
    ``best_out[m, s]`` and ``idx_out[m, s]``.
    """
    from numba import float64

    threads = THREADS

    def kernel(x, a_s, scale, data_t, per_split, best_out, idx_out):
        tid = cuda.threadIdx.x
        m = cuda.blockIdx.x * threads + tid
        split = cuda.blockIdx.y
        tile = cuda.shared.array((dim, threads), float64)
        xm = cuda.local.array(dim, float64)
        n_data = data_t.shape[1]
        active = m < x.shape[0]
        a = 0.0
        if active:
            s = scale[m]
            a = a_s[m]
            for j in range(dim):
                xm[j] = x[m, j] * s
        lo = split * per_split
        # Comparisons, not the builtins min/max: Numba's CUDA target cannot type those
        # here (tests/numdiff/gpu_compile_check.py).
        hi = n_data if lo + per_split > n_data else lo + per_split  # noqa: FURB136
        best = math.inf
        best_k = lo
        for start in range(lo, hi, threads):
            cuda.syncthreads()
            if start + tid < hi:
                for j in range(dim):
                    tile[j, tid] = data_t[j, start + tid]
            cuda.syncthreads()
            if active:
                for c in range(threads if hi - start > threads else hi - start):  # noqa: FURB136
                    dist = 0.0
                    for j in range(dim):
                        diff = xm[j] - a * tile[j, c]
                        dist += diff * diff
                    if dist < best:
                        best = dist
                        best_k = start + c
        if active:
            best_out[m, split] = best
            idx_out[m, split] = best_k

    return cuda_kernel(kernel)


@cache
def moments_kernel(dim):
    """Kernel ``(x, ref, alpha, scale, coef, data, data_t, per_split, part_max,
    part_sum, part_acc)``.

    For query ``m`` relative to its reference point ``ref[m]`` and split ``s``:
    ``part_max[m, s]`` and ``part_sum[m, s]`` (``max e_k`` and ``sum exp(e_k -
    max)``) and ``part_acc[m, s, :]`` (``sum exp(e_k - max) (x_k - x_r)``).
    """
    residual = exact_residual()
    from numba import float64

    threads = THREADS
    biggest = _BIGGEST

    def kernel(x, ref, alpha, scale, coef, data, data_t, per_split, part_max, part_sum, part_acc):
        tid = cuda.threadIdx.x
        m = cuda.blockIdx.x * threads + tid
        split = cuda.blockIdx.y
        tile = cuda.shared.array((dim, threads), float64)
        xr = cuda.local.array(dim, float64)
        two_u = cuda.local.array(dim, float64)
        dx = cuda.local.array(dim, float64)
        acc = cuda.local.array(dim, float64)
        n_data = data.shape[0]
        active = m < x.shape[0]
        a_s = 0.0
        c = 0.0
        if active:
            s = scale[m]
            a_s = alpha[m] * s
            c = coef[m]
            r = ref[m]
            for j in range(dim):
                xr[j] = data[r, j]
                two_u[j] = 2.0 * residual(x[m, j] * s, a_s, xr[j])
                acc[j] = 0.0
        run_max = -math.inf
        run_sum = 0.0
        lo = split * per_split
        hi = n_data if lo + per_split > n_data else lo + per_split  # noqa: FURB136
        for start in range(lo, hi, threads):
            cuda.syncthreads()
            if start + tid < hi:
                for j in range(dim):
                    tile[j, tid] = data_t[j, start + tid]
            cuda.syncthreads()
            if active:
                for col in range(threads if hi - start > threads else hi - start):  # noqa: FURB136
                    e = 0.0
                    for j in range(dim):
                        diff = tile[j, col] - xr[j]
                        dx[j] = diff
                        e += diff * (two_u[j] - a_s * diff)
                    e *= c
                    if e > biggest:  # noqa: PLR1730
                        e = biggest
                    if e > run_max:
                        # exp(-inf) = 0 empties the (empty) sums on the first point.
                        shrink = math.exp(run_max - e)
                        run_sum *= shrink
                        for j in range(dim):
                            acc[j] *= shrink
                        run_max = e
                    # A logit of -inf (beyond the float range) has weight exactly 0.
                    p = math.exp(e - run_max) if e > -math.inf else 0.0
                    run_sum += p
                    for j in range(dim):
                        acc[j] += p * dx[j]
        if active:
            part_max[m, split] = run_max
            part_sum[m, split] = run_sum
            for j in range(dim):
                part_acc[m, split, j] = acc[j]

    return cuda_kernel(kernel)
