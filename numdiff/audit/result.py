"""What an audit returns: :class:`AuditResult`, its classes and its verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .statistics import CTResult, MannWhitney

__all__ = ["CLASSES", "VERDICTS", "AuditResult", "verdict"]

#: Class labels, indexed by :attr:`AuditResult.classes`.
CLASSES = ("novel", "near copy", "verbatim")

#: The set-level verdicts of ``C_T``.
VERDICTS = ("data-copying", "under-fitting", "neither")


def verdict(c_t, alpha):
    """The verdict of a ``C_T`` test at level ``alpha``.

    ``"data-copying"`` when the one-sided copying p-value ``Phi(z)`` is below
    ``alpha``, ``"under-fitting"`` when the other side's ``1 - Phi(z)`` is,
    ``"neither"`` otherwise. Each side is tested at ``alpha``, so a perfect
    model gets a verdict other than ``"neither"`` with probability ``2 alpha``.

    Parameters
    ----------
    c_t : CTResult or None
    alpha : float

    Returns
    -------
    str or None
        One of :data:`VERDICTS`; ``None`` without a test or when no cell was kept.
    """
    if c_t is None or not np.isfinite(c_t.z):
        return None
    if c_t.pvalue < alpha:
        return VERDICTS[0]
    if c_t.pvalue_underfit < alpha:
        return VERDICTS[1]
    return VERDICTS[2]


@dataclass
class AuditResult:
    """What :func:`~numdiff.audit.audit` returns.

    Attributes
    ----------
    n_train, n_samples, n_holdout, dim : int
        Sizes (``n_holdout`` 0 without a held-out set); ``dim`` is that of the
        space where distances are measured (the features when given).
    nearest_index : ndarray of int, shape (M,)
        Index of each sample's nearest training point.
    nearest_distance, second_distance : ndarray, shape (M,)
        Distances to the nearest and second-nearest training points.
    ratio : ndarray, shape (M,)
        ``nearest_distance / second_distance`` (0 when both are 0).
    classes : ndarray of int, shape (M,)
        Index into :data:`CLASSES`.
    reference_distance : ndarray, shape (R,)
        Nearest-training distances of the reference (held-out, or
        leave-one-out training points).
    calibration : str
        ``"holdout"`` or ``"train leave-one-out"``.
    thresholds : dict
        ``ratio``, ``near_distance``, ``verbatim_distance``, ``near_quantile``,
        ``verbatim_quantile``, ``near_source`` and ``verbatim_source``
        (``"quantile"`` or ``"absolute"``), and ``near_reference_share``,
        ``verbatim_reference_share``: the share of reference distances below
        each distance threshold.
    memorized_count : int
        Samples with ``ratio < threshold``.
    memorized_fraction : float
    memorized_interval : (float, float)
        Wilson interval at ``level``.
    level : float
    class_counts : dict
        Class name -> count.
    c_t : CTResult or None
        The data-copying test with the chosen ``distance`` (needs a held-out set).
    mann_whitney : MannWhitney or None
        Generated against held-out distances (needs a held-out set).
    alpha : float
        Level of each side of the verdict.
    flagged : bool or None
        ``verdict == "data-copying"``; ``None`` without a held-out set.
    image_shape : tuple or None
        Shape of one image when the inputs are images.
    extra : dict
        ``train_mean``: the mean subtracted from the training set where
        distances are measured, shape (d,); ``shown_train_shift``: the shift to
        add back to the training set that was passed for display (``None``
        when it was not modified).
    distance : str
        ``"train"`` or ``"cell"``: the distance of :attr:`c_t`.
    c_t_by_distance : dict
        ``"train"`` and ``"cell"`` -> :class:`CTResult` on the same cells.
    cells : dict
        Cell labels: ``"train"`` (N,), ``"samples"`` (M,), ``"holdout"`` (n,).
    verdict : str or None
        One of :data:`VERDICTS` (see :func:`verdict`).
    perfect_model : dict
        Class name -> ``{"expected": float, "interval":
        (int, int)}``: the count a model sampling the data law itself would get
        (:func:`~numdiff.audit.statistics.perfect_model_count`, at ``level``).
    partition_spread : dict
        With ``partition_repeats > 1``: ``"seeds"`` and, per distance,
        ``{"statistic": [...], "z": [...]}`` over those partition seeds.
    space : str
        ``"points"`` or ``"features"``: where distances are measured.
    exact_copies : int
        Samples at distance exactly 0 from a training point.
    """

    n_train: int
    n_samples: int
    n_holdout: int
    dim: int
    nearest_index: np.ndarray
    nearest_distance: np.ndarray
    second_distance: np.ndarray
    ratio: np.ndarray
    classes: np.ndarray
    reference_distance: np.ndarray
    calibration: str
    thresholds: dict
    memorized_count: int
    memorized_fraction: float
    memorized_interval: tuple
    level: float
    class_counts: dict
    c_t: CTResult | None = None
    mann_whitney: MannWhitney | None = None
    alpha: float = 0.05
    flagged: bool | None = None
    image_shape: tuple | None = None
    extra: dict = field(default_factory=dict)
    distance: str = "train"
    c_t_by_distance: dict = field(default_factory=dict)
    cells: dict = field(default_factory=dict)
    verdict: str | None = None
    perfect_model: dict = field(default_factory=dict)
    partition_spread: dict = field(default_factory=dict)
    space: str = "points"
    exact_copies: int = 0

    def summary(self):
        """The set-level numbers as a JSON-ready dict.

        Returns
        -------
        dict
        """
        out = {
            "n_train": self.n_train, "n_samples": self.n_samples,
            "n_holdout": self.n_holdout, "dim": self.dim, "space": self.space,
            "calibration": self.calibration, "thresholds": self.thresholds,
            "memorized_count": self.memorized_count,
            "memorized_fraction": self.memorized_fraction,
            "memorized_interval": list(self.memorized_interval), "level": self.level,
            "class_counts": self.class_counts, "exact_copies": self.exact_copies,
            "perfect_model": self.perfect_model, "alpha": self.alpha, "flagged": self.flagged,
            "verdict": self.verdict, "distance": self.distance, "c_t": None,
            "c_t_by_distance": None, "mann_whitney": None,
            "partition_spread": self.partition_spread or None,
        }
        if self.c_t is not None:
            out["c_t"] = _c_t_summary(self.c_t)
            out["c_t_by_distance"] = {k: _c_t_summary(v) for k, v in
                                      self.c_t_by_distance.items()}
        if self.mann_whitney is not None:
            mw = self.mann_whitney
            out["mann_whitney"] = {"u": mw.u, "z": mw.z, "pvalue_less": mw.pvalue_less,
                                   "pvalue_two_sided": mw.pvalue_two_sided}
        return _json_safe(out)


def _c_t_summary(c_t):
    return {k: getattr(c_t, k) for k in (
        "statistic", "z", "pvalue", "pvalue_underfit", "n_cells", "tau", "cells",
        "dropped_no_held_out", "continuity_correction")}


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if np.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    return value
