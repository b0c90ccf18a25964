"""The collect dispatcher: one string names any source."""

import pytest

from recsys_core.data import sources, synthetic
from recsys_core.exceptions import ConfigError, DataError, DataSourceError


def test_collect_synthetic_tiny():
    collected = sources.collect("synthetic:tiny", seed=3)
    expected = synthetic.generate(synthetic.config_for("tiny", seed=3))
    assert collected.interactions.equals(expected.interactions)
    assert collected.interactions["user"].nunique() == synthetic.PRESETS["tiny"][0]
    assert collected.items is not None


def test_collect_synthetic_default_size_is_a_parameter():
    collected = sources.collect("synthetic", synthetic_size="tiny")
    assert collected.interactions["user"].nunique() == synthetic.PRESETS["tiny"][0]


def test_collect_synthetic_unknown_size():
    with pytest.raises(ConfigError, match="unknown synthetic size 'huge'"):
        sources.collect("synthetic:huge")


def test_collect_local_file_with_mapping(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("u,i,r\n1,2,3\n4,5,1\n")
    collected = sources.collect(
        str(path), columns="user=u,item=i,rating=r", rating_scale=(1.0, 3.0)
    )
    assert collected.interactions["item"].tolist() == ["2", "5"]
    assert collected.rating_scale == (1.0, 3.0)


def test_collect_an_unpacked_release_folder_is_a_file(tmp_path, monkeypatch):
    # ml-latest-small/ratings.csv is a path, not the name of a release
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,3.5,4\n")
    monkeypatch.chdir(tmp_path)
    collected = sources.collect("ml-latest-small/ratings.csv")
    assert collected.interactions["rating"].tolist() == [3.5]


def test_unknown_source_lists_the_sources():
    with pytest.raises(DataSourceError) as err:
        sources.collect("no-such-thing.csv")
    message = str(err.value)
    assert "'no-such-thing.csv'" in message
    for hint in ("synthetic", "movielens-100k", "CSV", "s3://"):
        assert hint in message


def test_unknown_movielens_release():
    with pytest.raises(DataSourceError, match="unknown MovieLens release 'movielens-7m'"):
        sources.collect("movielens-7m")


@pytest.mark.parametrize("source", ["http://example.com/ratings.csv", "gs://bucket/r.csv"])
def test_unsupported_scheme(source):
    with pytest.raises(DataSourceError) as err:
        sources.collect(source)
    assert f"unsupported source {source!r}" in str(err.value)
    assert "s3://" in str(err.value)


REPEATS = "user,item,rating,timestamp\n1,a,1,10\n1,a,5,30\n1,b,3,10\n2,a,4,5\n1,a,2,20\n"


@pytest.mark.parametrize(
    ("policy", "ratings", "removed"),
    [("latest", [5.0, 3.0, 4.0], 2), ("mean", [pytest.approx(8 / 3), 3.0, 4.0], 2)],
)
def test_collect_applies_the_duplicates_policy(tmp_path, policy, ratings, removed):
    path = tmp_path / "r.csv"
    path.write_text(REPEATS)
    collected = sources.collect(str(path), duplicates=policy)
    assert collected.interactions["rating"].tolist() == ratings
    assert collected.extra["duplicates_removed"] == removed


def test_collect_refuses_duplicates_when_asked(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(REPEATS)
    with pytest.raises(DataError, match="user '1' and item 'a' on data rows 1, 2, 5"):
        sources.collect(str(path), duplicates="refuse")


def test_collect_checks_the_policy_before_reading():
    with pytest.raises(ConfigError, match="unknown duplicates policy 'keep'"):
        sources.collect("no-such-file.csv", duplicates="keep")


def test_collect_of_a_folder_is_a_data_source_error(tmp_path):
    # not retried: DataError is never transient
    with pytest.raises(DataSourceError, match="is a folder; give the path of a ratings file"):
        sources.collect(str(tmp_path))


def test_collect_synthetic_has_no_repeated_pairs():
    collected = sources.collect("synthetic:tiny")
    assert collected.extra["duplicates_removed"] == 0


def test_messages_never_carry_credentials():
    with pytest.raises(DataSourceError) as err:
        sources.collect("http://admin:hunter2@example.com/r.csv")
    assert "hunter2" not in str(err.value) and "http://***@example.com/r.csv" in str(err.value)
