"""Command line: ``python -m validation [--out DIR] [--quick | --full] [--only NAME] ...``.

Runs every study (or those named by ``--only``) on the embedded configuration
(default, ``--quick`` reduced, ``--full`` extended where a study has one),
shows progress on stderr, writes ``REPORT.md``, ``results.json`` and the figures
to ``--out``, and prints a summary table.

Exit status
-----------
0
    Every claim of every study passed.
1
    A claim failed (and no study failed with an error).
2
    A study failed with an error: a cell raised or returned nothing, its
    summary raised, or it made no claims.
3
    Nothing ran: the command line is wrong, or ``--out`` is unusable (empty,
    an existing file, under a file, or not writable). One line on stderr says why.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# Figures are files; no display is needed, in this process or in Dask workers.
os.environ.setdefault("MPLBACKEND", "Agg")
# Numba's OpenMP threading layer otherwise spin-waits between parallel regions;
# on a machine with few cores each kernel launch then waits for a time slice
# (about 8 ms measured on 2 cores, against 9 us with a passive wait). Must be set
# before the OpenMP runtime loads, i.e. before the first parallel kernel runs.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

EXIT_PASSED, EXIT_CLAIM_FAILED, EXIT_STUDY_ERROR, EXIT_USAGE = 0, 1, 2, 3

EPILOG = """\
exit status:
  0  every claim passed
  1  a claim failed
  2  a study failed with an error (a cell raised or returned nothing, its summary
     raised, or it made no claims)
  3  nothing ran: a wrong command line, or an unusable --out (empty, an existing
     file, under a file, or not writable)
"""


class BadOut(Exception):
    """``--out`` cannot hold the report; the message says why in one line."""


class Parser(argparse.ArgumentParser):
    """``argparse`` parser whose usage errors exit with status 3.

    argparse's own status, 2, would read as "a study failed with an error".
    """

    def error(self, message):
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser(names) -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m validation",
        description="Run numdiff's validation studies and write a report.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="validation-report",
                        help="output folder; rerunning with the same folder resumes, "
                             "recomputing only cells whose code changed "
                             "(default: %(default)s)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="reduced configuration (well under a minute)")
    size.add_argument("--full", action="store_true",
                      help="extended configuration where a study has one (hours on a 2-core "
                           "machine; spread it with --workers or --scheduler)")
    parser.add_argument("--only", action="append", choices=names, metavar="NAME",
                        help=f"run only this study (repeatable): {', '.join(names)}")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--workers", type=int, metavar="N",
                       help="run cells on a local Dask cluster of N worker processes")
    group.add_argument("--scheduler", metavar="ADDRESS",
                       help="run cells on an existing Dask cluster (e.g. tcp://host:8786)")
    return parser


def prepare_out(out: str) -> Path:
    """Create the output folder ``out`` and check that files can be written in it.

    Parameters
    ----------
    out : str
        The ``--out`` argument.

    Returns
    -------
    pathlib.Path
        The folder, created if it was missing.

    Raises
    ------
    BadOut
        If ``out`` is empty, is an existing file, lies under a file, or is not
        writable; the message names ``--out`` in one line.
    """
    if not out.strip():
        # An empty path would otherwise mean the current directory.
        raise BadOut("--out is empty; give a folder for the report, e.g. --out report")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise BadOut(f"--out {out!r} is an existing file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise BadOut(f"--out {out!r} lies under a file, not a folder") from None
    except OSError as err:
        raise BadOut(f"--out {out!r} cannot be created: {err.strerror}") from None
    try:
        # Checked up front: otherwise the run fails at its first cell, or at the end.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise BadOut(f"--out {out!r} is not writable: {err.strerror}") from None
    return path


def exit_status(outcomes) -> int:
    """The exit status of a finished run (see the module docstring)."""
    if any(o.error for o in outcomes):
        return EXIT_STUDY_ERROR
    return EXIT_PASSED if all(o.passed for o in outcomes) else EXIT_CLAIM_FAILED


def main(argv=None, studies=None) -> int:
    """Entry point; ``studies`` (name -> Study) replaces the registry (tests use it).

    Returns
    -------
    int
        The exit status (see the module docstring). Usage errors raise
        ``SystemExit(3)`` from argparse.
    """
    from .executors import make_executor
    from .report import summary_text, write_report
    from .runner import run_studies

    if studies is None:
        from .studies import STUDIES as studies
    parser = build_parser(list(studies))
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be >= 1")
    try:
        out = prepare_out(args.out)
    except BadOut as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    selected = [studies[n] for n in (args.only or studies)]
    profile = "quick" if args.quick else "full" if args.full else "default"
    configs = {s.name: s.config(profile) for s in selected}

    start = time.perf_counter()
    executor = make_executor(workers=args.workers, scheduler=args.scheduler)
    try:
        outcomes = run_studies(selected, configs, out, executor)
    finally:
        executor.close()
    wall = time.perf_counter() - start
    meta = {"quick": args.quick, "profile": profile, "executor": executor.description,
            "wall_s": wall}
    report, _ = write_report(out, outcomes, meta)
    print(summary_text(outcomes))
    print(f"report: {report}  ({wall:.1f} s)")
    return exit_status(outcomes)


if __name__ == "__main__":
    sys.exit(main())
