"""A new family declares what it can do on its class, and nothing else changes.

Two families defined only here, with fitted attributes named unlike any other model's (a
scorer that looked for ``user_factors_`` or ``weights_`` would find nothing), get fold-in, serving,
their roles, the Spark engine's decision and forgetting from their declarations alone.
"""

from typing import ClassVar

import numpy as np
import pytest

from recsys_core.evaluation.gate import competing_roles
from recsys_core.features.matrix import Interactions
from recsys_core.models.base import Capabilities, ModelConfig, Recommender
from recsys_core.models.training import Training
from recsys_core.serving import Scorer
from recsys_core.spark.engine import scores_in_spark


class SvdConfig(ModelConfig):
    factors: int = 4


class TruncatedSvd(Recommender[SvdConfig]):
    """Ranking by a truncated SVD of the interaction matrix (a test family)."""

    capabilities = Capabilities(
        predicts_ratings=False, fold_in="factors", factor_scores=True, scored_in_spark=True
    )
    factor_attributes: ClassVar[dict[str, str]] = {
        "user_factors": "left_",
        "item_factors": "right_",
    }
    user_axes: ClassVar[dict[str, int]] = {"left_": 0}
    left_: np.ndarray
    """users x factors"""
    right_: np.ndarray
    """items x factors"""

    def _fit(self, data: Interactions, training: Training) -> None:
        u, s, vt = np.linalg.svd(data.matrix.toarray(), full_matrices=False)
        k = self.config.factors
        self.left_ = (u[:, :k] * s[:k]).astype(np.float32)
        self.right_ = vt[:k].T.astype(np.float32)

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        return (self.left_[u] @ self.right_.T).astype(np.float64)


class Cooccurrence(Recommender):
    """Ranking by item co-occurrence counts, scored from the user's items (a test family)."""

    capabilities = Capabilities(predicts_ratings=False, fold_in="item-item")
    item_item_attributes: ClassVar[dict[str, str]] = {"weights": "cooc_", "user_items": "rows_"}
    user_axes: ClassVar[dict[str, int]] = {"rows_": 0}

    def _fit(self, data: Interactions, training: Training) -> None:
        binary = data.matrix.astype(bool).astype(np.float32).tocsr()
        self.rows_ = binary
        cooc = (binary.T @ binary).toarray()
        np.fill_diagonal(cooc, 0.0)
        self.cooc_ = cooc

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        return np.asarray(self.rows_[u] @ self.cooc_, dtype=np.float64)


FAMILIES = {"test-svd": TruncatedSvd, "test-cooc": Cooccurrence}
for _name, _cls in FAMILIES.items():
    _cls.name = _name  # what registry.register sets; the real registry is left as it is


@pytest.mark.parametrize("name", ["test-svd", "test-cooc"])
def test_a_new_family_gets_fold_in_and_serving_from_its_declarations(tiny, name):
    model = FAMILIES[name]().fit(tiny.data)
    scorer = Scorer(model)
    assert scorer.family == model.capabilities.fold_in and scorer.can_fold_in
    # a known user: the scorer's list is the model's own
    user = str(model.user_vocab_.ids[0])
    offline = model.recommend([user], 5)["item"].astype(str).tolist()
    assert [i.item_id for i in scorer.recommend(user, 5).items] == offline
    # a new user with three recent items is folded in, not sent to the popularity fallback
    recent = [str(i) for i in model.item_vocab_.ids[:3]]
    answer = scorer.recommend(None, 5, recent_items=recent, explain=True)
    assert answer.fallback is None and answer.folded_in == 3 and not answer.warnings
    assert len(answer.items) == 5 and not set(recent) & {i.item_id for i in answer.items}
    scores = model.fold_in(np.arange(3))
    best = [str(model.item_vocab_.ids[j]) for j in np.argsort(-scores, kind="stable") if j >= 3][:5]
    assert [i.item_id for i in answer.items] == best
    assert scorer.similar_items(recent[0], 3)


def test_a_new_family_gets_its_roles_engine_and_forgetting(tiny):
    for name, cls in FAMILIES.items():
        assert competing_roles("auto", fillable=cls.capabilities.roles, model=name) == ["ranking"]
        assert cls.capabilities.as_dict()["roles"] == ["ranking"]  # what `recsys models` lists
    assert Cooccurrence.per_user_arrays()["rows_"] == 0  # its own, beside the base class's
    assert "rows_" not in TruncatedSvd.per_user_arrays()
    assert scores_in_spark(TruncatedSvd) and not scores_in_spark(Cooccurrence)
    model = Cooccurrence().fit(tiny.data)
    n = model.n_users
    assert model.forget_users([str(model.user_vocab_.ids[0])]) == 1
    assert model.rows_.shape[0] == n - 1


def test_predicts_ratings_is_declared_in_the_capabilities_only():
    with pytest.raises(TypeError, match="declare predicts_ratings in its capabilities"):
        type("Odd", (TruncatedSvd,), {"predicts_ratings": True})
