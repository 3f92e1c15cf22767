"""Measurements shared by the studies: histogram distances, nearest points, tests.

Everything here is written with numpy / scipy only, so the measurements do not
depend on the numdiff code they check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import ndtr
from scipy.stats import binomtest, norm
from scipy.stats import t as student_t

# Figures are drawn with validation.plotting; these two names stay importable from here for
# studies written before it existed (they get its fonts and sizes, not yet its legends).
from ..plotting import new_figure, save_figure  # noqa: F401


def ou_alpha_sigma2(t):
    """Closed-form OU ``alpha_t = e^{-t}``, ``sigma_t^2 = 1 - e^{-2t}`` (not numdiff's)."""
    return float(np.exp(-t)), float(-np.expm1(-2.0 * t))


def ou_steps(T, delta, h_lambda):
    """Steps of a grid uniform in ``lambda = log(alpha / sigma)`` with spacing <= ``h_lambda``.

    The exponential solvers' error is governed by the step in ``lambda``, and the
    range ``lambda_delta - lambda_T`` grows like ``T + log(1 / delta) / 2``; a fixed
    spacing keeps the discretisation error comparable across ``(T, delta)``.
    """
    lam = [np.log(a / np.sqrt(s2)) for a, s2 in map(ou_alpha_sigma2, (T, delta))]
    return int(np.ceil((lam[1] - lam[0]) / h_lambda))


def gaussian_data(n_data: int, dim: int, seed: int) -> np.ndarray:
    """Training set of ``n_data`` points from ``N(0, I_dim)``, shape (n_data, dim)."""
    return np.random.default_rng(seed).standard_normal((n_data, dim))


def mixture_cdf_1d(y, means, sigma):
    """CDF of ``(1/N) sum_k N(means_k, sigma^2)`` at ``y``.

    Parameters
    ----------
    y : ndarray, shape (n,)
    means : ndarray, shape (N,)
    sigma : float

    Returns
    -------
    ndarray, shape (n,)
        In ``[0, 1]``; under the mixture it is uniform (probability integral transform).
    """
    return ndtr((y[:, None] - means[None, :]) / sigma).mean(axis=1)


def rosenblatt_2d(x, means, sigma):
    """Rosenblatt transform of an isotropic 2-D Gaussian mixture to ``U[0, 1]^2``.

    ``u1 = F(x1)`` (marginal CDF of the first coordinate) and
    ``u2 = F(x2 | x1) = sum_k w_k(x1) Phi((x2 - m_k2) / sigma)`` with
    ``w_k(x1)`` the posterior weights given the first coordinate. The map is a
    bijection, so it preserves total variation, and under the mixture the image
    is exactly uniform: bin probabilities are ``1 / bins^2`` with no estimate.

    Parameters
    ----------
    x : ndarray, shape (n, 2)
    means : ndarray, shape (N, 2)
        Component means ``alpha x_k``.
    sigma : float

    Returns
    -------
    ndarray, shape (n, 2)
    """
    z1 = (x[:, :1] - means[None, :, 0]) / sigma
    u1 = ndtr(z1).mean(axis=1)
    logw = -0.5 * z1**2
    w = np.exp(logw - logw.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    u2 = (w * ndtr((x[:, 1:] - means[None, :, 1]) / sigma)).sum(axis=1)
    return np.column_stack([u1, u2])


def uniform_hist_tv(u, bins: int) -> float:
    """Total variation between the histogram of ``u`` and the uniform law on its cells.

    Parameters
    ----------
    u : ndarray, shape (n,) or (n, k)
        Points of ``[0, 1]^k``.
    bins : int
        Cells per axis (``bins^k`` cells in all).

    Returns
    -------
    float
        ``(1/2) sum_cells |count / n - bins^-k|``: a lower bound on the total
        variation of the laws of ``u`` (coarse-graining can only reduce it), plus
        a positive sampling bias of about ``sqrt(bins^k / (2 pi n))``.
    """
    u = np.atleast_2d(np.asarray(u, dtype=float).T).T
    n, k = u.shape
    idx = np.clip((u * bins).astype(np.int64), 0, bins - 1)
    flat = (idx * bins ** np.arange(k)).sum(axis=1)
    counts = np.bincount(flat, minlength=bins**k)
    return 0.5 * float(np.abs(counts / n - 1.0 / bins**k).sum())


def categorical_tv(a, b, n_categories: int) -> float:
    """Total variation between the empirical laws of two integer label arrays."""
    ha = np.bincount(a, minlength=n_categories) / len(a)
    hb = np.bincount(b, minlength=n_categories) / len(b)
    return 0.5 * float(np.abs(ha - hb).sum())


def nearest_points(x, data):
    """Nearest and second-nearest training points by a k-d tree.

    Returns
    -------
    index : ndarray of int, shape (n,)
        Index of the nearest training point.
    distance : ndarray, shape (n,)
        Distance to it.
    ratio : ndarray, shape (n,)
        Nearest over second-nearest distance (the memorization statistic).
    """
    dist, idx = cKDTree(data).query(x, k=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(dist[:, 1] > 0, dist[:, 0] / dist[:, 1], 0.0)
    return idx[:, 0], dist[:, 0], ratio


#: Width of every band set from a measured standard error, in standard errors. A
#: two-sided normal deviation beyond 4.5 s.e. has probability 6.8e-6, so the ~100
#: such comparisons of a run fail falsely with probability below 1e-3.
SE_BAND = 4.5


def wilson_ci(successes, n, level=0.95):
    """Wilson score interval of a proportion (``scipy.stats.binomtest``).

    Unlike a percentile bootstrap it does not collapse to a point at 0 or n
    successes (``[1, 1]`` for a fraction of exactly 1).

    Parameters
    ----------
    successes : int
        Number of successes, ``0 <= successes <= n``.
    n : int
        Number of trials, ``>= 1``.
    level : float
        Confidence level.

    Returns
    -------
    (float, float)
    """
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class TwoProportion:
    """A two-proportion comparison (see :func:`two_proportion_test`).

    Attributes
    ----------
    p1, p2 : float
        The raw fractions ``k1 / n1`` and ``k2 / n2``.
    diff : float
        ``p1 - p2``.
    se : float
        Agresti-Caffo standard error of the difference (never 0).
    z : float
        ``diff / se``.
    pvalue : float
        Two-sided normal p-value of ``z``.
    """

    p1: float
    p2: float
    diff: float
    se: float
    z: float
    pvalue: float


def two_proportion_test(k1, n1, k2, n2) -> TwoProportion:
    """Do ``k1`` successes in ``n1`` and ``k2`` in ``n2`` come from one proportion?

    The difference of the raw fractions over the Agresti-Caffo standard error:
    each fraction gains one success and one failure before its variance is
    taken (``p~ = (k + 1) / (n + 2)``), so the standard error stays positive when
    both fractions are exactly 0 or 1 (where the plain Wald one is 0 and the
    z-score undefined), while equal fractions still give ``z = 0`` whatever the
    sample sizes. The one shared implementation for the studies.

    Parameters
    ----------
    k1, n1, k2, n2 : int
        Successes and trials of the two samples (``0 <= k <= n``, ``n >= 1``).

    Returns
    -------
    TwoProportion
    """
    k1, n1, k2, n2 = (int(v) for v in (k1, n1, k2, n2))
    if min(n1, n2) < 1 or not (0 <= k1 <= n1 and 0 <= k2 <= n2):
        raise ValueError(f"need 0 <= k <= n and n >= 1; got k1={k1}, n1={n1}, k2={k2}, n2={n2}")
    q1, q2 = (k1 + 1) / (n1 + 2), (k2 + 1) / (n2 + 2)
    se = float(np.sqrt(q1 * (1 - q1) / (n1 + 2) + q2 * (1 - q2) / (n2 + 2)))
    diff = k1 / n1 - k2 / n2
    z = diff / se
    return TwoProportion(k1 / n1, k2 / n2, diff, se, float(z), float(2.0 * ndtr(-abs(z))))


def log_standard_normal(x):
    """``log N(x; 0, I)`` row-wise: x shape (n, d) -> (n,)."""
    return -0.5 * (x * x).sum(axis=1) - 0.5 * x.shape[1] * np.log(2 * np.pi)


def t_interval(values, level=0.95):
    """Mean and Student-t interval of ``values`` (``nan`` with fewer than two)."""
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    if values.size < 2:
        mean = float(values.mean()) if values.size else np.nan
        return mean, np.nan, np.nan
    half = student_t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1)
    half /= np.sqrt(values.size)
    return float(values.mean()), float(values.mean() - half), float(values.mean() + half)

def stratified_kendall(strata, level=0.95):
    """Kendall's tau of ``x`` with ``y`` pooled over strata, and a normal interval.

    Pairs are only formed within a stratum (one seed: its own data and start),
    so differences between strata do not enter. ``S = sum over strata and pairs
    of sign(dx) sign(dy)``; ``tau = S / (number of pairs)``. The interval is
    ``tau +- z sd(S) / pairs`` with the variance of ``S`` under independence,
    corrected for ties in ``y`` (the Mann-Kendall variance), summed over strata,
    and clipped to ``[-1, 1]``; it never collapses to a point when few strata
    happen to agree.

    Parameters
    ----------
    strata : list of (array_like, array_like)
        ``(x, y)`` of each stratum.
    level : float

    Returns
    -------
    (float, float, float)
        ``tau`` and the interval; ``nan`` when no stratum has two points.
    """
    total, pairs, variance = 0.0, 0, 0.0
    for x, y in strata:
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        n = x.size
        if n < 2:
            continue
        upper = np.triu_indices(n, 1)
        total += float(np.sum(np.sign(np.subtract.outer(x, x)[upper])
                              * np.sign(np.subtract.outer(y, y)[upper])))
        pairs += n * (n - 1) // 2
        ties = np.unique(y, return_counts=True)[1]
        variance += (n * (n - 1) * (2 * n + 5) - np.sum(ties * (ties - 1) * (2 * ties + 5))) / 18
    if pairs == 0:
        return np.nan, np.nan, np.nan
    tau = total / pairs
    half = norm.ppf(0.5 + level / 2) * np.sqrt(variance) / pairs
    return tau, max(tau - half, -1.0), min(tau + half, 1.0)
