"""A Spark model's training run scores its challenger in Spark (``evaluation_engine``), with the
figures the local evaluation gives on the same split (one shared local[2] Spark session)."""

import pytest
from mlflow import MlflowClient
from pydantic import ValidationError

from flows.training import TrainingParams, outcome_of, training_flow
from recsys_core.exceptions import ConfigError
from recsys_core.features.prepare import Features
from tasks.evaluate import evaluate_models

TINY = dict(
    data={"synthetic_size": "tiny"},
    registered_model="sparkflow",
    experiment="sparkflow",
    refit_full=False,
)


@pytest.mark.slow
def test_a_spark_als_run_is_scored_in_spark_as_locally(workspace, monkeypatch):
    monkeypatch.setenv("RECSYS_KEEP_RUN_FILES", "1")  # the split and model, to re-score here
    params = TrainingParams(
        **TINY, model={"name": "spark-als", "params": {"rank": 4, "maxIter": 3}}
    )
    assert params.evaluation_engine == "auto"
    out = outcome_of(training_flow(params))
    run = MlflowClient().get_run(out["run_id"])
    tags = run.data.tags
    assert tags["recsys.evaluation.engine"] == "spark"
    assert tags["recsys.evaluation.engine.baselines"] == "local"
    assert tags["recsys.evaluation.rating_distribution"].startswith("from a random sample of ")
    assert run.data.params["evaluation_engine"] == "auto"
    assert {"rmse", "ndcg_at_10", "baseline/bias/rmse"} <= set(run.data.metrics)

    workdir = workspace / ".recsys" / "data" / "runs" / out["run_id"]
    split = Features(str(workdir / "features"), {})
    local = evaluate_models(
        str(workdir / "model"),
        split,
        k=10,
        relevance_threshold=None,
        registered_model="sparkflow",
        baselines=[],
        champion_aliases={},
        engine="local",
    )
    assert local.tags["recsys.evaluation.engine"] == "local"
    assert set(local.challenger) == set(out["metrics"])
    for metric, value in local.challenger.items():
        assert run.data.metrics[metric] == pytest.approx(value, abs=1e-6), metric
    assert run.data.metrics["data/cold_users"] == local.counts["cold_users"]
    with pytest.raises(ConfigError, match="unknown evaluation engine 'gpu'"):
        evaluate_models(
            str(workdir / "model"),
            split,
            k=10,
            relevance_threshold=None,
            registered_model="sparkflow",
            baselines=[],
            champion_aliases={},
            engine="gpu",
        )


def test_a_bad_engine_is_refused_before_any_run():
    with pytest.raises(ValidationError, match="evaluation_engine"):
        TrainingParams(**TINY, evaluation_engine="gpu")
    with pytest.raises(ValidationError, match="'popularity' is not one; use the local engine"):
        TrainingParams(**TINY, model={"name": "popularity"}, evaluation_engine="spark")
