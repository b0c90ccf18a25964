"""The production topology started natively on 127.0.0.1, for developers and the stack tests.

    python infra/loopback/stack.py up [--env-file .env]   # make stack-up
    python infra/loopback/stack.py down                   # make stack-down
    python infra/loopback/stack.py status | env | deploy
    python infra/loopback/stack.py stop s3 | start s3     # one service (fault drills)

Services, in start order (the same roles as ``docker-compose.yml``):

========  ==========================================  ============================
service   what runs                                   health
========  ==========================================  ============================
postgres  the PostgreSQL already on the machine        databases created (idempotent);
                                                       the event store migrated
                                                       (``recsys db upgrade``) and its
                                                       roles granted (events-roles.sql)
s3        ``moto_server`` (stands in for MinIO)        HTTP answer, buckets and saved
                                                       objects restored
mlflow    ``mlflow server --app-name basic-auth``    ``/health``, then its
          on PostgreSQL (users in the same            accounts made (or given
          database), artifacts proxied to             their passwords again) by
          ``s3://<bucket>/<prefix>``; one worker,     infra/mlflow/users.py
          no job runner
prefect   ``prefect server start`` on PostgreSQL       ``/api/health``
worker    ``prefect worker start`` (process pool)      registered on its pool
serve     ``recsys serve`` (the champions, read        ``/health``
          through MLflow; no S3 key; events into
          the event store as recsys_events_service)
========  ==========================================  ============================

Each stack has a name (``dev`` by default, the tests use ``test``) with its own ports, databases
(``<prefix>_mlflow``, ``<prefix>_prefect``, ``<prefix>_events``) and state folder
``.stack/<name>/`` (pid files, logs, the S3 keys, Prefect auth string, event store passwords,
MLflow account passwords and API keys it generated, the saved S3 objects).

The registry is locked as in compose: MLflow's basic-auth app, with an admin (its password only
in the state folder), the worker's editing account (``recsys-worker``, handed to the clients
through ``.env`` as ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``) and the
service's read-only one (``recsys-service``). The passwords are in ``mlflow-users.json``
(``STACK_MLFLOW_{ADMIN,WORKER,SERVICE}_PASSWORD`` override them) and applied at each start of
the tracking server: changing one and restarting rotates it. The server runs with one worker and
``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: its job runner would start a Huey consumer per
GenAI job type, each a process importing MLflow, minutes of CPU on a loaded machine for jobs
the stack never runs. Each client of the service has its own API key (``API_CLIENTS``): the
one of ``.env`` and the worker's. The Prefect server asks for the stack's auth string and for
CSRF tokens, as in compose. Every process is started in its own session and stopped by the pid it
was given, never by name. Settings come from flags or ``STACK_*`` environment variables;
``--help`` lists them; a value still holding a ``change-me`` placeholder of ``.env.example`` is
refused.

The S3 server keeps its objects in memory, while the registry lives on in PostgreSQL: stopping it
(``down``, ``stop s3``) first saves every object into ``.stack/<name>/s3-objects/``, and starting
it restores them, so a registered model's artifacts survive ``make stack-down`` / ``stack-up``.
An S3 server that died on its own could not be saved: what it held since its start is lost, and
``recsys doctor`` names the registry versions whose artifacts are missing. ``up --fresh`` drops
the databases and the saved objects together.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVICES = ("s3", "mlflow", "prefect", "worker", "serve")
ENV_BEGIN = "# >>> recsys loopback stack (written by make stack-up; removed by make stack-down)"
ENV_END = "# <<< recsys loopback stack"
# the least-privilege roles of infra/postgres/events-roles.sql (one pair per PostgreSQL server,
# shared by its stacks: the first stack that creates them sets their passwords)
EVENT_ROLES = {"service": "recsys_events_service", "collect": "recsys_events_collect"}
# one API key per client of the service, with the scopes it needs: the people and tests using
# .env (every scope), the worker's flows (forget tells the service to re-read its tombstones)
API_CLIENTS = {"clients": "recommend,ingest,admin,explain", "worker": "admin"}
# the tracking server's accounts (MLflow's basic-auth app, as in compose): the admin (makes the
# others, in the state folder only), the worker's editing account (handed to the clients through
# .env) and the service's read-only one
MLFLOW_USERS = {"admin": "admin", "worker": "recsys-worker", "service": "recsys-service"}


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


buckets = _load("recsys_infra_buckets", ROOT / "infra" / "storage" / "buckets.py")
PLACEHOLDER = "change-me"


class StackError(RuntimeError):
    """A service could not be started, reached or stopped; the message says what to do."""


def _env(name: str, default):
    value = os.environ.get(f"STACK_{name}")
    return type(default)(value) if value not in (None, "") else default


def refuse_placeholders(env: dict[str, str]) -> None:
    """Stop with a message naming the first ``STACK_*`` setting that still holds a
    ``change-me`` placeholder (copied from ``.env.example`` and never replaced)."""
    for key in sorted(env):
        if key.startswith("STACK_") and PLACEHOLDER in (env[key] or ""):
            raise StackError(
                f"{key} still holds the placeholder {env[key]!r} of .env.example; set a real "
                f"value in .env or the environment (or remove the line to use the default)"
            )


@dataclass
class Stack:
    name: str = "dev"
    host: str = "127.0.0.1"
    s3_port: int = 9000
    mlflow_port: int = 5000
    prefect_port: int = 4200
    serve_port: int = 8000
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "postgres"
    db_prefix: str = "recsys"
    pool: str = "recsys-process"
    timeout: float = 180.0
    extra_env: dict[str, str] = field(default_factory=dict)

    # -- names and addresses ------------------------------------------------------------------
    @property
    def state(self) -> Path:
        return ROOT / ".stack" / self.name

    @property
    def saved_objects(self) -> Path:
        """Where the S3 server's objects are kept while it is stopped."""
        return self.state / "s3-objects"

    @property
    def databases(self) -> dict[str, str]:
        return {
            "mlflow": f"{self.db_prefix}_mlflow",
            "prefect": f"{self.db_prefix}_prefect",
            "events": f"{self.db_prefix}_events",
        }

    def events_url(self, role: str) -> str:
        """The event store as ``role`` sees it: ``service`` (insert + select, the recommendation
        service), ``collect`` (select only: collection, click-through) or ``owner``
        (migrations). The roles' passwords travel in PGPASSWORD, never in the URL."""
        user = self.pg_user if role == "owner" else EVENT_ROLES[role]
        return f"postgresql://{user}@{self.pg_host}:{self.pg_port}/{self.databases['events']}"

    @property
    def events_source(self) -> str:
        """The training source that collects the events table (``params.data.source``)."""
        return f"{self.events_url('collect')}?table=events"

    def pg_url(self, database: str, driver: str = "postgresql") -> str:
        # the password, if any, travels in PGPASSWORD / STACK_PG_PASSWORD, never in a URL or log
        return f"{driver}://{self.pg_user}@{self.pg_host}:{self.pg_port}/{database}"

    @property
    def s3_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    @property
    def prefect_api(self) -> str:
        return f"http://{self.host}:{self.prefect_port}/api"

    @property
    def serve_url(self) -> str:
        return f"http://{self.host}:{self.serve_port}"

    def ports(self) -> dict[str, int]:
        return {
            "s3": self.s3_port,
            "mlflow": self.mlflow_port,
            "prefect": self.prefect_port,
            "serve": self.serve_port,
        }

    def credentials(self) -> dict[str, str]:
        """S3 keys of this stack: generated once, kept in the git-ignored state folder."""
        path = self.state / "s3-credentials.json"
        if path.exists():
            return json.loads(path.read_text())
        creds = {
            "AWS_ACCESS_KEY_ID": f"recsys-{secrets.token_hex(6)}",
            "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(24),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(creds))
        path.chmod(0o600)
        return creds

    def prefect_auth(self) -> str:
        """The Prefect API's basic-auth string (``user:password``) of this stack: generated once,
        kept in the state folder beside the S3 keys."""
        path = self.state / "prefect-auth"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"recsys:{secrets.token_urlsafe(24)}\n")
        path.chmod(0o600)
        return path.read_text().strip()

    def event_passwords(self) -> dict[str, str]:
        """Passwords of the event store's roles: generated once, kept in the state folder."""
        path = self.state / "events-roles.json"
        if path.exists():
            return json.loads(path.read_text())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({role: secrets.token_urlsafe(18) for role in EVENT_ROLES}))
        path.chmod(0o600)
        return json.loads(path.read_text())

    def mlflow_passwords(self) -> dict[str, str]:
        """Passwords of the tracking server's accounts (:data:`MLFLOW_USERS`): generated once,
        kept in the state folder (``mlflow-users.json``: ``{"admin": ..., "worker": ...,
        "service": ...}``); ``STACK_MLFLOW_<ROLE>_PASSWORD`` overrides one. Applied at each
        start of the tracking server, so a changed one (rotation) takes effect then; the admin's
        is rotated from the one last applied (:meth:`mlflow_admin_applied`).

        Raises :class:`StackError` naming the file when it is not such an object."""
        path = self.mlflow_users_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({r: secrets.token_urlsafe(24) for r in MLFLOW_USERS}))
            path.chmod(0o600)
        stored = _read_mlflow_users(path)
        return {
            role: os.environ.get(f"STACK_MLFLOW_{role.upper()}_PASSWORD") or stored[role]
            for role in MLFLOW_USERS
        }

    @property
    def mlflow_users_file(self) -> Path:
        return self.state / "mlflow-users.json"

    @property
    def mlflow_admin_file(self) -> Path:
        """The admin password the tracking server last accepted (written after each start)."""
        return self.state / "mlflow-admin-applied"

    def mlflow_admin_applied(self) -> str | None:
        """The admin password last applied to the tracking server; None before the first
        start (the server then makes the admin with the password in force)."""
        path = self.mlflow_admin_file
        if not path.exists():
            return None
        applied = path.read_text().strip()
        if not applied:
            raise StackError(
                f"{path} is empty: it should hold the admin password the tracking server "
                "last accepted; write that password into it (or remove the file and give it "
                "as STACK_MLFLOW_ADMIN_PASSWORD), then start again"
            )
        return applied

    def mlflow_admin_previous(self) -> str | None:
        """The admin password in force on the server when it differs from the one to apply
        (a rotation: ``infra/mlflow/users.py`` signs in with it to change it); else None."""
        applied = self.mlflow_admin_applied()
        return (
            applied if applied is not None and applied != self.mlflow_passwords()["admin"] else None
        )

    def record_mlflow_admin(self, password: str) -> None:
        """Remember ``password`` as the admin password the tracking server accepts now."""
        path = self.mlflow_admin_file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(password + "\n")
        path.chmod(0o600)

    def mlflow_secret_key(self) -> str:
        """The Flask secret key of the tracking server (CSRF of its UI forms)."""
        return self._secret("mlflow-secret-key", lambda: secrets.token_hex(32))

    def mlflow_login(self, role: str) -> dict[str, str]:
        """``MLFLOW_TRACKING_USERNAME`` / ``_PASSWORD`` of one account (``worker``,
        ``service`` or ``admin``)."""
        return {
            "MLFLOW_TRACKING_USERNAME": MLFLOW_USERS[role],
            "MLFLOW_TRACKING_PASSWORD": self.mlflow_passwords()[role],
        }

    def keys_pepper(self) -> str:
        """The pepper of the service's API key hashes: generated once, in the state folder."""
        return self._secret("keys-pepper", lambda: secrets.token_hex(32))

    def api_key(self, client: str = "clients") -> str:
        """The API key of one client of the service (:data:`API_CLIENTS`), generated once, in
        the state folder: ``clients`` is handed over through ``.env``
        (``RECSYS_SERVE_API_KEY``), ``worker`` to the flows the worker runs."""
        if client not in API_CLIENTS:
            raise StackError(f"no API key client {client!r}; one of {', '.join(API_CLIENTS)}")
        # the clients' key keeps its file name of earlier stacks ("api-key")
        return self._secret(
            "api-key" if client == "clients" else f"api-key-{client}",
            lambda: "rsk_" + secrets.token_hex(24),
        )

    def api_key_name(self, client: str = "clients") -> str:
        """The key's name in the event store (the sender of what its holder posts): a new key
        (a state folder made anew) gets a new name, as a revoked or replaced name stays
        taken."""
        return f"{client}-" + hashlib.sha256(self.api_key(client).encode()).hexdigest()[:8]

    def _secret(self, name: str, make) -> str:
        path = self.state / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(make() + "\n")
            path.chmod(0o600)
        return path.read_text().strip()

    def client_env(self) -> dict[str, str]:
        """What a client needs to use this stack (what ``make stack-up`` writes into ``.env``)."""
        names = buckets.bucket_names()
        return {
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            # the registry asks who calls: the clients and the worker edit (the worker's account)
            **self.mlflow_login("worker"),
            "PREFECT_API_URL": self.prefect_api,
            "PREFECT_API_AUTH_STRING": self.prefect_auth(),
            "AWS_ENDPOINT_URL": self.s3_url,
            **self.credentials(),
            "AWS_DEFAULT_REGION": "us-east-1",
            "S3_BUCKET_ARTIFACTS": names["artifacts"],
            "S3_BUCKET_DATA": names["data"],
            "RECSYS_SERVE_URL": self.serve_url,
            # what the clients send the service (recsys forget, the stack tests, benchmarks)
            "RECSYS_SERVE_API_KEY": self.api_key(),
            # read only: `recsys report`, and the click-through each training run logs
            "RECSYS_EVENTS_URL": self.events_url("collect"),
            # the owner (migrations, `recsys forget`, which deletes): PostgreSQL's own user
            # and its password (PGPASSWORD / STACK_PG_PASSWORD), never the service's roles
            "RECSYS_EVENTS_OWNER_URL": self.events_url("owner"),
            # train-daily's params.data.source to collect the events the service stored
            "RECSYS_EVENTS_SOURCE": self.events_source,
        }

    def process_env(self, **extra: str) -> dict[str, str]:
        # the caller's Prefect profile must not leak in; worker and service timings may
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PREFECT_")
            or k.startswith(("PREFECT_WORKER_", "PREFECT_SERVER_SERVICES_"))
        }
        env.update(
            OPENBLAS_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            DO_NOT_TRACK="1",
            MLFLOW_DISABLE_TELEMETRY="true",
            GX_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PYTHONUNBUFFERED="1",
            PREFECT_HOME=str(self.state / "prefect-home"),
        )
        if os.environ.get("STACK_PG_PASSWORD"):
            env["PGPASSWORD"] = os.environ["STACK_PG_PASSWORD"]
        env.update(self.extra_env)
        env.update(extra)
        return env


# -- processes ---------------------------------------------------------------------------------
def _pid_file(stack: Stack, service: str) -> Path:
    return stack.state / f"{service}.pid"


def _log_file(stack: Stack, service: str) -> Path:
    return stack.state / "logs" / f"{service}.log"


def _running_pid(stack: Stack, service: str) -> int | None:
    """The pid of ``service`` if the process this script started is still alive."""
    path = _pid_file(stack, service)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().split()[0])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError, PermissionError, IndexError):
        path.unlink(missing_ok=True)
        return None
    # a recycled pid belongs to someone else: check the command line is still ours
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists() and str(BIN) not in cmdline.read_bytes().decode(errors="replace"):
        path.unlink(missing_ok=True)
        return None
    return pid


def _spawn(stack: Stack, service: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    log_path = _log_file(stack, service)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {service}: {argv[0]}\n".encode())
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    _pid_file(stack, service).write_text(f"{proc.pid}\n")
    return proc


def _tail(stack: Stack, service: str, lines: int = 25) -> str:
    path = _log_file(stack, service)
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _check_port_free(stack: Stack, service: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((stack.host, port))
        except OSError as exc:
            flag = f"--{service}-port / STACK_{service.upper()}_PORT"
            raise StackError(
                f"port {port} on {stack.host} is already in use ({exc.strerror}); the {service} "
                f"server of stack {stack.name!r} cannot start there. Stop whatever listens on it "
                f"(another stack: make stack-down) or choose another port with {flag}."
            ) from exc


def _wait(stack: Stack, service: str, proc: subprocess.Popen, probe, what: str) -> int:
    deadline = time.monotonic() + stack.timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _pid_file(stack, service).unlink(missing_ok=True)
            raise StackError(
                f"{service} exited while starting; last lines of "
                f"{_log_file(stack, service)}:\n{_tail(stack, service)}"
            )
        try:
            if probe():
                return proc.pid
        except (OSError, urllib.error.URLError, ValueError):
            pass
        time.sleep(0.5)
    stop(stack, service)
    raise StackError(
        f"{service} did not become healthy ({what}) within {stack.timeout:.0f} s; "
        f"see {_log_file(stack, service)}:\n{_tail(stack, service)}"
    )


def _http_ok(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None
) -> bytes | None:
    headers = dict(headers or {})
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=3) as resp:
        return resp.read() if 200 <= resp.status < 300 else None


def _prefect_post(stack: Stack, path: str, body: bytes) -> bytes | None:
    """POST to this stack's Prefect API as its clients do: basic auth, then a CSRF token."""
    auth = base64.b64encode(stack.prefect_auth().encode()).decode()
    headers = {"Authorization": f"Basic {auth}"}
    client = f"recsys-stack-{stack.name}"
    token = json.loads(
        _http_ok(f"{stack.prefect_api}/csrf-token?client={client}", headers=headers) or b"{}"
    )["token"]
    headers.update({"Prefect-Csrf-Token": token, "Prefect-Csrf-Client": client})
    return _http_ok(f"{stack.prefect_api}{path}", data=body, headers=headers)


def stop(stack: Stack, service: str, timeout: float = 15.0) -> bool:
    """Stop ``service`` (its whole process group); returns whether it was running.

    The S3 server's objects are saved first (it keeps them in memory only).
    """
    had_pid_file = _pid_file(stack, service).exists()
    pid = _running_pid(stack, service)
    if pid is None:
        if service == "s3" and had_pid_file:
            _say(
                f"WARNING: the S3 server of stack {stack.name!r} had stopped on its own; the "
                f"objects written since its last start are lost (the last save is kept in "
                f"{stack.saved_objects}). `recsys doctor` names registry versions whose "
                "artifacts are missing."
            )
        return False
    if service == "s3":
        save_s3(stack)
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            if (
                Path(f"/proc/{pid}/stat").exists()
                and " Z " in Path(f"/proc/{pid}/stat").read_text()
            ):
                break  # a zombie: exited, its parent (not us) has not reaped it
            time.sleep(0.2)
        else:
            continue
        break
    _pid_file(stack, service).unlink(missing_ok=True)
    return True


# -- services ----------------------------------------------------------------------------------
def ensure_databases(stack: Stack, fresh: bool = False) -> None:
    """Create the MLflow and Prefect databases (``fresh``: drop them first)."""
    import psycopg2

    try:
        conn = psycopg2.connect(
            host=stack.pg_host,
            port=stack.pg_port,
            user=stack.pg_user,
            password=os.environ.get("STACK_PG_PASSWORD") or None,
            dbname="postgres",
            connect_timeout=5,
        )
    except psycopg2.OperationalError as exc:
        raise StackError(
            f"cannot connect to PostgreSQL at {stack.pg_host}:{stack.pg_port} as "
            f"{stack.pg_user!r}: {str(exc).strip()}. Start PostgreSQL or set STACK_PG_HOST, "
            "STACK_PG_PORT, STACK_PG_USER, STACK_PG_PASSWORD."
        ) from exc
    conn.autocommit = True  # CREATE / DROP DATABASE cannot run in a transaction
    with conn.cursor() as cur:
        for db in stack.databases.values():
            if fresh:
                cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{db}"')
    conn.close()


def ensure_event_store(stack: Stack) -> str:
    """Migrate the event store (``recsys db upgrade`` as the owner) and grant its roles
    (``infra/postgres/events-roles.sql`` through psql, as in compose); returns the revision
    line. Both steps are idempotent."""
    env = stack.process_env(RECSYS_EVENTS_URL=stack.events_url("owner"))
    out = subprocess.run(
        [str(BIN / "recsys"), "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if out.returncode != 0:
        raise StackError(
            f"`recsys db upgrade` of the event store failed:\n{out.stdout[-2000:]}"
            f"{out.stderr[-2000:]}"
        )
    psql = shutil.which("psql")
    if psql is None:
        raise StackError(
            "psql is not installed: the event store's roles "
            "(infra/postgres/events-roles.sql) cannot be granted. Install the "
            "PostgreSQL client (apt-get install postgresql-client)"
        )
    passwords = stack.event_passwords()
    # the roles' passwords in the environment (the script's \getenv), never in argv (`ps`)
    env = {
        **env,
        "EVENTS_SERVICE_PASSWORD": passwords["service"],
        "EVENTS_COLLECT_PASSWORD": passwords["collect"],
    }
    argv = [
        psql,
        "--no-psqlrc",
        "--quiet",
        f"--host={stack.pg_host}",
        f"--port={stack.pg_port}",
        f"--username={stack.pg_user}",
        f"--dbname={stack.databases['events']}",
        f"--file={ROOT / 'infra' / 'postgres' / 'events-roles.sql'}",
    ]
    for attempt in range(3):
        # two stacks creating the shared roles at the same moment: one of them retries
        roles = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        if roles.returncode == 0:
            break
        time.sleep(0.5 * (attempt + 1))
    else:
        raise StackError(f"granting the event store's roles failed:\n{roles.stderr[-2000:]}")
    for client, scopes in API_CLIENTS.items():
        keys = subprocess.run(
            [
                str(BIN / "recsys"),
                "keys",
                "create",
                "--name",
                stack.api_key_name(client),
                "--scopes",
                scopes,
                "--from-env",
                "RECSYS_SERVE_API_KEY",
            ],
            cwd=ROOT,
            env={
                **env,
                "RECSYS_KEYS_PEPPER": stack.keys_pepper(),
                "RECSYS_SERVE_API_KEY": stack.api_key(client),
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if keys.returncode != 0:
            raise StackError(
                f"registering the API key of {client!r} failed:\n{keys.stderr[-2000:]}"
            )
    return out.stdout.strip()


def _s3_client(stack: Stack):
    creds = stack.credentials()
    return buckets.client(stack.s3_url, creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"])


def save_s3(stack: Stack) -> None:
    """Save every object of the running S3 server into ``stack.saved_objects``."""
    started = time.monotonic()
    try:
        count = buckets.save_objects(_s3_client(stack), stack.saved_objects)
    except Exception as exc:
        _say(
            f"WARNING: could not save the S3 objects of stack {stack.name!r} ({exc}); they "
            f"are lost when the server stops (the last save is kept in "
            f"{stack.saved_objects})"
        )
        return
    _say(
        f"s3       {count} objects saved to {stack.saved_objects} in "
        f"{time.monotonic() - started:.1f} s"
    )


def start_s3(stack: Stack) -> int:
    _check_port_free(stack, "s3", stack.s3_port)
    proc = _spawn(
        stack,
        "s3",
        [str(BIN / "moto_server"), "-H", stack.host, "-p", str(stack.s3_port)],
        stack.process_env(),
    )
    pid = _wait(
        stack,
        "s3",
        proc,
        lambda: _http_ok(f"{stack.s3_url}/moto-api/") is not None,
        f"GET {stack.s3_url}/moto-api/",
    )
    creds = stack.credentials()
    # the S3 server keeps its objects in memory: put back what the last stop saved
    restored = buckets.restore_objects(_s3_client(stack), stack.saved_objects)
    if restored:
        _say(f"s3       {restored} objects restored from {stack.saved_objects}")
    buckets.ensure_buckets(stack.s3_url, creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"])
    return pid


def mlflow_auth_config(stack: Stack) -> Path:
    """The basic-auth app's config of this stack: compose's ``infra/mlflow/basic_auth.ini``
    with the users kept in this stack's tracking database (the password, if any, is
    PGPASSWORD, never in the file)."""
    import configparser

    ini = configparser.ConfigParser()
    ini.read(ROOT / "infra" / "mlflow" / "basic_auth.ini")
    ini["mlflow"]["database_uri"] = stack.pg_url(stack.databases["mlflow"], "postgresql+psycopg2")
    path = stack.state / "mlflow-auth.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        ini.write(fh)
    return path


def start_mlflow(stack: Stack) -> int:
    """``mlflow server --app-name basic-auth`` (a locked registry, as in compose), then its
    accounts made or given their passwords again (``infra/mlflow/users.py``)."""
    _check_port_free(stack, "mlflow", stack.mlflow_port)
    hosts = [f"{h}:{stack.mlflow_port}" for h in (stack.host, "localhost")]
    argv = [
        str(BIN / "mlflow"),
        "server",
        "--app-name",
        "basic-auth",
        "--backend-store-uri",
        stack.pg_url(stack.databases["mlflow"], "postgresql+psycopg2"),
        "--artifacts-destination",
        buckets.artifacts_destination(),
        "--host",
        stack.host,
        "--port",
        str(stack.mlflow_port),
        "--workers",
        os.environ.get("STACK_MLFLOW_WORKERS", "1"),
        "--allowed-hosts",
        ",".join(hosts),
    ]
    creds = stack.credentials()
    passwords = stack.mlflow_passwords()
    env = stack.process_env(
        MLFLOW_S3_ENDPOINT_URL=stack.s3_url,
        AWS_DEFAULT_REGION="us-east-1",
        **creds,
        MLFLOW_AUTH_CONFIG_PATH=str(mlflow_auth_config(stack)),
        MLFLOW_AUTH_ADMIN_USERNAME=MLFLOW_USERS["admin"],
        MLFLOW_AUTH_ADMIN_PASSWORD=passwords["admin"],
        MLFLOW_FLASK_SERVER_SECRET_KEY=stack.mlflow_secret_key(),
        # no job runner: it starts a Huey consumer per GenAI job type (six processes, each
        # importing MLflow), minutes of CPU on a loaded machine for jobs this stack never runs
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(name, None)
    env.pop("AWS_ENDPOINT_URL", None)
    proc = _spawn(stack, "mlflow", argv, env)
    # the first start migrates the database (~20 s)
    pid = _wait(
        stack,
        "mlflow",
        proc,
        lambda: _http_ok(f"{stack.mlflow_url}/health") is not None,
        f"GET {stack.mlflow_url}/health",
    )
    ensure_mlflow_users(stack)
    return pid


def ensure_mlflow_users(stack: Stack) -> str:
    """Create the worker's and the service's accounts, or give them their passwords again
    (rotation), and rotate the admin's when it changed (signing in with the one last applied,
    ``mlflow-admin-applied``, then recording the new one there); returns the output of
    ``infra/mlflow/users.py``."""
    passwords = stack.mlflow_passwords()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "MLFLOW_TRACKING_URI": stack.mlflow_url,
        **stack.mlflow_login("admin"),
        "MLFLOW_WORKER_PASSWORD": passwords["worker"],
        "MLFLOW_SERVICE_PASSWORD": passwords["service"],
    }
    previous = stack.mlflow_admin_previous()
    if previous is not None:
        env["MLFLOW_ADMIN_PREVIOUS_PASSWORD"] = previous
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "infra" / "mlflow" / "users.py"),
            f"{MLFLOW_USERS['worker']}=MLFLOW_WORKER_PASSWORD",
            f"{MLFLOW_USERS['service']}=MLFLOW_SERVICE_PASSWORD",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if out.returncode != 0:
        hint = (
            f"\nthe admin's password was being rotated from the one in {stack.mlflow_admin_file}"
            ": if the server refuses it, write the password in force there and start again"
            if previous is not None
            else ""
        )
        raise StackError(
            f"the tracking server's accounts could not be made:\n{out.stderr[-2000:]}{hint}"
        )
    stack.record_mlflow_admin(passwords["admin"])
    return out.stdout


def _read_mlflow_users(path: Path) -> dict[str, str]:
    """The passwords of ``mlflow-users.json``, or a :class:`StackError` that says what is wrong
    with the file and how to mend it."""
    fix = (
        "mend it (a JSON object with a password of at least 12 characters for each of "
        f"{', '.join(MLFLOW_USERS)}), or give the passwords in force as "
        "STACK_MLFLOW_{ADMIN,WORKER,SERVICE}_PASSWORD; removing it makes new passwords, the "
        "admin's rotated from mlflow-admin-applied"
    )
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StackError(f"{path} cannot be read as JSON ({exc}): {fix}") from None
    if not isinstance(stored, dict):
        raise StackError(f"{path} holds {type(stored).__name__}, not an object: {fix}")
    bad = [
        role
        for role in MLFLOW_USERS
        if not os.environ.get(f"STACK_MLFLOW_{role.upper()}_PASSWORD")
        and not (isinstance(stored.get(role), str) and len(stored[role]) >= 12)
    ]
    if bad:
        raise StackError(f"{path} has no usable password for {', '.join(bad)}: {fix}")
    return stored


def start_prefect(stack: Stack) -> int:
    _check_port_free(stack, "prefect", stack.prefect_port)
    argv = [
        str(BIN / "prefect"),
        "server",
        "start",
        "--host",
        stack.host,
        "--port",
        str(stack.prefect_port),
    ]
    origin = f"{stack.host}:{stack.prefect_port}"
    env = stack.process_env(
        PREFECT_API_DATABASE_CONNECTION_URL=stack.pg_url(
            stack.databases["prefect"], "postgresql+asyncpg"
        ),
        PREFECT_UI_API_URL=stack.prefect_api,
        PREFECT_SERVER_API_HOST=stack.host,
        PREFECT_SERVER_API_PORT=str(stack.prefect_port),
        # as in compose: basic auth on every call but the health probe, CSRF tokens for
        # state-changing calls, cross-origin calls from the UI's own origins only
        PREFECT_SERVER_API_AUTH_STRING=stack.prefect_auth(),
        PREFECT_SERVER_CSRF_PROTECTION_ENABLED="true",
        PREFECT_SERVER_CORS_ALLOWED_ORIGINS=(
            f"http://{origin},http://localhost:{stack.prefect_port}"
        ),
    )
    if os.environ.get("STACK_PG_PASSWORD"):
        env["PREFECT_API_DATABASE_PASSWORD"] = os.environ["STACK_PG_PASSWORD"]
    proc = _spawn(stack, "prefect", argv, env)
    return _wait(
        stack,
        "prefect",
        proc,
        lambda: _http_ok(f"{stack.prefect_api}/health") == b"true",
        f"GET {stack.prefect_api}/health",
    )


def worker_name(stack: Stack) -> str:
    return f"loopback-{stack.name}"


def start_worker(stack: Stack) -> int:
    argv = [
        str(BIN / "prefect"),
        "worker",
        "start",
        "--pool",
        stack.pool,
        "--type",
        "process",
        "--name",
        worker_name(stack),
    ]
    # the flows read the event store as the collection role: no owner URL for them
    client = {k: v for k, v in stack.client_env().items() if k != "RECSYS_EVENTS_OWNER_URL"}
    # its own API key (scope admin: forget tells the service), not the one of .env
    client["RECSYS_SERVE_API_KEY"] = stack.api_key("worker")
    env = stack.process_env(
        RECSYS_CODE_DIR=str(ROOT), **client, PGPASSWORD=stack.event_passwords()["collect"]
    )
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "5")
    proc = _spawn(stack, "worker", argv, env)

    def registered() -> bool:
        body = _prefect_post(stack, f"/work_pools/{stack.pool}/workers/filter", b"{}")
        return any(w.get("name") == worker_name(stack) for w in json.loads(body or b"[]"))

    return _wait(
        stack, "worker", proc, registered, f"worker {worker_name(stack)!r} on pool {stack.pool!r}"
    )


def start_serve(stack: Stack) -> int:
    """``recsys serve`` as in compose: the tracking URI only (artifacts come through the MLflow
    server's proxy), the ``RECSYS_SERVE_*`` settings of the environment (registered model,
    aliases, poll interval)."""
    _check_port_free(stack, "serve", stack.serve_port)
    argv = [
        str(BIN / "recsys"),
        "serve",
        "--host",
        stack.host,
        "--port",
        str(stack.serve_port),
        "--workers",
        os.environ.get("STACK_SERVE_WORKERS", "1"),
    ]
    env = {
        k: v
        for k, v in stack.process_env(
            MLFLOW_TRACKING_URI=stack.mlflow_url,
            **stack.mlflow_login("service"),  # the registry's read-only account
            RECSYS_SERVE_EVENTS_URL=stack.events_url("service"),
            PGPASSWORD=stack.event_passwords()["service"],
            RECSYS_KEYS_PEPPER=stack.keys_pepper(),
        ).items()
        if not k.startswith(("AWS_", "MLFLOW_S3_"))
    }
    proc = _spawn(stack, "serve", argv, env)
    return _wait(
        stack,
        "serve",
        proc,
        lambda: _http_ok(f"{stack.serve_url}/health") is not None,
        f"GET {stack.serve_url}/health",
    )


STARTERS = {
    "s3": start_s3,
    "mlflow": start_mlflow,
    "prefect": start_prefect,
    "worker": start_worker,
    "serve": start_serve,
}


def start(stack: Stack, service: str) -> int:
    pid = _running_pid(stack, service)
    if pid is not None:
        return pid
    return STARTERS[service](stack)


def deploy(
    stack: Stack, *, reset_schedules: bool = False, prefect_file: Path = ROOT / "prefect.yaml"
) -> str:
    """Apply the deployments of ``prefect.yaml`` to this stack's Prefect server with
    ``infra/deployments/apply.py``: the work pool is created if missing, and deployments already
    there keep their schedules and paused state. Returns the script's summary line."""
    env = stack.process_env(
        PREFECT_API_URL=stack.prefect_api,
        RECSYS_CODE_DIR=str(ROOT),
        PREFECT_API_AUTH_STRING=stack.prefect_auth(),
    )
    argv = [
        sys.executable,
        str(ROOT / "infra" / "deployments" / "apply.py"),
        "--prefect-file",
        str(prefect_file),
    ]
    if reset_schedules:
        argv.append("--reset-schedules")
    out = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=360, check=False
    )
    if out.returncode != 0:
        raise StackError(
            f"applying {prefect_file.name} failed ({out.returncode}):\n"
            f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def _timed_start(stack: Stack, service: str) -> tuple[int, float]:
    started = time.monotonic()
    return start(stack, service), time.monotonic() - started


def up(stack: Stack, *, fresh: bool = False, with_deploy: bool = True) -> None:
    for service, port in stack.ports().items():  # fail before starting anything
        if _running_pid(stack, service) is None:
            _check_port_free(stack, service, port)
    stack.state.mkdir(parents=True, exist_ok=True)
    ensure_databases(stack, fresh=fresh)
    _say(f"postgres {ensure_event_store(stack)}")
    if fresh:  # the objects go with the registry that points at them
        shutil.rmtree(stack.saved_objects, ignore_errors=True)
    # S3 first (the tracking server needs its bucket), then both servers side by side (their
    # first start migrates a database: ~20 s each), then the worker (it needs the Prefect API)
    # beside the service (it needs the tracking server)
    for wave in (["s3"], ["mlflow", "prefect"], ["worker", "serve"]):
        with ThreadPoolExecutor(len(wave)) as pool:
            futures = {s: pool.submit(_timed_start, stack, s) for s in wave}
            errors = []
            for service, future in futures.items():
                try:
                    pid, seconds = future.result()
                    _say(f"{service:8s} pid {pid:<7d} ready in {seconds:4.1f} s")
                except StackError as exc:
                    errors.append(str(exc))
            if errors:
                raise StackError("\n".join(errors))
    if with_deploy:
        _say(deploy(stack))


def down(stack: Stack) -> list[str]:
    return [s for s in reversed(SERVICES) if stop(stack, s)]


def status(stack: Stack) -> dict[str, int | None]:
    return {s: _running_pid(stack, s) for s in SERVICES}


# -- .env --------------------------------------------------------------------------------------
def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Replace this stack's block in ``path`` (other lines are kept)."""
    lines = _strip_block(path.read_text().splitlines() if path.exists() else [])
    block = [ENV_BEGIN, *(f"{k}={v}" for k, v in values.items()), ENV_END]
    path.write_text("\n".join([*lines, *block]) + "\n")
    path.chmod(0o600)


def remove_env_block(path: Path) -> None:
    """Remove this stack's block from ``path``; a file left empty is removed."""
    if path.exists():
        lines = _strip_block(path.read_text().splitlines())
        if any(line.strip() for line in lines):
            path.write_text("\n".join(lines) + "\n")
        else:
            path.unlink()


def _strip_block(lines: list[str]) -> list[str]:
    out, inside = [], False
    for line in lines:
        if line == ENV_BEGIN:
            inside = True
        elif line == ENV_END:
            inside = False
        elif not inside:
            out.append(line)
    return out


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("command", choices=["up", "down", "status", "env", "deploy", "start", "stop"])
    p.add_argument("service", nargs="?", choices=SERVICES, help="for start / stop")
    d = Stack()
    p.add_argument("--name", default=_env("NAME", d.name), help="stack name (STACK_NAME)")
    p.add_argument("--host", default=_env("HOST", d.host), help="bind address (STACK_HOST)")
    p.add_argument("--s3-port", type=int, default=_env("S3_PORT", d.s3_port))
    p.add_argument("--mlflow-port", type=int, default=_env("MLFLOW_PORT", d.mlflow_port))
    p.add_argument("--prefect-port", type=int, default=_env("PREFECT_PORT", d.prefect_port))
    p.add_argument("--serve-port", type=int, default=_env("SERVE_PORT", d.serve_port))
    p.add_argument("--pg-host", default=_env("PG_HOST", d.pg_host))
    p.add_argument("--pg-port", type=int, default=_env("PG_PORT", d.pg_port))
    p.add_argument("--pg-user", default=_env("PG_USER", d.pg_user))
    p.add_argument(
        "--db-prefix",
        default=_env("DB_PREFIX", d.db_prefix),
        help="databases <prefix>_mlflow and <prefix>_prefect (STACK_DB_PREFIX)",
    )
    p.add_argument("--pool", default=os.environ.get("PREFECT_WORK_POOL") or d.pool)
    p.add_argument(
        "--timeout",
        type=float,
        default=_env("TIMEOUT", d.timeout),
        help="seconds each service may take to become healthy",
    )
    p.add_argument(
        "--env-file",
        type=Path,
        help="write (up) or remove (down) the client settings in this dotenv file",
    )
    p.add_argument("--fresh", action="store_true", help="up: drop the stack's databases first")
    p.add_argument("--no-deploy", action="store_true", help="up: do not apply prefect.yaml")
    p.add_argument(
        "--reset-schedules",
        action="store_true",
        help="deploy: apply the schedules of prefect.yaml to existing deployments too",
    )
    return p


def _read_dotenv_settings() -> None:
    """``STACK_*`` settings of the checkout's ``.env`` (the environment wins)."""
    path = ROOT / ".env"
    if not path.exists():
        return
    from dotenv import dotenv_values

    for key, value in dotenv_values(path).items():
        if key.startswith("STACK_") and value is not None:
            os.environ.setdefault(key, value)


def main(argv: list[str] | None = None) -> int:
    _read_dotenv_settings()
    try:
        refuse_placeholders(dict(os.environ))
    except StackError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    args = _parser().parse_args(argv)
    stack = Stack(
        name=args.name,
        host=args.host,
        s3_port=args.s3_port,
        mlflow_port=args.mlflow_port,
        prefect_port=args.prefect_port,
        serve_port=args.serve_port,
        pg_host=args.pg_host,
        pg_port=args.pg_port,
        pg_user=args.pg_user,
        db_prefix=args.db_prefix,
        pool=args.pool,
        timeout=args.timeout,
    )
    try:
        if args.command == "up":
            up(stack, fresh=args.fresh, with_deploy=not args.no_deploy)
            if args.env_file:
                write_env_file(args.env_file, stack.client_env())
                _say(f"client settings written to {args.env_file}")
            _say(
                f"MLflow UI   {stack.mlflow_url}\nPrefect UI  {stack.prefect_api[:-4]} (it asks "
                f"for the auth string in {stack.state / 'prefect-auth'})\n"
                f"S3 endpoint {stack.s3_url}\nservice     {stack.serve_url}\n"
                f"events      {stack.events_source} (train-daily's params.data.source)\n"
                f"logs        {stack.state / 'logs'}"
            )
        elif args.command == "down":
            stopped = down(stack)
            if args.env_file:
                remove_env_block(args.env_file)
            _say(f"stopped: {', '.join(stopped) or 'nothing was running'}")
            shutil.rmtree(stack.state / "prefect-home", ignore_errors=True)
        elif args.command == "status":
            for service, pid in status(stack).items():
                _say(f"{service:8s} {'pid ' + str(pid) if pid else 'stopped'}")
        elif args.command == "env":
            _say(json.dumps(stack.client_env()))
        elif args.command == "deploy":
            _say(deploy(stack, reset_schedules=args.reset_schedules))
        else:
            if not args.service:
                raise StackError(f"{args.command} needs a service: {', '.join(SERVICES)}")
            if args.command == "start":
                _say(f"{args.service} pid {start(stack, args.service)}")
            else:
                _say(f"{args.service} {'stopped' if stop(stack, args.service) else 'not running'}")
    except StackError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
