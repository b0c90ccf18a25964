"""The training flow end to end on the embedded default (sqlite MLflow, Prefect test server).

Margins: on the tiny data set (209 test ratings) sgd-mf beats the bias baseline by only 0.006
RMSE, too thin for a test to rest on. The tests below use margins made large by construction:
``global-mean`` is 0.08 RMSE worse than ``bias``; a 1-epoch sgd-mf is 0.07 worse than a 20-epoch
one; on the small data set ``ease`` scores NDCG@10 0.40 (reg=1e6) and 0.45 (default) against
0.35 for popularity (recall@10 0.26 against 0.18). On the tiny data set popularity dominates:
sgd-mf ranks at NDCG@10 0.389 and recall@10 0.367 against popularity's 0.496 and 0.516, so it
loses the ranking gate by 0.11 NDCG while it can win the rating gate.
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
from recsys_core.privacy import accounting
from recsys_core.tracking import registry

NAMES = dict(registered_model="flowtest", experiment="flowtest")
TINY = dict(data={"synthetic_size": "tiny"}, **NAMES)
# the first run of a test judged on the rating thresholds only (see the module docstring)
NO_BASELINE = {"rating": {"require_beat_baseline": False}}
RANKING, RATING = registry.ROLE_ALIASES["ranking"], registry.ROLE_ALIASES["rating"]


def _champion(alias=RATING):
    return registry.get_alias("flowtest", alias)


def _versions():
    return MlflowClient().search_model_versions("name='flowtest'")


def _runs():
    client = MlflowClient()
    exp = client.get_experiment_by_name("flowtest")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"])


def _flow_run(run) -> object:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(run.data.tags["prefect.flow_run_id"])


def test_a_rating_model_below_popularity_is_promoted_for_rating_only(workspace):
    first = training_flow(TrainingParams(**TINY, gate=NO_BASELINE))
    assert first["promoted"] is True and first["promoted_roles"] == ["rating"]
    assert first["gate"] == "promoted (rating); ranking refused"
    assert _champion().version == first["version"] == "1"
    assert _champion(RANKING) is None  # it ranks below popularity: never served as lists
    ranking = first["roles"]["ranking"]
    assert ranking["verdict"] == "refused" and ranking["baseline_name"] == "popularity"
    # judged on the warm users (those with training rows), the cold ones a guard
    assert ranking["gate_reasons"][0].startswith("FAIL beats baseline: warm/ndcg_at_10")
    assert first["roles"]["rating"]["primary_metric"] == "warm/rmse"
    # the margin the test rests on (0.11, see the module docstring)
    baseline = first["baselines"]["popularity"]  # stronger than recent-popularity here
    assert first["metrics"]["ndcg_at_10"] < baseline["ndcg_at_10"] - 0.05

    client = MlflowClient()
    run = client.get_run(first["run_id"])
    assert run.info.status == "FINISHED"
    assert {
        "rmse",
        "mae",
        "ndcg_at_10",
        "precision_at_10",
        "recall_at_10",
        "map_at_10",
        "hit_rate_at_10",
        "coverage_at_10",
        "baseline/bias/rmse",
        "baseline/popularity/ndcg_at_10",
        "baseline/recent-popularity/ndcg_at_10",
        "data/n_train",
        "data/n_test",
        "refit/n_ratings",
        "refit/seconds",
    } <= set(run.data.metrics)
    assert {
        "warm/rmse",
        "cold/rmse",
        "warm/ndcg_at_10",
        "cold/ndcg_at_10",
        "warm/users",
        "cold/rows",
        "all/users",
        "cold_items/share",
        "baseline/bias/warm/rmse",
        "baseline/popularity/cold/ndcg_at_10",
    } <= set(run.data.metrics)
    m = run.data.metrics
    assert m["warm/users"] + m["cold/users"] == m["all/users"] and m["warm/users"] > 0
    assert (
        "Populations (test users with / without training rows): warm"
        in run.data.tags["mlflow.note.content"]
    )
    assert not any(m.startswith("champion/") for m in run.data.metrics)
    # every setting, from the library's configs, under a stable dotted name
    params = run.data.params
    assert params["model.name"] == "sgd-mf" and params["model.factors"] == "100"
    assert params["split.strategy"] == "time" and params["data.duplicates"] == "latest"
    assert params["gate.rating.require_beat_baseline"] == "False"
    # the stronger of popularity and recent-popularity under a time split
    assert params["gate.ranking.baseline"] == "auto"
    assert params["roles"] == "auto" and params["refit_full"] == "True"
    assert params["validation.rating_max"] == "5.0" and params["k"] == "10"
    tags = run.data.tags
    assert tags["recsys.trigger"] == "manual"
    flow_run_id = tags["prefect.flow_run_id"]
    assert tags["prefect.flow_run_url"].endswith(f"/flow-runs/flow-run/{flow_run_id}")
    assert f"]({tags['prefect.flow_run_url']})" in tags["mlflow.note.content"]
    assert tags["recsys.data_digest"] == first["data_digest"]
    assert (tags["recsys.gate.rating"], tags["recsys.gate.ranking"]) == ("passed", "refused")
    assert tags["recsys.gate"] == "passed (rating); ranking refused"
    assert tags["recsys.refit"] == "served"
    assert tags["recsys.refit.data_digest"] == first["refit"]["data_digest"]
    assert (
        run.data.metrics["refit/n_ratings"]
        == first["refit"]["n_ratings"]
        == (run.data.metrics["data/n_train"] + run.data.metrics["data/n_test"])
    )
    note = tags["mlflow.note.content"]
    assert note.startswith("# Gate: passed (rating); ranking refused")
    assert "## Gate REFUSED: ranking role" in note and "## Gate PASSED: rating role" in note
    history = client.get_metric_history(first["run_id"], "epoch/val_rmse")
    assert [m.step for m in history] == list(range(1, 31))  # the default epochs
    artifacts = {a.path for a in client.list_artifacts(first["run_id"])}
    assert {"model_state", "evaluated_state", "plots", "validation", "gate", "data"} <= artifacts
    gate_files = {
        a.path
        for r in ("ranking", "rating")
        for a in client.list_artifacts(first["run_id"], f"gate/{r}")
    }
    assert gate_files == {
        f"gate/{r}/decision.{x}" for r in ("ranking", "rating") for x in ("json", "md")
    }
    state = {a.path for a in client.list_artifacts(first["run_id"], "model_state")}
    assert {
        "model_state/state.npz",
        "model_state/user_ids.json",
        "model_state/item_ids.json",
    } <= state
    plots = {a.path for a in client.list_artifacts(first["run_id"], "plots")}
    assert plots == {"plots/learning_curve.png", "plots/rating_distribution.png"}
    assert run.inputs.dataset_inputs[0].dataset.digest == first["data_digest"][:36]
    mv = client.get_model_version("flowtest", "1")
    assert (mv.tags["role.rating"], mv.tags["role.ranking"]) == ("champion", "refused")
    assert mv.tags["status"] == "promoted"
    assert mv.tags["data_digest"] == first["data_digest"]
    assert mv.tags["refit_data_digest"] == first["refit"]["data_digest"]
    assert mv.tags["role.rating.previous"] == "none"
    assert mv.description.startswith("# Gate: passed (rating); ranking refused")
    assert _flow_run(run).name == "train-sgd-mf-promoted-rating"

    weak = training_flow(TrainingParams(**TINY, model={"params": {"epochs": 1}}), return_state=True)
    assert weak.is_completed() and weak.name == "Refused"
    out = outcome_of(weak)
    assert out["promoted"] is False and out["refit"] is None
    rating = out["roles"]["rating"]
    assert rating["champion_version"] == "1"
    # re-scored from the judged model (evaluated_state), so it matches the first run's metrics
    assert rating["champion"]["rmse"] == pytest.approx(first["metrics"]["rmse"])
    assert out["metrics"]["rmse"] > rating["champion"]["rmse"] + 0.05  # a clear margin
    assert "beats champion" in rating["gate"]
    assert _champion().version == "1"
    assert registry.get_alias("flowtest", registry.CHALLENGER).version == out["version"]
    refused = client.get_model_version("flowtest", out["version"])
    assert (refused.tags["role.rating"], refused.tags["role.ranking"]) == ("refused", "refused")
    assert refused.tags["status"] == "refused"
    assert refused.description.startswith("# Gate: refused (ranking, rating)")
    assert "- **FAIL " in refused.description
    run = client.get_run(out["run_id"])
    assert run.data.tags["recsys.gate.rating"] == "refused"
    assert run.data.tags["recsys.refit"] == "none: no gate passed"
    assert run.data.params["model.epochs"] == "1"
    assert run.data.metrics["champion/rating/rmse"] == pytest.approx(first["metrics"]["rmse"])
    assert "champion/ranking/rmse" not in run.data.metrics  # no ranking champion to re-score
    reasons = run.data.tags["recsys.gate.rating.reasons"].split(" | ")
    assert reasons[0].startswith("FAIL") and reasons[-1].startswith("PASS")
    assert reasons == sorted(reasons, key=lambda r: not r.startswith("FAIL"))
    flow_run = _flow_run(run)
    assert flow_run.name == "train-sgd-mf-refused"
    assert flow_run.state.type.value == "COMPLETED" and flow_run.state.name == "Refused"

    # the served model answers both ways
    model = mlflow.pyfunc.load_model(f"models:/flowtest@{RATING}")
    recs = model.predict(pd.DataFrame({"user": ["1", "2"]}), params={"k": 5})
    assert list(recs.columns) == ["user", "rank", "item", "score"] and len(recs) == 10
    preds = model.predict(pd.DataFrame({"user": ["1", "nobody"], "item": ["1", "2"]}))
    assert preds["prediction"].between(1, 5).all()


def test_a_challenger_worse_than_the_baseline_is_refused_without_champion(workspace, monkeypatch):
    # the split is read once in the run (training and evaluation share it), whatever it scores;
    # the snapshot once, by the validation (drift and features get it in memory)
    reads: list[str] = []
    read_parquet = pd.read_parquet

    def counting(path, *args, **kwargs):
        reads.append(str(path).rsplit("/", 1)[-1])
        return read_parquet(path, *args, **kwargs)

    monkeypatch.setattr(pd, "read_parquet", counting)
    state = training_flow(TrainingParams(**TINY, model={"name": "global-mean"}), return_state=True)
    assert reads.count("train.parquet") == 1 and reads.count("test.parquet") == 1
    assert reads.count("interactions.parquet") == 1

    out = outcome_of(state)
    assert state.name == "Refused" and out["promoted"] is False
    assert out["roles"]["rating"]["champion"] is None and _champion() is None
    assert out["metrics"]["rmse"] > out["baselines"]["bias"]["rmse"] + 0.05
    assert out["roles"]["rating"]["gate_reasons"][0].startswith("FAIL beats baseline")
    run = MlflowClient().get_run(out["run_id"])
    # a rating model competes for both roles: both baselines scored, each once
    assert run.data.tags["recsys.baselines"] == "popularity,recent-popularity,bias"
    assert run.data.metrics["baseline/bias/rmse"] == pytest.approx(out["baselines"]["bias"]["rmse"])


def test_invalid_data_stops_at_validation_and_champion_does_not_move(workspace):
    good = training_flow(TrainingParams(**TINY, gate=NO_BASELINE))
    assert good["promoted"]
    bad = pd.DataFrame(
        {
            "user": ["1", "2", "3"] * 50,
            "item": [str(i) for i in range(150)],
            "rating": [4.0, 7.0, 3.0] * 50,
            "timestamp": range(150),
        }
    )
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
    out = outcome_of(
        training_flow(
            TrainingParams(
                **{**TINY, "data": {"source": str(workspace / "dirty.parquet")}},
                validation={"quarantine": True},
                gate=NO_BASELINE,
            )
        )
    )
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
    with pytest.raises(ValidationError, match="model 'ease' does not predict ratings"):
        TrainingParams(**TINY, model={"name": "ease"}, roles=["rating"])
    with pytest.raises(ValidationError, match="gate.min_improvement"):
        TrainingParams(**TINY, gate={"min_improvement": 0.1})  # one gate per role now
    assert TrainingParams(**TINY, model={"name": "ease"}).competing_roles() == ["ranking"]
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
    common = [
        "--synthetic-size",
        "small",
        "--registered-model",
        "flowtest",
        "--experiment",
        "flowtest",
        "--model",
        "ease",
    ]
    # a ranker through the whole flow: a heavily regularised EASE, then the default one
    first = runner.invoke(app, ["train", *common, "--param", "reg=1000000"])
    assert first.exit_code == 0, first.output
    assert "PROMOTED" in first.output and "Traceback" not in first.output
    # an embedded store: the hint starts the MLflow UI as the README does
    hint = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false mlflow server --workers 1 --host 127.0.0.1"
    assert hint in " ".join(first.output.split())
    assert _champion(RANKING).version == "1" and _champion(RATING) is None
    # one role's gate set from the command line (the other keeps its defaults)
    second = runner.invoke(app, ["train", *common, "--set", "gate.ranking.min_improvement=0.02"])
    assert second.exit_code == 0, second.output
    assert "required >= 0.02" in second.output
    assert "PASS beats champion: warm/ndcg_at_10" in second.output
    assert _champion(RANKING).version == "2"
    assert "version 1 is now ranking: replaced" in " ".join(second.output.split())
    assert _champion(RATING) is None  # a ranking model never holds champion-rating
    refused = runner.invoke(app, ["train", *common, "--model", "popularity"])
    assert refused.exit_code == 3, refused.output
    assert "REFUSED" in refused.output and "FAIL beats champion" in refused.output
    assert _champion(RANKING).version == "2"
    wrong_role = runner.invoke(app, ["train", *common, "--role", "rating"])
    assert wrong_role.exit_code == 2, wrong_role.output
    assert "model 'ease' does not predict ratings" in " ".join(wrong_role.output.split())
    recs = runner.invoke(
        app, ["recommend", "--user", "1", "-k", "3", "--registered-model", "flowtest", "--json"]
    )
    assert recs.exit_code == 0, recs.output
    assert [r["rank"] for r in json.loads(recs.stdout)] == [1, 2, 3]
    back = runner.invoke(app, ["rollback", "--registered-model", "flowtest"])  # ranking
    assert back.exit_code == 0, back.output
    assert "champion-ranking moved from version 2 back to version 1" in back.output
    assert _champion(RANKING).version == "1"
    no_rating = runner.invoke(
        app, ["rollback", "--registered-model", "flowtest", "--role", "rating"]
    )
    assert no_rating.exit_code == 1 and "has no champion-rating" in no_rating.output

    dup = workspace / "dup.csv"
    dup.write_text("user,item,rating,timestamp\n" + "1,1,4,10\n" * 150)
    bad = runner.invoke(app, ["train", *common, "--source", str(dup)])
    assert bad.exit_code == 3, bad.output  # refused by validation
    # the duplicates policy (latest) leaves one row of the 150, which validation refuses
    assert "fewer than 100 rows" in " ".join(bad.output.split())
    assert "Traceback" not in bad.output
    refused_dups = runner.invoke(
        app, ["train", *common, "--source", str(dup), "--duplicates", "refuse"]
    )
    assert refused_dups.exit_code == 2, refused_dups.output  # bad data
    assert "duplicate" in refused_dups.output.lower()
    assert _champion(RANKING).version == "1"
    usage = runner.invoke(app, ["train", *common, "--test-fraction", "1.5"])
    assert usage.exit_code == 2
    assert "split.test_fraction: Input should be less than 1" in usage.output
    usage = runner.invoke(app, ["train", *common, "--set", "gate.nope=1"])
    assert usage.exit_code == 2 and "gate.nope: unknown setting" in usage.output


def test_a_private_model_logs_its_budget_and_the_gate_holds_it_to_one(workspace):
    # the tiny data set has too few users for a real budget: epsilon 1e4 is private in form only,
    # enough to check the wiring (the privacy record logged, the threshold read by the gate)
    dp = {"name": "dp-als", "params": {"epsilon": 1e4, "iterations": 3}}
    # judged on the thresholds only: dp-als answers cold users with its own private biases,
    # noisier than the bias model's, which the cold guard would refuse
    rating = {"require_beat_baseline": False, "cold_guards": []}
    within = outcome_of(
        training_flow(
            TrainingParams(
                **TINY,
                model=dp,
                roles=["rating"],
                gate={"rating": {**rating, "thresholds": {"rmse": 1.5, "epsilon": 2.5e4}}},
            )
        )
    )
    assert within["promoted"] is True and within["refit"] is not None
    logged = MlflowClient().get_run(within["run_id"]).data.metrics
    # the accountant's epsilon for one fit's calibrated noise: at most the target, and close to
    # it; the run released two fits (the judged model and the refit): its epsilon composes both
    assert 0.9e4 <= logged["epsilon_per_fit"] <= 1e4
    assert logged["fits"] == 2
    assert logged["epsilon"] == pytest.approx(
        accounting.composed_epsilon(
            [(logged["noise_multiplier"], int(logged["releases"]))] * 2, logged["delta"]
        )
    )
    assert logged["epsilon"] > 1.5e4
    assert 0 < logged["delta"] < 1
    version = MlflowClient().get_model_version(NAMES["registered_model"], within["version"])
    assert version.tags["refit_data_digest"]  # the refit is what the version serves

    # a budget one fit meets but the run's two releases exceed is refused
    over = outcome_of(
        training_flow(
            TrainingParams(
                **TINY,
                model=dp,
                roles=["rating"],
                gate={"rating": {**rating, "thresholds": {"rmse": 1.5, "epsilon": 1.5e4}}},
            )
        )
    )
    assert over["promoted"] is False and over["roles"]["ranking"]["verdict"] == "not-competing"
    assert any(
        "epsilon" in r and r.startswith("FAIL") for r in over["roles"]["rating"]["gate_reasons"]
    ), over
    assert _champion().version == within["version"]

    # without the refit the run releases one fit: the same budget holds (another registered
    # model: the refit champion above has seen the test rows, no challenger beats it there)
    single = outcome_of(
        training_flow(
            TrainingParams(
                **{**TINY, "registered_model": "flowtest-single"},
                model=dp,
                roles=["rating"],
                refit_full=False,
                gate={"rating": {**rating, "thresholds": {"rmse": 1.5, "epsilon": 1.5e4}}},
            )
        )
    )
    assert single["promoted"] is True
    logged = MlflowClient().get_run(single["run_id"]).data.metrics
    assert logged["epsilon"] == logged["epsilon_per_fit"] <= 1e4 and logged["fits"] == 1


def _with_a_newcomer(workspace):
    """The small synthetic data and one user whose ten ratings are the newest of all, so that
    the time split puts every one of them in the test part."""
    from recsys_core.data.synthetic import config_for, generate

    frame = generate(config_for("small")).interactions
    items = frame["item"].value_counts().index[20:30]  # not the most popular ones
    late = pd.DataFrame(
        {
            "user": "newcomer",
            "item": items,
            "rating": 5.0,
            "timestamp": frame["timestamp"].max() + 1 + pd.RangeIndex(10),
        }
    )
    pd.concat([frame, late], ignore_index=True).to_parquet(workspace / "data.parquet")
    return {"source": str(workspace / "data.parquet")}, set(items)


def test_refit_full_serves_the_newest_rows_and_a_failed_refit_moves_nothing(workspace, monkeypatch):
    from recsys_core.features.prepare import Features
    from recsys_core.tracking import model_store

    data, newest = _with_a_newcomer(workspace)
    ease = dict(data=data, **NAMES)
    client = MlflowClient()
    # refit off: today's path, the version serves the judged model (NDCG@10 0.40 vs 0.35)
    off = outcome_of(
        training_flow(
            TrainingParams(**ease, refit_full=False, model={"name": "ease", "params": {"reg": 1e6}})
        )
    )
    assert off["promoted_roles"] == ["ranking"] and off["refit"] is None
    assert client.get_run(off["run_id"]).data.tags["recsys.refit"] == "off"
    assert "evaluated_state" not in {a.path for a in client.list_artifacts(off["run_id"])}
    v1 = registry.VersionRef("flowtest", off["version"])
    assert "newcomer" not in set(model_store.load_recommender(v1).user_vocab_.ids)

    # refit on (the default): the served model knows the rows the time split held out
    on = outcome_of(training_flow(TrainingParams(**ease, model={"name": "ease"})))
    assert on["promoted_roles"] == ["ranking"] and _champion(RANKING).version == on["version"]
    run = client.get_run(on["run_id"])
    v2 = registry.VersionRef("flowtest", on["version"])
    served = model_store.load_recommender(v2)
    judged = model_store.load_recommender(v2, path=model_store.EVALUATED_PATH)
    assert "newcomer" in set(served.user_vocab_.ids)
    assert "newcomer" not in set(judged.user_vocab_.ids)
    assert judged.n_users == run.data.metrics["data/n_users_train"]
    assert (
        on["refit"]["n_ratings"]
        == run.data.metrics["data/n_train"] + run.data.metrics["data/n_test"]
        == 11129
    )
    assert (
        client.get_model_version("flowtest", v2.version).tags["refit_data_digest"]
        == run.data.tags["recsys.refit.data_digest"]
        == on["refit"]["data_digest"]
    )
    # the judged model's metrics are the run's (re-scoring it gives the same numbers)
    from recsys_core.evaluation import evaluate
    from recsys_core.features.splits import SplitConfig, split

    frame = pd.read_parquet(data["source"])
    parts = split(frame, SplitConfig())
    again = evaluate(judged, parts.train, parts.test, k=10).metrics
    assert again["ndcg_at_10"] == pytest.approx(on["metrics"]["ndcg_at_10"])
    # the served lists come from the refit: the newcomer's own (test) items are seen, excluded
    pyfunc = mlflow.pyfunc.load_model(f"models:/flowtest@{RANKING}")
    recs = pyfunc.predict(pd.DataFrame({"user": ["newcomer"]}), params={"k": 10})
    assert len(recs) == 10 and not set(recs["item"]) & newest

    # a refit that fails: the version is kept as evidence, marked failed, and nothing moves
    def broken(self):
        raise MemoryError("refit ran out of memory")

    monkeypatch.setattr(Features, "full_set", broken)
    equal = {"ranking": {"min_improvement": 0}}  # the same model passes against itself
    with pytest.raises(Exception, match="the refit of 'ease' on all rows of the split failed"):
        training_flow(TrainingParams(**ease, model={"name": "ease"}, gate=equal))
    failed = max(_versions(), key=lambda mv: int(mv.version))
    assert int(failed.version) == int(v2.version) + 1
    assert failed.tags["status"] == "failed" and failed.tags["role.ranking"] == "failed"
    assert "refit ran out of memory" in failed.tags["refit_error"]
    assert not client.get_model_version("flowtest", failed.version).aliases
    assert _champion(RANKING).version == v2.version
    assert registry.get_alias("flowtest", registry.CHALLENGER).version == v2.version
    last = _runs()[0]
    assert last.info.status == "FAILED" and last.data.tags["recsys.refit"] == "failed"
    assert _flow_run(last).name == "train-ease-failed"
