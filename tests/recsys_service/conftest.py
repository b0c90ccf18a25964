"""A real MLflow registry (the embedded sqlite store, one per test module) and helpers that
publish fitted models into it the way the training flow does."""

import itertools
import shutil
import socket
import threading
import time

import mlflow
import pytest
import uvicorn

from recsys_core.data.synthetic import config_for, generate
from recsys_core.features import Interactions
from recsys_core.models import create
from recsys_core.tracking import mlflow_run, registry
from recsys_core.tracking.model_store import STATE_PATH

_names = itertools.count()


@pytest.fixture(scope="module")
def data():
    return Interactions.from_frame(generate(config_for("small", seed=5)).interactions)


@pytest.fixture(scope="module")
def store(tmp_path_factory, empty_store_db):
    """A working directory with its embedded MLflow store, shared by the module's tests."""
    root = tmp_path_factory.mktemp("registry")
    (root / mlflow_run.EMBEDDED_DIR).mkdir()
    shutil.copy(empty_store_db, root / mlflow_run.EMBEDDED_DIR / "mlflow.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "RECSYS_SERVE_REGISTERED_MODEL",
                    "RECSYS_SERVE_RANKING_ALIAS", "RECSYS_SERVE_RATING_ALIAS",
                    "RECSYS_SERVE_TRACKING_URI"):
            mp.delenv(var, raising=False)
        mlflow_run.configure()
        yield root
        mlflow.set_tracking_uri(None)


@pytest.fixture
def model_name():
    """A registered model name of this test alone (the store is shared by the module)."""
    return f"svc-{next(_names)}"


def _publish(model, folder, name,
             aliases=tuple(registry.ROLE_ALIASES.values())) -> registry.VersionRef:
    """Log ``model``'s state as the training flow does, register it and set ``aliases`` (by
    default both role aliases, champion-ranking and champion-rating)."""
    run_id = mlflow_run.start_run("serve-test", model.name)
    state = model.save(folder / f"state-{run_id}")
    mlflow_run.log_artifacts(run_id, state, STATE_PATH)
    mlflow_run.end_run(run_id)
    ref = registry.register(name, f"runs:/{run_id}/{STATE_PATH}", run_id, {"model": model.name})
    _move(ref, *aliases)
    return ref


def _move(ref: registry.VersionRef, *aliases: str) -> None:
    for alias in aliases:
        mlflow.MlflowClient().set_registered_model_alias(ref.name, alias, ref.version)


def _fit(name, data, **params):
    return create(name, params).fit(data)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The app under a real uvicorn server in a thread, on a free loopback port."""

    def __init__(self, app) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def publish():
    """``publish(model, folder, name, aliases)``: a registered version of ``model``."""
    return _publish


@pytest.fixture(scope="session")
def move():
    """``move(ref, *aliases)``: point aliases at a version."""
    return _move


@pytest.fixture(scope="session")
def fit():
    """``fit(name, data, **params)``: a fitted model."""
    return _fit


@pytest.fixture(scope="session")
def live_server():
    """``live_server(app)``: a context manager running ``app`` under uvicorn."""
    return LiveServer


@pytest.fixture(scope="session")
def free_port():
    """``free_port()``: a loopback TCP port nobody listens on."""
    return _free_port
