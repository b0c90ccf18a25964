"""Collect: read a source and freeze it as a Parquet snapshot named by its digest."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.data import incremental, snapshot
from recsys_core.data.config import DataConfig
from recsys_core.pseudonyms import read_key
from recsys_core.redaction import redact
from tasks._runtime import IO_RETRY, logger


@task(name="collect", **IO_RETRY, cache_policy=NO_CACHE)
def collect_snapshot(data: DataConfig, data_dir: str) -> snapshot.Snapshot:
    """Collect ``data.source`` into a snapshot under ``data_dir`` (``data.since``: only the rows
    after the last collection, merged with its snapshot)."""
    key = read_key() if data.pseudonymize_users else None
    snap = incremental.collect_snapshot(
        data.source,
        f"{data_dir}/snapshots",
        since=data.since,
        seed=data.seed,
        synthetic_size=data.synthetic_size,
        columns=data.columns,
        rating_scale=data.rating_scale,
        duplicates=data.duplicates,
        pseudonym_key=key,
    )
    how = snap.collection or {}
    if data.since == incremental.LAST and how.get("mode") == "full":
        logger().info(
            "since=last: no previous collection of %s, every row was read", redact(snap.source)
        )
    if how.get("mode") == "incremental":
        logger().info(
            "collected %s new row(s) from %s after %s, merged into %s: %s rows "
            "(digest %s, watermark %s)",
            how["rows_read"],
            redact(snap.source),
            how["since"],
            how["base_digest"][:12],
            snap.n_rows,
            snap.digest[:12],
            snap.watermark,
        )
    else:
        logger().info(
            "collected %s rows from %s (digest %s%s)",
            snap.n_rows,
            redact(snap.source),
            snap.digest[:12],
            f", watermark {snap.watermark}" if snap.watermark else "",
        )
    if key is not None:
        logger().info("user ids pseudonymized")
    if snap.tombstoned_removed:
        logger().info("dropped %d row(s) of forgotten users", snap.tombstoned_removed)
    return snap
