"""What the GPU backend runs on: a CUDA GPU (Numba-CUDA kernels, CuPy arrays and
cuBLAS) or Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``: the same kernels,
interpreted, on NumPy arrays), found once and on first use.

Nothing here is imported by ``import numdiff``: a machine without numba-cuda,
CuPy or a GPU loses only ``device="cuda"``, and asking for it says what is
missing (:func:`runtime`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

INSTALL_HINT = 'install the GPU extra: python -m pip install "numdiff[gpu]" (CUDA 12)'


class CudaUnavailableError(RuntimeError):
    """``device="cuda"`` was asked for on a machine that cannot run it."""


@dataclass(frozen=True)
class Runtime:
    """The array module and kernel compiler of the GPU backend.

    Parameters
    ----------
    cuda : module
        ``numba.cuda`` (real or simulated).
    xp : module
        ``cupy`` on a GPU, ``numpy`` in the simulator.
    simulator : bool
        True under ``NUMBA_ENABLE_CUDASIM=1``.
    """

    cuda: object
    xp: object
    simulator: bool

    def asarray(self, a):
        """``a`` as a contiguous float64 array of this runtime (no copy if it is one)."""
        return self.xp.ascontiguousarray(self.xp.asarray(a, dtype=np.float64))

    def to_host(self, a):
        """``a`` as a NumPy array (copied from the GPU if needed)."""
        return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)

    def kernel_arg(self, a):
        """``a`` as a kernel argument: a zero-copy Numba view of a CuPy array, without
        the stream synchronisation Numba would otherwise do on every launch (CuPy and
        Numba both issue to the legacy default stream, which orders them)."""
        if self.simulator:
            return a
        return self.cuda.as_cuda_array(a, sync=False)

    def is_device_array(self, a):
        """True for an array of this runtime's device (CuPy; never in the simulator)."""
        return (not self.simulator) and isinstance(a, self.xp.ndarray)


@cache
def runtime() -> Runtime:
    """The GPU runtime, or :class:`CudaUnavailableError` saying what is missing."""
    try:
        from numba import config, cuda
    except ImportError as err:  # pragma: no cover - numba is a core dependency
        raise CudaUnavailableError(f"device='cuda' needs numba.cuda ({err}); {INSTALL_HINT}") from None
    if config.ENABLE_CUDASIM:
        return Runtime(cuda=cuda, xp=np, simulator=True)
    try:
        import cupy
    except ImportError:
        raise CudaUnavailableError(f"device='cuda' needs CuPy, which is not installed; {INSTALL_HINT}") from None
    try:
        found = cuda.is_available() and cupy.cuda.runtime.getDeviceCount() > 0
    except Exception as err:  # noqa: BLE001 - any driver error means "no usable GPU"
        raise CudaUnavailableError(f"device='cuda': no usable CUDA GPU ({err})") from None
    if not found:
        raise CudaUnavailableError(
            "device='cuda': no CUDA GPU or driver found (numba.cuda.is_available() is False); "
            "set NUMBA_ENABLE_CUDASIM=1 to run the kernels in Numba's CUDA simulator"
        )
    _numpy_aliases_for_numba_cuda()
    return Runtime(cuda=cuda, xp=cupy, simulator=False)


def _numpy_aliases_for_numba_cuda():
    """numba-cuda (0.30.4 at least) registers an overload of ``np.row_stack`` when it
    first compiles a kernel; NumPy 2.5 dropped that alias of ``np.vstack``, and every
    compilation then fails with an AttributeError (seen on an H200 with NumPy 2.5.2).
    Restore the alias, with its old meaning, only where it is missing."""
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack


def cuda_available() -> bool:
    """True when ``device="cuda"`` can run here (a GPU with numba-cuda and CuPy, or the simulator)."""
    try:
        runtime()
    except CudaUnavailableError:
        return False
    return True


def cuda_kernel(fn):
    """Compile ``fn`` as a CUDA kernel: the one place where kernel options are chosen.

    Default (IEEE) float semantics: no fast-math, so ``exp`` and division are
    correctly rounded to within libdevice's 1-2 ulp. Products that must not be
    fused into an FMA (the exact residual) say so explicitly (:func:`exact_residual`).
    """
    return runtime().cuda.jit(fn)


def cuda_device(fn):
    """Compile ``fn`` as a CUDA device function (options as :func:`cuda_kernel`)."""
    return runtime().cuda.jit(device=True)(fn)


@cache
def exact_residual():
    """Device function ``residual(x, a, y) = x - a*y`` with the product's rounding
    error compensated, as :func:`numdiff._kernels.exact.residual`.

    On a GPU the error of ``p = a*y`` is ``fma(a, y, -p)``, exact; ``p`` comes from
    ``dmul_rn``, which the compiler may not fuse into ``x - a*y``. The simulator runs
    Python floats (no fusion, no FMA): Veltkamp's split gives the same exact error.
    """
    rt = runtime()
    if rt.simulator:
        from numdiff._kernels.exact import residual as cpu_residual

        residual = cpu_residual.py_func  # the CPU's Veltkamp split, run as Python
    else:
        from numba import cuda
        from numba.cuda import libdevice

        def residual(x, a, y):
            p = libdevice.dmul_rn(a, y)
            return (x - p) - cuda.fma(a, y, -p)

    return cuda_device(residual)
