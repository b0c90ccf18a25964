"""Validate: run the Great Expectations suite; stop the flow with the report on failure."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from recsys_core.data import snapshot
from recsys_core.data.schema import Collected
from recsys_core.exceptions import DataValidationError
from recsys_core.tracking import mlflow_run
from tasks._runtime import logger


@task(name="validate", cache_policy=NO_CACHE)
def validate_snapshot(snap: snapshot.Snapshot, rules_params: dict, run_id: str,
                      quarantine: bool, data_dir: str) -> snapshot.Snapshot:
    """Validate the snapshot (quarantining bad rows if asked); returns the snapshot to train on."""
    from recsys_core import validation

    log = logger()
    frame, items = snapshot.read(snap)
    rules = validation.ValidationRules(**rules_params)
    result = snap
    quarantined_counts: dict[str, int] = {}
    if quarantine:
        clean, bad, quarantined_counts = validation.quarantine(frame, rules)
        if len(bad):
            qdir = Path(data_dir) / "quarantine" / snap.digest[:16]
            qdir.mkdir(parents=True, exist_ok=True)
            bad.to_parquet(qdir / "quarantined.parquet", index=False)
            mlflow_run.log_artifact(run_id, qdir / "quarantined.parquet", "validation")
            log.warning("quarantined %d row(s): %s (written to %s)", len(bad),
                        quarantined_counts, qdir)
            result = snapshot.write(
                Collected(clean, items, source=f"{snap.source} (quarantined)",
                          rating_scale=(snap.rating_min, snap.rating_max)),
                Path(data_dir) / "snapshots",
            )
            frame = clean
    report = validation.validate(frame, rules)
    payload = report.to_dict()
    if quarantined_counts:
        payload["quarantined"] = quarantined_counts
    mlflow_run.log_json(run_id, payload, "validation/report.json")
    markdown = report.to_markdown()
    mlflow_run.log_text(run_id, markdown, "validation/report.md")
    create_markdown_artifact(markdown, key="validation-report",
                             description=("passed" if report.success else "FAILED"))
    mlflow_run.set_tags(run_id, {"recsys.validation": "passed" if report.success else "failed"})
    if not report.success:
        raise DataValidationError(f"data validation failed: {report.summary()}", report=payload)
    log.info("validation passed (%d checks)", len(payload.get("checks", [])))
    return result
