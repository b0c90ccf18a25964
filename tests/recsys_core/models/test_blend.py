import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.models import create


def test_blend_is_at_least_as_good_as_its_best_member(small, rmse):
    members = [{"model": "bias"}, {"model": "als"}, {"model": "item-knn", "params": {"k": 20}}]
    blend = create("blend", {"members": members}).fit(small.data)
    best = min(rmse(create(m["model"], m.get("params")).fit(small.data), small) for m in members)
    assert rmse(blend, small) < best + 0.005
    assert blend.weights_.shape == (3,)


def test_members_are_checked():
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        create("blend", {"members": [{"model": "nope"}]})
    with pytest.raises(ConfigError, match="does not predict ratings"):
        create("blend", {"members": [{"model": "ease"}]})
    with pytest.raises(ConfigError, match="holdout=0.9"):
        create("blend", {"holdout": 0.9})
