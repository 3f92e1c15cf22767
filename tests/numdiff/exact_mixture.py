"""Exact reference for the diffused empirical law, and the error bounds the tests use.

For data ``x_1..x_N`` (float64, shape ``(N, d)``), ``alpha``, ``sigma2`` and a query
``x`` (all float64, read as the exact binary rationals they are) the mixture
``p = (1/N) sum_k N(alpha x_k, sigma2 I)`` has logits

    l_k = -|u_k|^2 / (2 sigma2),    u_k = x - alpha x_k.

:func:`reference` computes them **exactly** in integer arithmetic: every input is
``integer * 2^-shift``, so ``u_k`` is an integer vector times ``2^-s`` and
``l_k = -S_k 2^(sq - 2s - 1) / Q`` with integers ``S_k = |2^s u_k|^2`` and ``sigma2 =
Q 2^-sq``. The gaps ``l_k - l_r`` to the largest logit ``l_r`` are the exact rationals
``-(S_k - S_r) 2^(sq - 2s - 1) / Q``; they are rounded to ``PREC = 256`` bits
(relative ``2^-256``) and exponentiated in mpmath at that precision. Logits of
``1e600`` (``|x| = 1e150``, ``sigma2 = 1e-300``) are no problem: only the gaps are
exponentiated, and a gap below ``-2^20`` gives a weight below ``e^(-2^20)``, far
below ``2^-PREC`` of the sum, which is dropped (set to 0).

The weights are ``w_k`` rounded to float64. From them (as integers ``W_k = w_k
2^256``, normalised by their own exact sum; a weight below ``2^-257`` drops out of
these sums, a relative ``2^-250`` at most) the denoiser ``D = sum w_k x_k`` and the score
``s = (alpha D - x) / sigma2 = -sum_k w_k u_k / sigma2`` are exact rationals up to the
``2^-256`` relative rounding of the weights, and are rounded once to float64 (a
score beyond the float64 range becomes ``+-inf``). ``log p = l_r + log sum_k
exp(l_k - l_r) - log N - (d/2) log(2 pi sigma2)`` is evaluated in 256-bit mpmath
(``-inf`` below ``-1.8e308``). The reference's own error is thus below ``2^-200``
relative to every scale the bounds below use: it counts as exact.

:func:`condition_bounds` gives the error that float64 may make, derived from the
condition number (derivation: tests/numdiff/test_score_fuzz.py, module docstring);
:func:`achieved_bounds` gives the tighter accuracy the kernels are documented to
reach (tests/numdiff/test_score_oracle.py). Both evaluate their formulas in mpmath
at 64 bits, so that ``e^Lambda``, ``1/sigma2`` and ``1e600`` do not overflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath
import numpy as np

PREC = 256
GAP_CUTOFF = 2**20
EPS = float(np.finfo(np.float64).eps)  # 2^-52
BIGGEST = float(np.finfo(np.float64).max)
TINY = float(np.finfo(np.float64).tiny)  # smallest normal, 2^-1022
_BOUND_PREC = 64


def _exact_ints(values):
    """Floats -> (ints, shift) with ``value_i = ints_i * 2^-shift`` exactly."""
    ratios = [float(v).as_integer_ratio() for v in values]
    shift = max(den.bit_length() - 1 for _, den in ratios)
    return [num << (shift - den.bit_length() + 1) for num, den in ratios], shift


def _norm(v, axis=None):
    """2-norm without overflow (coordinates up to 1e300 square beyond the float range)."""
    v = np.asarray(v, dtype=np.float64)
    top = np.abs(v).max(axis=axis, keepdims=True, initial=0.0)
    safe = np.where(top > 0, top, 1.0)
    out = safe * np.sqrt(((v / safe) ** 2).sum(axis=axis, keepdims=True))
    out = np.where(top > 0, out, 0.0)
    return out.reshape(()) if axis is None else np.squeeze(out, axis=axis)


def _to_float(num, den):
    """``num / den`` (ints, den > 0) correctly rounded; +-inf beyond the float range."""
    try:
        return num / den
    except OverflowError:
        return math.inf if num > 0 else -math.inf


@dataclass
class Exact:
    """The mixture at one query, exactly (see the module docstring).

    All arrays are float64, each entry the correctly rounded exact value.
    """

    data: np.ndarray  # (N, d) the inputs, as used
    alpha: float
    sigma2: float
    x: np.ndarray  # (d,)
    top: int  # r: index of the largest logit (lowest index on ties)
    gap: np.ndarray  # (N,) l_k - l_r <= 0 (-inf below -1.8e308)
    gap_mp: list  # (N,) the same, 256-bit mpf
    logit_top: float  # l_r = -|u_r|^2 / (2 sigma2) (-inf below -1.8e308)
    logit_top_mp: object
    log_z: float  # log sum_k exp(l_k - l_r), in [0, log N]
    weights: np.ndarray  # (N,)
    denoise: np.ndarray  # (d,)
    score: np.ndarray  # (d,), +-inf where beyond the float range
    log_density: float  # -inf below -1.8e308
    log_density_mp: object
    u: np.ndarray  # (N, d) u_k = x - alpha x_k
    dist: np.ndarray  # (N,) |x - x_k| (unscaled: the metric of ``nearest``)
    sq_dist_exact: list  # (N,) exact |x - x_k|^2 * 2^(2 s') as ints (for ordering)


def reference(data, alpha, sigma2, x):
    """Exact weights, denoiser, score and log-density of the mixture at ``x``.

    Parameters
    ----------
    data : ndarray, shape (N, d)
    alpha, sigma2 : float
        ``sigma2 > 0``.
    x : ndarray, shape (d,)

    Returns
    -------
    Exact
    """
    data = np.asarray(data, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    alpha, sigma2 = float(alpha), float(sigma2)
    n, d = data.shape
    xi, sx = _exact_ints(x)
    (ai,), sa = _exact_ints([alpha])
    yi, sy = _exact_ints(data.ravel())
    (qi,), sq = _exact_ints([sigma2])
    rows = [yi[k * d : (k + 1) * d] for k in range(n)]
    # u_k = x - alpha x_k = U_k 2^-s, exactly.
    s = max(sx, sa + sy)
    xs = [v << (s - sx) for v in xi]
    prod_shift = s - sa - sy
    u_int = [[xs[j] - ((ai * row[j]) << prod_shift) for j in range(d)] for row in rows]
    sq_u = [sum(v * v for v in uk) for uk in u_int]
    top = min(range(n), key=lambda k: (sq_u[k], k))
    # l_k = -S_k * 2^expo / Q.
    expo = sq - 2 * s - 1
    with mpmath.workprec(PREC):
        gap_mp = [-mpmath.ldexp(mpmath.mpf(sq_u[k] - sq_u[top]), expo) / qi for k in range(n)]
        terms = [mpmath.exp(g) if g > -GAP_CUTOFF else mpmath.mpf(0) for g in gap_mp]
        z = mpmath.fsum(terms)
        w_mp = [t / z for t in terms]
        logit_top_mp = -mpmath.ldexp(mpmath.mpf(sq_u[top]), expo) / qi
        log_z = mpmath.log(z)
        s2 = mpmath.mpf(sigma2)
        log_density_mp = (
            logit_top_mp + log_z - mpmath.log(n) - mpmath.mpf(d) / 2 * mpmath.log(2 * mpmath.pi * s2)
        )
        w_int = [int(mpmath.nint(mpmath.ldexp(w, PREC))) for w in w_mp]
    w_sum = sum(w_int)
    weights = np.array([float(w) for w in w_mp])
    # D_j = sum_k W_k Y_kj / (sum W * 2^sy); score_j = -sum_k W_k U_kj 2^sq / (sum W 2^s Q).
    den_d = w_sum << sy
    denoise = np.array(
        [_to_float(sum(w_int[k] * rows[k][j] for k in range(n) if w_int[k]), den_d) for j in range(d)]
    )
    score = np.empty(d)
    for j in range(d):
        num = -sum(w_int[k] * u_int[k][j] for k in range(n) if w_int[k])
        if sq >= s:
            score[j] = _to_float(num << (sq - s), w_sum * qi)
        else:
            score[j] = _to_float(num, (w_sum * qi) << (s - sq))
    u = np.array([[_to_float(v, 1 << s) for v in uk] for uk in u_int]).reshape(n, d)
    # |x - x_k|^2 for nearest(): common shift of x and the data.
    s_d = max(sx, sy)
    xd = [v << (s_d - sx) for v in xi]
    sq_dist = [sum((xd[j] - (row[j] << (s_d - sy))) ** 2 for j in range(d)) for row in rows]
    with mpmath.workprec(PREC):
        dist = np.array([float(mpmath.ldexp(mpmath.sqrt(mpmath.mpf(v)), -s_d)) for v in sq_dist])
    return Exact(
        data=data, alpha=alpha, sigma2=sigma2, x=x, top=top,
        gap=np.array([float(g) for g in gap_mp]), gap_mp=gap_mp,
        logit_top=float(logit_top_mp), logit_top_mp=logit_top_mp, log_z=float(log_z),
        weights=weights, denoise=denoise, score=score,
        log_density=float(log_density_mp), log_density_mp=log_density_mp,
        u=u, dist=dist, sq_dist_exact=sq_dist,
    )


# -- bounds ---------------------------------------------------------------------


@dataclass
class Bounds:
    """Allowed absolute errors, one per output entry (``inf``: no constraint).

    ``score`` and ``log_density`` are also given as mpf (``score_mp``,
    ``log_density_mp``) because they may exceed the float range.
    """

    denoise: np.ndarray  # (d,)
    score: np.ndarray  # (d,)
    log_density: float
    weights: np.ndarray  # (N,)
    dist: np.ndarray  # (N,)
    row_sum: float  # |sum_k w_k - 1|
    logit_gap: np.ndarray  # (N,) Lambda_k, the allowed error of l_k - l_r


def _softmax_spread(ref, lam):
    """``|w'_k - w_k| <= w_k f_k`` for every perturbation ``|d(l_k - l_r)| <= lam_k``.

    With ``Z_lo = sum_j w_j e^-lam_j`` and ``Z_hi = sum_j w_j e^lam_j``, the perturbed
    weight ``w'_k = w_k e^(d_k) / sum_j w_j e^(d_j)`` lies in ``[w_k e^-lam_k / Z_hi,
    w_k e^lam_k / Z_lo]`` (not only to first order). Returns ``w_k f_k`` (mpf).
    """
    with mpmath.workprec(_BOUND_PREC):
        lam = [mpmath.mpf(v) for v in lam]
        log_terms_hi = [g + l for g, l in zip(ref.gap_mp, lam)]
        log_terms_lo = [g - l for g, l in zip(ref.gap_mp, lam)]
        z = mpmath.fsum(mpmath.exp(g) for g in ref.gap_mp)
        z_hi = mpmath.fsum(mpmath.exp(v) for v in log_terms_hi)
        z_lo = mpmath.fsum(mpmath.exp(v) for v in log_terms_lo)
        out = []
        for k in range(len(lam)):
            w = mpmath.exp(ref.gap_mp[k]) / z
            up = mpmath.exp(log_terms_hi[k]) / z_lo - w
            down = w - mpmath.exp(log_terms_lo[k]) / z_hi
            out.append(max(up, down, mpmath.mpf(0)))
        return out


def _denoise_bound(ref, spread, forming):
    """``|dD_j| <= min(sum_k spread_k |x_kj - D_j|, max_k |x_kj - D_j|) + forming_j``.

    ``D' - D = sum_k (w'_k - w_k)(x_k - D)`` because the weights' changes sum to 0;
    the second term holds for any convex combination of the data.
    """
    dev = np.abs(ref.data - ref.denoise)  # (N, d)
    with mpmath.workprec(_BOUND_PREC):
        sens = [mpmath.fsum(spread[k] * mpmath.mpf(dev[k, j]) for k in range(dev.shape[0]))
                for j in range(dev.shape[1])]
        hull = dev.max(axis=0)
        return np.array([min(float(sens[j]), hull[j]) for j in range(dev.shape[1])]) + forming


def condition_bounds(ref, c=64):
    """Errors allowed by the condition number under perturbations of size ``eta = c eps``.

    Model (test_score_fuzz.py, module docstring): ``|dx| <= eta |x|``, ``|dx_k| <= eta
    X`` with ``X = max_k |x_k|`` (2-norms), ``|d alpha| <= eta alpha``, ``|d sigma2| <=
    eta sigma2``; plus ``c eps`` times the magnitude of every float64 result formed.

    Parameters
    ----------
    ref : Exact
    c : float
        The constant ``C`` (64).

    Returns
    -------
    Bounds
    """
    eta = c * EPS
    data, x, a = ref.data, ref.x, ref.alpha
    n, d = data.shape
    r = ref.top
    norm_x = float(_norm(x))
    big_x = float(_norm(data, axis=1).max())
    u_norm = _norm(ref.u, axis=1)
    dx_norm = _norm(data - data[r], axis=1)
    with mpmath.workprec(_BOUND_PREC):
        s2 = mpmath.mpf(ref.sigma2)
        du = eta * (norm_x + 2 * a * big_x)  # |d u_k| for every k
        lam = []
        lam_abs = []
        for k in range(n):
            # d(|u_k|^2 - |u_r|^2) = 2 (u_k.du_k - u_r.du_r) + (du_k - du_r).(du_k + du_r),
            # with |du_k - du_r| <= eta alpha (|dx_k| + 2 X) and |du_k + du_r| <= 2 du.
            first = (a * eta * (mpmath.mpf(dx_norm[k]) * norm_x
                     + 2 * big_x * (mpmath.mpf(u_norm[k]) + u_norm[r]))) / s2
            second = eta * a * (mpmath.mpf(dx_norm[k]) + 2 * big_x) * du / s2
            gap = abs(ref.gap_mp[k])
            lam.append(0 if k == r else first + second + eta * gap)
            logit_k = abs(ref.logit_top_mp + ref.gap_mp[k])
            lam_abs.append((mpmath.mpf(u_norm[k]) * du + mpmath.mpf(du) ** 2 / 2) / s2 + eta * logit_k)
        spread = _softmax_spread(ref, lam)
        # log p: |log sum_k w_k e^(dl_k)| <= log sum_k w_k e^(lam_abs_k); sigma2 in the
        # normaliser adds eta d/2; forming adds c eps per term magnitude.
        z = mpmath.fsum(mpmath.exp(g) for g in ref.gap_mp)
        lse = mpmath.log(mpmath.fsum(mpmath.exp(g + l) for g, l in zip(ref.gap_mp, lam_abs)) / z)
        terms = (abs(ref.logit_top_mp) + abs(mpmath.log(z)) + mpmath.log(n)
                 + mpmath.mpf(d) / 2 * abs(mpmath.log(2 * mpmath.pi * s2)) + 1)
        log_bound = lse + eta * d / 2 + c * EPS * terms
        wbound = np.array([min(1.0, float(spread[k]) + c * EPS * ref.weights[k] + TINY)
                           for k in range(n)])
    scale = np.abs(data).max(axis=0)
    den_bound = _denoise_bound(ref, spread, c * EPS * (np.abs(ref.denoise) + scale))
    # s = (alpha D - x) / sigma2: alpha dD / sigma2, the perturbations of x (eta |x|),
    # alpha (eta alpha |D|) and sigma2 (eta |s|), and the final division (c eps |s|).
    with mpmath.workprec(_BOUND_PREC):
        score_bound = []
        for j in range(d):
            s_j = abs(mpmath.mpf(ref.score[j])) if np.isfinite(ref.score[j]) else mpmath.inf
            b = (a * den_bound[j] + eta * (norm_x + a * abs(ref.denoise[j]))) / s2 + 2 * eta * s_j
            score_bound.append(float(b) if b < BIGGEST else math.inf)
    dist_bound = eta * (norm_x + 2 * big_x) + c * EPS * ref.dist
    return Bounds(
        denoise=den_bound, score=np.array(score_bound),
        log_density=float(log_bound) if log_bound < BIGGEST else math.inf,
        weights=wbound, dist=dist_bound, row_sum=c * EPS * n,
        logit_gap=np.array([float(v) for v in lam]),
    )


def achieved_bounds(ref, c=64):
    """The accuracy the kernels reach: ``c`` (64) rounding units of each result's scale.

    Logit gaps as direct differences relative to the nearest point ``x_r`` give
    ``Lambda_k = c eps alpha |dx_k| (|u_r| + alpha |dx_k|) / sigma2`` (``dx_k = x_k -
    x_r``, the rounding of ``e_k = alpha dx_k . (2 u_r - alpha dx_k) / (2 sigma2)``),
    propagated through the softmax exactly as in :func:`condition_bounds`; then

    * ``|dD_j| <= c eps max|x_k| + sum_k |w'_k - w_k| |x_kj - D_j|``;
    * ``|d log p| <= c eps (1 + |l_r| + log N + (d/2)|log(2 pi sigma2)|) + log sum_k w_k
      e^Lambda_k``;
    * ``|ds_j| <= (c eps (|u_rj| + alpha sum_k w_k |dx_kj|) + alpha sum_k |w'_k - w_k|
      |x_kj - D_j|) / sigma2`` -- the score ``-(u_r - alpha sum_k w_k dx_k) / sigma2``
      formed from the compensated residual, without the ``eps |x| / sigma2`` of ``(alpha
      D - x) / sigma2``.

    Returns
    -------
    Bounds
        ``weights``, ``dist`` and ``row_sum`` as in :func:`condition_bounds`.
    """
    data, a = ref.data, ref.alpha
    n, d = data.shape
    r = ref.top
    dx = data - data[r]
    dx_norm = _norm(dx, axis=1)
    u_r = float(_norm(ref.u[r]))
    with mpmath.workprec(_BOUND_PREC):
        s2 = mpmath.mpf(ref.sigma2)
        lam = [c * EPS * a * mpmath.mpf(dx_norm[k]) * (u_r + a * dx_norm[k]) / s2 for k in range(n)]
        spread = _softmax_spread(ref, lam)
        z = mpmath.fsum(mpmath.exp(g) for g in ref.gap_mp)
        lse = mpmath.log(mpmath.fsum(mpmath.exp(g + l) for g, l in zip(ref.gap_mp, lam)) / z)
        terms = (1 + abs(ref.logit_top_mp) + mpmath.log(n)
                 + mpmath.mpf(d) / 2 * abs(mpmath.log(2 * mpmath.pi * s2)))
        log_bound = float(lse + c * EPS * terms)
    sens = _denoise_bound(ref, spread, np.zeros(d))
    den_bound = sens + c * EPS * np.abs(data).max()
    w = ref.weights
    with mpmath.workprec(_BOUND_PREC):
        score_bound = []
        for j in range(d):
            near = abs(ref.u[r, j]) + a * float(np.dot(w, np.abs(dx[:, j])))
            b = (c * EPS * near + a * sens[j]) / s2
            score_bound.append(float(b) if b < BIGGEST else math.inf)
    base = condition_bounds(ref, c)
    return Bounds(
        denoise=den_bound, score=np.array(score_bound), log_density=log_bound,
        weights=base.weights, dist=base.dist, row_sum=base.row_sum,
        logit_gap=np.array([float(v) for v in lam]),
    )


def error_ratio(value, exact, bound):
    """``max |value - exact| / bound`` over entries, treating equal infinities as exact
    and an error against a zero bound as ``inf``; NaN anywhere gives ``inf``."""
    value = np.atleast_1d(np.asarray(value, dtype=np.float64))
    exact = np.atleast_1d(np.asarray(exact, dtype=np.float64))
    bound = np.broadcast_to(np.atleast_1d(np.asarray(bound, dtype=np.float64)), exact.shape)
    if np.isnan(value).any():
        return math.inf
    same = value == exact  # also equal infinities
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        err = np.where(same, 0.0, np.abs(value - exact))
        ratio = np.where(err == 0, 0.0, err / bound)
    ratio = np.where(np.isnan(ratio), math.inf, ratio)
    return float(ratio.max(initial=0.0))
