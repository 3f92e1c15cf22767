"""Fused direct-difference kernel for the mixture softmax, for small dimension.

For each query ``x`` at ``(alpha, sigma2)`` and data ``x_k`` it computes

    logsum = log sum_k exp(-|x - alpha x_k|^2 / (2 sigma2))
    D      = sum_k w_k x_k,   w = softmax_k(-|x - alpha x_k|^2 / (2 sigma2))

Accuracy: the logits are taken relative to the nearest data point ``x_r``
(found in a first pass), ``e_k = alpha dx_k . (2u - alpha dx_k) / (2 sigma2)``
with ``dx_k = x_k - x_r`` and ``u = x - alpha x_r`` (compensated, see
:mod:`numdiff._kernels.exact`), and ``D = x_r + sum w dx``.
The rounding error of ``e_k`` is then ``~ eps alpha |dx_k| (|u| + alpha |dx_k|) /
sigma2``: small both for queries far from the data (large ``|x|``) and for tiny
``sigma2`` near a data point, where the plain ``|x - alpha x_k|^2`` form loses
``eps |u|^2 / sigma2`` and the BLAS expansion loses ``eps |x_k|^2 / sigma2``.

Stability: blocks of ``block`` data points are reduced to ``(max, sum, weighted
sum)`` and merged online (DESIGN.md §4); memory per thread is O(block + d).
Each query is reduced sequentially, so results do not depend on thread count.
"""

import numpy as np
from numba import prange

from numdiff._kernels.exact import residual
from numdiff._kernels.jit import jit, jit_parallel
from numdiff._kernels.minmax import fast_max, fast_min
from numdiff._kernels.vexp import exp_shifted_sum

QUERY_GROUP = 16


@jit_parallel
def mixture_moments_direct(x, alpha, sigma2, data, data_t, block, denoised, logsum):
    """Fill ``denoised (M, d)`` and ``logsum (M,)``; ``data_t`` is ``data.T`` (contiguous)."""
    n_query, dim = x.shape
    # Queries go to threads in groups so that scratch is allocated once per
    # group: per-query allocation dominated at small N (76 ns per pair at N = 4).
    n_groups = (n_query + QUERY_GROUP - 1) // QUERY_GROUP
    for g in prange(n_groups):
        buf = np.empty(block)
        bits = np.empty(block, dtype=np.int64)
        u = np.empty(dim)
        acc = np.empty(dim)
        for m in range(g * QUERY_GROUP, min(n_query, (g + 1) * QUERY_GROUP)):
            _moments_one(x, m, alpha[m], sigma2[m], data, data_t, buf, bits, u, acc, denoised, logsum)


@jit
def _moments_one(x, m, a, sigma2, data, data_t, buf, bits, u, acc, denoised, logsum):
    """One query of :func:`mixture_moments_direct`, with caller-owned scratch."""
    dim = x.shape[1]
    n_data = data.shape[0]
    block = buf.shape[0]
    half_prec = 0.5 / sigma2
    acc[:] = 0.0
    ref = _nearest_scaled(x[m], a, data_t, buf)
    for j in range(dim):
        u[j] = residual(x[m, j], a, data[ref, j])
    run_max = -np.inf
    run_sum = 0.0
    for start in range(0, n_data, block):
        nb = min(block, n_data - start)
        buf[:nb] = 0.0
        for j in range(dim):
            two_u = 2.0 * u[j]
            ref_j = data[ref, j]
            row = data_t[j, start : start + nb]
            for k in range(nb):
                dx = row[k] - ref_j
                buf[k] += dx * (two_u - a * dx)
        coef = a * half_prec
        block_max = -np.inf
        for k in range(nb):
            buf[k] *= coef
            block_max = fast_max(block_max, buf[k])
        block_sum = exp_shifted_sum(buf, nb, block_max, bits)
        # Merge this block's (max, sum, weighted sum) into the running one.
        if block_max > run_max:
            shrink = np.exp(run_max - block_max)
            run_sum = run_sum * shrink + block_sum
            for j in range(dim):
                acc[j] *= shrink
            run_max = block_max
            grow = 1.0
        else:
            grow = np.exp(block_max - run_max)
            run_sum += grow * block_sum
        for j in range(dim):
            ref_j = data[ref, j]
            row = data_t[j, start : start + nb]
            s = 0.0
            for k in range(nb):
                s += buf[k] * (row[k] - ref_j)
            acc[j] += grow * s
    u2 = 0.0
    for j in range(dim):
        denoised[m, j] = data[ref, j] + acc[j] / run_sum
        u2 += u[j] * u[j]
    logsum[m] = run_max + np.log(run_sum) - u2 * half_prec


@jit_parallel
def knn_direct(x, data_t, block, idx_out, sq_dist_out):
    """The ``k = idx_out.shape[1]`` nearest data points of each query, by direct
    differences; fills ``idx_out (M, k)`` and squared distances, sorted, ties by index."""
    n_query, k = idx_out.shape
    dim, n_data = data_t.shape
    for m in prange(n_query):
        buf = np.empty(block)
        best = sq_dist_out[m]
        best_idx = idx_out[m]
        best[:] = np.inf
        best_idx[:] = 0
        for start in range(0, n_data, block):
            nb = min(block, n_data - start)
            buf[:nb] = 0.0
            for j in range(dim):
                row = data_t[j, start : start + nb]
                xj = x[m, j]
                for i in range(nb):
                    diff = xj - row[i]
                    buf[i] += diff * diff
            block_best = np.inf
            for i in range(nb):
                block_best = fast_min(block_best, buf[i])
            if block_best >= best[k - 1]:
                continue
            for i in range(nb):
                value = buf[i]
                if value < best[k - 1]:
                    pos = k - 1
                    while pos > 0 and best[pos - 1] > value:
                        best[pos] = best[pos - 1]
                        best_idx[pos] = best_idx[pos - 1]
                        pos -= 1
                    best[pos] = value
                    best_idx[pos] = start + i


@jit
def _nearest_scaled(xm, a, data_t, buf):
    dim, n_data = data_t.shape
    block = buf.shape[0]
    best = np.inf
    best_k = 0
    for start in range(0, n_data, block):
        nb = min(block, n_data - start)
        buf[:nb] = 0.0
        for j in range(dim):
            row = data_t[j, start : start + nb]
            xj = xm[j]
            for k in range(nb):
                diff = xj - a * row[k]
                buf[k] += diff * diff
        # A min reduction vectorises; locating it afterwards is a short scan.
        block_best = np.inf
        for k in range(nb):
            block_best = fast_min(block_best, buf[k])
        if block_best < best:
            best = block_best
            for k in range(nb):
                if buf[k] == block_best:
                    best_k = start + k
                    break
    return best_k
