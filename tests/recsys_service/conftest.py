"""A real MLflow registry (the embedded sqlite store, one per test module) and helpers that
publish fitted models into it the way the training flow does."""

import functools
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
import mlflow
import pytest
import uvicorn

from recsys_core.data.synthetic import config_for, generate
from recsys_core.events.keys import SCOPES, KeyStore
from recsys_core.events.migrate import upgrade
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
        for var in (
            "MLFLOW_TRACKING_URI",
            "MLFLOW_REGISTRY_URI",
            "RECSYS_SERVE_REGISTERED_MODEL",
            "RECSYS_SERVE_RANKING_ALIAS",
            "RECSYS_SERVE_RATING_ALIAS",
            "RECSYS_SERVE_TRACKING_URI",
        ):
            mp.delenv(var, raising=False)
        mlflow_run.configure()
        yield root
        mlflow.set_tracking_uri(None)


@pytest.fixture
def model_name():
    """A registered model name of this test alone (the store is shared by the module)."""
    return f"svc-{next(_names)}"


def _publish(
    model, folder, name, aliases=tuple(registry.ROLE_ALIASES.values())
) -> registry.VersionRef:
    """Log ``model``'s state as the training flow does, register it and set ``aliases`` (by
    default both role aliases, champion-ranking and champion-rating)."""
    run_id = mlflow_run.start_run("serve-test", model.name)
    state = model.save(folder / f"state-{run_id}")
    mlflow_run.log_artifacts(run_id, state, STATE_PATH)
    mlflow_run.end_run(run_id)
    ref = registry.register(
        name, f"runs:/{run_id}/{STATE_PATH}", run_id, {"model": model.name}, state_dir=state
    )
    _move(ref, *aliases)
    return ref


def _move(ref: registry.VersionRef, *aliases: str) -> None:
    for alias in aliases:
        mlflow.MlflowClient().set_registered_model_alias(ref.name, alias, ref.version)


def _fit(name, data, **params):
    return create(name, params).fit(data)


def _key_headers(target, scopes=SCOPES) -> dict[str, str]:
    """Headers carrying a fresh API key with ``scopes``, made in the key store of ``target``:
    an app of ``create_app`` or an event store URL (migrated first: idempotent)."""
    store = target.state.auth.store if hasattr(target, "state") else KeyStore(target)
    upgrade(store.url)
    secret = store.create(f"test-{next(_names)}", scopes)
    return {"Authorization": f"Bearer {secret}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The app under a real uvicorn server in a thread, on a free loopback port."""

    def __init__(self, app) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
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


class ServerProcess:
    """A server command (``recsys serve``, ``mlflow models serve``) in a subprocess on
    ``port``: entering waits until ``GET ready`` answers 200, leaving stops it (SIGTERM, the
    way a supervisor does, then SIGKILL after ``stop_timeout`` seconds). Its output goes to a
    file (a pipe nobody reads would fill up and block the server): :meth:`output`."""

    def __init__(
        self,
        args,
        *,
        port: int,
        cwd,
        log_dir,
        env=None,
        ready: str = "/health",
        timeout: float = 120.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self.args, self.cwd, self.ready = [str(a) for a in args], cwd, ready
        self.env = {**os.environ, **(env or {})}
        self.timeout, self.stop_timeout = timeout, stop_timeout
        self.url = f"http://127.0.0.1:{port}"
        fd, log = tempfile.mkstemp(prefix="server-", suffix=".log", dir=log_dir)
        os.close(fd)
        self._log = Path(log)
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None

    def output(self) -> str:
        return self._log.read_text(errors="replace")

    def __enter__(self):
        with self._log.open("w") as out:
            self.proc = subprocess.Popen(
                self.args,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                try:
                    if httpx.get(self.url + self.ready, timeout=2).status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"{self.args[:3]} did not answer {self.ready}:\n" + self.output()[-4000:]
                    )
                time.sleep(0.3)
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc):
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.returncode = self.proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.returncode = self.proc.wait(10)


@pytest.fixture(scope="session")
def server_process(tmp_path_factory):
    """``server_process(args, port=..., cwd=..., env=..., ready="/health")``: a context manager
    running a server command in a subprocess (:class:`ServerProcess`)."""
    return functools.partial(ServerProcess, log_dir=tmp_path_factory.mktemp("servers"))


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
def key_headers():
    """``key_headers(app_or_url, scopes=every scope)``: ``Authorization`` headers of a new
    API key (the service checks keys on every route but /health and /ready)."""
    return _key_headers


@pytest.fixture(scope="session")
def free_port():
    """``free_port()``: a loopback TCP port nobody listens on."""
    return _free_port
