"""The main job: ``python -m validation --quick`` end to end, in a subprocess.

This runs every study on the reduced configuration (about a minute on two
cores) and checks the exit status, the report, the results schema and the
figures. The claims themselves carry their own bands; a failing claim makes the
exit status non-zero and this test fails with the summary table in its message.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLAIM_KEYS = {"name", "predicted", "measured", "uncertainty", "passed", "kind", "detectable"}
KINDS = {"theorem", "theory-check", "negative-control"}


def _number(value):
    return isinstance(value, (int, float)) or value in ("nan", "inf", "-inf")


def test_quick_main_job_writes_a_passing_report(tmp_path):
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # The quick run takes about 2.5 minutes on 2 cores (the trained denoisers' nets are
    # about 55 s of it), more with Numba and JAX compiling cold: the limit only
    # catches a hang, within the brief's 10 minutes for the quick run.
    proc = subprocess.run([sys.executable, "-m", "validation", "--quick", "--out", str(out)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-4000:]
    assert "claims pass" in proc.stdout

    results = json.loads((out / "results.json").read_text())
    assert results["passed"] is True
    assert isinstance(results["numdiff_version"], str) and results["numdiff_version"]
    from validation.studies import STUDIES

    assert set(results["config"]) == set(STUDIES)
    assert results["seeds"] == {name: s.quick["seed"] for name, s in STUDIES.items()}
    assert len(results["claims"]) >= 10
    # The code the cells were computed with, as the cache keys them.
    assert set(results["code"]) == {"hash", "sources", "versions"}
    assert set(results["code"]["versions"]) == {"numpy", "numba", "scipy"}
    assert sum(v["claims"] for v in results["counts"].values()) == len(results["claims"])
    for claim in results["claims"]:
        assert CLAIM_KEYS <= set(claim)
        assert isinstance(claim["name"], str) and isinstance(claim["passed"], bool)
        assert _number(claim["predicted"]) and _number(claim["measured"])
        assert claim["uncertainty"] is None or _number(claim["uncertainty"])
        assert claim["passed"] is True
        assert claim["kind"] in KINDS
        assert claim["detectable"] is None or _number(claim["detectable"])
    assert not any(isinstance(v, float) and not math.isfinite(v)
                   for c in results["claims"] for v in c.values())

    report = (out / "REPORT.md").read_text()
    assert "| kind |" in report and "| detectable bias |" in report
    figures = sorted((out / "figures").glob("*.png"))
    names = {p.stem for p in figures}
    assert {"early_stopping", "no_early_stopping", "memorization", "figure1_trajectories",
            "figure3_samples", "figure4_score", "orders"} <= names
    for path in figures:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(figures/{path.name})" in report  # embedded in the report
    for claim in results["claims"]:
        assert claim["name"].replace("|", "\\|") in report  # table cells escape "|"
