"""Where cells run: in this process, or on a Dask cluster.

Every executor offers ``run(cells)``, an iterator yielding
``(cell, result, elapsed_s, error)`` as cells finish (``error`` is ``None`` or
the exception text), and ``close()``. Dask is imported only when asked for, so
the core runs without it.
"""

from __future__ import annotations

import contextlib
import time
import traceback

from .cache import jsonable


def single_threaded_blas():
    """Context limiting BLAS to one thread (a no-op without ``threadpoolctl``).

    The cells' matrix products are small (a tile of queries times the data) and
    alternate with parallel Numba kernels; BLAS's own threads then only contend
    for the cores with them. Measured on 2 cores: a 64-dimensional memorization
    cell takes 22.5 s with two OpenBLAS threads and 3.9 s with one.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on the environment
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def call_cell(func, config, seed):
    """Run one cell and return ``(json_result, elapsed_s)``.

    The result is converted to plain JSON types here, in the worker, so that a
    fresh result and one read back from the cache are identical.
    """
    start = time.perf_counter()
    with single_threaded_blas():
        result = jsonable(func(config, seed))
    return result, time.perf_counter() - start


class InProcessExecutor:
    """Run cells one after another in this process (the default)."""

    description = "in-process"

    def run(self, cells):
        for cell in cells:
            start = time.perf_counter()
            try:
                result, elapsed = call_cell(cell.func, cell.config, cell.seed)
            except Exception:  # noqa: BLE001 - a failing cell is reported, not fatal
                yield cell, None, time.perf_counter() - start, traceback.format_exc()
                continue
            yield cell, result, elapsed, None

    def close(self):
        pass


class DaskExecutor:
    """Run cells on a ``dask.distributed`` cluster, yielding them as they finish.

    Parameters
    ----------
    client : distributed.Client
        Connected client.
    owns : bool
        Close the client (and its cluster) in :meth:`close`.
    """

    def __init__(self, client, owns: bool = False):
        self.client = client
        self.owns = owns
        self.description = f"dask ({client.scheduler.address})"

    def run(self, cells):
        from distributed import as_completed

        by_future = {}
        for cell in cells:
            # pure=False: the cache, not Dask, decides what is already computed.
            fut = self.client.submit(call_cell, cell.func, cell.config, cell.seed, pure=False)
            by_future[fut] = cell
        for fut in as_completed(list(by_future)):
            cell = by_future.pop(fut)
            if fut.status == "error":
                exc, tb = fut.exception(), fut.traceback()
                text = "".join(traceback.format_exception(type(exc), exc, tb))
                yield cell, None, float("nan"), text
                continue
            result, elapsed = fut.result()
            yield cell, result, elapsed, None

    def close(self):
        if self.owns:
            cluster = getattr(self.client, "cluster", None)
            self.client.close()
            if cluster is not None:
                cluster.close()


def make_executor(workers: int | None = None, scheduler: str | None = None):
    """Choose the executor from the command-line options.

    Parameters
    ----------
    workers : int, optional
        Start a local Dask cluster with this many single-threaded worker processes.
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``). Its workers
        must be able to import ``numdiff``, ``theory`` and ``validation``.

    Raises
    ------
    ValueError
        If both are given, or ``workers < 1``.
    ImportError
        If Dask is needed but ``dask[distributed]`` is not installed.
    """
    if workers is not None and scheduler is not None:
        raise ValueError("give either `workers` or `scheduler`, not both")
    if workers is None and scheduler is None:
        return InProcessExecutor()
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "--workers/--scheduler need dask.distributed: pip install 'numdiff[dask]'"
        ) from err
    if scheduler is not None:
        return DaskExecutor(Client(scheduler), owns=True)
    if int(workers) < 1:
        raise ValueError(f"`workers` must be >= 1, got {workers}")
    # One thread per worker process: the cells' numerical kernels bring their
    # own threads, and processes avoid sharing the GIL between Python loops.
    cluster = LocalCluster(
        n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=None
    )
    return DaskExecutor(Client(cluster), owns=True)
