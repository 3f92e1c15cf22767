"""Exact k-nearest-neighbour search: numdiff against scikit-learn and FAISS.

For each case (``N`` data points, ``M`` queries, dimension ``d``, ``k = 2``) the
tools run in interleaved rounds (one of each per round, so that the load of a
shared machine falls on all of them alike) and the table prints medians:

* ``numdiff``: ``nd.nearest_neighbors(data, x, k)``, the one-shot form (it
  prepares the data on every call), float64;
* ``index``: a :class:`numdiff.NeighborIndex` built once (its build time is the
  ``prepare`` column), then ``index.nearest(x, k)``, float64;
* ``sklearn``: ``NearestNeighbors(algorithm="brute")``, fit and query, float64;
* ``faiss``: ``IndexFlatL2``, add and search, float32 (when ``faiss-cpu`` imports).

The ratios are the other tool's median over numdiff's median (above 1: numdiff
is faster), for the one-shot form and for the index's search alone. The last
lines check the targets of the one-shot form: at least as fast as sklearn in
every case, within 1.5x of FAISS at the largest ``d``; the load average of the
machine is printed before and after (the runs share it with other work).
``agree`` counts queries whose nearest index equals the float64 brute-force
answer of numdiff in every tool (FAISS's float32 may differ on near ties). ``--memory`` also runs the largest case once per tool in a fresh
process and prints its peak resident memory over the data's size, against the
target: the data twice plus one ranking tile per thread.

Usage::

    python benchmarks/bench_neighbors.py            # the cases of the issue, d = 2 too
    python benchmarks/bench_neighbors.py --quick    # small sizes, a minute or two
    python benchmarks/bench_neighbors.py --memory   # also the peak memory per tool
    python benchmarks/bench_neighbors.py --memory-only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

import numdiff as nd
from numdiff._kernels import ranking

FULL_CASES = [(100_000, 10_000, 2), (100_000, 10_000, 64), (100_000, 2_000, 3072)]
QUICK_CASES = [(20_000, 2_000, 2), (20_000, 2_000, 64), (10_000, 500, 3072)]
K = 2


def _faiss():
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def run_numdiff(data, x, k):
    return nd.nearest_neighbors(data, x, k)


def run_sklearn(data, x, k):
    from sklearn.neighbors import NearestNeighbors

    dist, idx = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(data).kneighbors(x)
    return idx, dist


def run_faiss(data, x, k):
    faiss = _faiss()
    index = faiss.IndexFlatL2(data.shape[1])
    index.add(np.ascontiguousarray(data, dtype=np.float32))
    sq, idx = index.search(np.ascontiguousarray(x, dtype=np.float32), k)
    return idx, np.sqrt(np.maximum(sq, 0.0))


def _load():
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def bench_case(n, m, d, rounds, rng):
    data = rng.standard_normal((n, d))
    x = rng.standard_normal((m, d))
    tools = {"numdiff": run_numdiff, "sklearn": run_sklearn}
    if _faiss() is not None:
        tools["faiss"] = run_faiss
    times = {name: [] for name in (*tools, "index", "prepare")}
    answers = {}
    for _ in range(rounds):
        for name, fn in tools.items():
            elapsed, answers[name] = _timed(fn, data, x, K)
            times[name].append(elapsed)
        elapsed, index = _timed(nd.NeighborIndex, data)
        times["prepare"].append(elapsed)
        elapsed, answers["index"] = _timed(index.nearest, x, K)
        times["index"].append(elapsed)
        del index
    truth = answers["numdiff"][0][:, 0]
    agree = {name: int(np.sum(np.asarray(ans[0])[:, 0] == truth)) for name, ans in answers.items()}
    return {name: statistics.median(t) for name, t in times.items()}, agree


def _peak_child(tool, n, m, d):
    """Run one tool once in this (fresh) process; print the peak RSS in bytes."""
    rng = np.random.default_rng(0)
    # Drawn in place: a temporary of the data's size would set the high-water mark.
    data = rng.standard_normal(out=np.empty((n, d)))
    x = rng.standard_normal(out=np.empty((m, d)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if tool == "index":
        nd.NeighborIndex(data).nearest(x, K)
    else:
        {"numdiff": run_numdiff, "sklearn": run_sklearn, "faiss": run_faiss}[tool](data, x, K)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"before": before, "peak": peak, "data": data.nbytes}))


def peak_memory(n, m, d):
    tools = ["numdiff", "sklearn"] + (["faiss"] if _faiss() is not None else [])
    print(f"\nPeak resident memory, N = {n}, M = {m}, d = {d} (data {n * d * 8 / 2**30:.2f} GiB;"
          " one fresh process per tool; 'peak' includes the data and the interpreter)")
    print(f"{'tool':>8} {'peak GiB':>9} {'peak / data':>12} {'added / data':>13}")
    tiles = ranking.threads() * (ranking.RANK_TILE + ranking.RANK_TILE // ranking.RANK_ROWS * d) * 8
    for tool in ["index", *tools]:
        out = subprocess.run([sys.executable, __file__, "--child", tool, str(n), str(m), str(d)],
                             capture_output=True, text=True, check=True).stdout
        rec = json.loads(out.strip().splitlines()[-1])
        print(f"{tool:>8} {rec['peak'] / 2**30:9.2f} {rec['peak'] / rec['data']:12.2f} "
              f"{(rec['peak'] - rec['before']) / rec['data']:13.2f}")
        if tool in ("numdiff", "index"):
            limit = 2 * rec["data"] + tiles
            verdict = "met" if rec["peak"] - rec["before"] + rec["data"] < limit else "NOT met"
            print(f"{'':>8} target: data + added < 2 data + tiles ({limit / 2**30:.2f} GiB): "
                  f"{verdict}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds")
    parser.add_argument("--memory", action="store_true", help="peak memory, largest case")
    parser.add_argument("--memory-only", action="store_true", help="only the peak memory")
    parser.add_argument("--dims", type=int, nargs="*", help="only the cases of these d")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        tool, *sizes = args.child
        _peak_child(tool, *map(int, sizes))
        return
    cases = QUICK_CASES if args.quick else FULL_CASES
    if args.dims:
        cases = [case for case in cases if case[2] in args.dims]
    if args.memory_only:
        peak_memory(*cases[-1])
        return
    rounds = args.rounds or (3 if args.quick else 5)
    rng = np.random.default_rng(0)
    # Compile (and fill the caches) outside the timings.
    for d in sorted({d for *_, d in cases}):
        nd.nearest_neighbors(rng.standard_normal((64, d)), rng.standard_normal((4, d)), K)
    faiss_note = "" if _faiss() is not None else " (faiss-cpu not installed: no FAISS column)"
    print(f"k = {K}; medians of {rounds} interleaved rounds, seconds; ratio = tool / numdiff "
          f"(one-shot | index search){faiss_note}; load average {_load()}")
    head = (f"{'N':>7} {'M':>6} {'d':>5} | {'numdiff':>8} {'prepare':>8} {'index':>8} | "
            f"{'sklearn':>8} {'ratio':>11} | {'faiss32':>8} {'ratio':>11} | agree")
    print(head)
    checks = []
    for n, m, d in cases:
        med, agree = bench_case(n, m, d, rounds, rng)
        cols = {}
        for tool in ("sklearn", "faiss"):
            if tool in med:
                cols[tool] = (f"{med[tool]:8.3f} {med[tool] / med['numdiff']:5.2f}|"
                              f"{med[tool] / med['index']:5.2f}")
            else:
                cols[tool] = f"{'-':>8} {'-':>11}"
        agree_txt = " ".join(f"{name} {count}/{m}" for name, count in agree.items()
                             if name != "numdiff")
        print(f"{n:7d} {m:6d} {d:5d} | {med['numdiff']:8.3f} {med['prepare']:8.3f} "
              f"{med['index']:8.3f} | {cols['sklearn']} | {cols['faiss']} | {agree_txt}",
              flush=True)
        checks.append((f"d = {d}: sklearn / numdiff >= 1", med["sklearn"] / med["numdiff"] >= 1))
        if d == max(dd for *_, dd in cases) and "faiss" in med:
            checks.append((f"d = {d}: numdiff / faiss <= 1.5",
                           med["numdiff"] / med["faiss"] <= 1.5))
    print(f"load average after: {_load()}")
    for what, ok in checks:
        print(f"target {what}: {'met' if ok else 'NOT met'}")
    if args.memory:
        peak_memory(*cases[-1])


if __name__ == "__main__":
    main()
