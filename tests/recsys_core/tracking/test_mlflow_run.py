"""Where runs and registered models go: ``mlflow_run.configure``."""

import mlflow

from recsys_core.tracking import mlflow_run


def test_the_registry_follows_each_configured_tracking_uri(tmp_path, monkeypatch):
    # mlflow.set_registry_uri also writes $MLFLOW_REGISTRY_URI: a second configure() in the same
    # process must not take that for the user's own registry setting
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    first = mlflow_run.default_tracking_uri(tmp_path / "a")
    second = mlflow_run.default_tracking_uri(tmp_path / "b")
    try:
        mlflow_run.configure(first)
        assert mlflow.get_registry_uri() == first
        mlflow_run.configure(second)
        assert mlflow.get_registry_uri() == second
        monkeypatch.setenv("MLFLOW_REGISTRY_URI", first)  # the user's own, distinct registry
        mlflow_run.configure(second)
        assert mlflow.get_registry_uri() == first
    finally:
        monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri("")
