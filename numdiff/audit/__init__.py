"""A memorisation audit of generated samples against their training set.

``audit(train, samples, holdout)`` measures, for every generated sample, its
nearest and second-nearest training points (exact distances, numdiff's
nearest-neighbour search in bounded memory), applies the ratio test of
:mod:`numdiff.metrics` and gives it a class; over the whole set it gives the
memorised fraction with a Wilson interval, the data-copying test ``C_T`` of
Meehan, Chaudhuri & Dasgupta (2020) and a Mann-Whitney comparison of the
generated-to-train and held-out-to-train distances.
``python -m numdiff.audit`` runs it on files and writes a report.

Classes (all thresholds are reported with the result)
-----------------------------------------------------
Let ``d1``, ``d2`` be a sample's nearest and second-nearest training
distances, ``r = d1 / d2`` and ``ref`` the *reference* distances, i.e. what
novel points look like: the held-out points' nearest training distances when a
held-out set is given, otherwise the leave-one-out nearest distances of up to
``n_reference`` training points (each to the rest of the training set).

* **memorised** (the set-level fraction, numdiff's metric): ``r < threshold``
  (default ``1/3``);
* **verbatim copy**: memorised *and* ``d1 <= q(verbatim_quantile)``, the
  ``verbatim_quantile`` (default 0.001) quantile of ``ref``: as close to one
  training point as only one novel point in a thousand gets;
* **near copy** (subtle memorisation): not verbatim, and memorised *or*
  ``d1 < q(near_quantile)`` (default 0.05): closer to the training set than
  95% of novel points. A novel point is a near copy with probability about
  ``near_quantile`` plus its (small) chance of passing the ratio test;
* **novel**: the rest.

The quantiles are ``numpy.quantile`` with linear interpolation.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np

from .loading import AuditInputError, as_set, load_set
from .search import CHUNK, TrainIndex
from .statistics import CTResult, MannWhitney, c_t_test, mann_whitney, wilson_interval

__all__ = ["CLASSES", "AuditInputError", "AuditResult", "audit", "classify"]

#: Class labels, indexed by :attr:`AuditResult.classes`.
CLASSES = ("novel", "near copy", "verbatim")


@dataclass
class AuditResult:
    """What :func:`audit` returns.

    Attributes
    ----------
    n_train, n_samples, n_holdout, dim : int
        Sizes (``n_holdout`` 0 without a held-out set).
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
        ``verbatim_quantile``.
    memorized_count : int
        Samples with ``ratio < threshold``.
    memorized_fraction : float
    memorized_interval : (float, float)
        Wilson interval at ``level``.
    level : float
    class_counts : dict
        Class name -> count.
    c_t : CTResult or None
        The data-copying test (needs a held-out set).
    mann_whitney : MannWhitney or None
        Generated against held-out distances (needs a held-out set).
    alpha : float
        Level of the flag.
    flagged : bool or None
        ``c_t.pvalue < alpha``: data-copying detected; ``None`` without a
        held-out set.
    image_shape : tuple or None
        Shape of one image when the inputs are images.
    extra : dict
        ``train_mean``: the mean subtracted from every set, shape (d,).
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

    def summary(self):
        """The set-level numbers as a JSON-ready dict.

        Returns
        -------
        dict
        """
        out = {
            "n_train": self.n_train, "n_samples": self.n_samples,
            "n_holdout": self.n_holdout, "dim": self.dim, "calibration": self.calibration,
            "thresholds": self.thresholds, "memorized_count": self.memorized_count,
            "memorized_fraction": self.memorized_fraction,
            "memorized_interval": list(self.memorized_interval), "level": self.level,
            "class_counts": self.class_counts, "alpha": self.alpha, "flagged": self.flagged,
            "c_t": None, "mann_whitney": None,
        }
        if self.c_t is not None:
            out["c_t"] = {k: getattr(self.c_t, k) for k in (
                "statistic", "z", "pvalue", "pvalue_underfit", "n_cells", "tau", "cells",
                "dropped_no_held_out")}
        if self.mann_whitney is not None:
            mw = self.mann_whitney
            out["mann_whitney"] = {"u": mw.u, "z": mw.z, "pvalue_less": mw.pvalue_less,
                                   "pvalue_two_sided": mw.pvalue_two_sided}
        return _json_safe(out)


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
    return value


def _fraction(value, name, low=0.0, high=1.0):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    if not low < value < high:
        raise ValueError(f"{name} must be in ({low}, {high}); got {value!r}")
    return float(value)


def _is_path(x):
    return isinstance(x, str) or hasattr(x, "__fspath__")


def _read(x, name, like=None):
    if x is None:
        return None
    if _is_path(x):
        return load_set(x, name, like)
    return as_set(x, name)


def _cells(train, queries, n_cells, seed, max_points):
    """k-means cells fitted on (up to ``max_points`` of) the training set; cell of each query."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    fit = train if train.shape[0] <= max_points else train[
        np.sort(rng.choice(train.shape[0], max_points, replace=False))]
    km = KMeans(n_clusters=n_cells, n_init=1, random_state=int(rng.integers(2**31)))
    km.fit(fit)
    return [km.predict(q) for q in queries]


def classify(memorized, d1, near_distance, verbatim_distance):
    """The class of each sample (the rules in this module's docstring).

    Parameters
    ----------
    memorized : ndarray of bool, shape (M,)
        The ratio test.
    d1 : ndarray, shape (M,)
        Nearest training distances.
    near_distance, verbatim_distance : float
        The reference quantiles ``q(near_quantile)`` and ``q(verbatim_quantile)``.

    Returns
    -------
    ndarray of int, shape (M,)
        Indices into :data:`CLASSES`.
    """
    verbatim = memorized & (d1 <= verbatim_distance)
    near = ~verbatim & (memorized | (d1 < near_distance))
    return np.where(verbatim, 2, np.where(near, 1, 0))


def audit(train, samples, holdout=None, *, threshold=1.0 / 3.0, near_quantile=0.05,
          verbatim_quantile=0.001, alpha=0.05, level=0.95, n_cells=None, min_generated=21,
          n_reference=2000, kmeans_max_points=20000, seed=0, chunk=CHUNK, progress=None,
          copy=True):
    """Audit generated samples for memorisation of their training set.

    Parameters
    ----------
    train : array_like, shape (N, d), or path
        Training points (``N >= 2``), or a ``.npy`` / ``.npz`` file or a folder
        of images (see :func:`numdiff.audit.loading.load_set`).
    samples : array_like, shape (M, d), or path
        Generated points, ``M >= 1``.
    holdout : array_like, shape (n, d), or path, optional
        Points of the data law not used for training. Needed for ``C_T`` and
        the Mann-Whitney test, and used to calibrate the classes.
    threshold : float
        Ratio-test threshold in ``(0, 1]``; default ``1/3`` (numdiff.metrics).
    near_quantile, verbatim_quantile : float
        Quantiles of the reference distances for the near-copy and verbatim
        thresholds (see the module notes), in ``(0, 1)``.
    alpha : float
        Level of the data-copying flag (``C_T``'s one-sided p-value below it).
    level : float
        Confidence level of the Wilson interval.
    n_cells : int, optional
        Cells of the k-means partition for ``C_T``; default
        ``clip(min(M, n) // 100, 1, 50)`` (at least 100 points of each set per cell on average).
    min_generated : int
        Generated points a cell needs to enter ``C_T``; 21 is the paper's
        companion code's rule (more than 20).
    n_reference : int
        Without a held-out set: training points whose leave-one-out distance
        calibrates the classes.
    kmeans_max_points : int
        The k-means partition is fitted on at most this many training points,
        drawn at random.
    seed : int
        Seed of the k-means fit and of the leave-one-out subsample.
    chunk : int
        Queries per step of the nearest-neighbour search.
    progress : bool or None
        tqdm progress bars; ``None``: only when stderr is a terminal.
    copy : bool
        ``False``: a training set given as a float64 C-contiguous array (or
        :class:`~numdiff.audit.loading.LoadedSet`) is centred in place instead of
        copied, which halves the memory; ``result.extra["train_mean"]`` holds the
        mean that was subtracted. A set read from a path is never copied.

    Returns
    -------
    AuditResult

    Raises
    ------
    AuditInputError
        Empty, mis-shaped, non-finite or unreadable inputs, or sets of different dimension.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise TypeError(f"threshold must be a real number; got {threshold!r}")
    threshold = float(threshold)
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold!r}")
    near_quantile = _fraction(near_quantile, "near_quantile")
    verbatim_quantile = _fraction(verbatim_quantile, "verbatim_quantile")
    alpha = _fraction(alpha, "alpha")
    level = _fraction(level, "level")
    train_set = _read(train, "train")
    sample_set = _read(samples, "samples", train_set)
    hold_set = _read(holdout, "holdout", train_set)
    tr = train_set.x
    if tr.shape[0] < 2:
        raise AuditInputError(f"train: needs at least 2 points; got {tr.shape[0]}")
    for name, s in (("samples", sample_set), ("holdout", hold_set)):
        if s is not None and s.x.shape[1] != tr.shape[1]:
            raise AuditInputError(f"{name}: points have d = {s.x.shape[1]}; the training "
                                  f"points have d = {tr.shape[1]}")
    # Our own centred float64 copy of the training set (none if the loader made it, or
    # if the caller allows centring in place).
    if copy and not _is_path(train):
        tr = tr.copy()
    mean = tr.mean(axis=0)
    tr -= mean
    index = TrainIndex(tr)
    x = sample_set.x - mean
    idx, dist = index.query(x, 2, chunk=chunk, progress=progress, desc="samples")
    d1, d2 = dist[:, 0], dist[:, 1]
    ratio = np.divide(d1, d2, out=np.zeros_like(d1), where=d2 > 0)
    held_dist = held_cell = None
    if hold_set is not None:
        h = hold_set.x - mean
        held_dist = index.query(h, 1, chunk=chunk, progress=progress, desc="holdout")[1][:, 0]
        ref, calibration = held_dist, "holdout"
    else:
        rng = np.random.default_rng([seed, 1])
        rows = rng.choice(tr.shape[0], min(n_reference, tr.shape[0]), replace=False)
        ref, calibration = index.leave_one_out(np.sort(rows), chunk=chunk,
                                               progress=progress), "train leave-one-out"
    t_near = float(np.quantile(ref, near_quantile))
    t_verb = float(np.quantile(ref, verbatim_quantile))
    memorized = ratio < threshold
    classes = classify(memorized, d1, t_near, t_verb)
    count = int(memorized.sum())
    result = AuditResult(
        n_train=tr.shape[0], n_samples=x.shape[0],
        n_holdout=0 if hold_set is None else hold_set.x.shape[0], dim=tr.shape[1],
        nearest_index=idx[:, 0], nearest_distance=d1, second_distance=d2, ratio=ratio,
        classes=classes, reference_distance=ref, calibration=calibration,
        thresholds={"ratio": threshold, "near_distance": t_near, "verbatim_distance": t_verb,
                    "near_quantile": near_quantile, "verbatim_quantile": verbatim_quantile},
        memorized_count=count, memorized_fraction=count / x.shape[0],
        memorized_interval=wilson_interval(count, x.shape[0], level), level=level,
        class_counts={name: int((classes == i).sum()) for i, name in enumerate(CLASSES)},
        alpha=alpha, image_shape=train_set.image_shape, extra={"train_mean": mean},
    )
    if hold_set is not None:
        if n_cells is None:
            n_cells = int(np.clip(min(x.shape[0], held_dist.size) // 100, 1, 50))
        n_cells = min(int(n_cells), tr.shape[0])
        gen_cell, held_cell = _cells(tr, [x, hold_set.x - mean], n_cells, seed,
                                     kmeans_max_points)
        result.c_t = c_t_test(d1, gen_cell, held_dist, held_cell, n_cells, min_generated)
        result.mann_whitney = mann_whitney(d1, held_dist)
        result.flagged = bool(result.c_t.pvalue < alpha)
    return result
