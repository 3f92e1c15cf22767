"""Serial kernels over groups of queries, run on a few threads.

The direct kernels loop over groups of queries (scratch allocated once per group).
Written with ``prange`` and ``parallel=True``, Numba's parallel lowering compiled
each such loop body, and every function it inlines, a second time: without it
the first call of a path compiles in 21-42% less CPU time
(``benchmarks/bench_compile.py``, docs/numerics.md#first-call-compile-time). Here the kernel is serial over a range
of groups ``[lo, hi)`` and releases the GIL (``nogil``); :func:`run_groups` splits
the groups evenly over the threads, as the static schedule of ``prange`` did. Each
query is computed by the same code either way, so the results are those of a
serial run, whatever the thread count.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from itertools import pairwise

import numba
import numpy as np
from threadpoolctl import ThreadpoolController

# Below this many (query, data point) pairs a call runs on the calling thread: a
# hand-over to the pool costs about 20 us, a pair about 1 ns.
THREAD_MIN_PAIRS = 1 << 17

# One pool, kept: starting threads per call cost about 0.1 ms (measured 100 us
# against 21 us per hand-over to a kept pool). Its tasks only run kernels and never
# wait on the pool, so callers on several threads can share it.
_POOL = {"executor": None, "size": 0}
_POOL_LOCK = threading.Lock()


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
    pool = _executor(workers - 1)
    others = [pool.submit(kernel, lo, hi, *args) for lo, hi in pairwise(bounds[1:])]
    kernel(bounds[0], bounds[1], *args)
    for future in others:
        future.result()


def _executor(size):
    """The kept pool, with at least ``size`` threads (a smaller one is dropped, not
    shut down: a caller may still be submitting to it; its idle threads end when
    it is collected)."""
    with _POOL_LOCK:
        if _POOL["size"] < size:
            _POOL["executor"] = ThreadPoolExecutor(size, thread_name_prefix="numdiff")
            _POOL["size"] = size
        return _POOL["executor"]


def _forget_pool():
    """A forked child has none of its parent's threads: it starts its own pool."""
    global _POOL_LOCK
    _POOL["executor"], _POOL["size"] = None, 0
    _POOL_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


def in_threads(run, items):
    """``run(item)`` for each item, on up to :func:`threads` threads (the kernels
    release the GIL) with single-threaded BLAS meanwhile."""
    workers = min(threads(), len(items))
    if workers <= 1:
        for item in items:
            run(item)
        return
    with _blas_controller().limit(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, items))


@cache
def _blas_controller():
    """One scan of the loaded BLAS libraries, kept (a scan per call costs 0.5 ms)."""
    return ThreadpoolController()
