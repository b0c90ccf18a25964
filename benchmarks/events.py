"""Event store speed: appends of 10-event batches (the load of ``POST /events``), and collection.

    python benchmarks/events.py                          # PostgreSQL at 127.0.0.1:5432 and SQLite
    python benchmarks/events.py --pg postgresql://postgres@127.0.0.1:5432 --seconds 10

Results of a run: benchmarks/results-events.md.

Each backend gets a new database (dropped afterwards). Appends run from ``--threads`` threads
through one ``EventStore`` (validation, one committed ``INSERT ... ON CONFLICT DO NOTHING``
per batch); half the batches are sent twice, as a retrying sender would, and the table's count
must equal the events acknowledged as stored. The peer is the same insert through the bare
driver (psycopg2 / sqlite3, one transaction per batch, no validation), measured in the same run.
Collection reads every stored event back with ``load_database``.
"""

from __future__ import annotations

import argparse
import sqlite3
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
    return [{"event_id": f"{prefix}-{n}-{i}", "user_id": f"u{(n * 7 + i) % 5000}",
             "item_id": f"i{(n * 13 + i) % 3000}", "type": ("click", "view", "rating")[i % 3],
             "rating": 4.0 if i % 3 == 2 else None, "timestamp": 1_700_000_000 + n}
            for i in range(BATCH)]


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
    return {"batches_s": batches[0] / elapsed, "acked": acked[0], "count": count,
            "lost": acked[0] - count, "read_rows": len(collected.interactions),
            "read_s": read_s}


def bench_peer(connect, placeholder: str, seconds: float, threads: int) -> float:
    values = ",".join([placeholder] * 7)
    sql = ("INSERT INTO events (event_id, user_id, item_id, rating, type, timestamp, "
           f"received_at) VALUES ({values}) ON CONFLICT DO NOTHING")
    done, lock = [0], threading.Lock()
    stop = time.monotonic() + seconds

    def worker(tid: int) -> None:
        conn = connect()
        n = 0
        while time.monotonic() < stop:
            rows = [(e["event_id"], e["user_id"], e["item_id"], e["rating"], e["type"],
                     e["timestamp"], e["timestamp"]) for e in _batch(f"p{tid}", n)]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
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
        peer = bench_peer(lambda: sqlite3.connect(path, timeout=30), "?", args.seconds,
                          args.threads)
        rows.append(("sqlite", r, peer))
    print(f"| backend | EventStore.append batches/s ({BATCH} events, {args.threads} threads) | "
          "bare driver batches/s | ours/peer | acknowledged | in table | lost | "
          "collect rows/s |")
    print("|---|---|---|---|---|---|---|---|")
    for backend, r, peer in rows:
        print(f"| {backend} | {r['batches_s']:.0f} | {peer:.0f} | {r['batches_s'] / peer:.2f} | "
              f"{r['acked']} | {r['count']} | {r['lost']} | "
              f"{r['read_rows'] / max(r['read_s'], 1e-9):.0f} |")


if __name__ == "__main__":
    main()
