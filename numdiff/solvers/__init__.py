"""Reverse-SDE and probability-flow-ODE solvers: one per file, orders as data.

=============  =======  ========================================  ===========================
name           process  method                                    orders (ODE / strong / weak)
=============  =======  ========================================  ===========================
``euler``      ode      Euler                                     1 / - / -
``euler``      sde      Euler-Maruyama                            - / 1 / 1
``heun``       ode      Heun (explicit trapezoid)                 2 / - / -
``heun``       sde      stochastic Heun                           - / 1 / 2
``ddim``       ode      DDIM = DPM-Solver++(1), exponential       1 / - / -
``dpmpp_2m``   ode      DPM-Solver++(2M), exponential multistep   2 / - / -
``exp_em``     sde      exponential Euler-Maruyama (DDPM step)    - / 1 / 1
=============  =======  ========================================  ===========================

Which to use: the exponential solvers integrate the stiff linear part
``-c a_t^2 y / sigma_t^2`` exactly and never need small steps near ``delta``;
``dpmpp_2m`` is the accurate default for the ODE and ``exp_em`` for the SDE.
Euler and Heun are the reference discretisations of the seed and need a grid
that refines near ``delta`` (``uniform_lambda``, ``geometric``).
"""

from __future__ import annotations

from numdiff.solvers.base import Interval, Solver, intervals, reverse_drift
from numdiff.solvers.ddim import DDIM
from numdiff.solvers.dpmpp_2m import DPMSolverPP2M
from numdiff.solvers.euler import Euler
from numdiff.solvers.exp_em import ExponentialEM
from numdiff.solvers.heun import Heun

__all__ = ["SOLVERS", "Interval", "Solver", "get_solver", "intervals", "reverse_drift"]

PROCESSES = ("sde", "ode")

SOLVERS = {
    ("ode", "euler"): Euler("ode"),
    ("sde", "euler"): Euler("sde"),
    ("ode", "heun"): Heun("ode"),
    ("sde", "heun"): Heun("sde"),
    ("ode", "ddim"): DDIM(),
    ("ode", "dpmpp_2m"): DPMSolverPP2M(),
    ("sde", "exp_em"): ExponentialEM(),
}


def get_solver(name, process):
    """The registered solver ``name`` for ``process``.

    Parameters
    ----------
    name : str
        ``"euler"``, ``"heun"``, ``"ddim"``, ``"dpmpp_2m"`` or ``"exp_em"``.
    process : {"sde", "ode"}
        The equation to integrate.

    Returns
    -------
    Solver
        The shared instance from :data:`SOLVERS`; ``ValueError`` naming
        ``solver`` or ``process`` if the pair is unknown or invalid.
    """
    if not isinstance(process, str) or process not in PROCESSES:
        raise ValueError(f"process must be one of {PROCESSES}; got {process!r}")
    names = sorted({key[1] for key in SOLVERS})
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"solver must be one of {names}; got {name!r}")
    if (process, name) not in SOLVERS:
        valid = sorted(key[1] for key in SOLVERS if key[0] == process)
        raise ValueError(
            f"solver {name!r} is not valid for process={process!r}; choose one of {valid}"
        )
    return SOLVERS[(process, name)]
