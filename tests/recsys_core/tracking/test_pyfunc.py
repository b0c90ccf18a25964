"""The served pyfunc: logged from a saved model into its run's experiment, loaded back as the
same ``Recommender``."""

from pathlib import Path

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


@pytest.fixture(scope="module")
def small():
    return Interactions.from_frame(generate(config_for("small", seed=5)).interactions)


def _names(requirements: list[str]) -> set[str]:
    return {r.partition("==")[0] for r in requirements}


def test_requirements_are_what_loading_and_scoring_the_model_imports(small, tmp_path):
    rerank = create(
        "rerank",
        {
            "retrievers": [{"model": "ease"}, {"model": "popularity"}],
            "candidates": 20,
            "n_estimators": 5,
        },
    ).fit(small)
    folder = rerank.save(tmp_path / "rerank")
    got = pyfunc.pip_requirements(folder)
    assert all("==" in r for r in got)  # pinned
    assert {"lightgbm", "mlflow", "numpy", "scipy", "pandas"} <= _names(got)
    # its retriever alone needs no LightGBM
    assert "lightgbm" not in _names(pyfunc.pip_requirements(folder / "member_0"))
    blend = {"members": [{"model": "bias"}], "trees": 5, "min_child_samples": 20}
    ridge = create("blend", blend).fit(small).save(tmp_path / "ridge")
    trees = create("blend", {**blend, "stacker": "lightgbm"}).fit(small).save(tmp_path / "trees")
    assert "lightgbm" not in _names(pyfunc.pip_requirements(ridge))
    assert "lightgbm" in _names(pyfunc.pip_requirements(trees))


def test_mult_vae_is_served_without_torch(small, tmp_path):
    pytest.importorskip("torch")
    params = {"hidden_dims": (), "latent_dim": 4, "epochs": 2, "val_users": 0.0}
    folder = create("mult-vae", params).fit(small).save(tmp_path / "vae")
    got = _names(pyfunc.pip_requirements(folder))
    assert "numpy" in got and "torch" not in got


def test_a_model_that_does_not_load_is_refused_before_logging(small, tmp_path):
    folder = create("popularity").fit(small).save(tmp_path / "pop")
    (folder / "state.npz").unlink()
    with pytest.raises(TrackingError, match="does not load and score in a fresh interpreter"):
        pyfunc.pip_requirements(folder)


def test_the_logged_models_environment_lists_its_requirements(store, tiny_model_dir):
    run_id = mlflow_run.start_run("pyfunc-test", "r")
    info = pyfunc.log_saved(tiny_model_dir, run_id)
    listed = Path(mlflow.pyfunc.get_model_dependencies(info.model_uri)).read_text().split()
    assert set(pyfunc.pip_requirements(tiny_model_dir)) <= set(listed)
