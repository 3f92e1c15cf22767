"""On-disk cache of finished cells: ``OUT/cells/<study>/<key>.json``.

Each cell's result is written atomically (temporary file in the same folder,
then ``os.replace``) the moment it completes, so an interrupted run keeps every
finished cell and a rerun with the same output folder recomputes none of them.

The key hashes the cell's function name, configuration and seed, and the code
that computes it: the sources of ``numdiff``, ``theory`` and ``validation``
(:func:`source_hash`) and the versions of numpy, numba and scipy
(:func:`code_fingerprint`). A rerun after any change to that code recomputes
every cell: the cache never serves a result computed by other code.

A cell file that cannot be read back as a record with a result (torn, edited,
``{"result": null}``, another cell's record) is a miss, not a hit.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np

#: Packages whose Python sources enter every cell key.
PACKAGES = ("numdiff", "theory", "validation")
#: Libraries whose installed versions enter every cell key.
LIBRARIES = ("numpy", "numba", "scipy")


def jsonable(obj):
    """Convert ``obj`` to plain JSON types (numpy arrays and scalars, tuples).

    Parameters
    ----------
    obj : object
        Nested dicts (string keys), lists, tuples, numpy arrays and scalars,
        Python numbers, strings and ``None``.

    Returns
    -------
    object
        The same structure in plain Python types.

    Raises
    ------
    TypeError
        If ``obj`` holds something JSON cannot represent (names its type).
    """
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"cell results need string dict keys, got {k!r}")
            out[k] = jsonable(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise TypeError(f"cell results must be JSON-serialisable, got {type(obj).__name__}")


def canonical(obj) -> str:
    """Deterministic JSON text of ``obj`` (sorted keys, no whitespace)."""
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"))


def package_folder(name: str) -> Path:
    """Folder of the importable package ``name`` (found without importing it).

    Raises
    ------
    ValueError
        If ``name`` is not an importable package (names it).
    """
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"`name` must be an importable package, got {name!r}")
    return Path(next(iter(spec.submodule_search_locations)))


def source_hash(folders) -> str:
    """SHA-256 of the ``*.py`` files under ``folders``: their relative paths and contents.

    Parameters
    ----------
    folders : dict
        Label -> folder. Paths are taken relative to each folder and prefixed
        with its label, so the hash does not depend on where the tree lives.

    Returns
    -------
    str
        Hex digest. Editing, adding, removing or renaming a source file changes it.
    """
    digest = hashlib.sha256()
    files = sorted(
        (f"{label}/{path.relative_to(folder).as_posix()}", path)
        for label, folder in folders.items()
        for path in Path(folder).rglob("*.py")
    )
    for rel, path in files:
        # Length-prefixed so that no two different trees give the same byte stream.
        data = path.read_bytes()
        for part in (rel.encode(), data):
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
    return digest.hexdigest()


def library_version(name: str) -> str:
    """Installed version of ``name``, or ``"absent"`` when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


@functools.cache
def code_fingerprint() -> dict:
    """What identifies the code computing the cells, computed once per process.

    Returns
    -------
    dict
        ``sources``: :func:`source_hash` of :data:`PACKAGES`; ``versions``: the
        installed versions of :data:`LIBRARIES`; ``hash``: a digest of both,
        which enters every cell key.
    """
    sources = source_hash({name: package_folder(name) for name in PACKAGES})
    versions = {name: library_version(name) for name in LIBRARIES}
    text = canonical({"sources": sources, "versions": versions})
    return {"hash": hashlib.sha256(text.encode()).hexdigest(), "sources": sources,
            "versions": versions}


def cell_key(study: str, func_name: str, config: dict, seed: int, code: str | None = None) -> str:
    """Hex key of a cell.

    Parameters
    ----------
    study, func_name : str
        The owning study and the cell function's qualified name.
    config : dict
        The cell's configuration.
    seed : int
        The cell's seed.
    code : str, optional
        Code hash; by default ``code_fingerprint()["hash"]``, the running code.

    Returns
    -------
    str
        SHA-256 prefix of all of the above.
    """
    code = code_fingerprint()["hash"] if code is None else code
    text = canonical({"study": study, "func": func_name, "config": config, "seed": seed,
                      "code": code})
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a temporary file in its folder, then replace.

    A reader (or a rerun after a kill) sees the old file or the new one, never
    a torn one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates the file readable by its owner only; a report is meant to be
        # shared, so it gets the mode an ordinary open() would give it under the umask.
        os.chmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CellCache:
    """Finished cells of one study, one JSON file per cell.

    Parameters
    ----------
    root : path-like
        The run's output folder ``OUT``; files go to ``OUT/cells/<study>/``.
    study : str
        Study name.
    """

    def __init__(self, root, study: str):
        self.folder = Path(root) / "cells" / study

    def path(self, key: str) -> Path:
        """File of the cell ``key``."""
        return self.folder / f"{key}.json"

    def load(self, key: str, expect: dict | None = None):
        """The stored record of ``key``, or ``None`` when there is no usable one.

        Parameters
        ----------
        key : str
            Cell key.
        expect : dict, optional
            Fields the record must carry with these values (e.g. the cell's
            label and seed); a record that differs is another cell's, a miss.

        Returns
        -------
        dict or None
            ``None`` if the file is absent, unparseable, not a JSON object,
            has no result or a ``null`` one, or does not match ``expect``.
        """
        try:
            with open(self.path(key)) as fh:
                record = json.load(fh)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            # A torn file cannot come from store() (it replaces atomically), but a
            # hand-edited, truncated or undecodable one is recomputed, not trusted.
            return None
        if not isinstance(record, dict) or record.get("result") is None:
            # {"result": null} once made a study vanish: a cell without a result
            # is a miss, never a finished cell.
            return None
        if expect and any(record.get(k) != jsonable(v) for k, v in expect.items()):
            return None
        return record

    def store(self, key: str, record: dict) -> None:
        """Write ``record`` atomically as ``<key>.json``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path(key), json.dumps(jsonable(record), sort_keys=True, indent=1))
