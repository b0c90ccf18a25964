from __future__ import annotations

import pytest

from recsys_core.data import collect
from recsys_core.data.database import Watermark, is_database_source, load_database
from recsys_core.events import EventStore
from recsys_core.exceptions import ConfigError, DataError, DataSourceError


def ev(i, **kw):
    kinds = ("rating", "click", "view", "purchase")
    kind = kinds[i % 4]
    base = {
        "event_id": f"e{i:03d}",
        "user_id": f"u{i % 3}",
        "item_id": f"i{i % 5}",
        "type": kind,
        "rating": 4.0 if kind == "rating" else None,
        "timestamp": 1_700_000_000 + i // 2,
    }  # two events per second: the id breaks ties
    return {**base, **kw}


@pytest.fixture
def filled(store_url, fill_events):
    return fill_events(store_url, [ev(i) for i in range(40)])


def test_the_events_table_is_read_with_weights_for_implicit_types(filled):
    got = load_database(f"{filled}?table=events", chunk_rows=7)  # several chunks
    frame = got.interactions
    assert len(frame) == 40
    assert list(frame.columns) == ["user", "item", "rating", "timestamp"]
    assert got.extra["event_types"] == {"click": 10, "purchase": 10, "rating": 10, "view": 10}
    by_type = dict(zip([ev(i)["type"] for i in range(40)], frame["rating"], strict=True))
    assert by_type == {"rating": 4.0, "click": 3.0, "view": 1.0, "purchase": 5.0}
    assert got.extra["watermark"] == "1700000019:e039"
    assert "table=events" in got.source


def test_types_and_weights_are_configurable(filled):
    ratings = load_database(f"{filled}?types=rating")
    assert len(ratings.interactions) == 10 and set(ratings.interactions["rating"]) == {4.0}
    implicit = load_database(f"{filled}?types=click,purchase&weights=click:2,purchase:4")
    assert sorted(set(implicit.interactions["rating"])) == [2.0, 4.0]
    with pytest.raises(ConfigError, match="bad weight"):
        load_database(f"{filled}?weights=click:-1")
    with pytest.raises(ConfigError, match="unknown event type"):
        load_database(f"{filled}?types=like")


def test_since_reads_only_the_events_after_the_watermark(filled):
    first = load_database(filled)
    store = EventStore(filled)
    # the same second as the watermark with a later id, and a later second
    store.append([ev(40, timestamp=1_700_000_019), ev(41, timestamp=1_700_000_030)])
    store.close()
    newer = load_database(filled, since=first.extra["watermark"])
    assert len(newer.interactions) == 2
    assert newer.extra["watermark"] == "1700000030:e041"
    assert newer.extra["since"] == "1700000019:e039"
    same = load_database(f"{filled}?since={newer.extra['watermark']}")
    assert len(same.interactions) == 0 and same.extra["watermark"] == "1700000030:e041"


def test_a_query_with_a_column_mapping(filled):
    query = "SELECT user_id AS who, item_id AS what, timestamp AS t FROM events WHERE type='view'"
    got = load_database(f"{filled}?query={query}", "user=who,item=what,timestamp=t")
    assert len(got.interactions) == 10
    assert set(got.interactions["rating"]) == {1.0}  # no rating column: implicit positives
    assert got.extra["watermark"] == str(got.interactions["timestamp"].max())


def test_a_table_without_the_mapped_columns_is_a_clear_error(filled):
    with pytest.raises(DataError, match=r"lacks the mapped column\(s\) 'uid' \(user\)"):
        load_database(f"{filled}?table=events", "user=uid")
    with pytest.raises(DataSourceError, match="has no table 'clicks'"):
        load_database(f"{filled}?table=clicks")


def test_repeated_event_ids_in_a_plain_table_are_dropped_and_counted(repeated_ids):
    got = load_database(repeated_ids)
    assert len(got.interactions) == 2
    assert got.extra["event_ids_removed"] == 1
    assert got.extra["watermark"] == "11:b"


def test_collect_dispatches_database_urls(filled):
    got = collect(filled)
    assert len(got.interactions) == 15  # 3 users x 5 items: repeated pairs resolved
    assert got.extra["duplicates_removed"] == 25
    assert is_database_source("postgresql+psycopg2://h/db") and not is_database_source("x.csv")


def test_a_password_in_the_source_is_refused():
    with pytest.raises(ConfigError, match="carries a password") as info:
        load_database("postgresql://reader:hunter22@127.0.0.1/events?table=events")
    assert "hunter22" not in str(info.value)


def test_a_database_that_is_down_names_the_url_and_keeps_the_driver_error(monkeypatch):
    from sqlalchemy.exc import OperationalError

    monkeypatch.setenv("PGPASSWORD", "hunter22")
    with pytest.raises(
        DataSourceError,
        match=r"cannot reach the database "
        r"postgresql://reader@127.0.0.1:1/events",
    ) as info:
        load_database("postgresql://reader@127.0.0.1:1/events?table=events")
    assert "hunter22" not in str(info.value)
    # the cause the task retry policy reads: a connection error is transient (test_retries.py)
    assert isinstance(info.value.__cause__, OperationalError)


def test_watermark_text_round_trips():
    assert Watermark.parse("12:e-1") == Watermark(12, event_id="e-1")
    assert str(Watermark.parse("12")) == "12"
    # the sender: a key name holds no ":" or "@", the id may hold both
    assert Watermark.parse("12@web.app:e:1@x") == Watermark(12, "web.app", "e:1@x")
    assert str(Watermark(12, "web", "e:1")) == "12@web:e:1"
    assert str(Watermark(12, "", "e")) == "12:e"
    for bad in ("yesterday", "12@:e", "12@we b:e", "x@web:e"):
        with pytest.raises(ConfigError, match="bad watermark"):
            Watermark.parse(bad)


def test_events_are_keyed_by_sender_and_id(store_url, fill_events):
    """The same event id from two senders is two events; the watermark carries the sender,
    so a collection resumes after the exact (timestamp, sender, id) it stopped at."""
    url = fill_events(store_url, [])
    store = EventStore(url)
    t = 1_700_000_000
    store.append([ev(0, event_id="e1", timestamp=t), ev(1, event_id="e2", timestamp=t)], "web")
    store.append([ev(2, event_id="e1", timestamp=t), ev(3, event_id="e0", timestamp=t)], "app")
    first = load_database(url)
    assert len(first.interactions) == 4 and first.extra["event_ids_removed"] == 0
    # (timestamp, sender, id) order: app/e0, app/e1, web/e1, web/e2
    assert first.extra["watermark"] == f"{t}@web:e2"
    # in the same second: a sender after the watermark's, one before it, and its own
    store.append([ev(4, event_id="e0", timestamp=t)], "zeta")
    store.append([ev(5, event_id="e9", timestamp=t)], "app")
    store.append([ev(6, event_id="e3", timestamp=t)], "web")
    store.close()
    newer = load_database(url, since=first.extra["watermark"])
    assert len(newer.interactions) == 2  # zeta/e0 and web/e3; not app/e9 (before the mark)
    assert newer.extra["watermark"] == f"{t}@zeta:e0"
    resumed = load_database(url, since=f"{t}@app:e1")
    assert len(resumed.interactions) == 5  # app/e9, web/e1, web/e2, web/e3, zeta/e0
