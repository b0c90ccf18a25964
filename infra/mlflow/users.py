"""Create (or re-password) the MLflow accounts of the stack, as the admin: one shot, idempotent.

Run by the ``mlflow-users`` job of docker-compose.yml and by the loopback stack once the
tracking server answers. The admin signs in with MLFLOW_TRACKING_USERNAME /
MLFLOW_TRACKING_PASSWORD (the bootstrap admin of the basic-auth app); each account is
``NAME=PASSWORD_VARIABLE`` on the command line, the password read from that environment
variable (never from the command line). An existing account gets the password again, so a
rotated password in .env is applied at the next start.

The admin's own password: MLflow sets it only when it creates the admin (the server's
MLFLOW_AUTH_ADMIN_PASSWORD is ignored afterwards). To rotate it, put the new one in
MLFLOW_TRACKING_PASSWORD and the one in force in MLFLOW_ADMIN_PREVIOUS_PASSWORD: when the new
one is refused and the previous one signs in, the admin's password is changed first.

The basic-auth app's REST API is called with the standard library (``urllib``), not with
``mlflow.server.auth.client``: importing that package imports the whole auth app (its Flask
app, its store, its config), several seconds of CPU for four HTTP calls.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

MIN_PASSWORD = 12
"""MLflow's basic-auth app refuses shorter passwords."""
API = "/api/2.0/mlflow/users"


class Refused(Exception):
    """The server answered with an error (4xx/5xx other than a missing user)."""


class Down(Exception):
    """The server did not answer (not started yet, still migrating)."""


def _call(
    uri: str, user: str, password: str, method: str, path: str, body: dict | None = None
) -> tuple[int, dict]:
    url = uri.rstrip("/") + API + path
    data = None if body is None else json.dumps(body).encode()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else {}
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            payload = json.loads(raw) if raw else {}
        except ValueError:
            payload = {"message": raw[:200].decode(errors="replace")}
        return exc.code, payload
    except (urllib.error.URLError, OSError) as exc:
        raise Down(str(exc)) from None


def _check(status: int, payload: dict, what: str) -> None:
    if status >= 400:
        raise Refused(f"{what}: HTTP {status} {payload.get('error_code', '')} {payload}")


def ensure_admin(uri: str, admin: str, password: str, previous: str | None) -> str:
    """Sign the admin in; with ``previous``, rotate its password to ``password`` when only
    the previous one is accepted. Returns what was done."""
    status, payload = _call(uri, admin, password, "GET", "/current")
    if status != 401:
        _check(status, payload, f"signing in as {admin}")
        return "signed in"
    if not previous:
        raise Refused(
            f"the admin {admin!r} is refused with MLFLOW_TRACKING_PASSWORD; give the password in "
            "force in MLFLOW_ADMIN_PREVIOUS_PASSWORD to rotate it"
        )
    status, payload = _call(uri, admin, previous, "GET", "/current")
    _check(status, payload, f"signing in as {admin} with MLFLOW_ADMIN_PREVIOUS_PASSWORD")
    body = {"username": admin, "password": password, "current_password": previous}
    status, payload = _call(uri, admin, previous, "PATCH", "/update-password", body)
    _check(status, payload, f"changing the password of {admin}")
    return "password rotated"


def ensure_user(uri: str, admin: str, admin_password: str, name: str, password: str) -> str:
    """Create ``name`` or give it ``password`` again; returns what was done."""
    query = urllib.parse.urlencode({"username": name})
    status, payload = _call(uri, admin, admin_password, "GET", f"/get?{query}")
    if status == 404 or payload.get("error_code") == "RESOURCE_DOES_NOT_EXIST":
        body = {"username": name, "password": password}
        status, payload = _call(uri, admin, admin_password, "POST", "/create", body)
        if payload.get("error_code") != "RESOURCE_ALREADY_EXISTS":  # a concurrent creation
            _check(status, payload, f"creating {name}")
            return f"created {name}"
    else:
        _check(status, payload, f"reading {name}")
    body = {"username": name, "password": password}
    status, payload = _call(uri, admin, admin_password, "PATCH", "/update-password", body)
    _check(status, payload, f"setting the password of {name}")
    return f"{name} exists; password set again"


def main(argv: list[str]) -> int:
    uri = os.environ["MLFLOW_TRACKING_URI"]
    admin = os.environ.get("MLFLOW_TRACKING_USERNAME", "admin")
    admin_password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
    previous = os.environ.get("MLFLOW_ADMIN_PREVIOUS_PASSWORD") or None
    accounts = []
    for spec in argv:
        name, _, variable = spec.partition("=")
        password = os.environ.get(variable, "")
        if not name or not password:
            print(f"mlflow-users: {spec!r}: give NAME=VARIABLE with VARIABLE set", file=sys.stderr)
            return 2
        if len(password) < MIN_PASSWORD:
            print(
                f"mlflow-users: {name}: the password in {variable} is shorter than "
                f"{MIN_PASSWORD} characters (MLflow refuses it); set a longer one in .env",
                file=sys.stderr,
            )
            return 2
        accounts.append((name, password))
    steps = [lambda: ensure_admin(uri, admin, admin_password, previous)] + [
        (lambda n=n, p=p: ensure_user(uri, admin, admin_password, n, p)) for n, p in accounts
    ]
    for step in steps:
        for attempt in range(60):  # the server may still be migrating its database
            try:
                print(f"mlflow-users: {step()}", flush=True)
                break
            except Refused as exc:  # refused (bad admin password, bad value): at once
                print(f"mlflow-users: {exc}", file=sys.stderr)
                return 1
            except Down as exc:  # the server not answering yet: retried
                if attempt == 59:
                    print(f"mlflow-users: {uri} does not answer: {exc}", file=sys.stderr)
                    return 1
                time.sleep(2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
