"""What the report writes besides the claims' numbers: column names, findings, file modes."""

import os
import stat
from types import SimpleNamespace

import pytest

from validation.cache import atomic_write_text
from validation.claims import Finding, at_most, within
from validation.report import CLAIM_HEADER, summary_text, write_report
from validation.study import Summary


def _outcome(claims=(), findings=()):
    study = SimpleNamespace(name="s", title="S", description="d")
    summary = Summary(claims=[c.__class__(**{**c.__dict__, "study": "s"}) for c in claims],
                      findings=list(findings))
    return SimpleNamespace(study=study, summary=summary, config={"seed": 1}, n_cells=1,
                           n_cached=0, compute_s=0.0, cell_seeds={}, error=None)


def test_terminal_and_report_use_one_set_of_column_names(tmp_path):
    outcome = _outcome([at_most("tv <= eps", 0.05, 0.02129), within("order", 2.0, 1.9, 0.25)])
    report, _ = write_report(tmp_path, [outcome], {"quick": True})
    header = "| " + " | ".join(("study",) + CLAIM_HEADER) + " |"
    assert header in report.read_text()
    assert summary_text([outcome]).splitlines()[0].split() == [
        w for h in ("study",) + CLAIM_HEADER for w in h.split()]


def test_a_one_sided_claim_shows_headroom_not_a_detectable_bias(tmp_path):
    outcome = _outcome([at_most("tv <= eps", 0.05, 0.02129)])
    report, _ = write_report(tmp_path, [outcome], {"quick": True})
    # detectable bias "-" (its margin is headroom), result, then the headroom 0.05 - 0.02129
    assert "| tv <= eps | theorem | 0.05 | <= | 0.02129 | - | - | PASS | 0.02871 |" in (
        report.read_text())


@pytest.mark.parametrize(("low", "high", "expected"), [
    (-0.2, 0.1, "undecided"), (-0.3, -0.1, "down (agrees)"), (0.1, 0.3, "up (disagrees)")])
def test_a_finding_line_never_repeats_a_word(low, high, expected):
    finding = Finding("slope", "least squares", (low + high) / 2, low, high, study="s")
    line = summary_text([_outcome([at_most("c", 1.0, 0.5)], [finding])]).splitlines()[-1]
    assert line.endswith(f"[{low:.4g}, {high:.4g}], {expected}")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "REPORT.md", "text")
        plain = tmp_path / "plain.txt"
        plain.write_text("text")  # what an ordinary open() gives
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "REPORT.md").stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE(plain.stat().st_mode)
