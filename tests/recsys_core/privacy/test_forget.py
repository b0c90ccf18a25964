"""The right to be forgotten, in the library: event store (SQLite and PostgreSQL), tombstones at
collection whatever the source, files under the data folder, and the audit."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlalchemy import select

from recsys_core.data import collect, snapshot
from recsys_core.events import EventStore
from recsys_core.events.tables import events, forget_audit, tombstones
from recsys_core.exceptions import DataSourceError
from recsys_core.privacy import forget
from recsys_core.privacy.forget import drop_tombstoned, forget_user, user_key


def ev(i, user):
    return {
        "event_id": f"e{i}",
        "user_id": user,
        "item_id": f"i{i % 4}",
        "type": "rating",
        "rating": 1.0 + i % 5,
        "timestamp": 1_700_000_000 + i,
    }


@pytest.fixture
def store(store_url, monkeypatch):
    monkeypatch.delenv(forget.KEY_ENV, raising=False)
    monkeypatch.setenv("RECSYS_EVENTS_URL", store_url)
    monkeypatch.setenv("RECSYS_ACTOR", "dpo@example.org")
    monkeypatch.delenv("RECSYS_SERVE_URL", raising=False)
    s = EventStore(store_url)
    s.upgrade()
    s.append([ev(i, f"u{i % 3}") for i in range(30)])
    s.record_served("r1", user_id="u1", items=["i1"], registered_model="recsys", model_version="1")
    yield s
    s.close()


def _rows(s: EventStore, table):
    with s.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table)).mappings()]


def test_user_key_is_keyed_when_a_key_is_set(monkeypatch):
    monkeypatch.delenv(forget.KEY_ENV, raising=False)
    plain = user_key("alice@example.org")
    assert (
        plain.startswith("s1:") and "alice" not in plain and plain == user_key("alice@example.org")
    )
    plain = user_key("42")
    monkeypatch.setenv(forget.KEY_ENV, "k1")
    keyed = user_key("42")
    assert keyed.startswith("h1:") and keyed != plain
    monkeypatch.setenv(forget.KEY_ENV, "k2")
    assert user_key("42") != keyed
    # a tombstone written before the key was set still matches
    assert forget.tombstoned(["42", "43"], {plain}) == {"42"}


def test_forget_removes_the_events_and_tombstones_the_user(store, tmp_path):
    report = forget_user("u1", reason="GDPR art. 17 request #7", data_dir=tmp_path, tracking=False)
    assert report.outcome == "done"
    assert report.event_store == {"tombstone": "new", "events": 10, "served_recommendations": 1}
    left = _rows(store, events)
    assert len(left) == 20 and {r["user_id"] for r in left} == {"u0", "u2"}
    stones = _rows(store, tombstones)
    assert [s["user_key"] for s in stones] == [user_key("u1")]
    audit = _rows(store, forget_audit)
    assert len(audit) == 1
    assert audit[0]["actor"] == "dpo@example.org" and audit[0]["outcome"] == "done"
    assert audit[0]["reason"] == "GDPR art. 17 request #7"
    assert json.loads(audit[0]["detail"])["event_store"]["events"] == 10
    assert "u1" not in json.dumps({k: v for k, v in audit[0].items() if k != "reason"})


def test_forgetting_twice_or_an_unknown_user_is_a_no_op_with_an_audit_record(store, tmp_path):
    forget_user("u1", data_dir=tmp_path, tracking=False)
    again = forget_user("u1", data_dir=tmp_path, tracking=False)
    assert again.outcome == "nothing-found"
    assert again.event_store == {"tombstone": "existing", "events": 0, "served_recommendations": 0}
    unknown = forget_user("nobody", data_dir=tmp_path, tracking=False)
    assert unknown.outcome == "nothing-found"
    assert [a["outcome"] for a in _rows(store, forget_audit)] == [
        "done",
        "nothing-found",
        "nothing-found",
    ]
    assert len(_rows(store, tombstones)) == 2  # u1 once, and nobody (may appear later)
    assert store.count() == 20


def test_an_unreachable_store_names_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_EVENTS_URL", "postgresql://recsys:secret@127.0.0.1:9/recsys_events")
    with pytest.raises(DataSourceError, match="RECSYS_EVENTS_URL") as err:
        forget_user("u1", data_dir=tmp_path, tracking=False)
    assert "secret" not in str(err.value)


def test_a_store_without_the_tables_says_how_to_create_them(sqlite_url, monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_EVENTS_URL", sqlite_url)
    EventStore(sqlite_url).engine.connect().close()
    with pytest.raises(DataSourceError, match="recsys db upgrade"):
        forget_user("u1", data_dir=tmp_path, tracking=False)


def test_every_collection_drops_tombstoned_users(store, tmp_path, store_url):
    forget_user("u1", data_dir=tmp_path, tracking=False)
    # from the event store itself (a database source)
    got = collect(f"{store_url}?table=events")
    assert set(got.interactions["user"]) == {"u0", "u2"}
    # from a file that still holds the user
    path = tmp_path / "ratings.csv"
    pd.DataFrame({"user": ["u1", "u1", "u5"], "item": ["a", "b", "a"], "rating": [4, 5, 3]}).to_csv(
        path, index=False
    )
    col = collect(str(path))
    assert col.interactions["user"].tolist() == ["u5"]
    assert col.extra["tombstoned_removed"] == 2
    snap = snapshot.write(col, tmp_path / "snapshots")
    assert snap.tombstoned_removed == 2
    # synthetic data: its user ids are "1", "2", ...
    forget_user("3", data_dir=tmp_path, tracking=False)
    syn = collect("synthetic:tiny")
    assert "3" not in set(syn.interactions["user"]) and syn.extra["tombstoned_removed"] > 0


def test_no_event_store_no_tombstone(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_EVENTS_URL", f"sqlite:///{tmp_path / 'absent.db'}")
    frame = pd.DataFrame({"user": ["a"], "item": ["b"], "rating": [1.0], "timestamp": [0]})
    assert drop_tombstoned(frame)[1] == 0
    assert not (tmp_path / "absent.db").exists()  # looking did not create it


def test_collection_stops_when_the_tombstones_cannot_be_read(monkeypatch):
    monkeypatch.setenv("RECSYS_EVENTS_URL", "postgresql://recsys@127.0.0.1:9/recsys_events")
    frame = pd.DataFrame({"user": ["a"], "item": ["b"], "rating": [1.0], "timestamp": [0]})
    with pytest.raises(DataSourceError, match="forgotten user back"):
        drop_tombstoned(frame)


def test_snapshots_and_tables_under_the_data_folder_are_rewritten(store, tmp_path):
    data_dir = tmp_path / "data"
    col = collect("synthetic:tiny")  # before the user is forgotten
    old = snapshot.write(col, data_dir / "snapshots")
    victim = col.interactions["user"].iloc[0]
    quarantine = data_dir / "quarantine" / old.digest[:16] / "quarantined.parquet"
    quarantine.parent.mkdir(parents=True)
    col.interactions.head(6).to_parquet(quarantine)
    n_q = int((col.interactions.head(6)["user"] == victim).sum())
    untouched = snapshot.write(
        collect(str(_without(col, victim, tmp_path))), data_dir / "snapshots"
    )
    report = forget_user(victim, data_dir=data_dir, tracking=False)
    files = report.files
    assert list(files["snapshots"]) == [old.digest]
    new = snapshot.load_meta(data_dir / "snapshots" / files["snapshots"][old.digest][:16])
    frame, _ = snapshot.read(new)  # a consistent snapshot under its new digest
    assert victim not in set(frame["user"])
    assert len(frame) == len(col.interactions) - int((col.interactions["user"] == victim).sum())
    assert not (data_dir / "snapshots" / old.digest[:16]).exists()
    assert snapshot.read(untouched)[0]["user"].nunique() > 0  # kept as it was
    assert files["tables"] == {str(quarantine.relative_to(data_dir)): n_q}
    assert victim not in set(pd.read_parquet(quarantine)["user"])
    audit = _rows(store, forget_audit)[-1]
    assert json.loads(audit["detail"])["files"]["snapshots"][old.digest] == new.digest


def _without(col, user, tmp_path):
    path = tmp_path / "others.csv"
    col.interactions[col.interactions["user"] != user].to_csv(path, index=False)
    return path


def test_pseudonymized_ids_are_found_by_their_pseudonym(store, tmp_path, monkeypatch):
    from recsys_core.pseudonyms import pseudonymize

    monkeypatch.setenv(forget.KEY_ENV, "a-secret-key-of-32-characters-xx")
    p = forget.pseudonym("alice")
    # the pseudonym collection gives (recsys_core.pseudonyms), found by forget
    assert p == pseudonymize("alice", b"a-secret-key-of-32-characters-xx") != "alice"
    forget_user("alice", data_dir=tmp_path, tracking=False)
    kinds = sorted(s["kind"] for s in _rows(store, tombstones))
    assert kinds == ["id", "pseudonym"]
    # a collection whose ids were pseudonymized drops the pseudonym's rows
    frame = pd.DataFrame(
        {
            "user": [p, "bob", "alice"],
            "item": ["a", "b", "c"],
            "rating": [1.0, 2.0, 3.0],
            "timestamp": [0, 0, 0],
        }
    )
    kept, removed = drop_tombstoned(frame)
    assert kept["user"].tolist() == ["bob"] and removed == 2


def test_the_forget_module_imports_first_in_a_fresh_interpreter():
    """``recsys forget`` imports it before anything else (collection imports it back)."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "import recsys_core.privacy.forget"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
