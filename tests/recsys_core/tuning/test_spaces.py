"""Search spaces: every default range is valid for its model; bad ranges are refused clearly."""

import optuna
import pytest

from recsys_core.exceptions import ConfigError, UnknownModelError
from recsys_core.models.spec import ModelSpec
from recsys_core.tuning import SPACES, ParamRange, default_params, space_for


@pytest.mark.parametrize("model", sorted(SPACES))
def test_default_space_samples_valid_model_specs(model):
    space = space_for(model)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(5):
        trial = study.ask({n: r.distribution() for n, r in space.items()})
        spec = ModelSpec(name=model, params=trial.params)
        assert set(spec.params) == set(space)


def test_override_replaces_one_range_and_keeps_the_others():
    space = space_for("als", {"factors": {"kind": "categorical", "choices": [8, 16]}})
    assert space["factors"].distribution() == optuna.distributions.CategoricalDistribution([8, 16])
    assert space["reg"] == SPACES["als"]["reg"]


@pytest.mark.parametrize(
    ("model", "overrides", "message"),
    [
        ("als", {"reg": {"kind": "float", "low": 0.0, "high": 1.0}}, "als.reg includes 0.0"),
        ("als", {"reg": {"kind": "float", "low": 2.0, "high": 1.0}}, "needs low <= high"),
        ("als", {"reg": {"kind": "float", "low": 0.0, "high": 1.0, "log": True}}, "low > 0"),
        ("als", {"reg": {"kind": "categorical"}}, "at least one choice"),
        ("als", {"rank": {"kind": "int", "low": 1, "high": 4}}, "unknown hyperparameter.*'rank'"),
        ("popularity", None, "no search space for model 'popularity'"),
    ],
)
def test_bad_space_is_refused(model, overrides, message):
    with pytest.raises(ConfigError, match=message):
        space_for(model, overrides)


def test_unknown_model():
    with pytest.raises(UnknownModelError, match="unknown model 'mf'"):
        space_for("mf")


def test_range_ends_and_contains():
    r = ParamRange(kind="int", low=2, high=9)
    assert r.ends() == [2, 9]
    assert r.contains(2) and r.contains(9.0) and not r.contains(10) and not r.contains(True)
    assert ParamRange(kind="categorical", choices=("cg",)).contains("cg")


def test_default_params_keep_what_the_space_holds():
    spec = ModelSpec(name="sgd-mf", params={"lr": 0.01})
    space = space_for("sgd-mf", {"factors": {"kind": "int", "low": 2, "high": 16}})
    assert default_params(spec, space) == {"epochs": 30, "lr": 0.01, "reg": 0.08}
