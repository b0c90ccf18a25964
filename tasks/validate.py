"""Validate: run the Great Expectations suite (and quarantine bad rows if asked)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from recsys_core.data import incremental, snapshot
from recsys_core.data.schema import Collected
from recsys_core.validation.rules import ValidationRules
from tasks._runtime import logger
from tasks.run_context import mlflow_link


@dataclass
class Validated:
    """The snapshot to train on and the report (the flow logs it, then stops on failure).

    ``frame`` and ``items`` are the snapshot's content, read once here and passed on in memory
    to the stages that need it (drift, features)."""

    snapshot: snapshot.Snapshot
    success: bool
    summary: str
    report: dict[str, Any]
    markdown: str
    quarantine_file: str | None = None
    quarantined: dict[str, int] = field(default_factory=dict)
    frame: pd.DataFrame | None = field(default=None, repr=False)
    items: pd.DataFrame | None = field(default=None, repr=False)


@task(name="validate", cache_policy=NO_CACHE)
def validate_snapshot(
    snap: snapshot.Snapshot,
    rules: ValidationRules,
    data_dir: str,
    run_id: str,
    run_url: str | None = None,
) -> Validated:
    """Validate the snapshot; with quarantine, bad rows go aside into a new snapshot.

    The report is attached to this task run as a markdown artifact that links to the MLflow run.
    """
    # Great Expectations logs hundreds of INFO lines on its first import
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from recsys_core import validation

    log = logger()
    frame, items = snapshot.read(snap)
    clean, rows, report = validation.screen(frame, rules)
    result, qfile, kept = snap, None, frame
    if len(rows):
        qfile = str(
            validation.write_quarantined(
                rows, Path(data_dir) / "quarantine" / snap.digest[:16] / "quarantined.parquet"
            )
        )
        log.warning("quarantined %d row(s) %s, written to %s", len(rows), report.quarantined, qfile)
        result = snapshot.write(
            Collected(
                clean,
                items,
                source=f"{snap.source} (quarantined)",
                rating_scale=(snap.rating_min, snap.rating_max),
            ),
            Path(data_dir) / "snapshots",
        )
        kept = clean.reset_index(drop=True)  # the new snapshot's content, as read back
    if report.success:
        log.info(
            "validation passed: %d checks, %d warning(s)", len(report.checks), len(report.warnings)
        )
    else:
        log.error("validation failed: %s", report.summary())
    # how the rows were collected: information, never a failure (new users and items are
    # accepted, repeated event ids were dropped before the snapshot)
    collection = snap.collection or {}
    markdown = report.to_markdown() + incremental.to_markdown(collection)
    if collection.get("new_users") or collection.get("new_items"):
        log.info(
            "accepted (new): %d event(s) of %d new user(s), %d event(s) of %d new item(s)",
            collection["events_new_users"],
            collection["new_users"],
            collection["events_new_items"],
            collection["new_items"],
        )
    create_markdown_artifact(
        key="validation-report",
        markdown=f"{markdown}\n\n{mlflow_link(run_id, run_url)}\n",
        description="passed" if report.success else "FAILED",
    )
    report_dict = {**report.to_dict(), **({"collection": collection} if collection else {})}
    return Validated(
        result,
        report.success,
        report.summary(),
        report_dict,
        markdown,
        qfile,
        dict(report.quarantined),
        kept,
        items,
    )
