"""The direct first-moment kernel over keys with multiplicities.

Key ``k`` stands for ``c_k`` equal keys (:func:`numdiff.engines.keys.distinct_keys`):
its weight is ``c_k exp(e_k)``, i.e. the logit ``e_k + log c_k`` with ``e_k`` the
relative logit of :mod:`numdiff._kernels.direct`. The reference point is still the
nearest key, where ``x_k - x_r`` is exact for close keys, but its weight is no
longer the largest, so blocks always merge with a running maximum
(:func:`numdiff._kernels.direct.merge_block`'s scheme, with the counts added
before the exponentials). Compiled only when a model has repeated keys.
"""

import numpy as np

from numdiff._kernels.direct import (
    _BIGGEST,
    QUERY_GROUP,
    block_logits,
    fold_block,
    offset_sums,
    residual_at,
)
from numdiff._kernels.jit import jit
from numdiff._kernels.reference import largest_logit
from numdiff._kernels.threads import run_groups


def weighted_moments_direct(x, alpha, scale, coef, data, data_t, log_counts, refs, block,
                            denoised, logsum, u2, resid):
    """:func:`numdiff._kernels.direct.mixture_moments_direct` with the weights
    ``counts_k exp(e_k)``; ``log_counts (N,)``. ``logsum`` is ``log sum_k c_k
    exp(e_k)``, the log-sum over the keys counted with their multiplicity."""
    n_groups = (x.shape[0] + QUERY_GROUP - 1) // QUERY_GROUP
    run_groups(_weighted_groups, n_groups, x.shape[0] * data.shape[0], x, alpha, scale, coef,
               data, data_t, log_counts, refs, block, denoised, logsum, u2, resid)


@jit
def _weighted_groups(lo, hi, x, alpha, scale, coef, data, data_t, log_counts, refs, block,
                     denoised, logsum, u2, resid):
    """:func:`weighted_moments_direct` for the query groups ``lo .. hi - 1``."""
    n_query, dim = x.shape
    for g in range(lo, hi):
        buf = np.empty(block)
        u = np.empty(dim)
        acc = np.empty(dim)
        for m in range(g * QUERY_GROUP, min(n_query, (g + 1) * QUERY_GROUP)):
            a = alpha[m]
            s = scale[m]
            a_s = a * s
            ref = refs[m]
            residual_at(x[m], ref, a_s, s, data, u)
            run_max, run_sum = _weighted_merge(ref, u, a_s, coef[m], data, data_t, log_counts,
                                               buf, acc)
            if run_max >= _BIGGEST:
                # As in direct._moments_one: the reference chosen by rounded distances
                # is off by more than the float range; take the largest logit's key.
                ref = largest_logit(ref, u, a_s, data, data_t, buf)
                residual_at(x[m], ref, a_s, s, data, u)
                run_max, run_sum = _weighted_merge(ref, u, a_s, coef[m], data, data_t,
                                                   log_counts, buf, acc)
            sq = 0.0
            for j in range(dim):
                shift = acc[j] / run_sum
                denoised[m, j] = data[ref, j] + shift
                resid[m, j] = a * shift - u[j] / s
                sq += u[j] * u[j]
            u2[m] = sq
            logsum[m] = run_max + np.log(run_sum)


@jit
def _weighted_merge(ref, u, a_s, coef, data, data_t, log_counts, buf, acc):
    """Running ``(max, sum)`` of ``e_k + log c_k`` over all keys, in blocks of
    ``buf``'s length; ``acc`` = the weighted sum of ``x_k - x_r`` (same shift)."""
    n_data = data.shape[0]
    block = buf.shape[0]
    acc[:] = 0.0
    run_max = -np.inf
    run_sum = 0.0
    for first in range(0, n_data, block):
        nb = min(block, n_data - first)
        block_logits(ref, u, a_s, coef, data, data_t, first, nb, buf)
        block_max = -np.inf
        for k in range(nb):
            # _BIGGEST plus a log count rounds back to _BIGGEST: never inf.
            buf[k] += log_counts[first + k]
            block_max = max(block_max, buf[k])
        if block_max == -np.inf:
            continue  # every weight 0 (beyond the float range); -inf - -inf is NaN
        run_max, run_sum, grow = fold_block(buf, nb, block_max, acc, run_max, run_sum)
        offset_sums(ref, data, data_t, first, nb, buf, grow, acc)
    return run_max, run_sum
