"""The sampling driver: run a solver on a grid from ``T`` down to ``delta``."""

from __future__ import annotations

import numbers
import sys
import warnings
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from numdiff._checks import as_real_array
from numdiff._random import as_generator, spawn_streams
from numdiff.grids import make_grid
from numdiff.solvers import get_solver, intervals

__all__ = ["SampleResult", "sample"]

# Rows integrated together; bounds the solver temporaries (a few chunk x d arrays)
# while keeping each denoiser call large enough to amortise its fixed cost.
DEFAULT_CHUNK = 1 << 16
# Relative tolerance for matching a save_at time to a grid time.
SAVE_AT_RTOL = 1e-9
# Seconds before the progress bar first draws: short runs print nothing.
PROGRESS_DELAY = 1.0


@dataclass
class SampleResult:
    """Output of :func:`sample`; each parameter is kept as the attribute of that name.

    Parameters
    ----------
    x : ndarray, shape (n, d)
        Samples at time ``delta``.
    times : ndarray, shape (steps + 1,)
        The time grid, decreasing from ``T`` to ``delta``.
    nfev : int
        Denoiser evaluations along each sample path (one call evaluates a whole
        chunk of samples; Heun makes two per step, the others one).
    trajectory : ndarray, shape (len(save_at), n, d), or None
        States at the ``save_at`` times, in the order given.
    save_at : ndarray, shape (len(save_at),), or None
        The ``save_at`` times as given.
    nearest_index : ndarray of int64, shape (n,), or None
        Index of each sample's nearest training point (None if the model has no
        ``nearest`` or the run failed).
    nearest_distance : ndarray, shape (n,), or None
        Distance to that training point.
    success : bool
        False if the output has non-finite values (an unstable run).
    message : str
        ``"ok"``, or why ``success`` is False.
    """

    x: np.ndarray
    times: np.ndarray
    nfev: int
    trajectory: np.ndarray | None
    save_at: np.ndarray | None
    nearest_index: np.ndarray | None
    nearest_distance: np.ndarray | None
    success: bool
    message: str


class _Counted:
    """Score model proxy that counts denoiser calls and checks what they return.

    A user's model that returns the wrong shape, complex or non-finite values
    for finite ``x`` would otherwise surface as a broadcasting error deep in a
    solver, or as a "diverged" run blamed on the step size. Rows whose ``x`` is
    already non-finite (a genuinely diverged run) are not checked.
    """

    def __init__(self, model, check=True):
        self.model, self.schedule, self.calls, self.check = model, model.schedule, 0, check

    def denoise(self, t, x):
        self.calls += 1
        out = self.model.denoise(t, x)
        if not self.check:
            return out
        if not isinstance(out, np.ndarray) or out.dtype != np.float64:
            try:
                out = as_real_array(out, "f.denoise(t, x)")
            except TypeError as err:
                raise TypeError(f"f: {err}") from None
        if out.shape != x.shape:
            raise ValueError(
                f"f.denoise(t, x) must return x's shape {x.shape}; got {out.shape} at t = {t!r}"
            )
        bad = ~np.isfinite(out).all(axis=1)
        if bad.any() and np.isfinite(x[bad]).all(axis=1).any():
            raise ValueError(
                f"f.denoise(t, x) returned NaN or infinite values for finite x at t = {t!r}"
            )
        return out


class _ZeroDenoiser:
    """A model whose denoiser is 0: a solver step then sees only the linear drift."""

    schedule = None

    def denoise(self, t, x):
        return np.zeros_like(x)


def _stiff_warning(solver, process, ivs):
    """Warn once if an explicit solver is beyond its linear stability limit.

    The test problem is the linear part of the reverse drift,
    ``y' = (b - c a^2 / sigma^2) y`` (``c = 1`` SDE, ``1/2`` ODE), whose rate
    ``c a_t^2 / sigma_t^2 ~ c / t`` near ``t = 0`` is the stiffness. A step is
    unstable when the solver's amplification factor on it exceeds both 1 and
    the exact factor (``sigma_s / sigma_t``, times ``e^{-h}`` for the SDE);
    for Euler this is ``h (c a_t^2 / sigma_t^2 - b_t) > 2``.
    """
    if solver.exponential:
        return
    linear = _ZeroDenoiser()
    one, zero = np.ones((1, 1)), np.zeros((1, 1))
    bad = []
    for iv in ivs:
        gain = abs(float(solver.step(linear, iv, one, zero)[0][0, 0]))
        exact = iv.sigma_s / iv.sigma_t * (np.exp(-iv.dlam) if process == "sde" else 1.0)
        if gain > max(1.0, exact):
            bad.append((iv, gain))
    if bad:
        iv, gain = bad[0]
        remedy = "'ddim' or 'dpmpp_2m'" if process == "ode" else "'exp_em'"
        warnings.warn(
            f"solver {solver.name!r} ({process}) is beyond its stability limit on "
            f"{len(bad)} of {len(ivs)} steps (first from t = {iv.t:.4g} to {iv.s:.4g}, "
            f"amplification {gain:.3g} on the linear part of the drift); use "
            f"grid='uniform_lambda' with enough steps, or the exponential solver {remedy}",
            RuntimeWarning,
            stacklevel=3,
        )


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value!r}")
    return int(value)


def _float_array(value, name, shape):
    arr = as_real_array(value, name)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _model_dim(f):
    if not (callable(getattr(f, "denoise", None)) and hasattr(f, "schedule")):
        raise TypeError("f must be a score model with denoise(t, x) and a schedule attribute")
    dim = getattr(f, "dim", None)
    if dim is None or isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"f.dim must be an int (the data dimension); got {dim!r}")
    if dim < 1:
        raise ValueError(f"f.dim must be >= 1; got {dim!r}")
    return int(dim)


def _save_indices(save_at, times):
    """Validate ``save_at``; return it and the grid index of each of its times."""
    save_at = np.atleast_1d(as_real_array(save_at, "save_at"))
    if save_at.ndim != 1 or not np.isfinite(save_at).all():
        raise ValueError(f"save_at must be a 1-D array of finite times; got {save_at!r}")
    idx = np.abs(times[None, :] - save_at[:, None]).argmin(axis=1)
    off = np.abs(times[idx] - save_at) > SAVE_AT_RTOL * np.maximum(1.0, np.abs(save_at))
    if off.any():
        raise ValueError(
            f"save_at: time {save_at[off][0]!r} is not a point of the time grid; "
            "take save_at from the grid, e.g. nd.grids.uniform_t(schedule, T, delta, steps)[::k]"
        )
    return save_at, idx


def _initial(f, n, dim, T, x_T, init, rng):
    if x_T is not None:
        return x_T
    if init == "normal":
        return rng.standard_normal((n, dim))
    data = getattr(f, "data", None)
    if data is None:
        raise ValueError("init='exact' needs a score model with a data attribute (N, d)")
    alpha, sigma2 = f.schedule.alpha(T), f.schedule.sigma2(T)
    index = rng.integers(data.shape[0], size=n)
    return float(alpha) * data[index] + np.sqrt(float(sigma2)) * rng.standard_normal((n, dim))


def sample(
    f, n, *, T, delta, steps, process="sde", solver="euler", grid="uniform_t", x_T=None,
    init="normal", rng=None, save_at=None, progress=None, noise=None, chunk=None,
):
    """Integrate the reverse SDE or the probability-flow ODE from ``T`` down to ``delta``.

    Parameters
    ----------
    f : score model
        An :class:`~numdiff.EmpiricalScore`, or any object with
        ``denoise(t, x)``, ``schedule`` and ``dim`` (see :class:`numdiff.solvers.Solver`).
        With ``EmpiricalScore(..., device="cuda")`` the states and the noise stay
        on the GPU across steps (noise from CuPy's generator, seeded from ``rng``:
        reproducible on the same GPU, not equal to the CPU draws); ``x``,
        ``trajectory`` and the nearest points are returned on the host.
    n : int
        Number of samples.
    T : float
        Start time, ``delta < T <= f.schedule.t_max``.
    delta : float
        Early-stopping time, ``> 0``; the output is the reverse process at ``T - delta``.
    steps : int
        Number of steps, ``>= 1``.
    process : {"sde", "ode"}
    solver : str
        ``"euler"``, ``"heun"`` (both processes), ``"ddim"``, ``"dpmpp_2m"``
        (ODE), ``"exp_em"`` (SDE); see :mod:`numdiff.solvers`.
    grid : str or array_like, shape (steps + 1,)
        ``"uniform_t"``, ``"uniform_lambda"``, ``"edm"``, ``"geometric"`` (see
        :mod:`numdiff.grids`), or the times themselves, decreasing from ``T``
        to ``delta`` (e.g. ``fine[::4]`` of a grid built once).
    x_T : array_like, shape (n, d), optional
        Initial points; overrides ``init``.
    init : {"normal", "exact"}
        ``"normal"``: ``N(0, I)`` as in the seed; ``"exact"``: the exact ``p_T``
        (pick a data index uniformly, then ``alpha_T x_k + sigma_T z``; needs ``f.data``).
    rng : None, int, sequence of int, Generator, BitGenerator, SeedSequence or RandomState
        Normalised with :func:`numpy.random.default_rng`; same seed, same output
        (for the same ``chunk``). A legacy ``RandomState`` is accepted for both
        processes: four words drawn from it seed a new Generator (so it advances,
        and the output differs from ``rng=np.random.default_rng(state)``).
        Anything else (a float, a string, a negative int) is an error naming ``rng``.
    save_at : array_like, shape (K,), optional
        Times at which to store the states. Each must be a point of the grid
        (within a relative 1e-9); otherwise ``ValueError`` (the grid is never
        altered, so that ``times`` keeps its ``steps + 1`` points and nesting).
    progress : bool or None
        Progress bar on stderr (tqdm), drawn only for runs longer than a
        second; ``None`` shows it only when stderr is a terminal, ``True``
        always, ``False`` never.
    noise : array_like, shape (steps, n, d), optional
        SDE only: the standard normals ``z`` of each step (the Brownian
        increment of step ``i`` is ``sqrt(times[i] - times[i+1]) z[i]``).
        Passing them makes runs on nested grids share one Brownian path: sum
        the fine increments to get the coarse ones. Default: drawn from ``rng``.
    chunk : int, optional
        Samples integrated together (default 65536): memory is ``O(chunk d)``
        beyond the ``O(n d)`` output. The noise of each chunk comes from its
        own child of ``rng``, so the output depends on ``chunk`` unless
        ``noise`` is given.

    Returns
    -------
    SampleResult
        The samples, the grid, counts and the nearest training points.

    Raises
    ------
    TypeError, ValueError
        Naming the argument at fault, before any work: ``f`` (no ``denoise``,
        or ``f.dim`` not a positive int), ``n``, ``T``, ``delta``, ``steps``,
        ``process``, ``solver``, ``grid``, ``x_T``, ``init``, ``rng``,
        ``save_at``, ``progress``, ``noise``, ``chunk``; and during the run,
        naming ``f.denoise`` if it returns the wrong shape, complex values, or
        non-finite values for finite ``x``.

    Warns
    -----
    RuntimeWarning
        Once, when an explicit solver (Euler, Heun) is beyond its stability
        limit on some step; exponential solvers never warn.

    Notes
    -----
    *Stiffness.* Near ``delta`` the reverse drift has the linear part
    ``(b_t - c a_t^2 / sigma_t^2) y`` (``c = 1`` for the SDE, ``1/2`` for the
    ODE), of rate ``~ c / t`` for small ``t``; between data points the score's
    Lipschitz constant grows further, like ``alpha^2 / sigma^2`` times the
    data spread. A step counts as unstable when the solver's amplification
    factor on the linear part exceeds both 1 and the exact factor; for Euler
    that is ``h (c a_t^2 / sigma_t^2 - b_t) > 2``. Remedies: a grid uniform in
    ``lambda`` (or geometric) with enough steps, or an exponential solver
    (``"ddim"``, ``"dpmpp_2m"``, ``"exp_em"``), which is exact on the linear part.

    *Cost.* One denoiser call per step (two for Heun) on each chunk, plus one
    nearest-neighbour search of the output when ``f`` has ``nearest``. The
    Python work per step is a few array operations on the chunk; at
    ``n = N = 4096, d = 2`` it is about 1% of the denoiser's time.
    """
    dim = _model_dim(f)
    n = _positive_int(n, "n")
    method = get_solver(solver, process)
    times = make_grid(f.schedule, grid, T, delta, steps)
    steps = times.size - 1
    if not isinstance(init, str) or init not in ("normal", "exact"):
        raise ValueError(f"init must be 'normal' or 'exact'; got {init!r}")
    chunk = DEFAULT_CHUNK if chunk is None else _positive_int(chunk, "chunk")
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None; got {progress!r}")
    if noise is not None:
        if process != "sde":
            raise ValueError("noise is only used with process='sde'")
        noise = _float_array(noise, "noise", (steps, n, dim))
    save_idx = None
    if save_at is not None:
        save_at, save_idx = _save_indices(save_at, times)
    if x_T is not None:
        x_T = _float_array(x_T, "x_T", (n, dim)).copy()
    rng = as_generator(rng)
    x_all = _initial(f, n, dim, times[0], x_T, init, rng)
    ivs = intervals(f.schedule, times)
    _stiff_warning(method, process, ivs)

    # A GPU model keeps the state and the noise on the device; only saved states
    # and the output come back to the host.
    on_device = getattr(f, "device", "cpu") == "cuda"
    to_device = f.to_device if on_device else (lambda a: a)
    to_host = f.to_host if on_device else (lambda a: a)
    x_all = to_device(x_all)
    n_chunks = -(-n // chunk)
    draws = [None] * n_chunks
    if process == "sde" and noise is None:
        gens = spawn_streams(rng, n_chunks)
        draws = [f.normal_stream(g) if on_device else g.standard_normal for g in gens]
    trajectory = None if save_idx is None else np.empty((save_idx.size, n, dim))
    # The GPU model is numdiff's own: its output needs no check (which would sync).
    model = _Counted(f, check=not on_device)
    # disable=None is tqdm's "off unless the output is a terminal"; the delay keeps
    # short runs silent even there.
    bar = tqdm(total=n_chunks * steps, desc="sample", unit="step", file=sys.stderr,
               disable=None if progress is None else not progress, delay=PROGRESS_DELAY,
               mininterval=0.1, leave=True)
    nfev = 0
    try:
        for c, lo in enumerate(range(0, n, chunk)):
            rows = slice(lo, min(n, lo + chunk))
            x, state = x_all[rows], None
            if trajectory is not None:
                trajectory[save_idx == 0, rows] = to_host(x)
            for i, iv in enumerate(ivs):
                z = None
                if process == "sde":
                    z = to_device(noise[i, rows]) if noise is not None else draws[c](x.shape)
                x, state = method.step(model, iv, x, z, state)
                if trajectory is not None and (save_idx == i + 1).any():
                    trajectory[save_idx == i + 1, rows] = to_host(x)
                bar.update()
            x_all[rows] = x
            if c == 0:
                nfev = model.calls
    finally:
        bar.close()
    x_all = to_host(x_all)

    bad = ~np.isfinite(x_all).all(axis=1)
    nearest_index = nearest_distance = None
    if bad.any():
        success = False
        message = (
            f"{int(bad.sum())} of {n} samples are not finite: the solver diverged; "
            "use grid='uniform_lambda', more steps, or an exponential solver"
        )
    else:
        success, message = True, "ok"
        if callable(getattr(f, "nearest", None)):
            idx, dist = f.nearest(x_all, 1)
            nearest_index, nearest_distance = idx[:, 0], dist[:, 0]
    return SampleResult(
        x=x_all, times=times, nfev=nfev, trajectory=trajectory, save_at=save_at,
        nearest_index=nearest_index, nearest_distance=nearest_distance,
        success=success, message=message,
    )
