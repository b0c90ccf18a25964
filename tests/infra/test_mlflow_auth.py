"""The locked registry for real: ``mlflow server --app-name basic-auth`` with the stack's config,
its accounts made by infra/mlflow/users.py; who may read, who may write (a server on loopback)."""

import configparser
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
API = "/api/2.0/mlflow"
SERVER_LOGS: dict[str, Path] = {}
"""The log of each server of the ``locked`` fixture (its access lines), by URL."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    """A basic-auth MLflow server (the stack's basic_auth.ini, users on SQLite) and its URL."""
    root = tmp_path_factory.mktemp("locked-registry")
    ini = configparser.ConfigParser()
    ini.read(ROOT / "infra" / "mlflow" / "basic_auth.ini")
    ini["mlflow"]["database_uri"] = f"sqlite:///{root / 'auth.db'}"
    with (root / "auth.ini").open("w") as fh:
        ini.write(fh)
    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_AUTH_CONFIG_PATH": str(root / "auth.ini"),
        "MLFLOW_AUTH_ADMIN_USERNAME": "admin",
        "MLFLOW_AUTH_ADMIN_PASSWORD": "admin-Pw-00001",
        "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-secret-key",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # as the stacks run it
    }
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(var, None)
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [
            str(BIN / "mlflow"),
            "server",
            "--app-name",
            "basic-auth",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    SERVER_LOGS[url] = root / "server.log"
    try:
        deadline = time.monotonic() + 300  # a loaded machine: minutes
        while True:
            assert proc.poll() is None, (root / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (root / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()  # the process this fixture started, by its pid
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        log.close()


def _users(url: str, **passwords: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "MLFLOW_TRACKING_URI": url,
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": "admin-Pw-00001",
        **passwords,
    }
    return subprocess.run(
        [
            sys.executable,
            str(ROOT / "infra" / "mlflow" / "users.py"),
            "recsys-worker=MLFLOW_WORKER_PASSWORD",
            "recsys-service=MLFLOW_SERVICE_PASSWORD",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_worker_writes_the_service_reads_and_nobody_else_gets_in(locked):
    made = _users(
        locked, MLFLOW_WORKER_PASSWORD="worker-Pw-0001", MLFLOW_SERVICE_PASSWORD="svc-Pw-000001"
    )
    assert made.returncode == 0, made.stderr
    assert "created recsys-worker" in made.stdout and "created recsys-service" in made.stdout
    worker = httpx.Client(
        base_url=locked + API, auth=("recsys-worker", "worker-Pw-0001"), timeout=120
    )
    service = httpx.Client(
        base_url=locked + API, auth=("recsys-service", "svc-Pw-000001"), timeout=120
    )

    # nobody signed in, or a wrong password: 401, whatever the route
    assert (
        httpx.get(f"{locked}{API}/experiments/search?max_results=1", timeout=120).status_code == 401
    )
    wrong = httpx.post(
        f"{locked}{API}/registered-models/create",
        json={"name": "x"},
        auth=("recsys-worker", "guess"),
        timeout=120,
    )
    assert wrong.status_code == 401

    # the worker creates what a training run creates, and moves the alias
    exp = worker.post("/experiments/create", json={"name": "locked"}).json()["experiment_id"]
    run = worker.post("/runs/create", json={"experiment_id": exp}).json()["run"]["info"]
    assert worker.post("/registered-models/create", json={"name": "locked"}).status_code == 200
    version = worker.post(
        "/model-versions/create",
        json={
            "name": "locked",
            "source": f"{run['artifact_uri']}/model_state",
            "run_id": run["run_id"],
        },
    ).json()["model_version"]["version"]
    alias = {"name": "locked", "alias": "champion-ranking", "version": version}
    assert worker.post("/registered-models/alias", json=alias).status_code == 200

    # the service reads the alias and the version's tags, and can change nothing
    got = service.get(
        "/registered-models/alias", params={"name": "locked", "alias": "champion-ranking"}
    )
    assert got.status_code == 200 and got.json()["model_version"]["version"] == version
    assert service.post("/registered-models/alias", json=alias).status_code == 403
    tag = {
        "name": "locked",
        "version": version,
        "key": "recsys.model_state.sha256",
        "value": "0" * 64,
    }
    assert service.post("/model-versions/set-tag", json=tag).status_code == 403
    assert service.post("/runs/create", json={"experiment_id": exp}).status_code == 403

    # a rotated password in .env is applied at the next start; the old one stops working
    again = _users(
        locked, MLFLOW_WORKER_PASSWORD="worker-Pw-0002", MLFLOW_SERVICE_PASSWORD="svc-Pw-000001"
    )
    assert again.returncode == 0, again.stderr
    assert "recsys-worker exists; password set again" in again.stdout
    assert worker.get("/registered-models/get", params={"name": "locked"}).status_code == 401
    rotated = httpx.get(
        f"{locked}{API}/registered-models/get",
        params={"name": "locked"},
        auth=("recsys-worker", "worker-Pw-0002"),
        timeout=120,
    )
    assert rotated.status_code == 200


def test_an_account_without_a_usable_password_is_refused(locked):
    out = _users(locked, MLFLOW_WORKER_PASSWORD="", MLFLOW_SERVICE_PASSWORD="svc-Pw-000001")
    assert out.returncode == 2 and "give NAME=VARIABLE with VARIABLE set" in out.stderr
    out = _users(locked, MLFLOW_WORKER_PASSWORD="short", MLFLOW_SERVICE_PASSWORD="svc-Pw-000001")
    assert out.returncode == 2
    assert "MLFLOW_WORKER_PASSWORD is shorter than 12 characters" in out.stderr
    assert "short" not in out.stderr.replace("shorter", "")  # the name, never the value


def test_the_admin_password_is_rotated_from_the_one_in_force(locked):
    def run(new: str, previous: str | None) -> subprocess.CompletedProcess:
        extra = {} if previous is None else {"MLFLOW_ADMIN_PREVIOUS_PASSWORD": previous}
        env = {
            "PATH": os.environ["PATH"],
            "MLFLOW_TRACKING_URI": locked,
            "MLFLOW_TRACKING_USERNAME": "admin",
            "MLFLOW_TRACKING_PASSWORD": new,
            "MLFLOW_SERVICE_PASSWORD": "svc-Pw-000001",
            **extra,
        }
        return subprocess.run(
            [
                sys.executable,
                str(ROOT / "infra" / "mlflow" / "users.py"),
                "recsys-service=MLFLOW_SERVICE_PASSWORD",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    # a new admin password without the one in force: refused, saying what to give
    refused = run("admin-Pw-00002", None)
    assert refused.returncode == 1 and "MLFLOW_ADMIN_PREVIOUS_PASSWORD" in refused.stderr
    rotated = run("admin-Pw-00002", "admin-Pw-00001")
    assert rotated.returncode == 0, rotated.stderr
    assert "password rotated" in rotated.stdout
    current = f"{locked}{API}/users/current"
    assert httpx.get(current, auth=("admin", "admin-Pw-00001"), timeout=120).status_code == 401
    assert httpx.get(current, auth=("admin", "admin-Pw-00002"), timeout=120).status_code == 200
    back = run("admin-Pw-00001", "admin-Pw-00002")  # as the other tests expect it
    assert back.returncode == 0, back.stderr


def test_an_alias_of_a_model_not_registered_yet_is_no_champion(locked, monkeypatch):
    """The locked registry answers 403 (not 404) for an alias of a model that does not exist:
    the training flow and the service read that as "no champion yet", as without auth."""
    import mlflow

    from recsys_core.exceptions import TrackingError
    from recsys_core.tracking import registry
    from recsys_service.live_models import resolve_alias

    monkeypatch.setenv("MLFLOW_TRACKING_URI", locked)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "recsys-service")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "svc-Pw-000001")
    # set_registry_uri writes MLFLOW_REGISTRY_URI too: set here, it is restored after the test
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", locked)
    mlflow.set_tracking_uri(locked)
    mlflow.set_registry_uri(locked)
    try:
        raw = httpx.get(
            f"{locked}{API}/registered-models/alias",
            params={"name": "never-registered", "alias": "champion-ranking"},
            auth=("recsys-service", "svc-Pw-000001"),
            timeout=120,
        )
        assert raw.status_code == 403  # what the auth app answers
        assert registry.get_alias("never-registered", "champion-ranking") is None
        assert resolve_alias("never-registered", "champion-ranking") is None
        # a wrong password is still an error, never "no champion"
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password-1")
        with pytest.raises(TrackingError, match="cannot read the alias"):
            registry.get_alias("never-registered", "champion-ranking")
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


def test_the_service_polls_a_model_not_registered_yet_without_an_error(locked, monkeypatch):
    """Before the first registration each look of the service's poller is one search the
    registry answers 200 (no 403 for the alias, no 404 for the model in its log), and the
    service says what is missing."""
    import mlflow

    from recsys_service.live_models import LiveModels
    from recsys_service.settings import ServiceSettings

    made = _users(
        locked, MLFLOW_WORKER_PASSWORD="worker-Pw-0001", MLFLOW_SERVICE_PASSWORD="svc-Pw-000001"
    )
    assert made.returncode == 0, made.stderr
    monkeypatch.setenv("MLFLOW_TRACKING_URI", locked)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "recsys-service")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "svc-Pw-000001")
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", locked)
    mlflow.set_tracking_uri(locked)
    mlflow.set_registry_uri(locked)
    log = SERVER_LOGS[locked]
    try:
        start = log.stat().st_size
        live = LiveModels(ServiceSettings(registered_model="not-registered-yet"))
        for _ in range(3):
            live.refresh()
        problem = live.status("ranking").problem
        assert problem is not None and "no version with alias 'champion-ranking'" in problem
        deadline = time.monotonic() + 10  # the access lines of the last answers
        while True:
            with log.open("rb") as fh:
                fh.seek(start)
                lines = [
                    line for line in fh.read().decode().splitlines() if "/api/2.0/mlflow/" in line
                ]
            if len(lines) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert len(lines) == 3, lines  # one request per look
        assert all("registered-models/search" in line and " 200" in line for line in lines)
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


def test_the_stack_rotates_the_admin_password_it_recorded(locked, monkeypatch):
    """The loopback stack's bookkeeping against a real server: a start applies the accounts
    and records the admin password; a new one is rotated in by signing in with the recorded
    one, and recorded in its place."""
    import importlib.util
    import shutil
    from urllib.parse import urlsplit

    spec = importlib.util.spec_from_file_location(
        "recsys_loopback_stack", ROOT / "infra" / "loopback" / "stack.py"
    )
    stack = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = stack  # dataclasses look their module up
    spec.loader.exec_module(stack)
    # the accounts as the other tests of this server know them
    monkeypatch.setenv("STACK_MLFLOW_ADMIN_PASSWORD", "admin-Pw-00001")
    monkeypatch.setenv("STACK_MLFLOW_WORKER_PASSWORD", "worker-Pw-0001")
    monkeypatch.setenv("STACK_MLFLOW_SERVICE_PASSWORD", "svc-Pw-000001")
    unit = stack.Stack(name="unit-admin-rotation", mlflow_port=urlsplit(locked).port)
    shutil.rmtree(unit.state, ignore_errors=True)
    current = f"{locked}{API}/users/current"
    try:
        out = stack.ensure_mlflow_users(unit)
        assert "signed in" in out and "recsys-service exists" in out
        assert unit.mlflow_admin_file.read_text() == "admin-Pw-00001\n"

        monkeypatch.setenv("STACK_MLFLOW_ADMIN_PASSWORD", "admin-Pw-00003")
        out = stack.ensure_mlflow_users(unit)
        assert "password rotated" in out
        assert unit.mlflow_admin_file.read_text() == "admin-Pw-00003\n"
        assert httpx.get(current, auth=("admin", "admin-Pw-00003"), timeout=120).status_code == 200
        assert httpx.get(current, auth=("admin", "admin-Pw-00001"), timeout=120).status_code == 401

        # a record that is not the password in force: the error of the accounts script
        unit.record_mlflow_admin("not-the-admin-Pw")
        monkeypatch.setenv("STACK_MLFLOW_ADMIN_PASSWORD", "admin-Pw-00001")
        with pytest.raises(stack.StackError, match="MLFLOW_ADMIN_PREVIOUS_PASSWORD") as err:
            stack.ensure_mlflow_users(unit)
        assert "write the password in force there" in str(err.value)
        assert unit.mlflow_admin_file.read_text() == "not-the-admin-Pw\n"  # kept as it was
    finally:
        unit.record_mlflow_admin("admin-Pw-00003")
        monkeypatch.setenv("STACK_MLFLOW_ADMIN_PASSWORD", "admin-Pw-00001")
        back = stack.ensure_mlflow_users(unit)  # as the other tests expect it
        shutil.rmtree(unit.state, ignore_errors=True)
    assert "password rotated" in back


def test_doctor_reads_the_server_version_with_the_clients_account(locked):
    from recsys_core.tracking.doctor import check_versions

    anonymous = check_versions(locked, {})
    assert not anonymous.ok and "401" in anonymous.detail
    signed = check_versions(
        locked,
        {"MLFLOW_TRACKING_USERNAME": "recsys-service", "MLFLOW_TRACKING_PASSWORD": "svc-Pw-000001"},
    )
    assert signed.ok, signed.detail
