"""Compile every Numba-CUDA kernel of numdiff to PTX for sm_90, without a GPU.

The simulator runs kernels as Python, so it cannot catch what only Numba's CUDA
type inference rejects (an untyped global, a builtin without a CUDA lowering).
Run as a script with ``NUMBA_ENABLE_CUDASIM=0`` and ``CUDA_HOME`` pointing at an
NVVM (the ``nvidia-cuda-nvcc-cu12`` wheel's ``nvidia/cuda_nvcc``); prints one line
per kernel and exits non-zero on the first failure. Used by tests/numdiff/test_gpu.py.
"""

import numpy as np
from numba import cuda
from numba import types as T
from numba.cuda import dispatcher

import numdiff.gpu._runtime as rt
from numdiff.gpu import _direct, _tiles


class _Hopper:
    compute_capability = (9, 0)


# No driver here: device functions ask the (absent) current device for its
# compute capability, and the kernels' factories ask for the runtime.
dispatcher.get_current_device = _Hopper
rt.runtime = lambda: rt.Runtime(cuda=cuda, xp=np, simulator=False)
_tiles.runtime = rt.runtime

F, I = T.float64, T.int64
A1, A2, A3 = (T.Array(F, n, "A") for n in (1, 2, 3))
I1, I2, U1 = T.Array(I, 1, "A"), T.Array(I, 2, "A"), T.Array(T.uint8, 1, "A")
KERNELS = [
    *(("nearest", _direct.nearest_kernel(d), (A2, A1, A1, A2, I, A2, I2)) for d in (1, 2, 32)),
    *(("moments", _direct.moments_kernel(d), (A2, I1, A1, A1, A1, A2, A2, I, A2, A2, A3))
      for d in (1, 2, 32)),
    ("tile", _tiles.tile_kernel(),
     (A2, I, I, A1, A1, A1, U1, A1, A2, A2, A2, A1, A1, A1, A2)),
    ("residual", _tiles.residual_kernel(), (A2, A1, A1, A2, A2)),
]
for name, kernel, args in KERNELS:
    ptx, _ = cuda.compile_ptx(kernel.py_func, T.void(*args), cc=(9, 0))
    # The exact residual's product must stay unfused: one mul.rn.f64 per use.
    print(name, len(ptx), "mul.rn.f64" in ptx)
