"""The served pyfunc: logged from a saved model into its run's experiment, loaded back as the
same ``Recommender``."""

import mlflow
import pytest
from mlflow import MlflowClient

from recsys_core.data.synthetic import config_for, generate
from recsys_core.exceptions import TrackingError
from recsys_core.features import Interactions
from recsys_core.models import Recommender, create
from recsys_core.tracking import mlflow_run, pyfunc


def test_pyfunc_round_trip_predicts_like_the_model(store):
    data = Interactions.from_frame(generate(config_for("tiny")).interactions)
    model = create("sgd-mf", {"epochs": 3, "factors": 4}).fit(data)
    run_id = mlflow_run.start_run("reg-test", "r")
    with mlflow.start_run(run_id=run_id):
        info = pyfunc.log_model(model, store / "m")
    loaded = pyfunc.load_recommender(info.model_uri)
    users, items = data.users.ids[:5], data.items.ids[:5]
    assert (loaded.predict(users, items) == model.predict(users, items)).all()


def test_a_saved_model_is_logged_into_its_runs_experiment(store, tiny_model_dir):
    run_id = mlflow_run.start_run("pyfunc-test", "r")
    info = pyfunc.log_saved(tiny_model_dir, run_id)
    client = MlflowClient()
    run = client.get_run(run_id)
    logged = client.get_logged_model(info.model_id)
    assert logged.experiment_id == run.info.experiment_id
    assert logged.source_run_id == run_id
    # its artifacts lie with the run's, under the working folder's store, not in ./mlruns
    location = client.get_experiment(run.info.experiment_id).artifact_location
    assert location.startswith((store / mlflow_run.EMBEDDED_DIR).as_uri())
    assert logged.artifact_location.startswith(location)
    assert not (store / "mlruns").exists()
    assert run.info.status == "RUNNING"  # the run stays open for the flow
    users = Interactions.from_frame(generate(config_for("tiny")).interactions).users.ids[:5]
    expected = Recommender.load(tiny_model_dir).recommend(users, 3)
    got = pyfunc.load_recommender(info.model_uri).recommend(users, 3)
    assert got.equals(expected)


def test_logging_without_a_run_is_refused(store, tiny_model_dir):
    with pytest.raises(TrackingError, match="pass run_id or start a run"):
        pyfunc.log_saved(tiny_model_dir)
