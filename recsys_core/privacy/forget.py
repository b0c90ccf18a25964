"""The right to be forgotten: one user's data removed from every place recsys keeps it.

:func:`forget_user` runs these steps, each idempotent, so that a re-run after a failure
completes what the first run left undone:

1. **event store**: a tombstone is written (a keyed hash of the id, never the id) and the user's
   events and served lists are deleted, in one transaction;
2. **registered versions**: every saved model state loses the user's rows and vocabulary entry
   (:mod:`recsys_core.tracking.forget_versions`), tagged ``forget.rewritten``;
3. **files under the data folder**: snapshots holding the user are rewritten under their new
   digest (the old folder is removed; the audit maps old to new digest), and any other Parquet
   table with a ``user`` column (quarantined rows, batch recommendations) loses the user's rows;
   so does every batch output recorded in MLflow, local or on S3
   (:mod:`recsys_core.tracking.forget_batches`);
4. **the service** (``RECSYS_SERVE_URL``, if set) is asked to re-read the tombstones at once;
   it also polls them, and applies them to every version it loads;
5. **audit**: one append-only ``forget_audit`` row says who, when, why and what was removed
   where; a failure mid-way still writes it (outcome ``partial``, with the error).

Later collections drop every tombstoned user whatever the source
(:func:`recsys_core.events.tombstones.drop_tombstoned`).

Keys. :func:`user_key` is HMAC-SHA256 with ``RECSYS_PSEUDONYM_KEY`` when that is set, else
SHA-256 with a fixed domain prefix. The unkeyed hash protects only against casual reading:
user ids are usually guessable (``"42"``, an e-mail), and anyone can hash guesses and compare.
The keyed hash cannot be reversed without the key, but the key must then be kept: rotating it
makes the old tombstones unmatchable (re-key them from the raw ids, which are gone, is not
possible), so a rotation must keep the old key for matching. Matching accepts both forms, so
tombstones written before a key was set keep working once it is.
"""

from __future__ import annotations

import getpass
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from recsys_core.events.engine import events_url, make_engine, missing_schema, safe_url
from recsys_core.events.tables import events, forget_audit, served_recommendations, tombstones

# the tombstones' keys, shared with the event store and collection; re-exported here, with
# forgetting, where the service and the tests look for them
from recsys_core.events.tombstones import candidate_keys as candidate_keys
from recsys_core.events.tombstones import drop_tombstoned as drop_tombstoned
from recsys_core.events.tombstones import store_exists, user_key
from recsys_core.events.tombstones import tombstone_keys as tombstone_keys
from recsys_core.events.tombstones import tombstoned as tombstoned
from recsys_core.exceptions import ConfigError, DataSourceError, RecsysError
from recsys_core.redaction import redact
from recsys_core.settings import get_settings

log = logging.getLogger(__name__)

KEY_ENV = "RECSYS_PSEUDONYM_KEY"


def pseudonym(user_id: str) -> str | None:
    """The pseudonym that collection gives ``user_id`` when ids are pseudonymized
    (HMAC-SHA256 with ``RECSYS_PSEUDONYM_KEY``, hex); None without a key.

    Versions tagged ``recsys.pseudonymized=true`` hold these in place of the ids, so forgetting
    looks the user up by it.
    """
    from recsys_core.pseudonyms import pseudonymize, read_key

    try:
        key = read_key()
    except ConfigError:  # no key (or one too short to have pseudonymized anything)
        return None
    return pseudonymize(user_id, key)


def identities(user_id: str) -> dict[str, str]:
    """The ids under which ``user_id`` may be stored: ``{"id": ..., "pseudonym": ...}``."""
    out = {"id": str(user_id)}
    p = pseudonym(user_id)
    if p:
        out["pseudonym"] = p
    return out


def actor() -> str:
    """Who forgets: ``RECSYS_ACTOR``, else the OS user."""
    name = get_settings().privacy.actor
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# -- the event store ---------------------------------------------------------------------------


def connect(url: str | None = None) -> Engine:
    """An engine on the event store, checked: tables present and migrated."""
    url = url or events_url()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(select(func.count()).select_from(tombstones)).scalar_one()
    except DBAPIError as exc:
        engine.dispose()
        schema = missing_schema(url, exc)
        if schema is not None:
            raise schema from None
        reason = redact(str(getattr(exc, "orig", exc))).strip().splitlines()
        raise DataSourceError(
            f"cannot reach the event store {safe_url(url)}: {reason[0] if reason else exc!r}. "
            "Forgetting needs it (the tombstones and the audit live there): start it, or set "
            "RECSYS_EVENTS_URL to the right database"
        ) from exc
    return engine


def _insert(engine: Engine):
    return postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert


def tombstone_and_delete(engine: Engine, user_id: str) -> dict[str, Any]:
    """Write the tombstones of ``user_id`` and delete their rows, in one transaction."""
    ids = identities(user_id)
    now = int(time.time())
    keys = {user_key(v): kind for kind, v in ids.items()}
    stmt = _insert(engine)(tombstones).on_conflict_do_nothing(index_elements=["user_key"])
    sqlite_file = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        if sqlite_file:  # the deleted rows' bytes are overwritten, not left in free pages
            conn.exec_driver_sql("PRAGMA secure_delete = ON")
        existing = set(
            conn.execute(
                select(tombstones.c.user_key).where(tombstones.c.user_key.in_(list(keys)))
            ).scalars()
        )
        conn.execute(
            stmt, [{"user_key": k, "kind": kind, "created_at": now} for k, kind in keys.items()]
        )
        values = list(ids.values())
        n_events = conn.execute(delete(events).where(events.c.user_id.in_(values))).rowcount
        n_served = conn.execute(
            delete(served_recommendations).where(served_recommendations.c.user_id.in_(values))
        ).rowcount
    if sqlite_file:
        _checkpoint(engine)
    return {
        "tombstone": "existing" if existing else "new",
        "events": int(n_events or 0),
        "served_recommendations": int(n_served or 0),
    }


def _checkpoint(engine: Engine) -> None:
    """Copy SQLite's write-ahead log into the database and empty it: the log still holds the
    pages as they were before the deletion. Best effort: a reader holding the log open (the
    service) makes it partial; the next checkpoint completes it."""
    with engine.connect() as conn:
        busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    if busy:
        log.warning(
            "the event store's write-ahead log is in use; the deleted rows leave it "
            "at its next checkpoint"
        )


def append_audit(
    engine: Engine,
    *,
    key: str,
    reason: str | None,
    outcome: str,
    detail: dict[str, Any],
    who: str | None = None,
) -> int:
    """Append one audit row; returns its id."""
    row = {
        "at": int(time.time()),
        "actor": who or actor(),
        "user_key": key,
        "reason": reason,
        "outcome": outcome,
        "detail": json.dumps(detail, sort_keys=True),
    }
    with engine.begin() as conn:
        return int(
            conn.execute(insert(forget_audit).returning(forget_audit.c.id), row).scalar_one()
        )


def audit_records(engine: Engine, after_id: int = 0) -> list[dict[str, Any]]:
    """The audit rows with an id above ``after_id``, oldest first (ids hashed already)."""
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(forget_audit).where(forget_audit.c.id > after_id).order_by(forget_audit.c.id)
            )
            .mappings()
            .all()
        )
    return [{**r, "detail": json.loads(r["detail"])} for r in rows]


def audit_since(after_id: int = 0, url: str | None = None) -> list[dict[str, Any]]:
    """The audit rows after ``after_id``; none from an event store never created or migrated."""
    url = url or events_url()
    if not store_exists(url):
        return []
    engine = make_engine(url)
    try:
        return audit_records(engine, after_id)
    except DBAPIError as exc:
        if missing_schema(url, exc) is not None:
            return []
        raise DataSourceError(
            f"cannot read the forget audit from {safe_url(url)} "
            f"({redact(str(exc.orig)).strip().splitlines()[0]}); start the event store or set "
            "RECSYS_EVENTS_URL"
        ) from exc
    finally:
        engine.dispose()


# -- collection --------------------------------------------------------------------------------


# -- files under the data folder ---------------------------------------------------------------


def forget_in_files(data_dir: str | Path, user_ids: Iterable[str]) -> dict[str, Any]:
    """Remove the users from snapshots (rewritten under a new digest) and other Parquet tables
    with a ``user`` column under ``data_dir``."""
    from recsys_core.data import snapshot
    from recsys_core.data.schema import Collected

    root = Path(data_dir)
    users = set(map(str, user_ids))
    changed: dict[str, str] = {}
    tables: dict[str, int] = {}
    rows = 0
    if not root.is_dir():
        return {"snapshots": changed, "snapshot_rows": 0, "tables": tables}
    snap_root = root / "snapshots"
    for meta in sorted(snap_root.glob(f"*/{snapshot.META_FILE}")):
        snap = snapshot.load_meta(meta.parent)
        frame = pd.read_parquet(snap.interactions_path)
        drop = frame["user"].astype(str).isin(users)
        if not drop.any():
            continue
        items = pd.read_parquet(snap.items_path) if snap.items_path.exists() else None
        new = snapshot.write(
            Collected(
                frame[~drop].reset_index(drop=True),
                items,
                source=snap.source,
                rating_scale=(snap.rating_min, snap.rating_max),
            ),
            snap_root,
        )
        if Path(new.path) != meta.parent:
            import shutil

            shutil.rmtree(meta.parent)
        changed[snap.digest] = new.digest
        rows += int(drop.sum())
    for path in sorted(root.rglob("*.parquet")):
        if snap_root in path.parents:
            continue
        from recsys_core.tracking.forget_versions import rewrite_table

        try:
            n = rewrite_table(path, users)
        except (OSError, ValueError) as exc:
            log.warning("%s cannot be read to forget users in it: %s", path, exc)
            continue
        if n:
            tables[str(path.relative_to(root))] = n
    return {"snapshots": changed, "snapshot_rows": rows, "tables": tables}


# -- the whole path ----------------------------------------------------------------------------


@dataclass
class ForgetReport:
    """What one ``forget_user`` did (no raw id: ``user_key`` is the hash)."""

    user_key: str
    outcome: str = "done"
    event_store: dict[str, Any] = field(default_factory=dict)
    versions: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, Any] = field(default_factory=dict)
    service: str = "not configured"
    error: str | None = None
    audit_id: int | None = None

    @property
    def found(self) -> bool:
        return bool(
            self.event_store.get("events")
            or self.event_store.get("served_recommendations")
            or self.versions
            or self.files.get("snapshots")
            or self.files.get("tables")
            or self.files.get("batch_outputs")
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def forget_user(
    user_id: str,
    *,
    reason: str | None = None,
    url: str | None = None,
    data_dir: str | Path = ".recsys/data",
    registered_models: list[str] | None = None,
    serve_url: str | None = None,
    tracking: bool = True,
) -> ForgetReport:
    """Forget ``user_id`` everywhere (see the module docstring); returns what was done.

    Raises
    ------
    DataSourceError
        The event store cannot be reached (nothing was done).
    RecsysError
        A later step failed; the audit row (outcome ``partial``) says what was done, and
        running it again completes the rest.
    """
    if not str(user_id).strip():
        from recsys_core.exceptions import ConfigError

        raise ConfigError("the user id is empty; give the id the user has in the data")
    user_id = str(user_id).strip()
    engine = connect(url)
    report = ForgetReport(user_key=user_key(user_id))
    ids = list(identities(user_id).values())
    done: list[Any] = []
    try:
        report.event_store = tombstone_and_delete(engine, user_id)
        if tracking:
            from recsys_core.tracking.forget_versions import forget_in_versions

            staging = Path(data_dir) / "forget-staging"
            try:
                forget_in_versions(ids, staging, registered_models, done)
            finally:
                report.versions = [
                    {
                        "name": r.name,
                        "version": r.version,
                        "users_removed": r.users_removed,
                        "rows_removed": r.rows_removed,
                        "folders": r.folders,
                    }
                    for r in done
                    if r.changed
                ]
        report.files = forget_in_files(data_dir, ids)
        if tracking:
            from recsys_core.tracking.forget_batches import forget_in_batches

            report.files["batch_outputs"] = forget_in_batches(ids)
        serve_url = serve_url if serve_url is not None else get_settings().privacy.serve_url
        if serve_url:
            report.service = notify_service(serve_url)
        report.outcome = "done" if report.found else "nothing-found"
    except RecsysError as exc:
        report.outcome, report.error = "partial", redact(str(exc))
        raise
    except Exception as exc:
        report.outcome, report.error = "partial", redact(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        detail = {
            k: v
            for k, v in report.to_dict().items()
            if k not in ("user_key", "outcome", "audit_id")
        }
        try:
            report.audit_id = append_audit(
                engine, key=report.user_key, reason=reason, outcome=report.outcome, detail=detail
            )
        except DBAPIError as exc:
            # the store went away after the deletion: say so, without hiding an earlier error
            log.error(
                "the audit record could not be written to %s: %s",
                safe_url(engine.url.render_as_string()),
                redact(str(exc.orig)),
            )
            if report.outcome != "partial":
                raise DataSourceError(
                    f"the user was forgotten but the audit record could not be written to "
                    f"{safe_url(engine.url.render_as_string())}; run `recsys forget` again "
                    "once the event store is back (it is idempotent)"
                ) from exc
        finally:
            engine.dispose()
    return report


def notify_service(serve_url: str, timeout: float = 5.0) -> str:
    """Ask the service to re-read the tombstones now (the request carries no user id), with
    the API key of ``RECSYS_SERVE_API_KEY`` (scope ``admin``)."""
    import httpx

    secret = get_settings().privacy.serve_api_key
    key = secret.get_secret_value() if secret is not None else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        resp = httpx.post(
            serve_url.rstrip("/") + "/tombstones/refresh", timeout=timeout, headers=headers
        )
        resp.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning(
            "the service at %s was not told (%s); it drops the user at its next poll",
            redact(serve_url),
            exc,
        )
        return f"not reached ({type(exc).__name__}); it polls the tombstones"
    return f"refreshed: {resp.json().get('dropped', 0)} user(s) dropped"
