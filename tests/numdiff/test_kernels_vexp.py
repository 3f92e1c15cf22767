"""The vectorisable exp against numpy's exp and against exact values, called from @njit."""

import math

import mpmath
import numba
import numpy as np

from numdiff._kernels.vexp import FLUSH, G, exp_shifted_sum


@numba.njit
def _kernel(z, shift):
    return exp_shifted_sum(z, z.shape[0], shift)


def _call(z, shift=0.0):
    total = _kernel(z, shift)
    assert abs(total - z.sum()) <= 1e-12 * z.sum()
    return z


def test_relative_error_below_three_ulp():
    x = -np.concatenate([np.linspace(0, FLUSH, 200_001), np.random.default_rng(0).uniform(0, 1, 10_000)])
    got = _call(x.copy())
    assert np.max(np.abs(got / np.exp(x) - 1)) <= 3.5e-16


def test_error_from_the_exact_value_below_one_ulp():
    """Against 30-digit exponentials (numpy's own exp is not exact): measured 1.26e-16,
    the rounding of the last steps. A polynomial of the wrong degree (Taylor's of
    degree 11: 8.6e-15) or a reduction without ``_LN2_LO`` fails it."""
    x = -np.concatenate([np.linspace(0, FLUSH, 4001), np.random.default_rng(1).uniform(0, 3, 2000)])
    got = _call(x.copy())
    with mpmath.workdps(30):
        worst = max(abs(mpmath.mpf(float(g)) / mpmath.exp(mpmath.mpf(float(v))) - 1)
                    for g, v in zip(got, x))
    assert worst <= 2.2e-16, float(worst)


def test_stored_coefficients_reach_the_stated_accuracy():
    """``1 + r + r^2 g(r)`` with the float64 coefficients as stored, evaluated exactly,
    against ``e^r`` on ``[-ln2/2, ln2/2]`` (the reduced range): <= 1.8e-17 relative
    (the Chebyshev fit's own bound, vexp.py's docstring; measured 1.6e-17). Caught:
    one coefficient off by 1e-12 of itself (7.5e-17), all rounded to 12 digits
    (2.0e-14)."""
    with mpmath.workdps(40):
        half = mpmath.log(2) / 2
        worst = 0
        for i in range(2001):
            r = -half + 2 * half * i / 2000
            g = mpmath.mpf(0)
            for c in G:
                g = g * r + mpmath.mpf(c)
            worst = max(worst, abs((1 + r + r * r * g) / mpmath.exp(r) - 1))
    assert worst <= 1.8e-17, float(worst)


def test_shift_is_subtracted_exactly():
    x = np.linspace(-50.0, 0.0, 1001) + 1234.5
    got = _call(x.copy(), shift=1234.5)
    assert np.max(np.abs(got / np.exp(x - 1234.5) - 1)) <= 3.5e-16


def test_flushes_below_threshold_and_keeps_exact_points():
    x = np.array([0.0, -FLUSH, -FLUSH - 1e-9, -700.0, -1e300, -np.inf])
    got = _call(x.copy())
    assert got[0] == 1.0
    assert abs(got[1] / np.exp(-FLUSH) - 1) < 4e-16
    assert np.all(got[2:] == 0.0)


def test_nan_gives_zero_and_positive_arguments_are_exact():
    """A NaN read from memory is flushed like -inf; up to 709 the power of two is still
    formed exactly."""
    got = _call(np.array([math.nan, 0.0]))
    assert got[0] == 0.0 and got[1] == 1.0
    x = np.array([1.0, 50.5, 700.0])
    got = np.array([_call(np.array([v]))[0] for v in x])
    assert np.max(np.abs(got / np.exp(x) - 1)) <= 3.5e-16
