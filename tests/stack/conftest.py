"""One loopback stack for every stack test: started on free ports, always stopped.

The stack is named ``test`` (state in ``.stack/test``) and uses its own databases
(``recsys_test_mlflow``, ``recsys_test_prefect``), dropped and recreated at start, so a developer's
``make stack-up`` stack is never touched. MLflow clients retry a failing request once: the task
retries (with backoff) are what the fault tests exercise.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "loopback" / "stack.py"
NAME = "test"
DEPLOYMENT = "training/train-daily"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LoopbackStack:
    """The running test stack: its client settings and its service controls."""

    env: dict[str, str]
    args: list[str]
    env_file: Path | None = None

    def script(self, *argv: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(SCRIPT), *argv, *self.args],
            cwd=ROOT,
            env=self.process_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self, service: str) -> None:
        out = self.script("stop", service)
        assert out.returncode == 0, out.stderr

    def start(self, service: str) -> None:
        out = self.script("start", service)
        assert out.returncode == 0, out.stderr

    def restart(self, *, deploy: bool = False) -> None:
        """``make stack-down`` then ``make stack-up`` (``deploy``: applying ``prefect.yaml``);
        the databases and the saved S3 objects are kept, ports and keys stay the same."""
        out = self.script("down", "--env-file", str(self.env_file))
        assert out.returncode == 0, out.stdout + out.stderr
        up = ["up", "--env-file", str(self.env_file)] + ([] if deploy else ["--no-deploy"])
        out = self.script(*up, timeout=600)
        assert out.returncode == 0, out.stdout + out.stderr
        self.env = {k: v for k, v in dotenv_values(self.env_file).items() if v is not None}

    @property
    def serve_headers(self) -> dict[str, str]:
        """The API key the stack handed its clients (``RECSYS_SERVE_API_KEY`` of its .env)."""
        return {"Authorization": f"Bearer {self.env['RECSYS_SERVE_API_KEY']}"}

    def process_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
        # each MLflow request retries 3 times within ~8 s, then the task retries (2, 5, 15 s):
        # a server back within ~45 s of the first failure lets the run complete
        env.update(
            MLFLOW_HTTP_REQUEST_MAX_RETRIES="3",
            MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="1",
            MLFLOW_HTTP_REQUEST_BACKOFF_JITTER="0.5",
            MLFLOW_HTTP_REQUEST_TIMEOUT="60",
            PREFECT_WORKER_QUERY_SECONDS="2",
            PREFECT_WORKER_PREFETCH_SECONDS="5",
            PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS="5",
            # the stack's recsys serve: the model the e2e tests train, looked at each second
            RECSYS_SERVE_REGISTERED_MODEL="e2e",
            RECSYS_SERVE_POLL_INTERVAL_S="1",
        )
        return env

    def client_env(self) -> dict[str, str]:
        """The environment of a ``recsys`` / ``prefect`` command against this stack."""
        return {**self.process_env(), **self.env, "RECSYS_CODE_DIR": str(ROOT)}

    # -- Prefect: runs of the deployment, as the UI starts them ------------------------------
    @contextmanager
    def prefect_api(self):
        from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

        # the stack's Prefect server asks for its auth string (and CSRF tokens, which Prefect's
        # client fetches itself)
        with temporary_settings(
            {
                PREFECT_API_URL: self.env["PREFECT_API_URL"],
                PREFECT_API_AUTH_STRING: self.env.get("PREFECT_API_AUTH_STRING"),
            }
        ):
            yield

    def trigger(self, params: dict, env: dict[str, str] | None = None):
        """Start a run of ``train-daily`` through the API (the UI's Run button); no waiting.
        ``env``: variables of this run's process only (the process work pool's job variable)."""
        from prefect.deployments import run_deployment

        with self.prefect_api():
            return run_deployment(
                DEPLOYMENT,
                parameters={"params": params},
                job_variables={"env": env} if env else None,
                timeout=0,
            )

    def wait_final(self, flow_run_id, timeout: float = 300.0):
        from prefect.client.orchestration import get_client

        deadline = time.monotonic() + timeout
        with self.prefect_api(), get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                run = client.read_flow_run(flow_run_id)
                if run.state is not None and run.state.is_final():
                    return run
                time.sleep(1)
        raise AssertionError(f"flow run {flow_run_id} not finished after {timeout:.0f} s")

    def wait_for_retry(self, flow_run_id, timeout: float = 240.0) -> str | None:
        """Block until a task of the run waits to retry; returns that task run's name, or None
        when the run ended first."""
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        flt = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        deadline = time.monotonic() + timeout
        with self.prefect_api(), get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                for task_run in client.read_task_runs(flow_run_filter=flt):
                    if task_run.state and task_run.state.name in ("AwaitingRetry", "Retrying"):
                        return task_run.name
                run = client.read_flow_run(flow_run_id)
                if run.state is not None and run.state.is_final():
                    return None
                time.sleep(0.5)
        raise AssertionError(f"no task of flow run {flow_run_id} retried in {timeout:.0f} s")

    # -- MLflow and S3, read directly ------------------------------------------------------------
    def mlflow(self):
        from mlflow import MlflowClient

        uri = self.env["MLFLOW_TRACKING_URI"]
        return MlflowClient(tracking_uri=uri, registry_uri=uri)

    def mlflow_run_of(self, flow_run_id, experiment: str = "e2e"):
        client = self.mlflow()
        exp = client.get_experiment_by_name(experiment)
        runs = client.search_runs(
            [exp.experiment_id], f"tags.`prefect.flow_run_id` = '{flow_run_id}'"
        )
        assert len(runs) == 1, runs
        return runs[0]

    def alias(self, model: str, alias: str = "champion-rating") -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return self.mlflow().get_model_version_by_alias(model, alias).version
        except MlflowException:
            return None

    def s3(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )


# package scope: the stack stops after the last stack test, not at the end of the session (under
# pytest-xdist the worker that ran them goes on with other tests)
@pytest.fixture(scope="package")
def stack(tmp_path_factory) -> LoopbackStack:
    env_file = tmp_path_factory.mktemp("stack") / "stack.env"
    # RECSYS_TEST_DB_PREFIX lets two checkouts run their stack tests side by side
    prefix = os.environ.get("RECSYS_TEST_DB_PREFIX", "recsys_test")
    args = [
        "--name",
        NAME,
        "--db-prefix",
        prefix,
        "--s3-port",
        str(_free_port()),
        "--mlflow-port",
        str(_free_port()),
        "--prefect-port",
        str(_free_port()),
        "--serve-port",
        str(_free_port()),
    ]
    handle = LoopbackStack({}, args, env_file)
    handle.script("down")  # leftovers of an interrupted session
    started = time.monotonic()
    try:
        out = handle.script(
            "up", "--fresh", "--no-deploy", "--env-file", str(env_file), timeout=600
        )
        if out.returncode != 0:
            pytest.fail(f"loopback stack did not start:\n{out.stdout}\n{out.stderr}")
        sys.stderr.write(f"\nloopback stack up in {time.monotonic() - started:.0f} s\n")
        handle.env = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        # the registry signs its callers in: the MLflow clients of this process (stack.mlflow(),
        # flows run here) use the account the stack handed its clients
        login = {k: handle.env[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
        saved = {k: os.environ.get(k) for k in login}
        os.environ.update(login)
        try:
            yield handle
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    finally:
        handle.script("down", "--env-file", str(env_file))
