"""The query-group kernels on the thread pool (numdiff/_kernels/threads.py).

Each query is computed by the same serial code whichever thread runs its group,
so a call split over several threads must give the bits of a call on one thread.
The split is forced (three threads, no size threshold) so that it runs on any
host, also one with a single core.
"""

import importlib

import numpy as np
import pytest

import numdiff as nd
from numdiff._kernels import threads

# The module, not the function numdiff.pruned.moments that its package exports.
pruned_moments = importlib.import_module("numdiff.pruned.moments")


def calls(rng):
    data = rng.standard_normal((700, 2))
    x = rng.standard_normal((150, 2))  # 10 groups of 16: uneven ranges over 3 threads
    dense = nd.EmpiricalScore(data, nd.OU())
    dense.pruning = "off"
    pruned = nd.EmpiricalScore(data, nd.OU())
    pruned.pruning = "always"
    near = data[:150] + 1e-3 * rng.standard_normal((150, 2))
    return {
        "denoise": lambda: dense.denoise(0.3, x),
        "log_density": lambda: dense.log_density(0.3, x),
        "divergence": lambda: dense.divergence(0.3, x),
        "pruned denoise": lambda: pruned.denoise(1e-4, near),
    }


@pytest.mark.parametrize("name", ["denoise", "log_density", "divergence", "pruned denoise"])
def test_split_over_threads_gives_the_serial_bits(name, monkeypatch):
    call = calls(np.random.default_rng(15))[name]
    monkeypatch.setattr(threads, "threads", lambda: 1)
    serial = call()
    monkeypatch.setattr(threads, "threads", lambda: 3)
    monkeypatch.setattr(threads, "THREAD_MIN_PAIRS", 0)
    ranges = []
    kernel = pruned_moments.query_groups

    def spy(lo, hi, *args):
        ranges.append((lo, hi))
        kernel(lo, hi, *args)

    monkeypatch.setattr(pruned_moments, "query_groups", spy)
    np.testing.assert_array_equal(call(), serial)
    if name == "pruned denoise":  # the pruned kernel ran, split in three
        assert sorted(ranges) == [(0, 3), (3, 7), (7, 10)]
