import pytest

from recsys_core.exceptions import ConfigError, TrainingError
from recsys_core.models import create


def test_beats_the_bias_baseline(small, rmse):
    bias = create("bias").fit(small.data)
    model = create("svdpp", {"reg": 0.05, "epochs": 30}).fit(small.data)
    assert rmse(model, small) < rmse(bias, small)


def test_divergence_names_the_learning_rate(tiny):
    with pytest.raises(TrainingError, match="learning rate"):
        create("svdpp", {"lr": 1.0, "epochs": 50}).fit(tiny.data)


def test_config_ranges():
    with pytest.raises(ConfigError, match="lr=0"):
        create("svdpp", {"lr": 0})
