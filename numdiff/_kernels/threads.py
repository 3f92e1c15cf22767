"""Serial kernels over groups of queries, run on a few threads.

The direct kernels loop over groups of queries (scratch allocated once per group).
Written with ``prange`` and ``parallel=True``, Numba's parallel lowering compiled
each such loop body, and every function it inlines, a second time: a third to a
half of the first call's compile time of a path (``benchmarks/bench_compile.py``,
docs/numerics.md#first-call-compile-time). Here the kernel is serial over a range
of groups ``[lo, hi)`` and releases the GIL (``nogil``); :func:`run_groups` splits
the groups evenly over the threads, as the static schedule of ``prange`` did. Each
query is computed by the same code either way, so the results are those of a
serial run, whatever the thread count.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numba
import numpy as np

# Below this many (query, data point) pairs a call runs on the calling thread: the
# pool's start-up (about 0.1 ms) would cost more than the second core gains.
THREAD_MIN_PAIRS = 1 << 16


def threads():
    """Threads of the kernels: Numba's setting (``NUMBA_NUM_THREADS``,
    ``numba.set_num_threads``)."""
    return max(1, numba.get_num_threads())


def run_groups(kernel, n_groups, pairs, *args):
    """``kernel(lo, hi, *args)`` over ranges of ``[0, n_groups)``, one per thread.

    Parameters
    ----------
    kernel : Numba dispatcher
        Serial over the groups ``lo .. hi - 1``, writing only their rows; ``nogil``.
    n_groups : int
        Groups of queries.
    pairs : int
        (query, data point) pairs of the call: few run on the calling thread.
    *args
        The kernel's other arguments.
    """
    workers = min(threads(), n_groups)
    if workers <= 1 or pairs < THREAD_MIN_PAIRS:
        kernel(0, n_groups, *args)
        return
    bounds = [int(b) for b in np.linspace(0, n_groups, workers + 1).round()]
    with ThreadPoolExecutor(workers - 1) as pool:
        others = [pool.submit(kernel, lo, hi, *args) for lo, hi in pairwise(bounds[1:])]
        kernel(bounds[0], bounds[1], *args)
        for future in others:
            future.result()
