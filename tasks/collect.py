"""Collect: read a source and freeze it as a Parquet snapshot named by its digest."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.data import collect, snapshot
from recsys_core.data.config import DataConfig
from recsys_core.redaction import redact
from tasks._runtime import IO_RETRY, logger


@task(name="collect", **IO_RETRY, cache_policy=NO_CACHE)
def collect_snapshot(data: DataConfig, data_dir: str) -> snapshot.Snapshot:
    """Collect ``data.source`` into a snapshot under ``data_dir``."""
    collected = collect(data.source, seed=data.seed, synthetic_size=data.synthetic_size,
                        columns=data.columns, rating_scale=data.rating_scale,
                        duplicates=data.duplicates)
    snap = snapshot.write(collected, f"{data_dir}/snapshots")
    logger().info("collected %s rows from %s (digest %s)", snap.n_rows, redact(snap.source),
                  snap.digest[:12])
    if snap.tombstoned_removed:
        logger().info("dropped %d row(s) of forgotten users", snap.tombstoned_removed)
    return snap
