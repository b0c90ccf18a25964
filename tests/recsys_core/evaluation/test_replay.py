"""replay(): prequential evaluation of the next period, by hand and against the service's Scorer."""

import importlib.util
import math

import numpy as np
import pandas as pd
import pytest

from recsys_core.data import synthetic
from recsys_core.evaluation.replay import bucket_of, plot_by_bucket, replay
from recsys_core.exceptions import ConfigError, DataError
from recsys_core.features import Interactions, SplitConfig, split
from recsys_core.models import create
from recsys_core.models.baselines import Bias, Popularity
from recsys_core.models.ease import EASE
from recsys_core.models.sgd_mf import SGDMF
from recsys_core.serving.scorer import Scorer

NDCG_RANK_2 = 1 / math.log2(3)


def _frame(rows):
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


# train: popularity x (4) > y (3) > z (2) > w (1)
TRAIN = _frame(
    [
        ("u0", "x", 3.0, 0),
        ("u0", "y", 3.0, 0),
        ("u0", "z", 3.0, 0),
        ("u0", "w", 3.0, 0),
        ("a", "x", 4.0, 1),
        ("b", "x", 3.0, 2),
        ("b", "y", 5.0, 3),
        ("c", "x", 2.0, 4),
        ("c", "y", 4.0, 5),
        ("c", "z", 1.0, 6),
    ]
)
# test: d is cold (y, x, w in time order, listed out of order), a is warm (y then z)
TEST = _frame(
    [
        ("d", "x", 4.0, 101),
        ("a", "z", 2.0, 104),
        ("d", "y", 5.0, 100),
        ("a", "y", 3.0, 103),
        ("d", "w", 1.0, 102),
    ]
)
ITEMS = ["w", "x", "y", "z"]  # vocabulary order of the fixed item-item model below


@pytest.fixture(scope="module")
def popularity():
    return Popularity().fit(Interactions.from_frame(TRAIN))


def _interactions(result):
    return result.interactions.set_index(["user", "item"])


def test_popularity_by_hand(popularity):
    result = replay(popularity, TEST, k=1, keep_interactions=True)
    ranks = _interactions(result)["rank"].to_dict()
    # d: [x] misses y; y revealed, [x] hits x; y, x revealed: [z] misses w
    # a (has x): [y] hits y; y revealed: [z] hits z
    assert ranks == {("d", "y"): 0, ("d", "x"): 1, ("d", "w"): 0, ("a", "y"): 1, ("a", "z"): 1}
    m = result.metrics
    assert m["hit_rate_at_1"] == pytest.approx(3 / 5)
    assert m["revealed_0/hit_rate_at_1"] == pytest.approx(1 / 2)
    assert m["revealed_1-4/hit_rate_at_1"] == pytest.approx(2 / 3)
    assert m["cold/hit_rate_at_1"] == pytest.approx(1 / 3)
    assert m["warm/hit_rate_at_1"] == 1.0
    assert m["cold/revealed_0/n"] == 1.0
    assert "revealed_20_plus/n" not in m  # empty buckets are not metrics
    assert result.counts == {
        "test_rows": 5,
        "test_users": 2,
        "cold_users": 1,
        "cold_user_rows": 3,
        "cold_item_rows": 0,
    }


def test_popularity_rank_metrics_by_hand(popularity):
    result = replay(popularity, TEST, k=2, keep_interactions=True)
    ranks = _interactions(result)["rank"].to_dict()
    # d: [x, y] -> y at 2; [x, z] -> x at 1; [z, w] -> w at 2. a: [y, z] -> 1; [z, w] -> 1
    assert ranks == {("d", "y"): 2, ("d", "x"): 1, ("d", "w"): 2, ("a", "y"): 1, ("a", "z"): 1}
    m = result.metrics
    assert m["hit_rate_at_2"] == 1.0
    assert m["ndcg_at_2"] == pytest.approx((3 + 2 * NDCG_RANK_2) / 5)
    assert m["mrr_at_2"] == pytest.approx((3 + 2 * 0.5) / 5)
    assert m["cold/revealed_1-4/mrr_at_2"] == pytest.approx((1 + 0.5) / 2)


def _fixed_item_item():
    """EASE fitted on TRAIN with its weights replaced by W: y -> z (1), z -> w (1), x -> y (0.5)."""
    model = EASE().fit(Interactions.from_frame(TRAIN))
    assert list(model.item_vocab_.ids) == ITEMS
    pos = {item: n for n, item in enumerate(ITEMS)}
    W = np.zeros((4, 4), np.float32)
    W[pos["y"], pos["z"]] = 1.0
    W[pos["z"], pos["w"]] = 1.0
    W[pos["x"], pos["y"]] = 0.5
    model.weights_ = W
    return model


def test_fixed_item_item_model_by_hand():
    test = _frame(
        [
            ("d", "y", 5, 100),
            ("d", "z", 4, 101),
            ("d", "w", 3, 102),
            ("a", "y", 3, 103),
            ("a", "w", 2, 104),
        ]
    )
    result = replay(_fixed_item_item(), test, k=1, keep_interactions=True)
    ranks = _interactions(result)["rank"].to_dict()
    # d (cold): popularity [x] misses y; y folded in: scores W_y = {z: 1}: hits z;
    # y, z folded in: W_y + W_z = {z: 1, w: 1}, z excluded: hits w.
    # a (has x): W_x = {y: .5}: hits y; y folded in: W_x + W_y = {y: .5, z: 1}: [z] misses w
    assert ranks == {("d", "y"): 0, ("d", "z"): 1, ("d", "w"): 1, ("a", "y"): 1, ("a", "w"): 0}


def test_the_scored_interaction_is_not_folded_in_before_it_is_scored():
    # every hit above needs the target unseen when it is scored: folded in first, it would be
    # excluded from the list and every rank would be 0
    result = replay(
        _fixed_item_item(),
        _frame([("d", "y", 5, 1), ("d", "z", 4, 2)]),
        k=1,
        keep_interactions=True,
    )
    assert result.interactions["rank"].tolist() == [0, 1]
    # and a later interaction is not folded in early: z alone (no y yet) would put w first
    result = replay(
        _fixed_item_item(),
        _frame([("d", "z", 5, 1), ("d", "w", 4, 2), ("d", "y", 3, 3)]),
        k=1,
        keep_interactions=True,
    )
    assert result.interactions["rank"].tolist() == [0, 1, 0]


def test_equal_timestamps_keep_the_file_order(popularity):
    test = _frame([("d", "z", 4, 7), ("d", "y", 5, 7)])
    result = replay(popularity, test, k=3, keep_interactions=True)
    # z first: [x, y, z] -> rank 3; then z is excluded: [x, y, w] -> y at 2
    assert result.interactions["rank"].tolist() == [3, 2]
    assert result.interactions["revealed"].tolist() == [0, 1]


def test_cold_items_are_misses_and_not_folded_in():
    test = _frame([("d", "new", 5, 100), ("d", "z", 4, 101)])
    result = replay(_fixed_item_item(), test, k=1, keep_interactions=True)
    # the cold item cannot be ranked; d still has nothing folded in, so z gets popularity [x]
    assert result.interactions["rank"].tolist() == [0, 0]
    assert result.counts["cold_item_rows"] == 1


def test_rating_error_is_the_models_prediction_by_bucket():
    model = Bias().fit(Interactions.from_frame(TRAIN))
    result = replay(model, TEST, k=2, keep_interactions=True)
    frame = result.interactions
    expected = model.predict(frame["user"], frame["item"])
    assert frame["prediction"].to_numpy() == pytest.approx(expected)
    truth = frame["rating"].to_numpy()
    assert result.metrics["rmse"] == pytest.approx(np.sqrt(np.mean((expected - truth) ** 2)))
    zero = (frame["revealed"] == 0).to_numpy()
    assert result.metrics["revealed_0/mae"] == pytest.approx(
        np.mean(np.abs(expected[zero] - truth[zero]))
    )


def test_bucket_edges():
    labels = bucket_of(np.array([0, 1, 4, 5, 19, 20, 500]))
    assert labels.tolist() == ["0", "1-4", "1-4", "5-19", "5-19", "20+", "20+"]


@pytest.fixture(scope="module")
def synthetic_split():
    frame = synthetic.generate(synthetic.config_for("small", seed=3)).interactions
    return split(frame, SplitConfig(strategy="time"))


def _reference_ranks(model, test, k):
    """Each test interaction answered by the service's Scorer, one request at a time, with the
    user's earlier test items as recent_items."""
    scorer = Scorer(model)
    test = test.reset_index(drop=True)
    order = np.lexsort((test["timestamp"].to_numpy(), test["user"].astype(str).to_numpy()))
    out = {}
    history: dict[str, list[str]] = {}
    for n in order:
        user, item = str(test.at[n, "user"]), str(test.at[n, "item"])
        recent = history.setdefault(user, [])
        answer = scorer.recommend(user, k, recent_items=list(recent))
        ids = [s.item_id for s in answer.items]
        out[(user, item, int(test.at[n, "timestamp"]))] = ids.index(item) + 1 if item in ids else 0
        recent.append(item)
    return out


RERANK = {
    "retrievers": [{"model": "ease"}, {"model": "popularity"}],
    "candidates": 30,
    "n_estimators": 10,
}
VAE = {"hidden_dims": (32,), "latent_dim": 8, "epochs": 3, "val_users": 0.0}
_TORCH = importlib.util.find_spec("torch") is not None


@pytest.mark.parametrize(
    ("make", "n_users"),
    [
        (lambda: EASE(reg=50.0), 40),
        (lambda: SGDMF(epochs=5, seed=1), 40),
        (lambda: Bias(), 40),
        (lambda: Popularity(), 40),
        # the families that fold in and explain by themselves: a request each, as in the service
        (lambda: create("rerank", RERANK), 15),
        pytest.param(
            lambda: create("mult-vae", VAE),
            20,
            marks=pytest.mark.skipif(not _TORCH, reason="mult-vae trains with PyTorch"),
        ),
    ],
    ids=["item-item", "factors", "no-fold-in", "tied-scores", "rerank", "mult-vae"],
)
def test_batched_replay_answers_as_the_service_does(synthetic_split, make, n_users):
    train, test = synthetic_split.train, synthetic_split.test
    # keep the first rows of a few users: every bucket but 20+ is populated, the reference is
    # quick
    users = pd.unique(test.sort_values("timestamp")["user"])[:n_users]
    test = test[test["user"].isin(users)]
    model = make().fit(Interactions.from_frame(train))
    result = replay(model, test, k=5, chunk_users=7, keep_interactions=True)
    got = {
        (r.user, r.item, int(r.timestamp)): int(r.rank) for r in result.interactions.itertuples()
    }
    expected = _reference_ranks(model, test, 5)
    assert got == expected
    assert sum(v > 0 for v in got.values()) > 0  # some hits: the comparison is not all zeros


def test_bad_input(popularity):
    with pytest.raises(ConfigError, match="empty"):
        replay(popularity, TEST.iloc[:0])
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        replay(popularity, TEST, k=0)
    with pytest.raises(DataError, match=r"lacks column\(s\) \['timestamp'\]"):
        replay(popularity, TEST.drop(columns="timestamp"))
    with pytest.raises(ConfigError, match="chunk_users"):
        replay(popularity, TEST, chunk_users=0)
    bias = Bias().fit(Interactions.from_frame(TRAIN))
    with pytest.raises(DataError, match="not finite"):
        replay(bias, TEST.assign(rating=[1.0, np.nan, 2.0, 3.0, 4.0]))


def test_plot_by_bucket(popularity, tmp_path):
    table = replay(popularity, TEST, k=2).table
    path = plot_by_bucket(table, "ndcg_at_2", tmp_path / "replay.png")
    assert path.stat().st_size > 1000
    with pytest.raises(ConfigError, match="no metric 'rmse'"):
        plot_by_bucket(table, "rmse", tmp_path / "x.png")
