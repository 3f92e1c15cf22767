"""First-order exponential step for the reverse SDE (DPM-Solver++ SDE order 1)."""

from __future__ import annotations

import numpy as np

from numdiff.solvers.base import Solver


class ExponentialEM(Solver):
    """Exponential Euler-Maruyama step: the DDPM posterior for any schedule.

    Holding ``D`` at its value at ``t``, the reverse SDE is linear with additive
    noise and is solved exactly:

        x_s = (sigma_s / sigma_t) e^{-h} x_t + alpha_s (1 - e^{-2h}) D(t, x_t)
              + sigma_s sqrt(1 - e^{-2h}) z,                   h = lambda_s - lambda_t.

    For ``N = 1`` (``D`` constant) it is the exact Gaussian transition of the
    reverse process. ``z`` is the step's Brownian increment divided by
    ``sqrt(t - s)``, so the step can run on a given Brownian path; the noise
    integral is approximated by a multiple of the increment, which keeps
    strong order 1 for this additive noise; weak order 1.
    """

    name = "exp_em"
    process = "sde"
    sde_strong_order = 1.0
    sde_weak_order = 1.0
    exponential = True

    def step(self, model, iv, x, z=None, state=None):
        denoised = model.denoise(iv.t, x)
        decay = np.exp(-iv.dlam)
        one_minus = -np.expm1(-2.0 * iv.dlam)
        x_s = (iv.sigma_s / iv.sigma_t * decay) * x + (iv.alpha_s * one_minus) * denoised
        x_s += (iv.sigma_s * np.sqrt(one_minus)) * z
        return x_s, None
