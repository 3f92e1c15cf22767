"""Accuracy of EmpiricalScore against the exact mixture, as error / bound ratios.

    python benchmarks/accuracy_score.py [--fuzz N]

Two tables, both against the exact reference of tests/numdiff/exact_mixture.py
(rational logits, 256-bit exp/log) and both as ``worst |error| / bound`` (<= 1
passes; ``inf``: NaN, a wrong infinity or a wrong selection):

1. The hard cases of tests/numdiff/test_score_oracle.py, per case family and kernel
   (``d <= 16`` direct differences, ``d > 16`` BLAS with refinement), against the
   accuracy the kernels reach, ``64 eps`` of each result's scale plus the softmax's
   sensitivity to direct-difference rounding (``achieved_bounds``).
2. ``N`` cases (default 300) per kernel of the fuzz of tests/numdiff/test_score_fuzz.py
   (derandomised), grouped by data family and by ``sigma2`` range, against the bounds
   derived there from the condition number (``condition_bounds``, ``C = 64``), with
   the number of cases above 1.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "numdiff"))
import test_score_fuzz as fuzz
import test_score_oracle as oracle

ORACLE_KEYS = ("denoise", "log_density", "score")


def oracle_cases():
    """(family, data, t, x) for the oracle's hard cases, each in both kernels."""
    rng = np.random.default_rng(0)
    for d in (2, 40):
        data = rng.standard_normal((12, d))
        t = oracle.ou_time_for_sigma2(1e-10)
        x = math.exp(-t) * data[:3] + 1e-5 * rng.standard_normal((3, d))
        data[5] = data[0] + 2e-5
        yield "sigma2=1e-10 near data", data, t, x
        yield "|x| ~ 1e4", data, 1.0, 1e4 * rng.standard_normal((3, d)) / np.sqrt(d)
        dup = np.concatenate([data[:4], data[:4], data[:1]])
        yield "duplicated points", dup, 0.3, rng.standard_normal((3, d))
        yield "N = 1", data[:1], oracle.ou_time_for_sigma2(1e-10), rng.standard_normal((3, d))
        x1 = 5.6e6 * rng.standard_normal((1, d)) / math.sqrt(d)
        t = oracle.ou_time_for_sigma2(1.3e-3)
        x = math.exp(-t) * x1 + math.sqrt(1.3e-3) * rng.standard_normal((2, d))
        yield "N = 1, |x| = 5.6e6", x1, t, x
    for s2 in (1e-10, 1e-6, 1e-3, 0.1):
        for where in ("near", "far", "midway"):
            yield f"d=40 sigma2={s2:g} {where}", *oracle.blas_case(s2, where)
    data = 50.0 + rng.standard_normal((10, 256))
    for s2 in (1e-10, 1e-4, 0.3):
        t = oracle.ou_time_for_sigma2(s2)
        x = math.exp(-t) * data[:3] + math.sqrt(s2) * rng.standard_normal((3, 256))
        yield f"off-centre data, d=256, sigma2={s2:g}", data, t, x


def _fmt(v):
    return f"{v:9.2g}" if math.isfinite(v) else f"{'inf':>9}"


def oracle_table():
    print("1. Hard cases against the achieved accuracy (64 eps of each result's scale)")
    print(f"{'case':<40} {'kernel':<7} " + " ".join(f"{k:>11}" for k in ORACLE_KEYS))
    worst = defaultdict(float)
    for name, data, t, x in oracle_cases():
        kernel = "direct" if data.shape[1] <= 16 else "blas"
        err = oracle.oracle_errors(data, t, x)
        for key in ORACLE_KEYS:
            worst[kernel, key] = max(worst[kernel, key], err[key])
        print(f"{name:<40} {kernel:<7} " + " ".join(f"{_fmt(err[k]):>11}" for k in ORACLE_KEYS))
    for kernel in ("direct", "blas"):
        print(f"{'worst':<40} {kernel:<7} " + " ".join(f"{_fmt(worst[kernel, k]):>11}" for k in ORACLE_KEYS))


def _sigma2_band(lo, hi):
    for edge, name in ((1e-100, "sigma2 < 1e-100"), (1e-10, "sigma2 in [1e-100, 1e-10)"),
                       (1.0, "sigma2 in [1e-10, 1)")):
        if 10.0**lo < edge:
            return name
    return "sigma2 >= 1"


def fuzz_kernel(kernel, n_cases):
    """Worst ratios per family, cases per family and cases above 1 per family."""
    keys = fuzz.QUANTITIES
    worst = defaultdict(lambda: dict.fromkeys(keys, 0.0))
    count = defaultdict(int)
    over = defaultdict(int)

    @settings(max_examples=n_cases, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        case = data.draw(fuzz.cases(fuzz._DIMS[kernel]))
        try:
            ratios = fuzz.compare(case.data, case.schedule, case.t, case.x, k=case.k)
        except (ArithmeticError, ValueError, TypeError):  # counts as a failure
            ratios = dict.fromkeys(keys, math.inf)
        bad = any(not v <= 1.0 for v in ratios.values())
        for family in ("all", f"data={case.tags['data']}", _sigma2_band(*case.tags["log10_sigma2"])):
            count[family] += 1
            over[family] += bad
            for key in keys:
                worst[family][key] = max(worst[family][key], ratios[key])

    run()
    return worst, count, over


def fuzz_table(n_cases):
    print(f"\n2. Fuzz ({n_cases} cases per kernel) against the condition-number bounds (C = 64)")
    keys = fuzz.QUANTITIES
    print(f"{'family':<34} {'kernel':<7} {'cases':>5} {'>1':>4} " + " ".join(f"{k[:11]:>11}" for k in keys))
    for kernel in ("direct", "blas"):
        worst, count, over = fuzz_kernel(kernel, n_cases)
        for family in sorted(count, key=lambda f: (f != "all", f)):
            print(f"{family:<34} {kernel:<7} {count[family]:>5} {over[family]:>4} "
                  + " ".join(f"{_fmt(worst[family][k]):>11}" for k in keys))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz", type=int, default=300, help="fuzz cases per kernel")
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    oracle_table()
    fuzz_table(args.fuzz)


if __name__ == "__main__":
    main()
