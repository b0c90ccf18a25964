"""docker-compose.yml against the Compose specification, and the stack's house rules."""

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
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_service_is_healthchecked_or_waits_for_a_healthy_or_completed_one(compose):
    for name, service in compose["services"].items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for dep, spec in depends.items():
            assert spec.get("condition") in ("service_healthy", "service_completed_successfully"), (
                f"{name} -> {dep}")
            target = compose["services"][dep]
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {dep}, which has no healthcheck"
        assert "healthcheck" in service or depends, f"{name}: no healthcheck, no dependency"


def test_one_shot_bucket_job_gates_the_tracking_server(compose):
    services = compose["services"]
    assert services["minio-init"]["restart"] == "no"
    assert services["mlflow"]["depends_on"]["minio-init"]["condition"] == (
        "service_completed_successfully")
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    init = (ROOT / "infra" / "minio" / "init.sh").read_text()
    assert init.count("mc mb --ignore-existing") == 2
    assert "mc admin user add" in init and "mc admin policy attach" in init


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
    # the apps use the MinIO app user, never the root credentials
    assert "MINIO_ROOT" not in str(env)
    assert "MINIO_ROOT" not in str(compose["services"]["prefect-worker"]["environment"])


def test_server_runs_the_clients_mlflow_version(compose):
    from importlib.metadata import version

    default = re.search(r"MLFLOW_VERSION:-([\d.]+)", str(compose["services"]["mlflow"]["build"]))
    assert default and default.group(1) == version("mlflow")
    assert f"MLFLOW_VERSION={version('mlflow')}" in (ROOT / ".env.example").read_text()


def test_env_example_names_every_required_setting_with_placeholders_only(compose):
    example = (ROOT / ".env.example").read_text()
    settings = dict(line.split("=", 1) for line in example.splitlines()
                    if line and not line.startswith("#"))
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert required and required <= set(settings), required - set(settings)
    for key, value in settings.items():
        if "PASSWORD" in key or "SECRET" in key:
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
