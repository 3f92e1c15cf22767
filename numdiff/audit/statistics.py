"""Set-level statistics of an audit: Wilson intervals, Mann-Whitney z-scores, the C_T test.

The data-copying test is that of Meehan, Chaudhuri & Dasgupta (2020), "A
non-parametric test to detect data-copying in generative models" (AISTATS,
PMLR 108; arXiv:2004.05675), the three-sample test built on the Mann-Whitney
``U`` statistic and its cell-wise version ``C_T``. In the paper's notation:

* ``T`` the training set, ``P_n`` a held-out sample of ``n`` points from the
  data law, ``Q_m`` ``m`` generated points;
* ``L(S)`` the distances of the points of ``S`` to their nearest point of ``T``;
* ``Z_U(L(P_n), L(Q_m))``: the Mann-Whitney ``U`` statistic of ``L(Q_m)``
  against ``L(P_n)`` (the number of pairs in which the generated point is the
  farther one, ties counting one half), standardised by its null mean
  ``mn / 2`` and variance ``mn (m + n + 1) / 12``. It is negative when
  generated points lie closer to the training set than fresh data do;
* a partition ``Pi`` of the space into cells ``pi`` (k-means on ``T``), the
  cell fractions ``P_n(pi)`` and ``Q_m(pi)``, and the kept cells
  ``Pi_tau``, the cells where ``Q_m(pi)`` reaches the threshold ``tau``;
* the statistic

      C_T(P_n, Q_m) = sum_{pi in Pi_tau} P_n(pi) Z_U(L_pi(P_n), L_pi(Q_m))
                      / sum_{pi in Pi_tau} P_n(pi),

  a held-out-weighted average of the in-cell z-scores. ``C_T << 0`` signals
  data-copying, ``C_T >> 0`` under-fitting.

The cell rule follows the paper's companion code (github.com/casey-meehan/
data-copying, ``data_copying_tests.C_T``), which keeps a cell when
``Q_m(pi) > tau`` with ``tau = 20 / m`` in all of the paper's experiments: a
cell needs more than 20, i.e. at least 21, generated points, so that each
in-cell ``Z_U`` is near its normal limit. ``min_generated`` (default 21) is
that count, inclusive. A cell with generated points but no held-out point has
no ``Z_U``: it is dropped and counted in :class:`CTResult`.

This module computes ``C_T`` from the distances it is given. Which distances,
and whether each ``Z_U`` is continuity-corrected, is chosen by ``distance`` in
:func:`numdiff.audit.audit` (see :mod:`numdiff.audit.cells`): ``"cell"``
reproduces the companion code (``L_pi`` to the training points of the cell,
``U`` centred at ``mn/2 - 1/2``), and the tests check it against a port of that
code on the same cells; ``"train"``, numdiff's default, measures ``L`` to the
whole training set as in the paper's definition of ``L``, without the
correction. The correction is small (``0.5 / sqrt(mn(m+n+1)/12)`` per ``Z_U``,
about 0.004 in z for cells of 100 against 100 points); the distance is not: at
``d = 8`` the two statistics differ by up to about 1 in z (``docs/audit.md``
gives the measurements). The paper's equation numbers are not cited: its text
was not at hand to check them, so the notation above is the reference.

The p-value is ours, not the paper's (which reads ``C_T`` as a z-score): the
cells hold disjoint points, so under the null (``Q = P``) the in-cell ``Z_U``
are independent and nearly standard normal given the cell counts, and ``C_T``
is normal with variance ``sum w^2 / (sum w)^2`` for the weights
``w = P_n(pi)``. ``C_T / sqrt(that)`` is therefore a standard normal score;
reading ``C_T`` itself as one is conservative.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtr
from scipy.stats import betabinom, binomtest, mannwhitneyu

__all__ = ["CTResult", "MannWhitney", "c_t_test", "continuity_shift", "mann_whitney",
           "perfect_model_count", "wilson_interval", "z_u"]


def wilson_interval(successes, n, level=0.95):
    """Wilson score interval of a proportion.

    Parameters
    ----------
    successes : int
        ``0 <= successes <= n``.
    n : int
        Number of trials, ``>= 1``.
    level : float
        Confidence level in ``(0, 1)``.

    Returns
    -------
    (float, float)
        The interval (``scipy.stats.binomtest(...).proportion_ci(method="wilson")``).
    """
    ci = binomtest(int(successes), int(n)).proportion_ci(confidence_level=level,
                                                         method="wilson")
    return float(ci.low), float(ci.high)


def z_u(generated, held_out, continuity_correction=False):
    """Mann-Whitney ``U`` of generated against held-out distances, as a z-score.

    ``Z_U`` of Meehan et al. (2020): ``(U - mn/2) / sqrt(mn(m+n+1)/12)``
    with ``U`` the number of (generated, held-out) pairs whose generated distance
    is the larger (ties one half), ``m`` generated and ``n`` held-out values.

    Parameters
    ----------
    generated : array_like, shape (m,)
        Distances of generated points to the training set, ``m >= 1``.
    held_out : array_like, shape (n,)
        Distances of held-out points to the training set, ``n >= 1``.
    continuity_correction : bool
        Centre ``U`` at ``mn/2 - 1/2`` instead of ``mn/2``, as the paper's
        companion code does (the correction of a lower-tail test).

    Returns
    -------
    float
        Negative when generated points are closer to the training set.
    """
    generated, held_out = np.asarray(generated, float), np.asarray(held_out, float)
    m, n = generated.size, held_out.size
    u = mannwhitneyu(generated, held_out, method="asymptotic").statistic
    z = (u - 0.5 * m * n) / np.sqrt(m * n * (m + n + 1) / 12.0)
    return float(z + (continuity_shift(m, n) if continuity_correction else 0.0))


def continuity_shift(m, n):
    """What the continuity correction adds to ``Z_U``: ``(1/2) / sqrt(mn(m+n+1)/12)``.

    Parameters
    ----------
    m, n : int
        Generated and held-out counts.

    Returns
    -------
    float
    """
    return 0.5 / np.sqrt(m * n * (m + n + 1) / 12.0)


@dataclass
class MannWhitney:
    """Mann-Whitney comparison of generated-to-train and held-out-to-train distances.

    Attributes
    ----------
    u : float
        ``U`` of the generated distances (pairs where the generated one is larger).
    z : float
        ``Z_U`` (see :func:`z_u`); negative: generated points are closer.
    pvalue_less : float
        One-sided p-value (alternative: generated distances stochastically
        smaller, i.e. copying), scipy's asymptotic test with tie correction.
    pvalue_two_sided : float
        Two-sided p-value.
    """

    u: float
    z: float
    pvalue_less: float
    pvalue_two_sided: float


def mann_whitney(generated, held_out):
    """Compare two sets of nearest-training distances (``scipy.stats.mannwhitneyu``).

    Parameters
    ----------
    generated : array_like, shape (m,)
    held_out : array_like, shape (n,)

    Returns
    -------
    MannWhitney
    """
    less = mannwhitneyu(generated, held_out, alternative="less", method="asymptotic")
    both = mannwhitneyu(generated, held_out, alternative="two-sided", method="asymptotic")
    return MannWhitney(float(less.statistic), z_u(generated, held_out), float(less.pvalue),
                       float(both.pvalue))


@dataclass
class CTResult:
    """The data-copying test of Meehan et al. (2020).

    Attributes
    ----------
    statistic : float
        ``C_T``; ``nan`` when no cell is kept.
    z : float
        ``C_T`` over its null standard deviation ``sqrt(sum w^2) / sum w``.
    pvalue : float
        One-sided p-value for data-copying, ``Phi(z)``.
    pvalue_underfit : float
        One-sided p-value for under-fitting, ``1 - Phi(z)``.
    n_cells : int
        Cells of the partition.
    tau : float
        The threshold on ``Q_m(pi)`` (``min_generated / m``).
    cells : list of dict
        Per cell: ``cell``, ``n_generated``, ``n_held_out``, ``weight``
        (``P_n(pi)``), ``z_u`` (``None`` when dropped) and ``kept``.
    dropped_no_held_out : int
        Cells with enough generated points but no held-out point.
    continuity_correction : bool
        Whether each ``Z_U`` was continuity-corrected (see :func:`z_u`).
    """

    statistic: float
    z: float
    pvalue: float
    pvalue_underfit: float
    n_cells: int
    tau: float
    cells: list = field(default_factory=list)
    dropped_no_held_out: int = 0
    continuity_correction: bool = False


def c_t_test(gen_dist, gen_cell, held_dist, held_cell, n_cells, min_generated=21,
             continuity_correction=False):
    """The ``C_T`` statistic of Meehan et al. (2020) and its p-value.

    Parameters
    ----------
    gen_dist : ndarray, shape (m,)
        Distances of the generated points to the training set (``L(Q_m)``).
    gen_cell : ndarray of int, shape (m,)
        Cell of each generated point, in ``[0, n_cells)``.
    held_dist : ndarray, shape (n,)
        Distances of the held-out points to the training set (``L(P_n)``).
    held_cell : ndarray of int, shape (n,)
        Cell of each held-out point.
    n_cells : int
        Number of cells of the partition.
    min_generated : int
        A cell is kept when it holds at least this many generated points,
        i.e. ``Q_m(pi) >= tau = min_generated / m``; the default 21 is the
        companion code's ``Q_m(pi) > 20 / m``.
    continuity_correction : bool
        Continuity-correct each ``Z_U`` (see :func:`z_u`).

    Returns
    -------
    CTResult
    """
    m, n = gen_dist.size, held_dist.size
    gen_count = np.bincount(gen_cell, minlength=n_cells)
    held_count = np.bincount(held_cell, minlength=n_cells)
    weights, scores, cells, no_held = [], [], [], 0
    for c in range(n_cells):
        enough = gen_count[c] >= min_generated
        kept = bool(enough and held_count[c] > 0)
        no_held += int(enough and held_count[c] == 0)
        score = None
        if kept:
            score = z_u(gen_dist[gen_cell == c], held_dist[held_cell == c])
            if continuity_correction:
                score += continuity_shift(int(gen_count[c]), int(held_count[c]))
        cells.append({"cell": c, "n_generated": int(gen_count[c]),
                      "n_held_out": int(held_count[c]), "weight": float(held_count[c] / n),
                      "z_u": score, "kept": kept})
        if kept:
            weights.append(held_count[c] / n)
            scores.append(score)
    tau = min_generated / m
    if not weights:
        nan = float("nan")
        return CTResult(nan, nan, nan, nan, n_cells, tau, cells, no_held,
                        continuity_correction)
    w, s = np.array(weights), np.array(scores)
    stat = float(w @ s / w.sum())
    z = stat * w.sum() / np.sqrt(np.sum(w * w))
    return CTResult(stat, float(z), float(ndtr(z)), float(ndtr(-z)), n_cells, tau, cells,
                    no_held, continuity_correction)


def perfect_model_count(reference_hits, n_reference, m, level=0.95):
    """How many of ``m`` samples of a perfect model fall in a class, and a predictive interval.

    A perfect model samples the data law itself, so its samples are
    exchangeable with the ``n_reference`` reference points, of which
    ``reference_hits`` fall in the class. The chance ``p`` that a fresh point
    does is then known up to ``Beta(K + 1/2, n - K + 1/2)`` (Jeffreys), and
    the count among ``m`` samples is beta-binomial: binomial spread plus the
    spread of ``p`` estimated from ``n`` points (for ``m = n`` about twice the
    binomial variance).

    Parameters
    ----------
    reference_hits : int
        Reference points in the class, ``0 <= K <= n``.
    n_reference : int
        Reference points, ``n >= 1``.
    m : int
        Samples, ``m >= 1``.
    level : float
        Level of the interval.

    Returns
    -------
    expected : float
        The predictive mean ``m (K + 1/2) / (n + 1)``.
    interval : (int, int)
        Central predictive interval of the count at ``level``.
    """
    a = reference_hits + 0.5
    b = n_reference - reference_hits + 0.5
    law = betabinom(int(m), a, b)
    lo, hi = law.interval(level)
    return float(m * a / (a + b)), (int(lo), int(hi))
