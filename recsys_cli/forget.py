"""``recsys forget --user ID``: the right to be forgotten (``recsys_core.privacy.forget``)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console


def forget(
    user: Annotated[str, typer.Option("--user", help="the user's id, as in the data")],
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="why (kept in the audit record), e.g. a request number"),
    ] = None,
    data_dir: Annotated[
        str, typer.Option("--data-dir", help="folder of snapshots and run files to clean")
    ] = ".recsys/data",
    registered_model: Annotated[
        list[str] | None,
        typer.Option(
            "--registered-model",
            help="registered model whose versions to rewrite (repeatable; "
            "default: every registered model)",
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="event store URL; default RECSYS_EVENTS_URL, else sqlite:///.recsys/events.db",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable")] = False,
) -> None:
    """Forget a user: delete their events, tombstone them for every later collection, drop
    them from every registered version and snapshot, tell the service; audited."""
    from recsys_core.privacy.forget import forget_user
    from recsys_core.tracking import mlflow_run

    mlflow_run.configure()
    report = forget_user(
        user, reason=reason, url=url, data_dir=data_dir, registered_models=registered_model or None
    )
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), default=str) + "\n")
        return
    out = Console()
    if report.outcome == "nothing-found":
        already = report.event_store.get("tombstone") == "existing"
        out.print(
            "already forgotten: nothing of this user is left"
            if already
            else "no data of this user was found; the tombstone drops any that arrives later",
            highlight=False,
        )
    else:
        ev = report.event_store
        out.print(
            f"forgotten: {ev.get('events', 0)} event(s) and "
            f"{ev.get('served_recommendations', 0)} served list(s) deleted",
            highlight=False,
        )
        for v in report.versions:
            out.print(
                f"  {v['name']} version {v['version']}: rewritten ({', '.join(v['folders'])})",
                highlight=False,
            )
        for old, new in report.files.get("snapshots", {}).items():
            out.print(f"  snapshot {old[:16]} rewritten as {new[:16]}", highlight=False)
        for path, rows in report.files.get("tables", {}).items():
            out.print(f"  {path}: {rows} row(s) removed", highlight=False)
        for path, rows in report.files.get("batch_outputs", {}).items():
            out.print(f"  batch output {path}: {rows} row(s) removed", highlight=False)
    out.print(
        f"service: {report.service}; audit record {report.audit_id} "
        f"(user key {report.user_key[:15]}...)",
        highlight=False,
    )
