"""GPU backend: the empirical score on an NVIDIA GPU (``EmpiricalScore(..., device="cuda")``).

Needs the ``[gpu]`` extra (numba-cuda and CuPy for CUDA 12) and a GPU, or
``NUMBA_ENABLE_CUDASIM=1`` for Numba's CUDA simulator (tests without a GPU).
Importing :mod:`numdiff` never imports this package's dependencies.
"""

from numdiff.gpu._runtime import CudaUnavailableError, cuda_available

__all__ = ["CudaEmpiricalScore", "CudaUnavailableError", "cuda_available"]


def __getattr__(name):
    # The score module compiles nothing at import, but it imports numdiff.score:
    # loaded on first use, so that "import numdiff.gpu" stays cheap.
    if name == "CudaEmpiricalScore":
        from numdiff.gpu.score import CudaEmpiricalScore

        return CudaEmpiricalScore
    raise AttributeError(name)
