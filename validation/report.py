"""Write ``REPORT.md`` and ``results.json``, and format the summary table."""

from __future__ import annotations

import dataclasses
import json
import math
import platform
from importlib import metadata
from pathlib import Path

from . import cache
from .cache import atomic_write_text, jsonable

#: Claim kinds in report order, with the label the report prints for each.
KIND_LABELS = {
    "theorem": "theorem",
    "theory-check": "theory self-check",
    "negative-control": "negative control",
}


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


def kind_label(kind: str) -> str:
    """Printed label of a claim kind."""
    return KIND_LABELS[kind]


def kind_counts(claims) -> dict:
    """Kind -> ``{"claims": n, "passed": k}``, the known kinds first, only those present."""
    counts = {}
    for c in sorted(claims, key=lambda c: _kind_order(c.kind)):
        entry = counts.setdefault(c.kind, {"claims": 0, "passed": 0})
        entry["claims"] += 1
        entry["passed"] += bool(c.passed)
    return counts


def counts_text(counts) -> str:
    """``theorem 9/10, theory self-check 2/2`` from :func:`kind_counts`."""
    return ", ".join(f"{kind_label(k)} {v['passed']}/{v['claims']}" for k, v in counts.items())


def claim_rows(claims):
    """Table rows of ``claims`` in the order of :data:`CLAIM_HEADER`."""
    return [
        (c.name, kind_label(c.kind), c.predicted, c.comparison, c.measured,
         c.uncertainty, None if c.detectable_is_headroom else c.detectable,
         "PASS" if c.passed else "FAIL", c.headroom)
        for c in claims
    ]


#: The claims' columns, the same in REPORT.md and in the terminal's summary.
CLAIM_HEADER = ("claim", "kind", "predicted", "band", "measured", "uncertainty",
                "detectable bias", "result", "headroom")

FINDING_HEADER = ("finding", "statistic", "estimate", "interval", "direction",
                  "conjecture", "agreement")

FINDINGS_NOTE = (
    "Findings are not pass/fail: each is a statistic measured for a conjecture, with "
    "its confidence interval. *direction* is `down` or `up` when the interval excludes "
    "0 and `undecided` otherwise; *agreement* compares it with the sign the conjecture "
    "predicts."
)


def finding_rows(findings):
    """Table rows of ``findings`` in the order of :data:`FINDING_HEADER`."""
    return [
        (f.name, f.statistic, f.estimate,
         f"[{fmt(f.low)}, {fmt(f.high)}] ({fmt(100 * f.level)}%)", f.direction,
         f.conjecture, f.agreement)
        for f in findings
    ]


def study_findings(outcomes):
    """Every finding of ``outcomes``, with its study's name filled in."""
    return [dataclasses.replace(f, study=o.study.name)
            for o in outcomes for f in o.summary.findings]


KINDS_NOTE = (
    "Kinds: a *theorem* claim checks numdiff's output against the theory; a "
    "*theory self-check* never runs numdiff's sampler and checks `theory/` itself; "
    "a *negative control* is a setting that must violate the bound, and passes when "
    "the violation is observed. *band* is how the measurement was compared with the "
    "prediction; *detectable bias* is the smallest bias in the measurement that the "
    "claim was designed to detect (the band, or 4.5 standard errors for a bound on a "
    "z-score); *headroom* is how far the measurement may move before the verdict "
    "changes (for a one-sided bound, the bound minus the measurement; negative once it "
    "has changed). A one-sided bound without a designed sensitivity detects a bias as "
    "large as its headroom and no smaller: its detectable bias is `-` and results.json "
    "marks it `detectable_is_headroom`."
)


def write_report(out, outcomes, meta) -> tuple[Path, Path]:
    """Write ``out/REPORT.md`` and ``out/results.json``.

    Parameters
    ----------
    out : path-like
        Output folder.
    outcomes : list of StudyOutcome
    meta : dict
        ``quick`` (bool), ``profile`` (``"default"``, ``"quick"`` or ``"full"``; from
        ``quick`` when missing), ``executor`` (str), ``wall_s`` (float).

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
    counts = kind_counts(claims)
    findings = study_findings(outcomes)
    results = {
        "numdiff_version": version,
        # The code the cells were computed with (cell keys include its hash).
        "code": cache.code_fingerprint(),
        "python": platform.python_version(),
        "quick": bool(meta.get("quick", False)),
        "profile": meta.get("profile", "quick" if meta.get("quick") else "default"),
        "executor": meta.get("executor", ""),
        "wall_s": meta.get("wall_s"),
        "passed": n_fail == 0 and not errors and bool(claims),
        "counts": counts,
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
        "findings": [f.to_dict() for f in findings],
    }
    results_path = out / "results.json"
    atomic_write_text(results_path, json.dumps(results, indent=1, allow_nan=False) + "\n")

    lines = [
        "# numdiff validation report",
        "",
        (f"numdiff {version}; {results['profile']} configuration; "
         f"cells run {results['executor']}; wall time {fmt(meta.get('wall_s'))} s."),
        (f"**{len(claims) - n_fail} of {len(claims)} claims pass**"
         + (f" ({counts_text(counts)})" if counts else "")
         + (f"; {len(errors)} studies failed with errors." if errors else ".")
         + (f" {len(findings)} findings, not pass/fail." if findings else "")),
        "",
        f"Code: sources `{results['code']['sources'][:16]}`, "
        + ", ".join(f"{k} {v}" for k, v in results["code"]["versions"].items()) + ".",
        "",
        ("Each claim compares a measurement with the theory's prediction in the stated way; "
         "the uncertainty column is the measurement's standard error, null level or "
         "confidence half-width, as each study's notes say. Seeds and the full "
         "configuration are in `results.json`."),
        "",
        KINDS_NOTE,
        "",
        "## Summary",
        "",
        markdown_table(("study",) + CLAIM_HEADER,
                       [(c.study,) + r for c, r in zip(claims, claim_rows(claims))]),
        "",
    ]
    if findings:
        lines += ["## Findings", "", FINDINGS_NOTE, "",
                  markdown_table(("study",) + FINDING_HEADER,
                                 [(f.study,) + r for f, r in zip(findings,
                                                                 finding_rows(findings))]),
                  ""]
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
        if o.summary.findings:
            lines += ["Findings (not pass/fail):", "",
                      markdown_table(FINDING_HEADER, finding_rows(o.summary.findings)), ""]
            lines += [f"- *{f.name}*: {f.detail}" for f in o.summary.findings if f.detail]
            lines.append("")
        for block in o.summary.tables:
            lines += [block.strip(), ""]
        for path in o.summary.figures:
            rel = _relative(path, out)
            lines += [f"![{Path(rel).stem}]({rel})", ""]
            caption = o.summary.captions.get(Path(rel).stem)
            if caption:
                lines += [f"*Figure `{Path(rel).name}`.* {caption}", ""]
    report_path = out / "REPORT.md"
    atomic_write_text(report_path, "\n".join(lines))
    return report_path, results_path


def summary_text(outcomes) -> str:
    """Plain-text summary table for the terminal, with counts per claim kind."""
    claims = [c for o in outcomes for c in o.summary.claims]
    rows = [(c.study,) + tuple(fmt(v) for v in row) for c, row in zip(claims, claim_rows(claims))]
    header = ("study",) + CLAIM_HEADER
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in rows]
    for o in outcomes:
        if o.error:
            lines.append(f"{o.study.name}: FAILED (first line: {o.error.splitlines()[0]})")
    n_fail = sum(not c.passed for c in claims)
    counts = kind_counts(claims)
    lines.append(f"{len(rows) - n_fail}/{len(rows)} claims pass"
                 + (f" ({counts_text(counts)})" if counts else ""))
    for f in study_findings(outcomes):
        verdict = f.direction if f.agreement == f.direction else f"{f.direction} ({f.agreement})"
        lines.append(f"finding ({f.study}): {f.name}: {fmt(f.estimate)} "
                     f"[{fmt(f.low)}, {fmt(f.high)}], {verdict}")
    return "\n".join(lines)


def _kind_order(kind: str) -> int:
    order = list(KIND_LABELS)
    return order.index(kind) if kind in order else len(order)


def _relative(path, out) -> str:
    path = Path(path)
    try:
        return path.resolve().relative_to(Path(out).resolve()).as_posix()
    except ValueError:
        return path.as_posix()
