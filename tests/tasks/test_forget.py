"""The forget-audit task: each record logged by one run, and no watermark past a file that could
not be written."""

import json

import mlflow
import pytest
from mlflow import MlflowClient

from recsys_core.events import EventStore
from recsys_core.events.engine import make_engine
from recsys_core.exceptions import TrackingError
from recsys_core.privacy.forget import append_audit, user_key
from recsys_core.tracking import mlflow_run
from tasks.forget import ARTIFACT, WATERMARK_TAG, log_forget_audit

# tasks called on their own (no flow run) log locally only
pytestmark = pytest.mark.filterwarnings("ignore:Logger 'prefect.task_runs' attempted to send")


def _tags(run_id):
    return MlflowClient().get_run(run_id).data.tags


def test_a_failed_upload_leaves_no_watermark_and_the_next_run_logs_the_records(
    workspace, monkeypatch, faults
):
    url = f"sqlite:///{workspace / 'events.db'}"
    monkeypatch.setenv("RECSYS_EVENTS_URL", url)
    store = EventStore(url)
    store.upgrade()
    store.close()
    engine = make_engine(url)
    audit_id = append_audit(
        engine, key=user_key("u1"), reason="request 1", outcome="done", detail={}
    )
    engine.dispose()

    monkeypatch.setenv("RECSYS_IO_RETRIES", "1")
    down = faults(mlflow_run.log_json, ConnectionError("S3 connection reset"))
    monkeypatch.setattr("tasks.tracking.mlflow_run.log_json", down)
    failed = mlflow_run.start_run("forget-audit", "failed")
    with pytest.raises(TrackingError, match="artifact store"):
        log_forget_audit(failed)
    assert down.calls == 2  # the first attempt and one retry
    assert WATERMARK_TAG not in _tags(failed)

    monkeypatch.setattr("tasks.tracking.mlflow_run.log_json", down.real)  # S3 is back
    second = mlflow_run.start_run("forget-audit", "second")
    assert log_forget_audit(second) == 1
    assert _tags(second)[WATERMARK_TAG] == str(audit_id)
    logged = json.loads(
        open(
            mlflow.artifacts.download_artifacts(
                run_id=second, artifact_path=ARTIFACT, dst_path=str(workspace / "a")
            )
        ).read()
    )
    assert (logged["after_id"], logged["to_id"]) == (0, audit_id)
    assert [r["reason"] for r in logged["records"]] == ["request 1"]

    third = mlflow_run.start_run("forget-audit", "third")
    assert log_forget_audit(third) == 0  # logged by the second run already
    assert _tags(third)[WATERMARK_TAG] == str(audit_id)
    assert not MlflowClient().list_artifacts(third, "privacy")
