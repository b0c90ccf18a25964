"""Settings shared by every test: no telemetry, BLAS pinned, nothing written outside tmp."""

import os

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# one small local Spark for the Spark tests (the default, local[*], takes every core)
os.environ.setdefault("RECSYS_SPARK_MASTER", "local[2]")


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One Prefect test server for every test that runs flows or tasks."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def empty_store_db(tmp_path_factory):
    """An initialised, empty MLflow database, created once: tests copy it into their working
    directory (the schema migration of a new database takes seconds)."""
    import mlflow

    from recsys_core.tracking import mlflow_run

    folder = tmp_path_factory.mktemp("mlflow-template")
    mlflow.set_tracking_uri(mlflow_run.default_tracking_uri(folder))
    mlflow.MlflowClient().search_registered_models()
    mlflow.set_tracking_uri(None)
    return folder / mlflow_run.EMBEDDED_DIR / "mlflow.db"


@pytest.fixture
def embedded_store(tmp_path, monkeypatch, empty_store_db):
    """``tmp_path`` as working directory, with the embedded MLflow store (a copied empty one)."""
    import shutil

    import mlflow

    from recsys_core.tracking import mlflow_run

    (tmp_path / mlflow_run.EMBEDDED_DIR).mkdir()
    shutil.copy(empty_store_db, tmp_path / mlflow_run.EMBEDDED_DIR / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    uri = mlflow_run.configure()
    assert uri.startswith("sqlite:///") and str(tmp_path) in uri
    yield tmp_path
    mlflow.set_tracking_uri(None)
