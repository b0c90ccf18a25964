"""Event tables for the collection tests: an event store of each kind filled with given events,
and a plain table in which an event id repeats."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from recsys_core.events import EventStore


@pytest.fixture
def fill_events() -> Callable[[str, list[dict[str, Any]]], str]:
    """``fill(url, events)``: migrate the event store at ``url``, append ``events``; the URL."""

    def fill(url: str, events: list[dict[str, Any]]) -> str:
        store = EventStore(url)
        try:
            store.upgrade()
            store.append(events)
        finally:
            store.close()
        return url

    return fill


@pytest.fixture
def repeated_ids(sqlite_url) -> str:
    """A plain table ``clicks`` (not an event store) storing event ``a`` twice; its source URL."""
    engine = create_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE clicks (event_id TEXT, user_id TEXT, item_id TEXT, "
                "type TEXT, timestamp INTEGER)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO clicks VALUES ('a', 'u1', 'i1', 'click', 10), "
                "('a', 'u1', 'i1', 'click', 10), ('b', 'u2', 'i1', 'view', 11)"
            )
        )
    engine.dispose()
    return f"{sqlite_url}?table=clicks"
