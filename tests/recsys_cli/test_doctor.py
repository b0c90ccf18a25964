"""``recsys doctor`` exits 0 on a fresh install and says the next step; a real failure exits 1."""

import socket

import pytest
from typer.testing import CliRunner

from recsys_cli.main import app

runner = CliRunner()
_UNSET = (
    "MLFLOW_TRACKING_URI",
    "PREFECT_API_URL",
    "RECSYS_SERVE_URL",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "S3_BUCKET_DATA",
)


@pytest.fixture
def fresh(embedded_store, monkeypatch):
    """A fresh clone's folder: the embedded MLflow store, nothing trained, no servers named."""
    for var in _UNSET:
        monkeypatch.delenv(var, raising=False)
    return embedded_store


def test_a_fresh_install_exits_0_with_the_next_step(fresh):
    out = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "no model promoted yet" in out.output and "state" in out.output
    assert "next step: train one: `recsys train`" in out.output
    assert "problem" not in out.output


def test_a_tracking_server_down_exits_1(fresh, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    out = runner.invoke(app, ["doctor", "--json"])
    assert out.exit_code == 1, out.output
    assert '"name": "tracking server", "ok": false' in out.output
