"""Idempotency per sender: (sender, event_id) is an event's identity; the same id with other
content from the same sender is a conflict with nothing stored; a forgotten user's events are
refused; a store of revision 0003 keeps its rows through the migration to (sender, event_id)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, text

from recsys_core.events import EventStore
from recsys_core.events.migrate import head, upgrade
from recsys_core.events.tables import events
from recsys_core.exceptions import DataValidationError, EventConflictError
from recsys_core.privacy.forget import forget_user


def ev(i, **kw):
    return {"event_id": f"e{i}", "user_id": "u1", "item_id": f"i{i}", "type": "click", **kw}


@pytest.fixture
def store(store_url):
    s = EventStore(store_url)
    s.upgrade()
    yield s
    s.close()


def _rows(store):
    with store.engine.connect() as conn:
        return sorted(
            tuple(r)
            for r in conn.execute(select(events.c.sender, events.c.event_id, events.c.item_id))
        )


def test_each_sender_has_its_own_event_ids(store):
    assert store.append([ev(1), ev(2)], sender="web").stored == 2
    # another sender's e1 is another event: it cannot squat, nor be squatted
    assert store.append([ev(1, item_id="other")], sender="mobile").stored == 1
    again = store.append([ev(1), ev(2)], sender="web")  # re-sent: the same content
    assert (again.stored, again.duplicates) == (0, 2)
    assert _rows(store) == [("mobile", "e1", "other"), ("web", "e1", "i1"), ("web", "e2", "i2")]


def test_an_id_reused_with_other_content_is_a_conflict_and_stores_nothing(store):
    store.append([ev(1, timestamp=1_700_000_000)], sender="web")
    with pytest.raises(
        EventConflictError,
        match=r"event 1 \(event_id 'e1'\): this sender "
        r"already stored this event_id",
    ) as info:
        store.append([ev(5), ev(1, timestamp=1_700_000_000, type="purchase")], sender="web")
    assert info.value.report[0].field == "event_id" and info.value.report[0].index == 1
    with pytest.raises(EventConflictError, match="already stored"):
        store.append([ev(1, timestamp=1_700_000_001)], sender="web")  # another time
    assert _rows(store) == [("web", "e1", "i1")]  # e5 was not stored either
    # the same event re-sent, with or without its timestamp, is a duplicate
    assert store.append([ev(1, timestamp=1_700_000_000)], sender="web").duplicates == 1
    assert store.append([ev(1)], sender="web").duplicates == 1


def test_a_batch_repeating_an_id_with_other_content_is_a_conflict(store):
    with pytest.raises(EventConflictError, match="repeats this event_id with other content"):
        store.append([ev(1), ev(2), ev(1, item_id="x")], sender="web")
    assert store.count() == 0
    assert store.append([ev(1), ev(1)], sender="web").duplicates == 1  # the same: a repeat


def test_concurrent_senders_of_one_id_with_other_content_store_one(store):
    results: list[str] = []

    def send(item):
        try:
            store.append([ev(9, item_id=item)], sender="web")
            results.append("stored")
        except EventConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=send, args=(f"i{n}",)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 5 + ["stored"]
    assert store.count() == 1


def test_events_of_a_forgotten_user_are_refused_with_a_message(store, tmp_path, monkeypatch):
    monkeypatch.delenv("RECSYS_SERVE_URL", raising=False)
    store.append([ev(1, user_id="u10")], sender="web")
    forget_user("u10", url=store.url, data_dir=tmp_path / "data", tracking=False)
    with pytest.raises(DataValidationError, match=r"user 'u10' was forgotten") as info:
        store.append([ev(2, user_id="u11"), ev(3, user_id="u10")], sender="web")
    assert [(p.index, p.field) for p in info.value.report] == [(1, "user_id")]
    assert store.count() == 0  # forget removed e1; nothing of the refused batch was stored
    assert store.append([ev(2, user_id="u11")], sender="web").stored == 1


def test_a_store_of_revision_0003_keeps_its_events_with_the_empty_sender(store_url):
    upgrade(store_url, "0003")
    s = EventStore(store_url)
    with s.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO events (event_id, user_id, item_id, rating, type, "
                "timestamp, recommendation_id, received_at) VALUES "
                "('old', 'u1', 'i1', NULL, 'click', 1, NULL, 1)"
            )
        )
    assert upgrade(store_url) == head()
    assert _rows(s) == [("", "old", "i1")]
    assert s.append([ev(1), {**ev(1), "event_id": "old"}], sender="web").stored == 2
    assert s.append([{**ev(1), "event_id": "old", "item_id": "i1"}]).duplicates == 1
    s.close()
