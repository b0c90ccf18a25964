from __future__ import annotations

import threading
import time

import pytest

from recsys_core.events import EventStore
from recsys_core.exceptions import DataSourceError, DataValidationError
from recsys_core.validation.rules import ValidationRules


def ev(i, **kw):
    base = {
        "event_id": f"e{i}",
        "user_id": f"u{i % 3}",
        "item_id": f"i{i % 5}",
        "type": "click",
        "timestamp": 1_700_000_000 + i,
    }
    return {**base, **kw}


@pytest.fixture
def store(store_url):
    s = EventStore(store_url)
    s.upgrade()
    yield s
    s.close()


def test_append_stores_and_is_idempotent_on_event_id(store):
    batch = [
        ev(0, type="rating", rating=4.5),
        ev(1),
        ev(2, type="purchase", recommendation_id="r1"),
    ]
    first = store.append(batch)
    assert (first.received, first.stored, first.duplicates) == (3, 3, 0)
    again = store.append(batch)  # a re-sent batch changes nothing
    assert (again.received, again.stored, again.duplicates) == (3, 0, 3)
    repeated = store.append([ev(3), ev(3)])  # a repeat inside one batch is stored once
    assert (repeated.stored, repeated.duplicates) == (1, 1)
    assert store.count() == 4


def test_a_bad_event_refuses_the_whole_batch_and_names_the_field(store):
    batch = [ev(0), ev(1, type="rating", rating=9.0), ev(2, user_id=""), ev(3, type="zap")]
    with pytest.raises(
        DataValidationError, match=r"event 1 \(event_id 'e1'\): field 'rating'"
    ) as info:
        store.append(batch)
    fields = [(p.index, p.field) for p in info.value.report]
    assert fields == [(1, "rating"), (2, "user_id"), (3, "type")]
    assert "at least 1 character" in info.value.report[1].message
    assert store.count() == 0  # nothing stored, not even the good event 0


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"type": "rating"}, "rating"),  # a rating event without its rating
        ({"type": "rating", "rating": float("nan")}, "rating"),
        ({"type": "rating", "rating": 0.5}, "rating"),  # below the scale
        ({"type": "click", "rating": 3.0}, "rating"),  # an implicit event with a rating
        ({"timestamp": int(time.time()) + 3600}, "timestamp"),  # in the future
        ({"item_id": None}, "item_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_each_rule_of_the_validation_stage(sqlite_url, bad, field):
    store = EventStore(sqlite_url)
    store.upgrade()
    with pytest.raises(DataValidationError) as info:
        store.append([ev(0, **bad)])
    assert info.value.report[0].field == field


def test_the_rating_scale_comes_from_the_rules(sqlite_url):
    store = EventStore(sqlite_url, rules=ValidationRules(rating_min=0, rating_max=10))
    store.upgrade()
    assert store.append([ev(0, type="rating", rating=9.0)]).stored == 1


def test_ids_may_be_numbers_and_timestamps_iso_or_absent(sqlite_url):
    store = EventStore(sqlite_url)
    store.upgrade()
    before = int(time.time())
    store.append(
        [
            {"event_id": 7, "user_id": 1, "item_id": 2, "type": "view"},
            ev(8, timestamp="2024-01-02T03:04:05Z"),
        ]
    )
    with store.engine.connect() as conn:
        rows = dict(
            conn.exec_driver_sql("SELECT event_id, timestamp FROM events ORDER BY event_id").all()
        )
    assert rows["7"] >= before  # no timestamp: the time it was received
    assert rows["e8"] == 1704164645


def test_concurrent_appends_lose_nothing_and_store_each_id_once(store):
    batches = [[ev(b * 10 + i) for i in range(10)] for b in range(20)]
    results, errors = [], []

    def send(batch):
        try:
            results.append(store.append(batch))
            results.append(store.append(batch))  # retried by the sender
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.stored for r in results) == 200 == store.count()
    assert sum(r.duplicates for r in results) == 200


def test_a_database_that_is_down_is_a_data_source_error_without_the_password():
    store = EventStore("postgresql://svc:hunter22@127.0.0.1:1/events")
    with pytest.raises(DataSourceError, match="cannot reach the database") as info:
        store.append([ev(0)])
    assert "hunter22" not in str(info.value)
    assert info.value.__cause__ is not None  # the driver error: the retry policy reads it


def test_missing_tables_say_how_to_create_them(sqlite_url):
    store = EventStore(sqlite_url)
    with pytest.raises(DataSourceError, match="recsys db upgrade"):
        store.append([ev(0)])
    # a database that answers is not called unreachable because a table is missing
    with pytest.raises(DataSourceError, match=r"has no tables yet .*recsys db upgrade") as info:
        store.record_served(
            "r1", user_id="u0", items=["i1"], registered_model="recsys", model_version="1"
        )
    assert "cannot reach" not in str(info.value)


def test_click_through_per_model_version(store):
    for rid, version in (("r1", "1"), ("r2", "1"), ("r3", "2")):
        store.record_served(
            rid,
            user_id="u0",
            items=["i1", "i2"],
            registered_model="recsys",
            model_version=version,
            alias="champion",
        )
    store.append(
        [
            ev(0, recommendation_id="r1"),
            ev(1, recommendation_id="r1"),
            ev(2, type="view", recommendation_id="r2"),
            ev(3, type="purchase", recommendation_id="r3"),
        ]
    )
    rows = {r["model_version"]: r for r in store.click_through("recsys")}
    assert (rows["1"]["served"], rows["1"]["engaged"], rows["1"]["ctr"]) == (2, 1, 0.5)
    assert (rows["2"]["served"], rows["2"]["engaged"], rows["2"]["ctr"]) == (1, 1, 1.0)


def test_click_through_counts_only_the_events_of_the_sender_the_list_was_served_to(store):
    """A holder of an ingest key quoting another client's recommendation_id stores its
    event, but moves nobody's click-through; the list's own sender does."""
    for rid in ("r1", "r2", "r3", "r4"):
        store.record_served(
            rid,
            user_id="u0",
            items=["i1"],
            registered_model="recsys",
            model_version="1",
            sender="web",
        )
    forged = [ev(n, type="purchase", recommendation_id=f"r{n}") for n in range(1, 5)]
    assert store.append(forged, sender="intruder").stored == 4
    assert store.append([ev(9, recommendation_id="r2")]).stored == 1  # no key: no sender
    assert store.click_through("recsys")[0]["engaged"] == 0
    assert store.append([ev(1, recommendation_id="r1")], sender="web").stored == 1
    assert store.click_through("recsys")[0]["engaged"] == 1
    with store.engine.connect() as conn:
        senders = conn.exec_driver_sql("SELECT DISTINCT sender FROM served_recommendations")
        assert [r[0] for r in senders] == ["web"]


def test_served_lists_recorded_together_keep_an_id_once(store):
    from recsys_core.events.store import ServedRecord

    store.record_served(
        "r1", user_id="u0", items=["i1"], registered_model="recsys", model_version="1"
    )
    lists = [
        ServedRecord(f"r{n}", f"u{n}", ("i1", "i2"), "recsys", "1", "champion") for n in range(1, 5)
    ]
    store.record_served_many(lists)
    store.record_served_many([])
    store.append([ev(0, recommendation_id="r4")])
    assert store.click_through("recsys") == [
        {"registered_model": "recsys", "model_version": "1", "served": 4, "engaged": 1, "ctr": 0.25}
    ]


def test_a_driver_error_without_a_message_is_named_by_its_class():
    """psycopg2 raises some errors with an empty message (a broken server connection); the
    store's message names the class instead of failing on the empty text."""
    import psycopg2
    from sqlalchemy.exc import DBAPIError

    from recsys_core.events.engine import first_line

    assert first_line(DBAPIError("INSERT", {}, psycopg2.DatabaseError(""))) == "DatabaseError"
    assert first_line(DBAPIError("INSERT", {}, psycopg2.DatabaseError("a\nb"))) == "a"
