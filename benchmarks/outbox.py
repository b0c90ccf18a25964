"""The cost per served list of the outbox's durability (``served_outbox_fsync_s``).

    python benchmarks/outbox.py [--lists 5000] [--folder .recsys/bench-outbox]

Each list is journaled as the route does (one JSON line appended to the segment file, under
the recorder's lock), with no outbox write at all as the peer, then without sync (the kernel
keeps the line when the process dies, not when the machine does), with an ``fdatasync`` at most
every second (the default) and after every list. The folder should be on the disk the service
uses (the default is inside the checkout; /tmp is often memory, where a sync costs nothing).
Prints microseconds per list and the ratio to the write without sync.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter

from recsys_core.events import EventStore
from recsys_service.feedback import ServedList, ServedRecorder


def _per_list(folder: Path, lists: int, fsync_s: float | None, outbox: bool) -> float:
    store = EventStore(f"sqlite:///{folder / 'events.db'}")
    counter = Counter("bench_served", "lists", ["outcome"], registry=CollectorRegistry())
    rec = ServedRecorder(
        store, counter, lists + 1, outbox=folder / "outbox" if outbox else None, fsync_s=fsync_s
    )
    served = [
        ServedList(f"r{i}", f"u{i}", tuple(f"i{j}" for j in range(10)), "recsys", "1", "c", "k")
        for i in range(lists)
    ]
    started = time.perf_counter()
    with rec._lock:
        for s in served:
            if outbox:
                rec._journal(s)
            else:
                s.line()  # the peer: the serialization alone
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed / lists * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, default=5000)
    parser.add_argument("--folder", type=Path, default=Path(".recsys") / "bench-outbox")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, fsync_s, outbox in (
        ("serialization only (no outbox)", None, False),
        ("outbox, no sync", None, True),
        ("outbox, fdatasync every 1 s (default)", 1.0, True),
        ("outbox, fdatasync every list", 0.0, True),
    ):
        work = Path(tempfile.mkdtemp(dir=args.folder))
        try:
            rows.append((name, _per_list(work, args.lists, fsync_s, outbox)))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    base = rows[1][1]
    print(f"{args.lists} lists, folder {args.folder.resolve()}")
    print("| journaling | µs per list | vs no sync |")
    print("|---|---:|---:|")
    for name, us in rows:
        print(f"| {name} | {us:.1f} | {us / base:.2f}x |")


if __name__ == "__main__":
    main()
