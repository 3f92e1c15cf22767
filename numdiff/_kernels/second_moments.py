"""Centred second moments of the posterior weights: the derivatives of the denoiser.

``grad_x D = (alpha / sigma2) Cov_w[x_k]`` (docs/numerics.md#derivatives). Writing
``tr Cov_w = E_w |x_k|^2 - |D|^2`` cancels catastrophically when one weight
dominates (the usual case at small ``sigma2``): both terms are about ``|x_r|^2``
while their difference is ``sum_{k != r} w_k |x_k - x_r|^2``. These kernels
instead keep, per query and per data block, the summary

    (max, sum, mean offset m_b, centred moment)
    m_b = sum_k e_k dx_k / sum_k e_k,   dx_k = x_k - x_r  (x_r the nearest point)
    M2  = sum_k e_k |dx_k - m_b|^2      (or the vector sum_k e_k (dx_k - m_b)((dx_k - m_b).v),
                                         or the matrix sum_k e_k (dx_k - m_b)(dx_k - m_b)^T)

with ``e_k`` the block's weights (``exp(logit)``, or ``exp(logit - max)`` in the
running-maximum merge: :mod:`numdiff._kernels.direct`, whose block pass also
gives the block's weighted offsets), the moment formed in a second pass
over the block (still in cache) about the block's own mean, and merge blocks with
the parallel-variance formula (Chan, Golub & LeVeque), after rescaling both to
the common maximum (a no-op with the fixed shift):

    S = S_a + S_b,   m = m_a + delta S_b / S,   delta = m_b - m_a,
    M2 = M2_a + M2_b + |delta|^2 S_a S_b / S   (vector: delta (delta.v); matrix: delta delta^T).

Every term is a sum of non-negative numbers (or, for the vector and matrix, of
products of centred offsets), so nothing cancels beyond the rounding of the
offsets themselves: the error is a few ``eps`` of ``sum_k w_k |x_k - x_r|^2``.

The logits are those of :mod:`numdiff._kernels.direct` (relative to the nearest
point, compensated residual, power-of-two scaling), reused from there.

The subtraction ``(x_k - x_r) - m_b`` goes through :func:`_diff`, compiled without
reassociation: with it, LLVM may hoist ``x_r + m_b`` out of the loop, whose
rounding (``eps |x_r|``) is the very cancellation these kernels avoid.
"""

import numpy as np

from numdiff._kernels.direct import (
    block_logits,
    capped_block,
    offset_sums,
    residual_at,
)
from numdiff._kernels.jit import jit, jit_exact
from numdiff._kernels.reference import largest_logit
from numdiff._kernels.threads import run_groups
from numdiff._kernels.vexp import exp_shifted_sum

QUERY_GROUP = 16
# What the merge accumulates besides (max, sum, mean).
MODE_TRACE = 0  # the scalar sum_k e_k |dx_k - m|^2
MODE_VECTOR = 1  # sum_k e_k (dx_k - m)((dx_k - m).v)
MODE_MATRIX = 2  # sum_k e_k (dx_k - m)(dx_k - m)^T
_BIGGEST = np.finfo(np.float64).max


@jit_exact
def _diff(a, b):
    """``a - b`` as one rounded operation that reassociation cannot fold."""
    return a - b


def centred_moments_direct(x, alpha, scale, coef, data, data_t, refs, block, v, mode, trace, vec,
                           mat):
    """Centred posterior second moments, by direct differences.

    Parameters
    ----------
    x : ndarray, shape (M, d)
    alpha, scale, coef : ndarray, shape (M,)
        As for :func:`numdiff._kernels.direct.mixture_moments_direct`.
    data, data_t : ndarray, shapes (N, d) and (d, N)
    refs : ndarray of int64, shape (M,)
        Each query's nearest point (:func:`numdiff._kernels.sweep.nearest_references`).
    block : int
        Data points per block of the merge.
    v : ndarray, shape (M, d)
        Tangents (read in ``MODE_VECTOR`` only; otherwise any ``(>= 1, d)`` array).
    mode : int
        ``MODE_TRACE``, ``MODE_VECTOR`` or ``MODE_MATRIX``.
    trace : ndarray, shape (M,)
        Out: ``tr Cov_w`` in ``MODE_TRACE`` and ``MODE_MATRIX``; 0 in ``MODE_VECTOR``
        (which skips that pass: its callers use only ``Cov_w v``).
    vec : ndarray, shape (M, d) or (1, d)
        Out in ``MODE_VECTOR``: ``Cov_w v``.
    mat : ndarray, shape (M, d, d) or (1, d, d)
        Out in ``MODE_MATRIX``: ``Cov_w``.
    """
    n_groups = (x.shape[0] + QUERY_GROUP - 1) // QUERY_GROUP
    run_groups(_centred_groups, n_groups, x.shape[0] * data.shape[0], x, alpha, scale, coef,
               data, data_t, refs, block, v, mode, trace, vec, mat)


@jit
def _centred_groups(lo, hi, x, alpha, scale, coef, data, data_t, refs, block, v, mode, trace,
                    vec, mat):
    """:func:`centred_moments_direct` for the query groups ``lo .. hi - 1``."""
    n_query, dim = x.shape
    for g in range(lo, hi):
        buf = np.empty(block)
        proj = np.empty(block)
        u = np.empty(dim)
        mean = np.empty(dim)
        mean_b = np.empty(dim)
        delta = np.empty(dim)
        acc = np.empty(dim)
        acc_b = np.empty(dim)
        cov = np.empty((dim, dim)) if mode == MODE_MATRIX else np.empty((1, 1))
        cov_b = np.empty((dim, dim)) if mode == MODE_MATRIX else np.empty((1, 1))
        for m in range(g * QUERY_GROUP, min(n_query, (g + 1) * QUERY_GROUP)):
            vm = v[m] if mode == MODE_VECTOR else v[0]
            a = alpha[m]
            s = scale[m]
            a_s = a * s
            ref = refs[m]
            residual_at(x[m], ref, a_s, s, data, u)
            run_max, run_sum, m2 = _merge_query(
                ref, u, a_s, coef[m], data, data_t, vm, mode, buf, proj,
                mean, mean_b, delta, acc, acc_b, cov, cov_b,
            )
            if run_max >= _BIGGEST:
                # As in direct._moments_one: the search by rounded distances picked a
                # point far below the largest logit; re-pick by the exact logits.
                ref = largest_logit(ref, u, a_s, data, data_t, buf)
                residual_at(x[m], ref, a_s, s, data, u)
                run_max, run_sum, m2 = _merge_query(
                    ref, u, a_s, coef[m], data, data_t, vm, mode, buf, proj,
                    mean, mean_b, delta, acc, acc_b, cov, cov_b,
                )
            trace[m] = m2 / run_sum if mode != MODE_VECTOR else 0.0
            if mode == MODE_VECTOR:
                for j in range(dim):
                    vec[m, j] = acc[j] / run_sum
            elif mode == MODE_MATRIX:
                for i in range(dim):
                    for j in range(dim):
                        mat[m, i, j] = cov[i, j] / run_sum


@jit
def _merge_query(
    ref, u, a_s, coef, data, data_t, v, mode, buf, proj, mean, mean_b, delta, acc, acc_b, cov,
    cov_b,
):
    """:func:`_merge_centred` unshifted, or with a running maximum when a logit
    exceeds ``LOGIT_CAP``."""
    # One call site with a variable flag: a literal True and a literal False would
    # each compile their own specialisation of _merge_centred.
    capped = True
    while True:
        run_max, run_sum, m2 = _merge_centred(
            ref, u, a_s, coef, data, data_t, v, mode, capped, buf, proj, mean, mean_b, delta,
            acc, acc_b, cov, cov_b,
        )
        if run_sum >= 0.0 or not capped:
            return run_max, run_sum, m2
        capped = False


@jit
def _merge_centred(
    ref, u, a_s, coef, data, data_t, v, mode, capped, buf, proj, mean, mean_b, delta, acc,
    acc_b, cov, cov_b,
):
    """Online ``(max, sum, mean, centred moment)`` over data blocks (module docstring).

    Returns ``(max, sum, M2)``; fills ``mean`` (the weighted mean of ``x_k - x_r``)
    and, by ``mode``, ``acc`` (``sum e_k (dx_k - m)((dx_k - m).v)``) or ``cov``,
    all relative to the returned ``max``. ``capped``: the weights are ``exp(logit)``
    (``max = 0``), and the sum returned is ``-1`` if a logit exceeds ``LOGIT_CAP``;
    otherwise each block is shifted by its maximum.
    """
    dim = u.shape[0]
    n_data = data.shape[0]
    block = buf.shape[0]
    run_max = -np.inf
    run_sum = 0.0
    m2 = 0.0
    mean[:] = 0.0
    acc[:] = 0.0
    cov[:, :] = 0.0
    for start in range(0, n_data, block):
        nb = min(block, n_data - start)
        mean_b[:] = 0.0
        if capped:
            block_max = 0.0
            block_sum = capped_block(ref, u, a_s, coef, data, data_t, start, nb, buf, mean_b)
            if block_sum < 0.0:
                return -np.inf, -1.0, 0.0
        else:
            block_max = block_logits(ref, u, a_s, coef, data, data_t, start, nb, buf)
            if block_max == -np.inf:
                continue  # every weight of this block is exactly 0
            block_sum = exp_shifted_sum(buf, nb, block_max)
            offset_sums(ref, data, data_t, start, nb, buf, 1.0, mean_b)
        if block_sum == 0.0:
            continue  # every weight flushed
        for j in range(dim):
            mean_b[j] /= block_sum
        m2_b = _block_moments(ref, data, data_t, start, nb, buf, v, mode, proj, mean_b, acc_b,
                              cov_b)
        # Chan's merge, both summaries rescaled to the common maximum.
        if block_max == run_max:
            fa = 1.0
            fb = 1.0
        else:
            new_max = max(run_max, block_max)
            fa = np.exp(run_max - new_max)
            fb = np.exp(block_max - new_max)
            run_max = new_max
        sa = run_sum * fa
        sb = block_sum * fb
        total = sa + sb
        cross = sa * (sb / total)
        dd = 0.0
        dv = 0.0
        for j in range(dim):
            delta[j] = mean_b[j] - mean[j]
            dd += delta[j] * delta[j]
            dv += delta[j] * v[j]
        m2 = m2 * fa + m2_b * fb + dd * cross
        if mode == MODE_VECTOR:
            for j in range(dim):
                acc[j] = acc[j] * fa + acc_b[j] * fb + delta[j] * (dv * cross)
        elif mode == MODE_MATRIX:
            for i in range(dim):
                for j in range(dim):
                    cov[i, j] = cov[i, j] * fa + cov_b[i, j] * fb + delta[i] * delta[j] * cross
        growth = sb / total
        for j in range(dim):
            mean[j] += delta[j] * growth
        run_sum = total
    return run_max, run_sum, m2


@jit
def _block_moments(ref, data, data_t, start, nb, w, v, mode, proj, mean_b, acc_b, cov_b):
    """One block's moment about its mean offset ``mean_b`` from ``x_r`` (the scalar is
    returned; ``acc_b`` / ``cov_b`` filled by ``mode``). ``w[:nb]`` are the block's
    weights."""
    dim = mean_b.shape[0]
    if dim == 2 and mode == MODE_VECTOR:
        acc_b[0], acc_b[1] = _projected_2d(w, data_t, start, nb, data[ref, 0], data[ref, 1],
                                           mean_b[0], mean_b[1], v[0], v[1])
        return 0.0
    if dim == 2 and mode == MODE_TRACE:
        return _centred_2d(w, data_t, start, nb, data[ref, 0], data[ref, 1], mean_b[0],
                           mean_b[1])
    # Sums of squares of centred offsets (the trace; not needed for the vector,
    # whose callers use only Cov_w v).
    m2_b = 0.0
    for j in range(dim if mode != MODE_VECTOR else 0):
        ref_j = data[ref, j]
        mj = mean_b[j]
        row = data_t[j, start : start + nb]
        total = 0.0
        for k in range(nb):
            c = _diff(row[k] - ref_j, mj)
            total += w[k] * c * c
        m2_b += total
    if mode == MODE_VECTOR:
        proj[:nb] = 0.0
        for j in range(dim):
            ref_j = data[ref, j]
            mj = mean_b[j]
            vj = v[j]
            row = data_t[j, start : start + nb]
            for k in range(nb):
                proj[k] += _diff(row[k] - ref_j, mj) * vj
        for k in range(nb):
            proj[k] *= w[k]
        # acc_b = sum_k (w_k (c_k . v)) c_k, c_k = dx_k - mean_b.
        for j in range(dim):
            ref_j = data[ref, j]
            mj = mean_b[j]
            row = data_t[j, start : start + nb]
            total = 0.0
            for k in range(nb):
                total += proj[k] * _diff(row[k] - ref_j, mj)
            acc_b[j] = total
    elif mode == MODE_MATRIX:
        for i in range(dim):
            ref_i = data[ref, i]
            mi = mean_b[i]
            row_i = data_t[i, start : start + nb]
            for k in range(nb):
                proj[k] = w[k] * _diff(row_i[k] - ref_i, mi)
            for j in range(i, dim):
                ref_j = data[ref, j]
                mj = mean_b[j]
                row_j = data_t[j, start : start + nb]
                total = 0.0
                for k in range(nb):
                    total += proj[k] * _diff(row_j[k] - ref_j, mj)
                cov_b[i, j] = total
                cov_b[j, i] = total
    return m2_b


@jit
def _centred_2d(w, data_t, start, nb, ref0, ref1, m0, m1):
    """``sum_k w_k |dx_k - m|^2`` over ``start .. start + nb`` in ``d = 2``."""
    row0 = data_t[0, start : start + nb]
    row1 = data_t[1, start : start + nb]
    total = 0.0
    for k in range(nb):
        c0 = _diff(row0[k] - ref0, m0)
        c1 = _diff(row1[k] - ref1, m1)
        total += w[k] * (c0 * c0 + c1 * c1)
    return total


@jit
def _projected_2d(w, data_t, start, nb, ref0, ref1, m0, m1, v0, v1):
    """``sum_k w_k (c_k . v) c_k``, ``c_k = dx_k - m``, over ``start .. start + nb``
    in ``d = 2``."""
    row0 = data_t[0, start : start + nb]
    row1 = data_t[1, start : start + nb]
    acc0 = 0.0
    acc1 = 0.0
    for k in range(nb):
        c0 = _diff(row0[k] - ref0, m0)
        c1 = _diff(row1[k] - ref1, m1)
        p = w[k] * (c0 * v0 + c1 * v1)
        acc0 += p * c0
        acc1 += p * c1
    return acc0, acc1


@jit
def tile_centred(tile, refine, ref_point, block_data, block_sum, v, mode, mean_b, m2_b, acc_b):
    """Block moments of the BLAS path's refined rows, by direct differences.

    ``tile (Mq, Nb)`` holds the weights ``exp(g - block_max)`` of
    :func:`numdiff._kernels.tiles.tile_weights`; for each ``refine`` row, over its
    non-zero entries, fills ``mean_b`` (mean of ``x_k - x_r``, ``x_r =
    ref_point[i]``), ``m2_b`` (``sum e_k |dx_k - mean_b|^2``) and, in
    ``MODE_VECTOR``, ``acc_b`` (``sum e_k (dx_k - mean_b)((dx_k - mean_b).v[i])``).
    Other rows are left untouched.
    """
    n_rows, n_cols = tile.shape
    dim = block_data.shape[1]
    c = np.empty(dim)
    for i in range(n_rows):
        if not refine[i]:
            continue
        row = tile[i]
        for j in range(dim):
            mean_b[i, j] = 0.0
        for k in range(n_cols):
            if row[k] != 0.0:
                for j in range(dim):
                    mean_b[i, j] += row[k] * (block_data[k, j] - ref_point[i, j])
        for j in range(dim):
            mean_b[i, j] /= block_sum[i]
            acc_b[i, j] = 0.0
        total = 0.0
        for k in range(n_cols):
            if row[k] == 0.0:
                continue
            sq = 0.0
            dot = 0.0
            for j in range(dim):
                c[j] = _diff(block_data[k, j] - ref_point[i, j], mean_b[i, j])
                sq += c[j] * c[j]
                dot += c[j] * v[i, j]
            total += row[k] * sq
            if mode == MODE_VECTOR:
                for j in range(dim):
                    acc_b[i, j] += (row[k] * dot) * c[j]
        m2_b[i] = total
