"""The one place where JIT options are chosen.

Two sets of fast-math flags, because LLVM keeps flags per instruction, also
across inlining:

* ``jit`` / ``jit_parallel`` allow reassociation so that sums and maxima over data
  blocks vectorise (a sequential float sum costs one add latency per element).
  ``ninf`` is never set: the online merge starts from ``-inf``.
* ``jit_exact`` is for code whose rounding is part of its accuracy argument
  (the Cody-Waite reduction in :mod:`numdiff._kernels.vexp`): no ``reassoc``,
  which would fold ``(x - k*hi) - k*lo``.

``cache=True`` is safe from a read-only install: Numba then falls back to a
user-wide cache directory (tests/numdiff/test_install.py).

OpenMP threads that spin after a parallel region steal the cores from the BLAS
calls that alternate with our kernels (and vice versa): measured 8.3 ms per
small ``denoise`` call interleaved with a matmul, against 0.65 ms with passive
waiting. Hence ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose otherwise; it
must be set before Numba starts its OpenMP runtime, i.e. at import.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba

_COMMON = {"cache": True, "error_model": "numpy", "nogil": True}
FASTMATH = {"reassoc", "contract", "arcp", "nsz", "nnan", "afn"}
FASTMATH_EXACT = {"contract", "arcp", "nsz", "afn"}

jit = numba.njit(fastmath=FASTMATH, **_COMMON)
jit_parallel = numba.njit(fastmath=FASTMATH, parallel=True, **_COMMON)
jit_exact = numba.njit(fastmath=FASTMATH_EXACT, **_COMMON)
