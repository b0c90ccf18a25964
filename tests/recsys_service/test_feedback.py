"""The recording of served lists (recsys_service/feedback.py) on real SQLite and PostgreSQL event
stores: nothing answered is lost to a bad row, a database away for a while, a stop, or a kill."""

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg2
import pytest
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import func, select

from recsys_core.events.store import EventStore
from recsys_core.events.tables import served_recommendations
from recsys_service.feedback import ServedList, ServedRecorder, outbox_folder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url):
    es = EventStore(store_url)
    es.upgrade()
    yield es
    es.close()


def _counter():
    return Counter("served", "served lists", ["outcome"], registry=CollectorRegistry())


def _count(counter, outcome: str) -> int:
    return int(counter.labels(outcome)._value.get())


def _served(i, user="u1") -> ServedList:
    return ServedList(f"r{i}", user, ("a", "b"), "recsys", "1", "champion-ranking")


def _recorded(es: EventStore) -> set[str]:
    with es.engine.connect() as conn:
        return set(conn.execute(select(served_recommendations.c.recommendation_id)).scalars())


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("served-*.jsonl")) if folder.is_dir() else []


@pytest.mark.parametrize("outbox", [True, False], ids=["outbox", "no-outbox"])
def test_stop_writes_what_is_still_queued(store, tmp_path, outbox):
    counter = _counter()
    rec = ServedRecorder(store, counter, 5000, outbox=tmp_path / "outbox" if outbox else None)
    for i in range(1200):
        rec.submit(_served(i))
    rec.stop()  # no flush first
    assert _recorded(store) == {f"r{i}" for i in range(1200)}
    assert _count(counter, "recorded") == 1200
    assert _files(outbox_folder(tmp_path / "outbox", store.url)) == []  # all written: deleted


def test_a_full_queue_loses_nothing_that_is_in_the_outbox(store, tmp_path, monkeypatch):
    """More lists at once than the queue holds: those beyond it are written from the outbox
    file (before the outbox, they were dropped)."""
    from recsys_service import feedback

    monkeypatch.setattr(feedback, "_REPLAY_EVERY_S", 0.2)
    counter = _counter()
    rec = ServedRecorder(store, counter, 5, outbox=tmp_path / "outbox")
    for i in range(300):
        rec.submit(_served(i))
    assert _count(counter, "deferred") > 0 and _count(counter, "dropped") == 0
    deadline = time.monotonic() + 20
    while len(_recorded(store)) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    rec.stop()
    assert _recorded(store) == {f"r{i}" for i in range(300)}
    assert _files(outbox_folder(tmp_path / "outbox", store.url)) == []


def test_one_bad_list_does_not_lose_the_others(store, tmp_path, caplog):
    """A NUL in a user id: PostgreSQL cannot hold it and fails the whole batch; the lists are
    then written one by one and only the bad one is refused."""
    counter = _counter()
    rec = ServedRecorder(store, counter, 5000, outbox=tmp_path / "outbox")
    with caplog.at_level(logging.WARNING):
        for i in range(500):
            rec.submit(_served(i, user="bad\x00user" if i == 250 else f"u{i}"))
        assert rec.flush()
        rec.stop()
    assert _recorded(store) == {f"r{i}" for i in range(500)} - {"r250"}
    assert (_count(counter, "recorded"), _count(counter, "refused")) == (499, 1)
    assert "r250" in caplog.text and "control character U+0000" in caplog.text
    assert _files(outbox_folder(tmp_path / "outbox", store.url)) == []


def test_lists_served_while_the_store_is_away_are_written_when_it_is_back(pg_url, tmp_path):
    """The database refuses connections through the retries and the stop: the lists stay in the
    outbox, and the next recorder started on the same store writes them."""
    es = EventStore(pg_url)
    es.upgrade()
    name = pg_url.rsplit("/", 1)[1]
    admin = psycopg2.connect(pg_url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    counter = _counter()
    try:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        rec = ServedRecorder(es, counter, 5000, outbox=tmp_path / "outbox", backoff_s=0.01)
        for i in range(40):
            rec.submit(_served(i))
        assert rec.flush()
        rec.stop()
        assert _count(counter, "deferred") == 40 and _count(counter, "recorded") == 0
        assert len(_files(outbox_folder(tmp_path / "outbox", es.url))) == 1
    finally:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
    later = _counter()
    again = ServedRecorder(es, later, 5000, outbox=tmp_path / "outbox")
    again.start()
    deadline = time.monotonic() + 20
    while len(_recorded(es)) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    again.stop()
    assert _recorded(es) == {f"r{i}" for i in range(40)}
    assert _count(later, "recorded") == 40
    assert _files(outbox_folder(tmp_path / "outbox", es.url)) == []
    es.close()


def test_a_store_back_within_the_retries_loses_nothing(pg_url, tmp_path):
    es = EventStore(pg_url)
    es.upgrade()
    name = pg_url.rsplit("/", 1)[1]
    admin = psycopg2.connect(pg_url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    counter = _counter()
    rec = ServedRecorder(es, counter, 5000, outbox=None, retries=6, backoff_s=0.1)
    try:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        for i in range(10):
            rec.submit(_served(i))
        time.sleep(0.5)  # the first tries fail
    finally:
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
    assert rec.flush(30)
    rec.stop()
    assert _recorded(es) == {f"r{i}" for i in range(10)}
    assert (_count(counter, "recorded"), _count(counter, "dropped")) == (10, 0)
    es.close()


def test_the_outbox_is_bounded(free_port, tmp_path, caplog):
    down = EventStore(f"postgresql://recsys@127.0.0.1:{free_port()}/events")
    counter = _counter()
    rec = ServedRecorder(down, counter, 5000, outbox=tmp_path / "outbox", outbox_max=5, retries=0)
    with caplog.at_level(logging.WARNING):
        for i in range(8):
            rec.submit(_served(i))
        assert rec.flush()
        rec.stop()
    assert (_count(counter, "deferred"), _count(counter, "dropped")) == (5, 3)
    files = _files(outbox_folder(tmp_path / "outbox", down.url))
    assert sum(f.read_bytes().count(b"\n") for f in files) == 5
    assert "outbox of served lists is full (5" in caplog.text


_CHILD = textwrap.dedent("""
    import sys, time
    from prometheus_client import CollectorRegistry, Counter
    from recsys_core.events.store import EventStore
    from recsys_service.feedback import ServedList, ServedRecorder

    url, outbox, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    counter = Counter("s", "s", ["outcome"], registry=CollectorRegistry())
    rec = ServedRecorder(EventStore(url), counter, 10000, outbox=outbox)
    for i in range(n):
        rec.submit(ServedList(f"r{i}", f"u{i}", ("a",), "recsys", "1", "champion-ranking"))
        print(f"answered r{i}", flush=True)  # what the client got
    time.sleep(600)
""")


def test_a_killed_process_loses_no_answered_list(store, tmp_path):
    """SIGKILL right after 300 lists were answered (the last ones still queued in memory):
    the next recorder on the same store writes every answered list."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, store.url, str(tmp_path / "outbox"), "300"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    answered = set()
    assert proc.stdout is not None
    for line in proc.stdout:
        answered.add(line.split()[1])
        if len(answered) == 300:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert len(answered) == 300
    before = len(_recorded(store))
    counter = _counter()
    rec = ServedRecorder(store, counter, 5000, outbox=tmp_path / "outbox")
    rec.start()
    deadline = time.monotonic() + 20
    while not answered <= _recorded(store) and time.monotonic() < deadline:
        time.sleep(0.05)
    rec.stop()
    assert answered <= _recorded(store), (before, len(_recorded(store)))
    assert _files(outbox_folder(tmp_path / "outbox", store.url)) == []


def test_a_worker_killed_beside_a_running_one_has_its_lists_written(store, tmp_path, monkeypatch):
    """Another worker of the same service keeps running: in a quiet moment it takes over the
    outbox file of the worker that was killed, without waiting for a restart."""
    from recsys_service import feedback

    monkeypatch.setattr(feedback, "_REPLAY_EVERY_S", 0.2)
    survivor = ServedRecorder(store, _counter(), 5000, outbox=tmp_path / "outbox")
    survivor.start()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, store.url, str(tmp_path / "outbox"), "50"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    answered = {line.split()[1] for _, line in zip(range(50), proc.stdout, strict=False)}
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 20
    while not answered <= _recorded(store) and time.monotonic() < deadline:
        time.sleep(0.05)
    survivor.stop()
    assert len(answered) == 50 and answered <= _recorded(store)
    assert _files(outbox_folder(tmp_path / "outbox", store.url)) == []


def test_an_event_with_a_nul_id_is_refused_with_a_message(store):
    from recsys_core.exceptions import DataValidationError

    with pytest.raises(DataValidationError, match="control character U\\+0000") as info:
        store.append([{"event_id": "e1", "user_id": "u\x00", "item_id": "i", "type": "click"}])
    assert [p.field for p in info.value.report] == ["user_id"]
    with store.engine.connect() as conn:
        from recsys_core.events.tables import events

        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 0


def test_an_outbox_line_carries_the_sender_and_reads_older_lines():
    served = ServedList("r1", "u1", ("a", "b"), "recsys", "1", "champion-ranking", "web")
    assert ServedList.from_line(served.line()) == served
    assert served.record().sender == "web"
    # a line written before lists had a sender: the empty sender
    old = b'["r2", "u2", ["a"], "recsys", "1", "champion-ranking"]\n'
    assert ServedList.from_line(old) == ServedList(
        "r2", "u2", ("a",), "recsys", "1", "champion-ranking"
    )
    assert ServedList.from_line(b'["r3", "u3", ["a"], "recsys", "1", "c", "web", "x"]') is None


@pytest.mark.parametrize(
    ("fsync_s", "expected"), [(0.0, 50), (3600.0, 0), (None, 0)], ids=["each", "interval", "never"]
)
def test_the_outbox_is_synced_to_disk_as_configured(tmp_path, monkeypatch, fsync_s, expected):
    """fdatasync after every list (0), once the interval has passed (none within an hour), or
    never (None); the real call runs, this test only counts it."""
    from recsys_service import feedback

    calls = []
    real = os.fdatasync
    monkeypatch.setattr(feedback.os, "fdatasync", lambda fd: (calls.append(fd), real(fd))[1])
    es = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    es.upgrade()
    rec = ServedRecorder(es, _counter(), 5000, outbox=tmp_path / "outbox", fsync_s=fsync_s)
    rec._synced = time.monotonic()  # the interval starts now, whatever the machine's uptime
    with rec._lock:  # the lists journaled as the route does, the writer thread not involved
        for i in range(50):
            assert rec._journal(_served(i)) is not None
    assert len(calls) == expected
    rec.stop()
    es.close()
