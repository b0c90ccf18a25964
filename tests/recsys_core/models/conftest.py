"""Synthetic fixtures shared by the model tests (tiny for the contract, small for quality), and
the quality bars every model's test goes through (``quality``)."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_core.data.synthetic import config_for, generate
from recsys_core.evaluation.evaluate import evaluate
from recsys_core.features.matrix import Interactions
from recsys_core.features.splits import SplitConfig, split
from recsys_core.models import create
from recsys_core.models.base import Recommender

# fast settings for the slow-to-fit models, used where a test fits many times
FAST = {
    "blend": {
        "members": [
            {"model": "bias"},
            {"model": "als", "params": {"iterations": 3}},
        ]
    },
    "bpmf": {"burn_in": 3, "samples": 4},
    # tiny has too few users for a meaningful budget: little noise, the mechanics all run
    "dp-als": {"epsilon": 1e4, "iterations": 3},
    # k may not exceed the catalogue (tiny has about 40 items)
    "item-knn": {"k": 20},
    "item-knn-implicit": {"k": 20},
    "implicit-bpr": {"iterations": 10},
    "svdpp": {"epochs": 5},
    "sgd-mf": {"epochs": 5, "factors": 20},
    "hybrid": {"cf_params": {"epochs": 5, "factors": 10}},
    "mult-vae": {"epochs": 3, "hidden_dims": (32,), "latent_dim": 8, "batch_size": 64},
    "rerank": {
        "retrievers": [
            {"model": "ease"},
            {"model": "item-knn-implicit", "params": {"k": 20}},
            {"model": "implicit-als", "params": {"iterations": 3, "factors": 8}},
            {"model": "popularity"},
        ],
        "candidates": 20,
        "n_estimators": 10,
        "min_child_samples": 5,
    },
}


class Fixture:
    def __init__(self, size: str, seed: int = 7) -> None:
        col = generate(config_for(size, seed=seed))
        s = split(col.interactions, SplitConfig(strategy="random", seed=seed))
        self.frame = col.interactions
        self.items = col.items
        self.train = s.train
        self.test = s.test
        self.data = Interactions.from_frame(s.train, item_meta=col.items)
        self.full = Interactions.from_frame(col.interactions, item_meta=col.items)


@pytest.fixture(scope="session")
def tiny() -> Fixture:
    return Fixture("tiny")


@pytest.fixture(scope="session")
def small() -> Fixture:
    # the 100k shape: smaller sets are too sparse for any model to beat the biases
    return Fixture("100k")


@pytest.fixture(scope="session")
def fast() -> dict:
    """Per-model hyperparameters that keep repeated fits quick."""
    return FAST


@pytest.fixture(scope="session")
def rmse():
    """RMSE of a fitted model on a fixture's test split."""
    return _rmse


def _rmse(model: Recommender, fx: Fixture) -> float:
    u = model.user_vocab_.index(fx.test["user"])
    i = model.item_vocab_.index(fx.test["item"])
    err = model.predict_idx(u, i) - fx.test["rating"].to_numpy()
    return float(np.sqrt(np.mean(err**2)))


def _zeroed(model: Recommender, names: tuple[str, ...]) -> Recommender:
    """A copy of ``model`` with the fitted attributes ``names`` set to zero, in the model and in
    its members (a composite's); every name must exist somewhere."""
    out = copy.deepcopy(model)
    found: set[str] = set()

    def zero(m: Recommender) -> None:
        for name in names:
            if hasattr(m, name):
                value = getattr(m, name)
                setattr(m, name, value * 0 if sp.issparse(value) else np.zeros_like(value))
                found.add(name)
        for member in getattr(m, "members_", []):
            zero(member)

    zero(out)
    missing = set(names) - found
    assert not missing, f"{model.name} has no fitted attribute(s) {sorted(missing)} to zero"
    return out


class Quality:
    """The bars a model's test sets, on one fixture, against the baselines fitted once.

    * a rating model beats ``bias`` RMSE by ``beats_bias_by`` (a margin measured on the fixture
      and written beside the call), and beats itself with its personal state (``zeroed``:
      factors, similarities, profiles) set to zero by the same margin, so that a model that
      quietly degrades to its biases fails;
    * a ranker's NDCG@10 is at least ``times_popularity`` times that of ``popularity`` (popularity
      is what a degenerate ranker falls back to).
    """

    def __init__(self, fx: Fixture) -> None:
        self.fx = fx
        self._bias: float | None = None
        self._popularity: float | None = None

    def rmse(self, model: Recommender) -> float:
        return _rmse(model, self.fx)

    def ndcg(self, model: Recommender) -> float:
        return evaluate(model, self.fx.train, self.fx.test).metrics["ndcg_at_10"]

    @property
    def bias_rmse(self) -> float:
        if self._bias is None:
            self._bias = self.rmse(create("bias").fit(self.fx.data))
        return self._bias

    @property
    def popularity_ndcg(self) -> float:
        if self._popularity is None:
            self._popularity = self.ndcg(create("popularity").fit(self.fx.data))
        return self._popularity

    def rating(
        self, name: str, params: dict, *, beats_bias_by: float, zeroed: tuple[str, ...]
    ) -> Recommender:
        """Fit ``name`` and hold it to the rating bars; returns the fitted model."""
        model = create(name, params).fit(self.fx.data)
        got, bias = self.rmse(model), self.bias_rmse
        assert got <= bias - beats_bias_by, (
            f"{name} RMSE {got:.4f} is not {beats_bias_by} below the bias baseline's {bias:.4f}"
        )
        without = self.rmse(_zeroed(model, zeroed))
        assert without >= got + beats_bias_by, (
            f"{name} with {', '.join(zeroed)} zeroed has RMSE {without:.4f}, not {beats_bias_by} "
            f"above its own {got:.4f}: the model does not use them"
        )
        return model

    def ranking(self, name: str, params: dict, *, times_popularity: float) -> Recommender:
        """Fit ``name`` and hold it to the ranking bar; returns the fitted model."""
        model = create(name, params).fit(self.fx.data)
        got, pop = self.ndcg(model), self.popularity_ndcg
        assert got >= times_popularity * pop, (
            f"{name} NDCG@10 {got:.4f} is below {times_popularity} x popularity's {pop:.4f}"
        )
        return model


@pytest.fixture(scope="session")
def quality(small) -> Quality:
    """The quality bars on ``small`` (bias RMSE 0.928, popularity NDCG@10 0.144 there)."""
    return Quality(small)
