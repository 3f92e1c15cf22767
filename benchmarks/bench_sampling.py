"""Python overhead of ``nd.sample`` against the time spent in the denoiser.

For each case the sampler runs on a wrapper of :class:`numdiff.EmpiricalScore`
that times every ``denoise`` call (and the final nearest-neighbour search,
which is not per step). The overhead ratio is

    (total time - denoiser time - nearest time) / denoiser time,

i.e. what the driver and the solver's array arithmetic cost per unit of kernel
work. The script prints the median and the spread over repeats; it asserts
nothing (a busy machine moves the numbers), so it is a benchmark, not a test.
At ``n = N = 4096, d = 2`` the median ratio is about 1e-2.

Usage::

    python benchmarks/bench_sampling.py            # full sizes
    python benchmarks/bench_sampling.py --quick    # tiny sizes, seconds
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import numdiff as nd

# (n samples = N data points, d, steps, process, solver)
SIZES = [
    (4096, 2, 4, "sde", "euler"),
    (4096, 2, 4, "sde", "heun"),
    (4096, 2, 4, "ode", "dpmpp_2m"),
    (4096, 64, 4, "sde", "exp_em"),
]
QUICK_SIZES = [
    (64, 2, 2, "sde", "euler"),
    (64, 2, 2, "ode", "dpmpp_2m"),
]


class TimedScore:
    """An :class:`~numdiff.EmpiricalScore` whose ``denoise`` and ``nearest`` are timed.

    Parameters
    ----------
    inner : EmpiricalScore
        The model to time.
    """

    def __init__(self, inner):
        self.inner = inner
        self.schedule, self.dim, self.data = inner.schedule, inner.dim, inner.data
        self.kernel = self.other = 0.0

    def denoise(self, t, x):
        """Timed :meth:`EmpiricalScore.denoise`.

        Parameters
        ----------
        t : float
            Time.
        x : ndarray, shape (M, d)
            Queries.

        Returns
        -------
        ndarray, shape (M, d)
        """
        t0 = time.perf_counter()
        out = self.inner.denoise(t, x)
        self.kernel += time.perf_counter() - t0
        return out

    def nearest(self, x, k=1):
        """Timed :meth:`EmpiricalScore.nearest`.

        Parameters
        ----------
        x : ndarray, shape (M, d)
            Queries.
        k : int, optional
            Number of neighbours.

        Returns
        -------
        idx, dist : ndarray, shape (M, k)
        """
        t0 = time.perf_counter()
        out = self.inner.nearest(x, k)
        self.other += time.perf_counter() - t0
        return out


def overhead(n, d, steps, process, solver, repeats=5, seed=0):
    """Overhead ratios of one case over ``repeats`` runs (after one warm-up run).

    Parameters
    ----------
    n : int
        Samples, and data points.
    d : int
        Dimension.
    steps : int
        Steps of a ``uniform_lambda`` grid from ``T = 1`` to ``delta = 0.01``.
    process, solver : str
        As for :func:`numdiff.sample`.
    repeats : int, optional
        Timed runs.
    seed : int, optional
        Seed of the data and of the sampler.

    Returns
    -------
    ratios : ndarray, shape (repeats,)
        Overhead over denoiser time, per run.
    kernel : ndarray, shape (repeats,)
        Denoiser seconds per run.
    """
    data = np.random.default_rng(seed).standard_normal((n, d))
    inner = nd.EmpiricalScore(data, nd.OU())
    ratios, kernel = [], []
    for rep in range(repeats + 1):  # the first run compiles and warms caches
        model = TimedScore(inner)
        t0 = time.perf_counter()
        nd.sample(model, n, T=1.0, delta=0.01, steps=steps, process=process, solver=solver,
                  grid="uniform_lambda", rng=seed, progress=False)
        total = time.perf_counter() - t0
        if rep:
            ratios.append((total - model.kernel - model.other) / model.kernel)
            kernel.append(model.kernel)
    return np.array(ratios), np.array(kernel)


def bench(sizes, repeats=5):
    """Run and print every case.

    Parameters
    ----------
    sizes : list of tuple
        ``(n, d, steps, process, solver)`` per case.
    repeats : int, optional
        Timed runs per case.

    Returns
    -------
    list of tuple
        ``(n, d, steps, process, solver, median ratio, min ratio, max ratio,
        median denoiser seconds)`` per case.
    """
    rows = []
    print(f"{'n=N':>6} {'d':>4} {'steps':>5} {'process':>7} {'solver':>9} "
          f"{'overhead median':>15} {'min':>8} {'max':>8} {'kernel s':>9}")
    for n, d, steps, process, solver in sizes:
        ratios, kernel = overhead(n, d, steps, process, solver, repeats)
        row = (n, d, steps, process, solver, float(np.median(ratios)), float(ratios.min()),
               float(ratios.max()), float(np.median(kernel)))
        rows.append(row)
        print(f"{n:>6} {d:>4} {steps:>5} {process:>7} {solver:>9} {row[5]:>15.3e} "
              f"{row[6]:>8.2e} {row[7]:>8.2e} {row[8]:>9.3e}")
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
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case")
    args = parser.parse_args(argv)
    bench(QUICK_SIZES if args.quick else SIZES, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
