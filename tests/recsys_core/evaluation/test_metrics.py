"""Metrics against values computed by hand (definitions in the metrics module docstring)."""

import math

import numpy as np
import pytest

from recsys_core.evaluation import metrics as M

LOG2_3 = math.log2(3)  # discount of rank 2 is 1 / log2(3) = 0.6309...


def test_rmse_and_mae():
    pred = np.array([3.0, 4.0, 5.0, 1.5])
    truth = np.array([2.0, 4.0, 3.0, 1.0])
    # errors 1, 0, 2, 0.5: squares 1, 0, 4, 0.25 -> mean 5.25 / 4
    assert M.rmse(pred, truth) == pytest.approx(math.sqrt(5.25 / 4))
    assert M.mae(pred, truth) == pytest.approx(3.5 / 4)
    assert M.rmse(truth, truth) == 0.0
    assert M.mae([1, 2], [2, 1]) == 1.0


def test_hits_matrix():
    rec = np.array([[1, 2, 3], [4, 5, -1], [1, 2, 3]])
    hits = M.hits_matrix(rec, [{1, 3}, {5}, set()])
    assert hits.tolist() == [[True, False, True], [False, True, False], [False, False, False]]


def test_ranking_metrics_by_hand():
    k = 3
    # user A: list [i1, i2, i3], relevant {i1, i3} -> hits at ranks 1 and 3
    # user B: list [i4, i5, i6], relevant {i6, i7, i8, i9} -> a hit at rank 3
    # user C: list [i1, i2, i3], relevant {i9} -> no hit
    hits = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 0]], dtype=bool)
    n_rel = np.array([2, 4, 1])
    out = M.ranking_metrics(hits, n_rel, k)

    # precision@3: hits / k
    np.testing.assert_allclose(out["precision"], [2 / 3, 1 / 3, 0])
    # recall@3: hits / |Rel|
    np.testing.assert_allclose(out["recall"], [2 / 2, 1 / 4, 0])
    # ndcg@3: A: DCG = 1/log2(2) + 1/log2(4) = 1.5, IDCG over min(3, 2) = 2 ranks = 1 + 1/log2(3)
    #         B: DCG = 1/log2(4) = 0.5, IDCG over min(3, 4) = 3 ranks = 1 + 1/log2(3) + 0.5
    ndcg_a = 1.5 / (1 + 1 / LOG2_3)
    ndcg_b = 0.5 / (1 + 1 / LOG2_3 + 0.5)
    np.testing.assert_allclose(out["ndcg"], [ndcg_a, ndcg_b, 0])
    assert ndcg_a == pytest.approx(0.919721, abs=1e-6)
    assert ndcg_b == pytest.approx(0.234639, abs=1e-6)
    # map@3: A: (P@1 + P@3) / min(3, 2) = (1 + 2/3) / 2 = 5/6; B: P@3 / min(3, 4) = (1/3) / 3
    np.testing.assert_allclose(out["map"], [5 / 6, 1 / 9, 0])
    np.testing.assert_allclose(out["hit_rate"], [1, 1, 0])


def test_perfect_list_scores_one():
    out = M.ranking_metrics(np.ones((1, 5), dtype=bool), np.array([8]), 5)
    # more relevant items than k: precision, ndcg and map reach 1, recall cannot
    assert out["precision"][0] == 1.0
    assert out["ndcg"][0] == pytest.approx(1.0)
    assert out["map"][0] == pytest.approx(1.0)
    assert out["recall"][0] == pytest.approx(5 / 8)


def test_short_lists_are_padded_with_misses():
    # two recommended items for k=4; relevant {first item, one never listed}
    out = M.ranking_metrics(np.array([[True, False]]), np.array([2]), 4)
    assert out["precision"][0] == pytest.approx(1 / 4)  # k, not the list length
    assert out["recall"][0] == pytest.approx(1 / 2)
    assert out["ndcg"][0] == pytest.approx(1 / (1 + 1 / LOG2_3))
    assert out["map"][0] == pytest.approx(1 / 2)


def test_longer_hits_are_cut_at_k():
    hits = np.array([[False, False, True, True]])
    out = M.ranking_metrics(hits, np.array([2]), 2)
    assert out["precision"][0] == 0.0
    assert out["hit_rate"][0] == 0.0


def test_user_without_relevant_items_scores_zero_not_nan():
    out = M.ranking_metrics(np.zeros((1, 3), dtype=bool), np.array([0]), 3)
    for name, values in out.items():
        assert values[0] == 0.0, name


def test_coverage_ignores_empty_slots():
    rec = np.array([[0, 1, -1], [1, 2, -1]])
    assert M.coverage(rec, 10) == pytest.approx(3 / 10)
    assert M.coverage(np.full((2, 3), -1), 10) == 0.0
    assert M.coverage(rec, 0) == 0.0


@pytest.mark.parametrize(
    ("metric", "lower"),
    [
        ("rmse", True),
        ("mae", True),
        ("ndcg_at_10", False),
        ("precision_at_5", False),
        ("map_at_10", False),
        ("recall_at_20", False),
        ("hit_rate_at_10", False),
        ("coverage_at_10", False),
    ],
)
def test_lower_is_better(metric, lower):
    assert M.lower_is_better(metric) is lower
