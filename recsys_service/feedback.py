"""Feedback: ``POST /events`` stores what users did, and every served list is recorded so that
click-through can be computed per model version (``EventStore.click_through``).

Served lists are recorded off the request path: the route puts the list on a bounded queue and
returns; one writer thread drains the queue into the event store, writing what has queued up
within ``_GATHER_S`` seconds of the first list (at most ``_MAX_BATCH`` lists) in one
transaction. When the store is down, or the
queue is full, the answer is still sent: the list is not recorded, a warning is logged (at most
one every ``_WARN_EVERY_S`` seconds) and ``recsys_served_lists{outcome="failed"|"dropped"}``
counts it in ``/metrics``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

from prometheus_client import Counter

from recsys_core.events.store import EventStore, ServedRecord
from recsys_core.redaction import redact

log = logging.getLogger(__name__)

_WARN_EVERY_S = 30.0
_MAX_BATCH = 500
_GATHER_S = 0.05
_STOP = object()


@dataclass(frozen=True)
class ServedList:
    recommendation_id: str
    user_id: str | None
    items: tuple[str, ...]
    registered_model: str
    model_version: str
    alias: str


class ServedRecorder:
    """A bounded queue of served lists and the thread that writes them to ``store``."""

    def __init__(self, store: EventStore, counter: Counter, maxsize: int) -> None:
        self.store = store
        self.counter = counter
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_warning = 0.0

    def submit(self, served: ServedList) -> None:
        """Queue ``served`` for recording; never blocks and never raises."""
        self._ensure_started()
        try:
            self._queue.put_nowait(served)
        except queue.Full:
            self.counter.labels("dropped").inc()
            self._warn("the queue of served lists is full (%d); list %s not recorded",
                       self._queue.maxsize, served.recommendation_id)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued list is written (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (for at most ``timeout`` seconds) and end the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        thread.join(timeout)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="served-recorder",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            # what queued up while the last write ran goes in one transaction: under load the
            # writer keeps up with one commit per batch, not one per list
            batch = [self._queue.get()]
            if batch[0] is not _STOP:
                # one write per request costs a thread switch and a commit each: lists that
                # come within _GATHER_S of the first share its transaction
                time.sleep(_GATHER_S)
            while len(batch) < _MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            lists = [item for item in batch if item is not _STOP]
            try:
                self.store.record_served_many([
                    ServedRecord(item.recommendation_id,
                                 "" if item.user_id is None else item.user_id, item.items,
                                 item.registered_model, item.model_version, item.alias)
                    for item in lists])
                self.counter.labels("recorded").inc(len(lists))
            except Exception as exc:  # noqa: BLE001 - the service keeps answering whatever the store does
                self.counter.labels("failed").inc(len(lists))
                self._warn("%d served list(s) not recorded (first %s): %s", len(lists),
                           lists[0].recommendation_id, redact(str(exc)))
            finally:
                for _ in batch:
                    self._queue.task_done()
            if len(lists) < len(batch):
                return

    def _warn(self, message: str, *args) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:
            self._last_warning = now
            log.warning(message, *args)
