import numpy as np
import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.models import create


def _shapes(model, data):
    assert model.user_factors_.shape[0] == data.n_users
    assert model.item_factors_.shape[0] == data.n_items
    assert model.user_factors_.dtype == np.float32


def test_implicit_als_quality(quality):
    # measured on the fixture: NDCG@10 0.368 against popularity's 0.144 (2.6x)
    model = quality.ranking("implicit-als", {"factors": 16}, times_popularity=1.5)
    _shapes(model, quality.fx.data)


def test_implicit_bpr_quality(quality):
    # measured on the fixture: NDCG@10 0.365 against popularity's 0.144 (2.5x)
    model = quality.ranking("implicit-bpr", {"factors": 32, "iterations": 50}, times_popularity=1.5)
    _shapes(model, quality.fx.data)


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
