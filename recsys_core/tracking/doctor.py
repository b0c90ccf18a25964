"""Checks of the configuration and of the servers it names (``recsys doctor``).

Each check returns a :class:`Check`: what was checked, whether it is fine, what was seen and, when
it is not fine, how to fix it. Checks never raise and never print; the CLI draws the table.

A fresh install is not a problem: a registry with no promoted model, and a service waiting for
one, are reported as a *state* (``ok`` and ``state``) whose ``fix`` is the next step
(``recsys train``). A server down, a bucket missing or a champion whose artifacts are gone
still fail.

The checks follow the order a setup breaks in: tracking URI -> tracking server reachable ->
client and server versions -> artifact mode proxied (a new run's artifact URI starts with
``mlflow-artifacts:``) and writable through the server -> S3 endpoint and buckets (the data
collector reads ``s3://`` directly) -> registry versions whose artifacts are missing (every
aliased version: champion, challenger and role aliases) -> Prefect API -> the recommendation
service when ``RECSYS_SERVE_URL`` is set (``/ready``). The Prefect API is checked over plain HTTP
(``$PREFECT_API_URL/health``) so that the library never imports Prefect.
"""

from __future__ import annotations

import base64
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from recsys_core.tracking.mlflow_run import EMBEDDED_DIR

log = logging.getLogger(__name__)

DOCTOR_EXPERIMENT = "recsys-doctor"
TIMEOUT = 5.0
EMBEDDED_DB = f"{EMBEDDED_DIR}/mlflow.db"


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    skipped: bool = False
    #: fine, but a state to act on next (a fresh install): ``fix`` holds the next step
    state: bool = False


NO_MODEL_YET = "no model promoted yet"
FIRST_STEP = (
    "train one: `recsys train` (or run the train-daily deployment); a model that "
    "passes its gate is promoted and served"
)
# the service's reason for a role whose alias names no version (recsys_service.live_models)
_NO_VERSION_REASON = "has no version with alias"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _unset(name: str, variable: str, instead: str, to: str) -> Check:
    """The skipped check ``name`` of an unset ``variable``: what runs ``instead``, and what
    setting it is ``to`` do."""
    return Check(
        name,
        True,
        f"not set: {instead}",
        f"set {variable} (make stack-up writes it into .env) to {to}",
        skipped=True,
    )


def _is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def check_tracking_uri(env: Mapping[str, str]) -> Check:
    uri = env.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        return _unset(
            "tracking URI",
            "MLFLOW_TRACKING_URI",
            "the embedded default (.recsys/mlflow.db)",
            "use a tracking server",
        )
    if not _is_server(uri):
        return Check("tracking URI", True, f"{uri} (local store, no server)")
    return Check("tracking URI", True, uri)


def _get(name: str, base: str, path: str, fix: str, *, ok_only: bool = False) -> Any:
    """``GET base + path``: the response, or the failed check ``name`` that calls ``base``
    unreachable and says ``fix`` (``ok_only``: an error status counts as unreachable too)."""
    import httpx

    try:
        resp = httpx.get(f"{base.rstrip('/')}{path}", timeout=TIMEOUT)
        if ok_only:
            resp.raise_for_status()
    except httpx.HTTPError as exc:
        return Check(name, False, f"{base} unreachable: {exc}", fix)
    return resp


def check_tracking_server(uri: str) -> Check:

    resp = _get(
        "tracking server",
        uri,
        "/health",
        "start it (make stack-up, or docker compose up -d mlflow) or correct MLFLOW_TRACKING_URI",
    )
    if isinstance(resp, Check):
        return resp
    if resp.status_code == 403 and "host" in resp.text.lower():
        return Check(
            "tracking server",
            False,
            f"{uri} refuses the Host header: {resp.text[:120]}",
            "add this host:port to the server's --allowed-hosts "
            "(MLFLOW_EXTRA_ALLOWED_HOSTS in compose)",
        )
    if resp.status_code == 401:
        return Check(
            "tracking server",
            False,
            f"{uri} asks for credentials (basic auth)",
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD",
        )
    if resp.status_code != 200:
        return Check(
            "tracking server",
            False,
            f"{uri}/health answered {resp.status_code}",
            "see the tracking server's log",
        )
    return Check("tracking server", True, f"{uri} answers /health")


def check_versions(uri: str, env: Mapping[str, str] | None = None) -> Check:
    """The server must run the client's MLflow version (same schema, same REST API). A locked
    registry (basic auth) is asked with the client's account (``MLFLOW_TRACKING_USERNAME`` /
    ``MLFLOW_TRACKING_PASSWORD``), as MLflow's own client does."""
    import httpx

    env = env or {}
    user, password = env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD")
    auth = (user, password) if user and password else None
    client_version = _version("mlflow") or "unknown"
    try:
        resp = httpx.get(f"{uri.rstrip('/')}/version", timeout=TIMEOUT, auth=auth)
        resp.raise_for_status()
        server_version = resp.text.strip()
    except httpx.HTTPError as exc:
        return Check(
            "MLflow versions",
            False,
            f"cannot read {uri}/version: {exc}",
            "check the tracking server",
        )
    if server_version != client_version:
        return Check(
            "MLflow versions",
            False,
            f"server {server_version!r} != client {client_version!r}",
            "run the same MLflow version on both sides (MLFLOW_VERSION in .env and "
            "pyproject.toml), then `mlflow db upgrade` after a backup",
        )
    return Check("MLflow versions", True, f"server and client {client_version}")


def check_artifacts(uri: str, experiment: str = DOCTOR_EXPERIMENT) -> Check:
    """A throwaway run in ``experiment``: artifact URI proxied, one small artifact written."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run_id = None
    try:
        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else client.create_experiment(experiment)
        run = client.create_run(
            exp_id, run_name=f"doctor-{uuid.uuid4().hex[:6]}", tags={"recsys.doctor": "true"}
        )
        run_id = run.info.run_id
        artifact_uri = run.info.artifact_uri
        if not artifact_uri.startswith("mlflow-artifacts:"):
            return Check(
                "artifact store",
                False,
                f"experiment {experiment!r} stores artifacts at {artifact_uri} (direct, "
                "not proxied): clients would need S3 credentials",
                "run the server with --artifacts-destination s3://bucket/prefix (no "
                "--default-artifact-root) and create a new experiment: experiments keep the "
                "artifact location they were created with",
            )
        client.log_text(run_id, "recsys doctor", "doctor/probe.txt")
        listed = [a.path for a in client.list_artifacts(run_id, "doctor")]
        if "doctor/probe.txt" not in listed:
            return Check(
                "artifact store",
                False,
                "probe artifact not listed after upload",
                "see the tracking server's log (its S3 settings)",
            )
        return Check(
            "artifact store",
            True,
            f"proxied ({artifact_uri.split('/')[0]}//...), upload through the server works",
        )
    except Exception as exc:
        return Check(
            "artifact store",
            False,
            f"{type(exc).__name__}: {str(exc)[:300]}",
            "the tracking server cannot write to its artifact destination: check "
            "MLFLOW_S3_ENDPOINT_URL, the bucket and the keys on the server",
        )
    finally:
        if run_id:
            try:
                client.delete_run(run_id)
            except Exception:
                log.debug("could not delete doctor run %s", run_id)


def check_buckets(env: Mapping[str, str]) -> list[Check]:
    """The S3 endpoint the collector uses, and each named bucket: exists and writable."""
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    names = [n for n in (env.get("S3_BUCKET_DATA"),) if n]
    if not endpoint and not names:
        return [
            Check("S3 data bucket", True, "not configured (s3:// sources unused)", skipped=True)
        ]
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    if not env.get("AWS_ACCESS_KEY_ID") or not env.get("AWS_SECRET_ACCESS_KEY"):
        return [
            Check(
                "S3 credentials",
                False,
                f"endpoint {endpoint} but no keys",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the app user's, never "
                "the MinIO root's)",
            )
        ]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=TIMEOUT, read_timeout=TIMEOUT),
    )
    checks = []
    for name in names or ["recsys-data"]:
        key = f".recsys-doctor/{uuid.uuid4().hex}"
        try:
            s3.put_object(Bucket=name, Key=key, Body=b"recsys doctor")
            s3.delete_object(Bucket=name, Key=key)
            checks.append(Check(f"S3 bucket {name}", True, f"exists and writable at {endpoint}"))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            fix = (
                "create it (the minio-init job, or make stack-up)"
                if code == "NoSuchBucket"
                else "give the app user read/write on this bucket"
            )
            checks.append(Check(f"S3 bucket {name}", False, f"{code} at {endpoint}", fix))
        except BotoCoreError as exc:
            checks.append(
                Check(
                    f"S3 bucket {name}",
                    False,
                    f"S3 at {endpoint} unreachable: {exc}",
                    "start the S3 server (MinIO) or correct AWS_ENDPOINT_URL",
                )
            )
    return checks


def check_registry_artifacts(uri: str, max_models: int = 100) -> list[Check]:
    """Every aliased version of every registered model: is its ``model_state/`` there?

    A version whose artifacts are gone (an artifact store reset while the registry lived on)
    cannot be loaded; as champion it makes every run judge against the baseline only.
    """
    from mlflow import MlflowClient

    from recsys_core.tracking.model_store import STATE_PATH
    from recsys_core.tracking.promotion_lock import is_lock
    from recsys_core.tracking.registry import ROLE_ALIASES

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        models = [
            m
            for m in client.search_registered_models(max_results=max_models)
            if not is_lock(m.name)
        ]
    except Exception as exc:
        return [
            Check(
                "registry artifacts",
                False,
                f"cannot list registered models: {type(exc).__name__}: {str(exc)[:200]}",
                "check the tracking server (MLFLOW_TRACKING_URI)",
            )
        ]
    checks, seen = [], 0
    for model in models:
        by_version: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            by_version.setdefault(str(version), []).append(alias)
        checks.append(_roles_check(model.name, dict(model.aliases or {})))
        for version, aliases in sorted(by_version.items(), key=lambda kv: int(kv[0])):
            seen += 1
            label = f"{model.name} v{version} ({', '.join(sorted(aliases))})"
            try:
                run_id = client.get_model_version(model.name, version).run_id
                listed = (
                    {a.path for a in client.list_artifacts(run_id, STATE_PATH)} if run_id else set()
                )
            except Exception as exc:
                checks.append(
                    Check(
                        f"artifacts of {label}",
                        False,
                        f"cannot be listed: {type(exc).__name__}: {str(exc)[:200]}",
                        "check the artifact store behind the tracking server",
                    )
                )
                continue
            if f"{STATE_PATH}/state.npz" not in listed:
                checks.append(
                    Check(
                        f"artifacts of {label}",
                        False,
                        f"model_state/ of run {run_id} is missing: the version cannot be loaded",
                        "the artifact store lost it: train again "
                        "(a run judges against the baseline while the champion is unavailable), "
                        "or roll back to a version that loads",
                    )
                )
    if all(c.ok for c in checks):
        checks.append(
            Check(
                "registry artifacts",
                True,
                f"{seen} aliased version(s) in {len(models)} registered model(s), "
                "all with their model_state/",
            )
        )
        promoted = any(
            alias in ROLE_ALIASES.values() for m in models for alias in (m.aliases or {})
        )
        if not promoted:  # a fresh install, or only challengers its gates refused
            names = ", ".join(m.name for m in models) or "none"
            checks.append(
                Check(
                    "registry",
                    True,
                    f"{NO_MODEL_YET} (registered models: {names})",
                    FIRST_STEP,
                    state=True,
                )
            )
    return checks


def _roles_check(name: str, aliases: dict[str, str]) -> Check:
    """Which version serves each role; the single ``champion`` alias of older recsys versions
    is served by nothing and is reported with the way forward."""
    from recsys_core.tracking.registry import ROLE_ALIASES

    held = ", ".join(
        f"{role}: v{aliases[a]}" if a in aliases else f"{role}: none"
        for role, a in ROLE_ALIASES.items()
    )
    if "champion" in aliases:
        version = aliases["champion"]
        return Check(
            f"serving roles of {name}",
            False,
            f"{held}; the alias 'champion' (v{version}) is no longer served",
            f"give each role its alias: train again (recsys train), or set "
            f"champion-ranking and/or champion-rating to version {version} in the "
            "registry, then delete 'champion'",
        )
    return Check(f"serving roles of {name}", True, held)


def check_prefect(env: Mapping[str, str]) -> Check:
    import httpx

    api = env.get("PREFECT_API_URL", "")
    if not api:
        return _unset(
            "Prefect API",
            "PREFECT_API_URL",
            "flows start a temporary local server",
            "run deployments and schedules",
        )
    # a server with an auth string (compose, the loopback stack) answers 401 without it
    auth = env.get("PREFECT_API_AUTH_STRING")
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    health = _get(
        "Prefect API",
        api,
        "/health",
        "start the Prefect server (make stack-up, or docker compose up -d prefect-server) or "
        "correct PREFECT_API_URL",
        ok_only=True,
    )
    if isinstance(health, Check):
        return health
    detail = f"{api} healthy"
    try:
        version = httpx.get(f"{api.rstrip('/')}/admin/version", headers=headers, timeout=TIMEOUT)
        if version.status_code == 401:
            return Check(
                "Prefect API",
                False,
                f"{detail}; asks for credentials",
                "set PREFECT_API_AUTH_STRING to the server's auth string "
                "(PREFECT_AUTH_STRING of .env; make stack-up writes it)",
            )
        version.raise_for_status()
        server = version.json()
        client_version = _version("prefect")
        if client_version and str(server) != client_version:
            return Check(
                "Prefect API",
                False,
                f"{detail}; server {server!r} != client {client_version!r}",
                "run the same Prefect version in the server, the worker and here",
            )
        detail += f", version {server}"
    except (httpx.HTTPError, ValueError):
        pass
    return Check("Prefect API", True, detail)


def check_service(env: Mapping[str, str]) -> Check | None:
    """The recommendation service at ``RECSYS_SERVE_URL`` (None when unset): ready means every
    role (ranking, rating) has a model loaded; a 503 carries the service's own reasons."""

    url = env.get("RECSYS_SERVE_URL", "").rstrip("/")
    if not url:
        return None
    resp = _get(
        "recommendation service",
        url,
        "/ready",
        "start it (make stack-up, or docker compose up -d serving) or correct RECSYS_SERVE_URL",
    )
    if isinstance(resp, Check):
        return resp
    if resp.status_code == 200:
        return Check("recommendation service", True, f"{url} ready")
    try:
        reasons = resp.json().get("reasons") or {}
    except ValueError:
        reasons = {}
    if resp.status_code == 503 and reasons:
        seen = "; ".join(f"{role}: {why}" for role, why in reasons.items())
        if all(_NO_VERSION_REASON in str(why) for why in reasons.values()):
            # a fresh stack: the service waits for its first model, nothing is broken
            return Check(
                "recommendation service",
                True,
                f"{url} up, {NO_MODEL_YET}: {seen}",
                FIRST_STEP,
                state=True,
            )
        return Check(
            "recommendation service",
            False,
            f"{url} not ready: {seen}",
            "promote a model to the alias it serves (recsys train, or roll back to a "
            "version whose artifacts exist); the service picks it up at its next poll",
        )
    return Check(
        "recommendation service",
        False,
        f"{url}/ready answered HTTP {resp.status_code}",
        "check that RECSYS_SERVE_URL points at recsys serve (and see its log)",
    )


def run_checks(env: Mapping[str, str] | None = None) -> list[Check]:
    """Every check, in order; server checks are skipped when their server is unreachable."""
    env = dict(os.environ if env is None else env)
    checks = [check_tracking_uri(env)]
    uri = env.get("MLFLOW_TRACKING_URI", "")
    if _is_server(uri):
        server = check_tracking_server(uri)
        checks.append(server)
        if server.ok:
            checks += [check_versions(uri, env), check_artifacts(uri)]
            checks += check_registry_artifacts(uri)
    elif not uri and (Path.cwd() / EMBEDDED_DB).exists():
        # the embedded store of this folder (never created by the doctor)
        checks += check_registry_artifacts(f"sqlite:///{(Path.cwd() / EMBEDDED_DB).resolve()}")
    checks += check_buckets(env)
    checks.append(check_prefect(env))
    service = check_service(env)
    if service is not None:
        checks.append(service)
    return checks
