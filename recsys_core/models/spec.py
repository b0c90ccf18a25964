"""A model named with its hyperparameters, validated once against the model's own ``Config``.

``ModelSpec(name="als", params={"factors": "64"})`` checks the name against the model registry
and the parameters against ``AlsConfig`` when it is built; ``params`` then holds the typed
overrides (``{"factors": 64}``) and ``config`` the full frozen configuration. Pipeline stages pass
the spec around and build the model with ``create()``, without parsing anything again.

The JSON schema of ``name`` is an enum of the registered models, and the description of
``params`` lists every model's hyperparameters with their defaults: forms generated from the
schema (the Prefect UI) show a dropdown and the choices.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, PrivateAttr, model_validator

from recsys_core.models.base import ModelConfig, Recommender, build_config
from recsys_core.models.registry import available, describe, get_model_class

DEFAULT_MODEL = "sgd-mf"


def _as_json(value: Any) -> str:
    """A default as the form's JSON shows it (never a Python repr: no class names)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list | tuple):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    return json.dumps(value, default=str)


def _params_help() -> str:
    lines = [
        'Hyperparameters of the chosen model, e.g. {"factors": 64}; unset ones keep their '
        "default. Per model (default values):"
    ]
    for m in describe():
        fields = get_model_class(m["name"]).Config.model_fields
        shown = (
            ", ".join(
                f"{p['name']}={_as_json(fields[p['name']].get_default(call_default_factory=True))}"
                for p in m["params"]
            )
            or "(none)"
        )
        lines.append(f"- **{m['name']}**: {shown}")
    return "\n".join(lines)


# the Prefect form shows the model as a dropdown of these names
_MODEL_NAMES: list[JsonValue] = [*available()]


class ModelSpec(BaseModel):
    """Which model to train, and its hyperparameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        DEFAULT_MODEL,
        description="model to train (recsys models describes them)",
        json_schema_extra={"enum": _MODEL_NAMES},
    )
    params: dict[str, Any] = Field(default_factory=dict, description=_params_help())

    _config: ModelConfig = PrivateAttr()

    @model_validator(mode="before")
    @classmethod
    def _typed(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = data.get("name", DEFAULT_MODEL)
        model_cls = get_model_class(name)  # unknown names: "unknown model ...; available: ..."
        params = dict(data.get("params") or {})
        config = build_config(model_cls.Config, name, params)
        return {**data, "name": name, "params": {k: getattr(config, k) for k in params}}

    @model_validator(mode="after")
    def _keep_config(self) -> ModelSpec:
        self._config = get_model_class(self.name).Config(**self.params)
        return self

    @property
    def model_class(self) -> type[Recommender]:
        return get_model_class(self.name)

    @property
    def config(self) -> ModelConfig:
        """The full configuration: the overrides in ``params`` and every default."""
        return self._config

    @property
    def predicts_ratings(self) -> bool:
        return self.model_class.predicts_ratings

    def create(self) -> Recommender:
        """A fresh, unfitted model of this spec."""
        return self.model_class(config=self._config)

    def flat(self) -> dict[str, Any]:
        """``{"name": ..., **every hyperparameter}``: what is logged as ``model.*`` parameters."""
        return {"name": self.name, **self._config.model_dump(mode="json")}
