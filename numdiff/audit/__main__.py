"""``python -m numdiff.audit --train TRAIN --samples SAMPLES [--holdout HOLDOUT] --out DIR``.

Each set is a .npy / .npz array (n, d) or a folder of PNG / JPEG images.
Distances are measured between the points, or between their features when
given (--features-*, or an .npz holding the points and an array named
"features"; see docs/audit.md). Writes REPORT.md, results.json, samples.csv,
gallery.png and ratios.png into the folder --out and prints the set-level
numbers, the thresholds used and the verdict.

Exit status:
  0  the audit ran, and its verdict is not one named by --fail-on
  2  unusable inputs or options (one line on stderr says which and why)
  3  verdict "data-copying" and --fail-on copying or any
  4  verdict "under-fitting" and --fail-on under-fitting or any
  5  --fail-on given but no verdict reached (no cell held enough samples)
"""

from __future__ import annotations

import argparse
import sys

from . import DISTANCES, AuditInputError, audit
from .loading import load_set
from .report import write_report

#: Exit statuses (see the module docstring).
EXIT_OK, EXIT_INPUT, EXIT_COPYING, EXIT_UNDERFITTING, EXIT_NO_VERDICT = 0, 2, 3, 4, 5

#: ``--fail-on`` choice -> verdicts that fail.
FAIL_ON = {"copying": ("data-copying",), "under-fitting": ("under-fitting",),
           "any": ("data-copying", "under-fitting")}


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """The docstring as written, and each option's default (when it has one) in its help."""

    def _get_help_string(self, action):
        text = action.help or ""
        shown = not any(action.default is v for v in (None, False, argparse.SUPPRESS))
        if shown and "default" not in text:
            text += " (default: %(default).4g)" if isinstance(action.default, float) else \
                " (default: %(default)s)"
        return text


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
    p = argparse.ArgumentParser(prog="python -m numdiff.audit",
                                description=__doc__.split("\n\n", 1)[1], formatter_class=_Formatter)
    sets = p.add_argument_group("sets")
    sets.add_argument("--train", required=True, help="training set: .npy/.npz or image folder")
    sets.add_argument("--samples", required=True, help="generated samples, same format")
    sets.add_argument("--holdout", help="held-out points of the data law, not trained on: "
                      "enables C_T, its verdict and --fail-on")
    sets.add_argument("--out", required=True, metavar="DIR",
                      help="folder to write REPORT.md, results.json, samples.csv, gallery.png "
                      "and ratios.png into (created if missing)")
    for name in ("train", "samples", "holdout"):
        sets.add_argument(f"--features-{name}", metavar="FILE",
                          help=f"features of the {name} set (.npy/.npz, one row per point): "
                          "distances are measured between them, the points are only shown")
    cls = p.add_argument_group("classes")
    cls.add_argument("--threshold", type=float, default=1.0 / 3.0,
                     help="ratio test: nearest / second-nearest training distance below it")
    cls.add_argument("--near-quantile", type=float, default=0.05,
                     help="near-copy threshold: this quantile of the reference distances")
    cls.add_argument("--verbatim-quantile", type=float, default=0.001,
                     help="verbatim threshold: this quantile of the reference distances")
    cls.add_argument("--near-distance", type=float,
                     help="absolute near-copy threshold, replacing --near-quantile")
    cls.add_argument("--verbatim-distance", type=float,
                     help="absolute verbatim threshold, replacing --verbatim-quantile")
    ct = p.add_argument_group("the data-copying test C_T (needs --holdout)")
    ct.add_argument("--distance", choices=DISTANCES, default="train",
                    help="L to the whole training set (numdiff), or to the training points of "
                    "the point's cell with the continuity correction (the paper's code); both "
                    "are reported")
    ct.add_argument("--cells", type=int, default=None,
                    help="k-means cells (default: min(samples, holdout) // 100, clipped "
                    "to [1, 50])")
    ct.add_argument("--min-generated", type=int, default=21,
                    help="generated points a cell needs to enter C_T")
    ct.add_argument("--kmeans-n-init", type=int, default=10, help="k-means restarts")
    ct.add_argument("--partition-repeats", type=int, default=1,
                    help="also report C_T's spread over this many partition seeds")
    ct.add_argument("--alpha", type=float, default=0.05,
                    help="level of each side of the verdict")
    ct.add_argument("--fail-on", choices=tuple(FAIL_ON),
                    help="exit with status 3 (copying) or 4 (under-fitting) on that verdict")
    ct.add_argument("--fail-on-copying", action="store_true",
                    help="same as --fail-on copying")
    p.add_argument("--seed", type=int, default=0, help="seed of the partition")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if args.fail_on_copying:
        args.fail_on = args.fail_on or "copying"
    return args


def exit_status(verdict, fail_on):
    """The exit status of an audit that ran.

    Parameters
    ----------
    verdict : str or None
        :attr:`~numdiff.audit.AuditResult.verdict`.
    fail_on : str or None
        A key of :data:`FAIL_ON`, or ``None``.

    Returns
    -------
    int
        :data:`EXIT_OK`, :data:`EXIT_COPYING`, :data:`EXIT_UNDERFITTING` or
        :data:`EXIT_NO_VERDICT`.
    """
    if not fail_on:
        return EXIT_OK
    if verdict is None:
        return EXIT_NO_VERDICT
    if verdict in FAIL_ON[fail_on]:
        return EXIT_COPYING if verdict == "data-copying" else EXIT_UNDERFITTING
    return EXIT_OK


def _print_summary(result):
    s = result.summary()
    lo, hi = result.memorized_interval
    print(f"memorised fraction {result.memorized_fraction:.4f} "
          f"[{lo:.4f}, {hi:.4f}] ({result.memorized_count} of {result.n_samples})")
    parts = []
    for name, count in result.class_counts.items():
        perfect = s["perfect_model"].get(name)
        extra = "" if perfect is None else (
            f" (perfect model: {perfect['expected']:.1f} "
            f"[{perfect['interval'][0]}, {perfect['interval'][1]}])")
        parts.append(f"{name}: {count}{extra}")
    print("; ".join(parts))
    th = result.thresholds
    print(f"thresholds: ratio < {th['ratio']:.4g}; near copy: distance < "
          f"{th['near_distance']:.6g} ({th['near_source']}); verbatim: distance <= "
          f"{th['verbatim_distance']:.6g} ({th['verbatim_source']}); reference: "
          f"{result.calibration}")
    if result.c_t is not None:
        for name, ct in result.c_t_by_distance.items():
            used = " (used)" if name == result.distance else ""
            print(f"C_T distance={name}{used} = {ct.statistic:.4g} (z = {ct.z:.4g}, "
                  f"p copying = {ct.pvalue:.3g}, p under-fitting = {ct.pvalue_underfit:.3g})")
        print(f"Mann-Whitney Z_U = {result.mann_whitney.z:.4g}; verdict: {result.verdict}")


def main(argv=None):
    """Run the audit from the command line.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
        The exit status (see the module docstring).
    """
    args = parse_args(argv)
    if args.fail_on and args.holdout is None:
        print("numdiff.audit: --fail-on needs --holdout (the verdict comes from C_T)",
              file=sys.stderr)
        return EXIT_INPUT
    try:
        train = load_set(args.train, "train")
        samples = load_set(args.samples, "samples", train)
        holdout = None if args.holdout is None else load_set(args.holdout, "holdout", train)
        result = audit(
            train, samples, holdout, threshold=args.threshold,
            near_quantile=args.near_quantile, verbatim_quantile=args.verbatim_quantile,
            near_distance=args.near_distance, verbatim_distance=args.verbatim_distance,
            alpha=args.alpha, distance=args.distance, n_cells=args.cells,
            min_generated=args.min_generated, kmeans_n_init=args.kmeans_n_init,
            partition_repeats=args.partition_repeats, seed=args.seed,
            progress=False if args.no_progress else None, copy=False,
            train_features=args.features_train, sample_features=args.features_samples,
            holdout_features=args.features_holdout,
        )
    except (AuditInputError, ValueError, TypeError) as err:
        print(f"numdiff.audit: {err}", file=sys.stderr)
        return EXIT_INPUT
    write_report(result, args.out, train.x, samples.x,
                 train_shift=result.extra["shown_train_shift"])
    _print_summary(result)
    print(f"report: {args.out}/REPORT.md")
    return exit_status(result.verdict, args.fail_on)


if __name__ == "__main__":
    sys.exit(main())
