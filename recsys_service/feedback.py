"""Feedback: ``POST /events`` stores what users did, and every served list is recorded so that
click-through can be computed per model version (``EventStore.click_through``).

Served lists are recorded off the request path, and none is lost on the way:

- the route writes the list to an **outbox** on disk (one JSON line appended to this process's
  segment file under ``served_outbox``, a write the kernel keeps even when the process is
  killed) and puts it on a bounded queue; it never waits for the database. The line reaches
  the disk itself (``fdatasync``, surviving a crash of the machine) after every list
  (``served_outbox_fsync_s`` 0) or at most that many seconds after it was written (the first
  list written once the interval has passed syncs the file, and so do the writer thread's
  rounds); ``None`` leaves it to the kernel;
- one writer thread drains the queue into the event store, what has queued up within
  ``_GATHER_S`` seconds of the first list (at most ``_MAX_BATCH`` lists) in one transaction;
- a batch that fails for a transient reason (the database away, restarting) is **retried with
  backoff** (``_RETRIES`` times); still failing, its lists stay in the outbox and are written
  again later (every ``_REPLAY_EVERY_S`` seconds, and at the next start);
- a batch the store refuses as it is (one list with a control character in an id) is written
  **list by list**: the one bad list is refused and counted, the others are stored;
- a segment is deleted once every list in it is recorded; segments left by a process that died
  (SIGKILL, a crash) are replayed by the next recorder started on the same event store.
  Recording is idempotent (``recommendation_id`` is the key), so a list written twice is
  stored once;
- the outbox is bounded (``served_outbox_max`` lists waiting): beyond, a list is dropped.

``recsys_served_lists{outcome=...}`` in ``/metrics`` counts ``recorded``, ``deferred`` (kept in
the outbox for a later try), ``refused`` (a list the store cannot hold) and ``dropped`` (the
outbox full, or no outbox and the queue full or the store down); a warning is logged at most
once every ``_WARN_EVERY_S`` seconds. ``stop()`` writes what is still queued before it returns.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import orjson
from prometheus_client import Counter

from recsys_core.events.store import EventStore, ServedRecord
from recsys_core.exceptions import DataValidationError
from recsys_core.redaction import redact

log = logging.getLogger(__name__)

_WARN_EVERY_S = 30.0
_MAX_BATCH = 500
_GATHER_S = 0.05
_RETRIES = 3
_BACKOFF_S = 0.1  # then 0.2, 0.4: a restart of the database is often over within a second
_REPLAY_EVERY_S = 10.0
_SEGMENT_LINES = 10_000
_STOP = object()


@dataclass(frozen=True)
class ServedList:
    recommendation_id: str
    user_id: str | None
    items: tuple[str, ...]
    registered_model: str
    model_version: str
    alias: str
    sender: str = ""  # the name of the API key that asked for the list

    def record(self) -> ServedRecord:
        return ServedRecord(
            self.recommendation_id,
            "" if self.user_id is None else self.user_id,
            self.items,
            self.registered_model,
            self.model_version,
            self.alias,
            self.sender,
        )

    def line(self) -> bytes:
        return (
            orjson.dumps(
                [
                    self.recommendation_id,
                    self.user_id,
                    self.items,
                    self.registered_model,
                    self.model_version,
                    self.alias,
                    self.sender,
                ]
            )
            + b"\n"
        )

    @classmethod
    def from_line(cls, line: bytes) -> ServedList | None:
        try:
            # six fields: a line of an outbox written before lists had a sender
            rid, user, items, model, version, alias, *sender = orjson.loads(line)
            if len(sender) > 1:
                return None
            return cls(rid, user, tuple(items), model, version, alias, *sender)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            return None  # a line cut short by a kill: the list was never answered


@dataclass(eq=False)
class _Segment:
    """One outbox file, locked (``flock``) by the recorder writing it while it is open."""

    path: Path
    fd: int
    lines: int = 0
    pending: int = 0  # lines queued and not yet written (or failed)
    dirty: bool = False  # some line failed or was never queued: replay the file
    closed: bool = False  # no line will be added
    unsynced: bool = False  # lines written since the last fdatasync

    def close(self, *, delete: bool) -> None:
        if delete:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)


def outbox_folder(root: str | os.PathLike, store_url: str) -> Path:
    """The outbox of one event store under ``root``: lists are replayed only into the store
    they were served for."""
    digest = hashlib.sha256(store_url.encode()).hexdigest()[:16]
    return Path(root) / digest


class ServedRecorder:
    """The outbox, the bounded queue of served lists and the thread that writes them to
    ``store`` (see the module docstring)."""

    def __init__(
        self,
        store: EventStore,
        counter: Counter,
        maxsize: int,
        *,
        outbox: str | os.PathLike | None = None,
        outbox_max: int = 100_000,
        fsync_s: float | None = 1.0,
        retries: int = _RETRIES,
        backoff_s: float = _BACKOFF_S,
    ) -> None:
        self.store = store
        self.counter = counter
        self.retries, self.backoff_s = retries, backoff_s
        self._queue: queue.Queue = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_warning = 0.0
        self.folder = None if outbox is None else outbox_folder(outbox, store.url)
        self.outbox_max = outbox_max
        self.fsync_s = fsync_s
        self._synced = time.monotonic()
        self._segment: _Segment | None = None
        self._waiting: list[_Segment] = []  # closed or dirty segments to replay
        self._journaled = 0  # lines in segments not yet deleted
        self._next_replay = 0.0

    # -- the request side ------------------------------------------------------------------

    def submit(self, served: ServedList) -> None:
        """Write ``served`` to the outbox and queue it for recording; never blocks and never
        raises."""
        self._ensure_started()
        segment = None
        with self._lock:
            if self.folder is not None:
                segment = self._journal(served)
                if segment is None:
                    return
            try:
                self._queue.put_nowait((served, segment))
            except queue.Full:
                if segment is None:
                    self.counter.labels("dropped").inc()
                    self._warn(
                        "the queue of served lists is full (%d); list %s not recorded",
                        self._queue.maxsize,
                        served.recommendation_id,
                    )
                else:  # on disk: written when the segment is replayed
                    segment.pending -= 1
                    segment.dirty = True
                    self.counter.labels("deferred").inc()

    def _journal(self, served: ServedList) -> _Segment | None:
        if self._journaled >= self.outbox_max:
            self.counter.labels("dropped").inc()
            self._warn(
                "the outbox of served lists is full (%d lists waiting for the event "
                "store); list %s not recorded",
                self.outbox_max,
                served.recommendation_id,
            )
            return None
        try:
            segment = self._current()
            os.write(segment.fd, served.line())
            segment.unsynced = True
            self._sync_due(segment)
        except OSError as exc:
            self.counter.labels("dropped").inc()
            self._warn(
                "the outbox %s cannot be written (%s); list %s not recorded",
                self.folder,
                exc,
                served.recommendation_id,
            )
            return None
        segment.lines += 1
        segment.pending += 1
        self._journaled += 1
        return segment

    def _sync_due(self, segment: _Segment | None) -> None:
        """``fdatasync`` the segment when the interval ``fsync_s`` has passed (at once with
        0); called with the lock held."""
        if self.fsync_s is None or segment is None or not segment.unsynced:
            return
        now = time.monotonic()
        if now - self._synced >= self.fsync_s:
            os.fdatasync(segment.fd)
            segment.unsynced = False
            self._synced = now

    def _sync_current(self) -> None:
        """The writer's round: sync the segment being written when its interval passed."""
        with self._lock:
            try:
                self._sync_due(self._segment)
            except OSError as exc:
                self._warn("the outbox %s cannot be synced to disk (%s)", self.folder, exc)

    def _current(self) -> _Segment:
        segment = self._segment
        if segment is not None and segment.lines < _SEGMENT_LINES:
            return segment
        if segment is not None:  # full: a new one; this one goes when its lines are written
            if segment.unsynced and self.fsync_s is not None:
                os.fdatasync(segment.fd)
                segment.unsynced = False
            segment.closed = True
            self._waiting.append(segment)
            self._retire_done()
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"served-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        # locked before it takes its name: another recorder never sees it unlocked
        fd = os.open(self.folder / f".{name}", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel when this process dies
        path = self.folder / name
        os.rename(self.folder / f".{name}", path)
        self._segment = _Segment(path, fd)
        return self._segment

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer now (it also replays what a previous process left)."""
        self._ensure_started()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued list is written (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued (for at most ``timeout`` seconds) and end the thread; what
        could not be written stays in the outbox for the next start."""
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
                self._thread = threading.Thread(
                    target=self._run, name="served-recorder", daemon=True
                )
                self._thread.start()

    # -- the writer ------------------------------------------------------------------------

    def _run(self) -> None:
        self._adopt_orphans()
        while True:
            try:
                first = self._queue.get(timeout=None if self.folder is None else _REPLAY_EVERY_S)
            except queue.Empty:
                # quiet: the files of a worker that died beside this one, and the lists that
                # failed, get their next try
                self._adopt_orphans()
                self._replay_due()
                self._sync_current()
                continue
            # what queued up while the last write ran goes in one transaction: under load the
            # writer keeps up with one commit per batch, not one per list
            batch = [first]
            if first is not _STOP:
                # one write per request costs a thread switch and a commit each: lists that
                # come within _GATHER_S of the first share its transaction
                time.sleep(_GATHER_S)
            while len(batch) < _MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            entries = [item for item in batch if item is not _STOP]
            try:
                failed = self._write([served for served, _ in entries])
                with self._lock:
                    for served, segment in entries:
                        if segment is None:
                            continue
                        segment.pending -= 1
                        if served.recommendation_id in failed:
                            segment.dirty = True
                    self._retire_done()
                self._sync_current()
            finally:
                for _ in batch:
                    self._queue.task_done()
            stopping = len(entries) < len(batch)
            if stopping:
                self._close()
                return
            self._replay_due()

    def _write(self, lists: list[ServedList], *, deferred: bool = True) -> set[str]:
        """Write ``lists``: retried, then list by list on a refusal. The ids not written
        (kept in the outbox, or dropped without one)."""
        if not lists:
            return set()
        error: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                self.store.record_served_many([s.record() for s in lists])
                self.counter.labels("recorded").inc(len(lists))
                return set()
            except DataValidationError:
                return self._one_by_one(lists)
            except Exception as exc:
                error = exc
                if attempt < self.retries:
                    time.sleep(self.backoff_s * 2**attempt)
        kept = self.folder is not None
        if deferred:
            self.counter.labels("deferred" if kept else "dropped").inc(len(lists))
        self._warn(
            "%d served list(s) not recorded (first %s) after %d tries: %s; %s",
            len(lists),
            lists[0].recommendation_id,
            self.retries + 1,
            redact(str(error)),
            "kept in the outbox for a later try" if kept else "no outbox: dropped",
        )
        return {s.recommendation_id for s in lists}

    def _one_by_one(self, lists: list[ServedList]) -> set[str]:
        failed: set[str] = set()
        for served in lists:
            try:
                self.store.record_served_many([served.record()])
                self.counter.labels("recorded").inc()
            except DataValidationError as exc:
                self.counter.labels("refused").inc()
                self._warn(
                    "served list %s refused by the event store: %s",
                    served.recommendation_id,
                    redact(str(exc)),
                )
            except Exception:
                failed |= self._write([served])
        return failed

    def _retire_done(self) -> None:
        """Delete the segments whose every line is written (called under the lock)."""
        keep = []
        for segment in self._waiting:
            if segment.closed and segment.pending == 0 and not segment.dirty:
                segment.close(delete=True)
                self._journaled -= segment.lines
            else:
                keep.append(segment)
        self._waiting = keep

    def _replay_due(self) -> None:
        if not self._waiting and not (self._segment and self._segment.dirty):
            return
        if time.monotonic() < self._next_replay:
            return
        self._next_replay = time.monotonic() + _REPLAY_EVERY_S
        self._replay()

    def _replay(self) -> None:
        """Write again the lists of the dirty segments; a segment whose lists are all written
        is deleted (the current one is rotated first so that it can be)."""
        with self._lock:
            if self._segment is not None and self._segment.dirty:
                self._segment.closed = True
                self._waiting.append(self._segment)
                self._segment = None
            todo = [s for s in self._waiting if s.dirty and s.pending == 0]
        for segment in todo:
            lists = [
                s
                for s in map(ServedList.from_line, segment.path.read_bytes().splitlines())
                if s is not None
            ]
            failed: set[str] = set()
            for start in range(0, len(lists), _MAX_BATCH):
                failed |= self._write(lists[start : start + _MAX_BATCH], deferred=False)
                if failed:
                    break  # still down: the rest waits for the next try
            if not failed:
                with self._lock:
                    segment.dirty = False
                    self._retire_done()

    def _adopt_orphans(self) -> None:
        """Take over the segments of processes that died before writing them."""
        if self.folder is None or not self.folder.is_dir():
            return
        adopted = False
        for path in sorted(self.folder.glob("served-*.jsonl")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # its writer is alive
                continue
            lines = path.read_bytes().count(b"\n")
            with self._lock:
                self._waiting.append(_Segment(path, fd, lines=lines, dirty=True, closed=True))
                self._journaled += lines
                adopted = True
        if adopted:
            log.info("replaying the served lists left in %s by a process that stopped", self.folder)
            self._replay()

    def _close(self) -> None:
        """At stop: the last try for the dirty segments, then the files are closed (a
        segment with lists not written stays on disk for the next start)."""
        if any(s.dirty for s in self._waiting) or (self._segment and self._segment.dirty):
            self._replay()
        with self._lock:
            if self._segment is not None:
                self._segment.closed = True
                self._waiting.append(self._segment)
                self._segment = None
            self._retire_done()
            for segment in self._waiting:
                segment.close(delete=False)
            self._waiting = []

    def _warn(self, message: str, *args) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:
            self._last_warning = now
            log.warning(message, *args)
