"""How long ``recsys evaluate`` takes to give up on an S3 endpoint that never answers.

    python benchmarks/silent_s3.py            # the RECSYS_S3_* settings in the environment
    RECSYS_S3_READ_TIMEOUT=2 python benchmarks/silent_s3.py

A local socket accepts connections and never replies (a hung server, or a port that is not
S3); the command is run as a user runs it, in a subprocess, and the wall time, the exit code,
the number of connections (one per attempt) and the bound computed from the settings are printed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from recsys_core.data.files import s3_settings

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(sock.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }
    recsys = Path(sys.executable).with_name("recsys")
    started = time.perf_counter()
    proc = subprocess.run(
        [
            str(recsys),
            "evaluate",
            "--train",
            "s3://data/train.csv",
            "--test",
            "s3://data/test.csv",
            "--model",
            "bias",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    settings = s3_settings()
    print(
        f"exit code {proc.returncode} after {seconds:.1f} s (process start included), "
        f"{len(held)} connection(s); bound from the settings: "
        f"{settings.worst_case_seconds():.0f} s per request "
        f"({settings.max_attempts} attempts, {settings.connect_timeout:g} s connect, "
        f"{settings.read_timeout:g} s read)"
    )
    print(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "(no error line)")
    sock.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
