"""Accuracy of the local image scores against their definitions in 256-bit arithmetic.

    python benchmarks/accuracy_local.py

For each model of ``numdiff.local`` (LS, ELS with valid and circular training
patches, boundary-aware ELS) on small random cases (``N = 2`` images of 4 x 5,
``k = 3``, two queries), the largest error of ``denoise`` against
tests/numdiff/exact_local.py at ``mp.prec = 256``, in units of ``eps`` (the values
are pixels in [0, 1], so absolute error is the natural unit). One channel runs the
direct engine (``d = 9``), two the BLAS engine (``d = 18``, logits exact to
``LOGIT_TOL``). The contract is 64 eps (tests/numdiff/test_local.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import mpmath as mp
import numpy as np

import numdiff as nd
from numdiff.local import BoundaryAwareELS, EquivariantLocalScore, LocalScore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "numdiff"))
import exact_local  # the test suite's oracle, on the path above

EPS = np.finfo(np.float64).eps
MODELS = {
    "ls": lambda d, s: LocalScore(d, s, 3),
    "els_valid": lambda d, s: EquivariantLocalScore(d, s, 3),
    "els_circular": lambda d, s: EquivariantLocalScore(d, s, 3, "circular"),
    "boundary": lambda d, s: BoundaryAwareELS(d, s, 3),
}
SIGMA2 = (1e-6, 1e-2, 0.5)


def worst_error(name, channels, sigma2, seed):
    schedule = nd.OU()
    t = -0.5 * np.log1p(-sigma2)  # OU: sigma2 = 1 - exp(-2 t)
    rng = np.random.default_rng(seed)
    data = rng.random((2, 4, 5, channels))
    query = rng.random((2, 4, 5, channels)) + 0.3 * rng.standard_normal((2, 4, 5, channels))
    got = MODELS[name](data, schedule).denoise(t, query.reshape(2, -1)).reshape(query.shape)
    with mp.workprec(256):
        want = exact_local.denoise(data, query, float(schedule.alpha(t)),
                                   float(schedule.sigma2(t)), 3, name)
    return np.abs(got - want).max() / EPS


def main():
    print("worst |numdiff - 256-bit| / eps over 2 queries x 20 pixels, 3 seeds each")
    print(f"{'model':>13} {'C':>2} | " + " ".join(f"s2={s:<8g}" for s in SIGMA2))
    for name in MODELS:
        for channels in (1, 2):
            errs = [max(worst_error(name, channels, s2, seed) for seed in range(3))
                    for s2 in SIGMA2]
            print(f"{name:>13} {channels:>2} | " + " ".join(f"{e:<11.2f}" for e in errs),
                  flush=True)


if __name__ == "__main__":
    main()
