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
user-wide cache directory (tests/numdiff/test_install.py). Numba checks a cached
function against its own source file only, not against the files of the
functions it inlined: after an edit of ``pruned/search.py``, ``pruned/plan.py``'s
cached kernels still ran the old search (a test passed on a working tree and
failed on a clean clone). So one fingerprint (path, size and modification time)
covers every source file of the package, and when it changes numdiff's cached
kernels are dropped before anything compiles (:func:`drop_stale_caches`).

OpenMP threads that spin after a parallel region steal the cores from the BLAS
calls that alternate with our kernels (and vice versa): measured 8.3 ms per
small ``denoise`` call interleaved with a matmul, against 0.65 ms with passive
waiting. Hence ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose otherwise; it
must be set before Numba starts its OpenMP runtime, i.e. at import.

On CPUs with AVX-512, LLVM's tuning for recent Xeons (``prefer-256-bit``) keeps
loops to 256-bit vectors. The kernels here are throughput-bound loops (the
polynomial of :mod:`numdiff._kernels.vexp`, the logits, the weighted sums), for
which 512-bit vectors measured 1.4-1.7x faster per exponential on this
project's development machine (1.17-1.26 ns against 1.64-2.13 ns, three runs of
each, alternating; end to end, the derivative kernels at d = 2 gained up to
1.8x, within a run-to-run noise of the same order on that shared machine).
So unless the user chose ``NUMBA_CPU_NAME`` or ``NUMBA_CPU_FEATURES``,
the host's feature string is used with ``-prefer-256-bit``. It has to be in
place before Numba creates its code generator (the first compilation in the
process); if another library compiled earlier, Numba keeps its own choice,
which is only slower. Numba's cache key includes the features, so code cached
either way is never mixed up.
"""

import hashlib
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import llvmlite.binding as _llvm
import numba

_PACKAGE = Path(__file__).resolve().parents[1]
STAMP_NAME = "numba-sources.stamp"


def drop_stale_caches(root=_PACKAGE):
    """Remove the Numba cache files (``__pycache__/*.nbi``, ``*.nbc``) under ``root``
    when the fingerprint of its ``*.py`` files differs from the one stamped at the
    last check; write the new stamp. Returns whether caches were dropped. A tree
    that cannot be written (a read-only install, whose sources do not change) is
    left as it is."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        info = path.stat()
        digest.update(f"{path.relative_to(root)}:{info.st_size}:{info.st_mtime_ns};".encode())
    fingerprint = digest.hexdigest()
    stamp = root / "__pycache__" / STAMP_NAME
    try:
        if stamp.read_text() == fingerprint:
            return False
    except OSError:
        pass
    try:
        for cached in (*root.rglob("__pycache__/*.nbi"), *root.rglob("__pycache__/*.nbc")):
            cached.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        partial = stamp.with_suffix(f".{os.getpid()}")
        partial.write_text(fingerprint)
        partial.replace(stamp)
    except OSError:
        return False
    return True


def _prefer_wide_vectors():
    if numba.config.CPU_NAME is not None or numba.config.CPU_FEATURES is not None:
        return
    if not _llvm.get_host_cpu_features().get("avx512f", False):
        return
    features = _llvm.get_host_cpu_features().flatten() + ",-prefer-256-bit"
    # Both: the attribute is what the code generator reads, the variable survives
    # Numba's re-reading of its configuration from the environment.
    os.environ["NUMBA_CPU_FEATURES"] = features
    numba.config.CPU_FEATURES = features


_prefer_wide_vectors()
drop_stale_caches()

_COMMON = {"cache": True, "error_model": "numpy", "nogil": True}
FASTMATH = {"reassoc", "contract", "arcp", "nsz", "nnan", "afn"}
FASTMATH_EXACT = {"contract", "arcp", "nsz", "afn"}

jit = numba.njit(fastmath=FASTMATH, **_COMMON)
jit_parallel = numba.njit(fastmath=FASTMATH, parallel=True, **_COMMON)
jit_exact = numba.njit(fastmath=FASTMATH_EXACT, **_COMMON)
