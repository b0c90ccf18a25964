"""The batch-recommendations flow: the top-k of every user from the ranking champion, as
Parquet partitioned by model version (local folder or S3)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from pydantic import BaseModel, ConfigDict, Field

from recsys_core.tracking import mlflow_run
from tasks._runtime import configure_retries, release_retries, retried
from tasks.batch import record_batch, resolve_version, score_users


class BatchParams(BaseModel):
    """Parameters of one batch run (the Prefect UI shows them as a form)."""

    model_config = ConfigDict(extra="forbid")

    registered_model: str = Field("recsys", min_length=1, description="registered model name")
    alias: str = Field(
        "champion-ranking",
        min_length=1,
        description="alias of the version to score with (the ranking champion)",
    )
    out: str = Field(
        ".recsys/batch",
        min_length=1,
        description="local folder or s3://bucket/prefix; the partition "
        "model_version=<v> is written under it",
    )
    users: list[str] | None = Field(
        None, description="user ids to score (empty: every user the model knows)"
    )
    k: int = Field(10, ge=1, le=1000, description="items per user")
    memory_budget_mb: int = Field(
        512, ge=16, le=65536, description="memory one chunk of users may take, in MiB"
    )
    experiment: str = Field("recsys-batch", min_length=1, description="MLflow experiment")


@flow(name="batch-recommendations")
def batch_recommendations_flow(params: BatchParams = BatchParams()) -> dict[str, Any]:
    """Score every user (or ``params.users``) with the version behind the alias."""
    mlflow_run.configure()
    trigger = "schedule" if _auto_scheduled() else "manual"
    retry_policy = configure_retries()  # RECSYS_IO_RETRIES/_DELAYS for the I/O tasks
    try:
        ref = retried(resolve_version)(params.registered_model, params.alias)
        budget = params.memory_budget_mb * 1024**2
        result = score_users(ref, params.out, params.users, params.k, budget)
        run_id = retried(record_batch)(ref, result, params.experiment, params.k, trigger)
    finally:
        release_retries(retry_policy)
    return {
        "version": ref.version,
        "location": result.location,
        "rows": result.rows,
        "users": result.users,
        "files": result.files,
        "run_id": run_id,
    }


def _auto_scheduled() -> bool:
    from prefect.context import get_run_context

    try:
        flow_run = getattr(get_run_context(), "flow_run", None)
        return bool(flow_run is not None and flow_run.auto_scheduled)
    except Exception:
        return False
