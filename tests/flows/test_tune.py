"""The tune flow end to end: trials in parallel on a local Dask cluster, nested MLflow runs."""

import json

import optuna
import pytest
from mlflow import MlflowClient
from pydantic import ValidationError

from flows.tune import TuneParams, tune_flow
from recsys_core.exceptions import TrainingError
from recsys_core.models.spec import ModelSpec
from recsys_core.tracking import registry
from recsys_core.tuning import open_study, storage_url

# a small space so that every trial fits in a fraction of a second on the tiny data set
SPACE = {
    "factors": {"kind": "int", "low": 2, "high": 16, "log": True},
    "epochs": {"kind": "int", "low": 2, "high": 6},
    "lr": {"kind": "float", "low": 0.002, "high": 0.05, "log": True},
}
TINY = dict(
    data={"synthetic_size": "tiny"},
    model={"name": "sgd-mf"},
    space=SPACE,
    experiment="tunetest",
    study="tunetest",
)


def _runs(client):
    exp = client.get_experiment_by_name("tunetest")
    return client.search_runs([exp.experiment_id], max_results=100)


def test_study_runs_trials_in_parallel_logs_best_and_resumes(workspace):
    out = tune_flow(TuneParams(**TINY, n_trials=4, parallel=2))
    client = MlflowClient()
    runs = _runs(client)
    parent = client.get_run(out["run_id"])
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == out["run_id"]]
    assert len(trials) == 4 and len(runs) == 5
    assert sorted(int(r.data.tags["recsys.trial"]) for r in trials) == [0, 1, 2, 3]
    for r in trials:
        assert r.info.status == "FINISHED"
        assert {"objective", "rmse"} <= set(r.data.metrics)
        assert r.data.metrics["objective"] == r.data.metrics["rmse"]
        assert {"trial.factors", "trial.epochs", "trial.lr", "model.name"} <= set(r.data.params)
    best_trial = min(trials, key=lambda r: r.data.metrics["objective"])
    # the first trial runs the model's own values where the space holds them (epochs=30 and
    # factors=100 lie outside this space: sampled)
    first = next(r for r in trials if r.data.tags["recsys.trial"] == "0")
    assert (first.data.params["trial.lr"], first.data.params["trial.reg"]) == ("0.007", "0.08")
    assert out["default_value"] == pytest.approx(first.data.metrics["rmse"])
    assert parent.data.metrics["defaults/rmse"] == pytest.approx(out["default_value"])

    # the best parameters: on the parent, and as JSON the training flow's `model` accepts
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["best/rmse"] == pytest.approx(best_trial.data.metrics["rmse"])
    assert parent.data.params["best.factors"] == best_trial.data.params["trial.factors"]
    path = client.download_artifacts(out["run_id"], "tuning/best_params.json", str(workspace))
    best = json.loads(open(path).read())
    assert best == out["best"] and best["name"] == "sgd-mf"
    assert set(best["params"]) == {"factors", "epochs", "lr", "reg"}  # reg: default range
    assert ModelSpec(**best).params == best["params"]
    plots = {a.path for a in client.list_artifacts(out["run_id"], "plots")}
    assert plots == {"plots/optimization_history.png", "plots/param_importances.png"}
    # tuning never registers a model, let alone promotes one
    assert all(registry.get_alias("recsys", a) is None for a in registry.ROLE_ALIASES.values())

    # the same study resumes: new trials are added to the stored ones
    again = tune_flow(TuneParams(**TINY, n_trials=2, parallel=2))
    study = optuna.load_study(study_name="tunetest", storage=storage_url())
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4, 5]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert again["trials_complete"] == 6
    new = [r for r in _runs(client) if r.data.tags.get("mlflow.parentRunId") == again["run_id"]]
    assert sorted(int(r.data.tags["recsys.trial"]) for r in new) == [4, 5]
    # a resumed study does not replay the first trials' samples
    assert {tuple(t.params.items()) for t in study.trials[4:]}.isdisjoint(
        {tuple(t.params.items()) for t in study.trials[:4]}
    )


def test_the_rating_scale_is_set_once_in_data_as_for_training():
    with pytest.raises(ValidationError, match="set the rating scale once"):
        TuneParams(**TINY, validation={"rating_max": 10})
    params = TuneParams(**{**TINY, "data": {"rating_max": 10}})
    assert params.validation.rating_max == 10
    assert "applied again" in TuneParams.model_fields["split"].description  # its own words


def test_bad_space_is_refused_before_any_run(workspace):
    with pytest.raises(ValueError, match="search range of sgd-mf.factors includes 0"):
        TuneParams(**{**TINY, "space": {"factors": {"kind": "int", "low": 0, "high": 8}}})
    with pytest.raises(ValueError, match="unknown hyperparameter.*'depth'"):
        TuneParams(**{**TINY, "space": {"depth": {"kind": "int", "low": 1, "high": 8}}})


# lr up to 1.0: sgd-mf diverges on the tiny set from lr of about 0.5 (a TrainingError)
RISKY = {**SPACE, "lr": {"kind": "float", "low": 0.002, "high": 1.0, "log": True}}


def _enqueue(study: str, lrs: list[float]) -> None:
    """Fix the trials the flow will be given, in order (Optuna hands out enqueued ones first)."""
    s = open_study(study, storage_url(), "minimize")
    for lr in lrs:
        s.enqueue_trial({"factors": 4, "epochs": 2, "lr": lr})


def test_failing_trials_are_recorded_and_the_study_goes_on(workspace):
    _enqueue("risky", [1.0, 0.01, 0.8, 0.02])
    out = tune_flow(
        TuneParams(**{**TINY, "space": RISKY, "study": "risky"}, n_trials=4, parallel=2)
    )
    study = optuna.load_study(study_name="risky", storage=storage_url())
    State = optuna.trial.TrialState
    assert [t.state for t in study.trials] == [
        State.FAIL,
        State.COMPLETE,
        State.FAIL,
        State.COMPLETE,
    ]
    assert (out["trials_failed"], out["trials_complete"]) == (2, 2)
    # the best of the trials that completed is reported
    complete = {t.number: t.value for t in study.trials if t.state == State.COMPLETE}
    assert out["best_trial"] == min(complete, key=complete.__getitem__)
    assert out["best_value"] == pytest.approx(min(complete.values()))
    assert out["best"]["params"]["lr"] in (0.01, 0.02)
    client = MlflowClient()
    trials = {
        int(r.data.tags["recsys.trial"]): r
        for r in _runs(client)
        if r.data.tags.get("mlflow.parentRunId") == out["run_id"]
    }
    assert sorted(trials) == [0, 1, 2, 3]
    for n in (0, 2):
        assert trials[n].info.status == "FAILED"
        assert "objective" not in trials[n].data.metrics
        assert "sgd-mf diverged" in trials[n].data.tags["recsys.error"]
        assert f"lr={study.trials[n].params['lr']}" in trials[n].data.tags["recsys.error"]
    assert all(trials[n].info.status == "FINISHED" for n in (1, 3))
    parent = client.get_run(out["run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_complete"] == 2


def test_a_study_whose_trials_all_fail_says_why(workspace):
    _enqueue("doomed", [1.0, 0.9])
    with pytest.raises(
        TrainingError,
        match=r"'doomed' has no complete trial: all 2 trial\(s\) "
        r"of this run failed \(trial 0: TrainingError: sgd-mf diverged",
    ):
        tune_flow(TuneParams(**{**TINY, "space": RISKY, "study": "doomed"}, n_trials=2, parallel=2))
    study = optuna.load_study(study_name="doomed", storage=storage_url())
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 2
    runs = _runs(MlflowClient())
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FAILED"
    assert "has no complete trial" in parent.data.tags["recsys.error"]
    assert sorted(r.info.status for r in runs if r is not parent) == ["FAILED", "FAILED"]
