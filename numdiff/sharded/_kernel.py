"""Shard kernel: the direct kernel's moments, reported relative to the shard's reference.

:func:`numdiff._kernels.direct.mixture_moments_direct` reduces each query over the
data relative to the nearest point ``x_r`` and then forms ``D = x_r + shift`` and
``log sum exp = rel - |u|^2 / (2 sigma2)``. A shard must instead hand back the three
parts themselves -- ``x_r``, ``shift = sum_k w_k (x_k - x_r)`` and ``rel = log sum_k
e^{e_k}`` with ``e_k`` relative to ``x_r`` -- so that the client can re-reference
every shard to the global nearest point and merge without the term ``|u|^2 /
(2 sigma2)``, whose rounding (``eps |u|^2 / sigma2`` nats) would otherwise enter
the weights of queries far from the data (docs/sharded.md#merge).
"""

import numpy as np
from numba import prange

from numdiff._kernels.direct import (
    _BIGGEST,
    QUERY_GROUP,
    _merge_blocks,
    residual_at,
    scaled_residual,
)
from numdiff._kernels.jit import jit_parallel
from numdiff._kernels.reference import largest_logit


@jit_parallel
def reference_moments(x, alpha, scale, coef, data, data_t, block, ref, rel, shift):
    """Fill ``ref (M,)`` (index of each query's reference point), ``rel (M,)`` and
    ``shift (M, d)`` as in the module docstring; the other arguments are those of
    ``mixture_moments_direct``."""
    n_query, dim = x.shape
    n_groups = (n_query + QUERY_GROUP - 1) // QUERY_GROUP
    for g in prange(n_groups):
        buf = np.empty(block)
        u = np.empty(dim)
        acc = np.empty(dim)
        for m in range(g * QUERY_GROUP, min(n_query, (g + 1) * QUERY_GROUP)):
            s = scale[m]
            a_s = alpha[m] * s
            r = scaled_residual(x[m], a_s, s, data, data_t, buf, u)
            run_max, run_sum = _merge_blocks(r, u, a_s, coef[m], data, data_t, buf, acc)
            if run_max >= _BIGGEST:
                # As in the in-process kernel: the search by rounded distances missed
                # the largest logit by more than the float range; re-pick and merge.
                r = largest_logit(r, u, a_s, data, data_t, buf)
                residual_at(x[m], r, a_s, s, data, u)
                run_max, run_sum = _merge_blocks(r, u, a_s, coef[m], data, data_t, buf, acc)
            ref[m] = r
            rel[m] = run_max + np.log(run_sum)
            for j in range(dim):
                shift[m, j] = acc[j] / run_sum
