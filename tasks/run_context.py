"""Where a flow run stands in Prefect: its trigger, its links, its name.

Plain functions (not tasks): they read the run context or make one small API call, and never
fail the run they describe.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def _ui_base() -> str | None:
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return base if isinstance(base, str) and base.startswith(("http://", "https://")) else None


def flow_run_url() -> str | None:
    """Link to the current flow run in the Prefect UI, when a UI address is known."""
    from prefect.runtime import flow_run

    base = _ui_base()
    return f"{base}/flow-runs/flow-run/{flow_run.id}" if base and flow_run.id else None


def flow_run_tags() -> dict[str, str]:
    """MLflow tags that lead back to the Prefect flow run (id, name, deployment, link)."""
    from prefect.runtime import deployment, flow_run

    tags = {
        "prefect.flow_run_id": str(flow_run.id or ""),
        "prefect.flow_run_name": str(flow_run.name or ""),
    }
    if deployment.name:
        tags["prefect.deployment"] = str(deployment.name)
    url = flow_run_url()
    if url:
        tags["prefect.flow_run_url"] = url
    return tags


def trigger(requested: str) -> str:
    """``schedule`` or ``manual``; ``auto`` tells them apart from the run context."""
    if requested != "auto":
        return requested
    from prefect.context import get_run_context

    try:
        flow_run = getattr(get_run_context(), "flow_run", None)
        scheduled = bool(flow_run is not None and flow_run.auto_scheduled)
    except Exception:
        scheduled = False
    return "schedule" if scheduled else "manual"


def rename_flow_run(name: str) -> None:
    """Rename the current flow run (the verdict is known only at the end)."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    if not flow_run.id:
        return
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(flow_run.id, name=name)
    except Exception:
        log.warning("could not rename flow run %s to %r", flow_run.id, name, exc_info=True)


def mlflow_link(run_id: str, url: str | None) -> str:
    """Markdown naming the MLflow run, as a link when the tracking server has a UI address."""
    if url:
        return f"MLflow run: [{run_id}]({url})"
    return f"MLflow run: `{run_id}` (embedded store: open it with `mlflow server`, README)"
