"""Certified pruning against the dense kernel on the same inputs (docs/numerics.md#pruning).

    python benchmarks/bench_pruned.py [--quick] [--repeats R] [--no-sampling]

Each case times ``denoise`` with ``pruning = "auto"`` (the dispatch as users get
it: the sample gate, the per-query choice, the dense fallback) and with ``pruning =
"off"`` (the dense kernel), interleaved -- pruned, dense, dense, pruned, ... -- so
that the drift of a shared host hits both, and takes the medians. Printed per
case: both medians, their ratio against the target, the mean kept fraction of
``N`` and the share of queries pruned (from :func:`numdiff.pruned.kept_points` on
up to 1000 of the queries), and ``t_roof / t`` of the pruned path for the points it
keeps, ``t_roof = 4 M n_kept d / P_gemm + M n_kept / R_exp`` with the rates of
``bench_score.py`` measured in the same run. The index is built before the timing
(its build time is printed).

Then end to end: ``nd.sample`` (``N = 10^6``, ``d = 2``, ``n = 10^4``, 100 steps of
``exp_em`` on the ``uniform_lambda`` grid from ``T = 8`` to ``delta = 1e-4``, OU),
the sampler driven by the pruned results; at every step the same input goes
through the pruned path and the dense kernel, in alternating order, so that both
totals are over the very same 100 inputs. Printed: every step's two times and
kept fraction, the totals by band of ``sigma2``, and the final ``nearest`` call
both ways.

Measured (one run of the full command on this project's 2-core development host,
shared with other work, load average about 2): see the table in
docs/numerics.md#pruning, which lists every case with its target.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import numdiff as nd
from numdiff import pruned

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_score import exp_rate, gemm_rate

# Queries checked with kept_points per case (the count is a plan per query).
SURVEY_QUERIES = 1000


@dataclass
class Case:
    name: str
    dim: int
    n_data: int
    n_query: int
    data: str  # "normal" or "mixture"
    sigma2: float
    where: str  # "near", "far" or "midway"
    target: float  # least dense / pruned ratio
    repeats: int = 0  # at least this many (cheap cases: more, against the host's noise)


def full_cases():
    d2 = [(1e-4, 50.0), (1e-3, 15.0), (1e-2, 3.0), (3e-2, 0.95), (1e-1, 0.95)]
    cases = [Case(f"d=2 N(0,I) s2={s2:g}", 2, 10**6, 10**4, "normal", s2, "near", target)
             for s2, target in d2]
    cases += [Case(f"d=8 mixture s2={s2:g}", 8, 10**6, 10**4, "mixture", s2, "near", 50.0)
              for s2 in (1e-3, 1e-2)]
    cases += [Case(f"d=64 N(0,I) {where}", 64, 10**5, 1000, "normal", 1e-3, where, target, 7)
              for where, target in (("near", 1.0), ("far", 0.95), ("midway", 0.95))]
    return cases


def quick_cases():
    return [Case(c.name, c.dim, max(c.n_data // 10, 2000), max(c.n_query // 10, 100), c.data,
                 c.sigma2, c.where, c.target, c.repeats) for c in full_cases()]


def make_data(kind, n, dim, rng):
    """Standard normal data, or a mixture of 100 well-separated components of std 0.1."""
    if kind == "normal":
        return rng.standard_normal((n, dim))
    centres = 3.0 * rng.standard_normal((100, dim))
    return centres[rng.integers(100, size=n)] + 0.1 * rng.standard_normal((n, dim))


def make_queries(data, alpha, sigma2, where, m, rng):
    """Near the data (``alpha x_k + sigma z``), far from every point (``|x| ~ 30``), or
    midway between two points."""
    n, dim = data.shape
    if where == "near":
        return alpha * data[rng.integers(n, size=m)] + math.sqrt(sigma2) * rng.standard_normal((m, dim))
    if where == "far":
        return 30.0 * rng.standard_normal((m, dim)) / math.sqrt(dim)
    a, b = data[rng.integers(n, size=m)], data[rng.integers(n, size=m)]
    return alpha * 0.5 * (a + b) + 1e-3 * math.sqrt(sigma2) * rng.standard_normal((m, dim))


def ou_time(sigma2):
    return -0.5 * math.log1p(-sigma2)


def interleaved(pruned_call, dense_call, repeats):
    """Medians of ``repeats`` timings of each, taken alternately (and in alternating
    order, so that neither always runs first)."""
    times = {"pruned": [], "dense": []}
    pair = [("pruned", pruned_call), ("dense", dense_call)]
    for repeat in range(repeats):
        for key, call in pair[:: 1 if repeat % 2 == 0 else -1]:
            start = time.perf_counter()
            call()
            times[key].append(time.perf_counter() - start)
    return float(np.median(times["pruned"])), float(np.median(times["dense"]))


def run_case(case, repeats, p_gemm, r_exp):
    rng = np.random.default_rng(0)
    data = make_data(case.data, case.n_data, case.dim, rng)
    f = nd.EmpiricalScore(data, nd.OU())
    start = time.perf_counter()
    index = pruned.index_of(f)
    build = time.perf_counter() - start
    t = ou_time(case.sigma2)
    alpha = float(f.schedule.alpha(t))
    x = make_queries(data, alpha, case.sigma2, case.where, case.n_query, rng)
    survey = x[np.linspace(0, len(x) - 1, min(len(x), SURVEY_QUERIES)).astype(int)]
    kept = pruned.kept_points(f, t, survey)
    limit = (pruned.dispatch.MAX_FRACTION_DIRECT if case.dim <= 16
             else pruned.dispatch.MAX_FRACTION_BLAS) * f.n_data
    taken = kept <= limit
    n_kept = float(np.mean(np.where(taken, kept, 0.0)))

    def call(mode):
        def run():
            f.pruning = mode
            f.denoise(t, x)
        return run

    for mode in ("auto", "off"):  # compile outside the timing
        f.pruning = mode
        f.denoise(t, x[:8])
    t_pruned, t_dense = interleaved(call("auto"), call("off"), max(repeats, case.repeats))
    share = float(np.mean(taken))
    kept_roof = share * case.n_query * n_kept * (4.0 * case.dim / p_gemm + 1.0 / r_exp)
    ratio = t_dense / t_pruned
    index_mb = sum(a.nbytes for a in index.arrays()) / 2**20
    print(f"{case.name:<24} {case.n_data:>8} {case.n_query:>6} | {t_pruned:>9.3f} {t_dense:>9.3f} "
          f"{ratio:>8.1f} {case.target:>7.2f} {'ok' if ratio >= case.target else 'MISS':>5} | "
          f"{np.mean(kept) / case.n_data:>7.4f} {share:>6.2f} {kept_roof / t_pruned:>6.2f} | "
          f"{build:>6.2f} {index_mb:>6.1f}", flush=True)
    return case.name, t_pruned, t_dense, ratio, case.target


def bench(cases, repeats):
    if hasattr(os, "getloadavg"):
        print(f"load average (1 min) = {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    p_gemm = gemm_rate()
    r_exp, cores = exp_rate()
    print(f"P_gemm = {p_gemm / 1e9:.1f} GFLOP/s, R_exp = {r_exp / 1e9:.2f} Gexp/s ({cores} cores), "
          f"median of {repeats} interleaved repeats")
    header = (f"{'case':<24} {'N':>8} {'M':>6} | {'pruned s':>9} {'dense s':>9} {'ratio':>8} "
              f"{'target':>7} {'':>5} | {'kept/N':>7} {'pruned':>6} {'roof':>6} | "
              f"{'build':>6} {'idx MB':>6}")
    print(header)
    print("-" * len(header))
    return [run_case(case, repeats, p_gemm, r_exp) for case in cases]


class TimedModel:
    """Score-model proxy for ``nd.sample``: every call runs the pruned path and the
    dense kernel on the same input, in alternating order, and returns the pruned
    result."""

    def __init__(self, model):
        self.model, self.schedule, self.dim = model, model.schedule, model.dim
        self.calls = []  # (t, pruned seconds, dense seconds, kept fraction)
        self.nearest_seconds = 0.0

    def _timed(self, mode, t, x):
        self.model.pruning = mode
        start = time.perf_counter()
        out = self.model.denoise(t, x)
        return out, time.perf_counter() - start

    def denoise(self, t, x):
        modes = ("auto", "off") if len(self.calls) % 2 == 0 else ("off", "auto")
        results = {mode: self._timed(mode, t, x) for mode in modes}
        self.model.pruning = "auto"
        sub = x[:: max(1, len(x) // 200)]
        kept = float(np.mean(pruned.kept_points(self.model, t, sub))) / self.model.n_data
        self.calls.append((float(np.max(t)), results["auto"][1], results["off"][1], kept))
        return results["auto"][0]

    def nearest(self, x, k=1):
        start = time.perf_counter()
        out = self.model.nearest(x, k)
        self.nearest_seconds = time.perf_counter() - start
        return out


def sampling(n_data, n_samples, steps):
    """End-to-end ``nd.sample``; each step's input through both paths."""
    rng = np.random.default_rng(0)
    data = rng.standard_normal((n_data, 2))
    f = nd.EmpiricalScore(data, nd.OU())
    f.denoise(1.0, data[:8])  # compile outside the timing
    f.pruning = "off"
    f.denoise(1.0, data[:8])
    f.pruning = "auto"
    model = TimedModel(f)
    result = nd.sample(model, n_samples, T=8.0, delta=1e-4, steps=steps, process="sde",
                       solver="exp_em", grid="uniform_lambda", rng=1)
    assert result.success, result.message
    f.pruning = "off"
    start = time.perf_counter()
    f.nearest(result.x, 1)
    dense_nearest = time.perf_counter() - start
    f.pruning = "auto"
    print(f"\nnd.sample: N = {n_data}, d = 2, n = {n_samples}, {steps} steps exp_em, "
          f"uniform_lambda, T = 8 -> delta = 1e-4 (OU); each step's input through both paths")
    print(f"{'step':>4} {'t':>10} {'sigma2':>10} {'kept/N':>8} {'pruned s':>9} {'dense s':>9} "
          f"{'ratio':>6}")
    sigma2s = np.array([float(f.schedule.sigma2(call[0])) for call in model.calls])
    for i, (t_i, t_pruned, t_dense, kept) in enumerate(model.calls):
        print(f"{i:>4} {t_i:>10.4g} {sigma2s[i]:>10.3g} {kept:>8.4f} {t_pruned:>9.3f} "
              f"{t_dense:>9.3f} {t_dense / t_pruned:>6.1f}")
    t_pruned = np.array([call[1] for call in model.calls])
    t_dense = np.array([call[2] for call in model.calls])
    print(f"{'sigma2 band':>16} {'steps':>5} {'pruned s':>9} {'dense s':>9} {'ratio':>6}")
    for low, high in ((0.1, np.inf), (0.01, 0.1), (0.0, 0.01)):
        band = (sigma2s >= low) & (sigma2s < high)
        print(f"{f'[{low:g}, {high:g})':>16} {band.sum():>5} {t_pruned[band].sum():>9.1f} "
              f"{t_dense[band].sum():>9.1f} {t_dense[band].sum() / t_pruned[band].sum():>6.2f}")
    print(f"denoise over the run: pruned {t_pruned.sum():.1f} s, dense {t_dense.sum():.1f} s, "
          f"ratio {t_dense.sum() / t_pruned.sum():.2f}")
    print(f"final nearest(x, 1): pruned {model.nearest_seconds:.2f} s, dense {dense_nearest:.2f} s")
    return t_pruned.sum(), t_dense.sum()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="reduced sizes, for a smoke run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-sampling", action="store_true", help="skip the end-to-end run")
    args = parser.parse_args(argv)
    rows = bench(quick_cases() if args.quick else full_cases(), args.repeats)
    missed = [name for name, _, _, ratio, target in rows if ratio < target]
    print(f"\n{len(rows) - len(missed)} of {len(rows)} cases reach their target"
          + (f"; missed: {', '.join(missed)}" if missed else ""))
    if not args.no_sampling:
        if args.quick:
            sampling(10**5, 1000, 20)
        else:
            sampling(10**6, 10**4, 100)


if __name__ == "__main__":
    main()
