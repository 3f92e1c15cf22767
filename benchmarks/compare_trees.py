"""Before/after timings of one benchmark script on two source trees, interleaved.

    python benchmarks/compare_trees.py --before ../old-checkout --after . \
        --rounds 5 [--columns 0 1] -- benchmarks/bench_score.py --quick

Runs the script ``rounds`` times on each tree, alternating (before, after, after,
before, ...) so that the drift of a shared host hits both alike, each run in a
fresh process with ``PYTHONPATH`` set to that tree. Every table row of the output
(a line with ``|``) is keyed by the text before its first ``|``; the timing is the
``c``-th number after it (``--columns``). Printed per row and column: the median of
each tree, the ratio after / before, and the noise: the larger of the two trees'
spreads (max / min over their rounds), the factor by which the same code's time
moved between runs on this host. A ratio inside the noise is no measurable change.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def table_rows(text, columns):
    """``{row key: [number per column]}`` of the ``|`` rows of a benchmark's output."""
    rows = {}
    for line in text.splitlines():
        if "|" not in line or set(line.strip()) <= set("-|+ "):
            continue
        key, rest = line.split("|", 1)
        numbers = [float(v) for v in _NUMBER.findall(rest)]
        if len(numbers) > max(columns):
            rows[key.strip()] = [numbers[c] for c in columns]
    return rows


def run_once(tree, command):
    env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
    done = subprocess.run([sys.executable, *command], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise RuntimeError(f"{command} failed on {tree}:\n{done.stderr[-2000:]}")
    return done.stdout


def compare(before, after, command, rounds, columns):
    """Medians, ratios and noise per row; returns the printed lines' data."""
    results = {"before": [], "after": []}
    order = ["before", "after"]
    for r in range(rounds):
        for side in order if r % 2 == 0 else order[::-1]:
            tree = before if side == "before" else after
            results[side].append(table_rows(run_once(tree, command), columns))
            print(f"  round {r + 1}/{rounds}: {side} done", file=sys.stderr, flush=True)
    keys = [k for k in results["before"][0] if all(k in res for res in results["after"])]
    table = []
    for key in keys:
        for c in range(len(columns)):
            b = np.array([res[key][c] for res in results["before"]])
            a = np.array([res[key][c] for res in results["after"]])
            noise = max(b.max() / b.min(), a.max() / a.min())
            table.append((key, columns[c], np.median(b), np.median(a),
                          np.median(a) / np.median(b), noise))
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--columns", type=int, nargs="+", default=[0])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the benchmark script after --")
    if args.rounds < 2:
        parser.error("--rounds must be >= 2 (the noise needs two runs per tree)")
    table = compare(args.before, args.after, command, args.rounds, args.columns)
    print(f"{' '.join(command)}: medians of {args.rounds} interleaved runs per tree")
    print(f"{'row':>40} col | {'before':>9} {'after':>9} {'after/bef':>9} {'noise':>7}")
    for key, col, b, a, ratio, noise in table:
        flag = "  slower beyond noise" if ratio > noise and ratio > 1.05 else ""
        print(f"{key[:40]:>40} {col:>3} | {b:9.4f} {a:9.4f} {ratio:9.3f} {noise:7.3f}{flag}")


if __name__ == "__main__":
    main()
