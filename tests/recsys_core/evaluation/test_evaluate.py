"""evaluate(): rating and ranking metrics of a fitted model on a test split."""

import math

import numpy as np
import pandas as pd
import pytest

from recsys_core.data import synthetic
from recsys_core.evaluation import evaluate
from recsys_core.evaluation import metrics as M
from recsys_core.exceptions import ConfigError, DataError
from recsys_core.features import Interactions, SplitConfig, split

# the models come from their module: these tests need the baselines only
from recsys_core.models.baselines import Bias, Popularity

NDCG_HIT_FIRST_OF_TWO = 1 / (1 + 1 / math.log2(3))  # one hit at rank 1, two relevant items


def _frame(rows):
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


# train: popularity a (4) > b (3) > c (2) > d (1)
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
# test: u5 is a cold user, e a cold item
TEST = _frame(
    [
        ("u1", "b", 4.0, 9),
        ("u1", "d", 2.0, 9),
        ("u2", "c", 5.0, 9),
        ("u5", "a", 5.0, 9),
        ("u5", "e", 3.0, 9),
    ]
)


@pytest.fixture(scope="module")
def popularity():
    return Popularity().fit(Interactions.from_frame(TRAIN))


@pytest.fixture(scope="module")
def synthetic_split():
    frame = synthetic.generate(synthetic.config_for("small", seed=8)).interactions
    s = split(frame, SplitConfig(strategy="time"))
    return s.train, s.test


def test_tiny_case_by_hand(popularity):
    result = evaluate(popularity, TRAIN, TEST, k=2, keep_recommendations=True)
    recs = result.recommendations.groupby("user")["item"].apply(list).to_dict()
    # u1 has seen a: [b, c]; u2 has seen a, b: [c, d]; cold u5 gets the popular list [a, b]
    assert recs == {"u1": ["b", "c"], "u2": ["c", "d"], "u5": ["a", "b"]}
    m = result.metrics
    # u1: Rel {b, d}, hit at 1 -> P 1/2, R 1/2, nDCG 1/(1 + 1/log2 3), AP 1/2
    # u2: Rel {c}, hit at 1    -> P 1/2, R 1,   nDCG 1,              AP 1
    # u5: Rel {a, e}, hit at 1 -> P 1/2, R 1/2, nDCG 1/(1 + 1/log2 3), AP 1/2 (e is cold: a miss)
    assert m["precision_at_2"] == pytest.approx(0.5)
    assert m["recall_at_2"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert m["ndcg_at_2"] == pytest.approx((2 * NDCG_HIT_FIRST_OF_TWO + 1) / 3)
    assert m["map_at_2"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    assert m["hit_rate_at_2"] == 1.0
    assert m["coverage_at_2"] == pytest.approx(4 / 4)
    assert result.counts == {
        "test_rows": 5,
        "cold_user_rows": 2,
        "cold_item_rows": 1,
        "cold_users": 1,
        "cold_items": 1,
        "ranked_users": 3,
    }


def test_rating_metrics_absent_for_a_ranking_only_model(popularity):
    result = evaluate(popularity, TRAIN, TEST, k=2, keep_predictions=True)
    assert "rmse" not in result.metrics and "mae" not in result.metrics
    assert result.predictions is None


def test_relevance_threshold_filters_relevant_items(popularity):
    result = evaluate(popularity, TRAIN, TEST, k=2, relevance_threshold=4.0)
    m = result.metrics
    # relevant: u1 {b}, u2 {c}, u5 {a}; each is first in its list
    assert m["recall_at_2"] == pytest.approx(1.0)
    assert m["ndcg_at_2"] == pytest.approx(1.0)
    assert m["map_at_2"] == pytest.approx(1.0)
    assert m["precision_at_2"] == pytest.approx(0.5)
    assert result.counts["ranked_users"] == 3
    # at 5 stars u1 has nothing relevant and is not ranked
    strict = evaluate(popularity, TRAIN, TEST, k=2, relevance_threshold=5.0)
    assert strict.counts["ranked_users"] == 2
    assert strict.counts["test_rows"] == 5


def test_no_relevant_items_gives_no_ranking_metrics(popularity):
    result = evaluate(popularity, TRAIN, TEST, k=2, relevance_threshold=6.0)
    assert not any("_at_" in name for name in result.metrics)
    assert "ranked_users" not in result.counts


def test_bias_model_has_rating_metrics(synthetic_split):
    train, test = synthetic_split
    model = Bias().fit(Interactions.from_frame(train))
    result = evaluate(model, train, test, k=10, keep_predictions=True)
    pred = model.predict(test["user"], test["item"])
    assert result.metrics["rmse"] == pytest.approx(M.rmse(pred, test["rating"]))
    assert result.metrics["mae"] == pytest.approx(M.mae(pred, test["rating"]))
    assert 0.5 < result.metrics["rmse"] < 1.5
    assert "ndcg_at_10" in result.metrics
    np.testing.assert_allclose(result.predictions["prediction"], pred)
    assert result.predictions["rating"].tolist() == test["rating"].tolist()


@pytest.mark.parametrize("model_cls", [Popularity, Bias])
def test_training_items_are_never_recommended(synthetic_split, model_cls):
    train, test = synthetic_split
    model = model_cls().fit(Interactions.from_frame(train))
    result = evaluate(model, train, test, k=10, keep_recommendations=True)
    recs = result.recommendations
    seen = set(zip(train["user"], train["item"], strict=True))
    assert not any(pair in seen for pair in zip(recs["user"], recs["item"], strict=True))
    assert (recs.groupby("user").size() == 10).all()
    assert set(recs["user"]) == set(test["user"])
    assert result.counts["ranked_users"] == test["user"].nunique()


def test_cold_users_are_counted_and_get_the_popular_list(synthetic_split):
    train, test = synthetic_split
    model = Popularity().fit(Interactions.from_frame(train))
    result = evaluate(model, train, test, k=5, keep_recommendations=True)
    cold_users = set(test["user"]) - set(train["user"])
    cold_items = set(test["item"]) - set(train["item"])
    assert cold_users
    assert result.counts["cold_users"] == len(cold_users)
    assert result.counts["cold_user_rows"] == int(test["user"].isin(cold_users).sum())
    assert result.counts["cold_items"] == len(cold_items)
    assert result.counts["cold_item_rows"] == int(test["item"].isin(cold_items).sum())
    recs = result.recommendations
    lists = {tuple(recs.loc[recs["user"] == user, "item"]) for user in cold_users}
    assert len(lists) == 1  # the same popular list for every cold user
    counts = train["item"].value_counts()
    assert sorted(counts[list(lists.pop())], reverse=True) == counts.iloc[:5].tolist()


def test_exclusion_uses_the_given_training_frame(popularity):
    # a champion re-scored on another split: what is excluded is this split's training data
    other_train = _frame([("u1", "b", 4.0, 1)])
    result = evaluate(popularity, other_train, TEST.iloc[:2], k=2, keep_recommendations=True)
    assert result.recommendations["item"].tolist() == ["a", "c"]


@pytest.mark.parametrize("k", [0, -1, 2.5, "10"])
def test_bad_k(popularity, k):
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        evaluate(popularity, TRAIN, TEST, k=k)


def test_empty_test_set(popularity):
    with pytest.raises(ConfigError, match="test set is empty"):
        evaluate(popularity, TRAIN, TEST.iloc[:0])


def test_a_repeated_test_pair_counts_once(popularity):
    # a known and a cold item, each rated twice by u5: Rel_u5 is still {a, e}
    repeated = pd.concat([TEST, TEST.iloc[3:5]], ignore_index=True)
    once = evaluate(popularity, TRAIN, TEST, k=2).metrics
    twice = evaluate(popularity, TRAIN, repeated, k=2).metrics
    for name in ("recall_at_2", "ndcg_at_2", "map_at_2"):
        assert twice[name] == pytest.approx(once[name]), name


def test_k_is_bounded_by_the_configured_maximum(popularity, monkeypatch):
    monkeypatch.delenv("RECSYS_MAX_K", raising=False)
    with pytest.raises(ConfigError, match=r"k=1000000000 is larger than the maximum of 1000"):
        evaluate(popularity, TRAIN, TEST, k=1_000_000_000)
    monkeypatch.setenv("RECSYS_MAX_K", "3")
    with pytest.raises(ConfigError, match="k=4 is larger than the maximum of 3.*RECSYS_MAX_K"):
        evaluate(popularity, TRAIN, TEST, k=4)
    assert "ndcg_at_3" in evaluate(popularity, TRAIN, TEST, k=3).metrics
    monkeypatch.setenv("RECSYS_MAX_K", "lots")
    with pytest.raises(ConfigError, match="bad setting: RECSYS_MAX_K='lots'"):
        evaluate(popularity, TRAIN, TEST, k=3)


def test_k_beyond_the_catalogue_counts_empty_slots_as_misses(popularity):
    # 4 items in the catalogue; slots 5..6 stay empty and precision divides by k
    at4 = evaluate(popularity, TRAIN, TEST, k=4).metrics
    at6 = evaluate(popularity, TRAIN, TEST, k=6).metrics
    assert at6["recall_at_6"] == pytest.approx(at4["recall_at_4"])
    assert at6["precision_at_6"] == pytest.approx(at4["precision_at_4"] * 4 / 6)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_test_ratings_are_refused(popularity, bad):
    test = TEST.assign(rating=[4.0, bad, 5.0, 5.0, 3.0])
    with pytest.raises(
        DataError,
        match=r"1 rating\(s\) that are not finite.*user 'u1' and item "
        r"'d'; metrics would be NaN",
    ):
        evaluate(popularity, TRAIN, test, k=2)


def test_populations_by_hand(popularity):
    """warm users u1, u2 (training rows), cold user u5; e is the one cold item."""
    m = evaluate(popularity, TRAIN, TEST, k=2).metrics
    assert {p: (m[f"{p}/users"], m[f"{p}/rows"]) for p in ("all", "warm", "cold")} == {
        "all": (3, 5),
        "warm": (2, 3),
        "cold": (1, 2),
    }
    assert (m["cold_items/items"], m["cold_items/rows"]) == (1, 1)
    assert m["cold_items/share"] == pytest.approx(0.2)
    # warm: u1 (R 1/2, nDCG of one hit first of two) and u2 (R 1, nDCG 1); cold: u5 alone
    assert m["warm/recall_at_2"] == pytest.approx(0.75)
    assert m["warm/ndcg_at_2"] == pytest.approx((NDCG_HIT_FIRST_OF_TWO + 1) / 2)
    assert m["cold/recall_at_2"] == pytest.approx(0.5)
    assert m["cold/ndcg_at_2"] == pytest.approx(NDCG_HIT_FIRST_OF_TWO)
    # u1 and u2's lists hold b, c, d; u5's a, b
    assert m["warm/coverage_at_2"] == pytest.approx(3 / 4)
    assert m["cold/coverage_at_2"] == pytest.approx(2 / 4)
    assert "rmse" not in m and "warm/rmse" not in m  # popularity predicts no rating


def test_rating_metrics_by_population():
    bias = Bias().fit(Interactions.from_frame(TRAIN))
    result = evaluate(bias, TRAIN, TEST, k=2, keep_predictions=True)
    m, p = result.metrics, result.predictions
    err = (p["prediction"] - p["rating"]).to_numpy()
    warm = p["user"].isin(["u1", "u2"]).to_numpy()
    cold_item = (p["item"] == "e").to_numpy()
    assert m["warm/rmse"] == pytest.approx(np.sqrt(np.mean(err[warm] ** 2)))
    assert m["cold/rmse"] == pytest.approx(np.sqrt(np.mean(err[~warm] ** 2)))
    assert m["cold/mae"] == pytest.approx(np.mean(np.abs(err[~warm])))
    assert m["cold_items/rmse"] == pytest.approx(abs(err[cold_item][0]))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)))
    assert m["warm/rmse"] != pytest.approx(m["rmse"])


def test_an_empty_population_has_sizes_but_no_metrics(popularity):
    warm_only = TEST[TEST["user"] != "u5"]
    m = evaluate(Bias().fit(Interactions.from_frame(TRAIN)), TRAIN, warm_only, k=2).metrics
    assert (m["cold/users"], m["cold/rows"]) == (0, 0)
    assert not [
        name for name in m if name.startswith("cold/") and name[5:] not in ("users", "rows")
    ]
    assert m["warm/rmse"] == pytest.approx(m["rmse"])
    assert m["warm/ndcg_at_2"] == pytest.approx(m["ndcg_at_2"])


def test_populations_come_from_the_split_not_from_the_model():
    """A champion trained on other data (it knows u1 only) is judged on the same users as a
    challenger trained on this split: u2 is warm for both, though unknown to the champion."""
    champion = Bias().fit(Interactions.from_frame(TRAIN[TRAIN["user"] == "u1"]))
    challenger = Bias().fit(Interactions.from_frame(TRAIN))
    old = evaluate(champion, TRAIN, TEST, k=2).metrics
    new = evaluate(challenger, TRAIN, TEST, k=2).metrics
    sizes = [f"{p}/{n}" for p in ("all", "warm", "cold") for n in ("users", "rows")]
    assert [old[s] for s in sizes] == [new[s] for s in sizes] == [3, 5, 2, 3, 1, 2]
    assert old["warm/rmse"] != pytest.approx(new["warm/rmse"])


def test_population_names():
    assert M.in_population("rmse", "warm") == "warm/rmse"
    assert M.in_population("ndcg_at_10", "all") == "ndcg_at_10"
    assert M.in_population("all/rmse", "warm") == "rmse"
    assert M.in_population("cold/rmse", "warm") == "cold/rmse"
    assert M.population_of("warm/ndcg_at_10") == "warm" and M.population_of("mae") == "all"
    assert M.lower_is_better("cold/rmse") and not M.lower_is_better("warm/ndcg_at_10")
    assert M.lower_is_better("cold_items/mae")
    with pytest.raises(ValueError, match="unknown population 'new'"):
        M.in_population("rmse", "new")


def test_without_ranking_the_rating_metrics_are_the_same_and_no_list_is_made(monkeypatch):
    bias = Bias().fit(Interactions.from_frame(TRAIN))
    full = evaluate(bias, TRAIN, TEST, k=2).metrics

    def no_lists(*args, **kwargs):
        raise AssertionError("a top-k list was computed")

    monkeypatch.setattr(bias, "recommend_idx", no_lists)
    rating = evaluate(bias, TRAIN, TEST, k=2, ranking=False).metrics
    assert rating == {name: value for name, value in full.items() if "_at_" not in name}
    assert "rmse" in rating and "warm/users" in rating and "ndcg_at_2" in full


def test_without_ranking_a_model_without_ratings_is_refused(popularity):
    with pytest.raises(ConfigError, match="does not predict ratings"):
        evaluate(popularity, TRAIN, TEST, k=2, ranking=False)
