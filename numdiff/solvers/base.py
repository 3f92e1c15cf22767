"""What a solver is: data (name, process, orders) plus one step function."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "Solver", "intervals", "reverse_drift"]


@dataclass(frozen=True)
class Interval:
    """Schedule quantities at both ends of one reverse step from ``t`` to ``s < t``.

    Built by :func:`intervals` (or :meth:`between`); each parameter is kept as
    the attribute of that name.

    Parameters
    ----------
    t, s : float
        Start and end of the step (``s < t``: the reverse process runs down in ``t``).
    h : float
        ``t - s > 0``.
    alpha_t, alpha_s, sigma_t, sigma_s, sigma2_t, sigma2_s : float
        ``alpha`` and ``sigma`` (and ``sigma^2``) at ``t`` and ``s``.
    b_t, b_s, a2_t, a2_s : float
        Drift coefficient ``b`` and ``a^2`` at ``t`` and ``s``.
    dlam : float
        ``lambda_s - lambda_t > 0`` with ``lambda = log(alpha / sigma)``.
    """

    t: float
    s: float
    h: float
    alpha_t: float
    alpha_s: float
    sigma_t: float
    sigma_s: float
    sigma2_t: float
    sigma2_s: float
    b_t: float
    b_s: float
    a2_t: float
    a2_s: float
    dlam: float

    @classmethod
    def between(cls, schedule, t, s):
        """The interval from ``t`` to ``s`` of ``schedule``.

        Parameters
        ----------
        schedule : Schedule
            The forward process.
        t : float
            Start of the step, ``<= schedule.t_max``.
        s : float
            End of the step, ``0 < s < t``.

        Returns
        -------
        Interval
        """
        return intervals(schedule, np.array([t, s], dtype=np.float64))[0]


def intervals(schedule, times):
    """One :class:`Interval` per step of a decreasing grid.

    The schedule is evaluated once, vectorised, for the whole grid, so the
    steps themselves are plain arithmetic.

    Parameters
    ----------
    schedule : Schedule
        The forward process.
    times : ndarray, shape (K + 1,)
        Strictly decreasing, all ``> 0``.

    Returns
    -------
    list of Interval, length K
    """
    alpha = schedule.alpha(times)
    sigma2 = schedule.sigma2(times)
    lam = schedule.lam(times)
    b, a2 = schedule.b(times), schedule.a2(times)
    sigma = np.sqrt(sigma2)
    out = []
    for i in range(times.size - 1):
        j = i + 1
        out.append(
            Interval(
                float(times[i]), float(times[j]), float(times[i] - times[j]),
                float(alpha[i]), float(alpha[j]), float(sigma[i]), float(sigma[j]),
                float(sigma2[i]), float(sigma2[j]), float(b[i]), float(b[j]),
                float(a2[i]), float(a2[j]), float(lam[j] - lam[i]),
            )
        )
    return out


def reverse_drift(weight, b, a2, alpha, sigma2, x, denoised):
    """Drift of the reverse process in reverse time, from the denoiser.

    ``b x + weight * a^2 * score`` with ``score = (alpha D - x) / sigma^2``;
    ``weight = 1`` is the reverse SDE, ``weight = 1/2`` the probability-flow ODE.

    Parameters
    ----------
    weight : float
        1 for the reverse SDE, 1/2 for the probability-flow ODE.
    b, a2 : float
        Drift coefficient ``b_t`` and squared diffusion ``a_t^2`` at the time.
    alpha, sigma2 : float
        ``alpha_t`` and ``sigma_t^2`` at the time, ``sigma2 > 0``.
    x : ndarray, shape (M, d)
        States.
    denoised : ndarray, shape (M, d)
        ``D(t, x)``.

    Returns
    -------
    ndarray, shape (M, d)
    """
    return b * x + (weight * a2 / sigma2) * (alpha * denoised - x)


class Solver:
    """Base class of the reverse-process solvers; its docstring is the contract.

    A solver is data plus one step. Subclasses set the class attributes and
    implement :meth:`step`; registering one is one line in
    ``numdiff/solvers/__init__.py``.

    Attributes
    ----------
    name : str
        Registry name (``"euler"``, ``"heun"``, ``"ddim"``, ``"dpmpp_2m"``, ``"exp_em"``).
    process : {"ode", "sde"}
        The equation the solver integrates: the probability-flow ODE
        ``y' = b y + (a^2 / 2) s(t, y)`` or the reverse SDE
        ``dY = [b Y + a^2 s(t, Y)] dt_rev + a dW``, both in reverse time.
    ode_order : int or None
        Global order of accuracy for the ODE.
    sde_strong_order, sde_weak_order : float or None
        Strong and weak orders for the reverse SDE (its noise is additive).
    exponential : bool
        True if the step integrates the linear part ``b y - c a^2 y / sigma^2``
        exactly; such a solver has no step-size stability limit and is never
        flagged as stiff.
    needs_history : bool
        True for multistep methods: :meth:`step` then uses and returns ``state``.

    Notes
    -----
    **Score-model protocol.** The solvers never require an
    :class:`~numdiff.EmpiricalScore`. A *score model* is any object with

    * ``denoise(t, x) -> ndarray (M, d)``: the posterior mean ``E[X_0 | X_t = x]``
      for a scalar ``t`` and ``x`` of shape ``(M, d)``;
    * ``schedule``: the forward process, with ``alpha``, ``sigma2``, ``lam``,
      ``b``, ``a2`` (and ``lam_inv`` for log-SNR grids);
    * ``dim``: the data dimension ``d`` (used by :func:`numdiff.sample`).

    The score is ``s(t, x) = (alpha_t D(t, x) - x) / sigma_t^2``. Exponential
    solvers use ``D`` directly (data prediction), which is why the protocol is
    the denoiser and not the score. :func:`numdiff.sample` also uses
    ``nearest(x, k)`` and ``data`` when the model has them.

    **Noise.** An SDE step receives ``z``, an array of standard normals of
    ``x``'s shape; the Brownian increment of the step is ``sqrt(h) z``. The
    driver draws ``z`` (or takes it from the user, for nested Brownian paths).
    """

    name: str = ""
    process: str = ""
    ode_order: int | None = None
    sde_strong_order: float | None = None
    sde_weak_order: float | None = None
    exponential: bool = False
    needs_history: bool = False

    def step(self, model, iv, x, z=None, state=None):
        """Advance ``x`` from ``iv.t`` to ``iv.s``.

        Parameters
        ----------
        model : score model
            See the class notes.
        iv : Interval
            The step's schedule quantities.
        x : ndarray, shape (M, d)
            State at ``iv.t``; not modified.
        z : ndarray, shape (M, d), optional
            Standard normals (SDE solvers only).
        state : object, optional
            What the previous step returned (multistep solvers); ``None`` at the first step.

        Returns
        -------
        x_s : ndarray, shape (M, d)
        state : object
            To pass to the next step.
        """
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(process={self.process!r})"
