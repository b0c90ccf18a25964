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


def test_a_long_version_description_is_cut_to_what_the_registry_holds(embedded_store):
    """MLflow's SQL stores keep a version's description in VARCHAR(5000): PostgreSQL refused
    the gate's decision tables once they listed every population."""
    client = mlflow.MlflowClient()
    client.create_registered_model("cut")
    run_id = mlflow_run.start_run("cut", "cut")
    version = client.create_model_version("cut", f"runs:/{run_id}/model", run_id=run_id).version
    short = "# Gate: promoted\n| metric | value |"
    mlflow_run.set_version_description("cut", version, short)
    assert client.get_model_version("cut", version).description == short
    long = "# Gate: refused\n" + "| warm/rmse | 1.0128 | 0.9289 |\n" * 400
    mlflow_run.set_version_description("cut", version, long)
    stored = client.get_model_version("cut", version).description
    assert len(stored) == mlflow_run.MAX_VERSION_DESCRIPTION
    assert stored.startswith("# Gate: refused\n| warm/rmse")
    assert stored.endswith("the whole decision is in the run)")
