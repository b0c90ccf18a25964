"""Online scoring: agreement with the offline path, fold-in, fallbacks, explanations."""

import numpy as np
import pytest

from recsys_core.data.synthetic import config_for, generate
from recsys_core.exceptions import ModelCapabilityError
from recsys_core.features import Interactions
from recsys_core.models import create
from recsys_core.models.base import Capabilities, ModelReason
from recsys_core.models.baselines import Popularity, PopularityConfig
from recsys_core.serving import Scorer
from recsys_core.serving.scorer import _top_k

PARAMS = {
    "ease": {"reg": 50.0},
    "item-knn-implicit": {"k": 20},
    "sgd-mf": {"epochs": 5, "factors": 8},
    "als": {"iterations": 4, "factors": 8},
    "svdpp": {"epochs": 3, "factors": 4},
    "implicit-als": {"factors": 8, "iterations": 5},
    "implicit-bpr": {"factors": 8, "iterations": 10},
    "bpmf": {"burn_in": 2, "samples": 2},
    "item-knn": {"k": 10},
    "popularity": {},
}
FAMILY = {
    "ease": "item-item",
    "item-knn-implicit": "item-item",
    "sgd-mf": "factors",
    "als": "factors",
    "svdpp": "factors",
    "implicit-als": "factors",
    "implicit-bpr": "factors",
    "bpmf": "other",
    "item-knn": "other",
    "popularity": "other",
}


@pytest.fixture(scope="module")
def data():
    return Interactions.from_frame(generate(config_for("small", seed=3)).interactions)


@pytest.fixture(scope="module")
def fitted(data):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = create(name, PARAMS[name]).fit(data)
        return cache[name]

    return get


@pytest.mark.parametrize("name", list(PARAMS))
def test_known_user_matches_the_offline_top_k(fitted, data, name):
    model = fitted(name)
    scorer = Scorer(model)
    assert scorer.family == FAMILY[name]
    users = data.users.ids[:5]
    offline = model.recommend(users, 10)
    for user in users:
        rec = scorer.recommend(user, 10)
        assert rec.fallback is None and rec.warnings == []
        expected = offline[offline.user == str(user)]
        assert [i.item_id for i in rec.items] == list(expected["item"])
        np.testing.assert_allclose([i.score for i in rec.items], expected["score"], rtol=1e-4)


def test_seen_and_excluded_items_never_come_back(fitted, data):
    scorer = Scorer(fitted("ease"))
    user = data.users.ids[0]
    seen = set(data.items.ids[data.matrix[0].indices])
    first = scorer.recommend(user, 10)
    banned = [first.items[0].item_id, first.items[3].item_id]
    again = scorer.recommend(user, 10, exclude=banned)
    got = {i.item_id for i in again.items}
    assert not got & seen and not got & set(banned) and len(got) == 10


def test_unknown_user_gets_popularity_flagged(fitted, data):
    model = fitted("sgd-mf")
    rec = Scorer(model).recommend("no-such-user", 5)
    assert rec.fallback == "popularity"
    order = np.argsort(-model.item_popularity_, kind="stable")[:5]
    assert {i.item_id for i in rec.items} == set(data.items.ids[order])


@pytest.mark.parametrize(
    "name", ["ease", "item-knn-implicit", "sgd-mf", "als", "implicit-als", "implicit-bpr"]
)
def test_fold_in_gives_a_new_user_personal_results(fitted, data, name):
    scorer = Scorer(fitted(name))
    pop = [i.item_id for i in scorer.recommend("new-user", 10).items]
    overlaps = []
    for u in range(8):
        history = list(data.items.ids[data.matrix[u].indices])
        cold = scorer.recommend("new-user", 10, recent_items=history)
        assert cold.fallback is None and cold.folded_in == len(history)
        assert not {i.item_id for i in cold.items} & set(history)
        known = [i.item_id for i in scorer.recommend(data.users.ids[u], 10).items]
        overlaps.append(
            (len(set(known) & {i.item_id for i in cold.items}), len(set(known) & set(pop)))
        )
    # folding in a user's own history lands nearer their own list than popularity does
    assert sum(a for a, _ in overlaps) > sum(b for _, b in overlaps)


@pytest.mark.parametrize("name", ["ease", "sgd-mf", "implicit-als"])
def test_recent_items_change_a_known_users_answer(fitted, data, name):
    scorer = Scorer(fitted(name))
    user = data.users.ids[1]
    before = scorer.recommend(user, 10)
    clicked = [before.items[0].item_id, before.items[1].item_id]
    after = scorer.recommend(user, 10, recent_items=clicked)
    assert after.folded_in == 2 and not set(clicked) & {i.item_id for i in after.items}
    assert [i.item_id for i in after.items] != [i.item_id for i in before.items][2:] + [None]
    assert [i.score for i in after.items] != [i.score for i in before.items]


def test_item_item_fold_in_of_a_history_equals_the_known_user(fitted, data):
    scorer = Scorer(fitted("ease"))
    history = list(data.items.ids[data.matrix[2].indices])
    cold = scorer.recommend(None, 10, recent_items=history)
    known = scorer.recommend(data.users.ids[2], 10)
    assert [i.item_id for i in cold.items] == [i.item_id for i in known.items]


def test_unknown_recent_items_are_ignored_and_listed(fitted, data):
    scorer = Scorer(fitted("ease"))
    item = data.items.ids[0]
    rec = scorer.recommend(None, 5, recent_items=[item, "nope-1", "nope-2"], exclude=["zz"])
    assert rec.folded_in == 1 and rec.fallback is None
    assert "'nope-1', 'nope-2'" in rec.warnings[0] and "recent_items" in rec.warnings[0]
    assert "'zz'" in rec.warnings[1] and "exclude" in rec.warnings[1]
    only_unknown = scorer.recommend(None, 5, recent_items=["nope"])
    assert only_unknown.fallback == "popularity"


def test_a_model_that_cannot_fold_in_says_so(fitted, data):
    scorer = Scorer(fitted("bpmf"))
    assert not scorer.can_fold_in
    item = data.items.ids[0]
    known = scorer.recommend(data.users.ids[0], 5, recent_items=[item])
    assert known.fallback == "recent-items-ignored" and "cannot fold in" in known.warnings[0]
    assert item not in {i.item_id for i in known.items}
    cold = scorer.recommend(None, 5, recent_items=[item])
    assert cold.fallback == "popularity" and "cannot fold in" in cold.warnings[0]


def test_item_item_explanations_are_the_largest_weight_terms(fitted, data):
    model = fitted("ease")
    scorer = Scorer(model)
    user = data.users.ids[4]
    history = data.matrix[4].indices
    rec = scorer.recommend(user, 3, explain=True)
    for item in rec.items:
        assert 1 <= len(item.reasons) <= 3
        j = scorer.item_index(item.item_id)
        weights = model.weights_[history, j]
        best = data.items.ids[history[np.argmax(weights)]]
        assert item.reasons[0].item_id == best
        assert item.reasons[0].weight == pytest.approx(weights.max(), rel=1e-5)
        # no metadata in this data: items are named by id; the number is in the weight field
        assert item.reasons[0].text == f"you interacted with item {best}"
        assert item.reasons[0].title is None


def test_factor_explanations_name_the_users_nearest_items(fitted, data):
    scorer = Scorer(fitted("implicit-als"))
    history = set(data.items.ids[data.matrix[5].indices])
    rec = scorer.recommend(data.users.ids[5], 3, explain=True)
    for item in rec.items:
        assert item.reasons and all(r.item_id in history for r in item.reasons)
        assert item.reasons[0].text == (
            f"similar to item {item.reasons[0].item_id}, which you interacted with"
        )
        weights = [r.weight for r in item.reasons]
        assert weights == sorted(weights, reverse=True)
    pop = scorer.recommend(None, 2, explain=True)
    assert pop.items[0].reasons[0].text == "popular with other users"
    assert (
        pop.items[0].reasons[0].weight
        == scorer.model.item_popularity_[scorer.item_index(pop.items[0].item_id)]
    )


@pytest.mark.parametrize("name", ["ease", "implicit-als", "bpmf"])
def test_similar_items(fitted, data, name):
    scorer = Scorer(fitted(name))
    item = data.items.ids[3]
    sims = scorer.similar_items(item, 5)
    assert len(sims) == 5 and item not in {s.item_id for s in sims}
    scores = [s.score for s in sims]
    assert scores == sorted(scores, reverse=True)
    assert scorer.similar_items("no-such-item", 5) is None


def test_predict_matches_the_model_and_flags_cold_ids(fitted, data):
    model = fitted("sgd-mf")
    scorer = Scorer(model)
    user, item = data.users.ids[0], data.items.ids[1]
    p = scorer.predict(user, item)
    assert p.rating == pytest.approx(float(model.predict([user], [item])[0]))
    assert p.fallback is None
    assert "unknown user" in scorer.predict("nobody", item).fallback
    with pytest.raises(ModelCapabilityError, match="does not predict ratings"):
        Scorer(fitted("ease")).predict(user, item)


def test_k_must_be_positive(fitted):
    with pytest.raises(ValueError, match="positive"):
        Scorer(fitted("ease")).recommend(None, 0)


@pytest.mark.parametrize("name", ["ease", "sgd-mf", "popularity"])
def test_k_above_the_unseen_items_gives_every_unseen_item_and_nothing_seen(fitted, data, name):
    scorer = Scorer(fitted(name))
    user = data.users.ids[0]
    seen = set(data.items.ids[data.matrix[0].indices])
    unseen = set(data.items.ids) - seen
    rec = scorer.recommend(user, len(data.items.ids) + 5)
    got = [i.item_id for i in rec.items]
    assert len(got) == len(set(got)) == len(unseen)
    assert set(got) == unseen
    assert all(np.isfinite(i.score) for i in rec.items)


def test_top_k_keeps_only_finite_scores_best_first():
    scores = np.array([0.5, -np.inf, 2.0, np.nan, 1.0, -np.inf], dtype=np.float64)
    np.testing.assert_array_equal(_top_k(scores, 10), [2, 4, 0])
    np.testing.assert_array_equal(_top_k(scores, 2), [2, 4])
    assert _top_k(np.full(3, -np.inf), 3).size == 0


@pytest.mark.parametrize("name", ["ease", "item-knn-implicit"])
def test_item_item_requests_copy_no_model_array(fitted, data, name, tmp_path):
    import tracemalloc

    from recsys_core.models.base import Recommender

    model = fitted(name)
    W = model.weights_ if name == "ease" else model.similarity_
    if name == "ease":
        # a model saved before the weights were C-ordered (cho_solve's Fortran order) is
        # aligned when it is loaded
        assert W.flags.c_contiguous and W.dtype == np.float32
        model.weights_ = np.asfortranarray(W)
        loaded = Recommender.load(model.save(tmp_path / "m"))
        model.weights_ = W
        assert loaded.weights_.flags.c_contiguous and loaded.weights_.dtype == np.float32
    scorer = Scorer(model)
    users = data.users.ids[:20]
    scorer.recommend(users[0], 10)  # compiled and warm
    tracemalloc.start()
    for user in users:
        scorer.recommend(user, 10, recent_items=[data.items.ids[0]])
        scorer.recommend(user, 10)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if name == "ease":  # (the pruned similarity of item-knn-implicit is too small to tell)
        assert peak < W.nbytes / 4, (peak, W.nbytes)
    # the scores are the product x W, whatever the path
    X = model.user_items_[:20].toarray().astype(np.float64)
    W64 = W.astype(np.float64) if isinstance(W, np.ndarray) else W.toarray().astype(np.float64)
    np.testing.assert_allclose(scorer.score_block(np.arange(20)), X @ W64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        model._score_users(np.arange(20, dtype=np.int32)), X @ W64, rtol=1e-4, atol=1e-5
    )


class CoCounts(Popularity):
    """A family the Scorer knows nothing of: it declares ``fold_in="model"`` and folds in and
    explains by itself (its scores: co-occurrence counts with the user's items)."""

    name = "co-counts"
    capabilities = Capabilities(predicts_ratings=False, fold_in="model")

    def _mine(self, user: int, recent) -> np.ndarray:
        own = self.seen_[user].indices if user >= 0 else []
        return np.union1d(own, np.asarray(recent, np.int64)).astype(np.int64)

    def _co(self) -> np.ndarray:
        x = (self.seen_ > 0).astype(np.float64)
        return np.asarray((x.T @ x).todense())

    def fold_in(self, items, ratings=None, *, user=-1):
        return self._co()[self._mine(user, items)].sum(axis=0)

    def explain_idx(self, items, *, user=-1, recent=None):
        mine = self._mine(user, [] if recent is None else recent)
        co = self._co()
        return [
            (
                ModelReason("seen together with your item", float(co[mine[0], j]), int(mine[0])),
                ModelReason("and in general", 1.0),
            )
            for j in items
        ]


def test_a_new_family_declaring_model_folds_in_and_explains_through_its_own_hooks(data):
    model = CoCounts(PopularityConfig()).fit(data)
    scorer = Scorer(model)
    assert scorer.family == "model" and scorer.can_fold_in
    recent = [str(i) for i in data.items.ids[:4]]
    rec = scorer.recommend("someone-new", 5, recent_items=recent, explain=True)
    assert rec.folded_in == 4 and rec.fallback is None and not rec.warnings
    expected = model.fold_in(np.arange(4))
    expected[:4] = -np.inf
    assert [s.item_id for s in rec.items] == [str(data.items.ids[j]) for j in _top_k(expected, 5)]
    for s in rec.items:
        first, second = s.reasons
        j = scorer.item_index(s.item_id)
        assert first.item_id == recent[0] and first.weight == model._co()[0, j]
        assert first.text == "seen together with your item" and first.title is None
        assert second.item_id is None and second.weight == 1.0


def test_a_popularity_answer_writes_its_exclusions_into_a_copy(fitted, data):
    scorer = Scorer(fitted("sgd-mf"))
    popular = scorer.popular_scores().copy()
    top = data.items.ids[int(np.argmax(popular))]
    rec = scorer.recommend("no-such-user", 5, exclude=[top])
    assert rec.fallback == "popularity" and top not in {i.item_id for i in rec.items}
    # the shared row is what it was: the next cold user still gets the most popular item
    np.testing.assert_array_equal(scorer.popular_scores(), popular)
    assert scorer.recommend("another-user", 1).items[0].item_id == top
