"""Collect: read a source and freeze it as a Parquet snapshot named by its digest."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.data import collect, snapshot
from tasks._runtime import IO_RETRY, logger


@task(name="collect", **IO_RETRY, cache_policy=NO_CACHE)
def collect_snapshot(
    source: str, *, synthetic_size: str, seed: int, columns: str | None,
    rating_scale: tuple[float, float], data_dir: str,
) -> snapshot.Snapshot:
    """Collect ``source`` into a snapshot under ``data_dir``."""
    collected = collect(source, seed=seed, synthetic_size=synthetic_size, columns=columns,
                        rating_scale=rating_scale)
    snap = snapshot.write(collected, f"{data_dir}/snapshots")
    logger().info("collected %s rows from %s (digest %s)", snap.n_rows, snap.source,
                  snap.digest[:12])
    return snap
