"""The training flow end to end on the embedded default (sqlite MLflow, Prefect test server)."""

import json

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.training import TrainingParams, training_flow
from recsys_core.exceptions import ConfigError, DataValidationError, UnknownModelError
from recsys_core.tracking import registry

TINY = dict(synthetic_size="tiny", registered_model="flowtest", experiment="flowtest")


def _champion():
    return registry.get_alias("flowtest", registry.CHAMPION)


def _versions():
    return MlflowClient().search_model_versions("name='flowtest'")


def test_first_run_promotes_then_weak_model_is_refused(workspace):
    first = training_flow(TrainingParams(**TINY))
    assert first["promoted"] is True
    assert _champion().version == first["version"] == "1"

    client = MlflowClient()
    run = client.get_run(first["run_id"])
    assert run.info.status == "FINISHED"
    assert {"rmse", "mae", "ndcg_at_10", "precision_at_10", "recall_at_10", "map_at_10",
            "hit_rate_at_10", "coverage_at_10"} <= set(run.data.metrics)
    assert run.data.params["model"] == "sgd-mf"
    assert run.data.params["model_params.factors"] == "100"
    assert run.data.tags["recsys.trigger"] == "manual"
    assert run.data.tags["recsys.data_digest"] == first["data_digest"]
    assert run.data.tags["recsys.gate"] == "passed"
    history = client.get_metric_history(first["run_id"], "epoch_val_rmse")
    assert [m.step for m in history] == list(range(1, 21))
    artifacts = {a.path for a in client.list_artifacts(first["run_id"])}
    assert {"model_state", "plots", "validation", "gate", "data"} <= artifacts
    state = {a.path for a in client.list_artifacts(first["run_id"], "model_state")}
    assert {"model_state/state.npz", "model_state/user_ids.json",
            "model_state/item_ids.json"} <= state
    plots = {a.path for a in client.list_artifacts(first["run_id"], "plots")}
    assert plots == {"plots/learning_curve.png", "plots/rating_distribution.png"}
    assert run.inputs.dataset_inputs[0].dataset.digest == first["data_digest"][:36]
    mv = client.get_model_version("flowtest", "1")
    assert mv.tags["status"] == "champion"
    assert mv.tags["data_digest"] == first["data_digest"]
    assert mv.tags["previous_champion"] == "none"

    weak = training_flow(TrainingParams(**TINY, model_params={"epochs": 1}))
    assert weak["promoted"] is False
    assert weak["champion"]["rmse"] == pytest.approx(first["metrics"]["rmse"])
    assert "beats champion" in weak["gate"]
    assert _champion().version == "1"
    assert registry.get_alias("flowtest", registry.CHALLENGER).version == weak["version"]
    assert client.get_model_version("flowtest", weak["version"]).tags["status"] == "refused"
    assert client.get_run(weak["run_id"]).data.tags["recsys.gate"] == "refused"

    # the served model answers both ways
    model = mlflow.pyfunc.load_model("models:/flowtest@champion")
    recs = model.predict(pd.DataFrame({"user": ["1", "2"]}), params={"k": 5})
    assert list(recs.columns) == ["user", "rank", "item", "score"] and len(recs) == 10
    preds = model.predict(pd.DataFrame({"user": ["1", "nobody"], "item": ["1", "2"]}))
    assert preds["prediction"].between(1, 5).all()


def test_invalid_data_stops_at_validation_and_champion_does_not_move(workspace):
    good = training_flow(TrainingParams(**TINY))
    assert good["promoted"]
    bad = pd.DataFrame({"user": ["1", "2", "3"] * 50, "item": [str(i) for i in range(150)],
                        "rating": [4.0, 7.0, 3.0] * 50, "timestamp": range(150)})
    bad.to_csv(workspace / "bad.csv", index=False)
    with pytest.raises(DataValidationError, match="rating"):
        training_flow(TrainingParams(**{**TINY, "source": str(workspace / "bad.csv")}))
    assert _champion().version == good["version"]
    assert len(_versions()) == 1  # nothing registered for the bad data
    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("flowtest").experiment_id],
        order_by=["attributes.start_time DESC"],
    )
    failed = runs[0]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["recsys.validation"] == "failed"
    assert "validation/report.json" in {
        a.path for a in MlflowClient().list_artifacts(failed.info.run_id, "validation")
    }


def test_quarantine_sets_bad_rows_aside_and_trains(workspace):
    from recsys_core.data.synthetic import config_for, generate

    frame = generate(config_for("tiny")).interactions
    frame.loc[:4, "rating"] = 9.0
    frame.to_parquet(workspace / "dirty.parquet", index=False)
    out = training_flow(TrainingParams(**{**TINY, "source": str(workspace / "dirty.parquet"),
                                          "quarantine": True}))
    assert out["version"] == "1"
    arts = {a.path for a in MlflowClient().list_artifacts(out["run_id"], "validation")}
    assert "validation/quarantined.parquet" in arts


def test_unknown_model_and_bad_params_fail_before_any_run(workspace):
    with pytest.raises(UnknownModelError, match="available: .*sgd-mf"):
        training_flow(TrainingParams(**TINY, model="mf"))
    with pytest.raises(ConfigError, match="factors"):
        training_flow(TrainingParams(**TINY, model_params={"factors": -3}))
    assert MlflowClient().get_experiment_by_name("flowtest") is None


def test_a_crash_while_registering_leaves_champion_alone(workspace, monkeypatch):
    first = training_flow(TrainingParams(**TINY))

    def broken_register(*args, **kwargs):
        raise RuntimeError("registry went away")

    monkeypatch.setattr("tasks.tracking.registry.register", broken_register)
    monkeypatch.setattr("tasks._runtime.IO_RETRY_DELAYS", [0, 0, 0])
    with pytest.raises(RuntimeError, match="registry went away"):
        training_flow(TrainingParams(**TINY, model_params={"factors": 10}))
    assert _champion().version == first["version"]
    assert len(_versions()) == 1
    runs = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name("flowtest").experiment_id],
        order_by=["attributes.start_time DESC"],
    )
    assert runs[0].info.status == "FAILED"
    assert "registry went away" in runs[0].data.tags["recsys.error"]


def test_cli_train_recommend_and_rollback(workspace):
    from typer.testing import CliRunner

    from recsys_cli.main import app

    runner = CliRunner()
    common = ["--synthetic-size", "tiny", "--registered-model", "flowtest",
              "--experiment", "flowtest"]
    first = runner.invoke(app, ["train", *common, "--param", "factors=4"])
    assert first.exit_code == 0, first.output
    assert "promoted to champion" in first.output
    second = runner.invoke(app, ["train", *common, "--param", "factors=10"])
    assert second.exit_code == 0, second.output
    assert "gate passed" in second.output and _champion().version == "2"
    recs = runner.invoke(app, ["recommend", "--user", "1", "-k", "3", "--registered-model",
                               "flowtest", "--json"])
    assert recs.exit_code == 0, recs.output
    assert [r["rank"] for r in json.loads(recs.stdout)] == [1, 2, 3]
    back = runner.invoke(app, ["rollback", "--registered-model", "flowtest"])
    assert back.exit_code == 0, back.output
    assert "from version 2 back to version 1" in back.output
    assert _champion().version == "1"
    dup = workspace / "dup.csv"
    dup.write_text("user,item,rating,timestamp\n" + "1,1,4,10\n" * 150)
    bad = runner.invoke(app, ["train", *common, "--source", str(dup)])
    assert bad.exit_code == 3  # refused by validation
    # the duplicates policy (latest) leaves one row of the 150, which validation refuses
    assert "fewer than 100 rows" in " ".join(bad.output.split())
    assert _champion().version == "1"
