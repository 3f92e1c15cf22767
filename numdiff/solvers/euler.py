"""Explicit Euler: Euler's method for the ODE, Euler-Maruyama for the SDE."""

from __future__ import annotations

import numpy as np

from numdiff.solvers.base import Solver, reverse_drift


class Euler(Solver):
    """Euler / Euler-Maruyama step in reverse time.

    ``x_s = x_t + h f(t, x_t) [+ a_t sqrt(h) z]`` with ``f`` the reverse drift.
    With additive noise Euler-Maruyama has strong order 1 (the Milstein
    correction vanishes) and weak order 1.

    Parameters
    ----------
    process : {"ode", "sde"}
        The equation the instance integrates.
    """

    name = "euler"
    ode_order = 1
    sde_strong_order = 1.0
    sde_weak_order = 1.0

    def __init__(self, process):
        self.process = process
        self._weight = 1.0 if process == "sde" else 0.5

    def step(self, model, iv, x, z=None, state=None):
        denoised = model.denoise(iv.t, x)
        x_s = x + iv.h * reverse_drift(
            self._weight, iv.b_t, iv.a2_t, iv.alpha_t, iv.sigma2_t, x, denoised
        )
        if self.process == "sde":
            x_s += np.sqrt(iv.a2_t * iv.h) * z
        return x_s, None
