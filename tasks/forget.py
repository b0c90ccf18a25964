"""Forget audit: each training run logs the ``recsys forget`` records since the previous run."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.privacy.forget import audit_since
from recsys_core.tracking import mlflow_run
from tasks._runtime import IO_RETRY, logger, retried
from tasks.tracking import log_to_run

WATERMARK_TAG = "privacy.forget_audit_to"
ARTIFACT = "privacy/forget_audit.json"


@task(name="read-forget-audit", **IO_RETRY, cache_policy=NO_CACHE)
def read_forget_audit(run_id: str) -> tuple[int, list[dict[str, Any]]]:
    """The previous run's audit watermark (0 for none) and the audit records after it."""
    client = mlflow_run.client()
    run = client.get_run(run_id)
    previous = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`{WATERMARK_TAG}` != ''",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    after = int(previous[0].data.tags[WATERMARK_TAG]) if previous else 0
    return after, audit_since(after)


# not retried itself: the read and the write are retried tasks of their own
@task(name="log-forget-audit", cache_policy=NO_CACHE)
def log_forget_audit(run_id: str) -> int:
    """Log the audit records newer than the previous run's as ``privacy/forget_audit.json``
    (user ids appear only as keyed hashes); returns how many."""
    after, records = retried(read_forget_audit)(run_id)
    last = max([after, *(r["id"] for r in records)])
    # the watermark tag is set after the file is written (log_to_run writes files first): a
    # failed upload never leaves a watermark past records that were not logged
    retried(log_to_run)(
        run_id,
        tags={WATERMARK_TAG: last},
        json_files={ARTIFACT: {"after_id": after, "to_id": last, "records": records}}
        if records
        else None,
    )
    if records:
        logger().info(
            "%d forget audit record(s) since the previous run logged to %s", len(records), ARTIFACT
        )
    return len(records)
