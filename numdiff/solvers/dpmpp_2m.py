"""DPM-Solver++(2M): the second-order multistep exponential integrator (Lu et al. 2022)."""

from __future__ import annotations

import numpy as np

from numdiff.solvers.base import Solver


class DPMSolverPP2M(Solver):
    """Second-order multistep data-prediction solver for the probability-flow ODE.

    The DDIM step with ``D`` replaced by the linear extrapolation in ``lambda``
    of the last two denoiser values to the step's midpoint:
    ``D~ = (1 + 1 / (2 r)) D_t - (1 / (2 r)) D_prev``, ``r = h_prev / h``. The
    first step has no history and is a DDIM step. One denoiser call per step.
    ``state`` is ``(D_prev, h_prev)``.
    """

    name = "dpmpp_2m"
    process = "ode"
    ode_order = 2
    exponential = True
    needs_history = True

    def step(self, model, iv, x, z=None, state=None):
        denoised = model.denoise(iv.t, x)
        h = iv.dlam
        if state is None:
            blended = denoised
        else:
            prev, h_prev = state
            c = 0.5 * h / h_prev
            blended = (1.0 + c) * denoised - c * prev
        x_s = (iv.sigma_s / iv.sigma_t) * x - (iv.alpha_s * np.expm1(-h)) * blended
        return x_s, (denoised, h)
