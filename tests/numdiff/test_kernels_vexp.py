"""The vectorisable exp against numpy's libm exp, called from inside @njit."""

import numba
import numpy as np

from numdiff._kernels.vexp import FLUSH, exp_shifted_sum


@numba.njit
def _kernel(z, shift):
    bits = np.empty(z.shape[0], dtype=np.int64)
    return exp_shifted_sum(z, z.shape[0], shift, bits)


def _call(z, shift=0.0):
    total = _kernel(z, shift)
    assert abs(total - z.sum()) <= 1e-12 * z.sum()
    return z


def test_relative_error_below_three_ulp():
    x = -np.concatenate([np.linspace(0, FLUSH, 200_001), np.random.default_rng(0).uniform(0, 1, 10_000)])
    got = _call(x.copy())
    assert np.max(np.abs(got / np.exp(x) - 1)) <= 3.5e-16


def test_shift_is_subtracted_exactly():
    x = np.linspace(-50.0, 0.0, 1001) + 1234.5
    got = _call(x.copy(), shift=1234.5)
    assert np.max(np.abs(got / np.exp(x - 1234.5) - 1)) <= 3.5e-16


def test_flushes_below_threshold_and_keeps_exact_points():
    x = np.array([0.0, -FLUSH, -FLUSH - 1e-9, -700.0, -np.inf])
    got = _call(x.copy())
    assert got[0] == 1.0
    assert abs(got[1] / np.exp(-FLUSH) - 1) < 4e-16
    assert np.all(got[2:] == 0.0)
