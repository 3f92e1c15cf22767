"""Accuracy of EmpiricalScore against a 50-digit mpmath oracle, as numbers.

    python benchmarks/accuracy_score.py

Prints, for each hard case of issue 2 and both kernels (d <= 16: direct
differences; d > 16: BLAS with refinement), the largest normalised errors:
``|dD| / max|x_k|``, ``|d log p| / (1 + |log p|)`` and
``|d score| sigma2 / (|x| + alpha max|x_k|)`` (the tests assert <= 1e-12).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import numdiff as nd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "numdiff"))
from test_score_oracle import mp_oracle


def ou_time(sigma2):
    return -0.5 * np.log1p(-sigma2)


def cases(rng):
    """(name, data, t, x) for the hard cases, each in a small and a large dimension."""
    for d in (2, 64):
        data = rng.standard_normal((12, d))
        t = ou_time(1e-10)
        x = np.exp(-t) * data[:3] + 1e-5 * rng.standard_normal((3, d))
        yield f"sigma2=1e-10 near data, d={d}", data, t, x
        yield f"|x| ~ 1e4, d={d}", data, 1.0, 1e4 * rng.standard_normal((3, d)) / np.sqrt(d)
        dup = np.concatenate([data[:4], data[:4], data[:1]])
        yield f"duplicated points, d={d}", dup, 0.3, rng.standard_normal((3, d))
        yield f"N = 1, d={d}", data[:1], ou_time(1e-10), rng.standard_normal((3, d))
    data = 50.0 + rng.standard_normal((10, 256))
    for s2 in (1e-10, 1e-4, 0.3):
        t = ou_time(s2)
        x = np.exp(-t) * data[:3] + np.sqrt(s2) * rng.standard_normal((3, 256))
        yield f"off-centre data, d=256, sigma2={s2:g}", data, t, x


def main():
    rng = np.random.default_rng(0)
    sched = nd.OU()
    print(f"{'case':<40} {'|dD|':>9} {'|dlogp|':>9} {'|dscore|':>9}")
    worst = np.zeros(3)
    for name, data, t, x in cases(rng):
        f = nd.EmpiricalScore(data, sched)
        alpha, sigma2 = float(sched.alpha(t)), float(sched.sigma2(t))
        den, logp, score = f.denoise(t, x), f.log_density(t, x), f.score(t, x)
        scale = np.abs(data).max()
        err = np.zeros(3)
        for m in range(x.shape[0]):
            lp, dn, sc = mp_oracle(data, alpha, sigma2, x[m])
            err = np.maximum(err, [
                np.abs(den[m] - dn).max() / scale,
                abs(logp[m] - lp) / (1 + abs(lp)),
                np.abs(score[m] - sc).max() * sigma2 / (np.linalg.norm(x[m]) + alpha * scale),
            ])
        worst = np.maximum(worst, err)
        print(f"{name:<40} {err[0]:>9.1e} {err[1]:>9.1e} {err[2]:>9.1e}")
    print(f"{'worst':<40} {worst[0]:>9.1e} {worst[1]:>9.1e} {worst[2]:>9.1e}   (bound 1e-12)")


if __name__ == "__main__":
    main()
