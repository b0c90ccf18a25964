"""Each flow test gets its own MLflow store in tmp (one Prefect test server: tests/conftest.py)."""

import pytest


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
