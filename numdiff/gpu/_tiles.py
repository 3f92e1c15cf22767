"""Row kernel of the GPU's matrix-multiply path (large ``d``), and the exact residual.

The cross term ``x . y_k`` of a (rows x columns) tile comes from cuBLAS; with
centred data ``y_k`` the logits are ``g_k = (alpha / sigma2) (x . y_k - alpha
|y_k|^2 / 2)``, as in :mod:`numdiff._kernels.tiles`. One block per row turns them
into weights and merges the tile into the row's running ``(max, sum, acc)``:

* unrefined rows: ``tile`` receives ``exp(g_k - max)`` and the caller adds ``tile
  @ y`` to ``acc`` (a second cuBLAS product), after this kernel has rescaled
  ``acc`` to the new max;
* refined rows (rounding bound above ``LOGIT_TOL``): the logits are taken
  relative to the reference point ``x_r`` (nearest by the same cross term), every
  entry within ``window`` of it is recomputed by direct differences of the raw
  data, ``e_k = (alpha / (2 sigma2)) dx_k . (2u - alpha dx_k)``, the others get
  weight 0 (``exp(-window)`` with ``window >= 60`` nats: below ``N e^-60`` of the sum),
  and the block adds ``sum_k exp(e_k - max) (x_k - x_r)`` to ``acc`` itself, by
  direct differences; their tile row is left 0, so the product adds nothing.

Entries to recompute are compacted per chunk of ``ROW_THREADS`` columns into
shared memory, then each is done by the whole block (threads over coordinates):
coalesced reads, and no list can overflow.
"""

from __future__ import annotations

import math
from functools import cache

from numba import config, cuda

from numdiff.gpu._runtime import cuda_device, cuda_kernel, exact_residual, runtime

# Threads per row block; a power of two (tree reductions). Fewer in the simulator,
# which runs each thread as a Python thread.
ROW_THREADS = 8 if config.ENABLE_CUDASIM else 256
# Threads per block of the elementwise residual kernel.
_RESIDUAL_THREADS = 256


@cache
def _block_reducers():
    """Device functions ``block_sum(red, value, tid)`` and ``block_max(...)`` over the
    ``ROW_THREADS`` threads of a block, through the shared array ``red``."""
    threads = ROW_THREADS

    def block_sum(red, value, tid):
        red[tid] = value
        cuda.syncthreads()
        step = threads // 2
        while step > 0:
            if tid < step:
                red[tid] += red[tid + step]
            cuda.syncthreads()
            step //= 2
        total = red[0]
        cuda.syncthreads()  # red is reused by the next reduction
        return total

    def block_max(red, value, tid):
        red[tid] = value
        cuda.syncthreads()
        step = threads // 2
        while step > 0:
            if tid < step and red[tid + step] > red[tid]:
                red[tid] = red[tid + step]
            cuda.syncthreads()
            step //= 2
        top = red[0]
        cuda.syncthreads()
        return top

    return cuda_device(block_sum), cuda_device(block_max)


@cache
def tile_kernel():
    """Kernel ``(tile, width, offset, alpha, coef2, sq_norms, refine, ref_logit,
    ref_point, u, data, window, run_max, run_sum, acc)``, launched with one block of
    ``ROW_THREADS`` threads per row.

    ``tile (R, >= width)``: its first ``width`` columns hold ``x . y_k`` for the data
    points ``offset .. offset + width`` on entry and their weights on exit;
    ``coef2 = alpha / sigma2``; ``refine (R,)`` uint8; ``ref_logit``,
    ``ref_point (R, d)``, ``u = x - alpha x_r (R, d)`` and ``window`` are read for
    refined rows; ``data (N, d)`` the raw points, ``sq_norms (N,)`` their centred
    squared norms (whole arrays, so that the caller converts every argument once,
    not per tile: a launch's argument conversion costs more than a tile's work at
    moderate ``d``); ``run_max``, ``run_sum (R,)`` and ``acc (R, d)`` are updated.
    """
    block_sum, block_max = _block_reducers()
    from numba import float64, int32

    threads = ROW_THREADS

    def kernel(tile, width, offset, alpha, coef2, sq_norms, refine, ref_logit, ref_point, u,
               data, window, run_max, run_sum, acc):
        i = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        red = cuda.shared.array(threads, float64)
        found = cuda.shared.array(threads, int32)
        count = cuda.shared.array(1, int32)
        n_cols = width
        dim = data.shape[1]
        a = alpha[i]
        c2 = coef2[i]
        refined = refine[i] != 0
        local_max = -math.inf
        for k in range(tid, n_cols, threads):
            g = c2 * (tile[i, k] - 0.5 * a * sq_norms[offset + k])
            tile[i, k] = g
            if g > local_max:  # noqa: PLR1730
                local_max = g
        if refined:
            # Relative to the reference; the window's entries exactly, the rest 0.
            low = ref_logit[i] - window[i]
            local_max = -math.inf
            for start in range(0, n_cols, threads):
                k = start + tid
                if tid == 0:
                    count[0] = 0
                cuda.syncthreads()
                if k < n_cols:
                    if tile[i, k] >= low:
                        found[cuda.atomic.add(count, 0, 1)] = k
                    else:
                        tile[i, k] = -math.inf
                cuda.syncthreads()
                for q in range(count[0]):
                    kk = found[q]
                    part = 0.0
                    for j in range(tid, dim, threads):
                        diff = data[offset + kk, j] - ref_point[i, j]
                        part += diff * (2.0 * u[i, j] - a * diff)
                    total = block_sum(red, part, tid)
                    if tid == 0:
                        tile[i, kk] = 0.5 * c2 * total
                cuda.syncthreads()
                if k < n_cols and tile[i, k] > local_max:
                    local_max = tile[i, k]
        top = block_max(red, local_max, tid)
        old = run_max[i]
        new = top if top > old else old  # noqa: FURB136
        # Nothing merged yet (all weights 0 so far, and in this tile): keep the sums.
        shrink = math.exp(old - new) if new > -math.inf else 1.0
        part = 0.0
        for k in range(tid, n_cols, threads):
            g = tile[i, k]
            p = math.exp(g - new) if g > -math.inf else 0.0
            tile[i, k] = p
            part += p
        total = block_sum(red, part, tid)
        for j in range(tid, dim, threads):
            acc[i, j] *= shrink
        if refined:
            for start in range(0, n_cols, threads):
                k = start + tid
                if tid == 0:
                    count[0] = 0
                cuda.syncthreads()
                if k < n_cols and tile[i, k] != 0.0:
                    found[cuda.atomic.add(count, 0, 1)] = k
                cuda.syncthreads()
                for q in range(count[0]):
                    kk = found[q]
                    p = tile[i, kk]
                    for j in range(tid, dim, threads):
                        acc[i, j] += p * (data[offset + kk, j] - ref_point[i, j])
                cuda.syncthreads()
                if k < n_cols:
                    tile[i, k] = 0.0
        if tid == 0:
            run_sum[i] = run_sum[i] * shrink + total
            run_max[i] = new

    return cuda_kernel(kernel)


@cache
def residual_kernel():
    """Kernel ``(x, a_s, scale, ref_point, out)``: ``out[m, j] = scale[m] x[m, j] -
    a_s[m] ref_point[m, j]``, compensated (one thread per entry, 1-D grid)."""
    residual = exact_residual()

    def kernel(x, a_s, scale, ref_point, out):
        n = cuda.grid(1)
        dim = x.shape[1]
        if n < x.shape[0] * dim:
            m = n // dim
            j = n - m * dim
            out[m, j] = residual(x[m, j] * scale[m], a_s[m], ref_point[m, j])

    return cuda_kernel(kernel)


def launch_residual(x, a_s, scale, ref_point, out):
    """Run :func:`residual_kernel` over all entries of ``x (M, d)``."""
    rt = runtime()
    total = x.shape[0] * x.shape[1]
    blocks = max(1, -(-total // _RESIDUAL_THREADS))
    args = [rt.kernel_arg(a) for a in (x, a_s, scale, ref_point, out)]
    residual_kernel()[blocks, _RESIDUAL_THREADS](*args)
