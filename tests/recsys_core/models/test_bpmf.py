import pytest

from recsys_core.exceptions import ConfigError
from recsys_core.models import create


def test_beats_the_bias_baseline(small, rmse):
    bias = create("bias").fit(small.data)
    model = create("bpmf", {"burn_in": 10, "samples": 15}).fit(small.data)
    assert rmse(model, small) < rmse(bias, small)
    assert model.user_samples_.shape == (15, small.data.n_users, 10)


def test_config_ranges():
    with pytest.raises(ConfigError, match="samples=0"):
        create("bpmf", {"samples": 0})
    with pytest.raises(ConfigError, match="alpha=-1"):
        create("bpmf", {"alpha": -1})
