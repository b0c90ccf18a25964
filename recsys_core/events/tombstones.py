"""Tombstones of forgotten users: their keys, and the rows they remove from a collection.

A tombstone (table ``tombstones``) holds a keyed hash of a forgotten user's id, never the id:
:func:`user_key` is HMAC-SHA256 with ``RECSYS_PSEUDONYM_KEY`` when that is set, else SHA-256
with a fixed domain prefix (see :mod:`recsys_core.privacy.forget` for what each protects
against). Matching accepts both forms, so tombstones written before a key was set keep working
once it is. Forgetting writes tombstones (:mod:`recsys_core.privacy.forget`); the event store
refuses events of a tombstoned user, collection drops their rows (:func:`drop_tombstoned`), and
the service drops them from what it serves.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from recsys_core.exceptions import DataSourceError
from recsys_core.redaction import redact
from recsys_core.settings import get_settings

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Engine

log = logging.getLogger(__name__)

# SQLAlchemy (~0.3 s to import) is loaded only where a store exists to be read: every collection
# looks for tombstones, and on a machine without an event store (the embedded file never
# created) that look is a path check. ``sqlite[+driver]:///path[?query]`` without
# percent-escapes is read here; any other URL through SQLAlchemy's own parser.
_PLAIN_SQLITE = re.compile(r"sqlite(?:\+\w+)?:///([^?#%]*)(?:\?[^#]*)?")

_DOMAIN = b"recsys/forget/v1:"


def _key() -> bytes | None:
    secret = get_settings().privacy.pseudonym_key
    key = secret.get_secret_value() if secret is not None else ""
    return key.encode() if key else None


def user_key(user_id: str) -> str:
    """The keyed hash of ``user_id`` stored in place of the id (see the module docstring)."""
    raw = _DOMAIN + str(user_id).encode()
    key = _key()
    if key:
        return "h1:" + hmac.new(key, raw, hashlib.sha256).hexdigest()
    return "s1:" + hashlib.sha256(raw).hexdigest()


def _match_keys(user_id: str) -> set[str]:
    """Every key form a tombstone of ``user_id`` may have been written in."""
    raw = _DOMAIN + str(user_id).encode()
    keys = {"s1:" + hashlib.sha256(raw).hexdigest()}
    key = _key()
    if key:
        keys.add("h1:" + hmac.new(key, raw, hashlib.sha256).hexdigest())
    return keys


def candidate_keys(user_id: str) -> set[str]:
    """Every form a tombstone of ``user_id`` may have been written in (to look them up)."""
    return _match_keys(user_id)


def tombstoned(user_ids: Iterable[str], keys: set[str]) -> set[str]:
    """The ids among ``user_ids`` whose tombstone is in ``keys``."""
    if not keys:
        return set()
    return {u for u in set(map(str, user_ids)) if _match_keys(u) & keys}


def drop_tombstoned(frame: pd.DataFrame, url: str | None = None) -> tuple[pd.DataFrame, int]:
    """``frame`` without the rows of tombstoned users, and how many rows went.

    An embedded event store that does not exist yet, or has never been migrated, holds no
    tombstone. A database that is configured but cannot be reached stops the collection: a
    snapshot must never bring a forgotten user back.
    """
    url = url or get_settings().events.url
    keys = _read_keys(url)
    if not keys or frame.empty:
        return frame, 0
    gone = tombstoned(frame["user"].astype(str).unique(), keys)
    if not gone:
        return frame, 0
    drop = frame["user"].astype(str).isin(gone).to_numpy()
    log.info("%d row(s) of %d forgotten user(s) dropped at collection", int(drop.sum()), len(gone))
    return frame[~drop].reset_index(drop=True), int(drop.sum())


def store_exists(url: str) -> bool:
    """False for an embedded (SQLite) event store whose file was never created: it holds no
    tombstone, and looking must not create it. True for any other URL."""
    plain = _PLAIN_SQLITE.fullmatch(url)
    if plain is not None:
        database: str | None = plain.group(1)
        backend = "sqlite"
    else:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        database, backend = parsed.database, parsed.get_backend_name()
    if backend == "sqlite" and database not in (None, "", ":memory:"):
        return Path(database).expanduser().exists()
    return True


def _read_keys(url: str) -> set[str]:
    if not store_exists(url):
        return set()
    from sqlalchemy.exc import DBAPIError, OperationalError

    from recsys_core.events.engine import make_engine, missing_schema, safe_url

    engine = make_engine(url)
    try:
        return tombstone_keys(engine)[0]
    except OperationalError as exc:
        if missing_schema(url, exc) is not None:
            return set()
        raise DataSourceError(
            f"cannot read the tombstones of forgotten users from {safe_url(url)} "
            f"({redact(str(exc.orig)).strip().splitlines()[0]}); collection stops rather than "
            "risk bringing a forgotten user back. Start the event store or set "
            "RECSYS_EVENTS_URL"
        ) from exc
    except DBAPIError as exc:
        if missing_schema(url, exc) is not None:
            return set()
        raise
    finally:
        engine.dispose()


def tombstone_keys(engine: Engine, after_id: int = 0) -> tuple[set[str], int]:
    """The tombstone keys with an id above ``after_id``, and the largest id seen."""
    from sqlalchemy import select

    from recsys_core.events.tables import tombstones

    with engine.connect() as conn:
        rows = conn.execute(
            select(tombstones.c.id, tombstones.c.user_key).where(tombstones.c.id > after_id)
        ).all()
    return {r.user_key for r in rows}, max([after_id, *(r.id for r in rows)])
