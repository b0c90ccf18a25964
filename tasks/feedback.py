"""Feedback: the click-through of served lists per model version, from the event store."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.events.engine import configured_events_url, safe_url
from recsys_core.events.store import EventStore
from recsys_core.redaction import redact
from tasks._runtime import logger, retried
from tasks.tracking import log_to_run


def click_through_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """``feedback/ctr_v<N>`` and ``feedback/served_lists_v<N>`` per version, and the totals."""
    out: dict[str, float] = {}
    for row in rows:
        out[f"feedback/ctr_v{row['model_version']}"] = float(row["ctr"])
        out[f"feedback/served_lists_v{row['model_version']}"] = float(row["served"])
    served = sum(r["served"] for r in rows)
    out["feedback/served_lists"] = float(served)
    out["feedback/engaged_lists"] = float(sum(r["engaged"] for r in rows))
    return out


@task(name="click-through", cache_policy=NO_CACHE)
def log_click_through(run_id: str, registered_model: str) -> list[dict[str, Any]] | None:
    """Log the click-through of ``registered_model``'s served lists per version to the run
    (metrics and ``feedback/click_through.json``) when ``RECSYS_EVENTS_URL`` is set.

    Information for the run, never a reason to fail it: an event store that cannot be read is
    a warning, and the run goes on.
    """
    url = configured_events_url()
    if url is None:
        logger().info("RECSYS_EVENTS_URL is not set: no click-through of served lists logged")
        return None
    store = EventStore(url)
    try:
        rows = store.click_through(registered_model)
    except Exception as exc:
        logger().warning(
            "click-through not logged: the event store %s could not be read (%s)",
            safe_url(url),
            redact(str(exc)),
        )
        return None
    finally:
        store.close()
    # through the retried writer, like every other MLflow/S3 write of the run
    retried(log_to_run)(
        run_id,
        metrics=click_through_metrics(rows),
        json_files={
            "feedback/click_through.json": {
                "registered_model": registered_model,
                "event_store": safe_url(url),
                "versions": rows,
            }
        },
    )
    shown = ", ".join(f"v{r['model_version']} {r['ctr']:.1%} of {r['served']}" for r in rows)
    logger().info("click-through of served lists: %s", shown or "no list served yet")
    return rows
