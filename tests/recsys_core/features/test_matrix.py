"""Interactions: index arrays and the users x items CSR matrix."""

import numpy as np
import pandas as pd
import pytest

from recsys_core.features import IdVocab, Interactions


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "user": ["u2", "u1", "u1", "u3", "u2"],
            "item": ["c", "b", "a", "a", "a"],
            "rating": [5.0, 3.0, 4.0, 2.0, 1.0],
            "timestamp": [5, 4, 3, 2, 1],
        }
    )


def test_from_frame_builds_sorted_vocabularies(frame):
    data = Interactions.from_frame(frame)
    assert data.users.to_list() == ["u1", "u2", "u3"]
    assert data.items.to_list() == ["a", "b", "c"]
    assert data.user_idx.tolist() == [1, 0, 0, 2, 1]
    assert data.item_idx.tolist() == [2, 1, 0, 0, 0]
    assert len(data) == 5 and data.n_users == 3 and data.n_items == 3
    assert data.rating.dtype == np.float32
    assert data.timestamp.dtype == np.int64
    assert data.global_mean == pytest.approx(3.0)


def test_matrix_is_csr_float32_with_sorted_indices(frame):
    mat = Interactions.from_frame(frame).matrix
    assert mat.format == "csr"
    assert mat.shape == (3, 3)
    assert mat.dtype == np.float32
    assert mat.has_sorted_indices
    assert mat.nnz == 5
    np.testing.assert_array_equal(
        mat.toarray(), [[4.0, 3.0, 0.0], [1.0, 0.0, 5.0], [2.0, 0.0, 0.0]]
    )
    # each row's column indices really are sorted, not only flagged so
    for row in range(mat.shape[0]):
        cols = mat.indices[mat.indptr[row] : mat.indptr[row + 1]]
        assert list(cols) == sorted(cols)


def test_unknown_ids_map_to_minus_one_and_stay_out_of_the_matrix(frame):
    train = Interactions.from_frame(frame)
    test_frame = pd.DataFrame(
        {
            "user": ["u1", "new-user", "u2", "u3"],
            "item": ["c", "a", "new-item", "b"],
            "rating": [2.0, 5.0, 5.0, 3.0],
            "timestamp": [9, 9, 9, 9],
        }
    )
    test = Interactions.from_frame(test_frame, train.users, train.items)
    assert test.user_idx.tolist() == [0, -1, 1, 2]
    assert test.item_idx.tolist() == [2, 0, -1, 1]
    assert test.known.tolist() == [True, False, False, True]
    mat = test.matrix
    assert mat.shape == (3, 3)
    assert mat.nnz == 2
    assert mat[0, 2] == 2.0 and mat[2, 1] == 3.0
    assert mat.sum() == 5.0
    assert len(test) == 4  # cold rows are kept, only left out of the matrix


def test_to_frame_round_trip_and_unknown_ids(frame):
    data = Interactions.from_frame(frame)
    back = data.to_frame()
    assert back["user"].tolist() == frame["user"].tolist()
    assert back["item"].tolist() == frame["item"].tolist()
    assert back["rating"].tolist() == frame["rating"].tolist()
    mapped = Interactions.from_frame(
        pd.DataFrame(
            {"user": ["zz", "u1"], "item": ["a", "zz"], "rating": [1.0, 2.0], "timestamp": [0, 0]}
        ),
        data.users,
        data.items,
    )
    out = mapped.to_frame()
    # an unknown id is missing, never the last id of the vocabulary
    assert out["user"].isna().tolist() == [True, False]
    assert out["item"].isna().tolist() == [False, True]
    assert out["user"].tolist()[1] == "u1" and out["item"].tolist()[0] == "a"


def test_given_empty_vocabularies_are_used(frame):
    data = Interactions.from_frame(frame, IdVocab([]), IdVocab([]))
    assert data.n_users == 0 and data.n_items == 0
    assert (data.user_idx == -1).all() and (data.item_idx == -1).all()
    assert data.matrix.shape == (0, 0)


def test_empty_frame(frame):
    data = Interactions.from_frame(frame.iloc[:0])
    assert len(data) == 0
    assert data.global_mean == 0.0
    assert data.matrix.shape == (0, 0)
    assert len(data.to_frame()) == 0


def test_a_pair_rated_twice_keeps_its_latest_rating_not_the_sum():
    import pandas as pd

    from recsys_core.features.matrix import Interactions

    frame = pd.DataFrame(
        {
            "user": ["a", "a", "b"],
            "item": ["x", "x", "x"],
            "rating": [5.0, 2.0, 4.0],
            "timestamp": [20, 10, 5],
        }
    )
    mat = Interactions.from_frame(frame).matrix
    assert mat.shape == (2, 1)
    assert mat.toarray().ravel().tolist() == [5.0, 4.0]
