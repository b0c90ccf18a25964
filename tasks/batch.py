"""Tasks of the batch-recommendations flow: find the version, score every user, record it."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from recsys_core.exceptions import ConfigError
from recsys_core.serving.batch import BatchResult, recommend_all
from recsys_core.tracking import mlflow_run, registry
from recsys_core.tracking.model_store import load_recommender
from tasks._runtime import IO_RETRY, logger

# retried on any error (no retry condition); the flow sets the count and delays (retried())
_io: dict[str, Any] = dict(
    retries=IO_RETRY["retries"],
    retry_delay_seconds=IO_RETRY["retry_delay_seconds"],
    cache_policy=NO_CACHE,
)


@task(name="resolve-version", **_io)
def resolve_version(registered_model: str, alias: str) -> registry.VersionRef:
    """The version behind ``alias``; fails with what to do when there is none."""
    ref = registry.get_alias(registered_model, alias)
    if ref is None:
        raise ConfigError(
            f"registered model {registered_model!r} has no version with alias "
            f"{alias!r}; train and promote one first (recsys train; lists come "
            "from champion-ranking, which a ranking model such as ease wins: "
            "recsys train --model ease)"
        )
    logger().info("scoring with %s version %s (alias %r)", registered_model, ref.version, alias)
    return ref


@task(name="score-users", cache_policy=NO_CACHE)
def score_users(
    ref: registry.VersionRef, out: str, users: list[str] | None, k: int, memory_budget: int
) -> BatchResult:
    """Top-k of every user (or ``users``), written as Parquet under ``out``."""
    log = logger()
    model = load_recommender(ref)
    step = {"next": 0.0}

    def progress(done: int, total: int) -> None:
        if done / total >= step["next"] or done == total:
            log.info("scored %d / %d users (%.0f%%)", done, total, 100 * done / total)
            step["next"] = done / total + 0.1

    return recommend_all(
        model,
        out,
        model_version=ref.version,
        users=users,
        k=k,
        memory_budget=memory_budget,
        progress=progress,
    )


@task(name="record-batch", **_io)
def record_batch(
    ref: registry.VersionRef, result: BatchResult, experiment: str, k: int, trigger: str
) -> str:
    """An MLflow run with the output location, row count and a sample; a Prefect artifact."""
    run_id = mlflow_run.start_run(
        experiment, f"batch-v{ref.version}", {"recsys.trigger": trigger, "recsys.kind": "batch"}
    )
    mlflow_run.log_params(
        run_id,
        {
            "registered_model": ref.name,
            "model_version": ref.version,
            "k": k,
            "location": result.location,
        },
    )
    mlflow_run.log_metrics(
        run_id,
        {
            "rows": result.rows,
            "users": result.users,
            "cold_users": result.cold_users,
            "files": len(result.files),
            "seconds": result.seconds,
        },
    )
    mlflow_run.set_tags(
        run_id, {"recsys.output": result.location, "recsys.model_version": ref.version}
    )
    mlflow_run.log_text(run_id, result.sample.to_csv(index=False), "batch/sample.csv")
    mlflow_run.log_json(
        run_id,
        {
            "location": result.location,
            "files": result.files,
            "rows": result.rows,
            "users": result.users,
        },
        "batch/output.json",
    )
    mlflow_run.end_run(run_id)
    sample = result.sample.head(10)
    lines = ["| user | rank | item | score |", "|---|---|---|---|"]
    lines += [
        f"| {r.user} | {r.rank} | {r.item} | {r.score:.4f} |"
        for r in sample.itertuples(index=False)
    ]
    create_markdown_artifact(
        key="batch-recommendations",
        description=f"top-{k} of {result.users} users",
        markdown="\n".join(
            [
                f"# Batch recommendations: {ref.name} version {ref.version}",
                "",
                f"- output: `{result.location}` ({len(result.files)} Parquet file(s))",
                f"- rows: {result.rows:,} for {result.users:,} users "
                f"({result.cold_users:,} unknown to the model got the most popular items)",
                f"- time: {result.seconds:.1f} s; MLflow run `{run_id}`",
                "",
                "Sample:",
                "",
                *lines,
            ]
        ),
    )
    logger().info("wrote %d rows to %s (MLflow run %s)", result.rows, result.location, run_id)
    return run_id
