"""DDIM, i.e. DPM-Solver++ of order 1, for the probability-flow ODE."""

from __future__ import annotations

import numpy as np

from numdiff.solvers.base import Solver


class DDIM(Solver):
    """First-order exponential integrator in data prediction.

    In ``lambda = log(alpha / sigma)`` the ODE reads ``d(x / sigma) / d lambda =
    e^lambda D``; holding ``D`` at its value at ``t`` gives

        x_s = (sigma_s / sigma_t) x_t - alpha_s expm1(-h) D(t, x_t),   h = lambda_s - lambda_t,

    exact for the linear part and, since ``D`` is then constant, for ``N = 1``.
    """

    name = "ddim"
    process = "ode"
    ode_order = 1
    exponential = True

    def step(self, model, iv, x, z=None, state=None):
        denoised = model.denoise(iv.t, x)
        return (iv.sigma_s / iv.sigma_t) * x - (iv.alpha_s * np.expm1(-iv.dlam)) * denoised, None
