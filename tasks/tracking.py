"""MLflow I/O of the training flow: the run, its parameters and inputs, the model version."""

from __future__ import annotations

import os
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.data.snapshot import Snapshot
from recsys_core.exceptions import TrackingError
from recsys_core.redaction import redact
from recsys_core.settings import get_settings
from recsys_core.tracking import mlflow_run, model_store, pyfunc, registry
from tasks._runtime import IO_RETRY, logger

_io = dict(**IO_RETRY, cache_policy=NO_CACHE)


@task(name="start-run", **_io)
def start_run(experiment: str, run_name: str, tags: dict[str, str]) -> tuple[str, str | None]:
    """Create the MLflow run of this flow run; returns its id and its link in the MLflow UI."""
    run_id = mlflow_run.start_run(experiment, run_name, tags)
    url = mlflow_run.run_url(run_id)
    logger().info(
        "MLflow run %s in experiment %r (%s)",
        run_id,
        experiment,
        url or redact(mlflow_run.artifact_uri(run_id)),
    )
    return run_id, url


@task(name="log-inputs", **_io)
def log_inputs(run_id: str, params: dict[str, Any], snap: Snapshot, split_info: dict) -> None:
    """Parameters, data lineage (snapshot digest as the dataset input) and split counts."""
    mlflow_run.log_params(run_id, params)
    source = redact(snap.source)
    mlflow_run.set_tags(
        run_id,
        {
            "recsys.data_digest": snap.digest,
            "recsys.source": source,
            # where the next since=last collection of the source resumes
            **({"data/watermark": snap.watermark} if snap.watermark else {}),
        },
    )
    mlflow_run.log_dataset(
        run_id,
        digest=snap.digest,
        source=source,
        name=f"snapshot-{snap.digest[:12]}",
        n_rows=snap.n_rows,
    )
    mlflow_run.log_metrics(
        run_id,
        {
            f"data/{k}": v
            for k, v in split_info.items()
            if isinstance(v, int | float) and k != "cutoff"
        },
    )
    mlflow_run.log_json(
        run_id,
        {"snapshot": {**snap.to_dict(), "source": source}, "split": split_info},
        "data/lineage.json",
    )


@task(name="register-model", **_io)
def log_and_register(
    run_id: str,
    model_dir: str,
    registered_model: str,
    tags: dict[str, str],
    description: str | None = None,
    *,
    evaluated_dir: str | None = None,
    alias: str | None = registry.CHALLENGER,
) -> registry.VersionRef:
    """Log the saved model once (its state, and the pyfunc built from the same folder) and
    register it as ``alias`` (``challenger``), with ``description`` (the gate's decisions) on
    the version. ``evaluated_dir``, when the served model is a refit, is the judged model: it is
    logged beside it as ``evaluated_state``."""
    # the learned state (factors, biases, vocabularies) browsable on its own in the run
    mlflow_run.log_artifacts(run_id, model_dir, model_store.STATE_PATH)
    if evaluated_dir is not None:
        mlflow_run.log_artifacts(run_id, evaluated_dir, model_store.EVALUATED_PATH)
    info = pyfunc.log_saved(model_dir, run_id)
    ref = registry.register(
        registered_model,
        info.model_uri,
        run_id,
        tags,
        model_id=getattr(info, "model_id", None),
        alias=alias,
        state_dir=model_dir,
    )
    if description:
        mlflow_run.set_version_description(registered_model, ref.version, description)
    mlflow_run.set_tags(run_id, {"recsys.model_version": ref.version})
    logger().info(
        "registered %s version %s (alias %s)", registered_model, ref.version, alias or "none"
    )
    return ref


@task(name="end-run", **_io)
def end_run(run_id: str, status: str, tags: dict[str, str] | None = None) -> None:
    """Final tags, then the run's final status (FINISHED or FAILED)."""
    if tags:
        mlflow_run.set_tags(run_id, tags)
    mlflow_run.end_run(run_id, status)


@task(name="log", **_io)
def log_to_run(
    run_id: str,
    *,
    metrics: dict[str, float] | None = None,
    tags: dict[str, Any] | None = None,
    history: list[dict[str, float]] | None = None,
    artifacts: list[tuple[str, str]] | None = None,
    json_files: dict[str, Any] | None = None,
    text_files: dict[str, str] | None = None,
    description: str | None = None,
) -> None:
    """Everything a stage reports, written in one retried task (computing stages never retry).

    ``artifacts`` are ``(local folder or file, artifact path)`` pairs; ``description`` becomes
    the run's description in the MLflow UI (markdown). The files are written first and the tags
    last, so a tag that marks what was logged (a watermark) is never set before the files are.
    """
    try:
        for local, path in artifacts or []:
            if os.path.isdir(local):
                mlflow_run.log_artifacts(run_id, local, path)
            else:
                mlflow_run.log_artifact(run_id, local, path)
        for name, data in (json_files or {}).items():
            mlflow_run.log_json(run_id, data, name)
        for name, text in (text_files or {}).items():
            mlflow_run.log_text(run_id, text, name)
    except Exception as exc:
        raise artifact_store_error(run_id, exc) from exc
    if metrics:
        mlflow_run.log_metrics(run_id, metrics)
    if history:
        mlflow_run.log_history(run_id, history)
    if description:
        mlflow_run.set_description(run_id, description)
    if tags:
        mlflow_run.set_tags(run_id, tags)


def artifact_store_error(run_id: str, exc: BaseException) -> TrackingError:
    """An artifact upload failed: name the artifact store (S3) and its endpoint."""
    import mlflow

    endpoint = (
        get_settings().tracking.artifact_endpoint_url or "the endpoint the server is set up with"
    )
    return TrackingError(
        f"writing the artifacts of run {run_id} failed: the artifact store (S3 at "
        f"{redact(endpoint)}) "
        f"behind the tracking server {mlflow.get_tracking_uri()} is unreachable or failing. "
        f"Check the S3 server and the server's artifact settings (recsys doctor). Cause: "
        f"{redact(str(exc))}"
    )
