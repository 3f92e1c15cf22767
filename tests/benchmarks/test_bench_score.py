"""The benchmark script runs and reports a sane table (no timing is asserted)."""

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import bench_score


def test_quick_benchmark_runs(capsys):
    rows = bench_score.bench(bench_score.QUICK_SIZES[:2], repeats=1)
    assert len(rows) == 2
    for _, _, _, t_kernel, t_roof, frac, _, _ in rows:
        assert t_kernel > 0 and t_roof > 0 and 0 < frac
    out = capsys.readouterr().out
    assert "roof frac" in out and "per core" in out


def test_exp_rate_counts_every_thread():
    rate, workers = bench_score.exp_rate(calls=20, repeats=1, workers=2)
    assert workers == 2 and np.isfinite(rate) and rate > 0
    with pytest.raises(ValueError, match=r"\bblock\b"):
        bench_score.exp_rate(block=256)


def test_np_exp_releases_the_gil_on_the_benchmark_block():
    """R_exp runs one thread per core; that measures all cores only if np.exp on
    EXP_BLOCK elements drops the GIL. With a switch interval of 10 s a thread that
    held the GIL would keep it until it finished: the main thread gets it back
    from a short sleep while the worker still runs only if np.exp releases it."""
    done = threading.Event()
    z = -np.linspace(0.0, 50.0, bench_score.EXP_BLOCK)
    out = np.empty_like(z)

    def worker():
        stop = time.perf_counter() + 1.0
        while time.perf_counter() < stop:  # about 1 s of np.exp, checked every 64 calls
            for _ in range(64):
                np.exp(z, out=out)
        done.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(10.0)
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        time.sleep(0.05)
        back_while_running = not done.is_set()
        thread.join()
    finally:
        sys.setswitchinterval(old)
    assert back_while_running


@pytest.mark.slow
def test_peak_memory_within_budget():
    """M = N = 65536, d = 64: at most 256 MB above inputs and output (issue 2)."""
    assert bench_score.memory() <= 256.0
