"""Synthetic fixtures shared by the model tests (tiny for the contract, small for quality)."""

import numpy as np
import pytest

from recsys_core.data.synthetic import config_for, generate
from recsys_core.features.matrix import Interactions
from recsys_core.features.splits import SplitConfig, split

# fast settings for the slow-to-fit models, used where a test fits many times
FAST = {
    "blend": {
        "members": [
            {"model": "bias"},
            {"model": "als", "params": {"iterations": 3}},
        ]
    },
    "bpmf": {"burn_in": 3, "samples": 4},
    # k may not exceed the catalogue (tiny has about 40 items)
    "item-knn": {"k": 20},
    "item-knn-implicit": {"k": 20},
    "implicit-bpr": {"iterations": 10},
    "svdpp": {"epochs": 5},
    "sgd-mf": {"epochs": 5, "factors": 20},
    "hybrid": {"cf_params": {"epochs": 5, "factors": 10}},
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

    def score(model, fx: Fixture) -> float:
        u = model.user_vocab_.index(fx.test["user"])
        i = model.item_vocab_.index(fx.test["item"])
        err = model.predict_idx(u, i) - fx.test["rating"].to_numpy()
        return float(np.sqrt(np.mean(err**2)))

    return score
