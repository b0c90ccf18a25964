"""Who may call the service: API keys with scopes, checked by a FastAPI ``Security``
dependency on every route but ``/health`` and ``/ready``.

A caller sends ``Authorization: Bearer <key>`` (a key of ``recsys keys create``). A missing,
malformed, unknown or revoked key gets 401 with ``WWW-Authenticate: Bearer``; a key without a
scope the route needs gets 403 naming the scope. The scopes of each route:

=========================================================  ==========================
``GET|POST /recommendations``, ``GET /similar-items``,      ``recommend``
``GET /predict``
``explain=true`` on the list routes (the reasons name the   ``recommend`` + ``explain``
items a user interacted with)
``POST /events``                                            ``ingest``
``GET /model``, ``GET /metrics``, ``POST /tombstones/...``  ``admin``
=========================================================  ==========================

A verified key (and a refused one) is remembered for ``key_cache_s`` seconds (default 5), so
that a check costs a dictionary look-up and not a database query; past that, the next request
looks it up again. On the list route's fast path (:meth:`Authenticator.fast`) a remembered key
costs one keyed BLAKE2b of the raw ``Authorization`` header (neither Starlette's ``Headers``
nor the key store's HMAC), and a busy key is looked up again in the background shortly before
its answer expires. Revoking a key therefore takes effect in every worker process within
``key_cache_s`` seconds. While the database cannot be read, a key seen before keeps its last
answer (the lists of known callers go on; a key never seen gets 503).

``recsys serve --no-auth`` turns the checks off (every caller gets every scope, events are
stored under the empty sender name) and is refused for any address but loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from recsys_core.events.keys import ADMIN, EXPLAIN, INGEST, RECOMMEND, SCOPES, KeyStore
from recsys_core.exceptions import DataSourceError

log = logging.getLogger(__name__)

__all__ = [
    "ADMIN",
    "EXPLAIN",
    "INGEST",
    "RECOMMEND",
    "Authenticator",
    "Caller",
    "authorize",
    "Ingester",
    "Recommender",
    "require",
]

ANONYMOUS = ""
"""The sender name of events stored without a key (``--no-auth``, or before keys existed)."""

_MAX_CACHED = 10_000

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="api-key",
    description="an API key made by `recsys keys create --name NAME --scopes a,b`, sent as "
    "`Authorization: Bearer <key>`",
)


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the key's name (the sender of its events) and its scopes."""

    name: str
    scopes: frozenset[str]


_EVERYONE = Caller(ANONYMOUS, frozenset(SCOPES))


class Authenticator:
    """Verifies keys against the key store, remembering each answer ``ttl_s`` seconds.

    ``store`` None: no checks (``--no-auth``): every request is :data:`_EVERYONE`.
    """

    def __init__(self, store: KeyStore | None, ttl_s: float = 5.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        # digest -> (caller or None, monotonic expiry): keyed by the hash, so that neither the
        # key nor a comparison with it stays in this table
        self._cache: dict[str, tuple[Caller | None, float]] = {}
        # the fast path's table: a keyed BLAKE2b of the raw header value (the key of this
        # process alone) -> the digest of the key it carries, for keys verified once; a pure
        # function of the header, so it never holds an answer of its own (``_cache`` does)
        self._header_key = secrets.token_bytes(32)
        self._headers: dict[bytes, str] = {}
        # digest -> the look-up started for a key about to expire (see ``fast``)
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def fast(self, request: Request, scope: str) -> Caller | None:
        """The caller of ``request`` when its key is remembered and holds ``scope``; None
        for anything else (the route's dependency then decides, and says why).

        Reads the raw ASGI headers (the first ``authorization``, as Starlette's ``Headers``
        does) and finds the key's digest by a keyed hash of the header's bytes: a key verified
        before costs no HMAC and no ``Headers``. When the remembered answer has less than a
        quarter of ``ttl_s`` left, the key is looked up again in the background (once), so
        that a busy key does not send every request in flight to the database at expiry; the
        answer in hand still expires when it always did, so a revocation takes effect within
        ``ttl_s`` as before."""
        if self.store is None:
            return _EVERYONE
        raw = None
        for name, value in request.scope["headers"]:
            if name == b"authorization":
                raw = value
                break
        if raw is None:
            return None
        mac = hashlib.blake2b(raw, key=self._header_key, digest_size=16).digest()
        digest = self._headers.get(mac)
        if digest is None:
            digest = self._header_digest(raw, mac)
            if digest is None:
                return None
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is None or hit[1] < now:
            return None
        caller = hit[0]
        if caller is None:
            return None
        if hit[1] - now < self.ttl_s / 4 and digest not in self._refreshing:
            self._refresh_soon(digest)
        return caller if scope in caller.scopes else None

    def _header_digest(self, raw: bytes, mac: bytes) -> str | None:
        """The digest of the key in the header ``raw`` (``Bearer <key>``), remembered under
        ``mac`` when the key was verified and accepted; None otherwise."""
        assert self.store is not None
        if raw[:7].lower() != b"bearer ":
            return None
        digest = self.store.digest(raw[7:].decode("latin-1").strip())  # as Starlette decodes
        hit = self._cache.get(digest)
        if hit is None or hit[0] is None:  # unknown or refused: left to the full check
            return None
        if len(self._headers) >= _MAX_CACHED:  # many spellings of the keys: start over
            self._headers.clear()
        self._headers[mac] = digest
        return digest

    def _refresh_soon(self, digest: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the service's loop: the full check will do
            return
        self._refreshing[digest] = loop.create_task(self._refresh(digest))

    async def _refresh(self, digest: str) -> None:
        try:
            await self._look_up(digest, self._cache.get(digest), time.monotonic())
        except Exception as exc:  # the request that finds the answer expired checks again
            log.warning("API key looked up ahead of its expiry: %s", exc)
        finally:
            self._refreshing.pop(digest, None)

    async def verify(self, secret: str) -> Caller | None:
        """The caller whose active key ``secret`` is, or None; from the cache while fresh."""
        assert self.store is not None
        digest = self.store.digest(secret)
        hit = self._cache.get(digest)
        now = time.monotonic()
        if hit is not None and hit[1] >= now:
            return hit[0]
        return await self._look_up(digest, hit, now)

    async def _look_up(
        self, digest: str, hit: tuple[Caller | None, float] | None, now: float
    ) -> Caller | None:
        """Ask the store about ``digest`` and remember the answer ``ttl_s`` seconds from
        ``now`` (when the question was asked); ``hit``: the answer remembered so far."""
        assert self.store is not None
        try:
            key = await asyncio.to_thread(self.store.lookup, digest)
        except DataSourceError as exc:
            if hit is None:
                raise
            # the database is away: the last answer stands until it is back (a revocation
            # cannot be read meanwhile either), so that an outage of the event store does not
            # stop the lists of callers already seen
            log.warning("API key %r checked from memory: %s", hit[0] and hit[0].name, exc)
            self._cache[digest] = (hit[0], now + min(self.ttl_s, 1.0))
            return hit[0]
        caller = None if key is None else Caller(key.name, key.scopes)
        if len(self._cache) >= _MAX_CACHED:  # a flood of invented keys: start over
            self._cache = {d: v for d, v in self._cache.items() if v[1] >= now}
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
        self._cache[digest] = (caller, now + self.ttl_s)
        return caller


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = 'Bearer realm="recsys"' + (f', error="{error}"' if error else "")
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def missing_scope(caller: Caller, scope: str, what: str) -> HTTPException:
    """The 403 for a key that lacks ``scope``."""
    return HTTPException(
        403,
        f"the API key {caller.name!r} lacks the scope {scope!r} that {what} needs; use a "
        f"key made with it (recsys keys create --name NAME --scopes {scope})",
    )


async def authorize(
    security_scopes: SecurityScopes,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The dependency of every guarded route: the caller, who holds the route's scopes."""
    auth: Authenticator = request.app.state.service.auth
    if not auth.enabled:
        return _EVERYONE
    if credentials is None:
        raise _unauthorized(
            "an API key is required: send `Authorization: Bearer <key>` with a "
            "key made by `recsys keys create`"
        )
    try:
        caller = await auth.verify(credentials.credentials)
    except DataSourceError as exc:
        raise HTTPException(503, f"the API key cannot be checked: {exc}") from None
    if caller is None:
        raise _unauthorized(
            "the API key is not valid (unknown or revoked); ask for a key made "
            "by `recsys keys create`",
            "invalid_token",
        )
    what = f"{request.method} {request.url.path}"
    for scope in security_scopes.scopes:
        if scope not in caller.scopes:
            raise missing_scope(caller, scope, what)
    return caller


# the route parameters that receive the caller holding a scope
Recommender = Annotated[Caller, Security(authorize, scopes=[RECOMMEND])]
Ingester = Annotated[Caller, Security(authorize, scopes=[INGEST])]


def require(caller: Caller, scope: str, what: str) -> None:
    """403 unless ``caller`` holds ``scope`` (for a scope that depends on a request's
    content, such as ``explain``: its route's dependency already checked the route's own)."""
    if scope not in caller.scopes:
        raise missing_scope(caller, scope, what)
