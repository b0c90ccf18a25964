"""The README's MLflow UI command comes up: started exactly as written (on a free port, in a
folder with the embedded store), it answers HTTP 200 within a bounded time."""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
STARTUP_S = 120


def readme_ui_command() -> str:
    """The MLflow UI command of the Quick start (one indented line), without its comment."""
    lines = [
        ln.strip()
        for ln in README.read_text().splitlines()
        if ln.startswith("    ") and "mlflow server" in ln and "sqlite:///.recsys/mlflow.db" in ln
    ]
    assert len(lines) == 1, lines
    return lines[0].split("#", 1)[0].strip()


def test_the_readme_command_runs_one_worker_without_the_job_runner_on_loopback():
    words = shlex.split(readme_ui_command())
    assert "MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false" in words
    assert words[words.index("--workers") + 1] == "1"
    assert words[words.index("--host") + 1] == "127.0.0.1"


@pytest.mark.slow
def test_the_readme_mlflow_ui_command_answers(tmp_path, empty_store_db):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = readme_ui_command()
    command = command.replace(".venv/bin/", str(Path(sys.executable).parent) + "/")
    command, n = re.subn(r"--port \d+", f"--port {port}", command)
    assert n == 1, command
    (tmp_path / ".recsys").mkdir()
    shutil.copy(empty_store_db, tmp_path / ".recsys" / "mlflow.db")
    log = (tmp_path / "mlflow.log").open("w")
    proc = subprocess.Popen(
        ["bash", "-c", f"exec env {command}"],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline, status = time.monotonic() + STARTUP_S, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code
            except httpx.HTTPError:
                status = None
            if status == 200:
                break
            time.sleep(0.5)
        output = (tmp_path / "mlflow.log").read_text()
        assert status == 200, f"no HTTP 200 in {STARTUP_S} s (exit {proc.poll()}):\n{output}"
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        assert "died" not in output and "huey" not in output.lower(), output
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and the workers it started
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
