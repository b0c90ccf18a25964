"""Validate: run the Great Expectations suite (and quarantine bad rows if asked)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from recsys_core.data import snapshot
from recsys_core.data.schema import Collected
from tasks._runtime import logger


@dataclass
class Validated:
    """The snapshot to train on and the report (the flow logs it, then stops on failure)."""

    snapshot: snapshot.Snapshot
    success: bool
    summary: str
    report: dict[str, Any]
    markdown: str
    quarantine_file: str | None = None
    quarantined: dict[str, int] = field(default_factory=dict)


@task(name="validate", cache_policy=NO_CACHE)
def validate_snapshot(snap: snapshot.Snapshot, rules_params: dict, data_dir: str) -> Validated:
    """Validate the snapshot; with quarantine, bad rows go aside into a new snapshot."""
    # Great Expectations logs hundreds of INFO lines on its first import
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from recsys_core import validation

    log = logger()
    frame, items = snapshot.read(snap)
    rules = validation.ValidationRules(**rules_params)
    clean, rows, report = validation.screen(frame, rules)
    result, qfile = snap, None
    if len(rows):
        qfile = str(validation.write_quarantined(
            rows, Path(data_dir) / "quarantine" / snap.digest[:16] / "quarantined.parquet"))
        log.warning("quarantined %d row(s) %s, written to %s", len(rows), report.quarantined,
                    qfile)
        result = snapshot.write(
            Collected(clean, items, source=f"{snap.source} (quarantined)",
                      rating_scale=(snap.rating_min, snap.rating_max)),
            Path(data_dir) / "snapshots",
        )
    if report.success:
        log.info("validation passed: %d checks, %d warning(s)", len(report.checks),
                 len(report.warnings))
    else:
        log.error("validation failed: %s", report.summary())
    return Validated(result, report.success, report.summary(), report.to_dict(),
                     report.to_markdown(), qfile, dict(report.quarantined))
