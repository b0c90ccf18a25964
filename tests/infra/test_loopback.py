"""The loopback stack script without servers: settings, .env block, ports in use."""

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

from recsys_core.events.migrate import head as events_head

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "loopback" / "stack.py"


def _module():
    spec = importlib.util.spec_from_file_location("recsys_loopback_stack", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_env_block_is_replaced_and_removed_keeping_other_lines(tmp_path):
    stack = _module()
    env = tmp_path / ".env"
    env.write_text("MY_SETTING=1\n")
    stack.write_env_file(env, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"})
    stack.write_env_file(env, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5001"})
    text = env.read_text()
    assert text.count(stack.ENV_BEGIN) == 1
    assert "MLFLOW_TRACKING_URI=http://127.0.0.1:5001" in text and ":5000" not in text
    assert env.stat().st_mode & 0o077 == 0  # keys inside: owner only
    stack.remove_env_block(env)
    assert env.read_text() == "MY_SETTING=1\n"
    only = tmp_path / "only.env"
    stack.write_env_file(only, {"PREFECT_API_URL": "http://127.0.0.1:4200/api"})
    stack.remove_env_block(only)
    assert not only.exists()  # stack-up created it, stack-down leaves no trace


def test_client_settings_and_separate_databases_per_stack():
    stack = _module()
    dev = stack.Stack()
    test = stack.Stack(name="unit", db_prefix="recsys_unit", mlflow_port=15999)
    assert dev.databases == {
        "mlflow": "recsys_mlflow",
        "prefect": "recsys_prefect",
        "events": "recsys_events",
    }
    # each role of the event store, without a password in the URL
    assert dev.events_url("service") == (
        "postgresql://recsys_events_service@127.0.0.1:5432/recsys_events"
    )
    assert test.events_url("owner") == "postgresql://postgres@127.0.0.1:5432/recsys_unit_events"
    assert test.events_source == (
        "postgresql://recsys_events_collect@127.0.0.1:5432/recsys_unit_events?table=events"
    )
    assert test.databases["mlflow"] == "recsys_unit_mlflow"
    assert test.mlflow_url == "http://127.0.0.1:15999"
    assert stack.Stack(name="unit", serve_port=18111).ports()["serve"] == 18111
    assert dev.serve_url == "http://127.0.0.1:8000" and "serve" in stack.SERVICES
    assert "@" in test.pg_url("x") and ":" not in test.pg_url("x").split("@")[0][13:]
    assert stack.buckets.artifacts_destination({}) == "s3://mlflow/artifacts"
    assert (
        stack.buckets.artifacts_destination(
            {"S3_BUCKET_ARTIFACTS": "b", "MLFLOW_ARTIFACTS_PREFIX": "/p/"}
        )
        == "s3://b/p"
    )


def test_a_port_in_use_is_named_with_the_setting_that_moves_it(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            [
                sys.executable,
                str(SCRIPT),
                "up",
                "--name",
                "unit-busy",
                "--s3-port",
                str(port),
                "--no-deploy",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert out.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in out.stderr
    assert "--s3-port / STACK_S3_PORT" in out.stderr


def test_a_placeholder_setting_is_refused_naming_it(tmp_path):
    env = {**os.environ, "STACK_PG_PASSWORD": "change-me-postgres"}
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "status", "--name", "unit-placeholder"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert out.returncode == 2
    assert "STACK_PG_PASSWORD still holds the placeholder" in out.stderr


def test_the_prefect_auth_string_is_generated_once_and_given_to_clients():
    import shutil

    stack = _module()
    unit = stack.Stack(name="unit-auth")
    try:
        env = unit.client_env()
        auth = env["PREFECT_API_AUTH_STRING"]
        # the event store's URLs: read-only for reports, the owner for forget and migrations
        assert env["RECSYS_EVENTS_URL"] == unit.events_url("collect")
        assert env["RECSYS_EVENTS_OWNER_URL"] == unit.events_url("owner")
        user, _, password = auth.partition(":")
        assert user == "recsys" and len(password) >= 24
        assert stack.Stack(name="unit-auth").client_env()["PREFECT_API_AUTH_STRING"] == auth
        assert (unit.state / "prefect-auth").stat().st_mode & 0o077 == 0
        # the clients' API key and the service's pepper: made once, kept out of others' reach
        key = env["RECSYS_SERVE_API_KEY"]
        assert key.startswith("rsk_") and len(key) >= 36 and key == unit.api_key()
        assert stack.Stack(name="unit-auth").client_env()["RECSYS_SERVE_API_KEY"] == key
        assert (unit.state / "api-key").stat().st_mode & 0o077 == 0
        assert len(unit.keys_pepper()) == 64 and unit.keys_pepper() not in str(env)
        # one key per client: the worker's is its own, and is not handed over through .env
        worker_key = unit.api_key("worker")
        assert worker_key != key and worker_key not in str(env)
        assert unit.api_key_name("worker").startswith("worker-")
        assert unit.api_key_name() != unit.api_key_name("worker")
        # the registry's accounts: the clients edit as the worker; the admin's password and
        # the service's stay in the state folder
        passwords = unit.mlflow_passwords()
        assert env["MLFLOW_TRACKING_USERNAME"] == "recsys-worker"
        assert env["MLFLOW_TRACKING_PASSWORD"] == passwords["worker"]
        assert passwords["admin"] not in str(env) and passwords["service"] not in str(env)
        assert all(len(p) >= 24 for p in passwords.values())
        assert stack.Stack(name="unit-auth").mlflow_passwords() == passwords
        assert (unit.state / "mlflow-users.json").stat().st_mode & 0o077 == 0
        assert stack.Stack(name="unit-auth-2").prefect_auth() != auth
    finally:
        shutil.rmtree(unit.state, ignore_errors=True)
        shutil.rmtree(stack.Stack(name="unit-auth-2").state, ignore_errors=True)


def test_the_event_store_is_migrated_with_least_privilege_roles():
    """The stack's start on the real PostgreSQL: the tables, then the roles of events-roles.sql:
    the service inserts and reads but cannot delete, the collection only reads."""
    import shutil
    import uuid

    import psycopg2
    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    from recsys_core.events import EventStore
    from recsys_core.events.engine import make_engine

    stack = _module()
    prefix = os.environ.get("RECSYS_TEST_DB_PREFIX", "recsys_test")
    tag = uuid.uuid4().hex[:6]
    unit = stack.Stack(name=f"unit-{tag}", db_prefix=f"{prefix}_u{tag}")
    try:
        stack.ensure_databases(unit)
        head = f"revision {events_head()}"
        assert head in stack.ensure_event_store(unit)
        assert head in stack.ensure_event_store(unit)  # idempotent (a second stack-up)
        # the clients' key is registered, every scope, under the stack's pepper
        from recsys_core.events.keys import SCOPES, KeyStore

        keys = KeyStore(unit.events_url("service"), pepper_value=unit.keys_pepper().encode())
        key = keys.verify(unit.api_key())
        worker = keys.verify(unit.api_key("worker"))
        keys.close()
        assert key is not None and key.name == unit.api_key_name()
        assert key.scopes == set(SCOPES)
        # the worker's flows hold a key of their own, with the one scope they use
        assert worker is not None and worker.name == unit.api_key_name("worker")
        assert worker.scopes == {"admin"}
        service = EventStore(unit.events_url("service"))
        assert (
            service.append(
                [{"event_id": "e1", "user_id": "u", "item_id": "i", "type": "click"}]
            ).stored
            == 1
        )
        service.close()
        for role, statement in (
            ("service", "DELETE FROM events"),
            ("collect", "INSERT INTO events VALUES ('e2', 'u', 'i', NULL, 'view', 1, NULL, 1)"),
            ("service", "DROP TABLE events"),
        ):
            engine = make_engine(unit.events_url(role))
            try:
                with engine.begin() as conn:
                    conn.execute(text(statement))
                raise AssertionError(f"{role} could run {statement!r}")
            except ProgrammingError as exc:
                assert "permission denied" in str(exc) or "must be owner" in str(exc), exc
            finally:
                engine.dispose()
        engine = make_engine(unit.events_url("collect"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM events")).scalar_one() == 1
            # what a training run reads besides the events: forgotten users, the forget audit
            for table in ("tombstones", "forget_audit"):
                assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
        engine.dispose()
    finally:
        conn = psycopg2.connect(
            host=unit.pg_host, port=unit.pg_port, user=unit.pg_user, dbname="postgres"
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            for db in unit.databases.values():
                cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.close()
        shutil.rmtree(unit.state, ignore_errors=True)


def test_the_mlflow_password_bookkeeping_first_start_rotation_and_a_damaged_file(monkeypatch):
    """``mlflow-users.json`` and ``mlflow-admin-applied`` of the state folder, without servers:
    what the first start writes, what a rotation hands the accounts script, and what a damaged
    or missing file says."""
    import json
    import shutil

    import pytest

    stack = _module()
    for role in ("ADMIN", "WORKER", "SERVICE"):
        monkeypatch.delenv(f"STACK_MLFLOW_{role}_PASSWORD", raising=False)
    unit = stack.Stack(name="unit-mlflow-users")
    shutil.rmtree(unit.state, ignore_errors=True)
    try:
        # first start: three passwords, kept private; no admin applied yet, so no rotation
        passwords = unit.mlflow_passwords()
        stored = json.loads(unit.mlflow_users_file.read_text())
        assert stored == passwords and set(stored) == {"admin", "worker", "service"}
        assert len(set(stored.values())) == 3 and all(len(p) >= 24 for p in stored.values())
        assert unit.mlflow_users_file.stat().st_mode & 0o077 == 0
        assert unit.mlflow_admin_applied() is None and unit.mlflow_admin_previous() is None
        unit.record_mlflow_admin(passwords["admin"])  # what a start does once the server took it
        assert unit.mlflow_admin_file.read_text() == passwords["admin"] + "\n"
        assert unit.mlflow_admin_file.stat().st_mode & 0o077 == 0
        assert unit.mlflow_admin_previous() is None  # the same again: nothing to rotate

        # a rotation by the environment: the previous password is the one applied
        monkeypatch.setenv("STACK_MLFLOW_ADMIN_PASSWORD", "rotated-admin-Pw-1")
        assert unit.mlflow_passwords()["admin"] == "rotated-admin-Pw-1"
        assert unit.mlflow_admin_previous() == passwords["admin"]
        unit.record_mlflow_admin("rotated-admin-Pw-1")
        assert unit.mlflow_admin_previous() is None
        assert json.loads(unit.mlflow_users_file.read_text()) == stored  # the file is kept
        monkeypatch.delenv("STACK_MLFLOW_ADMIN_PASSWORD")
        # back to the file's password: rotated from the one applied last
        assert unit.mlflow_admin_previous() == "rotated-admin-Pw-1"
        unit.record_mlflow_admin(passwords["admin"])

        # a damaged file: an error naming it and saying how to mend it, never a traceback
        for text, says in (
            ("{not json", "cannot be read as JSON"),
            ("[1, 2]", "holds list, not an object"),
            (json.dumps({"admin": "x" * 24, "worker": "short"}), "no usable password for worker"),
        ):
            unit.mlflow_users_file.write_text(text)
            with pytest.raises(stack.StackError, match=says) as err:
                unit.mlflow_passwords()
            assert "mlflow-users.json" in str(err.value)
            assert "STACK_MLFLOW_{ADMIN,WORKER,SERVICE}_PASSWORD" in str(err.value)
        # the environment stands in for what the file lacks
        monkeypatch.setenv("STACK_MLFLOW_WORKER_PASSWORD", "worker-from-env-1")
        monkeypatch.setenv("STACK_MLFLOW_SERVICE_PASSWORD", "service-from-env-1")
        assert unit.mlflow_passwords()["worker"] == "worker-from-env-1"
        monkeypatch.delenv("STACK_MLFLOW_WORKER_PASSWORD")
        monkeypatch.delenv("STACK_MLFLOW_SERVICE_PASSWORD")

        # a missing file: new passwords, the admin's rotated from the one applied
        unit.mlflow_users_file.unlink()
        fresh = unit.mlflow_passwords()
        assert fresh["admin"] != passwords["admin"]
        assert unit.mlflow_admin_previous() == passwords["admin"]
        # an emptied record of the applied password: said, with what to write there
        unit.mlflow_admin_file.write_text("\n")
        with pytest.raises(stack.StackError, match="mlflow-admin-applied is empty"):
            unit.mlflow_admin_previous()
    finally:
        shutil.rmtree(unit.state, ignore_errors=True)
