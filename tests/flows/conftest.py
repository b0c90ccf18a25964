"""One Prefect test server for every flow test; each test gets its own MLflow store in tmp."""

import pytest


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    import os

    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def workspace(tmp_path, monkeypatch, prefect_server):
    """A fresh working directory with the embedded MLflow store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    import mlflow

    from recsys_core.tracking import mlflow_run

    mlflow_run.configure()
    yield tmp_path
    mlflow.set_tracking_uri(None)
