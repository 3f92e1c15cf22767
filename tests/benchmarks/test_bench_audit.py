"""The audit benchmark runs on small sizes and reports a sane table (no timing asserted)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_audit


def test_small_benchmark_runs(capsys):
    r = bench_audit.main(["--small"])
    assert r["t_audit"] > 0 and r["t_gemm"] > 0 and r["t_cdist_scaled"] > 0
    assert r["index_agreement_gemm"] == 1.0 and r["index_agreement_cdist"] == 1.0
    assert r["memorised_recovered"] == r["memorised_true"]
    assert r["peak_audit_mb"] > 0 and r["maxrss_mb"] > 0
    out = capsys.readouterr().out
    assert "numdiff.audit" in out and "peak MiB" in out
