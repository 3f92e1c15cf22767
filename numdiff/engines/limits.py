"""The numerics' constants of the engines, in one place.

Engines read them from this module at call time (``limits.DIRECT_BLOCK``), so that a
test can shrink a block or a tile for a whole call with one ``monkeypatch``.
"""

import numpy as np

# Dimension up to which the direct-difference kernel beats the BLAS path
# (benchmarks/bench_score.py).
DIRECT_MAX_DIM = 16
# Data points per block of the online merge (direct kernel) and tile shape of the
# BLAS path; both keep the per-thread working set in L2. Blocks of 1024 rather
# than 512 points halve the per-block work (reductions, merge): 5-15% faster at
# d = 2 and 3 per pair on one core, no change at d = 8 and 16 (2048: slower).
DIRECT_BLOCK = 1024
TILE_ROWS = 512
TILE_COLS = 4096
# BLAS logits whose rounding estimate exceeds this are refined by direct
# differences (tests/numdiff/test_score_oracle.py holds both sides to a small
# multiple of eps).
LOGIT_TOL = 1e-12
# BLAS rows whose rounding estimate, times d, exceeds this many nats go to the
# direct kernel: the BLAS logits can no longer tell which entries are near the top.
DIRECT_ROW_NATS = 1.0
# Entries within this many nats of the reference (plus the row's rounding bound)
# are recomputed when refining; exp(-40) is below the float64 resolution of a sum
# whose largest term is 1.
REFINE_WINDOW = 40.0
# Coordinates are limited to this magnitude: beyond it the differences x_k - x_r
# of the kernels can overflow float64.
MAX_MAGNITUDE = 1e300
# Weights below exp(-FLUSH_NATS) of the largest are 0, as in the kernels (vexp.FLUSH).
FLUSH_NATS = 100.0
# Dense logits are formed in row blocks of about this many entries (32 MiB).
DENSE_BLOCK_ENTRIES = 1 << 22
BIGGEST = np.finfo(np.float64).max
EPS = np.finfo(np.float64).eps


def check_magnitude(arr, name):
    """``arr`` unchanged, or a ValueError naming ``name`` if a coordinate exceeds
    :data:`MAX_MAGNITUDE`."""
    if arr.size and np.abs(arr).max() > MAX_MAGNITUDE:
        raise ValueError(f"{name}: coordinates beyond {MAX_MAGNITUDE:g} are not supported")
    return arr
