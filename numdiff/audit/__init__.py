"""A memorisation audit of generated samples against their training set.

``audit(train, samples, holdout)`` measures, for every generated sample, its
nearest and second-nearest training points (exact distances, numdiff's
nearest-neighbour search in bounded memory), applies the ratio test of
:mod:`numdiff.metrics` and gives it a class; over the whole set it gives the
memorised fraction with a Wilson interval, the data-copying test ``C_T`` of
Meehan, Chaudhuri & Dasgupta (2020) with a verdict, and a Mann-Whitney
comparison of the generated-to-train and held-out-to-train distances.
``python -m numdiff.audit`` runs it on files and writes a report; ``docs/audit.md``
is the user's guide.

Classes (all thresholds are reported with the result)
-----------------------------------------------------
Let ``d1``, ``d2`` be a sample's nearest and second-nearest training
distances, ``r = d1 / d2`` and ``ref`` the *reference* distances, i.e. what
novel points look like: the held-out points' nearest training distances when a
held-out set is given, otherwise the leave-one-out nearest distances of up to
``n_reference`` training points (each to the rest of the training set).

* **memorised** (the set-level fraction, numdiff's metric): ``r < threshold``
  (default ``1/3``);
* **verbatim copy**: memorised *and* ``d1 <= t_verbatim``, by default the
  ``verbatim_quantile`` (0.001) quantile of ``ref``: as close to one training
  point as only one novel point in a thousand gets. "Verbatim" is relative to
  that threshold, not bit-identical: a copy plus noise smaller than the
  threshold is verbatim (``AuditResult.exact_copies`` counts ``d1 = 0``);
* **near copy** (subtle memorisation): not verbatim, and memorised *or*
  ``d1 < t_near``, by default the ``near_quantile`` (0.05) quantile of ``ref``:
  closer to the training set than 95% of novel points. A model that samples
  the data law itself therefore gets about 5% near copies by construction;
  :attr:`AuditResult.perfect_model` gives that count and its interval;
* **novel**: the rest.

The quantiles are ``numpy.quantile`` with linear interpolation. A user who
knows what distance makes a copy gives ``near_distance`` / ``verbatim_distance``
instead of the quantiles.

Distances are measured between the points themselves, or between features of
them (``train_features`` etc., or an ``.npz`` key ``features``): copy detection
on real images is done on embeddings, the images are then only shown.
"""

from __future__ import annotations

import numbers

import numpy as np

from .cells import DISTANCES, c_t_both
from .loading import AuditInputError, as_features, as_set, load_set
from .result import CLASSES, VERDICTS, AuditResult, verdict
from .search import CHUNK, TrainIndex
from .statistics import mann_whitney, perfect_model_count, wilson_interval

__all__ = ["CLASSES", "DISTANCES", "VERDICTS", "AuditInputError", "AuditResult", "audit",
           "classify"]


def _fraction(value, name, low=0.0, high=1.0):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {value!r}")
    if not low < value < high:
        raise ValueError(f"{name} must be in ({low}, {high}); got {value!r}")
    return float(value)


def _is_path(x):
    return isinstance(x, str) or hasattr(x, "__fspath__")


def _distance(value, name):
    """An absolute distance threshold: ``None`` or a finite real ``>= 0``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number or None; got {value!r}")
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be finite and >= 0; got {value!r}")
    return float(value)


def _count(value, name, low=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}; got {value!r}")
    return int(value)


def _read(x, name, like=None):
    if x is None:
        return None
    if _is_path(x):
        return load_set(x, name, like)
    return as_set(x, name)


def classify(memorized, d1, near_distance, verbatim_distance):
    """The class of each sample (the rules in this module's docstring).

    Parameters
    ----------
    memorized : ndarray of bool, shape (M,)
        The ratio test.
    d1 : ndarray, shape (M,)
        Nearest training distances.
    near_distance, verbatim_distance : float
        The thresholds ``t_near`` and ``t_verbatim``.

    Returns
    -------
    ndarray of int, shape (M,)
        Indices into :data:`CLASSES`.
    """
    verbatim = memorized & (d1 <= verbatim_distance)
    near = ~verbatim & (memorized | (d1 < near_distance))
    return np.where(verbatim, 2, np.where(near, 1, 0))




def _spaces(sets, features, copy):
    """The arrays distances are measured on, their kind, and whether ``train``'s is ours.

    ``sets``: the three :class:`LoadedSet` (holdout may be ``None``) with a flag
    saying whether each was read from a path; ``features``: the three feature
    arguments. Features, when given for one set (as an argument or an ``.npz``
    key), are needed for all.
    """
    names = ("train", "sample", "holdout")
    given = [f is not None or (s is not None and s.features is not None)
             for (s, _), f in zip(sets, features)]
    if not any(given):
        (tr, from_path), rest = sets[0], sets[1:]
        return [tr.x] + [None if s is None else s.x for s, _ in rest], "points", from_path
    out, train_ours = [], False
    for name, (s, from_path), f in zip(names, sets, features):
        arg = f"{name}_features"
        if s is None:
            if f is not None:
                raise AuditInputError(f"{arg}: given without a {name} set")
            out.append(None)
            continue
        if f is None and s.features is None:
            raise AuditInputError(f"{arg}: features were given for other sets, not for this one")
        if f is None:
            arr, ours = s.features, from_path
        elif _is_path(f):
            arr, ours = as_features(load_set(f, arg).x, s.x.shape[0], arg), True
        else:
            arr, ours = as_features(f, s.x.shape[0], arg), False
        out.append(arr)
        if name == "train":
            train_ours = ours
    return out, "features", train_ours or not copy


def audit(train, samples, holdout=None, *, threshold=1.0 / 3.0, near_quantile=0.05,
          verbatim_quantile=0.001, near_distance=None, verbatim_distance=None, alpha=0.05,
          level=0.95, distance="train", n_cells=None, min_generated=21, kmeans_n_init=10,
          partition_repeats=1, n_reference=2000, kmeans_max_points=20000, seed=0,
          chunk=CHUNK, progress=None, copy=True, train_features=None, sample_features=None,
          holdout_features=None):
    """Audit generated samples for memorisation of their training set.

    Parameters
    ----------
    train : array_like, shape (N, d), or path
        Training points (``N >= 2``), or a ``.npy`` / ``.npz`` file or a folder
        of images (see :func:`numdiff.audit.loading.load_set`).
    samples : array_like, shape (M, d), or path
        Generated points, ``M >= 1``.
    holdout : array_like, shape (n, d), or path, optional
        Points of the data law not used for training. Needed for ``C_T``, its
        verdict and the Mann-Whitney test, and used to calibrate the classes.
    threshold : float
        Ratio-test threshold in ``(0, 1]``; default ``1/3`` (numdiff.metrics).
    near_quantile, verbatim_quantile : float
        Quantiles of the reference distances for the near-copy and verbatim
        thresholds (see the module notes), in ``(0, 1)``.
    near_distance, verbatim_distance : float, optional
        Absolute thresholds (``>= 0``) replacing those quantiles.
    alpha : float
        Level of each side of the verdict (see :func:`numdiff.audit.result.verdict`).
    level : float
        Confidence level of the Wilson interval and of the perfect-model intervals.
    distance : {"train", "cell"}
        Distance of the reported ``C_T``: to the whole training set (numdiff's
        default) or to the training points of the point's own cell, with the
        continuity correction (the paper's companion code; see
        :mod:`numdiff.audit.cells`). Both are computed, on the same cells.
    n_cells : int, optional
        Cells of the k-means partition for ``C_T``; default
        ``clip(min(M, n) // 100, 1, 50)`` (at least 100 points of each set per cell on average).
    min_generated : int
        Generated points a cell needs to enter ``C_T``; 21 is the paper's
        companion code's rule (more than 20).
    kmeans_n_init : int
        k-means restarts (the best is kept): more restarts, cells that move less
        with the seed.
    partition_repeats : int
        Also compute ``C_T`` on the partitions of seeds ``seed + 1, ...,
        seed + partition_repeats - 1`` and report its spread.
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
        ``False``: the training array where distances are measured (the points,
        or the training features), when given as a float64 C-contiguous array
        (or :class:`~numdiff.audit.loading.LoadedSet`), is centred in place
        instead of copied, which halves the memory; ``result.extra`` says what
        was shifted. A set read from a path is never copied.
    train_features, sample_features, holdout_features : array_like or path, optional
        Features of each set, shapes ``(N, k)``, ``(M, k)``, ``(n, k)``: distances
        are then measured between features, and the points are only shown.
        Given for one set, they are needed for all (an ``.npz`` key ``features``
        counts).

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
    near_distance = _distance(near_distance, "near_distance")
    verbatim_distance = _distance(verbatim_distance, "verbatim_distance")
    alpha = _fraction(alpha, "alpha")
    level = _fraction(level, "level")
    if distance not in DISTANCES:
        raise ValueError(f"distance must be one of {DISTANCES}; got {distance!r}")
    min_generated = _count(min_generated, "min_generated")
    kmeans_n_init = _count(kmeans_n_init, "kmeans_n_init")
    partition_repeats = _count(partition_repeats, "partition_repeats")
    if n_cells is not None:
        n_cells = _count(n_cells, "n_cells")
    train_set = _read(train, "train")
    sample_set = _read(samples, "samples", train_set)
    hold_set = _read(holdout, "holdout", train_set)
    (tr, x, h), space, train_ours = _spaces(
        [(train_set, _is_path(train)), (sample_set, _is_path(samples)),
         (hold_set, _is_path(holdout))],
        (train_features, sample_features, holdout_features), copy)
    if tr.shape[0] < 2:
        raise AuditInputError(f"train: needs at least 2 points; got {tr.shape[0]}")
    what = "features" if space == "features" else "points"
    for name, arr in (("samples", x), ("holdout", h)):
        if arr is not None and arr.shape[1] != tr.shape[1]:
            raise AuditInputError(f"{name}: {what} have d = {arr.shape[1]}; the training "
                                  f"{what} have d = {tr.shape[1]}")
    # Our own centred float64 copy of the training set (none if the loader made it, or
    # if the caller allows centring in place).
    if copy and not train_ours:
        tr = tr.copy()
    mean = tr.mean(axis=0)
    tr -= mean
    index = TrainIndex(tr)
    x = x - mean
    idx, dist = index.query(x, 2, chunk=chunk, progress=progress, desc="samples")
    d1, d2 = dist[:, 0], dist[:, 1]
    ratio = np.divide(d1, d2, out=np.zeros_like(d1), where=d2 > 0)
    if h is not None:
        h = h - mean
        ref, ref_second = index.query(h, 2, chunk=chunk, progress=progress,
                                      desc="holdout")[1].T
        calibration = "holdout"
    else:
        rng = np.random.default_rng([seed, 1])
        rows = rng.choice(tr.shape[0], min(n_reference, tr.shape[0]), replace=False)
        ref, ref_second = index.leave_one_out(np.sort(rows), chunk=chunk, progress=progress,
                                              second=True)
        calibration = "train leave-one-out"
    ref_ratio = np.divide(ref, ref_second, out=np.zeros_like(ref), where=ref_second > 0)
    t_near = float(np.quantile(ref, near_quantile)) if near_distance is None else near_distance
    t_verb = (float(np.quantile(ref, verbatim_quantile)) if verbatim_distance is None
              else verbatim_distance)
    memorized = ratio < threshold
    classes = classify(memorized, d1, t_near, t_verb)
    # A perfect model's samples are exchangeable with the reference points: its class
    # counts follow from the reference's own classes under the same thresholds
    # (nan ratios, from a training set of 2, fail the ratio test).
    ref_classes = classify(ref_ratio < threshold, ref, t_near, t_verb)
    perfect = {}
    for i, name in enumerate(CLASSES):
        expected, interval = perfect_model_count(int(np.sum(ref_classes == i)), ref.size,
                                                 x.shape[0], level)
        perfect[name] = {"expected": expected, "interval": interval}
    count = int(memorized.sum())
    result = AuditResult(
        n_train=tr.shape[0], n_samples=x.shape[0],
        n_holdout=0 if h is None else h.shape[0], dim=tr.shape[1],
        nearest_index=idx[:, 0], nearest_distance=d1, second_distance=d2, ratio=ratio,
        classes=classes, reference_distance=ref, calibration=calibration,
        thresholds={"ratio": threshold, "near_distance": t_near, "verbatim_distance": t_verb,
                    "near_quantile": near_quantile, "verbatim_quantile": verbatim_quantile,
                    "near_source": "quantile" if near_distance is None else "absolute",
                    "verbatim_source": "quantile" if verbatim_distance is None else "absolute",
                    "near_reference_share": float(np.mean(ref < t_near)),
                    "verbatim_reference_share": float(np.mean(ref <= t_verb))},
        memorized_count=count, memorized_fraction=count / x.shape[0],
        memorized_interval=wilson_interval(count, x.shape[0], level), level=level,
        class_counts={name: int((classes == i).sum()) for i, name in enumerate(CLASSES)},
        alpha=alpha, image_shape=train_set.image_shape,
        extra={"train_mean": mean,
               "shown_train_shift": mean if tr is train_set.x else None},
        distance=distance, perfect_model=perfect, space=space,
        exact_copies=int(np.sum(d1 == 0)),
    )
    if h is not None:
        if n_cells is None:
            n_cells = int(np.clip(min(x.shape[0], h.shape[0]) // 100, 1, 50))
        n_cells = min(n_cells, tr.shape[0])
        spread = {name: {"statistic": [], "z": []} for name in DISTANCES}
        for repeat in range(partition_repeats):
            by_distance, cells = c_t_both(tr, x, h, d1, ref, n_cells, seed + repeat,
                                          n_init=kmeans_n_init, max_points=kmeans_max_points,
                                          min_generated=min_generated)
            if repeat == 0:
                result.c_t_by_distance, result.cells = by_distance, cells
            for name, res in by_distance.items():
                spread[name]["statistic"].append(res.statistic)
                spread[name]["z"].append(res.z)
        if partition_repeats > 1:
            result.partition_spread = {"seeds": [seed + r for r in range(partition_repeats)],
                                       **spread}
        result.c_t = result.c_t_by_distance[distance]
        result.mann_whitney = mann_whitney(d1, ref)
        result.verdict = verdict(result.c_t, alpha)
        result.flagged = result.verdict == VERDICTS[0]
    return result
