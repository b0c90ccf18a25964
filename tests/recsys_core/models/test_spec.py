"""ModelSpec: a model name and its hyperparameters, validated once against the model's Config."""

import pytest
from pydantic import ValidationError

from recsys_core.models import available
from recsys_core.models.sgd_mf import SGDMF
from recsys_core.models.spec import ModelSpec


def test_strings_become_typed_overrides_and_the_config_keeps_every_default():
    spec = ModelSpec(name="sgd-mf", params={"factors": "8", "lr": "0.01"})
    assert spec.params == {"factors": 8, "lr": 0.01}
    assert spec.config.factors == 8 and spec.config.epochs == 30
    model = spec.create()
    assert isinstance(model, SGDMF) and model.config is spec.config and not model.is_fitted
    assert spec.flat() == {"name": "sgd-mf", **spec.config.model_dump(mode="json")}
    assert spec.predicts_ratings is True
    assert ModelSpec(name="ease").predicts_ratings is False


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "mf"}, "unknown model 'mf'; available: als, "),
        ({"params": {"factors": -3}}, "invalid hyperparameters for model 'sgd-mf': factors=-3"),
        ({"params": {"factor": 3}}, "unknown parameter(s) 'factor' for model 'sgd-mf'; valid: "),
        ({"name": "ease", "params": {"factors": 3}}, "unknown parameter(s) 'factors' for model "),
        ({"params": {"epochs": "many"}}, "epochs='many'"),
        ({"oops": 1}, "Extra inputs are not permitted"),
    ],
)
def test_bad_specs_say_what_is_wrong(fields, message):
    with pytest.raises(ValidationError) as info:
        ModelSpec(**fields)
    assert message in str(info.value)


def test_the_schema_offers_the_models_and_describes_their_hyperparameters():
    schema = ModelSpec.model_json_schema()
    assert schema["properties"]["name"]["enum"] == available()
    text = schema["properties"]["params"]["description"]
    assert all(f"**{name}**" in text for name in available())
    assert "**sgd-mf**: factors=100, epochs=30" in text


def test_a_spec_round_trips_through_json():
    spec = ModelSpec(name="als", params={"factors": 16})
    again = ModelSpec.model_validate_json(spec.model_dump_json())
    assert again == spec and again.config == spec.config
