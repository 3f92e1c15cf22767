"""The network as a function: knots, ``f''`` as point masses, the weight ``g``, the bounds.

Second derivative
-----------------
Neuron ``j`` with ``w1_j != 0`` bends ``f`` at its knot ``t_j = -b1_j / w1_j``:
``d^2/dx^2 relu(w1 x + b1) = |w1| delta(x - t)`` for either sign of ``w1``, so

    f'' = sum_j w2_j |w1_j| delta(x - t_j),

a signed point mass ``w2_j |w1_j|`` at each knot (``|mass| = |w2_j w1_j|``);
neurons with ``w1_j = 0`` are constants and have no knot. The slope jumps by the
mass at the knot.

Merging rule: knots are sorted, and neighbours closer than ``atol + rtol *
max(|t_a|, |t_b|)`` are chained into one cluster (single linkage). A cluster
is one point mass: its signed masses are summed (``f''`` is a measure, so two
opposite kinks at one place cancel), and it sits at the ``|mass|``-weighted
mean of its knots (the plain mean when all its masses are 0). Clusters of total
mass exactly 0 are dropped.

Weight function
---------------
With ``X`` uniform on the training inputs ``{x_i}`` (the empirical law):

    g+(t) = P(X > t)^2 E[X - t | X > t] sqrt(1 + E[X | X > t]^2),
    g-(t) = P(X < t)^2 E[t - X | X < t] sqrt(1 + E[X | X < t]^2),
    g(t)  = min(g-(t), g+(t)),

(0 where the conditioning event is empty; inequalities strict, as written).
This is the weight of Mulayoff, Michaeli & Soudry (2021) that Qiao et al.
(2024) use, and the case ``d = 1`` of ``g(u, t) = min{g~(u, t), g~(-u, -t)}``
in Liang, Qiao, Wang & Parhi (2025), Section 3 (with ``u = +-1``;
``g(-u, -t) = g(u, t)``, so the orientation of a neuron does not matter). It is
what the Gauss-Newton matrix yields, which is how it was checked here: the
Rayleigh quotient of ``J J^T / n`` at the unit vector ``1/sqrt(n)`` is ``1 +
(1/n^2) sum_j [w2_j^2 |S_j|^2 (1 + m_j^2) + w1_j^2 |S_j|^2 e_j^2]`` (``S_j``
the points where neuron ``j`` is active, ``m_j`` their mean, ``e_j`` their mean
distance to the knot), and AM-GM bounds each bracket below by ``2 |w2_j w1_j|
n^2 g+-(t_j)``: ``lambda_max(J^T J / n) >= 1 + 2 sum_j |w2_j w1_j| g(t_j)``, the
"Term A" step of Liang et al. (2025), Appendix C. ``g`` vanishes outside
``[min x_i, max x_i]``.

Weighted total variation
------------------------
``int |f''(x)| g(x) dx = sum_clusters |mass| g(position)``; for a finite net in
reduced form this is the weighted path norm ``|f|_{V_g}`` of Liang et al.
(2025), Example 3.1, and the left side of the bound of Qiao et al. (2024) (the
seed's Theorem 4), whose integral over ``[-x_max, x_max]`` equals the one over
the real line because ``g`` vanishes outside the data range.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from numdiff._checks import as_real_array
from numdiff.nets._checks import (
    flat_params,
    non_negative,
    positive,
    real_scalar,
    vector,
    width_of,
)

__all__ = [
    "PointMasses", "flatness_tv_bound", "knots", "second_derivative", "stable_tv_bound",
    "weight_function", "weighted_tv",
]

SIDES = ("min", "left", "right")


class PointMasses(NamedTuple):
    """``f''`` as a sum of signed point masses, sorted by position.

    Parameters
    ----------
    positions : ndarray, shape (m,)
        Increasing.
    masses : ndarray, shape (m,)
        Signed: the jump of ``f'`` at each position.
    """

    positions: np.ndarray
    masses: np.ndarray

    def total_variation(self):
        """Unweighted ``int |f''| = sum |masses|`` (the TV of ``f'``).

        Returns
        -------
        float
        """
        return float(np.abs(self.masses).sum())


def knots(params):
    """Knot, slope jump and orientation of every neuron with ``w1 != 0``, unmerged.

    Parameters
    ----------
    params : array_like, shape (3 k + 1,), or Params

    Returns
    -------
    positions : ndarray, shape (m,)
        ``-b1_j / w1_j``, in neuron order.
    masses : ndarray, shape (m,)
        ``w2_j |w1_j|``.
    neurons : ndarray of int, shape (m,)
        Index ``j`` of each neuron kept (``w1_j != 0``).
    """
    theta = flat_params(params)
    k = width_of(theta)
    w1, b1, w2 = theta[:k], theta[k:2 * k], theta[2 * k:3 * k]
    neurons = np.flatnonzero(w1 != 0.0)
    return -b1[neurons] / w1[neurons], w2[neurons] * np.abs(w1[neurons]), neurons


def second_derivative(params, rtol=1e-9, atol=0.0):
    """``f''`` as merged point masses (rule in the module docstring).

    Parameters
    ----------
    params : array_like, shape (3 k + 1,), or Params
    rtol, atol : float
        Knots closer than ``atol + rtol * max(|t_a|, |t_b|)`` merge.

    Returns
    -------
    PointMasses
    """
    rtol, atol = non_negative(rtol, "rtol"), non_negative(atol, "atol")
    positions, masses, _ = knots(params)
    order = np.argsort(positions, kind="stable")
    positions, masses = positions[order], masses[order]
    if positions.size == 0:
        return PointMasses(positions, masses)
    gaps = np.diff(positions)
    scale = np.maximum(np.abs(positions[:-1]), np.abs(positions[1:]))
    new_cluster = np.concatenate([[True], gaps > atol + rtol * scale])
    labels = np.cumsum(new_cluster) - 1
    count = labels[-1] + 1
    summed = np.bincount(labels, weights=masses, minlength=count)
    weight = np.abs(masses)
    weight_sum = np.bincount(labels, weights=weight, minlength=count)
    centre = np.bincount(labels, weights=weight * positions, minlength=count)
    plain = np.bincount(labels, weights=positions, minlength=count) / np.bincount(labels)
    where = np.divide(centre, weight_sum, out=plain.copy(), where=weight_sum > 0)
    keep = summed != 0.0
    return PointMasses(where[keep], summed[keep])


def _check_side(side):
    if not isinstance(side, str):
        raise TypeError(f"side must be 'min', 'left' or 'right'; got {type(side).__name__}")
    if side not in SIDES:
        raise ValueError(f"side must be 'min', 'left' or 'right'; got {side!r}")
    return side


def _tail_weight(sorted_x, t, right):
    """``g+(t)`` (``right``) or ``g-(t)`` from the sorted inputs, by prefix sums."""
    n = sorted_x.shape[0]
    prefix = np.concatenate([[0.0], np.cumsum(sorted_x)])
    if right:
        first = np.searchsorted(sorted_x, t, side="right")  # points > t are sorted_x[first:]
        count = n - first
        total = prefix[n] - prefix[first]
    else:
        count = np.searchsorted(sorted_x, t, side="left")  # points < t are sorted_x[:count]
        total = prefix[count]
    out = np.zeros(t.shape)
    some = count > 0
    c = count[some].astype(np.float64)
    mean = total[some] / c
    excess = mean - t[some] if right else t[some] - mean
    out[some] = (c / n) ** 2 * excess * np.sqrt(1.0 + mean * mean)
    return out


def weight_function(x, at, side="min"):
    """The data-dependent weight ``g`` (definition in the module docstring).

    Parameters
    ----------
    x : array_like, shape (n,)
        Training inputs; ``X`` is uniform on them (repeats count with multiplicity).
    at : array_like, shape (m,) or scalar
        Where to evaluate.
    side : {"min", "left", "right"}
        ``g = min(g-, g+)``, or ``g-`` alone, or ``g+`` alone.

    Returns
    -------
    ndarray, shape of ``at``
        ``>= 0``; 0 outside ``(min x, max x)``.
    """
    side = _check_side(side)
    sorted_x = np.sort(vector(x, "x"))
    at = as_real_array(at, "at")
    if not np.isfinite(at).all():
        raise ValueError("at contains NaN or infinite values")
    t = at.ravel()
    if side == "right":
        out = _tail_weight(sorted_x, t, right=True)
    elif side == "left":
        out = _tail_weight(sorted_x, t, right=False)
    else:
        out = np.minimum(_tail_weight(sorted_x, t, True), _tail_weight(sorted_x, t, False))
    return out.reshape(at.shape)


def weighted_tv(params, x, rtol=1e-9, atol=0.0):
    """``int |f''(x)| g(x) dx`` for the net, with ``g`` from the inputs ``x``.

    Parameters
    ----------
    params : array_like, shape (3 k + 1,), or Params
    x : array_like, shape (n,)
        Training inputs defining ``g``.
    rtol, atol : float
        Knot merging tolerances of :func:`second_derivative`.

    Returns
    -------
    float
        ``sum_clusters |mass| g(position)``.
    """
    x = vector(x, "x")
    measure = second_derivative(params, rtol, atol)
    return float(np.abs(measure.masses) @ weight_function(x, measure.positions))


def flatness_tv_bound(lam_max, loss=0.0, radius=0.0):
    """Bound on the weighted TV from the curvature at any parameter point.

    Liang, Qiao, Wang & Parhi (2025), Theorem 3.2, for ``d = 1``: wherever the
    loss is twice differentiable,
    ``int |f''| g <= lambda_max / 2 - 1/2 + (R + 1) sqrt(2 L)``,
    with ``R >= max_i |x_i|``. At an interpolating point (``L = 0``) it is the
    flatness bound behind Mulayoff et al. (2021). The paper's constant
    ``R + 1`` is kept; its proof's two steps give ``sqrt(1 + R^2) / 2``.

    Parameters
    ----------
    lam_max : float
        Largest Hessian eigenvalue at the point.
    loss : float
        Training loss ``L`` at the point.
    radius : float
        ``R``, at least the largest ``|x_i|``.

    Returns
    -------
    float
    """
    lam_max = real_scalar(lam_max, "lam_max")
    loss, radius = non_negative(loss, "loss"), non_negative(radius, "radius")
    return lam_max / 2.0 - 0.5 + (radius + 1.0) * np.sqrt(2.0 * loss)


def stable_tv_bound(eta, loss=0.0, radius=0.0):
    """Bound on the weighted TV at a minimum where GD with step ``eta`` is stable.

    :func:`flatness_tv_bound` with ``lambda_max <= 2 / eta`` (linear stability,
    Qiao et al. 2024, Lemma 2.2), i.e. Liang et al. (2025), Corollary 3.3:
    ``1/eta - 1/2 + (R + 1) sqrt(2 L)``. For
    interpolating minima (``L = 0``) this is ``1/eta - 1/2``, the bound of
    Mulayoff et al. (2021); the seed's Theorem 4 bounds the extra term by
    ``O~(sigma x_max)`` for optimized fits of noisy labels.

    Parameters
    ----------
    eta : float
        Step size, ``> 0``.
    loss : float
        Training loss at the minimum.
    radius : float
        ``R >= max_i |x_i|``.

    Returns
    -------
    float
    """
    eta = positive(eta, "eta")
    return flatness_tv_bound(2.0 / eta, loss, radius)
