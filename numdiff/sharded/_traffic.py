"""Bytes a Dask cluster has moved, read from Dask's own counters (for checking that a
call moves queries and results only, never data)."""

from __future__ import annotations

from typing import NamedTuple


class Traffic(NamedTuple):
    """Cumulative bytes since the cluster started (differences give a call's share).

    Parameters
    ----------
    client_to_scheduler : int
        The client's batched stream: task graphs, including the queries.
    scheduler_to_workers : int
        The scheduler's batched streams to the workers: tasks with their arguments.
    workers_to_scheduler : int
        The workers' batched streams: task states and small messages.
    worker_data_out : int
        Results and shards served by workers (to the client's gather or to other
        workers), as counted by each worker's ``transfer_outgoing_bytes_total``.
    """

    client_to_scheduler: int
    scheduler_to_workers: int
    workers_to_scheduler: int
    worker_data_out: int

    @property
    def total(self):
        """Sum of the four counters, bytes."""
        return sum(self)

    def __sub__(self, other):
        return Traffic(*(a - b for a, b in zip(self, other)))


def traffic(client):
    """The cluster's byte counters now.

    Parameters
    ----------
    client : distributed.Client
        Connected over TCP: in-process (``inproc://``) comms count messages, not bytes.

    Returns
    -------
    Traffic
        Workers that have left take their counts with them.
    """
    per_worker = client.run(_worker_counters)
    return Traffic(
        client_to_scheduler=client.scheduler_comm.byte_count,
        scheduler_to_workers=client.run_on_scheduler(_scheduler_counter),
        workers_to_scheduler=sum(sent for sent, _ in per_worker.values()),
        worker_data_out=sum(out for _, out in per_worker.values()),
    )


def _scheduler_counter(dask_scheduler):
    return sum(stream.byte_count for stream in dask_scheduler.stream_comms.values())


def _worker_counters(dask_worker):
    return dask_worker.batched_stream.byte_count, dask_worker.transfer_outgoing_bytes_total
