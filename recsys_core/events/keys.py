"""API keys of the service, kept in the event store's database (table ``api_keys``).

A key is ``rsk_`` followed by 43 random URL-safe characters (256 bits), shown once when it is
made (``recsys keys create``). The database holds its name, its scopes and
HMAC-SHA256(pepper, key), never the key: a copy of the database alone cannot be turned into a
working key, and since keys are random (not chosen by people), a keyed hash is as strong as a
slow KDF while costing microseconds per check. The hash is looked up through a unique index
and compared in constant time.

The pepper is a server-side secret: ``RECSYS_KEYS_PEPPER`` (environment or ``.env``), the same
for ``recsys keys`` and ``recsys serve``. For an embedded SQLite store without that setting it
is made once, at random, in ``keys.pepper`` beside the database file (mode 0600); a server
database (PostgreSQL) requires the setting. Changing the pepper invalidates every key.

Scopes: ``recommend`` (lists, similar items, predictions), ``ingest`` (``POST /events``),
``admin`` (tombstone refresh, ``/metrics``, ``/model``), ``explain`` (reasons that reveal a
user's history: ``explain=true`` needs it besides ``recommend``). A revoked key keeps its row
(and its name, which is the sender identity of the events it stored) with ``revoked_at`` set.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from recsys_core.events.engine import events_url, make_engine, safe_url, store_error
from recsys_core.events.tables import api_keys
from recsys_core.exceptions import ConfigError, DataSourceError
from recsys_core.settings import KeySettings, get_settings, variable_of

RECOMMEND, INGEST, ADMIN, EXPLAIN = "recommend", "ingest", "admin", "explain"
SCOPES = (RECOMMEND, INGEST, ADMIN, EXPLAIN)
PREFIX = "rsk_"
PEPPER_ENV = variable_of(KeySettings, "pepper")
PEPPER_FILE = "keys.pepper"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class ApiKey:
    """What the store knows of a key (never the key itself)."""

    name: str
    scopes: frozenset[str]
    created_at: int
    revoked_at: int | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def check_name(name: str) -> str:
    """``name`` if it is a valid key name, else ``ConfigError``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"invalid key name {name!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (e.g. batch-flow)"
        )
    return name


def parse_scopes(scopes: str | Iterable[str]) -> frozenset[str]:
    """The scopes of ``scopes`` (a comma-separated text or a list), or ``ConfigError``."""
    parts = scopes.split(",") if isinstance(scopes, str) else list(scopes)
    wanted = [s.strip() for s in parts if s.strip()]
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise ConfigError(
            f"invalid scopes {scopes!r}"
            + (f" (unknown: {', '.join(map(repr, unknown))})" if unknown else " (none given)")
            + f"; choose among {', '.join(SCOPES)}, comma-separated (e.g. recommend,ingest)"
        )
    return frozenset(wanted)


def pepper(url: str, settings: KeySettings | None = None) -> bytes:
    """The pepper of the key hashes for the event store at ``url`` (see the module doc)."""
    settings = settings or get_settings().keys
    if settings.pepper is not None:
        value = settings.pepper.get_secret_value()
        if len(value) < 16:
            raise ConfigError(
                f"{PEPPER_ENV} is {len(value)} characters long; use at least 16 "
                "random characters (e.g. `openssl rand -hex 32`)"
            )
        return value.encode()
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        raise ConfigError(
            f"set {PEPPER_ENV} (at least 16 random characters, e.g. `openssl rand -hex 32`) for "
            f"the API keys of the event store {safe_url(url)}: the same value for `recsys keys` "
            "and `recsys serve`"
        )
    path = Path(parsed.database).expanduser().with_name(PEPPER_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:  # the first process writes it; any other reads what it wrote
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    for _ in range(50):  # another process may be between its create and its write
        value = path.read_text().strip()
        if value:
            return value.encode()
        time.sleep(0.01)
    raise ConfigError(
        f"the pepper file {str(path)!r} is empty; delete it (every key made "
        f"with it stops working) or set {PEPPER_ENV}"
    )


def new_secret() -> str:
    """A fresh random key (shown once, stored only hashed)."""
    return PREFIX + secrets.token_urlsafe(32)


class KeyStore:
    """Create, list, revoke and verify API keys in the event store's database.

    Parameters
    ----------
    url
        SQLAlchemy URL of the event store; None: ``RECSYS_EVENTS_URL`` or the embedded default.
    pepper_value
        The pepper; None: :func:`pepper`.
    """

    def __init__(self, url: str | None = None, *, pepper_value: bytes | None = None) -> None:
        self.url = url or events_url()
        self._pepper = pepper_value if pepper_value is not None else pepper(self.url)
        self.engine = make_engine(self.url)

    def __repr__(self) -> str:
        return f"KeyStore({safe_url(self.url)!r})"

    def close(self) -> None:
        self.engine.dispose()

    def digest(self, secret: str) -> str:
        """HMAC-SHA256(pepper, ``secret``), hex: what the table stores."""
        return hmac.new(
            self._pepper, secret.encode("utf-8", "surrogatepass"), hashlib.sha256
        ).hexdigest()

    def create(self, name: str, scopes: str | Iterable[str], secret: str | None = None) -> str:
        """Make a key named ``name`` with ``scopes``; returns the key (shown once).

        ``secret``: register this key instead of a new random one (a deployment that hands a
        key to its clients through its ``.env``): at least 32 random characters after
        ``rsk_``; registering the same name, key and scopes again changes nothing."""
        check_name(name)
        wanted = parse_scopes(scopes)
        if secret is None:
            secret = new_secret()
        elif not secret.startswith(PREFIX) or len(secret) < len(PREFIX) + 32:
            raise ConfigError(
                f"the key given for {name!r} ({len(secret)} characters) is not a key: use "
                f"{PREFIX!r} followed by at least 32 random characters, e.g. "
                f"{PREFIX}$(openssl rand -hex 24)"
            )
        elif self._registered(name, secret, wanted):
            return secret
        row = {
            "name": name,
            "digest": self.digest(secret),
            "scopes": ",".join(s for s in SCOPES if s in wanted),
            "created_at": int(time.time()),
            "revoked_at": None,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(api_keys), row)
        except IntegrityError:
            raise ConfigError(
                f"a key named {name!r} exists already (revoked keys keep their name: it "
                "identifies the events they stored); choose another name"
            ) from None
        except DBAPIError as exc:
            raise self._error(exc, "create a key") from exc
        return secret

    def _registered(self, name: str, secret: str, scopes: frozenset[str]) -> bool:
        try:
            with self.engine.connect() as conn:
                row = (
                    conn.execute(select(api_keys).where(api_keys.c.name == name)).mappings().first()
                )
        except DBAPIError as exc:
            raise self._error(exc, "read the keys") from exc
        if row is None:
            return False
        key = _key(row)
        if (
            key.active
            and key.scopes == scopes
            and hmac.compare_digest(row["digest"], self.digest(secret))
        ):
            return True
        raise ConfigError(
            f"a key named {name!r} exists already with another key, other scopes "
            "or revoked; revoke it and register the key under a new name"
        )

    def list(self) -> list[ApiKey]:
        """Every key, active and revoked, by name."""
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(select(api_keys).order_by(api_keys.c.name)).mappings().all()
        except DBAPIError as exc:
            raise self._error(exc, "list the keys") from exc
        return [_key(r) for r in rows]

    def revoke(self, name: str) -> ApiKey:
        """Revoke the key named ``name`` (idempotent); ``ConfigError`` for an unknown name."""
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    update(api_keys)
                    .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                    .values(revoked_at=int(time.time()))
                )
                row = (
                    conn.execute(select(api_keys).where(api_keys.c.name == name)).mappings().first()
                )
        except DBAPIError as exc:
            raise self._error(exc, "revoke a key") from exc
        if row is None:
            known = ", ".join(k.name for k in self.list()) or "none"
            raise ConfigError(f"no key named {name!r}; the keys are: {known} (`recsys keys list`)")
        return _key(row)

    def verify(self, secret: str) -> ApiKey | None:
        """The active key ``secret`` is, or None (unknown, malformed or revoked)."""
        return self.lookup(self.digest(secret))

    def lookup(self, digest: str) -> ApiKey | None:
        """The active key whose hash is ``digest`` (:meth:`digest`), or None."""
        try:
            with self.engine.connect() as conn:
                row = (
                    conn.execute(select(api_keys).where(api_keys.c.digest == digest))
                    .mappings()
                    .first()
                )
        except DBAPIError as exc:
            raise self._error(exc, "check an API key") from exc
        if row is None or not hmac.compare_digest(row["digest"], digest):
            return None
        key = _key(row)
        return key if key.active else None

    def _error(self, exc: DBAPIError, doing: str) -> DataSourceError:
        return store_error(self.url, exc, doing)


def _key(row) -> ApiKey:
    return ApiKey(
        row["name"],
        frozenset(s for s in row["scopes"].split(",") if s),
        int(row["created_at"]),
        None if row["revoked_at"] is None else int(row["revoked_at"]),
    )
