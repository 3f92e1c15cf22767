"""The benchmark script runs and reports a sane table (no timing is asserted)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_score


def test_quick_benchmark_runs(capsys):
    rows = bench_score.bench(bench_score.QUICK_SIZES[:2], repeats=1)
    assert len(rows) == 2
    for _, _, _, t_kernel, t_roof, frac, _, _ in rows:
        assert t_kernel > 0 and t_roof > 0 and 0 < frac
    assert "roof frac" in capsys.readouterr().out


@pytest.mark.slow
def test_peak_memory_within_budget():
    """M = N = 65536, d = 64: at most 256 MB above inputs and output (issue 2)."""
    assert bench_score.memory() <= 256.0
