"""On-disk cache of finished cells: ``OUT/cells/<study>/<key>.json``.

Each cell's result is written atomically (temporary file in the same folder,
then ``os.replace``) the moment it completes, so an interrupted run keeps every
finished cell and a rerun with the same output folder recomputes none of them.
The key hashes the cell's function name, configuration and seed: changing any
of them gives a new key. Code changes are not part of the key; start a fresh
output folder after changing a study's code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def jsonable(obj):
    """Convert ``obj`` to plain JSON types (numpy arrays and scalars, tuples).

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


def cell_key(study: str, func_name: str, config: dict, seed: int) -> str:
    """Hex key of a cell: SHA-256 of its study, function, configuration and seed."""
    text = canonical({"study": study, "func": func_name, "config": config, "seed": seed})
    return hashlib.sha256(text.encode()).hexdigest()[:24]


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
        return self.folder / f"{key}.json"

    def load(self, key: str):
        """The stored record of ``key``, or ``None`` if absent or unreadable."""
        try:
            with open(self.path(key)) as fh:
                record = json.load(fh)
        except (FileNotFoundError, json.JSONDecodeError):
            # A torn file cannot come from store() (it replaces atomically), but a
            # hand-edited or truncated one is recomputed rather than trusted.
            return None
        return record if isinstance(record, dict) and "result" in record else None

    def store(self, key: str, record: dict) -> None:
        """Write ``record`` atomically as ``<key>.json``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(jsonable(record), sort_keys=True, indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path(key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
