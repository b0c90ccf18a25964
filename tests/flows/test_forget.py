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

TINY = dict(
    data={"synthetic_size": "tiny"},
    registered_model="forgettest",
    experiment="forgettest",
    gate={"rating": {"require_beat_baseline": False}},
)


def _json(run_id, path, tmp):
    return json.loads(
        open(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=path, dst_path=str(tmp)
            )
        ).read()
    )


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


VICTIM = "forget-me-7f3a"


def _places_holding(needle: str, root, s3, bucket: str) -> list[str]:
    """Every file under ``root``, object in ``bucket`` and Prefect artifact that holds
    ``needle`` (Parquet read column by column: its pages are compressed)."""
    import io

    import pandas as pd
    from prefect.client.orchestration import get_client

    def parquet_holds(data: bytes) -> bool:
        frame = pd.read_parquet(io.BytesIO(data))
        return any(
            frame[c].astype(str).str.contains(needle, regex=False).any() for c in frame.columns
        )

    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hit = parquet_holds(data) if path.suffix == ".parquet" else needle.encode() in data
        if hit:
            found.append(str(path.relative_to(root)))
    for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        data = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        hit = parquet_holds(data) if obj["Key"].endswith(".parquet") else needle.encode() in data
        if hit:
            found.append(f"s3://{bucket}/{obj['Key']}")
    with get_client(sync_client=True) as client:
        found += [
            f"prefect artifact {a.key}"
            for a in client.read_artifacts(limit=200)
            if needle in str(a.data)
        ]
    return found


def test_after_a_full_loop_forget_leaves_the_id_nowhere(workspace, monkeypatch, s3_endpoint):
    # train (judged model + refit, logged models with input examples), lists served and events
    # stored for the user, batch outputs local and on S3 with the flow's Prefect artifact; after
    # forget, no file, table, object or artifact holds the id
    import pandas as pd

    from flows.batch import BatchParams, batch_recommendations_flow
    from recsys_core.data import files
    from recsys_core.data.synthetic import config_for, generate
    from recsys_core.serving.scorer import Scorer

    for var, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "RECSYS_S3_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(var, value)
    s3 = files.s3_client()
    s3.create_bucket(Bucket="forget-loop")
    url = f"sqlite:///{workspace / 'events.db'}"
    monkeypatch.setenv("RECSYS_EVENTS_URL", url)
    monkeypatch.delenv("RECSYS_SERVE_URL", raising=False)
    store = EventStore(url)
    store.upgrade()
    frame = generate(config_for("tiny")).interactions
    items = frame["item"].value_counts().index[:12]
    mine = pd.DataFrame(
        {
            "user": VICTIM,
            "item": items,
            "rating": 4.0,
            "timestamp": frame["timestamp"].min() + pd.RangeIndex(12),
        }
    )
    # the source is the upstream system's data, outside the searched folder: forgetting drops
    # the user from every later collection (tombstones), not from the source itself
    source = workspace.parent / f"{workspace.name}-source.parquet"
    pd.concat([frame, mine], ignore_index=True).to_parquet(source)
    params = dict(
        data={"source": str(source)},
        registered_model="loop",
        experiment="loop",
        model={"name": "ease"},
        roles=["ranking"],
        gate={"ranking": {"require_beat_baseline": False}},
    )
    run = training_flow(TrainingParams(**params))
    ref = VersionRef("loop", run["version"], run["run_id"])
    MlflowClient().set_registered_model_alias("loop", "champion-ranking", ref.version)
    model = load_recommender(ref)
    assert VICTIM in model.user_vocab_.to_list()
    # what the service does for a request of the user: a list scored, recorded, acted on
    served = Scorer(model).recommend(VICTIM, 5)
    store.record_served(
        "rec-1",
        user_id=VICTIM,
        items=[s.item_id for s in served.items],
        registered_model="loop",
        model_version=ref.version,
    )
    store.append(
        [
            {
                "event_id": "e-1",
                "user_id": VICTIM,
                "item_id": str(items[0]),
                "type": "click",
                "recommendation_id": "rec-1",
            }
        ]
    )
    for out in (str(workspace / "batch"), "s3://forget-loop/daily"):
        batch_recommendations_flow(
            BatchParams(registered_model="loop", out=out, k=3, experiment="loop-batch")
        )

    before = _places_holding(VICTIM, workspace, s3, "forget-loop")
    # the search can fail: before forgetting it finds the user in each kind of place
    for place in (
        "events.db",
        ".recsys/data/snapshots",
        "model_state",
        "evaluated_state",
        "batch/model_version=",
        "s3://forget-loop/daily",
    ):
        assert any(place in p for p in before), (place, before)
    assert not [p for p in before if "input_example" in p]  # synthetic examples
    assert not [p for p in before if p.startswith("prefect") or p.endswith("sample.csv")]

    digest_before = (
        MlflowClient().get_model_version("loop", ref.version).tags["recsys.model_state.sha256"]
    )
    report = forget_user(VICTIM, reason="full loop", data_dir=".recsys/data")
    assert report.outcome == "done"
    assert set(report.files["batch_outputs"]) == {
        str(workspace / "batch" / f"model_version={ref.version}"),
        f"s3://forget-loop/daily/model_version={ref.version}",
    }
    assert _places_holding(VICTIM, workspace, s3, "forget-loop") == []
    # the served state was rewritten with its digest: the service still accepts the version
    from recsys_core.tracking.state_digest import DIGEST_TAG

    tags = MlflowClient().get_model_version("loop", ref.version).tags
    assert tags[DIGEST_TAG] != digest_before
    assert VICTIM not in load_recommender(ref, digest=tags[DIGEST_TAG]).user_vocab_.to_list()
