"""Fused direct-difference kernel for the mixture softmax, for small dimension.

For each query ``x`` at ``(alpha, sigma2)`` and data ``x_k`` it computes, relative
to the query's nearest (scaled) data point ``x_r``,

    u      = x - alpha x_r                          (compensated, see exact.py)
    e_k    = (alpha / (2 sigma2)) dx_k . (2u - alpha dx_k),    dx_k = x_k - x_r
           = (|u|^2 - |x - alpha x_k|^2) / (2 sigma2)          (<= 0 up to rounding)
    D      = x_r + sum_k w_k dx_k,   w = softmax_k(e_k)
    resid  = alpha (D - x_r) - u                    (= sigma2 * score, no cancellation in x)

and ``log sum_k exp(e_k)``; the caller adds ``-|u|^2 / (2 sigma2)``.
The rounding error of ``e_k`` is ``~ eps alpha |dx_k| (|u| + alpha |dx_k|) /
sigma2``: small both for queries far from the data (large ``|x|``) and for tiny
``sigma2`` near a data point (docs/numerics.md#accuracy).

Range: each query carries an exact power-of-two ``scale`` with ``scale * max(|x|,
alpha |x_k|) ~ 1``; the kernel works with ``u' = scale u`` and ``alpha' = scale
alpha``, so ``dx . (2u' - alpha' dx) = scale dx . (2u - alpha dx)`` never squares a
large coordinate (data of 1e160 would overflow), and ``coef = alpha / (2 sigma2
scale)`` arrives clamped to the largest float, so that a logit beyond the float64
range becomes ``-inf`` (a weight of exactly 0) instead of ``inf * 0``; a positive
one (the search by rounded distances may pick a point that is not the nearest
when ``|x|`` dwarfs the data's spacing) is clamped to the largest float.

Stability: relative to the nearest point every logit is ``<= 0`` up to rounding
and the reference's own is exactly 0, so the weights are ``exp(e_k)`` without a
shift and the blocks of ``block`` data points are plain sums (flushed below
``e^-100``: ``N e^-100`` is far below ``2^-60`` of the reference weight 1).
Without a running maximum the logits, the ``exp`` and the weighted offsets are
one pass over a block (:func:`capped_block`; at small ``d`` the passes, not the
arithmetic, are the cost). A query with a logit above ``LOGIT_CAP`` (the re-pick
case below, a point chosen by rounded distances that is not the nearest, or
constants beyond the float range) is merged again with a running maximum:
blocks reduced to ``(max, sum, weighted sum)`` and merged online
(docs/numerics.md#online-merge). Memory per thread is O(block + d). Each
query is reduced sequentially, so results do not depend on thread count.
"""

import numpy as np
from numba import prange

from numdiff._kernels.exact import residual
from numdiff._kernels.jit import jit, jit_parallel
from numdiff._kernels.minmax import fast_max
from numdiff._kernels.reference import largest_logit, nearest_scaled, relative_logits
from numdiff._kernels.threads import run_groups
from numdiff._kernels.vexp import exp_flushed, exp_shifted_sum

QUERY_GROUP = 16
# The largest logit that the unshifted merge accepts (module docstring): one of up
# to 1 from rounding or a near tie does not force the running-maximum merge.
LOGIT_CAP = 1.0
# Logits are clamped here: a positive logit beyond the float range (the reference
# point chosen by rounded distances is not the nearest; the softmax is then an
# argmax) must not become inf, whose difference with itself is NaN.
_BIGGEST = np.finfo(np.float64).max


def mixture_moments_direct(x, alpha, scale, coef, data, data_t, refs, block, denoised, logsum, u2,
                           resid):
    """Fill ``denoised (M, d)``, ``logsum (M,)`` (``log sum exp e_k``, relative to
    the nearest point), ``u2 (M,)`` (``|scale u|^2``) and ``resid (M, d)``.

    ``data_t`` is ``data.T`` (contiguous); ``scale`` and ``coef`` as in the module
    docstring, one per query; ``refs (M,)`` the nearest points
    (:func:`numdiff._kernels.sweep.nearest_references`).
    """
    # Queries go to threads in groups so that scratch is allocated once per
    # group: per-query allocation dominated at small N (76 ns per pair at N = 4).
    n_groups = (x.shape[0] + QUERY_GROUP - 1) // QUERY_GROUP
    run_groups(_moments_groups, n_groups, x.shape[0] * data.shape[0], x, alpha, scale, coef,
               data, data_t, refs, block, denoised, logsum, u2, resid)


@jit
def _moments_groups(lo, hi, x, alpha, scale, coef, data, data_t, refs, block, denoised, logsum,
                    u2, resid):
    """:func:`mixture_moments_direct` for the query groups ``lo .. hi - 1``."""
    n_query, dim = x.shape
    for g in range(lo, hi):
        buf = np.empty(block)
        u = np.empty(dim)
        acc = np.empty(dim)
        for m in range(g * QUERY_GROUP, min(n_query, (g + 1) * QUERY_GROUP)):
            _moments_one(
                x, m, alpha[m], scale[m], coef[m], data, data_t, refs[m], buf, u, acc,
                denoised, logsum, u2, resid,
            )


@jit
def scaled_residual(xm, a_s, s, data, data_t, buf, u):
    """Index ``r`` of the data point nearest to ``xm / alpha``, and ``u = s (xm - alpha
    x_r)`` (compensated) in ``u``; ``a_s = s * alpha``, ``s`` a power of two."""
    for j in range(xm.shape[0]):
        u[j] = xm[j] * s
    ref = nearest_scaled(u, a_s, data_t, buf)
    residual_at(xm, ref, a_s, s, data, u)
    return ref


@jit
def residual_at(xm, ref, a_s, s, data, u):
    """``u = s (xm - alpha x_ref)``, compensated; ``a_s = s * alpha``."""
    for j in range(xm.shape[0]):
        u[j] = residual(xm[j] * s, a_s, data[ref, j])


@jit
def _moments_one(x, m, a, s, coef, data, data_t, ref, buf, u, acc, denoised, logsum, u2, resid):
    """One query of :func:`mixture_moments_direct`, with caller-owned scratch."""
    dim = x.shape[1]
    a_s = a * s
    residual_at(x[m], ref, a_s, s, data, u)
    run_max, run_sum = _merge_blocks(ref, u, a_s, coef, data, data_t, buf, acc)
    if run_max >= _BIGGEST:
        # The search by rounded distances picked a point whose logit falls short of
        # the largest by more than the float range (|x| dwarfs the data's spacing):
        # re-pick by the exact relative logits and merge again.
        ref = largest_logit(ref, u, a_s, data, data_t, buf)
        residual_at(x[m], ref, a_s, s, data, u)
        run_max, run_sum = _merge_blocks(ref, u, a_s, coef, data, data_t, buf, acc)
    sq = 0.0
    for j in range(dim):
        shift = acc[j] / run_sum
        denoised[m, j] = data[ref, j] + shift
        resid[m, j] = a * shift - u[j] / s
        sq += u[j] * u[j]
    u2[m] = sq
    logsum[m] = run_max + np.log(run_sum)


@jit
def _merge_blocks(ref, u, a_s, coef, data, data_t, buf, acc):
    """``(shift, sum)`` of the weights ``exp(e_k - shift)`` over all data and ``acc`` =
    their weighted sum of ``x_k - x_r``: shift 0, or a running maximum when a logit
    exceeds ``LOGIT_CAP``."""
    n_data = data.shape[0]
    acc[:] = 0.0
    run_sum = capped_run(ref, u, a_s, coef, data, data_t, 0, n_data, buf, acc)
    if run_sum >= 0.0:
        return 0.0, run_sum
    acc[:] = 0.0
    return running_run(ref, u, a_s, coef, data, data_t, 0, n_data, buf, acc, -np.inf, 0.0)


@jit
def capped_run(ref, u, a_s, coef, data, data_t, start, stop, buf, acc):
    """:func:`capped_block` over the data points ``start .. stop`` in blocks of ``buf``'s
    length: ``acc +=`` their weighted offsets; returns the sum of their weights, or
    ``-1`` when a logit exceeds ``LOGIT_CAP``. Shared with the pruned kernel, which
    calls it on its runs of kept leaves."""
    block = buf.shape[0]
    total = 0.0
    for first in range(start, stop, block):
        block_sum = capped_block(ref, u, a_s, coef, data, data_t, first,
                                 min(block, stop - first), buf, acc)
        if block_sum < 0.0:
            return -1.0
        total += block_sum
    return total


@jit
def running_run(ref, u, a_s, coef, data, data_t, start, stop, buf, acc, run_max, run_sum):
    """:func:`merge_block` over the data points ``start .. stop`` in blocks of ``buf``'s
    length, continuing the running ``(max, sum, acc)``; returns the new ``(max,
    sum)``. Shared with the pruned kernel."""
    block = buf.shape[0]
    for first in range(start, stop, block):
        run_max, run_sum = merge_block(ref, u, a_s, coef, data, data_t, first,
                                       min(block, stop - first), buf, acc, run_max, run_sum)
    return run_max, run_sum


@jit
def capped_block(ref, u, a_s, coef, data, data_t, start, nb, w, offsets):
    """Weights ``w[:nb] = exp(e_k)`` of the data points ``start .. start + nb``,
    ``offsets += sum_k w_k (x_k - x_r)``; returns ``sum_k w_k``, or ``-1`` when a
    logit exceeds ``LOGIT_CAP`` (``w`` and ``offsets`` are then meaningless). One
    pass over the block in ``d = 2``, two otherwise."""
    if u.shape[0] == 2:
        # coef folded into the constants (one multiplication fewer per point). Each of
        # the two terms of a logit could then overflow on its own, and with opposite
        # signs make a NaN, so the fold is taken only where it cannot: the scale
        # keeps a_s |x_k| < 1, hence |dx_k| < 2 / a_s and every term below `reach`.
        # Beyond, the running-maximum merge (which clamps) takes the query.
        two_u0 = 2.0 * u[0] * coef
        two_u1 = 2.0 * u[1] * coef
        a_c = a_s * coef
        reach = (2.0 * (abs(two_u0) + abs(two_u1)) + 4.0 * a_c / a_s) / a_s
        if not reach < 1e300:
            return -1.0
        top, total, total0, total1 = _capped_2d(
            data_t, start, nb, data[ref, 0], data[ref, 1], two_u0, two_u1, a_c, w
        )
        offsets[0] += total0
        offsets[1] += total1
    else:
        relative_logits(ref, u, a_s, data, data_t, start, nb, w)
        top = -np.inf
        total = 0.0
        for k in range(nb):
            e = w[k] * coef
            top = fast_max(top, e)
            w[k] = exp_flushed(e)
            total += w[k]
        if top <= LOGIT_CAP:
            offset_sums(ref, data, data_t, start, nb, w, 1.0, offsets)
    return total if top <= LOGIT_CAP else -1.0


@jit
def merge_block(ref, u, a_s, coef, data, data_t, start, nb, buf, acc, run_max, run_sum):
    """Merge the data points ``start .. start + nb`` into the running ``(max, sum,
    acc = weighted sum of x_k - x_r)``: ``acc`` in place, the new ``(max, sum)``
    returned."""
    block_max = block_logits(ref, u, a_s, coef, data, data_t, start, nb, buf)
    run_max, run_sum, grow = fold_block(buf, nb, block_max, acc, run_max, run_sum)
    offset_sums(ref, data, data_t, start, nb, buf, grow, acc)
    return run_max, run_sum


@jit
def fold_block(buf, nb, block_max, acc, run_max, run_sum):
    """Turn the logits ``buf[:nb]`` (maximum ``block_max``) into ``exp(logit -
    block_max)`` and fold their sum into the running ``(max, sum)``, rescaling ``acc``
    when the maximum grows; returns the new ``(max, sum)`` and ``grow``, the factor
    for the block's own weighted sums (shared with the counted kernel, weighted.py)."""
    block_sum = exp_shifted_sum(buf, nb, block_max)
    if block_max > run_max:
        shrink = np.exp(run_max - block_max)
        for j in range(acc.shape[0]):
            acc[j] *= shrink
        return block_max, run_sum * shrink + block_sum, 1.0
    grow = np.exp(block_max - run_max)
    return run_max, run_sum + grow * block_sum, grow


@jit
def block_logits(ref, u, a_s, coef, data, data_t, start, nb, out):
    """``out[:nb]`` = the logits ``e_k = coef dx_k . (2u - a_s dx_k)`` of the data
    points ``start .. start + nb``, clamped to the largest float; returns their
    maximum. In ``d = 2`` one pass over the block (each pass re-reads ``out``: at
    small ``d`` the passes, not the arithmetic, are the cost)."""
    if u.shape[0] == 2:
        return _logits_2d(data_t, start, nb, data[ref, 0], data[ref, 1], 2.0 * u[0], 2.0 * u[1],
                          a_s, coef, out)
    relative_logits(ref, u, a_s, data, data_t, start, nb, out)
    top = -np.inf
    for k in range(nb):
        out[k] = min(out[k] * coef, _BIGGEST)
        top = fast_max(top, out[k])
    return top


@jit
def offset_sums(ref, data, data_t, start, nb, w, grow, acc):
    """``acc += grow * sum_k w_k (x_k - x_r)`` over the data points ``start .. start +
    nb`` (``w[:nb]`` their weights); one pass in ``d = 2``."""
    if acc.shape[0] == 2:
        total0, total1 = offset_sums_2d(w, data_t, start, nb, data[ref, 0], data[ref, 1])
        acc[0] += grow * total0
        acc[1] += grow * total1
        return
    for j in range(acc.shape[0]):
        ref_j = data[ref, j]
        row = data_t[j, start : start + nb]
        total = 0.0
        for k in range(nb):
            total += w[k] * (row[k] - ref_j)
        acc[j] += grow * total


# The d = 2 loops take their constants as scalar arguments: written inline, with
# the reference point and u read from arrays in the same function, the logits
# loop measured 1.5x slower (0.39-0.45 against 0.26-0.28 ns per point).
@jit
def _logits_2d(data_t, start, nb, ref0, ref1, two_u0, two_u1, a_s, coef, out):
    row0 = data_t[0, start : start + nb]
    row1 = data_t[1, start : start + nb]
    top = -np.inf
    for k in range(nb):
        dx0 = row0[k] - ref0
        dx1 = row1[k] - ref1
        e = min((dx0 * (two_u0 - a_s * dx0) + dx1 * (two_u1 - a_s * dx1)) * coef, _BIGGEST)
        out[k] = e
        top = fast_max(top, e)
    return top


@jit
def _capped_2d(data_t, start, nb, ref0, ref1, two_u0, two_u1, a_c, w):
    """:func:`capped_block` in ``d = 2``, with ``coef`` folded into ``two_u = 2 u coef``
    and ``a_c = a_s coef``: returns ``(max logit, sum w, sum w dx0, sum w dx1)``."""
    row0 = data_t[0, start : start + nb]
    row1 = data_t[1, start : start + nb]
    top = -np.inf
    total = 0.0
    total0 = 0.0
    total1 = 0.0
    for k in range(nb):
        dx0 = row0[k] - ref0
        dx1 = row1[k] - ref1
        e = dx0 * (two_u0 - a_c * dx0) + dx1 * (two_u1 - a_c * dx1)
        top = fast_max(top, e)
        wk = exp_flushed(e)
        w[k] = wk
        total += wk
        total0 += wk * dx0
        total1 += wk * dx1
    return top, total, total0, total1


@jit
def offset_sums_2d(w, data_t, start, nb, ref0, ref1):
    """``sum_k w_k (x_k - x_r)`` over ``start .. start + nb`` in ``d = 2``."""
    row0 = data_t[0, start : start + nb]
    row1 = data_t[1, start : start + nb]
    total0 = 0.0
    total1 = 0.0
    for k in range(nb):
        total0 += w[k] * (row0[k] - ref0)
        total1 += w[k] * (row1[k] - ref1)
    return total0, total1


@jit_parallel
def log_weights_direct(x, alpha, scale, coef, data, data_t, block, out):
    """Fill ``out (M, N)`` with the logits ``e_k`` relative to each query's nearest
    point (the module docstring's), not normalised."""
    n_query = x.shape[0]
    n_data = data.shape[0]
    for m in prange(n_query):
        buf = np.empty(block)
        u = np.empty(x.shape[1])
        s = scale[m]
        a_s = alpha[m] * s
        ref = scaled_residual(x[m], a_s, s, data, data_t, buf, u)
        row_out = out[m]
        relative_logits(ref, u, a_s, data, data_t, 0, n_data, row_out)
        top = np.argmax(row_out)
        if row_out[top] > 0.0:
            # Not the largest logit (see _moments_one): take the largest as reference.
            ref = top
            residual_at(x[m], ref, a_s, s, data, u)
            relative_logits(ref, u, a_s, data, data_t, 0, n_data, row_out)
        for k in range(n_data):
            row_out[k] = min(row_out[k] * coef[m], _BIGGEST)
