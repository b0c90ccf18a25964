import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.models import create


def test_quality(quality):
    # measured on the fixture: RMSE 0.829 against the bias baseline's 0.928; 1.128 with the user
    # draws zeroed (bpmf has no biases: the global mean is left)
    model = quality.rating(
        "bpmf", {"burn_in": 10, "samples": 15}, beats_bias_by=0.05, zeroed=("user_samples_",)
    )
    assert model.user_samples_.shape == (15, quality.fx.data.n_users, 10)


def test_config_ranges():
    with pytest.raises(ConfigError, match="samples=0"):
        create("bpmf", {"samples": 0})
    with pytest.raises(ConfigError, match="alpha=-1"):
        create("bpmf", {"alpha": -1})
