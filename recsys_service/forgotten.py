"""Forgotten users leave the served models at once: the tombstones of the event store, polled.

:class:`Forgotten` reads the ``tombstones`` table every ``forget_poll_s`` seconds (and on
``POST /tombstones/refresh``, which ``recsys forget`` calls; the request carries no user id),
and drops the users whose keyed hash is there from every loaded model
(:meth:`LiveModels.drop_users`): their factors, vocabulary entry and seen list go, so they are
answered as a new user (popularity, or fold-in of their recent items). Every version loaded later
goes through the same filter (``LiveModels.user_filter``), so a reload never brings one back.

An event store that cannot be read is logged and retried at the next poll; what was read
before keeps applying.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from recsys_core.events.engine import events_url, make_engine, missing_schema, safe_url
from recsys_core.models.base import Recommender
from recsys_core.privacy.forget import store_exists, tombstone_keys, tombstoned
from recsys_core.redaction import redact
from recsys_service.live_models import LiveModels
from recsys_service.polling import Poller

log = logging.getLogger(__name__)


class Forgotten:
    """The tombstone keys the service knows, kept in step with the event store."""

    def __init__(self, live: LiveModels, url: str | None = None, interval_s: float = 5.0) -> None:
        self.url = url or events_url()
        self.live = live
        self.interval_s = interval_s
        self.keys: set[str] = set()
        self.problem: str | None = None
        self._last_id = 0
        self._lock = threading.Lock()
        # start() reads once itself, so the thread first waits an interval
        self._poller = Poller(
            self.check, interval_s, "recsys-tombstones", "reading the tombstones", at_once=False
        )
        self._engine: Engine | None = None
        live.user_filter = self.apply

    def apply(self, model: Recommender) -> int:
        """Drop the tombstoned users from ``model`` (in place); how many it held."""
        gone = tombstoned(model.user_vocab_.ids, self.keys)
        return model.forget_users(gone) if gone else 0

    def is_forgotten(self, user_id: str) -> bool:
        """Whether ``user_id`` was forgotten (as far as the last read of the tombstones knows)."""
        return bool(self.keys) and bool(tombstoned([user_id], self.keys))

    def check(self) -> int:
        """Read new tombstones; drop their users from the loaded models. Users dropped."""
        with self._lock:
            try:
                if not store_exists(self.url):
                    return 0
                if self._engine is None:
                    self._engine = make_engine(self.url)
                new, last = tombstone_keys(self._engine, self._last_id)
            except DBAPIError as exc:
                if missing_schema(self.url, exc) is not None:
                    self.problem = None  # never migrated: nobody was forgotten
                    return 0
                reason = redact(str(exc.orig)).strip().splitlines()
                self.problem = (
                    f"the tombstones cannot be read from {safe_url(self.url)}: "
                    f"{reason[0] if reason else type(exc).__name__}"
                )
                log.warning("%s; retrying in %ss", self.problem, self.interval_s)
                return 0
            self.problem = None
            self._last_id = last
            if not new - self.keys:
                return 0
            self.keys |= new
            dropped = self.live.drop_users(lambda ids: tombstoned(ids, new))
            if dropped:
                log.info("%d forgotten user(s) dropped from the served models", dropped)
            return dropped

    def start(self) -> None:
        """Read the tombstones once now, then poll them in a background thread."""
        self.check()
        self._poller.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._poller.stop(timeout)
        if self._engine is not None:
            self._engine.dispose()
