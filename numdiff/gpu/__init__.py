"""GPU backend: the CUDA engine behind ``EmpiricalScore(..., device="cuda")``.

Needs the ``[gpu]`` extra (numba-cuda and CuPy for CUDA 12) and a GPU, or
``NUMBA_ENABLE_CUDASIM=1`` for Numba's CUDA simulator (tests without a GPU).
Importing :mod:`numdiff` never imports this package's dependencies; the engine
(:mod:`numdiff.gpu.engine`) is imported when a model asks for ``device="cuda"``.
"""

from numdiff.gpu._runtime import CudaUnavailableError, cuda_available

__all__ = ["CudaUnavailableError", "cuda_available"]
