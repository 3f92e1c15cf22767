"""Compensated residual ``x - a*y`` for queries that sit on a data point.

When ``x`` is within ``sigma_t`` of ``alpha_t x_r`` and ``sigma_t`` is tiny, the
rounding of the product ``alpha_t x_r`` (``eps |x_r|``) dominates ``u = x -
alpha_t x_r`` and hence ``log p = ... - |u|^2 / (2 sigma2)``: for data of size
50 and ``sigma2 = 1e-10`` it costs nine digits. Dekker's exact product (Veltkamp
splitting, no FMA needed) gives ``a*y = p + e`` exactly, and ``x - p`` is exact by
Sterbenz's lemma when ``x`` and ``p`` are close, so ``(x - p) - e`` is correctly
rounded up to one ulp of ``u`` itself.

Compiled without ``reassoc``: reassociation would fold ``c - (c - a)`` to ``a``.
"""

import numpy as np

from numdiff._kernels.jit import jit_exact

_SPLITTER = 134217729.0  # 2^27 + 1


@jit_exact
def residual(x, a, y):
    """``x - a*y`` with the product's rounding error compensated (scalar)."""
    p = a * y
    c = _SPLITTER * a
    a_hi = c - (c - a)
    a_lo = a - a_hi
    c = _SPLITTER * y
    y_hi = c - (c - y)
    y_lo = y - y_hi
    err = ((a_hi * y_hi - p) + a_hi * y_lo + a_lo * y_hi) + a_lo * y_lo
    return (x - p) - err


@jit_exact
def residual_rows(x, alpha, ref):
    """``x[m] - alpha[m] * ref[m]`` row-wise with :func:`residual`; shape of ``x``."""
    out = np.empty_like(x)
    for m in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[m, j] = residual(x[m, j], alpha[m], ref[m, j])
    return out
