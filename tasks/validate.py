"""Validate: run the Great Expectations suite; stop the flow with the report on failure."""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from recsys_core.data import snapshot
from recsys_core.data.schema import Collected
from recsys_core.tracking import mlflow_run
from tasks._runtime import logger


@task(name="validate", cache_policy=NO_CACHE)
def validate_snapshot(snap: snapshot.Snapshot, rules_params: dict, run_id: str,
                      data_dir: str) -> snapshot.Snapshot:
    """Validate the snapshot (quarantining bad rows if asked); returns the snapshot to train on."""
    # Great Expectations logs hundreds of INFO lines on its first import
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from recsys_core import validation

    log = logger()
    frame, items = snapshot.read(snap)
    rules = validation.ValidationRules(**rules_params)
    clean, rows, report = validation.screen(frame, rules)
    result = snap
    if len(rows):
        qfile = validation.write_quarantined(
            rows, Path(data_dir) / "quarantine" / snap.digest[:16] / "quarantined.parquet")
        mlflow_run.log_artifact(run_id, qfile, "validation")
        log.warning("quarantined %d row(s) %s, written to %s", len(rows), report.quarantined,
                    qfile)
        result = snapshot.write(
            Collected(clean, items, source=f"{snap.source} (quarantined)",
                      rating_scale=(snap.rating_min, snap.rating_max)),
            Path(data_dir) / "snapshots",
        )
    mlflow_run.log_json(run_id, report.to_dict(), "validation/report.json")
    markdown = report.to_markdown()
    mlflow_run.log_text(run_id, markdown, "validation/report.md")
    create_markdown_artifact(markdown, key="validation-report",
                             description="passed" if report.success else "FAILED")
    mlflow_run.set_tags(run_id, {"recsys.validation": "passed" if report.success else "failed"})
    validation.raise_for_failures(report)
    log.info("validation passed: %d checks, %d warning(s)", len(report.checks),
             len(report.warnings))
    return result
