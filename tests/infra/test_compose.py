"""docker-compose.yml against the Compose specification, and the stack's house rules: users and
their policies, placeholders refused, the deploy job, the worker image (no Docker needed)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_follows_the_compose_specification():
    out = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_service_is_healthchecked_or_waits_for_a_healthy_or_completed_one(compose):
    for name, service in compose["services"].items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dep, spec in depends.items():
            assert spec.get("condition") in ("service_healthy", "service_completed_successfully"), (
                f"{name} -> {dep}"
            )
            target = compose["services"][dep]
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {dep}, which has no healthcheck"
        # a one-shot job is done when it exits (the others wait for its exit code)
        one_shot = service.get("restart") == "no"
        assert "healthcheck" in service or depends or one_shot, (
            f"{name}: no healthcheck, no dependency"
        )


def test_one_shot_bucket_job_gates_the_tracking_server(compose):
    services = compose["services"]
    assert services["minio-init"]["restart"] == "no"
    assert services["mlflow"]["depends_on"]["minio-init"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    init = (ROOT / "infra" / "minio" / "init.sh").read_text()
    assert init.count("mc mb --ignore-existing") == 2


def _run_minio_init(tmp_path) -> tuple[list[list[str]], dict[str, dict]]:
    """infra/minio/init.sh with an ``mc`` that records its calls and the policies it is given."""
    fake = tmp_path / "bin" / "mc"
    fake.parent.mkdir()
    fake.write_text(
        '#!/bin/sh\necho "$*" >> "$MC_LOG"\n'
        'if [ "$2 $3" = "policy create" ]; then cp "$6" "$MC_DIR/$5.json"; fi\n'
    )
    fake.chmod(0o755)
    env = {
        "PATH": f"{fake.parent}:{os.environ['PATH']}",
        "MC_LOG": str(tmp_path / "calls"),
        "MC_DIR": str(tmp_path),
        "MC_HOST_local": "http://root:rootpw@minio:9000",
        "S3_BUCKET_ARTIFACTS": "arts",
        "S3_BUCKET_DATA": "data",
        "S3_MLFLOW_ACCESS_KEY": "u-mlflow",
        "S3_MLFLOW_SECRET_KEY": "s1",
        "S3_WORKER_ACCESS_KEY": "u-worker",
        "S3_WORKER_SECRET_KEY": "s2",
    }
    out = subprocess.run(
        ["sh", str(ROOT / "infra" / "minio" / "init.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    calls = [line.split() for line in (tmp_path / "calls").read_text().splitlines()]
    # the root credentials reach mc through MC_HOST_local, on no command line
    assert not any("rootpw" in arg or arg == "root" for call in calls for arg in call), calls
    policies = {p.stem: json.loads(p.read_text()) for p in tmp_path.glob("recsys-*.json")}
    return calls, policies


def _resources(policy: dict) -> set[str]:
    return {r for statement in policy["Statement"] for r in statement["Resource"]}


def test_minio_init_takes_the_root_credentials_from_its_environment(compose, tmp_path):
    init = compose["services"]["minio-init"]["environment"]
    assert init["MC_HOST_local"].startswith("http://${MINIO_ROOT_USER:?")
    assert "${MINIO_ROOT_PASSWORD:?" in init["MC_HOST_local"]
    assert init["MC_HOST_local"].endswith("@minio:9000")
    assert "mc alias set" not in (ROOT / "infra" / "minio" / "init.sh").read_text()
    # without it the job stops at once, saying what to set
    out = subprocess.run(
        ["sh", str(ROOT / "infra" / "minio" / "init.sh")],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode != 0 and "MC_HOST_local" in out.stderr


def test_each_application_has_its_own_minio_user_limited_to_its_bucket(tmp_path):
    calls, policies = _run_minio_init(tmp_path)
    assert ["admin", "user", "add", "local", "u-mlflow", "s1"] in calls
    assert ["admin", "user", "add", "local", "u-worker", "s2"] in calls
    assert ["admin", "policy", "attach", "local", "recsys-mlflow", "--user", "u-mlflow"] in calls
    assert ["admin", "policy", "attach", "local", "recsys-worker", "--user", "u-worker"] in calls
    # the MLflow server: the artifacts bucket only; the worker: the data bucket only, no delete
    assert _resources(policies["recsys-mlflow"]) == {"arn:aws:s3:::arts", "arn:aws:s3:::arts/*"}
    assert _resources(policies["recsys-worker"]) == {"arn:aws:s3:::data", "arn:aws:s3:::data/*"}
    worker_actions = {a for st in policies["recsys-worker"]["Statement"] for a in st["Action"]}
    assert "s3:GetObject" in worker_actions and "s3:DeleteObject" not in worker_actions
    for policy in policies.values():
        assert all(
            st["Effect"] == "Allow" and "*" not in st["Action"] for st in policy["Statement"]
        )


def test_the_services_hold_only_their_own_keys(compose):
    services = compose["services"]
    mlflow, worker = services["mlflow"]["environment"], services["prefect-worker"]["environment"]
    assert "S3_MLFLOW_ACCESS_KEY" in mlflow["AWS_ACCESS_KEY_ID"]
    assert "S3_MLFLOW_SECRET_KEY" in mlflow["AWS_SECRET_ACCESS_KEY"]
    assert "S3_WORKER_ACCESS_KEY" in worker["AWS_ACCESS_KEY_ID"]
    assert "S3_WORKER_SECRET_KEY" in worker["AWS_SECRET_ACCESS_KEY"]
    # the worker reaches artifacts only through the tracking server's proxy
    assert "S3_MLFLOW" not in str(worker) and "MLFLOW_S3_ENDPOINT_URL" not in worker
    assert "S3_WORKER" not in str(mlflow)
    for name, service in services.items():
        if name not in ("minio", "minio-init", "config-check"):
            assert "MINIO_ROOT" not in str(service.get("environment", {})), name


def test_every_service_waits_for_the_placeholder_check(compose):
    for name, service in compose["services"].items():
        if name != "config-check":
            assert service["depends_on"]["config-check"]["condition"] == (
                "service_completed_successfully"
            ), name
    check = compose["services"]["config-check"]
    assert check["restart"] == "no"
    # every secret the compose file requires is checked
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    secrets = {v for v in required if re.search(r"PASSWORD|SECRET|AUTH|ROOT_USER", v)}
    checked = set(check["environment"]["CHECKED_SETTINGS"].split())
    assert secrets and secrets <= checked, secrets - checked
    assert checked <= set(check["environment"]), checked - set(check["environment"])


def _check_placeholders(values: dict[str, str]) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "CHECKED_SETTINGS": " ".join(values), **values}
    return subprocess.run(
        ["sh", str(ROOT / "infra" / "compose" / "check-placeholders.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_placeholders_of_env_example_are_refused_by_name(compose):
    example = _env_example()
    checked = compose["services"]["config-check"]["environment"]["CHECKED_SETTINGS"].split()
    out = _check_placeholders({name: example[name] for name in checked})
    assert out.returncode == 1
    for name in checked:
        if "change-me" in example[name]:
            assert f"config-check: {name} still holds the change-me placeholder" in out.stderr
            assert example[name] not in out.stderr  # the name, never the value
    out = _check_placeholders({name: f"real-{i}" for i, name in enumerate(checked)})
    assert out.returncode == 0, out.stderr
    out = _check_placeholders({"PREFECT_AUTH_STRING": "admin:change-me-later", "OTHER": ""})
    assert out.returncode == 1
    assert "PREFECT_AUTH_STRING" in out.stderr and "OTHER" in out.stderr


def test_prefect_server_asks_for_auth_and_csrf_and_limits_cors(compose):
    server = compose["services"]["prefect-server"]["environment"]
    assert "PREFECT_AUTH_STRING" in server["PREFECT_SERVER_API_AUTH_STRING"]
    assert server["PREFECT_SERVER_CSRF_PROTECTION_ENABLED"] == "true"
    origins = server["PREFECT_SERVER_CORS_ALLOWED_ORIGINS"]
    assert "*" not in origins and "localhost:${PREFECT_PORT:-4200}" in origins
    for client in ("prefect-worker", "prefect-deploy"):
        env = compose["services"][client]["environment"]
        assert "PREFECT_AUTH_STRING" in env["PREFECT_API_AUTH_STRING"], client


def test_deployments_are_applied_by_a_one_shot_job_not_at_each_worker_start(compose):
    services = compose["services"]
    deploy, worker = services["prefect-deploy"], services["prefect-worker"]
    assert deploy["restart"] == "no"
    assert deploy["entrypoint"][-1] == "/app/infra/deployments/apply.py"
    assert deploy["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    assert worker["depends_on"]["prefect-deploy"]["condition"] == "service_completed_successfully"
    assert deploy["build"] == worker["build"] and deploy["image"] == worker["image"]
    entrypoint = (ROOT / "infra" / "worker" / "entrypoint.sh").read_text()
    code = [line for line in entrypoint.splitlines() if not line.lstrip().startswith("#")]
    assert "deploy" not in "\n".join(code)
    assert "prefect worker start" in "\n".join(code)


def test_worker_image_installs_the_locked_dependencies_before_the_code():
    dockerfile = (ROOT / "infra" / "worker" / "Dockerfile").read_text().splitlines()
    install = next(i for i, line in enumerate(dockerfile) if "-c constraints.txt" in line)
    code = next(i for i, line in enumerate(dockerfile) if line.startswith("COPY recsys_core"))
    lock = next(
        i
        for i, line in enumerate(dockerfile)
        if line.startswith("COPY") and "constraints.txt" in line
    )
    assert lock < install < code
    assert any("pip install --no-deps ." in line for line in dockerfile[code:])
    # the commit's build argument comes after every RUN (it would invalidate their cache)
    arg = next(i for i, line in enumerate(dockerfile) if line.startswith("ARG GIT_COMMIT"))
    assert all(not line.startswith("RUN") for line in dockerfile[arg:])
    ignore = (ROOT / "infra" / "worker" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "!constraints.txt" in ignore and "!infra/deployments/apply.py" in ignore


def test_nothing_is_published_beyond_loopback_and_postgres_not_at_all(compose):
    assert "ports" not in compose["services"]["postgres"]
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("${BIND_ADDRESS:-127.0.0.1}:"), f"{name}: {port}"


def test_artifacts_are_proxied_and_hosts_allowed(compose):
    mlflow = compose["services"]["mlflow"]
    env, command = mlflow["environment"], " ".join(mlflow["command"])
    assert env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert "default-artifact-root" not in command and "MLFLOW_DEFAULT_ARTIFACT_ROOT" not in env
    assert "--allowed-hosts=" in command and "mlflow:5000" in command
    # the published port is a setting: the host names follow it
    hosts = next(a for a in mlflow["command"] if a.startswith("--allowed-hosts="))
    assert "localhost:${MLFLOW_PORT:-5000}" in hosts and "127.0.0.1:${MLFLOW_PORT:-5000}" in hosts
    assert "localhost:5000" not in hosts and "MLFLOW_ALLOWED_HOSTS" not in COMPOSE.read_text()


def test_server_runs_the_clients_mlflow_version(compose):
    from importlib.metadata import version

    default = re.search(r"MLFLOW_VERSION:-([\d.]+)", str(compose["services"]["mlflow"]["build"]))
    assert default and default.group(1) == version("mlflow")
    assert f"MLFLOW_VERSION={version('mlflow')}" in (ROOT / ".env.example").read_text()


def _env_example() -> dict[str, str]:
    example = (ROOT / ".env.example").read_text()
    return dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )


def test_env_example_names_every_required_setting_with_placeholders_only(compose):
    settings = _env_example()
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert required and required <= set(settings), required - set(settings)
    for key, value in settings.items():
        if "PASSWORD" in key or "SECRET" in key or "AUTH" in key:
            assert value.startswith("change-me"), key
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


def test_prefect_yaml_deployments():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (train,) = [d for d in config["deployments"] if d["name"] == "train-daily"]
    assert train["entrypoint"] == "flows/training.py:training_flow"
    schedule = train["schedules"][0]
    assert schedule["cron"] and schedule["timezone"]
    assert train["concurrency_limit"]["limit"] == 1
    assert train["work_pool"]["job_variables"]["working_dir"] == "{{ $RECSYS_CODE_DIR }}"
    assert train["enforce_parameter_schema"] is True
    path, func = train["entrypoint"].split(":")
    assert f"def {func}(" in (ROOT / path).read_text()


def test_the_serving_service_reads_the_registry_through_mlflow_and_holds_no_key(compose):
    serving = compose["services"]["serving"]
    assert serving["entrypoint"][:2] == ["recsys", "serve"]
    assert serving["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert serving["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert "/health" in str(serving["healthcheck"]["test"])
    # models come through the artifact proxy: no S3 or Prefect credential; of the database,
    # only the event store's service role (insert + select)
    environment = dict(serving["environment"])
    assert "EVENTS_SERVICE_PASSWORD" in environment.pop("PGPASSWORD")
    # of the registry, the read-only account (tests/infra/test_mlflow_auth.py)
    assert environment.pop("MLFLOW_TRACKING_USERNAME") == "recsys-service"
    assert "MLFLOW_SERVICE_PASSWORD" in environment.pop("MLFLOW_TRACKING_PASSWORD")
    assert environment["RECSYS_SERVE_EVENTS_URL"].startswith(
        "postgresql://recsys_events_service@postgres:5432/"
    )
    env = str(environment)
    assert not any(secret in env for secret in ("AWS_", "S3_", "PREFECT_", "PASSWORD"))
    # the image carries the service package
    assert "COPY recsys_service" in (ROOT / "infra" / "worker" / "Dockerfile").read_text()


def test_spark_profile_runs_a_master_and_a_worker_of_the_pyspark_version(compose):
    from importlib.metadata import version

    services = compose["services"]
    profiled = {name for name, s in services.items() if "profiles" in s}
    assert profiled == {"spark-master", "spark-worker"}  # nothing else is optional
    master, worker = services["spark-master"], services["spark-worker"]
    assert master["profiles"] == worker["profiles"] == ["spark"]
    # the official image, pinned, at the driver's version (Spark refuses mismatched versions)
    for service in (master, worker):
        tag = re.fullmatch(r"apache/spark:\$\{SPARK_TAG:-(.+)\}", service["image"])
        assert tag, service["image"]
        assert tag.group(1).startswith(f"{version('pyspark')}-") and "java17" in tag.group(1)
    assert master["command"][1:] == [
        "org.apache.spark.deploy.master.Master",
        "--host",
        "spark-master",
        "--port",
        "7077",
        "--webui-port",
        "8080",
    ]
    assert worker["command"][1:3] == [
        "org.apache.spark.deploy.worker.Worker",
        "spark://spark-master:7077",
    ]
    assert worker["depends_on"]["spark-master"]["condition"] == "service_healthy"
    # the flow worker: local Spark by default, the cluster when .env sets the master; executors
    # reach the driver by service name and read its Parquet from the same shared path
    flows = services["prefect-worker"]
    env = flows["environment"]
    assert env["RECSYS_SPARK_MASTER"] == "${RECSYS_SPARK_MASTER:-local[*]}"
    assert env["SPARK_LOCAL_HOSTNAME"] == "prefect-worker"
    scratch = env["RECSYS_SPARK_SCRATCH_DIR"]
    assert f"spark-scratch:{scratch}" in flows["volumes"]
    assert f"spark-scratch:{scratch}" in worker["volumes"]
    assert "spark-scratch" in compose["volumes"]
    example = (ROOT / ".env.example").read_text()
    assert "# RECSYS_SPARK_MASTER=spark://spark-master:7077" in example
    # the worker image carries the Java runtime Spark's driver needs, and the scratch folder
    dockerfile = (ROOT / "infra" / "worker" / "Dockerfile").read_text()
    assert "default-jre-headless" in dockerfile and scratch in dockerfile


def test_the_event_store_is_migrated_then_given_least_privilege_roles(compose):
    services = compose["services"]
    migrate, roles = services["events-migrate"], services["events-roles"]
    assert migrate["entrypoint"] == ["recsys", "db", "upgrade"]
    assert migrate["environment"]["RECSYS_EVENTS_URL"].startswith(
        "postgresql://${EVENTS_DB_USER:-recsys_events_owner}@postgres:5432/"
    )
    # passwords travel in PGPASSWORD, never in a URL (recorded with runs, shown in `ps`)
    assert "PASSWORD" not in migrate["environment"]["RECSYS_EVENTS_URL"]
    assert "EVENTS_DB_PASSWORD" in migrate["environment"]["PGPASSWORD"]
    assert roles["depends_on"]["events-migrate"]["condition"] == "service_completed_successfully"
    assert "--file=/sql/events-roles.sql" in roles["entrypoint"]
    # no password on a command line: the roles' passwords reach psql through its environment
    assert not any("PASSWORD" in arg or "password" in arg for arg in roles["entrypoint"])
    assert "EVENTS_SERVICE_PASSWORD" in roles["environment"]["EVENTS_SERVICE_PASSWORD"]
    assert "EVENTS_COLLECT_PASSWORD" in roles["environment"]["EVENTS_COLLECT_PASSWORD"]
    assert any(
        v.endswith("infra/postgres/events-roles.sql:/sql/events-roles.sql:ro")
        for v in roles["volumes"]
    )
    for name in ("serving", "prefect-worker"):
        assert services[name]["depends_on"]["events-roles"]["condition"] == (
            "service_completed_successfully"
        ), name
    worker = services["prefect-worker"]["environment"]
    assert worker["RECSYS_EVENTS_URL"].startswith("postgresql://recsys_events_collect@")
    assert "EVENTS_COLLECT_PASSWORD" in worker["PGPASSWORD"]
    keys = services["api-keys"]
    assert keys["entrypoint"][:3] == ["recsys", "keys", "create"]
    assert keys["entrypoint"][-2:] == ["--from-env", "RECSYS_SERVE_API_KEY"]
    assert keys["depends_on"]["events-migrate"]["condition"] == "service_completed_successfully"
    assert "RECSYS_KEYS_PEPPER" in keys["environment"]["RECSYS_KEYS_PEPPER"]
    assert services["serving"]["depends_on"]["api-keys"]["condition"] == (
        "service_completed_successfully"
    )
    # the service checks keys with the same pepper; it never holds a key itself
    serving = services["serving"]["environment"]
    assert "RECSYS_KEYS_PEPPER" in serving["RECSYS_KEYS_PEPPER"]
    assert "RECSYS_SERVE_API_KEY" not in str(serving) and "--no-auth" not in str(
        services["serving"]["entrypoint"]
    )
    checked = services["config-check"]["environment"]["CHECKED_SETTINGS"].split()
    assert {"RECSYS_KEYS_PEPPER", "RECSYS_SERVE_API_KEY", "RECSYS_WORKER_API_KEY"} <= set(checked)
    # one key per client: the worker holds its own (scope admin), never the one of .env's
    # clients, registered by a job of its own before the worker starts
    own = services["api-key-worker"]
    assert own["entrypoint"][:5] == ["recsys", "keys", "create", "--name", "worker"]
    assert own["entrypoint"][5:] == ["--scopes", "admin", "--from-env", "RECSYS_WORKER_API_KEY"]
    assert keys["entrypoint"][4] != own["entrypoint"][4]
    assert services["prefect-worker"]["depends_on"]["api-key-worker"]["condition"] == (
        "service_completed_successfully"
    )
    assert "RECSYS_WORKER_API_KEY" in worker["RECSYS_SERVE_API_KEY"]
    assert "RECSYS_SERVE_API_KEY}" not in str(worker)
    holders = {
        name
        for name, svc in services.items()
        if "RECSYS_SERVE_API_KEY:?" in str(svc.get("environment", {}))
    }
    assert holders == {"config-check", "api-keys"}
    init = (ROOT / "infra" / "postgres" / "init-databases.sh").read_text()
    assert 'create "$EVENTS_DB_USER" "$EVENTS_DB_PASSWORD" "$EVENTS_DB_NAME"' in init


def test_the_service_is_reached_only_through_the_reverse_proxy(compose):
    """nginx in front of the service: the only published port; the body size, head and body
    timeouts, and per-client connection and request limits set in its configuration; the
    service's own port no longer published."""
    services = compose["services"]
    serving, proxy = services["serving"], services["proxy"]
    assert "ports" not in serving
    assert proxy["image"].startswith("nginx:")
    assert proxy["ports"] == ["${BIND_ADDRESS:-127.0.0.1}:${SERVING_PORT:-8000}:8080"]
    assert proxy["depends_on"]["serving"]["condition"] == "service_healthy"
    assert any(v == "./infra/proxy/nginx.conf:/etc/nginx/nginx.conf:ro" for v in proxy["volumes"])
    assert "/proxy-health" in str(proxy["healthcheck"]["test"])
    conf = (ROOT / "infra" / "proxy" / "nginx.conf").read_text()
    directives = dict(re.findall(r"^\s*([a-z_]+)\s+([^;{]+);", conf, re.MULTILINE))
    assert directives["proxy_pass"] == "http://recsys"
    assert "server serving:8000" in conf
    # the proxy refuses the same bodies as the service (RECSYS_SERVE_MAX_BODY_BYTES)
    limit = int(serving["environment"]["RECSYS_SERVE_MAX_BODY_BYTES"])
    size = directives["client_max_body_size"]
    assert size.endswith("m") and int(size[:-1]) * 1024 * 1024 == limit
    for timeout in ("client_header_timeout", "client_body_timeout", "proxy_read_timeout"):
        assert directives[timeout].endswith("s") and 0 < int(directives[timeout][:-1]) <= 60
    assert directives["limit_conn"].startswith("per_client ")
    assert directives["limit_req"].startswith("zone=per_client_rate ")
    assert directives["proxy_request_buffering"] == "on"
    assert directives["server_tokens"] == "off"
    # lists served survive a restart of the service: the outbox is on a volume
    assert serving["environment"]["RECSYS_SERVE_SERVED_OUTBOX"].startswith("/app/.recsys/")
    assert "serving-data:/app/.recsys" in serving["volumes"]


def test_nginx_accepts_the_proxy_configuration(tmp_path):
    """``nginx -t`` where nginx is installed (the configuration's syntax and directives)."""
    import shutil

    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx is None:
        pytest.skip("nginx is not installed here; the compose check above still runs")
    conf = (ROOT / "infra" / "proxy" / "nginx.conf").read_text()
    # the upstream host exists only inside compose
    (tmp_path / "nginx.conf").write_text(conf.replace("server serving:8000", "server 127.0.0.1:9"))
    out = subprocess.run(
        [
            nginx,
            "-t",
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-e",
            str(tmp_path / "error.log"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


def test_the_registry_is_locked_with_an_account_per_client(compose):
    import configparser

    services = compose["services"]
    mlflow = services["mlflow"]
    assert "--app-name=basic-auth" in mlflow["command"]
    env = mlflow["environment"]
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/auth/basic_auth.ini"
    assert "MLFLOW_ADMIN_PASSWORD" in env["MLFLOW_AUTH_ADMIN_PASSWORD"]
    assert "./infra/mlflow/basic_auth.ini:/auth/basic_auth.ini:ro" in mlflow["volumes"]
    ini = configparser.ConfigParser()
    ini.read(ROOT / "infra" / "mlflow" / "basic_auth.ini")
    assert ini["mlflow"]["default_permission"] == "READ"
    # the users share the tracking database (compose's default user and database names)
    assert ini["mlflow"]["database_uri"] == (
        "postgresql+psycopg2://mlflow@postgres:5432/recsys_mlflow"
    )
    assert "password" not in ini["mlflow"]["database_uri"].split("@")[0].split("//")[1]
    assert "admin_password" not in ini["mlflow"]
    # the worker edits, the service reads, the admin's password reaches only the server and the
    # one-shot job that creates the two accounts
    worker = services["prefect-worker"]["environment"]
    assert worker["MLFLOW_TRACKING_USERNAME"] == "recsys-worker"
    assert "MLFLOW_WORKER_PASSWORD" in worker["MLFLOW_TRACKING_PASSWORD"]
    users = services["mlflow-users"]
    assert users["entrypoint"][-2:] == [
        "recsys-worker=MLFLOW_WORKER_PASSWORD",
        "recsys-service=MLFLOW_SERVICE_PASSWORD",
    ]
    assert users["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert users["restart"] == "no"
    for name in ("prefect-worker", "serving"):
        assert services[name]["depends_on"]["mlflow-users"]["condition"] == (
            "service_completed_successfully"
        ), name
    holders = {
        name
        for name, svc in services.items()
        if "MLFLOW_ADMIN_PASSWORD" in str(svc.get("environment", {}))
    }
    assert holders == {"config-check", "mlflow", "mlflow-users"}
    # no job runner (six Huey consumers importing MLflow at each start); the check of a
    # signed-in caller's password is cached (a scrypt hash per request otherwise)
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert ini.getint("mlflow", "auth_cache_ttl_seconds") > 0
