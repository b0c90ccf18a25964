"""The click-through task: logged when RECSYS_EVENTS_URL is set, a warning (never a failed run)
when the store cannot be read."""

from __future__ import annotations

from mlflow import MlflowClient
from prefect import flow

from recsys_core.events import EventStore
from recsys_core.tracking import mlflow_run
from tasks.feedback import log_click_through


@flow
def _report(run_id: str):
    return log_click_through(run_id, "recsys")


def test_click_through_is_logged_per_version(workspace, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    store = EventStore(url)
    store.upgrade()
    for i, version in enumerate(["1", "1", "2", "2"]):
        store.record_served(
            f"r{i}", user_id="u", items=["a"], registered_model="recsys", model_version=version
        )
    store.append(
        [
            {
                "event_id": "c",
                "user_id": "u",
                "item_id": "a",
                "type": "click",
                "recommendation_id": "r3",
            }
        ]
    )
    store.close()
    run_id = mlflow_run.start_run("feedback", "ctr")
    monkeypatch.delenv("RECSYS_EVENTS_URL", raising=False)
    assert _report(run_id) is None  # not configured: nothing logged
    monkeypatch.setenv("RECSYS_EVENTS_URL", url)
    rows = _report(run_id)
    assert [(r["model_version"], r["ctr"]) for r in rows] == [("1", 0.0), ("2", 0.5)]
    metrics = MlflowClient().get_run(run_id).data.metrics
    assert metrics["feedback/ctr_v2"] == 0.5 and metrics["feedback/served_lists"] == 4


def test_a_store_that_is_down_is_a_warning_not_a_failure(workspace, monkeypatch, caplog):
    monkeypatch.setenv("RECSYS_EVENTS_URL", "postgresql://svc:hunter22@127.0.0.1:1/events")
    monkeypatch.setenv("RECSYS_EVENTS_CONNECT_TIMEOUT", "1")
    run_id = mlflow_run.start_run("feedback", "down")
    assert _report(run_id) is None
    assert "feedback/served_lists" not in MlflowClient().get_run(run_id).data.metrics
    shown = " ".join(r.getMessage() for r in caplog.records)
    assert "click-through not logged" in shown and "hunter22" not in shown
