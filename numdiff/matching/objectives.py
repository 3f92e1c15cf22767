"""The objectives: implicit (Hyvarinen) score matching, Fisher divergence and
denoising score matching (eq. (9))."""

from __future__ import annotations

import numpy as np

from numdiff._checks import as_points, as_real_array
from numdiff._random import as_generator
from numdiff.matching._inputs import _CHUNK, _check_model, _check_times, _count, _model_dim, _score
from numdiff.matching.estimates import MonteCarloEstimate
from numdiff.matching.hutchinson import divergence


def implicit_loss(model, t, x, *, method="auto", n_probes=16, rng=None, jvp=None):
    """Implicit (Hyvarinen) score-matching loss ``E[|s|^2 + 2 div s]``, eq. (8).

    Averaged over the given samples ``x`` (drawn from the law the loss refers
    to). By Theorem 1, ``E|grad log p - s|^2 = I(p) + E[|s|^2 + 2 div s]`` for
    ``x ~ p``, with ``I(p) = E|grad log p|^2`` the Fisher information.

    Parameters
    ----------
    model : object
        Has ``score(t, x)``, and ``divergence(t, x)`` for the exact loss.
    t : float or array_like, shape (M,)
        Times, > 0.
    x : array_like, shape (M, d)
        Samples.
    method : {"auto", "exact", "hutchinson"}
        How the divergence is computed (see :func:`divergence`).
    n_probes : int, optional
        Hutchinson probes per sample.
    rng : None, int, Generator, ...
        For the probes.
    jvp : None, "model" or callable, optional
        For Hutchinson, see :func:`hutchinson_divergence`.

    Returns
    -------
    MonteCarloEstimate
        Terms ``|s(x_i)|^2 + 2 div s(x_i)``, shape (M,); the standard error
        includes the probes' noise (independent across samples).
    """
    model = _check_model(model)
    x = as_points(x, _model_dim(model))
    t = _check_times(t, x.shape[0])
    s = _score(model, t, x)
    div = divergence(model, t, x, method=method, n_probes=n_probes, rng=rng, jvp=jvp)
    return MonteCarloEstimate.from_terms(np.einsum("ij,ij->i", s, s) + 2.0 * div.value)


def fisher_divergence(model, reference, t, x):
    """Fisher divergence ``E|s(t, x) - s_ref(t, x)|^2`` over the given samples.

    Parameters
    ----------
    model : object
        Has ``score(t, x)``.
    reference : object or callable
        A score model (``score(t, x)``) or a callable ``reference(t, x) -> (M, d)``.
    t : float or array_like, shape (M,)
        Times, > 0.
    x : array_like, shape (M, d)
        Samples of the law the divergence is taken under.

    Returns
    -------
    MonteCarloEstimate
        Terms ``|s - s_ref|^2`` per sample, shape (M,).
    """
    model = _check_model(model)
    if callable(getattr(reference, "score", None)):
        ref_model = reference
    elif callable(reference):
        ref_model = _Callable(reference)
    else:
        raise TypeError("reference must be a score model or a callable reference(t, x)")
    x = as_points(x, _model_dim(model))
    t = _check_times(t, x.shape[0])
    diff = _score(model, t, x) - _score(ref_model, t, x, "reference")
    return MonteCarloEstimate.from_terms(np.einsum("ij,ij->i", diff, diff))


def _target(xi, sigma):
    """Minus the conditional score at ``z = alpha x_k + sigma xi``: ``-s(t, z | x_k) = xi / sigma``."""
    return xi / sigma


class _Callable:
    def __init__(self, func):
        self.score = func


def dsm_loss(model, data, schedule=None, t=None, *, n_noise, rng=None, weight=None,
             t_sampler=None, noise=None):
    """Denoising score-matching loss of eq. (9) over a dataset, with its standard error.

    At a fixed ``t`` each term is
    ``w(t) |s(t, alpha_t x_k + sigma_t xi) + xi / sigma_t|^2`` with
    ``xi ~ N(0, I_d)``, ``n_noise`` draws per data point; the mean estimates
    ``w(t) L_t(s)`` (module docstring), minimised by the empirical score. With
    ``t_sampler`` each term has its own ``tau ~ rho`` and weight ``w(tau)``:
    the seed's ``l_hat(theta)``, estimating ``E_{tau ~ rho}[w(tau) L_tau(s)]``.

    Parameters
    ----------
    model : object
        Has ``score(t, x)`` (``t`` a scalar or one time per row).
    data : array_like, shape (N, d)
        The ``x_k``; ``X_0`` is uniform on them (every point gets ``n_noise``
        draws: a stratified sample).
    schedule : object, optional
        Has ``alpha(t)``, ``sigma2(t)``; default ``model.schedule``.
    t : float, optional
        Fixed time, > 0. Exactly one of ``t`` and ``t_sampler``.
    n_noise : int
        Noise draws per data point (>= 1). With 1, the rows are independent, so
        when the data are themselves independent draws of a law, the standard
        error is that of the law's loss; with >= 2 it is conditional on the data.
    rng : None, int, Generator, ...
        Normalised like :func:`numdiff.sample`'s ``rng``; the times (if sampled)
        are drawn first, then the noise. Same seed, same random numbers: pass
        the same seed to compare models on common random numbers.
    weight : callable, optional
        ``w(t) -> array`` for an array of times; default 1.
    t_sampler : callable, optional
        ``t_sampler(rng, size) -> ndarray of shape size``, times ``tau ~ rho``
        in ``(0, t_max]`` (``size = (N, n_noise)``).
    noise : array_like, shape (N, n_noise, d), optional
        The standard normals ``xi``; default drawn from ``rng``.

    Returns
    -------
    MonteCarloEstimate
        Terms of shape ``(N, n_noise)``.
    """
    model = _check_model(model)
    schedule = getattr(model, "schedule", None) if schedule is None else schedule
    if schedule is None or not all(
            callable(getattr(schedule, a, None)) for a in ("alpha", "sigma2")):
        raise TypeError("schedule must have alpha(t) and sigma2(t) (or model a schedule)")
    data = as_points(data, _model_dim(model), "data")
    n_data, d = data.shape
    if n_data == 0:
        raise ValueError("data must hold at least one point")
    n_noise = _count(n_noise, "n_noise")
    if (t is None) == (t_sampler is None):
        raise ValueError("give exactly one of t (a fixed time) and t_sampler")
    if weight is not None and not callable(weight):
        raise TypeError(f"weight must be callable w(t); got {type(weight).__name__}")
    rng = as_generator(rng)
    if t is not None:
        t_arr = _check_times(t, 1)
        if t_arr.ndim != 0:
            raise ValueError(f"t must be a scalar; got shape {t_arr.shape}")
        times = np.full((n_data, n_noise), float(t_arr))
    else:
        if not callable(t_sampler):
            raise TypeError(f"t_sampler must be callable; got {type(t_sampler).__name__}")
        times = as_real_array(t_sampler(rng, (n_data, n_noise)), "t_sampler(rng, size)")
        if times.shape != (n_data, n_noise):
            raise ValueError(f"t_sampler(rng, size) must return shape {(n_data, n_noise)}; "
                             f"got {times.shape}")
        _check_times(times.ravel(), times.size, "t_sampler(rng, size)")
    if noise is None:
        xi = rng.standard_normal((n_data, n_noise, d))
    else:
        xi = as_real_array(noise, "noise")
        if xi.shape != (n_data, n_noise, d):
            raise ValueError(f"noise must have shape {(n_data, n_noise, d)}; got {xi.shape}")
        if not np.isfinite(xi).all():
            raise ValueError("noise contains NaN or infinite values")
    uniq, inverse = np.unique(times, return_inverse=True)
    alpha = np.asarray(schedule.alpha(uniq), dtype=np.float64).reshape(uniq.shape)[inverse]
    sigma2 = np.asarray(schedule.sigma2(uniq), dtype=np.float64).reshape(uniq.shape)[inverse]
    alpha, sigma2 = alpha.reshape(times.shape), sigma2.reshape(times.shape)
    if not (sigma2 > 0).all():
        raise ValueError("t: sigma_t^2 must be > 0 at every time")
    sigma = np.sqrt(sigma2)
    w = np.ones(times.shape)
    if weight is not None:
        w = np.broadcast_to(as_real_array(weight(times), "weight(t)"), times.shape)
    points = alpha[..., None] * data[:, None, :] + sigma[..., None] * xi
    target = _target(xi, sigma[..., None])
    flat_pts, flat_target, flat_t = points.reshape(-1, d), target.reshape(-1, d), times.ravel()
    terms = np.empty(flat_t.size)
    for lo in range(0, flat_t.size, _CHUNK):
        hi = min(flat_t.size, lo + _CHUNK)
        t_arg = float(t_arr) if t is not None else flat_t[lo:hi]
        r = _score(model, t_arg, flat_pts[lo:hi]) + flat_target[lo:hi]
        terms[lo:hi] = np.einsum("ij,ij->i", r, r)
    return MonteCarloEstimate.from_terms(w * terms.reshape(times.shape))
