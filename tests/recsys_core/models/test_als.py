import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.models import create


def test_beats_the_bias_baseline_and_records_history(small, rmse):
    bias = create("bias").fit(small.data)
    model = create("als").fit(small.data)
    assert rmse(model, small) < rmse(bias, small)
    assert len(model.history_) == model.config.iterations
    assert model.history_[-1]["train_loss"] < model.history_[0]["train_loss"]


def test_config_ranges():
    with pytest.raises(ConfigError, match="factors=-1"):
        create("als", {"factors": -1})
    with pytest.raises(ConfigError, match="reg=0"):
        create("als", {"reg": 0})
