"""Limits at the edge (recsys_service/limits.py) on a real uvicorn server over loopback: what a
caller may send, how fast, and that a slow sender does not hold a connection."""

import socket
import threading
import time

import httpx
import pytest
import uvicorn

from recsys_core.events.store import EventStore
from recsys_service.app import create_app
from recsys_service.limits import json_problem, uvicorn_options
from recsys_service.settings import ServiceSettings


@pytest.fixture(scope="module")
def ranking(store, data, fit, publish):
    return publish(fit("ease", data, reg=50.0), store, "svc-limits")


@pytest.fixture
def event_store(tmp_path):
    es = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    es.upgrade()
    yield es
    es.close()


class Server:
    """The app under uvicorn with the service's own connection limits (as ``recsys serve``)."""

    def __init__(self, app, settings: ServiceSettings, port: int) -> None:
        self.port = port
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            **uvicorn_options(settings),
        )
        config.header_timeout_s = settings.header_timeout_s
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def served(ranking, event_store, free_port):
    settings = ServiceSettings(
        registered_model="svc-limits",
        max_body_bytes=64 * 1024,
        body_timeout_s=1.5,
        header_timeout_s=1.5,
        keep_alive_s=1,
    )
    app = create_app(settings, poll=False, events=event_store)
    with Server(app, settings, free_port()) as server:
        app.state.live.refresh()
        yield server, event_store


def _raw(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def _read_all(s: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """What the server sends until it closes the connection, and when it closed it."""
    start = time.monotonic()
    s.settimeout(limit_s)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except TimeoutError:
        pytest.fail(f"the server kept the connection open more than {limit_s} s; got {out!r}")
    return out, time.monotonic() - start


def test_a_body_trickled_a_byte_at_a_time_is_cut_off(served):
    server, es = served
    body = b'[{"event_id": "slow", "user_id": "u", "item_id": "i", "type": "click"}]'
    s = _raw(server.port)
    s.sendall(
        b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    start = time.monotonic()
    sent = 0
    s.settimeout(0.01)
    answer = b""
    # one byte every 0.4 s: the whole body would take 30 s; the limit is 1.5 s
    while time.monotonic() - start < 15:
        try:
            s.send(body[sent : sent + 1])
            sent += 1
        except OSError:
            break
        try:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        except TimeoutError:
            pass
        time.sleep(0.4)
    elapsed = time.monotonic() - start
    s.close()
    assert b" 408 " in answer.split(b"\r\n")[0], answer
    assert b"did not arrive within 1.5 s" in answer
    assert elapsed < 10, elapsed  # the limit is 1.5 s; the whole body would take 30 s
    assert sent < len(body)
    assert es.count() == 0


def test_headers_sent_a_byte_at_a_time_and_silent_connections_are_closed(served):
    server, _ = served
    silent = _raw(server.port)
    _, waited = _read_all(silent, limit_s=15)
    assert waited < 8, waited  # 1.5 s, and a busy machine's delay
    slow = _raw(server.port)
    head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 100
    start = time.monotonic()
    closed = False
    for byte in head:
        try:
            slow.send(bytes([byte]))
        except OSError:
            closed = True
            break
        slow.settimeout(0.3)
        try:
            if slow.recv(1024) == b"":
                closed = True
                break
        except TimeoutError:
            pass
        if time.monotonic() - start > 15:
            break
    assert closed, "the server waited more than 15 s for a request head (the limit: 1.5 s)"


def test_content_length_beyond_the_limit_is_refused_before_the_body_is_read(served):
    server, es = served
    s = _raw(server.port)
    # 300 MB announced, nothing sent: the answer comes at once
    s.sendall(
        b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 300000000\r\n\r\n"
    )
    answer, waited = _read_all(s, limit_s=5)
    assert b" 413 " in answer.split(b"\r\n")[0] and b"at most 65536 bytes" in answer
    assert waited < 2

    # without a length (chunked), the count of what arrives stops it
    def chunks():
        for _ in range(100):
            yield b"[" + b" " * 4096

    r = httpx.post(
        f"http://127.0.0.1:{server.port}/events",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413 and "more than 65536 bytes arrived" in r.json()["detail"]
    assert es.count() == 0


def test_uvicorn_options_come_from_the_settings():
    opts = uvicorn_options(
        ServiceSettings(limit_concurrency=7, keep_alive_s=3, max_header_bytes=4096)
    )
    assert (
        opts["limit_concurrency"],
        opts["timeout_keep_alive"],
        opts["h11_max_incomplete_event_size"],
    ) == (7, 3, 4096)
    assert opts["http"] == "recsys_service.limits:HeadDeadline"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"[" * 17 + b"]" * 17, (400, "nests 17 levels deep; at most 16")),
        (b"[" * 16 + b"]" * 16, None),
        (b'["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]', None),  # brackets inside a string do not nest
        (b'[{"user_id": "a\\u0000b"}]', (422, "control character U+0000")),
        (b'[{"user_id": "a\\nb"}]', (422, "control character U+000A")),
        (b'[{"user_id": "a\\\\nb"}]', None),  # an escaped backslash followed by n
        (b'[{"user_id": "a\\u00e9b \\" \\\\"}]', None),
    ],
)
def test_json_problems(body, expected):
    problem = json_problem(body, 16)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and problem[0] == expected[0] and expected[1] in problem[1]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_recsys_serve_runs_uvicorn_with_the_limits_of_the_settings(
    tmp_path, monkeypatch, free_port, server_process, workers
):
    """`recsys serve` (one worker, and two on their own sockets): a connection that sends no
    request head within RECSYS_SERVE_HEADER_TIMEOUT_S is closed; a body over
    RECSYS_SERVE_MAX_BODY_BYTES gets 413."""
    import sys

    port = free_port()
    env = {
        "RECSYS_SERVE_HEADER_TIMEOUT_S": "1",
        "RECSYS_SERVE_MAX_BODY_BYTES": "2048",
        "RECSYS_SERVE_STARTUP_WAIT_S": "0",
        "RECSYS_SERVE_REGISTERED_MODEL": "svc-limits-cli",
        "RECSYS_SERVE_EVENTS_URL": f"sqlite:///{tmp_path / 'events.db'}",
    }
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "RECSYS_SERVE_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    args = [sys.executable, "-m", "recsys_cli.main", "serve", "--port", port, "--workers", workers]
    with server_process(args, port=port, cwd=tmp_path, env=env, timeout=300) as server:
        # without the deadline uvicorn keeps a silent connection open for good; the bound is
        # loose because a second worker may still be starting when the connection reaches it
        silent = _raw(int(server.url.rsplit(":", 1)[1]))
        _, waited = _read_all(silent, limit_s=30)
        assert waited < 20, waited
        r = httpx.post(
            f"{server.url}/events",
            content=b"[" + b" " * 4000 + b"]",
            headers={"content-type": "application/json"},
            timeout=60,
        )
        assert r.status_code == 413 and "at most 2048 bytes" in r.json()["detail"]
