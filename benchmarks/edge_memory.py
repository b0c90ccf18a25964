"""Peak memory of a `recsys serve` worker sent one large ``POST /events`` body.

Starts ``recsys serve`` (one worker, an empty registry and event store in a temporary folder),
reads the worker's peak resident memory (``VmHWM``), streams one body of ``--mb`` megabytes of
JSON to ``POST /events`` over a raw socket, and reads the peak again. Run it on two checkouts
to compare them (the code imported is the one on ``PYTHONPATH`` / installed)::

    python benchmarks/edge_memory.py --mb 300
    PYTHONPATH=/path/to/other/checkout python benchmarks/edge_memory.py --mb 300
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=300, help="body size in megabytes")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="edge-memory-"))
    port = _free_port()
    env = {
        **os.environ,
        "RECSYS_SERVE_STARTUP_WAIT_S": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}",
        "RECSYS_EVENTS_URL": f"sqlite:///{folder / 'events.db'}",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from recsys_cli.main import app; sys.argv[0]='recsys'; app()",
            "serve",
            "--port",
            str(port),
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b"200" in s.recv(100):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the service did not start")
            time.sleep(0.3)
        before = _peak_kb(proc.pid)
        size = args.mb * 1_000_000
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
            s.sendall(
                b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(size).encode() + b"\r\n\r\n"
            )
            # a list of one event padded with blanks: valid JSON once whole
            event = b'{"event_id": "big", "user_id": "u", "item_id": "i", "type": "click"}'
            body_head, body_tail = b"[" + event, b"]"
            pad = size - len(body_head) - len(body_tail)
            sent_body = 0
            try:
                s.sendall(body_head)
                chunk = b" " * (1 << 20)
                while pad > 0:
                    n = min(pad, len(chunk))
                    s.sendall(chunk[:n])
                    pad -= n
                    sent_body += n
                s.sendall(body_tail)
            except OSError:
                pass  # the server answered and closed before the body was sent
            answer = s.recv(4096).split(b"\r\n")[0].decode()
        elapsed = time.monotonic() - started
        after = _peak_kb(proc.pid)
        print(
            f"body {args.mb} MB: answer {answer!r} after {elapsed:.2f} s, "
            f"{sent_body / 1e6:.0f} MB of padding sent; worker peak RSS "
            f"{before / 1024:.0f} MiB before, {after / 1024:.0f} MiB after"
        )
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
