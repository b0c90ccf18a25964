"""Collect: read a source and freeze it as a Parquet snapshot named by its digest."""

from __future__ import annotations

import inspect

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.data import collect, snapshot
from recsys_core.data.config import DataConfig
from tasks._runtime import IO_RETRIES, IO_RETRY_DELAYS, logger
from tasks.run_context import redact


@task(name="collect", retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS,
      cache_policy=NO_CACHE)
def collect_snapshot(data: DataConfig, data_dir: str) -> snapshot.Snapshot:
    """Collect ``data.source`` into a snapshot under ``data_dir``."""
    policy = {}
    if "duplicates" in inspect.signature(collect).parameters:  # the library's duplicates policy
        policy = {"duplicates": data.duplicates}
    collected = collect(data.source, seed=data.seed, synthetic_size=data.synthetic_size,
                        columns=data.columns, rating_scale=data.rating_scale, **policy)
    snap = snapshot.write(collected, f"{data_dir}/snapshots")
    logger().info("collected %s rows from %s (digest %s)", snap.n_rows, redact(snap.source),
                  snap.digest[:12])
    return snap
