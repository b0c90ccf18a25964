import pytest

from recsys_core.exceptions import ConfigError, TrainingError
from recsys_core.models import create


def test_quality(quality):
    # measured on the fixture: RMSE 0.850 against the bias baseline's 0.928, 0.939 with the user
    # vectors (p_u plus the implicit sum) zeroed
    quality.rating(
        "svdpp", {"reg": 0.05, "epochs": 30}, beats_bias_by=0.04, zeroed=("user_vectors_",)
    )


def test_divergence_names_the_learning_rate(tiny):
    with pytest.raises(TrainingError, match="learning rate"):
        create("svdpp", {"lr": 1.0, "epochs": 50}).fit(tiny.data)


def test_config_ranges():
    with pytest.raises(ConfigError, match="lr=0"):
        create("svdpp", {"lr": 0})
