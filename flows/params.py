"""The parameters of a training run and of a study: the form the Prefect UI shows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from recsys_core.data.config import DataConfig
from recsys_core.evaluation.gate import RoleGates, competing_roles
from recsys_core.features.splits import SplitConfig
from recsys_core.models.spec import ModelSpec
from recsys_core.redaction import redact
from recsys_core.spark.engine import EvaluationEngine, resolve_engine
from recsys_core.validation.rules import ValidationRules

_SCALE = ("rating_min", "rating_max")


class RunInputs(BaseModel):
    """The sections a training run and a study share (the Prefect UI shows them as a form).

    Each is the library's own configuration, with its one default: ``data`` (what to collect),
    ``validation`` (what valid data looks like), ``split`` and ``model`` (name and
    hyperparameters, validated against the model's configuration when the parameters are
    built). The rating scale is set once, in ``data``; ``validation`` follows it.
    """

    model_config = ConfigDict(extra="forbid")

    data: DataConfig = Field(default_factory=DataConfig, description="what to collect, and how")
    validation: ValidationRules = Field(
        default_factory=ValidationRules,
        description="what valid data looks like (its rating scale follows data)",
    )
    split: SplitConfig = Field(default_factory=SplitConfig, description="the train/test split")
    model: ModelSpec = Field(
        default_factory=ModelSpec, description="the model to train and its hyperparameters"
    )

    @model_validator(mode="before")
    @classmethod
    def _one_rating_scale(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        data = values.get("data")
        data = data.model_dump() if isinstance(data, DataConfig) else dict(data or {})
        scale = {f: data.get(f, DataConfig.model_fields[f].default) for f in _SCALE}
        rules = values.get("validation")
        if isinstance(rules, ValidationRules):
            explicit = {f: getattr(rules, f) for f in _SCALE if f in rules.model_fields_set}
            rules = {**rules.model_dump(exclude_unset=True)}
        else:
            rules = dict(rules or {})
            explicit = {f: rules[f] for f in _SCALE if f in rules}
        differing = {f: v for f, v in explicit.items() if float(v) != float(scale[f])}
        if differing:
            raise ValueError(
                f"validation sets {differing} but data sets {scale}: set the rating scale once, "
                "in data.rating_min and data.rating_max (validation follows it)"
            )
        return {**values, "validation": {**rules, **scale}}


class TrainingParams(RunInputs):
    """Parameters of one training run: what to collect and validate, the split and the model
    (the sections a study shares), the gate a challenger must pass, and how the run competes,
    is judged and is recorded.
    """

    # the shared sections are RunInputs'; the class docstring is the Prefect form's text

    gate: RoleGates = Field(
        default_factory=RoleGates,
        description="what the challenger must achieve, per role, to become that role's champion",
    )
    roles: Literal["auto"] | list[Literal["ranking", "rating"]] = Field(
        "auto",
        description="serving roles the run competes for; auto: ranking and rating for "
        "a rating model, ranking for a ranking-only model",
    )
    refit_full: bool = Field(
        True,
        description="once a gate passed, refit on every row of the split (train and "
        "test) and serve that refit; the judged model is kept as "
        "evaluated_state",
    )
    k: int = Field(10, ge=1, le=1000, description="length of the top-k lists")
    relevance_threshold: float | None = Field(
        None, description="ratings >= this count as relevant in ranking metrics (empty: all)"
    )
    evaluation_engine: EvaluationEngine = Field(
        "auto",
        description="what scores the challenger on the test split: spark (from the "
        "split's Parquet files; factor models), local, or auto (spark for "
        "the Spark models, local otherwise); baselines and champions are "
        "scored locally",
    )
    registered_model: str = Field(
        "recsys", min_length=1, description="MLflow registered model name"
    )
    experiment: str = Field("recsys-training", min_length=1, description="MLflow experiment")
    data_dir: str = Field(".recsys/data", description="folder of snapshots and run files")
    trigger: Literal["auto", "schedule", "manual"] = Field(
        "auto", description="auto: 'schedule' for scheduled runs, 'manual' otherwise"
    )

    @field_validator("k", mode="before")
    @classmethod
    def _positive_k(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value < 1:
            raise ValueError(f"k must be a positive integer, got {value}")
        return value

    @model_validator(mode="after")
    def _roles_the_model_can_fill(self) -> TrainingParams:
        self.competing_roles()  # a ConfigError (a ValueError) names what the model can fill
        resolve_engine(self.evaluation_engine, self.model.name)  # before any training
        return self

    def competing_roles(self) -> list[str]:
        """The roles this run competes for (``roles`` resolved against the model)."""
        return competing_roles(
            self.roles, fillable=self.model.model_class.capabilities.roles, model=self.model.name
        )

    def logged(self) -> dict[str, Any]:
        """The parameters as logged to MLflow: ``data.source``, ``model.factors``, ``split.*``..."""
        dump = self.model_dump(mode="json")
        dump["model"] = self.model.flat()
        dump["data"]["source"] = redact(self.data.source)
        return dump
