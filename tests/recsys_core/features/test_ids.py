"""IdVocab: raw ids <-> contiguous indices, -1 for unknown ids."""

import numpy as np
import pytest

from recsys_core.features import IdVocab


def test_from_values_is_sorted_and_distinct():
    vocab = IdVocab.from_values(["b", "a", "c", "a", "b"])
    assert vocab.to_list() == ["a", "b", "c"]
    assert len(vocab) == 3
    assert vocab == IdVocab.from_values(["c", "b", "a"])
    assert repr(vocab) == "IdVocab(n=3)"


def test_numbers_become_string_ids():
    vocab = IdVocab.from_values([10, 2, 10])
    assert vocab.to_list() == ["10", "2"]  # string order
    assert vocab.index([2, "10"]).tolist() == [1, 0]


def test_index_maps_unknown_ids_to_minus_one():
    vocab = IdVocab(["x", "y", "z"])
    idx = vocab.index(["z", "nope", "x"])
    assert idx.tolist() == [2, -1, 0]
    assert idx.dtype == np.int32
    assert vocab.index([]).tolist() == []


def test_id_of_round_trip_and_unknown():
    vocab = IdVocab(["x", "y", "z"])
    assert vocab.id_of(np.array([2, 0])).tolist() == ["z", "x"]
    # -1 is unknown, never the last id of the vocabulary
    assert vocab.id_of(np.array([1, -1])).tolist() == ["y", None]


def test_duplicates_are_refused():
    with pytest.raises(ValueError, match="duplicate"):
        IdVocab(["a", "b", "a"])


def test_equality_depends_on_order():
    assert IdVocab(["a", "b"]) != IdVocab(["b", "a"])
    assert IdVocab(["a"]) != ["a"]


def test_save_and_load(tmp_path):
    vocab = IdVocab.from_values(["u3", "u1", "u2"])
    vocab.save(tmp_path / "users.json")
    loaded = IdVocab.load(tmp_path / "users.json")
    assert loaded == vocab
    assert loaded.index(["u2"]).tolist() == [1]


def test_index_maps_each_row_as_its_text_does():
    import numpy as np
    import pandas as pd

    from recsys_core.features.ids import IdVocab

    vocab = IdVocab.from_values([3, 1, 2, "10", 1, 3])
    assert list(vocab.ids) == ["1", "10", "2", "3"]
    rows = [1, "1", 3.0, None, "x", 10, 2, 2]
    expected = vocab._index.get_indexer(pd.Series(rows, dtype=object).astype(str))
    np.testing.assert_array_equal(vocab.index(rows), expected)
    np.testing.assert_array_equal(vocab.index(np.array([10, 1, 99])), [1, 0, -1])
    np.testing.assert_array_equal(vocab.index(pd.Series(["2", "3", "2"])), [2, 3, 2])
    assert vocab.index([]).dtype == np.int32 and vocab.index([]).size == 0


def test_categorical_ids_map_as_their_text():
    import pandas as pd

    # unused categories ("z") are not ids; a missing id looks up as the plain path does
    values = pd.Series(pd.Categorical(["b", "a", None, "b"], categories=["z", "b", "a"]))
    plain = pd.Series(["b", "a", None, "b"], dtype=object)
    assert IdVocab.from_values(values.dropna()).to_list() == ["a", "b"]
    vocab = IdVocab.from_values(["a", "b", "c"])
    np.testing.assert_array_equal(vocab.index(values), vocab.index(plain))
    assert vocab.index(values).tolist() == [1, 0, -1, 1]
    assert vocab.index(values.iloc[:0]).tolist() == []
