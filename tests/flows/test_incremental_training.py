"""The training flow on the event store: since=last collects only the new events and merges
them into the last snapshot; the run records its watermark and logs the click-through of the
lists the service served (RECSYS_EVENTS_URL)."""

from __future__ import annotations

import json

from mlflow import MlflowClient

from flows.training import TrainingParams, outcome_of, training_flow
from recsys_core.data.synthetic import config_for, generate
from recsys_core.events import EventStore

NAMES = dict(registered_model="looptest", experiment="looptest")


def _events(frame, start=0):
    return [
        {
            "event_id": f"s{start + i}",
            "user_id": r.user,
            "item_id": r.item,
            "type": "rating",
            "rating": float(r.rating),
            "timestamp": int(r.timestamp),
        }
        for i, r in enumerate(frame.itertuples())
    ]


def _artifact(run_id, path):
    local = MlflowClient().download_artifacts(run_id, path)
    with open(local) as fh:
        return json.load(fh)


def test_since_last_runs_merge_new_events_and_log_click_through(workspace, monkeypatch):
    url = f"sqlite:///{workspace / 'events.db'}"
    monkeypatch.setenv("RECSYS_EVENTS_URL", url)
    store = EventStore(url)
    store.upgrade()
    ratings = generate(config_for("tiny", seed=42)).interactions
    store.append(_events(ratings))
    params = TrainingParams(
        data={"source": f"{url}?table=events", "since": "last"},
        gate={"rating": {"require_beat_baseline": False}},
        **NAMES,
    )
    first = outcome_of(training_flow(params))
    assert first["promoted"] and first["version"] == "1"
    client = MlflowClient()
    run1 = client.get_run(first["run_id"])
    watermark1 = run1.data.tags["data/watermark"]
    assert (
        _artifact(first["run_id"], "data/lineage.json")["snapshot"]["collection"]["mode"] == "full"
    )
    assert "feedback/served_lists" in run1.data.metrics  # the store is set, nothing served yet
    assert run1.data.metrics["feedback/served_lists"] == 0

    # version 1 served three lists; one was clicked. A new user rates, one pair is re-rated
    for i in range(3):
        store.record_served(
            f"rec{i}", user_id="u", items=["a"], registered_model="looptest", model_version="1"
        )
    last_ts = int(ratings["timestamp"].max())
    user, item = ratings.iloc[0]["user"], ratings.iloc[0]["item"]
    new = [
        {
            "event_id": "click-1",
            "user_id": str(user),
            "item_id": str(item),
            "type": "click",
            "recommendation_id": "rec0",
            "timestamp": last_ts + 1,
        }
    ]
    new += [
        {
            "event_id": f"n{i}",
            "user_id": "newcomer",
            "item_id": str(it),
            "type": "rating",
            "rating": 5.0,
            "timestamp": last_ts + 2 + i,
        }
        for i, it in enumerate(ratings["item"].unique()[:8])
    ]
    assert store.append(new).stored == 9
    store.close()

    second = outcome_of(training_flow(params))
    run2 = client.get_run(second["run_id"])
    assert run2.data.tags["data/watermark"] == f"{last_ts + 9}:n7" != watermark1
    collection = _artifact(second["run_id"], "data/lineage.json")["snapshot"]["collection"]
    assert collection["mode"] == "incremental" and collection["rows_read"] == 9
    assert collection["since"] == watermark1
    assert collection["base_digest"] == first["data_digest"] != second["data_digest"]
    report = _artifact(second["run_id"], "validation/report.json")
    assert report["collection"]["new_users"] == 1
    assert report["collection"]["events_new_users"] == 8
    assert report["collection"]["pairs_updated"] == 1  # the clicked pair, re-weighted
    assert report["success"] is True
    assert run2.data.metrics["feedback/ctr_v1"] == 1 / 3
    assert run2.data.metrics["feedback/served_lists_v1"] == 3
    ctr = _artifact(second["run_id"], "feedback/click_through.json")
    assert ctr["versions"][0]["engaged"] == 1 and "events.db" in ctr["event_store"]
