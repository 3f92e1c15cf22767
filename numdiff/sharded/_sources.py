"""The data argument of :class:`~numdiff.sharded.ShardedScore`, turned into
re-runnable Dask tasks that build one shard each.

Dask is imported here, inside functions, so that ``import numdiff`` works without it.
"""

from __future__ import annotations

from numdiff.sharded._worker import as_shard, load_shard

INSTALL_HINT = "pip install 'numdiff[dask]'"


def require_distributed():
    """The ``distributed`` module, or an ImportError saying how to install it."""
    try:
        import dask  # noqa: F401 - the delayed loaders need it too
        import distributed
    except ImportError as err:
        raise ImportError(f"ShardedScore needs dask.distributed: {INSTALL_HINT}") from err
    return distributed


def shard_tasks(data, schedule):
    """One ``dask.delayed`` task per shard that loads and validates it on a worker.

    Parameters
    ----------
    data : dask.array.Array, shape (N, d), or list
        A dask array (one shard per chunk along ``N``), or a list whose items are
        arrays ``(n_s, d)``, zero-argument callables returning one, or
        ``dask.delayed`` objects computing one.
    schedule : Schedule
        The forward process.

    Returns
    -------
    list of dask.delayed.Delayed
        In data order. Each keeps its source in the graph, so that Dask can rebuild
        a shard lost with its worker.

    Raises
    ------
    TypeError, ValueError
        Naming ``data`` or the shard (``data[i]``) at fault. In-memory arrays are
        checked here; loaded shards are checked on the workers.
    """
    import dask
    import dask.array as da
    from dask.delayed import Delayed

    # pure=False: every model gets its own keys, never another model's shards.
    build = dask.delayed(load_shard, pure=False)
    if isinstance(data, da.Array):
        return [
            build(chunk, schedule, f"data (chunk {i})")
            for i, chunk in enumerate(_row_chunks(data))
        ]
    if not isinstance(data, (list, tuple)):
        raise TypeError(
            "data must be a dask array of shape (N, d) or a list of shards (arrays, "
            f"callables or dask.delayed objects); got {type(data).__name__} (split one "
            "in-memory array with np.array_split)"
        )
    if len(data) == 0:
        raise ValueError("data must hold at least one shard; got an empty list")
    tasks = []
    dim = None
    for i, source in enumerate(data):
        name = f"data[{i}]"
        if not (isinstance(source, Delayed) or callable(source)):
            source = as_shard(source, name)
            if dim is not None and source.shape[1] != dim:
                raise ValueError(
                    f"{name} has d = {source.shape[1]} columns; the first array has {dim}"
                )
            dim = source.shape[1]
        tasks.append(build(source, schedule, name))
    return tasks


def _row_chunks(data):
    """The delayed row chunks of a dask array ``(N, d)``, one column chunk each."""
    if data.ndim != 2:
        raise ValueError(f"data must be 2-D of shape (N, d); got shape {data.shape}")
    if data.dtype.kind not in "iuf":
        raise TypeError(f"data must be real numbers; got dtype {data.dtype}")
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise ValueError(f"data must be non-empty; got shape {data.shape}")
    if data.numblocks[1] != 1:
        data = data.rechunk({1: -1})
    return list(data.to_delayed().ravel())
