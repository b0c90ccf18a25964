import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.models import create

MEMBERS = [{"model": "bias"}, {"model": "als"}, {"model": "item-knn", "params": {"k": 20}}]


def test_quality_and_at_least_as_good_as_its_best_member(quality):
    # measured on the fixture: RMSE 0.779 against the bias baseline's 0.928 and its best member's
    # (als) 0.798; 1.021 with the members' factors and similarities zeroed
    blend = quality.rating(
        "blend", {"members": MEMBERS}, beats_bias_by=0.07, zeroed=("user_factors_", "similarities_")
    )
    members = [
        quality.rmse(create(m["model"], m.get("params")).fit(quality.fx.data)) for m in MEMBERS
    ]
    assert quality.rmse(blend) <= min(members)
    assert blend.weights_.shape == (3,)


def test_members_are_checked():
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        create("blend", {"members": [{"model": "nope"}]})
    with pytest.raises(ConfigError, match="does not predict ratings"):
        create("blend", {"members": [{"model": "ease"}]})
    with pytest.raises(ConfigError, match="holdout=0.9"):
        create("blend", {"holdout": 0.9})
