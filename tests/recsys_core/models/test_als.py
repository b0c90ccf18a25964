import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.features.matrix import Interactions
from recsys_core.models import create


def test_quality_and_history(quality):
    # measured on the fixture: RMSE 0.798 against the bias baseline's 0.928, 0.973 zeroed
    model = quality.rating("als", {}, beats_bias_by=0.06, zeroed=("user_factors_", "item_factors_"))
    assert len(model.history_) == model.config.iterations
    assert model.history_[-1]["train_loss"] < model.history_[0]["train_loss"]


def test_validation_curve(small):
    test = Interactions.from_frame(small.test, users=small.data.users, items=small.data.items)
    model = create("als", {"iterations": 3}).fit(small.data, eval_data=test)
    assert [h["epoch"] for h in model.history_] == [1, 2, 3]
    assert all(0.5 < h["val_rmse"] < 1.5 for h in model.history_)


def test_config_ranges():
    with pytest.raises(ConfigError, match="factors=-1"):
        create("als", {"factors": -1})
    with pytest.raises(ConfigError, match="reg=0"):
        create("als", {"reg": 0})
