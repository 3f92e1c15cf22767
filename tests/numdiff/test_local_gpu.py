"""The local image scores on the GPU engine (``device="cuda"``) against the same
models on the CPU engines.

Both sides are the exact softmax of docs/local_scores.md over the same key sets;
the GPU kernels and the CPU kernels round differently, so they agree to ``1e-13``
relative to the row's largest pixel value (the band of tests/numdiff/test_gpu.py
for the empirical score). Without a GPU the kernels run in Numba's CUDA simulator
(tests/conftest.py), with the split and tile sizes shrunk so that every merge of
the GPU kernels happens on these small key sets. The cases cover both GPU paths:
patches of ``k^2 C <= 32`` numbers (direct kernel) and longer ones (the matrix
product path).
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import config

import numdiff as nd
import numdiff.gpu.engine as gpu_engine
from numdiff.gpu import cuda_available
from numdiff.local import BoundaryAwareELS, EquivariantLocalScore, LocalScore, PCALocalityScore

pytestmark = [
    pytest.mark.skipif(not cuda_available(), reason="no CUDA GPU and no simulator"),
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]
AGREE = 1e-13
SCHEDULE = nd.OU()


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Splits and tiles of 8 keys and 3 query rows: every GPU merge runs."""
    if config.ENABLE_CUDASIM:
        monkeypatch.setattr(gpu_engine, "PER_SPLIT", 8)
        monkeypatch.setattr(gpu_engine, "TILE_ENTRIES", 8)
        monkeypatch.setattr(gpu_engine, "MIN_TILE_COLS", 8)
        monkeypatch.setattr(gpu_engine, "TILE_ROWS", 3)


def images(seed, n, shape, m=2):
    rng = np.random.default_rng(seed)
    data = rng.random((n, *shape))
    x = rng.random((m, *shape)) + 0.3 * rng.standard_normal((m, *shape))
    return data, x.reshape(m, -1)


def worst_relative(gpu, cpu):
    scale = np.maximum(np.abs(cpu).max(axis=1, keepdims=True), 1.0)
    return float(np.max(np.abs(gpu - cpu) / scale))


# (model, image shape, training images, query images, times). The matrix-product
# cases are the simulator's slowest (tiles of 8 keys): fewer images, one time, the
# small-noise one where rows are refined about their nearest key.
CASES = {
    "els-valid": (lambda d, dev: EquivariantLocalScore(d, SCHEDULE, 3, device=dev),
                  (5, 4, 1), 9, 2, (0.02, 0.7)),
    "els-circular-c2": (lambda d, dev: EquivariantLocalScore(d, SCHEDULE, 3, "circular", dev),
                        (4, 4, 2), 6, 2, (0.02, 0.7)),
    "boundary-aware": (lambda d, dev: BoundaryAwareELS(d, SCHEDULE, 3, device=dev),
                       (5, 4, 1), 9, 2, (0.02, 0.7)),
    "ls": (lambda d, dev: LocalScore(d, SCHEDULE, 3, device=dev), (4, 3, 1), 9, 2, (0.02, 0.7)),
    "els-k7-gemm": (lambda d, dev: EquivariantLocalScore(d, SCHEDULE, 7, "circular", dev),
                    (3, 3, 1), 3, 1, (0.02,)),
    "pca-gemm": (lambda d, dev: PCALocalityScore(d, SCHEDULE, 0.05, device=dev),
                 (6, 6, 1), 4, 1, (0.02,)),
}


@pytest.mark.parametrize(
    ("name", "t"), [(name, t) for name, case in CASES.items() for t in case[-1]])
def test_local_scores_on_the_gpu_match_the_cpu(name, t):
    make, shape, n, m, _ = CASES[name]
    data, x = images(3, n, shape, m)
    cpu, gpu = make(data, "cpu"), make(data, "cuda")
    assert gpu.device == "cuda"
    err = worst_relative(gpu.denoise(t, x), cpu.denoise(t, x))
    assert err <= AGREE, f"GPU against CPU: {err:.3g} relative"


def test_the_gpu_els_stays_circular_shift_equivariant():
    """The exact symmetry of the model holds on the GPU path too."""
    data, x = images(5, 3, (4, 4, 1), m=1)
    f = EquivariantLocalScore(data, SCHEDULE, 3, "circular", device="cuda")
    img = x.reshape(1, 4, 4, 1)
    shifted = np.roll(img, (2, 1), axis=(1, 2)).reshape(1, -1)
    out = f.denoise(0.1, x).reshape(1, 4, 4, 1)
    out_shifted = f.denoise(0.1, shifted).reshape(1, 4, 4, 1)
    assert np.max(np.abs(np.roll(out, (2, 1), axis=(1, 2)) - out_shifted)) <= 1e-14


@pytest.mark.parametrize("device", ["gpu", None, 1])
def test_device_names_the_argument(device):
    data, _ = images(0, 3, (3, 3, 1))
    with pytest.raises(ValueError, match="device"):
        EquivariantLocalScore(data, SCHEDULE, 3, device=device)
