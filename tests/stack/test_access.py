"""The loopback stack's Prefect server asks what compose's asks: its auth string on every call but
the health probe, a CSRF token on state-changing calls, cross-origin calls from its own origin
only; `recsys doctor` names the missing auth string. Its MLflow server signs every caller in
(basic auth), as compose's does."""

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.stack

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def test_the_prefect_api_asks_for_the_auth_string_and_a_csrf_token(stack):
    api = stack.env["PREFECT_API_URL"]
    auth = stack.env["PREFECT_API_AUTH_STRING"]
    basic = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    assert httpx.get(f"{api}/health", timeout=10).status_code == 200  # probes need nothing
    assert httpx.get(f"{api}/admin/version", timeout=10).status_code == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"recsys:guess").decode()}
    assert httpx.get(f"{api}/admin/version", headers=wrong, timeout=10).status_code == 401
    assert httpx.get(f"{api}/admin/version", headers=basic, timeout=10).status_code == 200
    # authenticated, but no CSRF token: a state-changing call is refused
    refused = httpx.post(f"{api}/flows/filter", headers=basic, json={}, timeout=10)
    assert refused.status_code == 403 and "CSRF" in refused.text
    token = httpx.get(
        f"{api}/csrf-token", params={"client": "test-access"}, headers=basic, timeout=10
    ).json()["token"]
    csrf = {"Prefect-Csrf-Token": token, "Prefect-Csrf-Client": "test-access"}
    assert (
        httpx.post(
            f"{api}/flows/filter", headers={**basic, **csrf}, json={}, timeout=10
        ).status_code
        == 200
    )
    # CORS: the stack's own origin is allowed, another site is not
    origin = api.removesuffix("/api")
    own = httpx.options(
        f"{api}/flows/filter",
        timeout=10,
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    other = httpx.options(
        f"{api}/flows/filter",
        timeout=10,
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert own.headers.get("access-control-allow-origin") == origin
    assert "access-control-allow-origin" not in other.headers


def test_doctor_names_a_missing_auth_string(stack, tmp_path):
    env = {k: v for k, v in stack.client_env().items() if k != "PREFECT_API_AUTH_STRING"}
    out = subprocess.run(
        [str(BIN / "recsys"), "doctor", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    check = {c["name"]: c for c in json.loads(out.stdout)}["Prefect API"]
    assert not check["ok"] and "asks for credentials" in check["detail"]
    assert "PREFECT_API_AUTH_STRING" in check["fix"]


def test_the_registry_asks_who_calls_and_the_service_only_reads(stack):
    """MLflow's basic-auth app in the stack, as in compose: nobody gets in anonymously, the
    clients' (worker's) account of .env writes, the service's account reads only, and the
    accounts' passwords come from the stack's state (applied at each start)."""
    state = ROOT / ".stack" / "test"
    passwords = json.loads((state / "mlflow-users.json").read_text())
    api = stack.env["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow"
    assert httpx.get(stack.env["MLFLOW_TRACKING_URI"] + "/health", timeout=30).status_code == 200
    search = f"{api}/experiments/search?max_results=1"
    assert httpx.get(search, timeout=60).status_code == 401
    assert httpx.get(search, auth=("recsys-worker", "guess-guess-1"), timeout=60).status_code == 401
    worker = (stack.env["MLFLOW_TRACKING_USERNAME"], stack.env["MLFLOW_TRACKING_PASSWORD"])
    assert worker == ("recsys-worker", passwords["worker"])
    made = httpx.post(
        f"{api}/registered-models/create", json={"name": "access-check"}, auth=worker, timeout=60
    )
    assert made.status_code in (200, 400), made.text  # 400: made by an earlier session
    service = ("recsys-service", passwords["service"])
    got = httpx.get(
        f"{api}/registered-models/get", params={"name": "access-check"}, auth=service, timeout=60
    )
    assert got.status_code == 200, got.text
    refused = httpx.post(
        f"{api}/registered-models/set-tag",
        json={"name": "access-check", "key": "k", "value": "v"},
        auth=service,
        timeout=60,
    )
    assert refused.status_code == 403, refused.text
    # the job runner is off: no Huey consumer among the server's processes
    pid = int((state / "mlflow.pid").read_text().split()[0])
    children = subprocess.run(
        ["ps", "-o", "args=", "--ppid", str(pid), "-g", str(pid)],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert "huey" not in children and "_job_runner" not in children, children
