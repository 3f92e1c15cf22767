"""The memorisation audit at scale against plain numpy / scipy nearest-neighbour searches.

Synthetic case of the issue: ``N = 10^5`` training points in ``d = 3072``
(the size of a CIFAR-10 image), ``M = 10^4`` generated samples of which a
tenth are training points plus small noise. Timed in the same run:

* ``audit``: :func:`numdiff.audit.audit` without a held-out set (exact nearest
  and second-nearest training points of every sample, the ratio test, the
  leave-one-out calibration of 2000 training points, the classes);
* ``numpy GEMM``: the plain expanded search ``|y|^2 - 2 x.y`` by chunks of
  queries, ``argpartition`` for the two smallest, distances from the expansion
  (what one writes by hand; not exact: the expansion loses digits);
* ``scipy cdist``: ``scipy.spatial.distance.cdist(..., "sqeuclidean")`` by
  chunks plus ``argpartition``, timed on a subset of the queries and scaled
  to ``M`` (it is an order of magnitude slower than the GEMM).

Peak memory: the largest traced numpy allocation above the inputs during each
phase (``tracemalloc``, which sees numpy's buffers but not BLAS's internal
ones) and the process's peak resident set (``ru_maxrss``), which includes the
inputs.

Measured on this project's 2-core development machine (float64; ``python
benchmarks/bench_audit.py``), two runs while other work shared the machine:
audit 9.36 and 11.6 s per 1000 queries (it makes 12000: the 10^4 samples and
2000 leave-one-out ones), numpy GEMM 7.84 and 9.26 s per 1000, so the exact
audit costs 1.19x and 1.25x the plain (inexact) GEMM per query; cdist 261 and
253 s per 1000. Peak numpy memory above the 2578 MiB of inputs: audit 878 and
750 MiB, GEMM 1564 MiB, cdist 125 MiB; peak resident set 4306 MiB. Both found
the same nearest indices, and the audit recovered the planted fraction
(0.1006). The audit's ranking tile holds ``2^24`` numbers (167 queries at
``N = 10^5``); with ``2^22`` (41 queries, so the training set streamed from
memory four times as often) it cost 1.48x the GEMM.

``--partition`` times instead the k-means partition of ``C_T``
(:func:`numdiff.audit.cells.partition`, 50 cells fitted on 20000 training points,
``d = 768``, the size of common image embeddings) with one restart and with
ten (the default), interleaved, three runs each: the median ratio is the cost
of the stabler partition. Measured on the loaded 2-core machine: medians 10.0 s
and 84.3 s, ratio 8.4 (one run of each at ``d = 3072``: 52 s and 429 s).

Usage::

    python benchmarks/bench_audit.py              # N = 10^5, M = 10^4, d = 3072
    python benchmarks/bench_audit.py --small      # seconds
    python benchmarks/bench_audit.py --partition  # minutes
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np
from scipy.spatial.distance import cdist

from numdiff.audit import audit

FULL = {"n_train": 100_000, "n_samples": 10_000, "dim": 3072, "cdist_queries": 100}
SMALL = {"n_train": 2_000, "n_samples": 200, "dim": 256, "cdist_queries": 50}
COPY_FRACTION = 0.1


def make_data(n_train, n_samples, dim, seed=0):
    """Training points of ``N(0, I)`` and samples of which a tenth are noisy copies.

    Parameters
    ----------
    n_train, n_samples, dim : int
    seed : int

    Returns
    -------
    train : ndarray, shape (n_train, dim)
    samples : ndarray, shape (n_samples, dim)
    copied : ndarray of bool, shape (n_samples,)
    """
    rng = np.random.default_rng(seed)
    train = np.empty((n_train, dim))
    for lo in range(0, n_train, 4096):  # in blocks: no temporary of the full size
        train[lo:lo + 4096] = rng.standard_normal((min(4096, n_train - lo), dim))
    samples = rng.standard_normal((n_samples, dim))
    copied = rng.random(n_samples) < COPY_FRACTION
    k = rng.integers(n_train, size=int(copied.sum()))
    samples[copied] = train[k] + 0.01 * rng.standard_normal((k.size, dim))
    return train, samples, copied


def gemm_knn(train, x, k=2, rows=512):
    """Plain numpy search by the expansion ``|y|^2 - 2 x.y`` (not exact).

    Parameters
    ----------
    train : ndarray, shape (N, d)
    x : ndarray, shape (M, d)
    k : int
    rows : int
        Queries per chunk.

    Returns
    -------
    idx : ndarray of int, shape (M, k)
    dist : ndarray, shape (M, k)
    """
    sq = np.einsum("ij,ij->i", train, train)
    idx = np.empty((x.shape[0], k), dtype=np.int64)
    dist = np.empty((x.shape[0], k))
    for lo in range(0, x.shape[0], rows):
        q = x[lo:lo + rows]
        g = sq[None, :] - 2.0 * (q @ train.T)
        cand = np.argpartition(g, k, axis=1)[:, :k]
        val = np.take_along_axis(g, cand, axis=1)
        order = np.argsort(val, axis=1)
        idx[lo:lo + rows] = np.take_along_axis(cand, order, axis=1)
        val = np.take_along_axis(val, order, axis=1) + np.einsum("ij,ij->i", q, q)[:, None]
        dist[lo:lo + rows] = np.sqrt(np.maximum(val, 0.0))
    return idx, dist


def cdist_knn(train, x, k=2, rows=64):
    """scipy ``cdist`` (squared Euclidean) by chunks of queries, then ``argpartition``.

    Parameters
    ----------
    train : ndarray, shape (N, d)
    x : ndarray, shape (M, d)
    k : int
    rows : int

    Returns
    -------
    idx : ndarray of int, shape (M, k)
    dist : ndarray, shape (M, k)
    """
    idx = np.empty((x.shape[0], k), dtype=np.int64)
    dist = np.empty((x.shape[0], k))
    for lo in range(0, x.shape[0], rows):
        g = cdist(x[lo:lo + rows], train, "sqeuclidean")
        cand = np.argpartition(g, k, axis=1)[:, :k]
        val = np.take_along_axis(g, cand, axis=1)
        order = np.argsort(val, axis=1)
        idx[lo:lo + rows] = np.take_along_axis(cand, order, axis=1)
        dist[lo:lo + rows] = np.sqrt(np.take_along_axis(val, order, axis=1))
    return idx, dist


def _timed(func):
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    out = func()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return out, seconds, peak / 2**20


def bench(n_train, n_samples, dim, cdist_queries, seed=0, progress=None):
    """Run the three searches; return a dict of timings, peaks and agreement.

    Parameters
    ----------
    n_train, n_samples, dim : int
    cdist_queries : int
        Queries timed with ``cdist`` (scaled to ``n_samples``).
    seed : int
    progress : bool or None

    Returns
    -------
    dict
    """
    train, samples, copied = make_data(n_train, n_samples, dim, seed)
    input_mb = (train.nbytes + samples.nbytes) / 2**20
    (g_idx, g_dist), t_gemm, m_gemm = _timed(lambda: gemm_knn(train, samples))
    sub = samples[:cdist_queries]
    (c_idx, _), t_cdist, m_cdist = _timed(lambda: cdist_knn(train, sub))
    # Last: the audit centres the training set in place (copy=False).
    res, t_audit, m_audit = _timed(lambda: audit(train, samples, copy=False, progress=progress))
    ratio_gemm = g_dist[:, 0] / g_dist[:, 1]
    return {
        "n_train": n_train, "n_samples": n_samples, "dim": dim, "input_mb": input_mb,
        "t_audit": t_audit, "t_gemm": t_gemm,
        "audit_queries": n_samples + min(2000, n_train),
        "t_cdist_scaled": t_cdist * n_samples / cdist_queries, "cdist_queries": cdist_queries,
        "peak_audit_mb": m_audit, "peak_gemm_mb": m_gemm, "peak_cdist_mb": m_cdist,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "index_agreement_gemm": float(np.mean(g_idx[:, 0] == res.nearest_index)),
        "index_agreement_cdist": float(np.mean(c_idx[:, 0] == res.nearest_index[:cdist_queries])),
        "memorised_recovered": res.memorized_fraction, "memorised_true": float(copied.mean()),
        "ratio_test_disagreements_gemm": int(np.sum((ratio_gemm < 1 / 3) != (res.ratio < 1 / 3))),
    }


def bench_partition(n_points=20000, dim=768, n_cells=50, repeats=3, seed=0):
    """Median times of the k-means partition with 1 and 10 restarts, interleaved.

    Parameters
    ----------
    n_points, dim, n_cells, repeats, seed : int

    Returns
    -------
    dict
        ``n_init`` -> list of seconds.
    """
    from numdiff.audit.cells import partition

    train = np.random.default_rng(seed).standard_normal((n_points, dim))
    times = {1: [], 10: []}
    for r in range(repeats):
        for n_init, runs in times.items():
            t0 = time.perf_counter()
            partition(train, [], n_cells, seed + r, n_init=n_init, max_points=n_points)
            runs.append(time.perf_counter() - t0)
    one, ten = np.median(times[1]), np.median(times[10])
    print(f"k-means partition, {n_points} points, d = {dim}, {n_cells} cells, {repeats} "
          f"interleaved runs: median {one:.1f} s (1 restart), {ten:.1f} s (10 restarts), "
          f"ratio {ten / one:.1f}")
    return times


def report(r):
    """Print the result of :func:`bench`.

    Parameters
    ----------
    r : dict

    Returns
    -------
    str
        The printed text.
    """
    lines = [
        (f"audit of M = {r['n_samples']} samples against N = {r['n_train']} training points, "
        f"d = {r['dim']} (inputs {r['input_mb']:.0f} MiB)"),
        f"{'method':<34}{'seconds':>10}{'s / 1000 q':>12}{'vs audit':>10}{'peak MiB':>10}",
        (f"{'numdiff.audit (exact, + classes)':<34}{r['t_audit']:>10.2f}"
         f"{1000 * r['t_audit'] / r['audit_queries']:>12.3f}{1.0:>10.2f}"
         f"{r['peak_audit_mb']:>10.0f}"),
        (f"{'numpy GEMM + argpartition':<34}{r['t_gemm']:>10.2f}"
         f"{1000 * r['t_gemm'] / r['n_samples']:>12.3f}"
         f"{r['t_gemm'] / r['t_audit']:>10.2f}{r['peak_gemm_mb']:>10.0f}"),
        (f"{'scipy cdist + argpartition *':<34}{r['t_cdist_scaled']:>10.2f}"
         f"{1000 * r['t_cdist_scaled'] / r['n_samples']:>12.3f}"
         f"{r['t_cdist_scaled'] / r['t_audit']:>10.2f}{r['peak_cdist_mb']:>10.0f}"),
        (f"* timed on {r['cdist_queries']} queries, scaled to M; the audit makes "
         f"{r['audit_queries']} queries (samples + leave-one-out calibration)"),
        f"peak resident set of the process (inputs included): {r['maxrss_mb']:.0f} MiB",
        (f"nearest index agreement: GEMM {r['index_agreement_gemm']:.4f}, "
        f"cdist {r['index_agreement_cdist']:.4f}; ratio-test disagreements with GEMM "
        f"{r['ratio_test_disagreements_gemm']}"),
        (f"memorised fraction: recovered {r['memorised_recovered']:.4f}, "
        f"true copies {r['memorised_true']:.4f}"),
    ]
    text = "\n".join(lines)
    print(text)
    return text


def main(argv=None):
    """Command line: ``--small`` for a smoke run.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    dict
    """
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--small", action="store_true", help="tiny sizes (seconds)")
    p.add_argument("--partition", action="store_true",
                   help="time the k-means partition with 1 and 10 restarts instead")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.partition:
        return bench_partition(seed=args.seed)
    sizes = SMALL if args.small else FULL
    r = bench(**sizes, seed=args.seed)
    report(r)
    return r


if __name__ == "__main__":
    main()
