"""Command line: ``python -m validation [--out DIR] [--quick] [--only NAME] ...``.

Runs every study (or those named by ``--only``) on the embedded configuration,
shows progress on stderr, writes ``REPORT.md``, ``results.json`` and the figures
to ``--out``, prints a summary table, and exits with status 0 when every claim
passes, 1 when a claim fails, 2 when a study raised an error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# Figures are files; no display is needed, in this process or in Dask workers.
os.environ.setdefault("MPLBACKEND", "Agg")
# Numba's OpenMP threading layer otherwise spin-waits between parallel regions;
# on a machine with few cores each kernel launch then waits for a time slice
# (about 8 ms measured on 2 cores, against 9 us with a passive wait). Must be set
# before the OpenMP runtime loads, i.e. before the first parallel kernel runs.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def build_parser(names) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m validation",
        description="Run numdiff's validation studies and write a report.",
    )
    parser.add_argument("--out", default="validation-report",
                        help="output folder; rerunning with the same folder resumes "
                             "(default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="reduced configuration (well under a minute)")
    parser.add_argument("--only", action="append", choices=names, metavar="NAME",
                        help=f"run only this study (repeatable): {', '.join(names)}")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, metavar="N",
                       help="run cells on a local Dask cluster of N worker processes")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="run cells on an existing Dask cluster (e.g. tcp://host:8786)")
    return parser


def main(argv=None, studies=None) -> int:
    """Entry point; ``studies`` (name -> Study) replaces the registry (tests use it)."""
    from .executors import make_executor
    from .report import summary_text, write_report
    from .runner import run_studies

    if studies is None:
        from .studies import STUDIES as studies
    parser = build_parser(list(studies))
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be >= 1")
    selected = [studies[n] for n in (args.only or studies)]
    configs = {s.name: (s.quick if args.quick else s.default) for s in selected}

    start = time.perf_counter()
    executor = make_executor(workers=args.workers, scheduler=args.scheduler)
    try:
        outcomes = run_studies(selected, configs, args.out, executor)
    finally:
        executor.close()
    wall = time.perf_counter() - start
    meta = {"quick": args.quick, "executor": executor.description, "wall_s": wall}
    report, _ = write_report(args.out, outcomes, meta)
    print(summary_text(outcomes))
    print(f"report: {report}  ({wall:.1f} s)")
    if any(o.error for o in outcomes):
        return 2
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
