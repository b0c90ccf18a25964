"""Where the event store lives and how to connect to it.

The URL comes from ``RECSYS_EVENTS_URL`` (environment, or a ``.env`` file in the working folder)
and defaults to an embedded SQLite file, ``sqlite:///.recsys/events.db``. A PostgreSQL URL
(``postgresql://user@host:5432/recsys_events``) may carry its password, since it comes from the
environment; messages and logs only ever show it through :func:`recsys_core.redaction.redact`.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from recsys_core.exceptions import ConfigError, DataSourceError
from recsys_core.redaction import redact
from recsys_core.settings import EventStoreSettings, get_settings

log = logging.getLogger(__name__)

DEFAULT_URL: str = EventStoreSettings.model_fields["url"].default


def events_url() -> str:
    """The URL of the event store: ``RECSYS_EVENTS_URL`` or the embedded default."""
    return get_settings().events.url


def configured_events_url() -> str | None:
    """``RECSYS_EVENTS_URL`` when it is set (environment or ``.env``), else None: the embedded
    default is a store of this machine only, not one a training run should report on."""
    settings = get_settings().events
    return settings.url if "url" in settings.model_fields_set else None


def safe_url(url: str) -> str:
    """``url`` with its password masked, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return redact(url)


def make_engine(
    url: str,
    *,
    connect_timeout: int | None = None,
    read_only: bool = False,
    statement_timeout_s: float | None = None,
    password: str | None = None,
) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with a busy timeout (several writers, one
    file), PostgreSQL with a connect timeout and a ping before a pooled connection is reused.

    ``read_only``: every transaction is read-only (PostgreSQL's
    ``default_transaction_read_only``, SQLite's ``query_only``), for reading a source that is
    not the event store. ``statement_timeout_s``: a statement running longer is cancelled:
    by PostgreSQL's ``statement_timeout``; on SQLite, which has none, by a progress handler
    (``sqlite3``'s ``set_progress_handler``, called every few thousand virtual-machine steps)
    that interrupts it once the deadline set when it started has passed (the error says
    ``interrupted``; see :func:`is_timeout`). On SQLite the time counts while the rows are
    fetched, too. ``password``: the password sent to this server (``""``: none; libpq then reads
    ``~/.pgpass``, which names its host, and never ``PGPASSWORD``); None: libpq's own
    defaults (``PGPASSWORD``, then ``~/.pgpass``).
    """
    if connect_timeout is None:
        connect_timeout = get_settings().events.connect_timeout
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"not a database URL: {redact(url)!r}; use sqlite:///path/events.db or "
            "postgresql://user@host:5432/database"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not read_only:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_query_only if read_only else _sqlite_pragmas)
        if statement_timeout_s is not None:
            _sqlite_deadline(engine, statement_timeout_s)
        return engine
    if backend in ("postgresql", "postgres"):
        connect_args: dict[str, object] = {"connect_timeout": connect_timeout}
        options = []
        if read_only:
            options.append("-c default_transaction_read_only=on")
        if statement_timeout_s is not None:
            options.append(f"-c statement_timeout={max(1, round(statement_timeout_s * 1000))}")
        if options:
            connect_args["options"] = " ".join(options)
        if password is not None:
            connect_args["password"] = password
        return create_engine(with_psycopg2(parsed), pool_pre_ping=True, connect_args=connect_args)
    raise ConfigError(
        f"unsupported database {backend!r} in {safe_url(url)!r}; the event store and database "
        "collection support sqlite:/// and postgresql:// URLs"
    )


def with_psycopg2(url: str | URL) -> URL:
    """``url`` parsed, with the psycopg2 driver when it names PostgreSQL without a driver
    (``postgresql://``, ``postgres://``): SQLAlchemy 2.1 would pick psycopg 3, and recsys
    depends on psycopg2. Any other URL, an explicit driver included, is left as it is.

    Raises SQLAlchemy's ``ArgumentError`` when ``url`` is not a URL.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg2")
    return parsed


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is on disk before it returns (durable before the acknowledgement)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_query_only(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA query_only=1")  # any write fails: "attempt to write a readonly database"
    cursor.close()


_SQLITE_STEPS = 10_000
"""Virtual-machine steps of SQLite between two looks at the deadline (~1 ms of work)."""


def _sqlite_deadline(engine: Engine, timeout_s: float) -> None:
    """Interrupt a SQLite statement that runs past ``timeout_s`` (see :func:`make_engine`)."""

    def arm(dbapi_connection, record) -> None:
        deadline = [math.inf]  # set when each statement starts
        record.info["recsys_deadline"] = deadline
        dbapi_connection.set_progress_handler(
            lambda: 1 if time.monotonic() > deadline[0] else 0, _SQLITE_STEPS
        )

    def start(conn, _cursor, _statement, _parameters, _context, _executemany) -> None:
        deadline = conn.info.get("recsys_deadline")
        if deadline is not None:
            deadline[0] = time.monotonic() + timeout_s

    event.listen(engine, "connect", arm)
    event.listen(engine, "before_cursor_execute", start)


def is_timeout(exc: BaseException) -> bool:
    """Whether a driver error is a statement cancelled by its timeout (PostgreSQL's
    ``query_canceled``, SQLite interrupted by :func:`make_engine`'s deadline)."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "pgcode", None) == "57014":
        return True
    return type(orig).__name__ == "OperationalError" and str(orig) == "interrupted"


def first_line(exc: BaseException) -> str:
    """The first line of a driver error's message (its class name when the message is empty,
    as some psycopg2 errors are when the server connection breaks)."""
    orig = getattr(exc, "orig", None) or exc
    lines = redact(str(orig)).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


def missing_schema(url: str, exc: BaseException) -> DataSourceError | None:
    """The error for tables that do not exist (never migrated), or None for other errors."""
    text = str(getattr(exc, "orig", None) or exc)
    if "no such table" in text or ("relation" in text and "does not exist" in text):
        return DataSourceError(
            f"the event store {safe_url(url)} has no tables yet "
            f"({first_line(exc)}); create them with `recsys db upgrade` "
            "(RECSYS_EVENTS_URL or --url names the database)"
        )
    return None


def unreachable(url: str, exc: BaseException, doing: str) -> DataSourceError:
    """The error for a database that cannot be reached; raise it ``from exc`` so that the task
    retry policy sees the (transient) driver error as its cause."""
    reason = redact(str(getattr(exc, "orig", None) or exc)).strip().splitlines()
    return DataSourceError(
        f"cannot reach the database {safe_url(url)} to {doing}: "
        f"{reason[0] if reason else type(exc).__name__}. Check that it is running and that the "
        "URL, user and password (RECSYS_EVENTS_URL, PGPASSWORD or ~/.pgpass) are right"
    )


def store_error(url: str, exc: BaseException, doing: str) -> DataSourceError:
    """The error for a statement of ``doing`` that the database at ``url`` refused: its tables
    missing (:func:`missing_schema`), the database unreachable (:func:`unreachable`: raise it
    ``from exc``), or anything else the driver said, with the way out of a stale schema."""
    schema = missing_schema(url, exc)
    if schema is not None:
        return schema
    if isinstance(exc, OperationalError):
        return unreachable(url, exc, doing)
    return DataSourceError(
        f"the event store {safe_url(url)} could not {doing}: {first_line(exc)}. Run "
        "`recsys db upgrade` if its tables are out of date"
    )
