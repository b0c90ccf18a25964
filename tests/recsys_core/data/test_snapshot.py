"""Snapshots: a content digest as the data version, idempotent writes, Parquet round trip."""

import json

import pandas as pd
import pytest

from recsys_core.data import snapshot, synthetic
from recsys_core.data.schema import Collected
from recsys_core.exceptions import DataError


@pytest.fixture
def collected():
    return synthetic.generate(synthetic.config_for("tiny", seed=5))


def test_digest_is_stable_for_equal_content(collected):
    frame = collected.interactions
    again = synthetic.generate(synthetic.config_for("tiny", seed=5)).interactions
    assert snapshot.digest(frame) == snapshot.digest(again)
    assert snapshot.digest(frame) == snapshot.digest(frame.copy())
    # the index is not content
    assert snapshot.digest(frame) == snapshot.digest(frame.set_axis(range(10, 10 + len(frame))))
    assert len(snapshot.digest(frame)) == 64


def test_digest_in_parts_is_the_digest_of_the_whole_table(collected, monkeypatch):
    # the digest names snapshots already written: hashing in parts must not change it
    import hashlib

    frame = collected.interactions
    whole = hashlib.sha256(",".join(frame.columns).encode())
    whole.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    monkeypatch.setattr(snapshot, "_DIGEST_ROWS", 10)  # many parts, the last one short
    assert len(frame) % 10
    assert snapshot.digest(frame) == whole.hexdigest()
    monkeypatch.setattr(snapshot, "_DIGEST_ROWS", 1 << 20)
    assert snapshot.digest(frame) == whole.hexdigest()
    assert (
        snapshot.digest(frame.iloc[:0])
        == hashlib.sha256(",".join(frame.columns).encode()).hexdigest()
    )


def test_digest_changes_with_one_rating(collected):
    frame = collected.interactions
    changed = frame.copy()
    changed.loc[7, "rating"] = 2.0 if changed.loc[7, "rating"] == 1.0 else 1.0
    assert snapshot.digest(changed) != snapshot.digest(frame)


def test_digest_changes_with_column_names(collected):
    frame = collected.interactions
    assert snapshot.digest(frame.rename(columns={"rating": "score"})) != snapshot.digest(frame)


def test_write_is_idempotent(collected, tmp_path):
    first = snapshot.write(collected, tmp_path)
    data_file = first.interactions_path
    mtime = data_file.stat().st_mtime_ns
    second = snapshot.write(collected, tmp_path)
    assert second == first
    assert second.path == first.path
    assert data_file.stat().st_mtime_ns == mtime  # reused, not rewritten
    assert [p.name for p in tmp_path.iterdir()] == [first.digest[:16]]


def test_snapshot_counts(collected, tmp_path):
    snap = snapshot.write(collected, tmp_path)
    frame = collected.interactions
    assert snap.digest == snapshot.digest(frame)
    assert snap.n_rows == len(frame)
    assert snap.n_users == frame["user"].nunique()
    assert snap.n_items == frame["item"].nunique()
    assert (snap.rating_min, snap.rating_max) == (1.0, 5.0)
    assert snap.has_items
    assert snap.source == collected.source
    assert snapshot.load_meta(snap.path) == snap
    assert json.loads((tmp_path / snap.digest[:16] / snapshot.META_FILE).read_text()) == {
        k: v for k, v in snap.to_dict().items() if k != "path"
    }


def test_meta_is_written_last(collected, tmp_path, monkeypatch):
    written = []
    real_write_text = type(tmp_path).write_text
    real_to_parquet = pd.DataFrame.to_parquet

    def record_text(self, *args, **kwargs):
        written.append(self.name)
        return real_write_text(self, *args, **kwargs)

    def record_parquet(self, path, *args, **kwargs):
        written.append(str(path).rsplit("/", 1)[-1])
        return real_to_parquet(self, path, *args, **kwargs)

    monkeypatch.setattr(type(tmp_path), "write_text", record_text)
    monkeypatch.setattr(pd.DataFrame, "to_parquet", record_parquet)
    snapshot.write(collected, tmp_path)
    # written under a temporary name, then renamed into place
    assert written[-1].startswith(f".{snapshot.META_FILE}.")
    assert f".{snapshot.ITEMS_FILE}." in " ".join(written)


def test_an_incomplete_snapshot_is_rewritten(collected, tmp_path):
    snap = snapshot.write(collected, tmp_path)
    meta = tmp_path / snap.digest[:16] / snapshot.META_FILE
    meta.unlink()
    snap.interactions_path.write_bytes(b"truncated")
    again = snapshot.write(collected, tmp_path)
    assert meta.exists()
    frame, _ = snapshot.read(again)
    assert len(frame) == len(collected.interactions)


def test_read_round_trip_with_items(collected, tmp_path):
    frame, items = snapshot.read(snapshot.write(collected, tmp_path))
    pd.testing.assert_frame_equal(frame, collected.interactions, check_dtype=False)
    pd.testing.assert_frame_equal(items, collected.items, check_dtype=False)
    assert frame["rating"].dtype == "float64" and frame["timestamp"].dtype == "int64"
    assert snapshot.digest(frame) == snapshot.digest(collected.interactions)


def test_read_without_items(collected, tmp_path):
    plain = Collected(collected.interactions, None, source="file")
    snap = snapshot.write(plain, tmp_path)
    assert not snap.has_items
    frame, items = snapshot.read(snap)
    assert items is None
    assert len(frame) == len(plain.interactions)


def _tamper(snap):
    """Rewrite the cached interactions: half the rows, every rating 5 (a plausible edit)."""
    frame = pd.read_parquet(snap.interactions_path)
    frame.iloc[: len(frame) // 2].assign(rating=5.0).to_parquet(snap.interactions_path, index=False)


def test_reading_a_tampered_snapshot_is_refused(collected, tmp_path):
    snap = snapshot.write(collected, tmp_path)
    _tamper(snap)
    with pytest.raises(DataError) as err:
        snapshot.read(snap)
    message = str(err.value)
    assert f"snapshot {snap.digest[:16]} at {snap.path} was altered after it was written" in message
    assert f"({len(collected.interactions) // 2} rows found, {snap.n_rows} recorded)" in message
    assert f"delete {snap.path} and collect the data again" in message


def test_writing_over_a_tampered_snapshot_rebuilds_it(collected, tmp_path, caplog):
    snap = snapshot.write(collected, tmp_path)
    _tamper(snap)
    with caplog.at_level("WARNING", logger="recsys_core.data.snapshot"):
        again = snapshot.write(collected, tmp_path)
    assert again == snap
    assert "was altered after it was written" in caplog.text and "rebuilding" in caplog.text
    frame, _ = snapshot.read(again)  # the digest holds again
    pd.testing.assert_frame_equal(frame, collected.interactions, check_dtype=False)


def test_an_unreadable_snapshot_is_a_data_error(collected, tmp_path):
    snap = snapshot.write(collected, tmp_path)
    snap.interactions_path.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot be read from"):
        snapshot.read(snap)
