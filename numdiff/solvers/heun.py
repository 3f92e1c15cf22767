"""Heun's method (explicit trapezoidal rule), deterministic and stochastic."""

from __future__ import annotations

import numpy as np

from numdiff.solvers.base import Solver, reverse_drift


class Heun(Solver):
    """Heun step in reverse time; two denoiser calls per step.

    Predictor ``x~ = x_t + h f(t, x_t) [+ a_t dW]``, corrector
    ``x_s = x_t + (h / 2) (f(t, x_t) + f(s, x~)) [+ (a_t + a_s) / 2 dW]``, with
    ``dW = sqrt(h) z`` the same increment in both stages. For the ODE this is
    second order. For the SDE (additive noise) it is the stochastic Heun
    method: strong order 1, like Euler-Maruyama, and weak order 2 (the
    ``f' a dW h / 2`` term of the trapezoid matches the weak order-2 Taylor
    scheme in the moments that matter; measured in validation/orders.py).

    Parameters
    ----------
    process : {"ode", "sde"}
        The equation the instance integrates.
    """

    name = "heun"
    ode_order = 2
    sde_strong_order = 1.0
    sde_weak_order = 2.0

    def __init__(self, process):
        self.process = process
        self._weight = 1.0 if process == "sde" else 0.5

    def step(self, model, iv, x, z=None, state=None):
        w = self._weight
        k1 = reverse_drift(w, iv.b_t, iv.a2_t, iv.alpha_t, iv.sigma2_t, x, model.denoise(iv.t, x))
        x_pred = x + iv.h * k1
        if self.process == "sde":
            dw = np.sqrt(iv.h) * z
            x_pred += np.sqrt(iv.a2_t) * dw
        k2 = reverse_drift(
            w, iv.b_s, iv.a2_s, iv.alpha_s, iv.sigma2_s, x_pred, model.denoise(iv.s, x_pred)
        )
        x_s = x + (0.5 * iv.h) * (k1 + k2)
        if self.process == "sde":
            x_s += 0.5 * (np.sqrt(iv.a2_t) + np.sqrt(iv.a2_s)) * dw
        return x_s, None
