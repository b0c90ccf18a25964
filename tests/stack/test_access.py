"""The loopback stack's Prefect server asks what compose's asks: its auth string on every call but
the health probe, a CSRF token on state-changing calls, cross-origin calls from its own origin
only; `recsys doctor` names the missing auth string."""

import base64
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.stack

BIN = Path(sys.executable).parent


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
