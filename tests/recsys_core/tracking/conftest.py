"""A real (sqlite) MLflow store per test, and versions that carry a real ``model_state/``."""

import shutil
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
import pytest

from recsys_core.data.synthetic import config_for, generate
from recsys_core.features import Interactions
from recsys_core.models.baselines import Bias
from recsys_core.tracking import mlflow_run, registry


@pytest.fixture
def store(embedded_store):
    return embedded_store


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A fitted ``bias`` model saved once (its state is a few arrays and JSON files); built from
    its class, as ``create("bias")`` would first import every model family."""
    data = Interactions.from_frame(generate(config_for("tiny")).interactions)
    folder = tmp_path_factory.mktemp("bias-state")
    Bias().fit(data).save(folder)
    return folder


@pytest.fixture
def new_version(store, tiny_model_dir):
    """Register a new version of ``name`` whose run holds ``model_state/``."""

    def make(name: str = "regtest") -> registry.VersionRef:
        run_id = mlflow_run.start_run("reg-test", "r")
        mlflow_run.log_artifacts(run_id, tiny_model_dir, "model_state")
        return registry.register(
            name, f"runs:/{run_id}/model_state", run_id, {"status": "candidate"}
        )

    return make


@pytest.fixture
def delete_run_artifacts(store):
    """What an artifact store reset does to a run of the embedded store."""

    def delete(run_id: str) -> None:
        uri = mlflow.MlflowClient().get_run(run_id).info.artifact_uri
        shutil.rmtree(url2pathname(urlparse(uri).path))

    return delete
