"""The event store: what users did with the recommendations, appended by the service and read
back by collection (``recsys_core.data.database``).

Contract of :meth:`EventStore.append`:

- **validated** with the rules of the validation stage (``ValidationRules``): ids present,
  a known ``type``, a ``rating`` (finite, on the rating scale) on rating events and only on
  them, no timestamp in the future (beyond ``max_clock_skew`` seconds);
- **refused whole**: one bad event refuses the batch and stores nothing; the
  ``DataValidationError`` names the first bad event and field, and its ``report`` lists every
  problem (index, event_id, field, message), for a per-event answer to the sender;
- **idempotent per sender** on ``(sender, event_id)``: ``INSERT ... ON CONFLICT DO NOTHING``; an
  id the sender already stored (or repeated in the batch) with the same content is counted in
  ``AppendResult.duplicates`` and changes nothing; with other content it is an
  ``EventConflictError`` (409 at the service) and nothing of the batch is stored. The sender is
  the name of the API key that posted the events, so one sender cannot squat another's ids;
- **never of a forgotten user**: an event whose user has a tombstone (``recsys forget``) refuses
  the batch (``DataValidationError`` naming it), read in the same transaction;
- **durable**: the transaction is committed before ``append`` returns. When the database cannot
  be reached it raises ``DataSourceError`` and nothing is acknowledged.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from sqlalchemy import and_, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError as SQLDataError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from recsys_core.events.engine import (
    events_url,
    first_line,
    make_engine,
    missing_schema,
    safe_url,
    unreachable,
)
from recsys_core.events.tables import events, served_recommendations, tombstones
from recsys_core.exceptions import DataSourceError, DataValidationError, EventConflictError
from recsys_core.validation.rules import ValidationRules

log = logging.getLogger(__name__)


def _id_text(value: Any) -> Any:
    # numeric ids are common (MovieLens); they are stored as text like every id of recsys
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def no_control(value: str) -> str:
    """``value``, or ``ValueError`` when it carries a control character (a NUL cannot be
    stored by PostgreSQL and fails the whole batch it is in; the others corrupt logs)."""
    found = _CONTROL.search(value)
    if found is not None:
        raise ValueError(
            f"control character U+{ord(found[0]):04X} at position {found.start()} "
            f"of {value!r}; ids may not contain control characters"
        )
    return value


# the constraints before the validator: they then apply to the string (and read as such)
Id = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=256),
    BeforeValidator(_id_text),
    AfterValidator(no_control),
]


class Event(BaseModel):
    """One interaction, as the service receives it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    event_id: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
        BeforeValidator(_id_text),
        AfterValidator(no_control),
    ]
    user_id: Id
    item_id: Id
    type: Literal["rating", "click", "view", "purchase"]
    rating: float | None = Field(None, allow_inf_nan=True)
    timestamp: datetime | int | None = Field(
        None, description="when it happened: epoch seconds or ISO 8601; default: when received"
    )
    recommendation_id: Annotated[str, AfterValidator(no_control)] | None = Field(
        None, min_length=1, max_length=128
    )


@dataclass(frozen=True)
class EventProblem:
    """Why one event of a batch was refused."""

    index: int
    event_id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        return (
            f"event {self.index} (event_id {self.event_id!r}): field {self.field!r}: {self.message}"
        )


@dataclass(frozen=True)
class ServedRecord:
    """A list the service returned (``recommendation_id``: the id given with it; ``sender``:
    the name of the API key that asked for it)."""

    recommendation_id: str
    user_id: str
    items: tuple[str, ...]
    registered_model: str
    model_version: str
    alias: str | None = None
    sender: str = ""


@dataclass(frozen=True)
class AppendResult:
    """What an append stored: ``received`` = ``stored`` + ``duplicates``."""

    received: int
    stored: int
    duplicates: int
    stored_ids: tuple[str, ...] = field(default=(), repr=False)


class EventStore:
    """Append and read interaction events in a SQL database (SQLite or PostgreSQL).

    Parameters
    ----------
    url
        SQLAlchemy URL; None: ``RECSYS_EVENTS_URL`` or ``sqlite:///.recsys/events.db``.
    rules
        The validation rules of the data (rating scale, latest timestamp).
    max_clock_skew
        Seconds a sender's clock may run ahead of the store's.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        rules: ValidationRules | None = None,
        max_clock_skew: int = 300,
    ) -> None:
        self.url = url or events_url()
        self.rules = rules or ValidationRules()
        self.max_clock_skew = max_clock_skew
        self.engine = make_engine(self.url)
        backend = self.engine.dialect.name
        self._insert = postgresql.insert if backend == "postgresql" else sqlite.insert
        # built once: a statement made per batch costs more CPU than its execution's Python
        self._append_stmt = (
            self._insert(events)
            .on_conflict_do_nothing(index_elements=["sender", "event_id"])
            .returning(events.c.event_id)
        )
        self._served_stmt = self._insert(served_recommendations).on_conflict_do_nothing(
            index_elements=["recommendation_id"]
        )

    def __repr__(self) -> str:
        return f"EventStore({safe_url(self.url)!r})"

    def close(self) -> None:
        self.engine.dispose()

    def upgrade(self) -> str:
        """Create or migrate the tables (``recsys db upgrade``); returns the revision."""
        from recsys_core.events.migrate import upgrade

        return upgrade(self.url)

    # -- writing ---------------------------------------------------------------------------

    def validate(self, batch: Iterable[Mapping[str, Any] | Event]) -> list[Event]:
        """The events of ``batch``, or ``DataValidationError`` listing every bad one."""
        now = time.time()
        latest = (
            self.rules.max_timestamp
            if self.rules.max_timestamp is not None
            else now + self.max_clock_skew
        )
        lo, hi = self.rules.rating_min, self.rules.rating_max
        good: list[Event] = []
        problems: list[EventProblem] = []
        for index, raw in enumerate(batch):
            event_id = (
                raw.event_id
                if isinstance(raw, Event)
                else raw.get("event_id")
                if isinstance(raw, Mapping)
                else None
            )
            event_id = None if event_id is None else str(event_id)
            try:
                ev = raw if isinstance(raw, Event) else Event.model_validate(raw)
            except ValidationError as exc:
                for err in exc.errors():
                    name = ".".join(str(p) for p in err["loc"]) or "event"
                    problems.append(EventProblem(index, event_id, name, err["msg"]))
                continue
            bad = _check(ev, lo, hi, latest)
            if bad:
                problems.append(EventProblem(index, event_id, *bad))
                continue
            good.append(ev)
        if problems:
            raise DataValidationError(
                f"{len(problems)} problem(s) in the batch, nothing was stored; first: "
                f"{problems[0]}. Fix those events and send the batch again",
                report=problems,
            )
        return good

    def append(self, batch: Iterable[Mapping[str, Any] | Event], sender: str = "") -> AppendResult:
        """Validate and store ``batch`` in one committed transaction (see the module doc);
        ``sender``: who sent it (the API key's name), part of each event's identity."""
        evs = self.validate(batch)
        if not evs:
            return AppendResult(0, 0, 0)
        _check_repeats(evs)
        received_at = int(time.time())
        rows = [_row(ev, received_at, sender) for ev in evs]
        try:
            with self.engine.begin() as conn:  # committed when the block ends
                _check_forgotten(conn, evs)
                stored = tuple(conn.execute(self._append_stmt, rows).scalars().all())
                if len(stored) < len(evs):  # raising rolls the whole batch back
                    _check_duplicates(conn, evs, set(stored), sender)
        except DBAPIError as exc:
            schema = missing_schema(self.url, exc)
            if schema is not None:
                raise schema from None  # permanent: retrying cannot create the tables
            if isinstance(exc, OperationalError):
                raise unreachable(self.url, exc, "store events") from exc
            raise DataSourceError(
                f"the event store {safe_url(self.url)} refused the batch: "
                f"{first_line(exc)}. Run `recsys db upgrade` if its "
                "tables are out of date"
            ) from None
        return AppendResult(len(evs), len(stored), len(evs) - len(stored), stored)

    def record_served(
        self,
        recommendation_id: str,
        *,
        user_id: str,
        items: Sequence[str],
        registered_model: str,
        model_version: str,
        alias: str | None = None,
        sender: str = "",
    ) -> None:
        """Record a list the service returned to ``sender``, for click-through per model
        version."""
        self.record_served_many(
            [
                ServedRecord(
                    recommendation_id,
                    user_id,
                    tuple(items),
                    registered_model,
                    model_version,
                    alias,
                    sender,
                )
            ]
        )

    def record_served_many(self, lists: Sequence[ServedRecord]) -> None:
        """Record several served lists in one transaction (an id already recorded is kept).

        Raises ``DataValidationError`` when a list cannot be stored as it is (a control
        character in an id, a value the table refuses): nothing of the batch is stored, and
        recording the others one by one stores them (``recsys_service.feedback`` does);
        ``DataSourceError`` when the database cannot be reached or has no tables.
        """
        if not lists:
            return
        for r in lists:
            for name in (
                "recommendation_id",
                "user_id",
                "registered_model",
                "model_version",
                "sender",
            ):
                value = str(getattr(r, name))
                try:
                    no_control(value)
                except ValueError as exc:
                    raise DataValidationError(
                        f"served list {r.recommendation_id!r}: {name} {exc}; nothing of the "
                        f"batch of {len(lists)} was stored"
                    ) from None
        now = int(time.time())
        rows = [
            dict(
                recommendation_id=r.recommendation_id,
                user_id=str(r.user_id),
                registered_model=r.registered_model,
                model_version=str(r.model_version),
                alias=r.alias,
                k=len(r.items),
                items=json.dumps([str(i) for i in r.items]),
                served_at=now,
                sender=r.sender,
            )
            for r in lists
        ]
        try:
            with self.engine.begin() as conn:
                conn.execute(self._served_stmt, rows)
        except OperationalError as exc:
            schema = missing_schema(self.url, exc)
            if schema is not None:
                raise schema from None  # permanent: retrying cannot create the tables
            raise unreachable(self.url, exc, "record served lists") from exc
        except (IntegrityError, SQLDataError, ValueError) as exc:
            # a row the table refuses (too long, a NUL the driver cannot send): permanent
            raise DataValidationError(
                f"the event store {safe_url(self.url)} refused a batch of {len(lists)} served "
                f"list(s) (first {lists[0].recommendation_id!r}): {first_line(exc)}; nothing "
                "of the batch was stored"
            ) from None
        except DBAPIError as exc:
            schema = missing_schema(self.url, exc)
            if schema is not None:
                raise schema from None
            raise DataSourceError(
                f"the event store {safe_url(self.url)} refused served lists: "
                f"{first_line(exc)}. Run `recsys db upgrade` if its tables are out of "
                "date"
            ) from None

    # -- reading ---------------------------------------------------------------------------

    def count(self) -> int:
        """Number of stored events."""
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(events)).scalar_one())
        except OperationalError as exc:
            raise unreachable(self.url, exc, "count events") from exc

    def click_through(self, registered_model: str | None = None) -> list[dict[str, Any]]:
        """Per model version: lists served, lists followed by at least one click or purchase,
        and their ratio (the click-through rate of served lists).

        An event counts for a list only when it was sent by the sender the list was served to
        (the same API key name; the empty sender for both without keys): a holder of an
        ``ingest`` key cannot move the click-through of lists served to another client by
        quoting their ``recommendation_id``. Events quoting another sender's list are stored
        (and collected for training) all the same; they only do not count here.
        """
        s, e = served_recommendations, events
        engaged = (
            select(e.c.recommendation_id, e.c.sender)
            .where(e.c.type.in_(("click", "purchase")))
            .where(e.c.recommendation_id.is_not(None))
            .distinct()
            .subquery()
        )
        stmt = (
            select(
                s.c.registered_model,
                s.c.model_version,
                func.count().label("served"),
                func.count(engaged.c.recommendation_id).label("engaged"),
            )
            .select_from(
                s.outerjoin(
                    engaged,
                    and_(
                        engaged.c.recommendation_id == s.c.recommendation_id,
                        engaged.c.sender == s.c.sender,
                    ),
                )
            )
            .group_by(s.c.registered_model, s.c.model_version)
            .order_by(s.c.registered_model, s.c.model_version)
        )
        if registered_model is not None:
            stmt = stmt.where(s.c.registered_model == registered_model)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(stmt).mappings().all()
        except DBAPIError as exc:
            schema = missing_schema(self.url, exc)
            if schema is not None:
                raise schema from None
            raise unreachable(self.url, exc, "read click-through") from exc
        return [dict(r, ctr=(r["engaged"] / r["served"]) if r["served"] else 0.0) for r in rows]


def _check(ev: Event, lo: float, hi: float, latest: float) -> tuple[str, str] | None:
    if ev.type == "rating":
        if ev.rating is None:
            return "rating", "a rating event needs a rating"
        if not math.isfinite(ev.rating):
            return "rating", f"rating {ev.rating!r} is not a finite number"
        if not lo <= ev.rating <= hi:
            return "rating", f"rating {ev.rating!r} is outside the rating scale [{lo!r}, {hi!r}]"
    elif ev.rating is not None:
        return "rating", f"a {ev.type} event carries no rating (got {ev.rating!r})"
    ts = _epoch(ev.timestamp)
    if ts is not None and ts > latest:
        return "timestamp", f"timestamp {ts} is in the future (latest accepted {int(latest)})"
    if ts is not None and ts < 0:
        return "timestamp", f"timestamp {ts} is before 1970"
    return None


def _epoch(value: datetime | int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:  # a naive time is read as UTC, like the canonical table
            from datetime import UTC

            value = value.replace(tzinfo=UTC)
        return int(value.timestamp())
    return int(value)


def _row(ev: Event, received_at: int, sender: str = "") -> dict[str, Any]:
    ts = _epoch(ev.timestamp)
    return dict(
        sender=sender,
        event_id=ev.event_id,
        user_id=ev.user_id,
        item_id=ev.item_id,
        rating=ev.rating,
        type=ev.type,
        timestamp=received_at if ts is None else ts,
        recommendation_id=ev.recommendation_id,
        received_at=received_at,
    )


_CONTENT = ("user_id", "item_id", "type", "rating", "recommendation_id")


def _content(ev: Event) -> tuple[Any, ...]:
    """What must match for a re-sent event to be the same event (a timestamp only when the
    sender gave one: without it, the store's clock at each sending stands in)."""
    return (*(getattr(ev, f) for f in _CONTENT), _epoch(ev.timestamp))


def _conflict(index: int, ev: Event, what: str) -> EventConflictError:
    problem = EventProblem(index, ev.event_id, "event_id", what)
    return EventConflictError(
        f"event {index} (event_id {ev.event_id!r}): {what}; nothing was stored. Re-send an "
        "event with the content it had, or give a new event a new event_id",
        report=[problem],
    )


def _check_repeats(evs: Sequence[Event]) -> None:
    """An id repeated in one batch with other content is a conflict."""
    first: dict[str, tuple[Any, ...]] = {}
    for index, ev in enumerate(evs):
        content = _content(ev)
        if first.setdefault(ev.event_id, content) != content:
            raise _conflict(index, ev, "the batch repeats this event_id with other content")


def _check_duplicates(conn, evs: Sequence[Event], stored: set[str], sender: str) -> None:
    """The events not stored are duplicates; one whose stored row differs is a conflict."""
    dups = {ev.event_id for ev in evs} - stored
    rows = (
        conn.execute(select(events).where(events.c.sender == sender, events.c.event_id.in_(dups)))
        .mappings()
        .all()
    )
    held = {r["event_id"]: r for r in rows}
    for index, ev in enumerate(evs):
        row = held.get(ev.event_id)
        if row is None:
            continue
        ts = _epoch(ev.timestamp)
        same = all(row[f] == getattr(ev, f) for f in _CONTENT) and (
            ts is None or row["timestamp"] == ts
        )
        if not same:
            raise _conflict(
                index, ev, "this sender already stored this event_id with other content"
            )


def _check_forgotten(conn, evs: Sequence[Event]) -> None:
    """Refuse the batch when an event's user was forgotten (``recsys forget``)."""
    from recsys_core.events.tombstones import candidate_keys

    keys_of = {u: candidate_keys(u) for u in {ev.user_id for ev in evs}}
    wanted = set().union(*keys_of.values())
    found = set(
        conn.execute(
            select(tombstones.c.user_key).where(tombstones.c.user_key.in_(wanted))
        ).scalars()
    )
    if not found:
        return
    problems = [
        EventProblem(
            i,
            ev.event_id,
            "user_id",
            f"user {ev.user_id!r} was forgotten (recsys forget): their events "
            "are not stored; drop them from the batch",
        )
        for i, ev in enumerate(evs)
        if keys_of[ev.user_id] & found
    ]
    raise DataValidationError(
        f"{len(problems)} event(s) of forgotten users in the batch, nothing was stored; first: "
        f"{problems[0]}",
        report=problems,
    )
