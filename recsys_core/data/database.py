"""Collect interactions from a SQL database: the event store, or any table or query.

The source is a SQLAlchemy URL whose query string says what to read::

    postgresql://recsys_collect@db:5432/recsys_events?table=events
    sqlite:///.recsys/events.db?table=events&since=1735689600:evt-42
    postgresql://reader@db/shop?query=SELECT user_id, sku, stars, ts FROM reviews

Parts of the query string (the rest is passed to the driver):

``table`` / ``query``
    What to read (one of them; ``table=events`` when neither is given).
``since``
    A watermark ``TIMESTAMP[@SENDER][:ID]`` (see :class:`Watermark`): only rows after it are
    read, so a daily run reads the new events and merges them with the previous snapshot.
``types``
    Event types to keep from a table with a ``type`` column (default all:
    ``rating,click,view,purchase``). ``types=rating`` feeds the rating role.
``weights``
    Weight of each implicit type, its value in the ``rating`` column (default
    ``view:1,click:3,purchase:5``): clicks, views and purchases become implicit interactions of
    the ranking role; rating events keep their rating.

Columns are mapped as for files (``user=user_id,item=item_id,...``), plus ``id`` (the event id,
default ``event_id``), ``sender`` (who sent it, default ``sender``: the name of the API key that
posted it to the event store) and ``type`` (default ``type``) for the event columns. An event is
identified by its sender and its id together, as the event store keys it: two senders may use
the same id for two events, and both are read; a row repeated with the same sender and id is
read once. Rows are read in
chunks through a server-side cursor (``stream_results``), so the driver never holds the whole
table.

A source is only read:

- every read runs in a read-only transaction (PostgreSQL ``default_transaction_read_only``,
  SQLite ``query_only``) under a ``statement_timeout`` (``RECSYS_DATA_DB_STATEMENT_TIMEOUT_S``:
  PostgreSQL's own; on SQLite a progress handler interrupts a read running past it);
- ``query=`` is exactly one ``SELECT`` (or ``WITH ... SELECT``): stacked statements
  (``SELECT ...; CREATE TABLE ...``) are refused with a message before anything runs (split by
  sqlparse's SQL tokenizer, which knows strings, quoted names, dollar quotes and comments);
- passwords are not accepted in the source, which is recorded with every run. A server gets a
  password only if it is configured for it: ``~/.pgpass`` (or ``PGPASSFILE``), whose lines
  name their host, or ``PGPASSWORD`` for the hosts listed in
  ``RECSYS_DATA_DB_PASSWORD_HOSTS`` (``host`` or ``host:port``) and the host of the event store
  (``RECSYS_EVENTS_URL``). Any other host never receives ``PGPASSWORD``. Messages show the URL
  without the password.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlparse
from sqlalchemy import Engine, MetaData, Table, and_, column, or_, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    InternalError,
    NoSuchTableError,
    OperationalError,
    ProgrammingError,
)

from recsys_core.data.files import parse_column_map
from recsys_core.data.schema import Collected, empty_interactions, normalize_interactions
from recsys_core.events.engine import (
    configured_events_url,
    first_line,
    is_timeout,
    make_engine,
    safe_url,
    unreachable,
)
from recsys_core.events.tables import EVENT_TYPES
from recsys_core.exceptions import ConfigError, DataError, DataSourceError
from recsys_core.settings import DatabaseSourceSettings, get_settings

log = logging.getLogger(__name__)

SCHEMES = ("postgresql", "postgres", "sqlite")
DEFAULT_WEIGHTS = {"view": 1.0, "click": 3.0, "purchase": 5.0}
CHUNK_ROWS = 50_000
_PARTS = ("table", "query", "since", "types", "weights")


def is_database_source(source: str) -> bool:
    """Whether ``source`` names a database (``postgresql://...``, ``sqlite:///...``)."""
    scheme = source.partition("://")[0].split("+")[0].lower()
    return "://" in source and scheme in SCHEMES


@dataclass(frozen=True, order=True)
class Watermark:
    """The last row a collection read: its timestamp and, among rows of that second, its
    sender and id.

    Written ``TIMESTAMP@SENDER:ID`` (``str(w)``; ``TIMESTAMP:ID`` for the empty sender, the form
    of tables without senders and of watermarks recorded before senders existed), the form
    ``since=`` takes back. Rows are read in (timestamp, sender, id) order, so the next
    collection reads exactly the rows after it. A sender name holds no ``@`` or ``:``
    (``recsys_core.events.keys``), so the form is unambiguous whatever the id holds.
    """

    timestamp: int
    sender: str = ""
    event_id: str = ""

    def __str__(self) -> str:
        head = f"{self.timestamp}@{self.sender}" if self.sender else str(self.timestamp)
        return f"{head}:{self.event_id}" if self.event_id or self.sender else head

    @classmethod
    def parse(cls, text_: str | int | Watermark) -> Watermark:
        if isinstance(text_, Watermark):
            return text_
        head, _, eid = str(text_).strip().partition(":")
        ts, at, sender = head.partition("@")
        try:
            if at and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", sender):
                raise ValueError(sender)
            return cls(int(ts), sender, eid)
        except ValueError:
            raise ConfigError(
                f"bad watermark {str(text_)!r}; expected TIMESTAMP[@SENDER][:ID] such as "
                "1735689600@web:evt-42 (the watermark a previous collection recorded)"
            ) from None


def password_for(url: URL, settings: DatabaseSourceSettings | None = None) -> str | None:
    """The password to send to ``url``'s server: ``PGPASSWORD`` when its host is configured
    for it, else ``""`` (libpq then looks in ``~/.pgpass``, by host, and never at
    ``PGPASSWORD``); None for SQLite."""
    if url.get_backend_name() not in ("postgresql", "postgres"):
        return None
    settings = settings or get_settings().database
    if settings.pgpassword is None:
        return ""
    allowed = {_host_key(h) for h in settings.password_hosts}
    configured = configured_events_url()
    if configured is not None:
        try:
            events = make_url(configured)
            allowed.add(_host_key(f"{events.host or 'localhost'}:{events.port or 5432}"))
        except ArgumentError:
            pass
    host, port = (url.host or "localhost").lower(), url.port or 5432
    if (host, port) in allowed or (host, None) in allowed:
        return settings.pgpassword.get_secret_value()
    log.info(
        "no PGPASSWORD for %s:%d (not in RECSYS_DATA_DB_PASSWORD_HOSTS): the password, if "
        "any, comes from ~/.pgpass",
        host,
        port,
    )
    return ""


def _host_key(entry: str) -> tuple[str, int | None]:
    host, sep, port = entry.strip().lower().rpartition(":")
    if not sep or not port.isdigit():
        return entry.strip().lower(), None
    return host, int(port)


def single_select(query: str) -> str:
    """``query`` without a trailing ``;``, or ``ConfigError`` unless it is one SELECT."""
    statements = [
        st
        for st in sqlparse.parse(query)
        if st.value.strip(" \t\r\n;")
        and any(
            not (
                t.is_whitespace
                or t.ttype in sqlparse.tokens.Comment
                or t.ttype is sqlparse.tokens.Punctuation
            )
            for t in st.flatten()
        )
    ]
    if len(statements) != 1:
        raise ConfigError(
            f"query= holds {len(statements)} statements; a source reads with exactly one SELECT "
            f"(nothing was run): {_short(query)!r}"
        )
    kind = statements[0].get_type()
    if kind != "SELECT":
        raise ConfigError(
            f"query= is a {kind} statement; a source reads with one SELECT (nothing was run): "
            f"{_short(query)!r}"
        )
    # comments out (a trailing "-- ..." would swallow what the query is wrapped in), and the
    # final ";"
    tokens = [
        " " if t.ttype in sqlparse.tokens.Comment else t.value for t in statements[0].flatten()
    ]
    return "".join(tokens).strip().rstrip(";").strip()


def _short(query: str) -> str:
    return query if len(query) <= 200 else query[:200] + "..."


def load_database(
    source: str,
    columns: str | dict[str, str] | None = None,
    *,
    rating_scale: tuple[float, float] = (1.0, 5.0),
    since: str | Watermark | None = None,
    weights: dict[str, float] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Collected:
    """Collect interactions from a database URL (see the module docstring for its parts).

    ``extra`` of the result holds ``watermark`` (``TIMESTAMP@SENDER:ID`` of the last row read,
    or the ``since`` given when nothing is newer), ``since``, ``event_ids_removed`` (rows
    repeating a (sender, event id) dropped) and ``event_types`` (rows per type).
    """
    url, parts = _split(source)
    shown = safe_url(url.render_as_string(hide_password=False))
    mapping, id_col, type_col, sender_col = _mapping(columns)
    since_spec = since or parts["since"]
    since_w = Watermark.parse(since_spec) if since_spec else None
    types = _types(parts["types"])
    weights = {**DEFAULT_WEIGHTS, **(weights or {}), **_weights(parts["weights"])}
    db = get_settings().database
    engine = make_engine(
        url.render_as_string(hide_password=False),
        read_only=True,
        statement_timeout_s=db.statement_timeout_s,
        password=password_for(url, db),
    )
    try:
        collected = _read(
            engine,
            shown,
            parts,
            mapping,
            (id_col, type_col, sender_col),
            since_w,
            types,
            weights,
            rating_scale,
            chunk_rows,
            db.statement_timeout_s,
        )
    finally:
        engine.dispose()
    collected.source = safe_url(source)  # what was read, its parts included
    return collected


def _split(source: str) -> tuple[URL, dict[str, str | None]]:
    try:
        url = make_url(source)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {safe_url(source)!r}") from exc
    if url.password:
        raise ConfigError(
            f"the source {safe_url(source)!r} carries a password; sources are recorded with each "
            "run, so give the password through the environment instead (PGPASSWORD or "
            "~/.pgpass, or a .env file) and leave it out of the URL"
        )
    if url.drivername == "postgres":
        url = url.set(drivername="postgresql")
    parts: dict[str, str | None] = {}
    for name in _PARTS:
        value = url.query.get(name)
        if isinstance(value, tuple):
            raise ConfigError(f"{name}= is given more than once in {safe_url(source)!r}")
        parts[name] = value
    if parts["table"] and parts["query"]:
        raise ConfigError(f"give table= or query= in {safe_url(source)!r}, not both")
    if not parts["table"] and not parts["query"]:
        parts["table"] = "events"
    if parts["query"]:
        parts["query"] = single_select(parts["query"])
    if parts["table"] and not re.fullmatch(
        r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?", parts["table"]
    ):
        raise ConfigError(f"table={parts['table']!r} is not a table name (schema.table at most)")
    return url.difference_update_query(_PARTS), parts


def _mapping(columns: str | dict[str, str] | None) -> tuple[dict[str, str], str, str, str]:
    raw = dict(columns) if isinstance(columns, dict) else {}
    if isinstance(columns, str) and columns:
        for part in columns.split(","):
            key, sep, value = part.partition("=")
            if not sep:
                raise DataError(
                    f"bad column mapping {part!r} in {columns!r}; expected name=column "
                    "pairs such as user=user_id,item=item_id,id=event_id"
                )
            raw[key.strip()] = value.strip()
    id_col = raw.pop("id", "event_id")
    type_col = raw.pop("type", "type")
    sender_col = raw.pop("sender", "sender")
    defaults = {"user": "user_id", "item": "item_id"}
    mapping = parse_column_map(raw)
    return {**defaults, **mapping}, id_col, type_col, sender_col


def _types(spec: str | None) -> tuple[str, ...]:
    if not spec:
        return EVENT_TYPES
    out = tuple(t.strip() for t in spec.split(",") if t.strip())
    unknown = [t for t in out if t not in EVENT_TYPES]
    if unknown or not out:
        raise ConfigError(
            f"unknown event type(s) {unknown!r} in types={spec!r}; use {', '.join(EVENT_TYPES)}"
        )
    return out


def _weights(spec: str | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in (spec or "").split(","):
        if not part.strip():
            continue
        name, _, value = part.partition(":")
        name = name.strip()
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if name not in EVENT_TYPES or name == "rating" or not weight > 0:
            raise ConfigError(
                f"bad weight {part!r} in weights={spec!r}; expected "
                "type:positive-number pairs such as view:1,click:3,purchase:5"
            )
        out[name] = weight
    return out


def _read(
    engine: Engine,
    shown: str,
    parts: dict[str, str | None],
    mapping: dict[str, str],
    event_cols: tuple[str, str, str],
    since: Watermark | None,
    types: tuple[str, ...],
    weights: dict[str, float],
    rating_scale: tuple[float, float],
    chunk_rows: int,
    statement_timeout_s: float,
) -> Collected:
    id_col, type_col, sender_col = event_cols
    what = f"table {parts['table']!r}" if parts["table"] else "the query"
    origin = f"{what} of {shown}"
    try:
        with engine.connect() as conn:
            from_: Any
            if parts["table"]:
                schema, _, name = str(parts["table"]).rpartition(".")
                try:
                    src = Table(name, MetaData(), autoload_with=conn, schema=schema or None)
                except NoSuchTableError:
                    raise DataSourceError(
                        f"{shown} has no table {parts['table']!r}. Run `recsys db upgrade` for "
                        "the event store, or name another table with table="
                    ) from None
                available = [c.name for c in src.columns]
                from_ = src
            else:
                sub = text(str(parts["query"])).columns().subquery("q")
                probe = conn.execute(select(text("*")).select_from(sub).limit(0))
                available = list(probe.keys())
                from_ = sub
            needed = {"user": mapping["user"], "item": mapping["item"]}
            for canon in ("rating", "timestamp"):
                if canon in mapping or _default(canon) in available:
                    needed[canon] = mapping.get(canon, _default(canon))
            missing = {k: v for k, v in needed.items() if v not in available}
            if missing:
                raise DataError(
                    f"{origin} lacks the mapped column(s) "
                    f"{', '.join(f'{v!r} ({k})' for k, v in missing.items())}; its columns are "
                    f"{available!r}. Map them with --columns such as "
                    "user=user_id,item=item_id,rating=rating,timestamp=timestamp"
                )
            has_id = id_col in available
            has_type = type_col in available
            # the sender only with an id: it is what makes the id unique
            has_sender = has_id and sender_col in available
            ts_name = needed.get("timestamp")
            if since is not None and ts_name is None:
                raise DataError(
                    f"since= needs a timestamp column and {origin} has none; map "
                    "one with --columns timestamp=<column>"
                )
            picked = list(
                dict.fromkeys(
                    [
                        *needed.values(),
                        *([sender_col] if has_sender else []),
                        *([id_col] if has_id else []),
                        *([type_col] if has_type else []),
                    ]
                )
            )
            stmt: Any = select(*[column(c) for c in picked]).select_from(from_)
            if has_type and set(types) != set(EVENT_TYPES):
                stmt = stmt.where(column(type_col).in_(types))
            if since is not None and ts_name is not None:
                ts: Any = column(ts_name)
                after = ts > since.timestamp
                if has_sender:
                    sender: Any = column(sender_col)
                    eid: Any = column(id_col)
                    later = or_(
                        sender > since.sender,
                        and_(sender == since.sender, eid > since.event_id),
                    )
                    after = or_(after, and_(ts == since.timestamp, later))
                elif has_id:
                    after = or_(after, and_(ts == since.timestamp, column(id_col) > since.event_id))
                stmt = stmt.where(after)
            keys = (ts_name, sender_col if has_sender else None, id_col if has_id else None)
            order: list[Any] = [column(c) for c in keys if c]
            if order:
                stmt = stmt.order_by(*order)
            result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(stmt)
            chunks = [pd.DataFrame(part, columns=picked) for part in result.partitions()]
    except OperationalError as exc:
        if is_timeout(exc):  # PostgreSQL's statement_timeout, SQLite's deadline
            raise DataError(
                f"reading {origin} ran longer than {statement_timeout_s:g} s and was cancelled; "
                "read less (a since= watermark, a narrower query=) or raise "
                "RECSYS_DATA_DB_STATEMENT_TIMEOUT_S"
            ) from None
        if "readonly database" in str(exc):
            raise DataError(
                f"cannot read {origin}: {first_line(exc)}; a source is read only, "
                "and query= may not write"
            ) from None
        raise unreachable(shown, exc, f"read {what}") from exc
    except InternalError as exc:
        if getattr(getattr(exc, "orig", None), "pgcode", None) == "25006":
            raise DataError(
                f"cannot read {origin}: {first_line(exc)}; a source is read only, "
                "and query= may not write"
            ) from None
        raise
    except ProgrammingError as exc:
        raise DataError(f"cannot read {origin}: {first_line(exc)}") from None
    raw = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame(columns=picked)
    return _to_collected(
        raw,
        shown,
        origin,
        needed,
        id_col if has_id else None,
        type_col if has_type else None,
        sender_col if has_sender else None,
        since,
        weights,
        rating_scale,
    )


def _default(canon: str) -> str:
    return canon  # the event store's names: rating, timestamp


def _to_collected(
    raw: pd.DataFrame,
    shown: str,
    origin: str,
    needed: dict[str, str],
    id_col: str | None,
    type_col: str | None,
    sender_col: str | None,
    since: Watermark | None,
    weights: dict[str, float],
    rating_scale: tuple[float, float],
) -> Collected:
    removed = 0
    if id_col is not None and len(raw):
        before = len(raw)
        # an event is its sender's id: the same id from two senders is two events
        key = [sender_col, id_col] if sender_col is not None else [id_col]
        raw = raw.drop_duplicates(key, keep="last")
        removed = before - len(raw)
        if removed:
            log.warning("%s: %d row(s) with a repeated %r dropped", origin, removed, key)
    type_counts: dict[str, int] = {}
    if type_col is not None and len(raw):
        kinds = raw[type_col].astype(str)
        type_counts = {str(k): int(v) for k, v in kinds.value_counts().sort_index().items()}
        implicit = kinds != "rating"
        if "rating" in needed:
            rating = pd.to_numeric(raw[needed["rating"]], errors="coerce")
            raw = raw.assign(**{needed["rating"]: rating.where(~implicit, kinds.map(weights))})
        else:
            raw = raw.assign(rating=kinds.map(weights).where(implicit, float("nan")))
            needed = {**needed, "rating": "rating"}
    watermark = since
    if len(raw) and "timestamp" in needed:
        last = raw.iloc[-1]
        watermark = Watermark(
            int(last[needed["timestamp"]]),
            str(last[sender_col]) if sender_col is not None else "",
            str(last[id_col]) if id_col is not None else "",
        )
    if len(raw):
        frame = normalize_interactions(
            raw[list(dict.fromkeys(needed.values()))],
            {k: v for k, v in needed.items()},
            origin=origin,
        )
    else:
        frame = empty_interactions()
    extra: dict[str, Any] = {
        "watermark": str(watermark) if watermark is not None else None,
        "since": str(since) if since is not None else None,
        "event_ids_removed": removed,
        "event_types": type_counts,
    }
    log.info("%s: %d row(s) read, watermark %s", origin, len(frame), extra["watermark"])
    return Collected(frame, None, source=shown, rating_scale=rating_scale, extra=extra)
