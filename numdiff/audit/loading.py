"""Reading the three sets of an audit: arrays (``.npy`` / ``.npz``) or folders of images.

Every set becomes a C-contiguous float64 array of shape ``(n, d)``. Images are
read with Pillow, converted to one mode (``"L"`` or ``"RGB"``, chosen from the
training set) and scaled by ``1/255``; arrays are taken as they are. The same
conversion is applied to the training, generated and held-out sets, so their
distances are comparable. Every failure raises :class:`AuditInputError` naming
the set and, where there is one, the file.

Features. An ``.npz`` file may hold two arrays, one of them named
``features``: the points are then the other array (shown in the gallery) and
the audit measures distances between the ``features`` rows (one per point),
e.g. embeddings of the images by a copy-detection or self-supervised network
(see ``docs/audit.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["AuditInputError", "LoadedSet", "as_features", "as_set", "load_set"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class AuditInputError(ValueError):
    """An input set that cannot be audited: unreadable, empty, mis-shaped or non-finite."""


@dataclass
class LoadedSet:
    """One set of points, flattened.

    Parameters
    ----------
    x : ndarray, shape (n, d)
        The points, float64.
    image_shape : tuple of int or None
        ``(height, width)`` or ``(height, width, 3)`` when the points are images.
    names : list of str or None
        File names, one per point, for sets read from folders.
    features : ndarray, shape (n, k), or None
        A representation of each point in which the audit measures distances
        instead of ``x`` (``x`` is then only shown).
    """

    x: np.ndarray
    image_shape: tuple | None = None
    names: list | None = None
    features: np.ndarray | None = None


def _finite_points(arr, name):
    """Check a numeric array of points and return it as float64 ``(n, d)``."""
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise AuditInputError(f"{name}: expected a real numeric array; got dtype {arr.dtype}")
    if arr.ndim < 2:
        raise AuditInputError(f"{name}: expected an array of shape (n, d); got shape {arr.shape}")
    if arr.size == 0:
        raise AuditInputError(f"{name}: the set is empty (shape {arr.shape})")
    image_shape = tuple(arr.shape[1:]) if arr.ndim in (3, 4) else None
    arr = np.ascontiguousarray(arr.reshape(arr.shape[0], -1), dtype=np.float64)
    if not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr).all(axis=1)))
        raise AuditInputError(f"{name}: {bad} point(s) hold NaN or infinite values")
    return arr, image_shape


def as_set(x, name):
    """An in-memory array as a :class:`LoadedSet`.

    Parameters
    ----------
    x : array_like, shape (n, d) or (n, h, w[, c])
        Points; higher-dimensional points are flattened (and kept as images).
    name : str
        The set's name for error messages (``"train"``, ``"samples"``, ``"holdout"``).

    Returns
    -------
    LoadedSet
    """
    if isinstance(x, LoadedSet):
        return x
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as err:
        raise AuditInputError(f"{name}: cannot be read as an array ({err})") from None
    if arr.dtype == bool:
        raise AuditInputError(f"{name}: expected a real numeric array; got dtype bool")
    arr, image_shape = _finite_points(arr, name)
    return LoadedSet(arr, image_shape)


def _load_array(path, name):
    features = None
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                points = [k for k in keys if k != "features"]
                if len(points) != 1 or len(keys) > 2:
                    raise AuditInputError(
                        f"{name}: {path} must hold exactly one array of points, optionally "
                        f"with one named 'features'; it holds {keys}")
                arr = z[points[0]]
                if "features" in keys:
                    features = z["features"]
        else:
            arr = np.load(path, allow_pickle=False)
    except AuditInputError:
        raise
    except (OSError, ValueError, EOFError) as err:
        raise AuditInputError(f"{name}: cannot read {path} ({err})") from None
    arr, image_shape = _finite_points(arr, f"{name} ({path})")
    if features is not None:
        features = as_features(features, arr.shape[0], f"{name} features ({path})")
    return LoadedSet(arr, image_shape, features=features)


def as_features(features, n_points, name):
    """Check a feature array: real, finite, shape ``(n_points, k)``.

    Parameters
    ----------
    features : array_like, shape (n_points, k)
        One row per point (higher-dimensional rows are flattened).
    n_points : int
        Number of points the features describe.
    name : str
        Name for error messages.

    Returns
    -------
    ndarray, shape (n_points, k)
        C-contiguous float64.
    """
    try:
        arr = np.asarray(features)
    except (TypeError, ValueError) as err:
        raise AuditInputError(f"{name}: cannot be read as an array ({err})") from None
    if arr.dtype == bool:
        raise AuditInputError(f"{name}: expected a real numeric array; got dtype bool")
    arr, _ = _finite_points(arr, name)
    if arr.shape[0] != n_points:
        raise AuditInputError(f"{name}: {arr.shape[0]} rows for {n_points} points")
    return arr


def _load_images(folder, name, mode=None, size=None):
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise AuditInputError(f"{name}: no PNG or JPEG image in {folder}")
    rows = []
    for path in files:
        try:
            with Image.open(path) as img:
                img.load()
                if mode is None:
                    mode = "L" if img.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
                arr = np.asarray(img.convert(mode), dtype=np.float64) / 255.0
        except (OSError, UnidentifiedImageError, ValueError) as err:
            raise AuditInputError(f"{name}: cannot read image {path} ({err})") from None
        if size is None:
            size = arr.shape
        if arr.shape != size:
            raise AuditInputError(
                f"{name}: image {path} has shape {arr.shape}; expected {size} like the others")
        rows.append(arr.reshape(-1))
    return LoadedSet(np.ascontiguousarray(rows), tuple(size), [p.name for p in files])


def load_set(path, name, like=None):
    """Read a set from a ``.npy`` / ``.npz`` file or a folder of PNG / JPEG images.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.npy`` file (an array ``(n, d)``, or ``(n, h, w[, c])`` taken as
        images), an ``.npz`` file holding exactly one such array (and
        optionally a second one named ``features``, shape ``(n, k)``), or a folder.
    name : str
        The set's name for error messages.
    like : LoadedSet, optional
        A set already read (the training set): a folder of images is then
        converted to its colour mode and must have its image size.

    Returns
    -------
    LoadedSet

    Raises
    ------
    AuditInputError
        A missing or unreadable file, an empty set, a non-numeric or
        non-finite array, images of different sizes.
    """
    path = Path(path)
    if not path.exists():
        raise AuditInputError(f"{name}: {path} does not exist")
    if path.is_dir():
        mode = size = None
        if like is not None and like.image_shape is not None:
            size = like.image_shape
            mode = "RGB" if len(size) == 3 else "L"
        return _load_images(path, name, mode, size)
    if path.suffix.lower() in (".npy", ".npz"):
        return _load_array(path, name)
    raise AuditInputError(f"{name}: {path} is neither a .npy / .npz file nor a folder of images")
