"""Item embeddings from a Parquet file: the two layouts, and the errors that say what to fix."""

import numpy as np
import pandas as pd
import pytest

from recsys_core.exceptions import DataError
from recsys_core.features.embeddings import embeddings_from_frame, load_item_embeddings


def test_list_layout_is_read_and_aligned(tmp_path):
    path = tmp_path / "emb.parquet"
    pd.DataFrame(
        {"item_id": [10, 11, 12], "embedding": [[3.0, 4.0], [0.0, 2.0], [1.0, 0.0]]}
    ).to_parquet(path)
    emb = load_item_embeddings(path)
    assert emb.dim == 2 and emb.ids.tolist() == ["10", "11", "12"]  # ids compared as strings
    vectors, has = emb.aligned(np.array(["12", "99", "10"]))
    assert has.tolist() == [True, False, True]
    np.testing.assert_allclose(vectors, [[1.0, 0.0], [0.0, 0.0], [0.6, 0.8]], rtol=1e-6)


def test_numeric_columns_layout():
    frame = pd.DataFrame({"item_id": ["a", "b"], "e0": [1.0, 0.0], "e1": [0.0, 1.0], "note": "x"})
    emb = embeddings_from_frame(frame)
    np.testing.assert_array_equal(emb.vectors, [[1.0, 0.0], [0.0, 1.0]])
    assert emb.vectors.dtype == np.float32


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"item": ["a"], "embedding": [[1.0]]}), "no 'item_id' column"),
        (pd.DataFrame({"item_id": ["a", "a"], "embedding": [[1.0], [2.0]]}), "repeat 1 item id"),
        (
            pd.DataFrame({"item_id": ["a", "b"], "embedding": [[1.0, 2.0], [1.0]]}),
            "item 'b' has 1 values, the first item 2",
        ),
        (pd.DataFrame({"item_id": ["a", "b"], "e0": [1.0, np.nan]}), "not finite.*item 'b'"),
        (pd.DataFrame({"item_id": ["a"], "name": ["x"]}), "have no vector"),
        (pd.DataFrame({"item_id": pd.Series([], dtype=str), "e0": []}), "no rows"),
    ],
)
def test_malformed_embeddings_say_what_is_wrong(frame, message):
    with pytest.raises(DataError, match=message):
        embeddings_from_frame(frame)


def test_a_missing_or_unreadable_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"does not exist.*'item_id'"):
        load_item_embeddings(tmp_path / "none.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(DataError, match="could not be read as Parquet"):
        load_item_embeddings(bad)
