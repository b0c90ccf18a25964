"""A mutual-exclusion lock kept in the MLflow model registry, taken around every alias move.

Why the registry: the lock must serialize every process that can move a champion alias
(``champion-ranking``, ``champion-rating``): CLI runs on
the embedded store (each with its own temporary Prefect server), flow runs of the loopback stack
and of compose. The one thing all of them necessarily share is the registry whose alias they
move, so the lock lives there and works wherever the registry does (sqlite, PostgreSQL behind
the tracking server). A Prefect global concurrency limit would serialize only runs that talk to
the same Prefect API, and its slot leases live in the memory of the server that granted them: a
CLI run killed while holding a slot of the embedded store's shared database would block every
later promotion, with no server left to expire its lease.

How: creating a registered model is atomic (its name is the primary key; a second create
fails with ``RESOURCE_ALREADY_EXISTS``), so the lock is a registered model named
``<model>.<alias>.promotion-lock`` whose tags say who holds it and until when. Release deletes
it. A lock whose holder died is broken after its time to live (``RECSYS_PROMOTION_LOCK_TTL``,
120 s by default; a promotion takes a few registry calls): it is first renamed to a name of the
breaker's own, which only one contender can do, then deleted. Expiry compares wall clocks, so
hosts sharing a registry must keep their clocks in sync (NTP); a holder slower than the time to
live loses exclusivity, which the compare-and-set in ``registry.promote`` still guards.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from recsys_core.exceptions import TrackingError
from recsys_core.settings import get_settings

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".promotion-lock"
HOLDER_TAG = "recsys.lock_holder"
EXPIRES_TAG = "recsys.lock_expires_at"
DEFAULT_TTL = 120.0
MAX_STORE_ERRORS = 20
DEFAULT_WAIT = 180.0  # longer than the time to live: a dead holder never makes a waiter fail


def lock_name(name: str, alias: str) -> str:
    """Name of the registered model that stands for the lock on ``name@alias``."""
    return f"{name}.{alias}{LOCK_SUFFIX}"


def is_lock(registered_model: str) -> bool:
    return registered_model.endswith(LOCK_SUFFIX)


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


@contextmanager
def promotion_lock(
    name: str, alias: str, *, ttl: float | None = None, wait: float | None = None
) -> Iterator[str]:
    """Hold the promotion lock of ``name@alias`` for the body; yields the holder id.

    Waits up to ``wait`` seconds (``RECSYS_PROMOTION_LOCK_WAIT``, 180 by default) for another
    holder, breaking a lock older than its time to live.
    """
    settings = get_settings().promotion_lock
    ttl = settings.ttl if ttl is None else ttl
    wait = settings.wait if wait is None else wait
    lock = lock_name(name, alias)
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    client = _client()
    deadline = time.monotonic() + wait
    pause, errors = 0.05, 0
    while True:
        try:
            if _create(client, lock, holder, ttl, f"{name}@{alias}"):
                break
            current = _read(lock)  # taken: by whom, until when
        except TrackingError:
            raise
        except Exception as exc:
            # a busy store ("database is locked" from sqlite under concurrent writers) answers
            # again shortly; anything that persists is raised
            errors += 1
            if errors > MAX_STORE_ERRORS:
                raise TrackingError(f"cannot take the promotion lock {lock!r}: {exc}") from exc
            log.debug("promotion lock %s: %s; trying again", lock, exc)
            time.sleep(pause * (1 + random.random()))
            continue
        if current is not None and current.get(HOLDER_TAG) == holder:
            break  # an earlier attempt created it, its answer was lost
        if current is not None and float(current.get(EXPIRES_TAG, 0)) < time.time():
            _break(lock, current.get(HOLDER_TAG, "?"))
            continue
        if time.monotonic() > deadline:
            who = current.get(HOLDER_TAG, "?") if current else "?"
            raise TrackingError(
                f"the promotion lock {lock!r} has been held by {who} for more than {wait:.0f}s; "
                f"if no promotion of {name!r} is running, delete the registered model {lock!r} "
                "(it expires by itself after RECSYS_PROMOTION_LOCK_TTL seconds)"
            )
        time.sleep(pause * (1 + random.random()))  # jitter: contenders do not poll in step
        pause = min(pause * 2, 1.0)
    log.debug("promotion lock %s taken by %s", lock, holder)
    try:
        yield holder
    finally:
        _release(lock, holder)


def _create(client, lock: str, holder: str, ttl: float, target: str) -> bool:
    """Create the lock; False when it exists already."""
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(
            lock,
            tags={HOLDER_TAG: holder, EXPIRES_TAG: f"{time.time() + ttl:.3f}"},
            description=f"recsys promotion lock of {target}, held by {holder}; deleted when "
            "the promotion ends",
        )
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_ALREADY_EXISTS":
            return False
        if exc.error_code in ("PERMISSION_DENIED", "UNAUTHENTICATED", "INVALID_PARAMETER_VALUE"):
            raise TrackingError(f"cannot take the promotion lock {lock!r}: {exc}") from exc
        raise
    return True


def _read(lock: str) -> dict[str, str] | None:
    from mlflow.exceptions import MlflowException

    try:
        return dict(_client().get_registered_model(lock).tags)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None  # released meanwhile
        raise


def _break(lock: str, holder: str) -> None:
    """Remove an expired lock; when several contenders try, one rename succeeds."""
    from mlflow.exceptions import MlflowException

    tomb = f"{lock}.expired-{uuid.uuid4().hex[:12]}"
    client = _client()
    try:
        client.rename_registered_model(lock, tomb)
    except Exception as exc:
        log.debug("could not break %s: %s", lock, exc)
        return
    log.warning("promotion lock %s held by %s expired; broken", lock, holder)
    try:
        client.delete_registered_model(tomb)
    except MlflowException as exc:
        log.warning("could not delete the expired promotion lock %s: %s", tomb, exc)


def _release(lock: str, holder: str) -> None:
    for attempt in range(MAX_STORE_ERRORS):
        try:
            current = _read(lock)
            if current is None or current.get(HOLDER_TAG) != holder:
                log.warning("promotion lock %s was no longer held by %s at release", lock, holder)
                return
            _client().delete_registered_model(lock)
            return
        except Exception as exc:
            log.debug("releasing the promotion lock %s: %s", lock, exc)
            time.sleep(0.05 * (attempt + 1))
    # it expires by itself; the next contender breaks it after the time to live
    log.warning("could not release the promotion lock %s; it expires after its time to live", lock)
