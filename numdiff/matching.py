"""Score-matching objectives: denoising, implicit (Hyvarinen) and Fisher divergence.

For the forward process ``X_t = alpha_t X_0 + sigma_t Z`` (``Z ~ N(0, I_d)``) and
a dataset ``x_1..x_N``, the seed essay's objectives for a score model ``s(t, x)``
are (its section 1.2 and eq. (9)):

* **Denoising score matching** at a fixed time ``t``: the conditional score is
  ``s(t, z | x_k) = -(z - alpha_t x_k) / sigma_t^2``, which at
  ``z = alpha_t x_k + sigma_t xi`` equals ``-xi / sigma_t``, so

      L_t(s) = (1/N) sum_k E_xi |s(t, alpha_t x_k + sigma_t xi) + xi / sigma_t|^2 .

  This is the normalisation of eq. (9) and of the seed's ``l_hat(theta)``
  (whose displayed ``|xi / sigma - s|^2`` has a sign slip: the target is
  ``-xi / sigma``, as in the line above it). Its minimiser over all ``s`` is
  the empirical optimal score of eq. (10), :class:`numdiff.EmpiricalScore`,
  and ``L_t(s) = L_t(s_hat) + E_{p_t}|s - s_hat|^2`` with ``p_t`` the diffused
  empirical law; the optimum is ``L_t(s_hat) = d / sigma_t^2 - I(p_t)``, with
  ``I`` the Fisher information (Theorem 2; ``theory.score_matching``).
  The time-weighted form draws ``tau ~ rho`` (``t_sampler``) and averages
  ``w(tau) |s(tau, alpha_tau x_k + sigma_tau xi) + xi / sigma_tau|^2``, an
  unbiased estimate of ``E_{tau ~ rho}[w(tau) L_tau(s)]``; with ``rho`` uniform
  on ``[0, T]`` and ``w = T w~`` that is ``int_0^T w~(t) L_t(s) dt``, and with
  ``w = 1`` it is the seed's ``l_hat``.
* **Implicit (Hyvarinen) score matching**, eq. (8): ``E[|s|^2 + 2 div s]`` over
  given samples; by Theorem 1 it differs from the Fisher divergence to the
  samples' law by that law's Fisher information, a constant.
* **Fisher divergence** to a reference score: ``E|s - s_ref|^2``.

Every estimate is a :class:`MonteCarloEstimate` holding its per-sample terms, so
two models evaluated on the same random numbers (the same ``rng`` seed, or the
same ``noise``) can be compared by :meth:`MonteCarloEstimate.minus`, whose
standard error is that of the paired differences (common random numbers).

The divergence is the model's own ``divergence(t, x)`` when it has one (exact),
else a Hutchinson estimate ``E_v[v . J v]`` with Rademacher probes ``v`` and
central differences of the score for ``J v``, with its standard error
(:func:`hutchinson_divergence`).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from numdiff._checks import as_points, as_real_array
from numdiff.sampling import _generator

__all__ = [
    "DivergenceEstimate",
    "MonteCarloEstimate",
    "divergence",
    "dsm_loss",
    "fisher_divergence",
    "hutchinson_divergence",
    "implicit_loss",
]

_EPS = float(np.finfo(np.float64).eps)
# Central differences: truncation ~ (h / scale)^2, rounding ~ eps / (h / scale).
_FD_STEP = _EPS ** (1.0 / 3.0)
# Rows per score call when the model is evaluated on many noisy points.
_CHUNK = 1 << 16


@dataclass(frozen=True)
class MonteCarloEstimate:
    """A Monte Carlo mean with its standard error and its per-sample terms.

    Parameters
    ----------
    value : float
        The estimate (mean of ``terms``).
    stderr : float
        Its standard error: ``std(terms) / sqrt(n)`` for 1-D ``terms``; for
        ``terms`` of shape ``(N, K)`` with ``K >= 2`` (``K`` draws for each of
        ``N`` data points, a stratified sample) ``sqrt(sum_k var_k / K) / N``
        with ``var_k`` the within-row variances, the error *given the data*;
        with ``K = 1`` the rows are treated as independent. NaN if there are
        too few terms to tell.
    n : int
        Number of terms.
    terms : ndarray, shape (n,) or (N, K)
        The per-sample terms; same random numbers, same layout.
    """

    value: float
    stderr: float
    n: int
    terms: np.ndarray = field(repr=False, compare=False)

    @classmethod
    def from_terms(cls, terms):
        """The estimate of the mean of ``terms``.

        Parameters
        ----------
        terms : ndarray, shape (n,) or (N, K)

        Returns
        -------
        MonteCarloEstimate
        """
        terms = np.asarray(terms, dtype=np.float64)
        n = terms.size
        value = float(terms.mean()) if n else float("nan")
        if terms.ndim == 2 and terms.shape[1] >= 2:
            rows, k = terms.shape
            var = terms.var(axis=1, ddof=1)
            stderr = float(np.sqrt(var.sum() / k) / rows)
        else:
            flat = terms.ravel()
            stderr = float(flat.std(ddof=1) / np.sqrt(n)) if n >= 2 else float("nan")
        return cls(value, stderr, n, terms)

    def minus(self, other):
        """``self - other`` on common random numbers: the paired differences.

        Parameters
        ----------
        other : MonteCarloEstimate
            Computed on the same random numbers (same ``rng`` seed or ``noise``,
            same sizes), so that its terms pair with these.

        Returns
        -------
        MonteCarloEstimate
            Mean and standard error of ``self.terms - other.terms``.
        """
        if not isinstance(other, MonteCarloEstimate):
            raise TypeError(f"other must be a MonteCarloEstimate; got {type(other).__name__}")
        if other.terms.shape != self.terms.shape:
            raise ValueError(
                f"other must have terms of shape {self.terms.shape} (the same random numbers); "
                f"got {other.terms.shape}"
            )
        return MonteCarloEstimate.from_terms(self.terms - other.terms)


@dataclass(frozen=True)
class DivergenceEstimate:
    """Divergence of a score model at each query, with its standard error.

    Parameters
    ----------
    value : ndarray, shape (M,)
        ``div_x s(t, x)`` per query.
    stderr : ndarray, shape (M,)
        Standard error per query: 0 for the exact divergence; for Hutchinson,
        the probes' sample standard deviation over ``sqrt(n_probes)`` (NaN
        with one probe). The finite-difference error (relative ``~1e-10``) is
        not included.
    n_probes : int
        Probes per query; 0 for the exact divergence.
    """

    value: np.ndarray
    stderr: np.ndarray
    n_probes: int


# -- input checks -------------------------------------------------------------------------------


def _check_model(model, name="model"):
    if not callable(getattr(model, "score", None)):
        raise TypeError(f"{name} must be a score model with a score(t, x) method; "
                        f"got {type(model).__name__}")
    return model


def _model_dim(model, x_dim=None, name="model"):
    dim = getattr(model, "dim", None)
    if dim is None:
        return x_dim
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1:
        raise TypeError(f"{name}.dim must be a positive int; got {dim!r}")
    return int(dim)


def _check_times(t, m, name="t"):
    arr = as_real_array(t, name)
    if arr.ndim != 0 and arr.shape != (m,):
        raise ValueError(f"{name} must be a scalar or of shape (M,) = ({m},); got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if (arr <= 0).any():
        raise ValueError(f"{name} must be > 0; got min {arr.min()!r}")
    return arr


def _count(value, name, low=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int; got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value!r}")
    return int(value)


def _score(model, t, x, name="model"):
    """``model.score(t, x)`` checked for shape and finiteness."""
    out = as_real_array(model.score(t, x), f"{name}.score(t, x)")
    if out.shape != x.shape:
        raise ValueError(f"{name}.score(t, x) must return x's shape {x.shape}; got {out.shape}")
    if not np.isfinite(out).all():
        raise ValueError(f"{name}.score(t, x) returned NaN or infinite values")
    return out


def _sigma2(model, t, name="model"):
    schedule = getattr(model, "schedule", None)
    if schedule is None or not callable(getattr(schedule, "sigma2", None)):
        return None
    return np.asarray(schedule.sigma2(t), dtype=np.float64)


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
    rng = _generator(rng)
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


def _central_difference(s_plus, s_minus, probes, h):
    """``v . (s(x + h v) - s(x - h v)) / (2 h)`` per probe and query."""
    return np.einsum("...md,...md->...m", s_plus - s_minus, probes) / (2.0 * h)


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
    rng = _generator(rng)
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
