"""Tests of theory.memorization: the collapse SNR and time of Biroli et al. (2024)."""

from itertools import pairwise

import mpmath as mp
import numpy as np
import pytest

from theory.memorization import collapse_snr, collapse_time


class OUSchedule:
    t_max = np.inf

    def alpha(self, t):
        return np.exp(-np.asarray(t, dtype=float))

    def sigma2(self, t):
        return -np.expm1(-2.0 * np.asarray(t, dtype=float))


class VESchedule:
    """alpha = 1, sigma2 = t^2 on [0, t_max]; outside it raises, like numdiff."""

    def __init__(self, t_max=np.inf):
        self.t_max = t_max

    def alpha(self, t):
        return np.ones_like(np.asarray(t, dtype=float))

    def sigma2(self, t):
        t = np.asarray(t, dtype=float)
        if (t > self.t_max).any() or (t < 0).any():
            raise ValueError("t outside the domain")
        return t**2


def test_collapse_snr_values():
    assert collapse_snr(100, 2) == pytest.approx(99.0, rel=1e-14)
    assert collapse_snr(100, 2, data_var=4.0) == pytest.approx(99.0 / 4.0, rel=1e-14)
    assert collapse_snr(1, 5) == 0.0
    # Large d: N^(2/d) - 1 is tiny and must not be lost to cancellation.
    with mp.workdps(50):
        ref = float(mp.power(2, mp.mpf(2) / 10**6) - 1)
    assert collapse_snr(2, 10**6) == pytest.approx(ref, rel=1e-14)


@pytest.mark.parametrize(
    ("N", "d", "data_var"),
    [(100, 2, 1.0), (1000, 50, 2.0), (2, 1000, 1.0), (10**6, 1, 1.0), (50, 8, 0.25)],
)
def test_ou_collapse_time_closed_form(N, d, data_var):
    # OU: e^{-2t} data_var / (1 - e^{-2t}) = N^(2/d) - 1
    #  <=> t_C = log(1 + data_var / (N^(2/d) - 1)) / 2, the paper's Gaussian formula.
    exact = 0.5 * np.log1p(data_var / np.expm1(2 * np.log(N) / d))
    t_c = collapse_time(N, d, OUSchedule(), data_var)
    assert t_c == pytest.approx(exact, rel=1e-12)
    # The entropy criterion itself: (d/2) log(1 + SNR_data) = log N at t_C.
    snr = np.exp(-2 * t_c) * data_var / -np.expm1(-2 * t_c)
    assert 0.5 * d * np.log1p(snr) == pytest.approx(np.log(N), rel=1e-11)


@pytest.mark.parametrize(("N", "d"), [(10, 2), (1000, 4), (5, 30)])
def test_ve_collapse_time_closed_form(N, d):
    # alpha = 1, sigma2 = t^2: t_C = sqrt(data_var / (N^(2/d) - 1)).
    exact = np.sqrt(3.0 / np.expm1(2 * np.log(N) / d))
    assert collapse_time(N, d, VESchedule(), data_var=3.0) == pytest.approx(exact, rel=1e-12)


def test_collapse_time_outside_domain_and_single_point():
    # N = 2, d = 10: target 2^(1/5) - 1 ~ 0.149 < 1, so t_C = 2.59 > t_max = 1.
    assert collapse_time(2, 10, VESchedule(t_max=1.0)) == np.inf
    assert collapse_time(2, 10, VESchedule(t_max=3.0)) == pytest.approx(
        np.sqrt(1 / (2**0.2 - 1)), rel=1e-12
    )
    assert collapse_time(1, 3, OUSchedule()) == np.inf


def test_collapse_time_decreases_with_n():
    # More data: a larger SNR is needed, so collapse happens closer to t = 0.
    times = [collapse_time(n, 8, OUSchedule()) for n in (2, 10, 100, 10**4, 10**8)]
    assert all(a > b for a, b in pairwise(times))


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"\bN\b"):
        collapse_snr(0, 2)
    with pytest.raises(TypeError, match=r"\bd\b"):
        collapse_snr(10, 1.5)
    with pytest.raises(ValueError, match="data_var"):
        collapse_time(10, 2, OUSchedule(), data_var=0.0)
    with pytest.raises(TypeError, match="schedule"):
        collapse_time(10, 2, object())
