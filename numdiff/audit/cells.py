"""The k-means cells of ``C_T`` and the two distances it can be computed with.

``C_T`` (see :mod:`numdiff.audit.statistics`) compares, cell by cell, how far
generated and held-out points lie from the training set. Two readings of
"how far" exist, and :func:`c_t_both` computes both on the same cells:

* ``distance="train"`` (numdiff's default): ``L`` is the distance to the
  nearest point of the *whole* training set, as in the paper's definition of
  ``L``; each ``Z_U`` without continuity correction;
* ``distance="cell"`` (the reference): ``L_pi`` is the distance to the nearest
  training point *of the point's own cell*, and each ``Z_U`` carries the
  continuity correction, as in the paper's companion code
  (github.com/casey-meehan/data-copying). Its ``C_T`` is the one published
  values were computed with.

The two differ for points whose nearest training point lies in another cell:
such a point's ``L_pi`` is larger than its ``L``, by an amount that depends on
where the cell boundaries fall. The partition is k-means on the (centred)
training set with ``n_init`` restarts (scikit-learn keeps the best of them),
seeded, so that the same inputs and seed give the same cells.
"""

from __future__ import annotations

import numpy as np

from .search import TrainIndex
from .statistics import c_t_test

__all__ = ["DISTANCES", "c_t_both", "cell_nearest_distance", "partition"]

#: The values of ``distance``: numdiff's default first.
DISTANCES = ("train", "cell")


def partition(train, queries, n_cells, seed, n_init=10, max_points=20000):
    """k-means cells of the training set, and the cell of each training point and query.

    Parameters
    ----------
    train : ndarray, shape (N, d)
        Training points.
    queries : list of ndarray, each shape (M_i, d)
        Sets to assign to the cells.
    n_cells : int
        Number of cells, ``1 <= n_cells <= N``.
    seed : int
        Seed of the subsample and of the k-means initialisations.
    n_init : int
        k-means restarts; the fit with the smallest inertia is kept.
    max_points : int
        The fit uses at most this many training points, drawn at random.

    Returns
    -------
    train_cell : ndarray of int, shape (N,)
    query_cells : list of ndarray of int, shapes (M_i,)
    """
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    fit = train if train.shape[0] <= max_points else train[
        np.sort(rng.choice(train.shape[0], max_points, replace=False))]
    km = KMeans(n_clusters=n_cells, n_init=n_init, random_state=int(rng.integers(2**31)))
    km.fit(fit)
    return km.predict(train), [km.predict(q) for q in queries]


def cell_nearest_distance(train, train_cell, queries):
    """Distance of each point to the nearest training point of its own cell.

    Parameters
    ----------
    train : ndarray, shape (N, d)
        Training points (C-contiguous float64, centred like the queries).
    train_cell : ndarray of int, shape (N,)
    queries : list of (ndarray, shape (M_i, d), ndarray of int, shape (M_i,))
        Sets of points and their cells; each cell's training points are prepared
        once for all the sets.

    Returns
    -------
    list of ndarray, shapes (M_i,)
        ``inf`` for a point whose cell holds no training point (k-means cells
        always hold one; the case is kept defined for any labels).
    """
    out = [np.full(x.shape[0], np.inf) for x, _ in queries]
    for c in np.unique(np.concatenate([x_cell for _, x_cell in queries])):
        members = train_cell == c
        if not members.any():
            continue
        # One cell's training points at a time: the copy is a cell, not the set.
        index = TrainIndex(np.ascontiguousarray(train[members]), centred=False)
        for (x, x_cell), dist in zip(queries, out, strict=True):
            rows = np.flatnonzero(x_cell == c)
            if rows.size:
                dist[rows] = index.query(np.ascontiguousarray(x[rows]), 1, progress=False)[1][:, 0]
    return out


def c_t_both(train, x, holdout, gen_dist, held_dist, n_cells, seed, *, n_init=10,
             max_points=20000, min_generated=21):
    """``C_T`` with both distances on one seeded partition.

    Parameters
    ----------
    train : ndarray, shape (N, d)
        Centred training points (C-contiguous float64).
    x : ndarray, shape (M, d)
        Generated points, centred like ``train``.
    holdout : ndarray, shape (n, d)
        Held-out points, centred like ``train``.
    gen_dist, held_dist : ndarray, shapes (M,), (n,)
        Their distances to the whole training set.
    n_cells, seed, n_init, max_points : see :func:`partition`.
    min_generated : int
        Generated points a cell needs to enter ``C_T``.

    Returns
    -------
    by_distance : dict
        ``"train"`` and ``"cell"`` -> :class:`~numdiff.audit.statistics.CTResult`.
    cells : dict
        ``"train"``, ``"samples"``, ``"holdout"`` -> cell labels (int arrays).
    """
    train_cell, (gen_cell, held_cell) = partition(train, [x, holdout], n_cells, seed, n_init,
                                                  max_points)
    gen_cell_dist, held_cell_dist = cell_nearest_distance(
        train, train_cell, [(x, gen_cell), (holdout, held_cell)])
    by_distance = {
        "train": c_t_test(gen_dist, gen_cell, held_dist, held_cell, n_cells, min_generated),
        "cell": c_t_test(gen_cell_dist, gen_cell, held_cell_dist, held_cell, n_cells,
                         min_generated, continuity_correction=True),
    }
    return by_distance, {"train": train_cell, "samples": gen_cell, "holdout": held_cell}
