"""Drift: compare the run's snapshot with the one the champion was trained on."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from recsys_core.data import snapshot
from recsys_core.exceptions import DataError
from recsys_core.tracking import registry
from recsys_core.tracking.champion import champion_digest
from recsys_core.validation import drift
from recsys_core.validation.rules import DriftRules
from tasks._runtime import IO_RETRY, logger, retried
from tasks.run_context import mlflow_link
from tasks.tracking import log_to_run

REFERENCE_ALIAS = registry.ROLE_ALIASES[registry.RANKING]
"""The alias whose training snapshot is the drift reference."""


@dataclass
class DriftChecked:
    """What the drift check found: ``level`` is ``ok``, ``warn``, ``stop`` or ``skipped``."""

    level: str
    reason: str
    report: dict[str, Any] | None = None


@task(name="drift-reference", **IO_RETRY, cache_policy=NO_CACHE)
def drift_reference(registered_model: str, alias: str) -> tuple[str | None, str | None]:
    """The version behind ``alias`` and the digest of the snapshot it was trained on."""
    return champion_digest(registered_model, alias)


# not retried itself: its registry read and its writes are retried tasks of their own, so a
# failure is retried once, never multiplied by a retry around them
@task(name="drift", cache_policy=NO_CACHE)
def check_drift(
    snap: snapshot.Snapshot,
    rules: DriftRules,
    data_dir: str,
    registered_model: str,
    run_id: str,
    run_url: str | None = None,
    alias: str = REFERENCE_ALIAS,
    frame: pd.DataFrame | None = None,
) -> DriftChecked:
    """Compare ``snap`` with the champion's snapshot; log metrics, report and plot; stop the run
    (``DataValidationError``) when a statistic reaches its stop limit. ``frame``: the
    snapshot's content when the caller has read it already."""
    log = logger()
    if not rules.enabled:
        return _skipped(run_id, "disabled by validation.drift.enabled=false")
    version, digest = retried(drift_reference)(registered_model, alias)
    if version is None:
        return _skipped(run_id, f"no {alias} of {registered_model!r} yet: nothing to compare with")
    if digest is None:
        return _skipped(run_id, f"{alias} version {version} records no data digest")
    folder = Path(data_dir) / "snapshots" / digest[:16]
    try:
        reference, _ = snapshot.read(snapshot.load_meta(folder))
    except (OSError, ValueError, DataError) as exc:
        # trained on another machine, or the snapshot was cleaned away: the digest stays in
        # MLflow (the run's dataset input) but the data does not
        return _skipped(
            run_id,
            f"no reference snapshot: {alias} version {version} was trained "
            f"on snapshot {digest[:16]}, not readable under {folder} ({exc})",
        )
    current = frame if frame is not None else snapshot.read(snap)[0]
    report = drift.compare(
        reference,
        current,
        rules,
        reference_name=f"{alias} version {version} (snapshot {digest[:16]})",
        current_name=f"snapshot {snap.digest[:16]}",
    )
    markdown = report.to_markdown()
    tags = {
        "recsys.drift": report.level,
        "recsys.drift_reference": digest,
        "recsys.drift_reference_version": version,
    }
    flagged = report.at("stop") + report.at("warn")
    if flagged:
        tags["recsys.drift_flags"] = " | ".join(report.describe(n) for n in flagged)
    with tempfile.TemporaryDirectory() as tmp:
        png = drift.plot(reference, current, Path(tmp) / "drift.png")
        retried(log_to_run)(
            run_id,
            metrics=report.metrics(),
            tags=tags,
            artifacts=[(str(png), "drift")],
            text_files={"drift/report.md": markdown},
            json_files={"drift/report.json": report.to_dict()},
        )
    create_markdown_artifact(
        key="drift-report",
        markdown=f"{markdown}\n\n{mlflow_link(run_id, run_url)}\n",
        description=report.level.upper(),
    )
    if report.level == "ok":
        log.info("no data drift beyond the warning limits against %s", report.reference)
    else:
        log.warning("data drift against %s: %s", report.reference, tags["recsys.drift_flags"])
    drift.raise_for_stop(report)
    return DriftChecked(report.level, markdown, report.to_dict())


def _skipped(run_id: str, reason: str) -> DriftChecked:
    logger().info("drift not measured: %s", reason)
    retried(log_to_run)(run_id, tags={"recsys.drift": "skipped", "recsys.drift_skipped": reason})
    return DriftChecked("skipped", reason)
