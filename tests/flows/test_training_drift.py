"""The training flow's drift check against the champion's snapshot, and pseudonymous ids."""

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client

from flows.training import TrainingParams, outcome_of, training_flow
from recsys_core.data.synthetic import config_for, generate
from recsys_core.exceptions import ConfigError, DataValidationError
from recsys_core.pseudonyms import KEY_ENV, pseudonymize
from recsys_core.tracking import registry

NAMES = dict(registered_model="drifttest", experiment="drifttest")
TINY = dict(data={"synthetic_size": "tiny"}, **NAMES)
# the first run must become champion of both roles on tiny data, whatever popularity scores
NO_BASELINE = {
    "rating": {"require_beat_baseline": False},
    "ranking": {"require_beat_baseline": False, "baseline_guards": []},
}


def _runs():
    client = MlflowClient()
    exp = client.get_experiment_by_name("drifttest")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])


def _versions():
    return MlflowClient().search_model_versions("name='drifttest'")


def _drifted(workspace: Path) -> str:
    """The tiny data set with every item renamed: popularity JS 1, every item new."""
    frame = generate(config_for("tiny")).interactions
    frame["item"] = "x" + frame["item"].astype(str)
    path = workspace / "drifted.parquet"
    frame.to_parquet(path, index=False)
    return str(path)


def test_drift_past_a_stop_limit_stops_before_training_and_a_warning_does_not(workspace):
    first = training_flow(TrainingParams(**TINY, gate=NO_BASELINE))
    assert first["promoted"]
    client = MlflowClient()
    tags = client.get_run(first["run_id"]).data.tags
    assert tags["recsys.drift"] == "skipped" and "no champion" in tags["recsys.drift_skipped"]

    source = _drifted(workspace)
    stop = {"drift": {"item_popularity_js": {"warn": 0.2, "stop": 0.5}}}
    with pytest.raises(DataValidationError) as info:
        training_flow(
            TrainingParams(
                **{**TINY, "data": {"source": source}}, validation=stop, gate=NO_BASELINE
            )
        )
    message = str(info.value)
    assert "item_popularity_js = 1 >= validation.drift.item_popularity_js.stop = 0.5" in message
    assert f"champion-ranking version {first['version']}" in message
    ranking = registry.alias_of(registry.RANKING)
    assert registry.get_alias("drifttest", ranking).version == first["version"]
    assert len(_versions()) == 1  # nothing trained or registered
    failed = _runs()[0]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["recsys.drift"] == "stop"
    assert failed.data.tags["recsys.drift_reference"] == first["data_digest"]
    assert failed.data.metrics["drift/item_popularity_js"] == pytest.approx(1.0)
    assert failed.data.metrics["drift/new_item_share"] == pytest.approx(1.0)
    assert failed.data.metrics["drift/new_user_share"] == pytest.approx(0.0)
    assert "model.name" not in failed.data.params  # stopped before the inputs were logged
    arts = {a.path for a in client.list_artifacts(failed.info.run_id, "drift")}
    assert arts == {"drift/report.md", "drift/report.json", "drift/drift.png"}
    report = client.download_artifacts(failed.info.run_id, "drift/report.md", str(workspace))
    assert Path(report).read_text().startswith("# Data drift: STOPPED")
    with get_client(sync_client=True) as prefect:
        flow_run_id = failed.data.tags["prefect.flow_run_id"]
        artifacts = prefect.read_artifacts()
    drift_md = [
        a for a in artifacts if a.key == "drift-report" and str(a.flow_run_id) == flow_run_id
    ]
    assert drift_md and "| item_popularity_js | 1 |" in drift_md[0].data

    # the default limits only warn: the same data trains, tagged and flagged
    out = outcome_of(
        training_flow(
            TrainingParams(**{**TINY, "data": {"source": source}}, gate=NO_BASELINE),
            return_state=True,
        )
    )
    assert out["version"] == "2"
    run = client.get_run(out["run_id"])
    assert run.data.tags["recsys.drift"] == "warn"
    assert (
        "new_item_share = 1 >= validation.drift.new_item_share.warn = 0.3"
        in run.data.tags["recsys.drift_flags"]
    )


def test_pseudonymized_run_keeps_no_raw_user_id(workspace, monkeypatch):
    frame = generate(config_for("tiny")).interactions
    frame["user"] = "person-" + frame["user"].astype(str)
    frame.to_csv(workspace / "people.csv", index=False)
    params = TrainingParams(
        **{**TINY, "data": {"source": str(workspace / "people.csv"), "pseudonymize_users": True}},
        gate=NO_BASELINE,
    )
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=f"{KEY_ENV} is not set"):
        training_flow(params)
    assert _versions() == []

    key = "flow-test-key-0123456789abcdef"
    monkeypatch.setenv(KEY_ENV, key)
    out = training_flow(params)
    client = MlflowClient()
    mv = client.get_model_version("drifttest", out["version"])
    assert mv.tags["recsys.pseudonymized"] == "true"
    snapshots = list((workspace / ".recsys/data/snapshots").glob("*/interactions.parquet"))
    assert snapshots
    for snap in snapshots:
        users = set(pd.read_parquet(snap)["user"])
        assert not any(u.startswith("person-") for u in users)
        assert pseudonymize("person-1", key.encode()) in users
    state = Path(client.download_artifacts(out["run_id"], "model_state", str(workspace / "st")))
    files = [p for p in state.rglob("*") if p.is_file()]
    assert files
    for path in [*files, *snapshots]:
        assert b"person-" not in path.read_bytes(), path
        assert key.encode() not in path.read_bytes(), path
    user_ids = (state / "user_ids.json").read_text()
    assert pseudonymize("person-1", key.encode()) in user_ids
