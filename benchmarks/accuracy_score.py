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
3. The derivatives (``jacobian`` of the denoiser and of the score, ``jvp``,
   ``divergence``) on the hard cases of tests/numdiff/test_score_derivatives_oracle.py
   at ``d = 2, 3`` (direct kernel) and ``d = 24`` (BLAS path; ``jacobian`` there is the
   dense direct route), against that file's bounds (``64 eps`` of ``alpha A /
   sigma2`` plus the weights' sensitivity to logit rounding).
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

import numdiff as nd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "numdiff"))
import test_score_derivatives_oracle as derivatives
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


def derivative_cases():
    """(family, d, data, t, x) of the derivative oracle's hard cases (same seeds)."""
    tiny = derivatives.ou_time_for_sigma2
    for d in (2, 3, 24):
        rng = np.random.default_rng(d)
        data = rng.standard_normal((10, d))
        data[5] = data[0] + 2e-5 * rng.standard_normal(d) / math.sqrt(d)
        t = tiny(1e-10)
        yield "sigma2=1e-10 near data", d, data, t, (
            math.exp(-t) * data[[0, 0, 3]] + 1e-5 * rng.standard_normal((3, d)))
        rng = np.random.default_rng(10 + d)
        data = rng.standard_normal((10, d))
        x = 1e4 * rng.standard_normal((2, d)) / math.sqrt(d)
        for t in (0.05, 1.0, 8.0):
            yield "|x| ~ 1e4", d, data, t, x
        rng = np.random.default_rng(20 + d)
        base = rng.standard_normal((4, d))
        data = np.concatenate([base, base, base[:1]])
        x = rng.standard_normal((3, d))
        for t in (tiny(1e-6), 0.3, 3.0):
            yield "duplicated points", d, data, t, x
        rng = np.random.default_rng(40 + d)
        data = 1e6 + rng.standard_normal((8, d))
        for t in (tiny(1e-10), tiny(1e-4), 0.2, 2.0):
            alpha, sigma = math.exp(-t), math.sqrt(-math.expm1(-2 * t))
            yield "off-centre data (+1e6)", d, data, t, (
                alpha * data[:2] + sigma * rng.standard_normal((2, d)))


def jacobian_scale_error(data, t, x):
    """Worst ``|jacobian - exact|`` over entries and queries, in units of ``eps alpha R^2
    / sigma2`` (``R = max_k |x_k - D|``, the scale of test_score_derivatives.py)."""
    f = nd.EmpiricalScore(data, nd.OU())
    alpha, sigma2 = float(nd.OU().alpha(t)), float(nd.OU().sigma2(t))
    jac, den = f.jacobian(t, x), f.denoise(t, x)
    worst = 0.0
    for m in range(x.shape[0]):
        cov, _, _ = derivatives.exact_covariance(data, alpha, sigma2, x[m])
        scale = alpha * np.abs(data - den[m]).max() ** 2 / sigma2
        worst = max(worst, np.abs(jac[m] - alpha / sigma2 * cov).max() / (derivatives.EPS * scale))
    return worst


def derivative_table():
    keys = ("jacobian", "jacobian_score", "jvp", "divergence")
    print("\n3. Derivatives on the hard cases against the oracle file's bounds (C = 64); last")
    print("   column: the jacobian's error in units of eps alpha R^2 / sigma2 (where error /")
    print("   bound is near 1 the exact entries lie below e^-100 of that scale: flushed to 0)")
    print(f"{'case':<26} {'d':>3} " + " ".join(f"{k:>15}" for k in keys) + f" {'jac/(eps sc)':>13}")
    worst = defaultdict(lambda: dict.fromkeys((*keys, "scale"), 0.0))
    for name, d, data, t, x in derivative_cases():
        err = derivatives.derivative_errors(data, t, x)
        err["scale"] = jacobian_scale_error(data, t, x)
        for key in (*keys, "scale"):
            worst[name, d][key] = max(worst[name, d][key], err[key])
            worst["worst", d][key] = max(worst["worst", d][key], err[key])
    for (name, d), err in sorted(worst.items(), key=lambda item: (item[0][1], item[0][0] == "worst")):
        print(f"{name:<26} {d:>3} " + " ".join(f"{_fmt(err[k]):>15}" for k in keys)
              + f" {_fmt(err['scale']):>13}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fuzz", type=int, default=300, help="fuzz cases per kernel")
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)
    oracle_table()
    fuzz_table(args.fuzz)
    derivative_table()


if __name__ == "__main__":
    main()
