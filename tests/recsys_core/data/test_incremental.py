from __future__ import annotations

import json
import shutil
import threading

import pandas as pd
import pytest

from recsys_core.data import incremental, snapshot
from recsys_core.events import EventStore
from recsys_core.exceptions import ConfigError, DataError

T0 = 1_700_000_000


def ev(i, **kw):
    base = {
        "event_id": f"e{i:04d}",
        "user_id": f"u{i % 7}",
        "item_id": f"i{i % 11}",
        "type": "rating",
        "rating": float(1 + i % 5),
        "timestamp": T0 + i,
    }
    return {**base, **kw}


def append(url, events):
    store = EventStore(url)
    try:
        return store.append(events)
    finally:
        store.close()


@pytest.fixture
def events_url(store_url, fill_events):
    return fill_events(store_url, [ev(i) for i in range(60)])


def frame_of(snap):
    frame = snapshot.read(snap)[0]
    return frame.sort_values(["user", "item"]).reset_index(drop=True)


def test_since_last_reads_only_new_rows_and_merges_them_like_a_full_read(events_url, tmp_path):
    root = tmp_path / "snapshots"
    first = incremental.collect_snapshot(events_url, root, since="last")
    assert first.collection["mode"] == "full" and first.collection["rows_read"] == 60
    assert first.watermark == f"{T0 + 59}:e0059"
    lineage = incremental.last_collection(root, events_url)
    assert (lineage.digest, lineage.watermark) == (first.digest, first.watermark)
    assert (
        json.loads((root / first.digest[:16] / snapshot.META_FILE).read_text())["watermark"]
        == first.watermark
    )

    # a re-rated pair (u0, i0: first rated by e0000), a new user, a new item, clicks
    append(
        events_url,
        [
            ev(60, user_id="u0", item_id="i0", rating=5.0),
            ev(61, user_id="newcomer", item_id="i3"),
            ev(62, user_id="u1", item_id="brand-new", type="click", rating=None),
            ev(63, user_id="newcomer", item_id="brand-new", type="purchase", rating=None),
            # a view then a click of a pair rated before (by e0016): one row
            ev(64, user_id="u2", item_id="i5", type="view", rating=None),
            ev(65, user_id="u2", item_id="i5", type="click", rating=None),
        ],
    )
    second = incremental.collect_snapshot(events_url, root, since="last")
    how = second.collection
    assert how["mode"] == "incremental" and (how["rows_read"], how["rows"]) == (6, 5)
    assert how["since"] == first.watermark and how["base_digest"] == first.digest
    assert (how["new_users"], how["events_new_users"]) == (1, 2)
    assert (how["new_items"], how["events_new_items"]) == (1, 2)
    assert how["pairs_updated"] == 2
    assert second.digest != first.digest and second.watermark == f"{T0 + 65}:e0065"
    merged = frame_of(second)
    pair = merged[(merged["user"] == "u0") & (merged["item"] == "i0")]
    assert pair["rating"].tolist() == [5.0]  # the latest rating of the pair
    clicked = merged[(merged["user"] == "u2") & (merged["item"] == "i5")]
    assert clicked["rating"].tolist() == [3.0]  # the click's weight, the latest event
    # the same table as reading everything at once
    full = incremental.collect_snapshot(events_url, tmp_path / "elsewhere")
    assert full.collection["mode"] == "full"
    pd.testing.assert_frame_equal(merged, frame_of(full))

    # nothing new: the same content, the same watermark
    third = incremental.collect_snapshot(events_url, root, since="last")
    assert third.collection["rows_read"] == 0
    assert (third.digest, third.watermark) == (second.digest, second.watermark)


def test_a_missing_previous_snapshot_says_to_run_once_without_since(events_url, tmp_path):
    root = tmp_path / "snapshots"
    first = incremental.collect_snapshot(events_url, root, since="last")
    shutil.rmtree(first.path)
    with pytest.raises(DataError, match="Run once without since"):
        incremental.collect_snapshot(events_url, root, since="last")
    # a full read starts a new history
    again = incremental.collect_snapshot(events_url, root)
    assert incremental.last_collection(root, events_url).digest == again.digest
    assert (
        incremental.collect_snapshot(events_url, root, since="last").collection["mode"]
        == "incremental"
    )


def test_an_altered_previous_snapshot_is_refused(sqlite_url, fill_events, tmp_path):
    fill_events(sqlite_url, [ev(i) for i in range(30)])
    first = incremental.collect_snapshot(sqlite_url, tmp_path, since="last")
    frame = snapshot.read(first)[0]
    frame.iloc[:3].to_parquet(first.interactions_path, index=False)
    with pytest.raises(DataError, match="altered"):
        incremental.collect_snapshot(sqlite_url, tmp_path, since="last")


def test_an_explicit_watermark_reads_after_it_and_leaves_the_history_alone(
    sqlite_url, fill_events, tmp_path
):
    fill_events(sqlite_url, [ev(i) for i in range(30)])
    first = incremental.collect_snapshot(sqlite_url, tmp_path, since="last")
    part = incremental.collect_snapshot(sqlite_url, tmp_path, since=f"{T0 + 19}:e0019")
    assert part.collection["mode"] == "since" and part.n_rows == 10
    assert incremental.last_collection(tmp_path, sqlite_url).digest == first.digest
    with pytest.raises(ConfigError, match="TIMESTAMP"):
        incremental.collect_snapshot(sqlite_url, tmp_path, since="yesterday")


def test_since_needs_a_database_source(tmp_path):
    with pytest.raises(ConfigError, match="needs a database source"):
        incremental.collect_snapshot("synthetic:tiny", tmp_path, since="last")
    plain = incremental.collect_snapshot("synthetic:tiny", tmp_path)
    assert plain.watermark is None and plain.collection["mode"] == "full"
    assert not list(tmp_path.glob("lineage-*.json"))


def test_repeated_event_ids_of_a_table_are_dropped_and_counted(repeated_ids, tmp_path):
    snap = incremental.collect_snapshot(repeated_ids, tmp_path / "s", since="last")
    assert snap.collection["event_ids_removed"] == 1 and snap.n_rows == 2


def test_two_collections_at_once_skip_no_row(events_url, tmp_path):
    root = tmp_path / "snapshots"
    incremental.collect_snapshot(events_url, root, since="last")
    append(events_url, [ev(i) for i in range(60, 90)])
    results, errors = [], []

    def run():
        try:
            results.append(incremental.collect_snapshot(events_url, root, since="last"))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 2
    assert {r.digest for r in results} == {results[0].digest}  # the same rows, the same merge
    append(events_url, [ev(i) for i in range(90, 100)])
    last = incremental.collect_snapshot(events_url, root, since="last")
    full = incremental.collect_snapshot(events_url, tmp_path / "full")
    pd.testing.assert_frame_equal(frame_of(last), frame_of(full))
