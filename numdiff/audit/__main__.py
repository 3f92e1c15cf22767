"""``python -m numdiff.audit --train TRAIN --samples SAMPLES [--holdout HOLDOUT] --out DIR``.

Each set is a ``.npy`` / ``.npz`` array ``(n, d)`` or a folder of PNG / JPEG
images. Writes ``DIR/REPORT.md``, ``results.json``, ``samples.csv``,
``gallery.png`` and ``ratios.png`` and prints the set-level numbers.

Exit status: 0 when the audit ran (whatever it found), 2 for unusable inputs
(one line on stderr says which set and why), 1 when ``--fail-on-copying`` is
given and data-copying is flagged.
"""

from __future__ import annotations

import argparse
import sys

from . import AuditInputError, audit
from .loading import load_set
from .report import write_report


def parse_args(argv=None):
    """Command-line arguments.

    Parameters
    ----------
    argv : list of str, optional
        Defaults to ``sys.argv[1:]``.

    Returns
    -------
    argparse.Namespace
    """
    p = argparse.ArgumentParser(prog="python -m numdiff.audit", description=__doc__.split(
        "\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True, help="training set: .npy/.npz or image folder")
    p.add_argument("--samples", required=True, help="generated samples")
    p.add_argument("--holdout", help="held-out points of the data law (enables C_T)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--threshold", type=float, default=1.0 / 3.0, help="ratio threshold")
    p.add_argument("--near-quantile", type=float, default=0.05)
    p.add_argument("--verbatim-quantile", type=float, default=0.001)
    p.add_argument("--alpha", type=float, default=0.05, help="level of the C_T flag")
    p.add_argument("--cells", type=int, default=None, help="k-means cells for C_T")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--fail-on-copying", action="store_true",
                   help="exit with status 1 when C_T flags data-copying")
    return p.parse_args(argv)


def main(argv=None):
    """Run the audit from the command line.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
        The exit status.
    """
    args = parse_args(argv)
    try:
        train = load_set(args.train, "train")
        samples = load_set(args.samples, "samples", train)
        holdout = None if args.holdout is None else load_set(args.holdout, "holdout", train)
        result = audit(
            train, samples, holdout, threshold=args.threshold,
            near_quantile=args.near_quantile, verbatim_quantile=args.verbatim_quantile,
            alpha=args.alpha, n_cells=args.cells, seed=args.seed,
            progress=False if args.no_progress else None, copy=False,
        )
    except (AuditInputError, ValueError, TypeError) as err:
        print(f"numdiff.audit: {err}", file=sys.stderr)
        return 2
    write_report(result, args.out, train.x, samples.x, train_shift=result.extra["train_mean"])
    lo, hi = result.memorized_interval
    print(f"memorised fraction {result.memorized_fraction:.4f} "
          f"[{lo:.4f}, {hi:.4f}] ({result.memorized_count} of {result.n_samples}); "
          + ", ".join(f"{k}: {v}" for k, v in result.class_counts.items()))
    if result.c_t is not None:
        print(f"C_T = {result.c_t.statistic:.4g} (z = {result.c_t.z:.4g}, "
              f"p = {result.c_t.pvalue:.3g}); Mann-Whitney Z_U = {result.mann_whitney.z:.4g}; "
              f"data-copying flagged: {result.flagged}")
    print(f"report: {args.out}/REPORT.md")
    return 1 if args.fail_on_copying and result.flagged else 0


if __name__ == "__main__":
    sys.exit(main())
