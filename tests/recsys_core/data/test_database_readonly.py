"""Database sources are only read: one SELECT, a read-only transaction, a statement timeout, and
a password only for the hosts configured for it. Against the real PostgreSQL (and a fake
server on a loopback port, which records any password it is sent)."""

from __future__ import annotations

import socket
import struct
import threading
import time

import psycopg2
import pytest

from recsys_core.data.database import load_database, single_select
from recsys_core.events import EventStore
from recsys_core.exceptions import ConfigError, DataError, DataSourceError


@pytest.fixture
def pg_events(pg_url):
    store = EventStore(pg_url)
    store.upgrade()
    store.append(
        [
            {
                "event_id": f"e{i}",
                "user_id": f"u{i % 3}",
                "item_id": f"i{i % 4}",
                "type": "click",
                "timestamp": 1_700_000_000 + i,
            }
            for i in range(12)
        ]
    )
    store.close()
    return pg_url


def _tables(url: str) -> set[str]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return {r[0] for r in cur.fetchall()}
    finally:
        conn.close()


def test_stacked_statements_are_refused_and_create_nothing(pg_events):
    query = (
        "SELECT user_id, item_id FROM events; CREATE TABLE pwned (a int); COMMIT; "
        "SELECT user_id, item_id FROM events"
    )
    with pytest.raises(
        ConfigError,
        match="query= holds 4 statements; a source reads with "
        "exactly one SELECT \\(nothing was run\\)",
    ):
        load_database(f"{pg_events}?query={query}")
    assert "pwned" not in _tables(pg_events)
    with pytest.raises(ConfigError, match="is a CREATE statement"):
        load_database(f"{pg_events}?query=CREATE TABLE pwned AS SELECT 1")
    assert "pwned" not in _tables(pg_events)


def test_one_select_reads_with_a_semicolon_in_a_string_or_a_comment(pg_events):
    got = load_database(
        f"{pg_events}?query=SELECT user_id, item_id, timestamp FROM events "
        "WHERE type <> ';' -- a comment; CREATE TABLE x\n;"
    )
    assert len(got.interactions) == 12
    assert single_select("select $$a;b$$ as x;  ") == "select $$a;b$$ as x"


def test_a_select_that_writes_fails_in_the_read_only_transaction(pg_events):
    conn = psycopg2.connect(pg_events)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE side (a int)")
        cur.execute(
            "CREATE FUNCTION write_side() RETURNS int LANGUAGE sql AS "
            "$$ INSERT INTO side VALUES (1) RETURNING 1 $$"
        )
    with pytest.raises(DataError, match="read only"):
        load_database(f"{pg_events}?query=SELECT user_id, item_id, write_side() AS w FROM events")
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM side")
        assert cur.fetchone() == (0,)
    conn.close()


def test_a_read_past_the_statement_timeout_is_cancelled(pg_events, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_DB_STATEMENT_TIMEOUT_S", "0.2")
    with pytest.raises(DataError, match="ran longer than 0.2 s and was cancelled"):
        load_database(f"{pg_events}?query=SELECT user_id, item_id, pg_sleep(0.5) AS s FROM events")


def test_a_sqlite_source_is_read_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url)
    store.upgrade()
    store.close()
    with pytest.raises(ConfigError, match="holds 2 statements"):
        load_database(f"{url}?query=SELECT user_id, item_id FROM events; DROP TABLE events")
    assert len(load_database(f"{url}?table=events").interactions) == 0


class FakePostgres:
    """A server on a loopback port that asks for a clear-text password and records it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.passwords: list[bytes] = []
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self._one(conn)
                except (OSError, struct.error):
                    pass

    def _one(self, conn: socket.socket) -> None:
        self.connections += 1
        while True:
            length, code = struct.unpack("!ii", _exact(conn, 8))
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest: no
                conn.sendall(b"N")
                continue
            _exact(conn, length - 8)  # the startup packet: user, database
            break
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        kind = conn.recv(1)
        if kind == b"p":
            (size,) = struct.unpack("!i", _exact(conn, 4))
            self.passwords.append(_exact(conn, size - 4).rstrip(b"\0"))
            fields = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"
            conn.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)

    def close(self) -> None:
        self.sock.close()


def _exact(conn: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise OSError("closed")
        out += chunk
    return out


@pytest.fixture
def fake_pg(monkeypatch, tmp_path):
    for var in ("RECSYS_EVENTS_URL", "RECSYS_DATA_DB_PASSWORD_HOSTS", "PGPASSFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-such-pgpass"))
    monkeypatch.setenv("PGPASSWORD", "env-secret-for-the-event-store")
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    server = FakePostgres()
    yield server
    server.close()


def test_pgpassword_is_never_sent_to_a_host_not_configured_for_it(fake_pg):
    with pytest.raises(DataSourceError):
        load_database(f"postgresql://reader@127.0.0.1:{fake_pg.port}/shop?table=reviews")
    assert fake_pg.connections >= 1  # it did connect, and asked for a password
    assert fake_pg.passwords == []


def test_a_host_named_in_the_setting_or_in_pgpass_gets_its_password(fake_pg, monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_DATA_DB_PASSWORD_HOSTS", f'["127.0.0.1:{fake_pg.port}"]')
    with pytest.raises(DataSourceError):
        load_database(f"postgresql://reader@127.0.0.1:{fake_pg.port}/shop?table=reviews")
    assert fake_pg.passwords == [b"env-secret-for-the-event-store"]
    monkeypatch.delenv("RECSYS_DATA_DB_PASSWORD_HOSTS")
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{fake_pg.port}:shop:reader:from-pgpass\n")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    with pytest.raises(DataSourceError):
        load_database(f"postgresql://reader@127.0.0.1:{fake_pg.port}/shop?table=reviews")
    assert fake_pg.passwords[1:] == [b"from-pgpass"]


def test_a_sqlite_read_past_the_statement_timeout_is_interrupted(tmp_path, monkeypatch):
    """SQLite has no statement_timeout: a progress handler interrupts the read (without it,
    this query counts to 300 million, a minute or more, before it answers)."""
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(url)
    store.upgrade()
    store.close()
    monkeypatch.setenv("RECSYS_DATA_DB_STATEMENT_TIMEOUT_S", "0.3")
    slow = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x - -1 FROM c WHERE x < 300000000) "
        "SELECT x AS user_id, x AS item_id FROM c WHERE x < 0"
    )
    started = time.monotonic()
    with pytest.raises(DataError, match="ran longer than 0.3 s and was cancelled"):
        load_database(f"{url}?query={slow}")
    assert time.monotonic() - started < 30
    # a quick read on the same settings is not disturbed
    assert len(load_database(f"{url}?table=events").interactions) == 0
