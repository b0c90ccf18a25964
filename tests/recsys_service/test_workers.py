"""``recsys serve --workers 2`` as a real uvicorn subprocess: the workers start together on a
registry database and an event store that do not exist yet, one scrape of ``/metrics`` adds up
what every worker counted (prometheus_client's multiprocess mode), and each worker accepts on
its own socket."""

import os
import re
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import mlflow
import pytest

from recsys_core.events.store import EventStore
from recsys_core.tracking import mlflow_run


def _samples(text: str, name: str) -> dict[str, float]:
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(rf"^{name}\{{(.*?)\}} (\S+)$", text, re.M)
    }


@pytest.mark.slow
def test_two_workers_on_a_fresh_store_count_every_request_in_one_scrape(
    tmp_path, monkeypatch, data, fit, publish, free_port, server_process, key_headers
):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    folder = tmp_path / "service"
    folder.mkdir()  # no .recsys/mlflow.db: the start creates the registry database
    # no events.db either: the start creates the embedded event store's tables, once
    port = free_port()
    env = {
        "RECSYS_SERVE_REGISTERED_MODEL": "svc-workers",
        "RECSYS_SERVE_POLL_INTERVAL_S": "0.5",
        "RECSYS_SERVE_EVENTS_URL": f"sqlite:///{tmp_path / 'events.db'}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "RECSYS_SERVE_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    args = [sys.executable, "-m", "recsys_cli.main", "serve", "--port", port, "--workers", 2]
    # two workers importing the service at once on a busy machine: minutes, not seconds
    with server_process(args, port=port, cwd=folder, env=env, timeout=300) as server:
        # both workers looked at the new, empty registry: not ready, for the right reason
        ready = httpx.get(f"{server.url}/ready").json()
        assert "has no version with alias 'champion-ranking'" in ready["reasons"]["ranking"], ready
        monkeypatch.chdir(folder)
        mlflow_run.configure()
        try:
            ref = publish(fit("ease", data, reg=20.0), folder, "svc-workers")
        finally:
            mlflow.set_tracking_uri(None)

        key = key_headers(env["RECSYS_SERVE_EVENTS_URL"])  # made while the workers run

        def versions() -> dict[str, float]:  # ranking role, one series per live worker
            text = httpx.get(f"{server.url}/metrics", headers=key).text
            return {
                k: v
                for k, v in _samples(text, "recsys_model_version").items()
                if 'role="ranking"' in k
            }

        deadline = time.monotonic() + 60
        # one series per live worker: both loaded the version
        while len([v for v in versions().values() if v == float(ref.version)]) < 2:
            assert time.monotonic() < deadline, versions()
            time.sleep(0.2)
        users = list(data.users.ids[:10])
        n = 60
        for i in range(n):  # a new connection each: the kernel hands them to either worker
            r = httpx.get(
                f"{server.url}/recommendations/{users[i % len(users)]}",
                params={"k": 3},
                headers=key,
            )
            assert r.status_code == 200, r.text
            assert r.json()["model"]["version"] == ref.version
        text = httpx.get(f"{server.url}/metrics", headers=key).text
        counted = _samples(text, "recsys_requests_total")
        assert counted['method="GET",route="/recommendations/{user_id}",status="200"'] == n
        latency = _samples(text, "recsys_request_duration_seconds_count")
        assert latency['method="GET",route="/recommendations/{user_id}"'] == n
        pids = {re.search(r'pid="(\d+)"', k).group(1) for k in versions()}
        assert len(pids) == 2
    assert server.returncode == 0, server.output()[-3000:]
    events = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    try:  # every list served was recorded (the workers flush their queue as they stop)
        assert events.click_through("svc-workers")[0]["served"] == n
    finally:
        events.close()
    log = server.output()
    # without the database created once before the workers: "duplicate column name",
    # "table _alembic_tmp_... already exists" or a failed online migration in one of them
    assert "Traceback" not in log and "not recorded" not in log, log[-3000:]
    # the workers that ended took their live gauges with them; the counters stay
    left = sorted(p.name for p in metrics_dir.iterdir())
    assert not [name for name in left if name.startswith("gauge_live")], left
    assert [name for name in left if name.startswith("counter_")], left


def _listening_sockets(port: int) -> int:
    """Listening TCP sockets on ``port`` (``/proc/net/tcp``: state 0A is LISTEN)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                local, state = line.split()[1], line.split()[3]
                count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def _worker_pids(log: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", log)]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT balances on Linux")
def test_each_worker_has_its_own_socket_and_a_killed_worker_loses_no_connection(
    tmp_path, monkeypatch, free_port, server_process
):
    port = free_port()
    env = {
        "RECSYS_SERVE_REGISTERED_MODEL": "svc-sockets",
        "RECSYS_SERVE_STARTUP_WAIT_S": "0",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
    }
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "RECSYS_SERVE_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    args = [sys.executable, "-m", "recsys_cli.main", "serve", "--port", port, "--workers", 2]
    with server_process(args, port=port, cwd=tmp_path, env=env, timeout=300) as server:
        # one listening socket per worker: the kernel spreads the connections, no worker
        # takes every waiting connection because it woke first
        assert _listening_sockets(port) == 2
        deadline = time.monotonic() + 120
        while len(_worker_pids(server.output())) < 2:
            assert time.monotonic() < deadline, server.output()[-3000:]
            time.sleep(0.2)
        victim = _worker_pids(server.output())[0]
        os.kill(victim, signal.SIGKILL)

        def fresh_connection(_):  # the connections hashed to the dead worker's socket wait in
            return httpx.get(f"{server.url}/health", timeout=120).status_code  # its backlog

        with ThreadPoolExecutor(8) as pool:
            answered = list(pool.map(fresh_connection, range(32)))
        assert answered == [200] * 32
        while len(_worker_pids(server.output())) < 3:  # the replacement, on the same socket
            assert time.monotonic() < deadline, server.output()[-3000:]
            time.sleep(0.2)
        assert f"Child process [{victim}] died" in server.output()
        assert _listening_sockets(port) == 2
    assert server.returncode == 0, server.output()[-3000:]
