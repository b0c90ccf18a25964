"""The collect dispatcher: one string names any source."""

import pytest

from recsys_core.data import sources, synthetic
from recsys_core.exceptions import ConfigError, DataSourceError


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
