"""The one place where JIT options are chosen.

``fastmath`` is restricted to flags that keep the Cody-Waite range reduction of
:mod:`numdiff._kernels.vexp` exact: no ``reassoc`` (it would fold
``(x - k*hi) - k*lo``), no ``nnan``/``ninf`` (the merge relies on ``-inf``).
``cache=True`` is safe from a read-only install: Numba then falls back to a
user-wide cache directory.
"""

import numba

FASTMATH = {"contract", "arcp", "nsz", "afn"}

jit = numba.njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)
jit_inline = numba.njit(cache=True, fastmath=FASTMATH, error_model="numpy", inline="always")
jit_parallel = numba.njit(
    cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True, parallel=True
)
