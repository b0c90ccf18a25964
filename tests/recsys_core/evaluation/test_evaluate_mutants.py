"""evaluate() defaults, bounds and outputs that the scenario tests leave open (found by
`make mutation`)."""

import re

import numpy as np
import pandas as pd
import pytest

from recsys_core.evaluation import evaluate
from recsys_core.evaluation.evaluate import seen_matrix
from recsys_core.exceptions import ConfigError
from recsys_core.features import Interactions
from recsys_core.models.baselines import Bias, Popularity


def _frame(rows):
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


# four items, popularity a (4) > b (3) > c (2) > d (1); item vocabulary a, b, c, d = 0..3
TRAIN = _frame(
    [
        ("u1", "a", 4.0, 1),
        ("u2", "a", 3.0, 1),
        ("u2", "b", 4.0, 2),
        ("u3", "a", 5.0, 1),
        ("u3", "b", 3.0, 2),
        ("u3", "c", 4.0, 3),
        ("u4", "a", 2.0, 1),
        ("u4", "b", 5.0, 2),
        ("u4", "c", 3.0, 3),
        ("u4", "d", 1.0, 4),
    ]
)
TEST = _frame([("u1", "b", 4.0, 9), ("u2", "c", 5.0, 9)])


@pytest.fixture(scope="module")
def popularity():
    return Popularity().fit(Interactions.from_frame(TRAIN))


def test_defaults_rank_ten_and_keep_nothing():
    # a rating model: it has predictions that could be kept
    bias = Bias().fit(Interactions.from_frame(TRAIN))
    result = evaluate(bias, TRAIN, TEST)
    assert {"rmse", "ndcg_at_10", "precision_at_10", "coverage_at_10"} <= set(result.metrics)
    assert result.predictions is None
    assert result.recommendations is None


def test_k_of_one_is_accepted(popularity):
    # u1's list is [b], u2's is [c]: both hit at rank 1
    result = evaluate(popularity, TRAIN, TEST, k=1)
    assert result.metrics["precision_at_1"] == 1.0
    assert result.metrics["ndcg_at_1"] == 1.0


def test_bad_k_and_empty_test_messages(popularity):
    with pytest.raises(ConfigError, match=r"^k must be a positive integer, got 0$"):
        evaluate(popularity, TRAIN, TEST, k=0)
    expected = "the test set is empty; nothing to evaluate"
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}$"):
        evaluate(popularity, TRAIN, TEST.iloc[:0])


def test_recommendations_frame_columns_and_ranks(popularity):
    result = evaluate(popularity, TRAIN, TEST, k=3, keep_recommendations=True)
    recs = result.recommendations
    assert list(recs.columns) == ["user", "rank", "item", "score"]
    # u1 has seen a: [b, c, d]; u2 has seen a, b: [c, d] and an empty third slot (dropped)
    assert list(zip(recs["user"], recs["rank"], recs["item"], strict=True)) == [
        ("u1", 1, "b"),
        ("u1", 2, "c"),
        ("u1", 3, "d"),
        ("u2", 1, "c"),
        ("u2", 2, "d"),
    ]
    assert recs["score"].tolist() == [3.0, 2.0, 1.0, 2.0, 1.0]  # popularity counts


def test_cold_relevant_items_never_match_a_real_item_or_an_empty_slot(popularity):
    # u5 is cold and gets the whole catalog [a, b, c, d] plus one empty slot (-1) at k=5;
    # of its relevant items only a is known: e and f (cold) must match neither c, b nor -1
    test = _frame([("u5", "a", 5.0, 9), ("u5", "e", 3.0, 9), ("u5", "f", 3.0, 9)])
    m = evaluate(popularity, TRAIN, test, k=5).metrics
    assert m["precision_at_5"] == pytest.approx(1 / 5)
    assert m["recall_at_5"] == pytest.approx(1 / 3)
    assert m["map_at_5"] == pytest.approx(1 / 3)


def test_seen_matrix(popularity):
    # rows follow `users` and columns the model's catalog, even where the last ones are empty:
    # unknown users (u9) get an empty row, unknown items (z) are dropped, training users not
    # asked for (u3, u4) are left out
    train = pd.concat([TRAIN, _frame([("u1", "z", 3.0, 5)])], ignore_index=True)
    users = np.array(["u2", "u1", "u9"], dtype=object)
    seen = seen_matrix(train, users, popularity)
    assert seen.shape == (3, 4)
    assert seen.dtype == np.float32
    np.testing.assert_array_equal(seen.toarray(), [[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
