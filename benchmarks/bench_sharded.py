"""Throughput and traffic of :class:`numdiff.sharded.ShardedScore` against the in-process model.

For each case (``N`` points in ``d`` dimensions, ``M`` queries per call) the script
times ``denoise`` of the in-process :class:`numdiff.EmpiricalScore` and of the
sharded model on a local cluster of 1 and 2 worker processes (one shard per
worker; the workers' Numba threads split the cores), and prints

* throughput in query-point pairs per second, ``M N / seconds per call`` (best of
  the repeats);
* bytes per call from Dask's own counters (:func:`numdiff.sharded.traffic`): what
  the client and scheduler send (the queries) and what the workers send back (the
  per-shard statistics), against the expected ``M d`` and ``M (2 d + 1)`` floats
  per shard and against the data's size;
* the latency floor: seconds per call with a single query;
* the client's merge: seconds per query and shard of the merge used at that ``d``
  (an input of the projection in docs/sharded.md).

It asserts nothing (the machine is shared; timings move), so it is a benchmark,
not a test.

Usage::

    python benchmarks/bench_sharded.py            # full sizes, minutes
    python benchmarks/bench_sharded.py --quick    # tiny sizes, a smoke run
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from functools import partial

import numpy as np

import numdiff as nd
from numdiff.engines.limits import DIRECT_MAX_DIM
from numdiff.sharded import ShardedScore, traffic
from numdiff.sharded._merge import merge_absolute, merge_from_reference

# (N, d, M) per case: small d takes the direct kernel, d = 64 and 768 the BLAS one
# (768: the dimension of the projection in docs/sharded.md).
SIZES = [(1 << 18, 2, 4096), (1 << 15, 64, 1024), (1 << 13, 768, 512)]
QUICK_SIZES = [(4096, 2, 256)]
WORKERS = (1, 2)
TIME = 0.5


def best_seconds(call, repeats):
    """Fastest of ``repeats`` timed calls of ``call()`` (after one warm-up call)."""
    return interleaved_best({"call": call}, repeats)["call"]


def interleaved_best(calls, repeats):
    """Fastest time of each of ``calls`` (name -> function), timed in turns.

    The machine is shared: taking turns exposes every model to the same background
    load, and the minimum over the rounds discards the slow ones.
    """
    for call in calls.values():
        call()  # warm-up: compilation, connections
    best = dict.fromkeys(calls, np.inf)
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def local_cluster(workers):
    """A client on ``workers`` single-threaded worker processes, each given
    ``cores / workers`` Numba and BLAS threads.

    Dask's nanny sets ``OMP_NUM_THREADS`` (and MKL's, OpenBLAS's) to 1 in its
    workers before they start; numdiff's BLAS path runs one block of queries on
    BLAS's own threads, so the workers get their share of the cores back here.
    """
    import dask
    from distributed import Client, LocalCluster

    # Dask logs each worker's start and stop (its import set the level); the table
    # is the output.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    environ = {f"distributed.nanny.pre-spawn-environ.{name}": threads for name in
               ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    with dask.config.set(environ):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
    return Client(cluster)


def sharded_model(client, data, folder, shards):
    """A :class:`ShardedScore` of ``data`` cut into ``shards`` files under ``folder``,
    loaded by the workers (as large data would be: the graph holds loaders, not
    arrays)."""
    loaders = []
    for i, part in enumerate(np.array_split(data, shards)):
        path = os.path.join(folder, f"shard{shards}-{i}.npy")
        np.save(path, part)
        loaders.append(partial(np.load, path))
    return ShardedScore(loaders, nd.OU(), client=client)


def merge_seconds(n_query, dim, shards, repeats):
    """Client merge time per query and shard, for the merge the model uses at ``dim``
    (``merge_from_reference`` for ``d <= 16``, ``merge_absolute`` beyond), on random
    input of the right shapes.

    Parameters
    ----------
    n_query, dim, shards : int
    repeats : int

    Returns
    -------
    float
        Seconds per query per shard.
    """
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n_query, dim))
    points = rng.standard_normal((shards, n_query, dim))
    shift = 0.1 * rng.standard_normal((shards, n_query, dim))
    logsum = rng.random((shards, n_query))
    if dim > DIRECT_MAX_DIM:
        merge = partial(merge_absolute, logsum, points, shift)
    else:
        probe = nd.EmpiricalScore(points[:, 0], nd.OU())
        alpha, sigma2 = probe._prepare(TIME, x)[1:]
        scales = probe.keys.scales(x, alpha, sigma2)
        merge = partial(merge_from_reference, x, alpha, scales, logsum, points, shift)
    return best_seconds(merge, repeats) / (n_query * shards)


def bench(sizes, repeats=3, workers=WORKERS):
    """Run and print every case.

    Parameters
    ----------
    sizes : list of tuple
        ``(N, d, M)`` per case.
    repeats : int, optional
        Timed rounds per measurement (each model once per round).
    workers : tuple of int, optional
        Worker counts to run.

    Returns
    -------
    list of dict
        One per case and model: ``N, d, M, model, seconds, pairs_per_s``, and for
        the sharded model ``latency``, the bytes of one call ``to_scheduler`` (from
        the client), ``to_workers`` (from the scheduler) and ``from_workers``, the
        expected ``expected_in`` (``M d`` floats per shard, per hop) and
        ``expected_out`` (``M (2 d + 1)`` per shard), and ``data_bytes``.
    """
    rows = []
    print(f"{'N':>8} {'d':>4} {'M':>5} {'model':>12} {'s/call':>9} {'pairs/s':>9} "
          f"{'latency s':>9} {'to sched':>10} {'to workers':>10} {'(M d 8 S)':>10} "
          f"{'from workers':>12} {'(M(2d+1)8S)':>11} {'data bytes':>11}")
    clients = {w: local_cluster(w) for w in workers}
    try:
        for n_data, dim, n_query in sizes:
            rng = np.random.default_rng(0)
            data = rng.standard_normal((n_data, dim))
            x = rng.standard_normal((n_query, dim))
            models = {"in-process": nd.EmpiricalScore(data, nd.OU())}
            with tempfile.TemporaryDirectory() as folder:
                for w, client in clients.items():
                    models[f"{w} worker(s)"] = sharded_model(client, data, folder, w)
            calls = {name: partial(m.denoise, TIME, x) for name, m in models.items()}
            seconds = interleaved_best(calls, repeats)
            sharded = {name: m for name, m in models.items() if name != "in-process"}
            latency = interleaved_best(
                {name: partial(m.denoise, TIME, x[:1]) for name, m in sharded.items()}, repeats
            )
            for name, model in models.items():
                row = {"N": n_data, "d": dim, "M": n_query, "model": name,
                       "seconds": seconds[name], "pairs_per_s": n_query * n_data / seconds[name]}
                line = (f"{n_data:>8} {dim:>4} {n_query:>5} {name:>12} {row['seconds']:>9.3g} "
                        f"{row['pairs_per_s']:>9.3g}")
                if name in sharded:
                    before = traffic(model.client)
                    model.denoise(TIME, x)
                    moved = traffic(model.client) - before
                    model.close()
                    row.update(
                        latency=latency[name],
                        to_scheduler=moved.client_to_scheduler,
                        to_workers=moved.scheduler_to_workers,
                        from_workers=moved.worker_data_out + moved.workers_to_scheduler,
                        expected_in=n_query * dim * 8 * model.n_shards,
                        expected_out=n_query * (2 * dim + 1) * 8 * model.n_shards,
                        data_bytes=data.nbytes,
                    )
                    line += (f" {row['latency']:>9.3g} {row['to_scheduler']:>10} "
                             f"{row['to_workers']:>10} {row['expected_in']:>10} "
                             f"{row['from_workers']:>12} {row['expected_out']:>11} "
                             f"{row['data_bytes']:>11}")
                rows.append(row)
                print(line)
            per_pair = merge_seconds(n_query, dim, 8, repeats)
            print(f"{'':>28} client merge: {per_pair:.3g} s per query per shard")
    finally:
        for client in clients.values():
            cluster = client.cluster
            client.close()
            cluster.close()
    return rows


def main(argv=None):
    """Command line entry point.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status, 0.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement")
    args = parser.parse_args(argv)
    bench(QUICK_SIZES if args.quick else SIZES, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
