"""Replicate trials on a Dask cluster: chunks of replicates run as tasks on the workers of a
`dask.distributed` scheduler (a local cluster by default, or the one at `--scheduler ADDRESS`).

A replicate's numbers come only from its own streams (`simulation.streams`: SeedSequence of
(seed, replicate, ...)), so the rows are identical whatever the scheduler, the number of
workers and the chunk size; `run_replicates` computes the same rows in this process. Each
worker process builds its decision tables once and keeps them for every chunk it runs.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from dask.distributed import Client, LocalCluster, as_completed

from startrt.protocol.definition import Protocol, default_protocol
from startrt.simulation.parameters import Parameters
from startrt.simulation.replicates import (
    DEFAULT_CHUNK,
    Progress,
    check_run,
    chunks,
    replicate_table,
    run_chunk,
)
from startrt.simulation.streams import check_seed

DEFAULT_WORKERS = 2


def run_distributed(
    parameters: Parameters,
    seed: int,
    replicates: int,
    protocol: Protocol | None = None,
    *,
    scheduler: str | None = None,
    workers: int = DEFAULT_WORKERS,
    processes: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Rows of replicates 0..replicates-1 computed by Dask workers.

    With `scheduler` (an address such as tcp://10.0.0.5:8786) the chunks go to that cluster;
    otherwise to a local cluster of `workers` single-threaded workers (processes, or threads
    of this process when `processes` is False)."""
    seed = check_seed(seed)
    replicates, chunk_size = check_run(replicates, chunk_size)
    protocol = protocol or default_protocol()
    if scheduler is not None:
        with Client(scheduler) as client:
            return _gather(client, parameters, protocol, seed, replicates, chunk_size, progress)
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=None
    )
    with cluster, Client(cluster) as client:
        return _gather(client, parameters, protocol, seed, replicates, chunk_size, progress)


def _gather(
    client: Client,
    parameters: Parameters,
    protocol: Protocol,
    seed: int,
    replicates: int,
    chunk_size: int,
    progress: Progress | None,
) -> pd.DataFrame:
    parameters_future, protocol_future = client.scatter([parameters, protocol], broadcast=True)
    futures = {
        client.submit(run_chunk, parameters_future, protocol_future, seed, chunk, pure=False): len(
            chunk
        )
        for chunk in chunks(replicates, chunk_size)
    }
    rows: list[dict[str, Any]] = []
    for future in as_completed(futures):
        rows.extend(future.result())
        if progress is not None:
            progress(futures[future])
    return replicate_table(rows)
