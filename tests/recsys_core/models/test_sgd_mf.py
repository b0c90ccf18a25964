import pytest

from recsys_core.exceptions import ConfigError, TrainingError
from recsys_core.models import create
from recsys_core.models.sgd_mf import scheduled_lr


def test_beats_the_bias_baseline(small, rmse):
    bias = create("bias").fit(small.data)
    model = create("sgd-mf", {"factors": 10, "epochs": 20, "reg": 0.05}).fit(small.data)
    assert rmse(model, small) < rmse(bias, small)


@pytest.mark.parametrize("params", [{"batch_size": 32}, {"lr_schedule": "inverse",
                                                           "lr_decay": 0.02}])
def test_mini_batch_and_schedules_learn_and_are_deterministic(small, rmse, params):
    cfg = {"factors": 10, "epochs": 30, "reg": 0.05, **params}
    bias = create("bias").fit(small.data)
    a = create("sgd-mf", cfg).fit(small.data)
    b = create("sgd-mf", cfg).fit(small.data)
    assert rmse(a, small) < rmse(bias, small)
    assert rmse(a, small) == rmse(b, small)


def test_schedules():
    assert scheduled_lr(0.01, "constant", 0.5, 3) == 0.01
    assert scheduled_lr(0.01, "inverse", 0.5, 2) == pytest.approx(0.005)
    assert scheduled_lr(0.01, "exponential", 0.0, 5) == 0.01


def test_divergence_names_the_learning_rate(tiny):
    with pytest.raises(TrainingError, match="learning rate lr=1.0 is likely too high"):
        create("sgd-mf", {"lr": 1.0, "epochs": 50}).fit(tiny.data)


def test_config_ranges():
    with pytest.raises(ConfigError, match="factors=-2"):
        create("sgd-mf", {"factors": -2})
    with pytest.raises(ConfigError, match="lr=0"):
        create("sgd-mf", {"lr": 0})
    with pytest.raises(ConfigError, match="lr_schedule"):
        create("sgd-mf", {"lr_schedule": "cosine"})
