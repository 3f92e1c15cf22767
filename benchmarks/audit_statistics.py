"""The audit's C_T with both distances, its partition spread, verdicts and exit codes.

Not a timing benchmark: the numbers that describe the statistic, reproducible
from one command. The data law is ``N(0, I_8)``; ``N = m = n = 1000`` training,
generated and held-out points (the sizes at which the statistic was compared
with the paper's companion code). Three models:

* ``null``: fresh draws of the law (a perfect model);
* ``copying``: 30% of the samples are training points plus ``N(0, 0.01^2 I)``;
* ``over-dispersed``: draws of ``N(0, 1.5^2 I)`` (under-fitting).

Printed:

1. ``C_T`` and its z with ``distance="train"`` (numdiff) and ``distance="cell"``
   (the companion code's statistic) on the same cells, 10 cells, seed 0;
2. the spread of z and raw ``C_T`` over 20 partition seeds, k-means with
   ``n_init = 1`` (the former partition) and ``n_init = 10`` (the default);
3. raw ``C_T`` and z of the copying model at 5, 10 and 20 cells;
4. the null calibration of both distances over 200 data seeds (N = m = n =
   300, d = 8): the share of "data-copying" and "under-fitting" verdicts at
   alpha = 0.05, and how often the two distances disagree;
5. the CLI's verdict and exit status with ``--fail-on any`` for each model, and
   the class counts against a perfect model's interval; the reports (with
   their figures) are left in ``--out`` (default ``audit_statistics_out``).

Usage::

    python benchmarks/audit_statistics.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

import numpy as np

from numdiff.audit import audit
from numdiff.audit.__main__ import main as cli

D, N = 8, 1000
MODELS = ("null", "copying", "over-dispersed")


def make_case(model, n=N, d=D, seed=0):
    """Training, held-out and generated sets of one model.

    Parameters
    ----------
    model : str
        One of :data:`MODELS`.
    n, d : int
        Points per set and dimension.
    seed : int

    Returns
    -------
    train, holdout, samples : ndarray, shape (n, d) each
    """
    rng = np.random.default_rng(seed)
    train, holdout = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    samples = rng.standard_normal((n, d))
    if model == "copying":
        copied = rng.random(n) < 0.3
        k = rng.integers(n, size=int(copied.sum()))
        samples[copied] = train[k] + 0.01 * rng.standard_normal((k.size, d))
    elif model == "over-dispersed":
        samples *= 1.5
    return train, holdout, samples


def both_distances():
    print("1. C_T on the same 10 cells, seed 0 (N = m = n = 1000, d = 8)")
    print(f"{'model':>15} | {'train: C_T':>10} {'z':>8} | {'cell: C_T':>10} {'z':>8} | "
          "samples whose nearest training point is in another cell")
    for model in MODELS:
        train, holdout, x = make_case(model)
        res = audit(train, x, holdout, n_cells=10, progress=False)
        t, c = res.c_t_by_distance["train"], res.c_t_by_distance["cell"]
        other = np.mean(res.cells["train"][res.nearest_index] != res.cells["samples"])
        print(f"{model:>15} | {t.statistic:10.4f} {t.z:8.3f} | {c.statistic:10.4f} {c.z:8.3f} | "
              f"{other:.3f}")


def partition_spread(seeds):
    print(f"\n2. spread over {seeds} partition seeds (10 cells; same data)")
    print(f"{'model':>15} {'n_init':>6} {'distance':>8} | {'z mean':>8} {'z sd':>7} "
          f"{'z range':>17} | {'C_T sd':>7}")
    for model in MODELS:
        train, holdout, x = make_case(model)
        for n_init in (1, 10):
            res = audit(train, x, holdout, n_cells=10, kmeans_n_init=n_init,
                        partition_repeats=seeds, progress=False)
            for name in ("train", "cell"):
                z = np.array(res.partition_spread[name]["z"])
                stat = np.array(res.partition_spread[name]["statistic"])
                print(f"{model:>15} {n_init:6d} {name:>8} | {z.mean():8.3f} {z.std(ddof=1):7.3f} "
                      f"[{z.min():7.3f}, {z.max():7.3f}] | {stat.std(ddof=1):7.4f}")


def cell_count():
    print("\n3. copying model: raw C_T and z against the number of cells")
    train, holdout, x = make_case("copying")
    for cells in (5, 10, 20):
        res = audit(train, x, holdout, n_cells=cells, progress=False)
        row = "  ".join(f"{k}: C_T {v.statistic:8.3f} z {v.z:8.3f}"
                        for k, v in res.c_t_by_distance.items())
        print(f"  {cells:2d} cells  {row}")


def null_calibration(seeds):
    print(f"\n4. null calibration over {seeds} data seeds (N = m = n = 300, d = 8, 3 cells)")
    verdicts = {"train": [], "cell": []}
    covered = 0
    for seed in range(seeds):
        train, holdout, x = make_case("null", n=300, seed=1000 + seed)
        res = audit(train, x, holdout, seed=seed, progress=False)
        for name, found in verdicts.items():
            z = res.c_t_by_distance[name].z
            found.append("copying" if z < -1.6449 else
                         "under-fitting" if z > 1.6449 else "neither")
        lo, hi = res.perfect_model["near copy"]["interval"]
        covered += lo <= res.class_counts["near copy"] <= hi
    for name, v in verdicts.items():
        v = np.array(v)
        print(f"  {name:>5}: data-copying {np.mean(v == 'copying'):.3f}, "
              f"under-fitting {np.mean(v == 'under-fitting'):.3f} (each expected 0.05)")
    disagree = np.mean(np.array(verdicts["train"]) != np.array(verdicts["cell"]))
    print(f"  verdicts differ between the distances in {disagree:.3f} of seeds")
    print(f"  near-copy count inside the perfect model's 95% interval: {covered / seeds:.3f}")


def cli_runs(out):
    print(f"\n5. CLI with --fail-on any (reports in {out}/<model>/)")
    for model in MODELS:
        train, holdout, x = make_case(model)
        folder = out / model
        folder.mkdir(parents=True, exist_ok=True)
        for name, arr in (("train", train), ("holdout", holdout), ("samples", x)):
            np.save(folder / f"{name}.npy", arr)
        with contextlib.redirect_stdout(io.StringIO()):
            status = cli(["--train", str(folder / "train.npy"), "--samples",
                          str(folder / "samples.npy"), "--holdout", str(folder / "holdout.npy"),
                          "--out", str(folder / "report"), "--no-progress", "--fail-on", "any"])
        s = json.loads((folder / "report" / "results.json").read_text())
        near = s["perfect_model"]["near copy"]
        print(f"  {model:>15}: verdict {s['verdict']!s:>13}, exit {status}; classes "
              f"{s['class_counts']}; perfect model near copies {near['expected']:.1f} "
              f"{near['interval']}")


def main():
    """Print the five tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="audit_statistics_out", type=Path)
    parser.add_argument("--quick", action="store_true", help="5 partition seeds, 40 null seeds")
    args = parser.parse_args()
    both_distances()
    partition_spread(5 if args.quick else 20)
    cell_count()
    null_calibration(40 if args.quick else 200)
    cli_runs(args.out)


if __name__ == "__main__":
    main()
