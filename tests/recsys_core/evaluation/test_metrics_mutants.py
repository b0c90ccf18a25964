"""Metric edges that the hand-computed tests leave open (found by `make mutation`)."""

import warnings

import numpy as np

from recsys_core.evaluation import metrics as M


def test_hits_matrix_is_boolean():
    # 1.0 == True in Python: compare the dtype, not only the values
    hits = M.hits_matrix(np.array([[1, 2], [3, -1]]), [{2}, set()])
    assert hits.dtype == np.bool_
    assert hits.shape == (2, 2)


def test_padding_short_lists_keeps_one_row_per_user():
    hits = np.array([[True, False], [False, False], [False, True]])
    out = M.ranking_metrics(hits, np.array([1, 3, 2]), 4)
    for name, values in out.items():
        assert values.shape == (3,), name
    np.testing.assert_allclose(out["precision"], [1 / 4, 0, 1 / 4])
    np.testing.assert_allclose(out["recall"], [1, 0, 1 / 2])


def test_users_without_relevant_items_raise_no_numpy_warning():
    # 0 / 0 for recall, ndcg and map of such a user: silenced, it scores 0 (an evaluation
    # run under -W error, or a log watched for warnings, must stay clean)
    hits = np.array([[False, False, False], [True, False, False]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = M.ranking_metrics(hits, np.array([0, 1]), 3)
    for name, values in out.items():
        assert values[0] == 0.0, name
        assert not np.isnan(values).any(), name
