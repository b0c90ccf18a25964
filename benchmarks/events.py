"""Event store speed: appends of 10-event batches (the load of ``POST /events``), and collection.

    python benchmarks/events.py                          # PostgreSQL at 127.0.0.1:5432 and SQLite
    python benchmarks/events.py --pg postgresql://postgres@127.0.0.1:5432 --seconds 10
    python benchmarks/events.py --http                   # POST /events on `recsys serve`, wrk

Results of a run: benchmarks/results-events.md.

Each backend gets a new database (dropped afterwards). Appends run from ``--threads`` threads
through one ``EventStore`` (validation, one committed ``INSERT ... ON CONFLICT DO NOTHING``
per batch); half the batches are sent twice, as a retrying sender would, and the table's count
must equal the events acknowledged as stored. The peer is the same insert through the bare
driver (psycopg2 / sqlite3, one transaction per batch, no validation), measured in the same run.
Collection reads every stored event back with ``load_database``.

``--http`` starts ``recsys serve`` (``--workers`` processes) on a new PostgreSQL event store and
drives ``POST /events`` with wrk (batches of 10 events, every id new); the events acknowledged
(2xx answers x 10) must all be in the table (lost = acknowledged - in table, must be 0; the
table may hold more: the batches in flight when wrk stops are stored but not counted by wrk).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402

from recsys_core.data.database import load_database  # noqa: E402
from recsys_core.events import EventStore  # noqa: E402

BATCH = 10


def _batch(prefix: str, n: int) -> list[dict]:
    return [
        {
            "event_id": f"{prefix}-{n}-{i}",
            "user_id": f"u{(n * 7 + i) % 5000}",
            "item_id": f"i{(n * 13 + i) % 3000}",
            "type": ("click", "view", "rating")[i % 3],
            "rating": 4.0 if i % 3 == 2 else None,
            "timestamp": 1_700_000_000 + n,
        }
        for i in range(BATCH)
    ]


def bench_store(url: str, seconds: float, threads: int) -> dict:
    store = EventStore(url)
    store.upgrade()
    acked, batches, lock = [0], [0], threading.Lock()
    stop = time.monotonic() + seconds

    def worker(tid: int) -> None:
        n = 0
        while time.monotonic() < stop:
            batch = _batch(f"t{tid}", n)
            sends = 2 if n % 2 else 1  # every other batch re-sent
            for _ in range(sends):
                result = store.append(batch)
                with lock:
                    acked[0] += result.stored
                    batches[0] += 1
            n += 1

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    count = store.count()
    t0 = time.monotonic()
    collected = load_database(url)
    read_s = time.monotonic() - t0
    store.close()
    return {
        "batches_s": batches[0] / elapsed,
        "acked": acked[0],
        "count": count,
        "lost": acked[0] - count,
        "read_rows": len(collected.interactions),
        "read_s": read_s,
    }


def bench_peer(connect, placeholder: str, seconds: float, threads: int) -> float:
    values = ",".join([placeholder] * 7)
    sql = (
        "INSERT INTO events (event_id, user_id, item_id, rating, type, timestamp, "
        f"received_at) VALUES ({values}) ON CONFLICT DO NOTHING"
    )
    done, lock = [0], threading.Lock()
    stop = time.monotonic() + seconds

    def worker(tid: int) -> None:
        conn = connect()
        n = 0
        while time.monotonic() < stop:
            rows = [
                (
                    e["event_id"],
                    e["user_id"],
                    e["item_id"],
                    e["rating"],
                    e["type"],
                    e["timestamp"],
                    e["timestamp"],
                )
                for e in _batch(f"p{tid}", n)
            ]
            cur = conn.cursor()
            cur.executemany(sql, rows)
            conn.commit()
            n += 1
            with lock:
                done[0] += 1
        conn.close()

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return done[0] / (time.monotonic() - started)


_WRK_SCRIPT = """
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
local n = 0
function request()
  n = n + 1
  local parts = {}
  for i = 0, 9 do
    parts[#parts + 1] = string.format(
      '{"event_id":"w%d-%d-%d","user_id":"u%d","item_id":"i%d","type":"click"}',
      tid, n, i, (n * 7 + i) % 5000, (n * 13 + i) % 3000)
  end
  return wrk.format("POST", "/events", {["Content-Type"] = "application/json"},
                    "[" .. table.concat(parts, ",") .. "]")
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) spent so far by a process and its children (the workers)."""
    import psutil

    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    total = 0.0
    for proc in procs:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def bench_http(url: str, seconds: float, connections: int, workers: int) -> dict:
    store = EventStore(url)
    store.upgrade()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            RECSYS_SERVE_EVENTS_URL=url,
            RECSYS_SERVE_STARTUP_WAIT_S="0",
            RECSYS_SERVE_REGISTERED_MODEL="bench-events",
        )
        recsys = Path(sys.executable).with_name("recsys")
        server = subprocess.Popen(
            [str(recsys), "serve", "--port", str(port), "--workers", str(workers)],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("recsys serve did not start") from None
                    time.sleep(0.2)
            script = Path(tmp) / "events.lua"
            script.write_text(_WRK_SCRIPT)
            cpu_before = _tree_cpu(server.pid)
            out = subprocess.run(
                [
                    "wrk",
                    "-t",
                    "2",
                    "-c",
                    str(connections),
                    "-d",
                    f"{seconds:.0f}s",
                    "--latency",
                    "-s",
                    str(script),
                    f"http://127.0.0.1:{port}",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            server_cpu = _tree_cpu(server.pid) - cpu_before
        finally:
            server.terminate()
            _, log = server.communicate(timeout=30)
    if os.environ.get("RECSYS_BENCH_VERBOSE"):
        at = log.find("Traceback")
        print(out, log[at : at + 6000] if at >= 0 else "", file=sys.stderr)
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    ok = requests - (int(bad.group(1)) if bad else 0)
    count = store.count()
    store.close()
    p99 = re.search(r"99%\s+(\S+)", out)
    return {
        "batches_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "cpu_ms": 1e3 * server_cpu / max(requests, 1),
        "acked": ok * BATCH,
        "count": count,
        "lost": max(0, ok * BATCH - count),
        "non2xx": requests - ok,
        "socket_errors": errors,
        "p99": p99.group(1) if p99 else "?",
    }


def _http_main(args) -> None:
    name = f"recsys_bench_events_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(f"{args.pg}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        r = bench_http(f"{args.pg}/{name}", args.seconds, args.connections, args.workers)
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    print(
        f"| POST /events ({BATCH} events/batch, {args.workers} workers, {args.connections} "
        "connections) batches/s | server CPU ms/batch | p99 | acknowledged | in table | lost | "
        "non-2xx | socket errors |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| {r['batches_s']:.0f} | {r['cpu_ms']:.2f} | {r['p99']} | {r['acked']} | "
        f"{r['count']} | {r['lost']} | {r['non2xx']} | {r['socket_errors']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--http", action="store_true", help="POST /events on `recsys serve` with wrk instead"
    )
    parser.add_argument("--workers", type=int, default=2, help="--http: server processes")
    parser.add_argument("--connections", type=int, default=16, help="--http: wrk connections")
    args = parser.parse_args()
    if args.http:
        _http_main(args)
        return
    rows = []
    name = f"recsys_bench_events_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(f"{args.pg}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"{args.pg}/{name}"
        r = bench_store(url, args.seconds, args.threads)
        peer = bench_peer(lambda: psycopg2.connect(url), "%s", args.seconds, args.threads)
        rows.append(("postgresql", r, peer))
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.db"
        r = bench_store(f"sqlite:///{path}", args.seconds, args.threads)
        peer = bench_peer(
            lambda: sqlite3.connect(path, timeout=30), "?", args.seconds, args.threads
        )
        rows.append(("sqlite", r, peer))
    print(
        f"| backend | EventStore.append batches/s ({BATCH} events, {args.threads} threads) | "
        "bare driver batches/s | ours/peer | acknowledged | in table | lost | "
        "collect rows/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for backend, r, peer in rows:
        print(
            f"| {backend} | {r['batches_s']:.0f} | {peer:.0f} | {r['batches_s'] / peer:.2f} | "
            f"{r['acked']} | {r['count']} | {r['lost']} | "
            f"{r['read_rows'] / max(r['read_s'], 1e-9):.0f} |"
        )


if __name__ == "__main__":
    main()
