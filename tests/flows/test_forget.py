"""Forgetting between two training runs: the next run trains without the user and logs the
audit records since the previous run (ids hashed)."""

import json

import mlflow
from mlflow import MlflowClient

from flows.training import TrainingParams, training_flow
from recsys_core.events import EventStore
from recsys_core.privacy.forget import forget_user, user_key
from recsys_core.tracking.model_store import load_recommender
from recsys_core.tracking.registry import VersionRef
from tasks.forget import ARTIFACT, WATERMARK_TAG

TINY = dict(data={"synthetic_size": "tiny"}, registered_model="forgettest",
            experiment="forgettest", gate={"rating": {"require_beat_baseline": False}})


def _json(run_id, path, tmp):
    return json.loads(open(mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=path, dst_path=str(tmp))).read())


def test_the_next_run_trains_without_the_user_and_logs_the_audit(workspace, monkeypatch):
    url = f"sqlite:///{workspace / 'events.db'}"
    monkeypatch.setenv("RECSYS_EVENTS_URL", url)
    monkeypatch.delenv("RECSYS_SERVE_URL", raising=False)
    EventStore(url).upgrade()
    first = training_flow(TrainingParams(**TINY))
    v1 = VersionRef("forgettest", first["version"], first["run_id"])
    victim = [u for u in load_recommender(v1).user_vocab_.to_list() if len(u) > 1][0]
    client = MlflowClient()
    assert client.get_run(first["run_id"]).data.tags[WATERMARK_TAG] == "0"

    report = forget_user(victim, reason="request 1", data_dir=".recsys/data")
    assert report.outcome == "done"
    assert [(v["name"], v["version"]) for v in report.versions] == [("forgettest", "1")]
    assert list(report.files["snapshots"])  # the first run's snapshot held the user
    assert victim not in load_recommender(v1).user_vocab_.to_list()

    second = training_flow(TrainingParams(**TINY))
    run = client.get_run(second["run_id"])
    assert run.data.tags[WATERMARK_TAG] == str(report.audit_id)
    audit = _json(second["run_id"], ARTIFACT, workspace / "a")
    assert [r["user_key"] for r in audit["records"]] == [user_key(victim)]
    assert audit["records"][0]["reason"] == "request 1"
    assert f'"{victim}"' not in json.dumps(audit)
    lineage = _json(second["run_id"], "data/lineage.json", workspace / "b")
    assert lineage["snapshot"]["tombstoned_removed"] > 0
    v2 = VersionRef("forgettest", second["version"], second["run_id"])
    assert victim not in load_recommender(v2).user_vocab_.to_list()
