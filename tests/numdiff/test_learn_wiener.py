"""Training reaches a known optimum: on zero-mean Gaussian data at one noise level the
optimal denoiser is the linear Wiener filter ``alpha Sigma (alpha^2 Sigma + sigma^2 I)^-1``
(theory/denoisers.py), which a bias-free network can represent exactly (a linear map
is homogeneous; ``relu(u) - relu(-u) = u``).

The covariance is stationary on the 4x4 torus (circulant), so the Wiener filter is a
circular convolution and a circular-padding conv net can represent it.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("jax")

import numdiff as nd
from numdiff.learn import NetConfig, NetworkScore, TrainConfig, train
from theory.denoisers import gaussian_denoiser, gaussian_sample

SIDE = 4
NOISE = 0.5  # s = sigma / alpha of the one training level


def torus_covariance():
    """Stationary covariance on the SIDE x SIDE torus: ``K (x) K`` (+ 0.05 I) with ``K``
    the circulant of first row (1, 0.5, 0.1, 0.5), whose eigenvalues 2.1, 0.9, 0.1, 0.9
    are positive."""
    row = np.array([1.0, 0.5, 0.1, 0.5])
    k = np.array([np.roll(row, i) for i in range(SIDE)])
    return 0.25 * np.kron(k, k) + 0.05 * np.eye(SIDE * SIDE)


def excess_over_wiener(steps, seed=0):
    """Relative excess MSE of the trained net over the Wiener filter, on fresh data."""
    cov = torus_covariance()
    d = SIDE * SIDE
    data = gaussian_sample(20000, np.zeros(d), cov, rng=seed)
    net = train(data, NetConfig(image_shape=(SIDE, SIDE, 1), channels=(8,), blocks=2,
                                padding="circular", data_scale=float(np.sqrt(np.trace(cov) / d))),
                TrainConfig(steps=steps, batch=256, lr=3e-3, warmup=100, ema_decay=0.99,
                            s_min=NOISE, s_max=NOISE, seed=seed, eval_every=steps))
    schedule = nd.OU()
    t = float(schedule.lam_inv(-np.log(NOISE)))
    alpha, sigma2 = (float(v) for v in schedule.alpha_sigma2(t))
    rng = np.random.default_rng(seed + 1)
    x0 = gaussian_sample(4000, np.zeros(d), cov, rng=rng)
    x = alpha * x0 + np.sqrt(sigma2) * rng.standard_normal(x0.shape)
    wiener = gaussian_denoiser(x, np.zeros(d), cov, alpha, sigma2)
    learned = NetworkScore(net, schedule).denoise(t, x)
    mse_w = np.mean((wiener - x0) ** 2)
    mse_net = np.mean((learned - x0) ** 2)
    gap = np.mean((learned - wiener) ** 2) / np.mean(wiener**2)
    return (mse_net - mse_w) / mse_w, gap


@pytest.mark.slow
def test_trained_net_approaches_the_wiener_filter():
    # 1500 updates of batch 256 (one level of 8 channels, 4 convolutions;
    # about 40 s on the loaded 2-core machine). Measured (seed 0): excess MSE 0.20% and
    # |D_net - D_wiener|^2 / |D_wiener|^2 = 0.10%; after 300 updates 1.5% and 0.9%,
    # after 20 updates 69% and 41%. Tolerance 1%: five times the measured value.
    excess, gap = excess_over_wiener(1500)
    assert excess < 0.01, excess
    assert gap < 0.01, gap


@pytest.mark.slow
def test_wiener_check_fails_for_an_undertrained_net():
    """Negative control: 20 updates are far from the optimum, and the check says so."""
    excess, gap = excess_over_wiener(20)
    assert excess > 0.01 or gap > 0.01, (excess, gap)
