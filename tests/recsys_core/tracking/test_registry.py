"""Registry operations on a real (sqlite) MLflow store: register, promote, roll back."""

import mlflow
import pytest

from recsys_core.data.synthetic import config_for, generate
from recsys_core.exceptions import RecsysError
from recsys_core.features import Interactions
from recsys_core.models import create
from recsys_core.tracking import mlflow_run, pyfunc, registry


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = mlflow_run.configure()
    assert uri.startswith("sqlite:///") and str(tmp_path) in uri
    yield tmp_path
    mlflow.set_tracking_uri(None)


def _version(tmp_path, epochs: int) -> registry.VersionRef:
    data = Interactions.from_frame(generate(config_for("tiny")).interactions)
    model = create("sgd-mf", {"epochs": epochs, "factors": 4}).fit(data)
    run_id = mlflow_run.start_run("reg-test", "r")
    with mlflow.start_run(run_id=run_id):
        info = pyfunc.log_model(model, tmp_path / f"m{epochs}")
    return registry.register("regtest", info.model_uri, run_id, {"status": "candidate"})


def test_register_promote_rollback(store):
    v1 = _version(store, 2)
    assert registry.get_alias("regtest", registry.CHALLENGER).version == v1.version
    assert registry.get_alias("regtest", registry.CHAMPION) is None
    assert registry.promote(v1, {"why": "first"}) is None
    v2 = _version(store, 3)
    previous = registry.promote(v2, {"why": "better"})
    assert previous.version == v1.version
    assert registry.get_alias("regtest").version == v2.version
    old, new = registry.rollback("regtest")
    assert (old.version, new.version) == (v2.version, v1.version)
    assert registry.get_alias("regtest").version == v1.version
    client = mlflow.MlflowClient()
    assert client.get_model_version("regtest", v2.version).tags["status"] == "rolled_back"
    with pytest.raises(RecsysError, match="nothing to roll back"):
        registry.rollback("regtest")


def test_rollback_without_champion(store):
    with pytest.raises(RecsysError, match="no champion"):
        registry.rollback("nothing-here")


def test_pyfunc_round_trip_predicts_like_the_model(store):
    data = Interactions.from_frame(generate(config_for("tiny")).interactions)
    model = create("sgd-mf", {"epochs": 3, "factors": 4}).fit(data)
    run_id = mlflow_run.start_run("reg-test", "r")
    with mlflow.start_run(run_id=run_id):
        info = pyfunc.log_model(model, store / "m")
    loaded = pyfunc.load_recommender(info.model_uri)
    users, items = data.users.ids[:5], data.items.ids[:5]
    assert (loaded.predict(users, items) == model.predict(users, items)).all()
