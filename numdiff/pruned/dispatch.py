"""Choosing between the pruned and the dense path, and running the pruned one.

:class:`~numdiff.engines.dispatch.Dispatcher` calls :func:`moments`,
:func:`top_weights` and :func:`nearest` first, with the model's key set and
pruning mode; each returns ``False`` / ``None`` when it takes no
query, and the caller's dense code then runs on the whole input exactly as
without pruning. Otherwise the pruned kernel fills the queries it takes and the
dense code runs on the others (for the direct kernel per query bit for bit as in
a dense call; BLAS tiles see a different set of rows).

The estimate: the per-query bound scan counts the kept points before any
exponential, and a query keeping more than ``max_fraction * N`` of them goes to
the dense path. Before that, a call whose sample of queries (``GATE_SAMPLE``,
evenly spaced) would mostly go dense skips the pruned kernel altogether -- judged
first from the data's bounding box alone, then by the bound scan -- and the index
is only built for a call with enough queries to repay it.
"""

from __future__ import annotations

import numpy as np

from numdiff.pruned.bounds import SKIP_MASS, selection_levels
from numdiff.pruned.index import build_index, default_leaf_size
from numdiff.pruned.knn import pruned_knn
from numdiff.pruned.moments import QUERY_GROUP, pruned_moments
from numdiff.pruned.survey import survey
from numdiff.pruned.top import pruned_top_weights

MODES = ("auto", "off", "always")
# Kept fraction of N above which a query is cheaper dense (benchmarks/bench_pruned.py,
# the crossover sweep): the direct kernel costs the same per point pruned or dense;
# the BLAS path (d > 16) is several times cheaper per point than direct differences.
MAX_FRACTION_DIRECT = 0.5
MAX_FRACTION_BLAS = 0.1
# Points the exact nearest-neighbour search may scan, as a fraction of N: the
# dense search ranks by direct differences for d <= 16, by BLAS beyond.
MAX_FRACTION_KNN_DIRECT = 0.25
MAX_FRACTION_KNN_BLAS = 0.02
# Queries sampled to decide whether a call tries the pruned kernel at all, and the
# share of them that must go pruned.
GATE_SAMPLE = 32
GATE_SHARE = 0.125
# The first pruned call builds the index (about the cost of this many dense
# queries); calls with fewer queries stay dense until an index exists.
BUILD_QUERIES = 128
# Data points per merge block (the dense kernel's DIRECT_BLOCK).
BLOCK = 1024


def check_mode(mode):
    """``mode`` (a model's ``pruning`` setting), validated."""
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"pruning must be one of {MODES}; got {mode!r}")
    return mode


def index_of(score, leaf_size=None):
    """The :class:`~numdiff.pruned.index.LeafIndex` of a model's keys, built on first use.

    Parameters
    ----------
    score : EmpiricalScore or KeySet
        A model (its ``keys``) or a :class:`~numdiff.engines.keys.KeySet`.
    leaf_size : int, optional
        Rebuild with this many points per leaf at most (default: keep the index,
        or build it with :func:`~numdiff.pruned.index.default_leaf_size`).

    Returns
    -------
    LeafIndex
    """
    keys = getattr(score, "keys", score)
    index = keys.pruned_index
    if index is None or leaf_size is not None:
        index = build_index(keys.data, leaf_size)
        keys.pruned_index = index
    return index


def _tree(index):
    """The kernels' view of the index and the selection levels of its leaf counts."""
    tree = index.arrays()
    return tree, selection_levels(SKIP_MASS, tree.leaf_weight)


def _usable(keys, n_query, mode):
    """Whether the pruned path may be tried at all."""
    if mode == "off" or n_query == 0:
        return False
    if mode == "always":
        return True
    if keys.pruned_index is None:
        return n_query >= BUILD_QUERIES and keys.n_data > 2 * default_leaf_size(keys.dim)
    return index_of(keys).n_leaves > 1


def _all_kept(keys, x, alpha, sigma2):
    """Whether most sampled queries certainly keep every point, from the data's
    bounding box alone (no index): every logit is then within ``log 2^-60 + 1`` of
    the largest, ``|x - alpha y|^2 / (2 sigma2)`` being below that for every ``y``
    in the box. Large ``sigma2`` (the first steps of a sampler) thus costs no
    index and no survey."""
    box = keys.pruned_box
    if box is None:
        box = keys.pruned_box = (keys.data.min(axis=0), keys.data.max(axis=0))
    rows = _gate_sample(x.shape[0])
    a = alpha[rows, None]
    with np.errstate(over="ignore"):
        far = np.maximum(np.abs(x[rows] - a * box[0]), np.abs(x[rows] - a * box[1]))
        nats = np.sum(far * far, axis=1) / (2.0 * sigma2[rows])
    return np.mean(nats <= -np.log(SKIP_MASS) - 1.0) > 1.0 - GATE_SHARE


def query_order(leaf):
    """Queries sorted by their region leaf ``leaf (M,)``, in groups of
    ``QUERY_GROUP`` whose order is shuffled (a fixed seed) so that threads share
    the work evenly."""
    order = np.argsort(leaf, kind="stable")
    n_groups = -(-order.size // QUERY_GROUP)
    groups = np.random.default_rng(0).permutation(n_groups)
    pos = (groups[:, None] * QUERY_GROUP + np.arange(QUERY_GROUP)).ravel()
    return order[pos[pos < order.size]]


def _data_coordinates(x, alpha):
    with np.errstate(over="ignore"):
        return x / alpha[:, None]


def _coefficients(keys, x, alpha, sigma2):
    scale, coef, mant, expo = keys.scales(x, alpha, sigma2)
    with np.errstate(over="ignore", divide="ignore"):
        # coef / a_s = 1 / (2 sigma2 s^2); clamped downwards, which only raises the
        # (negative) logit bounds.
        k_s = np.minimum(coef / (alpha * scale), np.finfo(np.float64).max)
    return scale, coef, k_s, mant, expo


def _max_points(keys, mode, fraction):
    return np.inf if mode == "always" else fraction * keys.n_data


def _gate_sample(n_query):
    """Up to ``GATE_SAMPLE`` query rows, evenly spaced."""
    return np.unique(np.linspace(0, n_query - 1, min(n_query, GATE_SAMPLE)).astype(np.int64))


def _gate(index, x, alpha, scale, k_s, first, max_points):
    """Whether enough of a sample of the queries would go pruned."""
    sample = _gate_sample(x.shape[0])
    kept = survey(x, alpha, scale, k_s, sample, first, *_tree(index), max_points)
    return np.mean(kept <= max_points) >= GATE_SHARE


def kept_points(score, t, x):
    """Points the certified bound keeps for each query (a diagnostic).

    Parameters
    ----------
    score : EmpiricalScore
    t : float or array_like, shape (M,)
        Times in ``(0, schedule.t_max]``.
    x : array_like, shape (M, d)
        Queries.

    Returns
    -------
    ndarray, shape (M,)
        The number of data points in the kept leaves (``inf`` where nothing is
        certified: ``alpha_t`` times the query's scale below the smallest normal).
    """
    x, alpha, sigma2 = score._prepare(t, x)
    index = index_of(score)
    scale, _, k_s, _, _ = _coefficients(score.keys, x, alpha, sigma2)
    first = index.leaf_of(_data_coordinates(x, alpha))
    rows = np.arange(x.shape[0], dtype=np.int64)
    return survey(x, alpha, scale, k_s, rows, first, *_tree(index), np.inf)


def moments(keys, mode, dense, x, alpha, sigma2, denoised, logsum, resid):
    """Pruned first moments (:meth:`Dispatcher.moments <numdiff.engines.dispatch.Dispatcher.moments>`) where it pays; ``dense`` on the rest.

    Parameters
    ----------
    keys : KeySet
        The model's keys (:class:`~numdiff.engines.keys.KeySet`).
    mode : {"auto", "off", "always"}
        The model's ``pruning`` setting.
    dense : callable
        ``dense(x, alpha, sigma2, denoised, logsum, resid)``, the dense path.
    x : ndarray, shape (M, d)
    alpha, sigma2 : ndarray, shape (M,)
    denoised, resid : ndarray, shape (M, d)
    logsum : ndarray, shape (M,)
        Outputs, as for the dense path.

    Returns
    -------
    bool
        False when no query was taken (the caller runs ``dense`` on everything).
    """
    mode = check_mode(mode)
    if not _usable(keys, x.shape[0], mode) or (
        mode == "auto" and _all_kept(keys, x, alpha, sigma2)
    ):
        return False
    index = index_of(keys)
    fraction = MAX_FRACTION_DIRECT if keys.dim <= 16 else MAX_FRACTION_BLAS
    max_points = _max_points(keys, mode, fraction)
    scale, coef, k_s, mant, expo = _coefficients(keys, x, alpha, sigma2)
    first = index.leaf_of(_data_coordinates(x, alpha))
    if mode == "auto" and not _gate(index, x, alpha, scale, k_s, first, max_points):
        return False
    taken = np.zeros(x.shape[0], dtype=bool)
    u2 = np.empty(x.shape[0])
    pruned_moments(
        x, alpha, scale, coef, k_s, query_order(first), first, *_tree(index), max_points, BLOCK, denoised, logsum, u2,
        resid, taken,
    )
    if not taken.any():
        return False
    with np.errstate(over="ignore"):
        logsum[taken] -= np.ldexp(u2[taken] * mant[taken], expo[taken])
    rest = np.flatnonzero(~taken)
    if rest.size:
        out = [denoised[rest], logsum[rest], resid[rest]]
        dense(x[rest], alpha[rest], sigma2[rest], *out)
        denoised[rest], logsum[rest], resid[rest] = out
    return True


def top_weights(keys, mode, dense, x, alpha, sigma2, k):
    """Pruned :meth:`EmpiricalScore.top_weights` where it pays; ``dense`` on the rest.

    Parameters
    ----------
    keys : KeySet
        The model's keys (:class:`~numdiff.engines.keys.KeySet`).
    mode : {"auto", "off", "always"}
        The model's ``pruning`` setting.
    dense : callable
        ``dense(x, alpha, sigma2, k) -> (index, weight)``, the dense path.
    x : ndarray, shape (M, d)
    alpha, sigma2 : ndarray, shape (M,)
    k : int

    Returns
    -------
    (index, weight) : ndarray of int64 and ndarray, both of shape (M, k), or None
        None when no query was taken.
    """
    mode = check_mode(mode)
    if not _usable(keys, x.shape[0], mode) or (
        mode == "auto" and _all_kept(keys, x, alpha, sigma2)
    ):
        return None
    index = index_of(keys)
    max_points = _max_points(keys, mode, MAX_FRACTION_DIRECT)
    scale, coef, k_s, _, _ = _coefficients(keys, x, alpha, sigma2)
    first = index.leaf_of(_data_coordinates(x, alpha))
    if mode == "auto" and not _gate(index, x, alpha, scale, k_s, first, max_points):
        return None
    idx = np.empty((x.shape[0], k), dtype=np.int64)
    weight = np.empty((x.shape[0], k))
    taken = np.zeros(x.shape[0], dtype=bool)
    pruned_top_weights(
        x, alpha, scale, coef, k_s, query_order(first), first, *_tree(index), max_points, BLOCK, idx, weight, taken,
    )
    if not taken.any():
        return None
    rest = np.flatnonzero(~taken)
    if rest.size:
        idx[rest], weight[rest] = dense(x[rest], alpha[rest], sigma2[rest], k)
    return idx, weight


def nearest(keys, mode, dense, x, k):
    """Exact k nearest data points through the index where it pays; ``dense`` on the rest.

    Parameters
    ----------
    keys : KeySet
        The model's keys (:class:`~numdiff.engines.keys.KeySet`).
    mode : {"auto", "off", "always"}
        The model's ``pruning`` setting.
    dense : callable
        ``dense(x, k) -> (idx, dist)``, the dense search.
    x : ndarray, shape (M, d)
    k : int

    Returns
    -------
    (idx, dist) : ndarray of int64 and ndarray, both of shape (M, k), or None
        As :meth:`EmpiricalScore.nearest`; None when no query was taken.
    """
    mode = check_mode(mode)
    if not _usable(keys, x.shape[0], mode):
        return None
    index = index_of(keys)
    fraction = MAX_FRACTION_KNN_DIRECT if keys.dim <= 16 else MAX_FRACTION_KNN_BLAS
    max_points = _max_points(keys, mode, fraction)
    top = np.maximum(np.abs(x).max(axis=1, initial=0.0), keys.absmax)
    # s = 2^-e with 2^(e-1) <= top < 2^e: scaled coordinates below 1, exactly.
    scale = np.ldexp(1.0, -np.frexp(np.where(top > 0, top, 1.0))[1])
    first = index.leaf_of(x)
    idx = np.empty((x.shape[0], k), dtype=np.int64)
    sq = np.zeros((x.shape[0], k))  # rows not taken stay 0 until the dense search fills them
    taken = np.zeros(x.shape[0], dtype=bool)
    order = query_order(first)
    if mode == "auto":
        # The sample's answers are kept; the rest runs only if enough were taken.
        sample = _gate_sample(x.shape[0])
        pruned_knn(x, scale, sample, first, index.arrays(), max_points, BLOCK, idx, sq, taken)
        if np.mean(taken[sample]) < GATE_SHARE:
            return None
        order = order[~np.isin(order, sample)]
    pruned_knn(x, scale, order, first, index.arrays(), max_points, BLOCK, idx, sq, taken)
    if not taken.any():
        return None
    dist = np.sqrt(sq) / scale[:, None]
    rest = np.flatnonzero(~taken)
    if rest.size:
        idx[rest], dist[rest] = dense(x[rest], k)
    return idx, dist
