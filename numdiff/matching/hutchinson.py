"""The divergence of a score model: exact when it offers one, else Hutchinson's estimate
from central differences of the score."""

from __future__ import annotations

import numpy as np

from numdiff._checks import as_points, as_real_array
from numdiff._random import as_generator
from numdiff.matching._inputs import (
    _CHUNK,
    _FD_STEP,
    _check_model,
    _check_times,
    _count,
    _model_dim,
    _score,
    _sigma2,
)
from numdiff.matching.estimates import DivergenceEstimate

# -- divergence ---------------------------------------------------------------------------------


def hutchinson_divergence(model, t, x, *, n_probes=16, rng=None, step=None, jvp=None):
    """Hutchinson estimate of ``div_x s(t, x)`` with Rademacher probes.

    For each query and probe ``v`` (independent signs) the estimate is ``v . J v``,
    with ``J v`` from ``jvp`` when given, else from central differences
    ``(s(x + h v) - s(x - h v)) / (2 h)``; its mean over probes is unbiased for
    ``tr J`` (up to the central difference's ``O(h^2)`` error). The probe
    variance is ``2 sum_{i != j} J_ij^2`` (0 in ``d = 1``).

    Parameters
    ----------
    model : object
        Has ``score(t, x) -> (M, d)``; a ``schedule`` with ``sigma2(t)`` sets
        the default step.
    t : float or array_like, shape (M,)
        Times, > 0.
    x : array_like, shape (M, d)
        Queries.
    n_probes : int, optional
        Probes per query (>= 1; the standard error needs >= 2).
    rng : None, int, Generator, ...
        Normalised like :func:`numdiff.sample`'s ``rng``.
    step : float or array_like, shape (M,), optional
        Finite-difference step ``h``; default ``eps^(1/3) sigma_t`` (the
        score's length scale) with a schedule, else ``eps^(1/3) max(1, |x|_inf)``.
    jvp : None, "model" or callable, optional
        Score Jacobian-vector products instead of differences: a callable
        ``jvp(t, x, v) -> (M, d)``, or ``"model"`` for
        ``model.jvp(t, x, v, of="score")`` (:meth:`numdiff.EmpiricalScore.jvp`).

    Returns
    -------
    DivergenceEstimate
    """
    model = _check_model(model)
    x = as_points(x, _model_dim(model))
    m, d = x.shape
    t = _check_times(t, m)
    n_probes = _count(n_probes, "n_probes")
    rng = as_generator(rng)
    if step is None:
        sigma2 = _sigma2(model, t)
        if sigma2 is not None:
            h = _FD_STEP * np.sqrt(np.broadcast_to(sigma2, (m,)))
        else:
            h = _FD_STEP * np.maximum(1.0, np.abs(x).max(axis=1, initial=0.0))
    else:
        h = np.broadcast_to(as_real_array(step, "step"), (m,)).astype(np.float64)
        if not (np.isfinite(h).all() and (h > 0).all()):
            raise ValueError("step must be finite and > 0")
    probes = rng.integers(0, 2, size=(n_probes, m, d)).astype(np.float64) * 2.0 - 1.0
    est = np.empty((n_probes, m))
    if jvp is not None:
        if isinstance(jvp, str) and jvp == "model" and callable(getattr(model, "jvp", None)):
            def jvp(t, x, v, _f=model.jvp):
                return _f(t, x, v, of="score")
        elif not callable(jvp):
            raise TypeError("jvp must be None, 'model' (for a model with jvp) or a callable "
                            f"jvp(t, x, v); got {jvp!r}")
        for k in range(n_probes):
            jv = as_real_array(jvp(t, x, probes[k]), "jvp(t, x, v)")
            if jv.shape != x.shape:
                raise ValueError(f"jvp(t, x, v) must return shape {x.shape}; got {jv.shape}")
            est[k] = np.einsum("md,md->m", jv, probes[k])
        return _divergence_result(est, n_probes)
    hv = probes * h[:, None]
    t_rows = np.broadcast_to(t, (m,))
    per_call = max(1, _CHUNK // max(1, 2 * m))
    for lo in range(0, n_probes, per_call):
        hi = min(n_probes, lo + per_call)
        k = hi - lo
        pts = np.concatenate([(x + hv[lo:hi]).reshape(-1, d), (x - hv[lo:hi]).reshape(-1, d)])
        times = np.tile(t_rows, 2 * k) if t.ndim else t
        s = _score(model, times, pts).reshape(2, k, m, d)
        est[lo:hi] = _central_difference(s[0], s[1], probes[lo:hi], h)
    return _divergence_result(est, n_probes)


def _divergence_result(est, n_probes):
    if n_probes >= 2:
        stderr = est.std(axis=0, ddof=1) / np.sqrt(n_probes)
    else:
        stderr = np.full(est.shape[1], np.nan)
    return DivergenceEstimate(est.mean(axis=0), stderr, n_probes)


def divergence(model, t, x, *, method="auto", n_probes=16, rng=None, jvp=None):
    """``div_x s(t, x)``: exact when the model offers it, else Hutchinson.

    Parameters
    ----------
    model : object
        Has ``score(t, x)``; ``divergence(t, x) -> (M,)`` is used when present.
    t : float or array_like, shape (M,)
    x : array_like, shape (M, d)
    method : {"auto", "exact", "hutchinson"}
        ``"auto"``: ``model.divergence`` if it exists, else Hutchinson.
    n_probes : int, optional
        Hutchinson probes per query.
    rng : None, int, Generator, ...
        For the probes.
    jvp : None, "model" or callable, optional
        For Hutchinson, see :func:`hutchinson_divergence`.

    Returns
    -------
    DivergenceEstimate
    """
    model = _check_model(model)
    if method not in ("auto", "exact", "hutchinson"):
        raise ValueError(f"method must be 'auto', 'exact' or 'hutchinson'; got {method!r}")
    has_exact = callable(getattr(model, "divergence", None))
    if method == "exact" and not has_exact:
        raise TypeError("method='exact' needs a model with a divergence(t, x) method")
    if method == "hutchinson" or not has_exact:
        return hutchinson_divergence(model, t, x, n_probes=n_probes, rng=rng, jvp=jvp)
    x = as_points(x, _model_dim(model))
    t = _check_times(t, x.shape[0])
    value = as_real_array(model.divergence(t, x), "model.divergence(t, x)")
    if value.shape != (x.shape[0],):
        raise ValueError(
            f"model.divergence(t, x) must return shape ({x.shape[0]},); got {value.shape}")
    return DivergenceEstimate(value, np.zeros(x.shape[0]), 0)


# -- objectives ---------------------------------------------------------------------------------

def _central_difference(s_plus, s_minus, probes, h):
    """``v . (s(x + h v) - s(x - h v)) / (2 h)`` per probe and query."""
    return np.einsum("...md,...md->...m", s_plus - s_minus, probes) / (2.0 * h)
