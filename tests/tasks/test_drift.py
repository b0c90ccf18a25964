"""The drift task: a reference that is gone or altered, a registry that fails, a stop limit."""

import shutil

import pytest
from mlflow import MlflowClient

from recsys_core.data import snapshot
from recsys_core.data.schema import Collected
from recsys_core.data.synthetic import config_for, generate
from recsys_core.exceptions import DataValidationError
from recsys_core.tracking import mlflow_run, registry
from recsys_core.validation import drift
from recsys_core.validation.rules import DriftRules
from tasks.drift import check_drift


@pytest.fixture
def champion(workspace):
    """A champion trained on the tiny data set's snapshot; the data dir and that snapshot."""
    data_dir = workspace / "data"
    frame = generate(config_for("tiny")).interactions
    ref = snapshot.write(Collected(frame), data_dir / "snapshots")
    run_id = mlflow_run.start_run("drift", "champion")
    version = registry.register(
        "drifttask", f"runs:/{run_id}/model_state", run_id, {"data_digest": ref.digest}
    )
    registry.promote(version, {}, expected=None, alias=registry.alias_of(registry.RANKING))
    frame = frame.copy()
    frame["item"] = "x" + frame["item"].astype(str)
    current = snapshot.write(Collected(frame), data_dir / "snapshots")
    return str(data_dir), ref, current


def _tags(run_id):
    return MlflowClient().get_run(run_id).data.tags


def test_a_reference_that_is_gone_or_altered_is_reported_and_the_run_goes_on(champion):
    data_dir, ref, current = champion
    run_id = mlflow_run.start_run("drift", "r")
    frame, _ = snapshot.read(ref)
    frame.iloc[:5].to_parquet(ref.interactions_path, index=False)  # altered after it was written
    out = check_drift(current, DriftRules(), data_dir, "drifttask", run_id)
    assert out.level == "skipped" and out.reason.startswith("no reference snapshot")
    assert "was altered after it was written" in out.reason
    shutil.rmtree(ref.path)  # trained on another machine
    out = check_drift(current, DriftRules(), data_dir, "drifttask", run_id)
    assert out.level == "skipped" and ref.digest[:16] in out.reason
    assert _tags(run_id)["recsys.drift"] == "skipped"
    assert "drift/item_popularity_js" not in MlflowClient().get_run(run_id).data.metrics


def test_a_registry_that_fails_once_is_retried(champion, monkeypatch, faults):
    data_dir, _, current = champion
    monkeypatch.setenv("RECSYS_IO_RETRIES", "2")
    import tasks.drift

    flaky = faults(tasks.drift.champion_digest, ConnectionError("tracking server reset"), n=1)
    monkeypatch.setattr("tasks.drift.champion_digest", flaky)
    run_id = mlflow_run.start_run("drift", "r")
    out = check_drift(current, DriftRules(), data_dir, "drifttask", run_id)
    assert flaky.calls == 2 and out.level == "warn"
    assert MlflowClient().get_run(run_id).data.metrics["drift/new_item_share"] == 1.0


def test_a_stop_is_not_retried_and_the_report_is_logged_first(champion, monkeypatch, faults):
    data_dir, _, current = champion
    monkeypatch.setenv("RECSYS_IO_RETRIES", "3")
    counted = faults(drift.compare, None)
    monkeypatch.setattr("tasks.drift.drift.compare", counted)
    run_id = mlflow_run.start_run("drift", "r")
    rules = DriftRules(new_item_share={"warn": 0.1, "stop": 0.9})
    with pytest.raises(DataValidationError, match="validation.drift.new_item_share.stop = 0.9"):
        check_drift(current, rules, data_dir, "drifttask", run_id)
    assert counted.calls == 1
    assert _tags(run_id)["recsys.drift"] == "stop"
    arts = {a.path for a in MlflowClient().list_artifacts(run_id, "drift")}
    assert "drift/drift.png" in arts


def test_no_champion_or_disabled_means_nothing_to_compare(workspace):
    snap = snapshot.write(
        Collected(generate(config_for("tiny")).interactions), workspace / "data" / "snapshots"
    )
    run_id = mlflow_run.start_run("drift", "r")
    out = check_drift(snap, DriftRules(), str(workspace / "data"), "nobody-yet", run_id)
    assert out.level == "skipped" and "no champion-ranking of 'nobody-yet'" in out.reason
    out = check_drift(snap, DriftRules(enabled=False), str(workspace / "data"), "x", run_id)
    assert out.level == "skipped" and "validation.drift.enabled=false" in out.reason
