"""Write ``REPORT.md`` and ``results.json``, and format the summary table."""

from __future__ import annotations

import json
import math
import platform
from importlib import metadata
from pathlib import Path

from .cache import jsonable


def numdiff_version() -> str:
    """Installed numdiff version, or the package's ``__version__`` in a source tree."""
    try:
        return metadata.version("numdiff")
    except metadata.PackageNotFoundError:
        try:
            import numdiff
        except ImportError:
            return "unknown"
        return str(getattr(numdiff, "__version__", "unknown (not installed)"))


def fmt(value) -> str:
    """Compact number for tables: four significant digits, ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def markdown_table(header, rows) -> str:
    """A markdown table from a header row and rows of cells (formatted with :func:`fmt`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines)


def claim_rows(claims):
    return [
        (c.name, c.predicted, c.comparison, c.measured, c.uncertainty,
         "PASS" if c.passed else "FAIL")
        for c in claims
    ]


CLAIM_HEADER = ("claim", "predicted", "comparison", "measured", "uncertainty", "result")


def write_report(out, outcomes, meta) -> tuple[Path, Path]:
    """Write ``out/REPORT.md`` and ``out/results.json``.

    Parameters
    ----------
    out : path-like
        Output folder.
    outcomes : list of StudyOutcome
    meta : dict
        ``quick`` (bool), ``executor`` (str), ``wall_s`` (float).

    Returns
    -------
    (Path, Path)
        The report and the results file.
    """
    out = Path(out)
    version = numdiff_version()
    claims = [c for o in outcomes for c in o.summary.claims]
    n_fail = sum(not c.passed for c in claims)
    errors = [o for o in outcomes if o.error]
    results = {
        "numdiff_version": version,
        "python": platform.python_version(),
        "quick": bool(meta.get("quick", False)),
        "executor": meta.get("executor", ""),
        "wall_s": meta.get("wall_s"),
        "passed": n_fail == 0 and not errors,
        "config": jsonable({o.study.name: o.config for o in outcomes}),
        # Study seeds; each cell's seed (derived from it and the cell's configuration)
        # is listed under "studies".
        "seeds": {o.study.name: int(o.config["seed"]) for o in outcomes},
        "studies": [
            {"name": o.study.name, "title": o.study.title, "cells": o.n_cells,
             "cells_from_cache": o.n_cached, "compute_s": o.compute_s,
             "cell_seeds": o.cell_seeds,
             "figures": [_relative(p, out) for p in o.summary.figures], "error": o.error}
            for o in outcomes
        ],
        "claims": [c.to_dict() for c in claims],
    }
    results_path = out / "results.json"
    results_path.write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")

    lines = [
        "# numdiff validation report",
        "",
        (f"numdiff {version}; {'quick' if results['quick'] else 'default'} configuration; "
         f"cells run {results['executor']}; wall time {fmt(meta.get('wall_s'))} s."),
        (f"**{len(claims) - n_fail} of {len(claims)} claims pass**"
         + (f"; {len(errors)} studies raised errors." if errors else ".")),
        "",
        ("Each claim compares a measurement with the theory's prediction in the stated way; "
         "the uncertainty column is the measurement's standard error, null level or "
         "confidence half-width, as each study's notes say. Seeds and the full "
         "configuration are in `results.json`."),
        "",
        "## Summary",
        "",
        markdown_table(("study",) + CLAIM_HEADER,
                       [(c.study,) + r for c, r in zip(claims, claim_rows(claims))]),
        "",
    ]
    for o in outcomes:
        lines += [f"## {o.study.title} (`{o.study.name}`)", "", o.study.description.strip(), ""]
        lines.append(
            f"Seed {o.config['seed']}; {o.n_cells} cells ({o.n_cached} from cache); "
            f"compute {o.compute_s:.1f} s."
        )
        lines.append("")
        if o.error:
            lines += ["**Error:**", "", "```", o.error.rstrip(), "```", ""]
        if o.summary.claims:
            lines += [markdown_table(CLAIM_HEADER, claim_rows(o.summary.claims)), ""]
            details = [c for c in o.summary.claims if c.detail]
            if details:
                lines += [f"- *{c.name}*: {c.detail}" for c in details] + [""]
        for block in o.summary.tables:
            lines += [block.strip(), ""]
        for path in o.summary.figures:
            rel = _relative(path, out)
            lines += [f"![{Path(rel).stem}]({rel})", ""]
    report_path = out / "REPORT.md"
    report_path.write_text("\n".join(lines))
    return report_path, results_path


def summary_text(outcomes) -> str:
    """Plain-text summary table for the terminal."""
    rows = [(c.study, c.name, fmt(c.predicted), c.comparison, fmt(c.measured),
             fmt(c.uncertainty), "PASS" if c.passed else "FAIL")
            for o in outcomes for c in o.summary.claims]
    header = ("study", "claim", "predicted", "cmp", "measured", "+-", "result")
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    for o in outcomes:
        if o.error:
            lines.append(f"{o.study.name}: ERROR (first line: {o.error.splitlines()[0]})")
    n_fail = sum(r[-1] == "FAIL" for r in rows)
    lines.append(f"{len(rows) - n_fail}/{len(rows)} claims pass")
    return "\n".join(lines)


def _relative(path, out) -> str:
    path = Path(path)
    try:
        return path.resolve().relative_to(Path(out).resolve()).as_posix()
    except ValueError:
        return path.as_posix()
