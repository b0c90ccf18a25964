"""Forget audit: each training run logs the ``recsys forget`` records since the previous run."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.privacy.forget import audit_since
from recsys_core.tracking import mlflow_run
from tasks._runtime import IO_RETRY, logger
from tasks.tracking import artifact_store_error

WATERMARK_TAG = "privacy.forget_audit_to"
ARTIFACT = "privacy/forget_audit.json"


@task(name="log-forget-audit", **IO_RETRY, cache_policy=NO_CACHE)
def log_forget_audit(run_id: str) -> int:
    """Log the audit records newer than the previous run's as ``privacy/forget_audit.json``
    (user ids appear only as keyed hashes); returns how many."""
    client = mlflow_run.client()
    run = client.get_run(run_id)
    previous = client.search_runs(
        [run.info.experiment_id], filter_string=f"tags.`{WATERMARK_TAG}` != ''",
        order_by=["attributes.start_time DESC"], max_results=1)
    after = int(previous[0].data.tags[WATERMARK_TAG]) if previous else 0
    records = audit_since(after)
    last = max([after, *(r["id"] for r in records)])
    if records:
        try:
            mlflow_run.log_json(run_id, {"after_id": after, "to_id": last, "records": records},
                                ARTIFACT)
        except Exception as exc:
            raise artifact_store_error(run_id, exc) from exc
        logger().info("%d forget audit record(s) since the previous run logged to %s",
                      len(records), ARTIFACT)
    mlflow_run.set_tags(run_id, {WATERMARK_TAG: last})
    return len(records)
