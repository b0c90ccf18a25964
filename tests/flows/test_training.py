"""The training flow end to end on the embedded default (sqlite MLflow, Prefect test server).

Margins: on the tiny data set (209 test ratings) sgd-mf beats the bias baseline by only 0.006
RMSE, too thin for a test to rest on. The tests below use margins made large by construction:
``global-mean`` is 0.08 RMSE worse than ``bias``; a 1-epoch sgd-mf is 0.07 worse than a 20-epoch
one; on the small data set ``ease`` scores NDCG@10 0.40 (reg=1e6) and 0.45 (default) against
0.35 for popularity.
"""

import json

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from pydantic import ValidationError

from flows.training import TrainingParams, outcome_of, training_flow
from recsys_core.exceptions import DataValidationError
from recsys_core.tracking import registry

NAMES = dict(registered_model="flowtest", experiment="flowtest")
TINY = dict(data={"synthetic_size": "tiny"}, **NAMES)
# the first run of a test judged on the thresholds only (see the module docstring)
NO_BASELINE = {"require_beat_baseline": False}


def _champion():
    return registry.get_alias("flowtest", registry.CHAMPION)


def _versions():
    return MlflowClient().search_model_versions("name='flowtest'")


def _runs():
    client = MlflowClient()
    exp = client.get_experiment_by_name("flowtest")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])


def _flow_run(run) -> object:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run.data.tags["prefect.flow_run_id"])


def test_first_run_promotes_then_weak_model_is_refused(workspace):
    first = training_flow(TrainingParams(**TINY, gate=NO_BASELINE))
    assert first["promoted"] is True
    assert _champion().version == first["version"] == "1"

    client = MlflowClient()
    run = client.get_run(first["run_id"])
    assert run.info.status == "FINISHED"
    assert {"rmse", "mae", "ndcg_at_10", "precision_at_10", "recall_at_10", "map_at_10",
            "hit_rate_at_10", "coverage_at_10", "baseline/rmse", "data/n_train",
            "data/n_test"} <= set(run.data.metrics)
    assert not any(m.startswith("champion/") for m in run.data.metrics)
    # every setting, from the library's configs, under a stable dotted name
    params = run.data.params
    assert params["model.name"] == "sgd-mf" and params["model.factors"] == "100"
    assert params["split.strategy"] == "time" and params["data.duplicates"] == "latest"
    assert params["gate.require_beat_baseline"] == "False"
    assert params["validation.rating_max"] == "5.0" and params["k"] == "10"
    assert run.data.tags["recsys.trigger"] == "manual"
    flow_run_id = run.data.tags["prefect.flow_run_id"]
    assert run.data.tags["prefect.flow_run_url"].endswith(f"/flow-runs/flow-run/{flow_run_id}")
    assert f"]({run.data.tags['prefect.flow_run_url']})" in run.data.tags["mlflow.note.content"]
    assert run.data.tags["recsys.data_digest"] == first["data_digest"]
    assert run.data.tags["recsys.gate"] == "passed"
    assert run.data.tags["mlflow.note.content"].startswith("# Gate PASSED")
    history = client.get_metric_history(first["run_id"], "epoch/val_rmse")
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
    assert mv.description.startswith("# Gate PASSED")
    assert _flow_run(run).name == "train-sgd-mf-promoted"

    weak = training_flow(TrainingParams(**TINY, model={"params": {"epochs": 1}}),
                         return_state=True)
    assert weak.is_completed() and weak.name == "Refused"
    out = outcome_of(weak)
    assert out["promoted"] is False
    assert out["champion"]["rmse"] == pytest.approx(first["metrics"]["rmse"])
    assert out["metrics"]["rmse"] > out["champion"]["rmse"] + 0.05  # a clear margin
    assert "beats champion" in out["gate"]
    assert _champion().version == "1"
    assert registry.get_alias("flowtest", registry.CHALLENGER).version == out["version"]
    refused = client.get_model_version("flowtest", out["version"])
    assert refused.tags["status"] == "refused"
    assert refused.description.startswith("# Gate REFUSED\n\n- **FAIL ")
    run = client.get_run(out["run_id"])
    assert run.data.tags["recsys.gate"] == "refused"
    assert run.data.params["model.epochs"] == "1"
    assert run.data.metrics["champion/rmse"] == pytest.approx(first["metrics"]["rmse"])
    reasons = run.data.tags["recsys.gate_reasons"].split(" | ")
    assert reasons[0].startswith("FAIL") and reasons[-1].startswith("PASS")
    assert reasons == sorted(reasons, key=lambda r: not r.startswith("FAIL"))
    flow_run = _flow_run(run)
    assert flow_run.name == "train-sgd-mf-refused"
    assert flow_run.state.type.value == "COMPLETED" and flow_run.state.name == "Refused"

    # the served model answers both ways
    model = mlflow.pyfunc.load_model("models:/flowtest@champion")
    recs = model.predict(pd.DataFrame({"user": ["1", "2"]}), params={"k": 5})
    assert list(recs.columns) == ["user", "rank", "item", "score"] and len(recs) == 10
    preds = model.predict(pd.DataFrame({"user": ["1", "nobody"], "item": ["1", "2"]}))
    assert preds["prediction"].between(1, 5).all()


def test_a_challenger_worse_than_the_baseline_is_refused_without_champion(workspace,
                                                                          monkeypatch):
    # the split is read once by the evaluate task (and once by training), whatever it scores
    reads: list[str] = []
    read_parquet = pd.read_parquet

    def counting(path, *args, **kwargs):
        reads.append(str(path).rsplit("/", 1)[-1])
        return read_parquet(path, *args, **kwargs)

    monkeypatch.setattr(pd, "read_parquet", counting)
    state = training_flow(TrainingParams(**TINY, model={"name": "global-mean"}),
                          return_state=True)
    assert reads.count("train.parquet") == 2 and reads.count("test.parquet") == 2

    out = outcome_of(state)
    assert state.name == "Refused" and out["promoted"] is False
    assert out["champion"] is None and _champion() is None
    assert out["metrics"]["rmse"] > out["baseline"]["rmse"] + 0.05
    assert out["gate_reasons"][0].startswith("FAIL beats baseline")
    run = MlflowClient().get_run(out["run_id"])
    assert run.data.tags["recsys.baseline_model"] == "bias"
    assert run.data.metrics["baseline/rmse"] == pytest.approx(out["baseline"]["rmse"])


def test_invalid_data_stops_at_validation_and_champion_does_not_move(workspace):
    good = training_flow(TrainingParams(**TINY, gate=NO_BASELINE))
    assert good["promoted"]
    bad = pd.DataFrame({"user": ["1", "2", "3"] * 50, "item": [str(i) for i in range(150)],
                        "rating": [4.0, 7.0, 3.0] * 50, "timestamp": range(150)})
    bad.to_csv(workspace / "bad.csv", index=False)
    with pytest.raises(DataValidationError, match="rating"):
        training_flow(TrainingParams(**{**TINY, "data": {"source": str(workspace / "bad.csv")}}))
    assert _champion().version == good["version"]
    assert len(_versions()) == 1  # nothing registered for the bad data
    failed = _runs()[0]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["recsys.validation"] == "failed"
    assert "validation/report.json" in {
        a.path for a in MlflowClient().list_artifacts(failed.info.run_id, "validation")
    }
    assert _flow_run(failed).name == "train-sgd-mf-failed"


def test_quarantine_sets_bad_rows_aside_and_trains(workspace):
    from recsys_core.data.synthetic import config_for, generate

    frame = generate(config_for("tiny")).interactions
    frame.loc[:4, "rating"] = 9.0
    frame.to_parquet(workspace / "dirty.parquet", index=False)
    out = outcome_of(training_flow(TrainingParams(
        **{**TINY, "data": {"source": str(workspace / "dirty.parquet")}},
        validation={"quarantine": True}, gate=NO_BASELINE)))
    assert out["version"] == "1"
    arts = {a.path for a in MlflowClient().list_artifacts(out["run_id"], "validation")}
    assert "validation/quarantined.parquet" in arts


def test_settings_are_validated_once_when_the_parameters_are_built(workspace):
    with pytest.raises(ValidationError, match="unknown model 'mf'; available: .*sgd-mf"):
        TrainingParams(**TINY, model={"name": "mf"})
    with pytest.raises(ValidationError, match="factors=-3"):
        TrainingParams(**TINY, model={"params": {"factors": -3}})
    with pytest.raises(ValidationError, match="unknown parameter.*'factor'"):
        TrainingParams(**TINY, model={"params": {"factor": 3}})
    with pytest.raises(ValidationError, match="set the rating scale once"):
        TrainingParams(**TINY, validation={"rating_max": 10})
    # strings (from the CLI or a form) become typed values once
    spec = TrainingParams(model={"name": "als", "params": {"factors": "8"}}).model
    assert spec.params == {"factors": 8} and spec.config.iterations == 15
    # the rating scale is set once: validation follows data
    assert TrainingParams(data={"rating_max": 10}).validation.rating_max == 10
    # the Prefect form: a dropdown of the models, each model's hyperparameters described
    schema = json.dumps(TrainingParams.model_json_schema())
    assert '"enum": ["als", "bias"' in schema and "**implicit-als**: factors=" in schema
    # a deployment run gets a dict and validates it the same way
    assert MlflowClient().get_experiment_by_name("flowtest") is None


def test_a_crash_while_registering_leaves_champion_alone(workspace, monkeypatch):
    first = training_flow(TrainingParams(**TINY, gate=NO_BASELINE))
    calls = []

    def broken_register(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("registry went away")

    monkeypatch.setattr("tasks.tracking.registry.register", broken_register)
    monkeypatch.setenv("RECSYS_IO_RETRIES", "2")
    monkeypatch.setenv("RECSYS_IO_RETRY_DELAYS", "0")
    with pytest.raises(RuntimeError, match="registry went away"):
        training_flow(TrainingParams(**TINY, model={"params": {"factors": 10}}))
    assert len(calls) == 3  # the first attempt and two retries
    assert _champion().version == first["version"]
    assert len(_versions()) == 1
    run = _runs()[0]
    assert run.info.status == "FAILED"
    assert "registry went away" in run.data.tags["recsys.error"]


def test_cli_train_recommend_rollback_and_exit_codes(workspace):
    from typer.testing import CliRunner

    from recsys_cli.main import app

    runner = CliRunner()
    common = ["--synthetic-size", "small", "--registered-model", "flowtest",
              "--experiment", "flowtest", "--model", "ease"]
    # a ranker through the whole flow: a heavily regularised EASE, then the default one
    first = runner.invoke(app, ["train", *common, "--param", "reg=1000000"])
    assert first.exit_code == 0, first.output
    assert "PROMOTED" in first.output and "Traceback" not in first.output
    second = runner.invoke(app, ["train", *common, "--set", "gate.min_improvement=0.02"])
    assert second.exit_code == 0, second.output
    assert "PASS beats champion: ndcg_at_10" in second.output and _champion().version == "2"
    assert "version 1 is now status: replaced" in second.output
    refused = runner.invoke(app, ["train", *common, "--model", "popularity"])
    assert refused.exit_code == 3, refused.output
    assert "REFUSED" in refused.output and "FAIL beats champion" in refused.output
    assert _champion().version == "2"
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
    assert bad.exit_code == 3, bad.output  # refused by validation
    # the duplicates policy (latest) leaves one row of the 150, which validation refuses
    assert "fewer than 100 rows" in " ".join(bad.output.split())
    assert "Traceback" not in bad.output
    refused_dups = runner.invoke(app, ["train", *common, "--source", str(dup),
                                       "--duplicates", "refuse"])
    assert refused_dups.exit_code == 2, refused_dups.output  # bad data
    assert "duplicate" in refused_dups.output.lower()
    assert _champion().version == "1"
    usage = runner.invoke(app, ["train", *common, "--test-fraction", "1.5"])
    assert usage.exit_code == 2
    assert "split.test_fraction: Input should be less than 1" in usage.output
    usage = runner.invoke(app, ["train", *common, "--set", "gate.nope=1"])
    assert usage.exit_code == 2 and "gate.nope: unknown setting" in usage.output


def test_a_private_model_logs_its_budget_and_the_gate_holds_it_to_one(workspace):
    # the tiny data set has too few users for a real budget: epsilon 1e4 is private in form only,
    # enough to check the wiring (the privacy record logged, the threshold read by the gate)
    dp = {"name": "dp-als", "params": {"epsilon": 1e4, "iterations": 3}}
    within = outcome_of(training_flow(TrainingParams(
        **TINY, model=dp, gate={**NO_BASELINE, "thresholds": {"rmse": 1.5, "epsilon": 2e4}})))
    assert within["promoted"] is True
    logged = MlflowClient().get_run(within["run_id"]).data.metrics
    # the accountant's epsilon for the calibrated noise: at most the target, and close to it
    assert 0.9e4 <= logged["epsilon"] <= 1e4
    assert 0 < logged["delta"] < 1

    over = outcome_of(training_flow(TrainingParams(
        **TINY, model=dp, gate={**NO_BASELINE, "thresholds": {"rmse": 1.5, "epsilon": 10}})))
    assert over["promoted"] is False
    assert any("epsilon" in r and r.startswith("FAIL") for r in over["gate_reasons"]), over
    assert _champion().version == within["version"]
