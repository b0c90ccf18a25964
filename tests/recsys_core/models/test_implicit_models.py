import numpy as np
import pytest

from recsys_core.evaluation.evaluate import evaluate
from recsys_core.exceptions import ConfigError
from recsys_core.models import create


@pytest.mark.parametrize("name", ["implicit-als", "implicit-bpr"])
def test_factor_shapes_and_ranking(small, name):
    model = create(name).fit(small.data)
    assert model.user_factors_.shape[0] == small.data.n_users
    assert model.item_factors_.shape[0] == small.data.n_items
    assert model.user_factors_.dtype == np.float32
    ndcg = evaluate(model, small.train, small.test).metrics["ndcg_at_10"]
    assert ndcg > 0.05  # random ranking: about 0.03


@pytest.mark.parametrize("weighting", ["none", "tfidf"])
def test_weightings(tiny, weighting):
    model = create("implicit-als", {"weighting": weighting, "iterations": 3}).fit(tiny.data)
    assert np.isfinite(model.item_factors_).all()


def test_config_ranges():
    with pytest.raises(ConfigError, match="alpha=0"):
        create("implicit-als", {"alpha": 0})
    with pytest.raises(ConfigError, match="weighting"):
        create("implicit-als", {"weighting": "log"})
    with pytest.raises(ConfigError, match="learning_rate=-0.1"):
        create("implicit-bpr", {"learning_rate": -0.1})
