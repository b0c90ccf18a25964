"""Search spaces of the models' hyperparameters, as data.

A space maps hyperparameter names of a model's ``Config`` to ranges (:class:`ParamRange`). The
defaults below cover the models worth tuning; a study may replace any of them
(``space_for("bpmf", {"factors": {"kind": "int", "low": 5, "high": 50}})``). Every range is
checked against the model's own configuration at both ends, so a study never samples a value the
model would refuse.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recsys_core.exceptions import ConfigError
from recsys_core.extras import require
from recsys_core.models.registry import get_model_class


class ParamRange(BaseModel):
    """The values one hyperparameter may take in a study."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["int", "float", "categorical"] = Field(description="int, float or categorical")
    low: float | None = Field(None, description="smallest value (int, float)")
    high: float | None = Field(None, description="largest value (int, float)")
    log: bool = Field(False, description="sample on a log scale (int, float)")
    choices: tuple[str | int | float | bool, ...] | None = Field(
        None, description="the values of a categorical parameter"
    )

    @model_validator(mode="after")
    def _complete(self) -> ParamRange:
        if self.kind == "categorical":
            if not self.choices:
                raise ValueError("a categorical range needs at least one choice")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError(
                f"a {self.kind} range needs low <= high, got low={self.low!r} high={self.high!r}"
            )
        elif self.log and self.low <= 0:
            raise ValueError(f"a log-scale range needs low > 0, got low={self.low!r}")
        return self

    def distribution(self):
        """The Optuna distribution of this range."""
        require("optuna", "tune")  # a missing extra: what to install
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices or ()))
        if self.kind == "int":
            return IntDistribution(int(self.low or 0), int(self.high or 0), log=self.log)
        return FloatDistribution(float(self.low or 0), float(self.high or 0), log=self.log)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is one this range can sample."""
        if self.kind == "categorical":
            return value in (self.choices or ())
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return float(self.low or 0) <= value <= float(self.high or 0)

    def ends(self) -> list[Any]:
        """The values at the ends of the range (each must be valid for the model)."""
        if self.kind == "categorical":
            return list(self.choices or ())
        low, high = float(self.low or 0), float(self.high or 0)  # set: checked at creation
        return [int(low), int(high)] if self.kind == "int" else [low, high]


SearchSpace = dict[str, ParamRange]


def _int(low: int, high: int, log: bool = False) -> ParamRange:
    return ParamRange(kind="int", low=low, high=high, log=log)


def _float(low: float, high: float, log: bool = False) -> ParamRange:
    return ParamRange(kind="float", low=low, high=high, log=log)


SPACES: dict[str, SearchSpace] = {
    # Koren's biased MF: size, step, shrinkage and length of training
    "sgd-mf": {
        "factors": _int(8, 256, log=True),
        "epochs": _int(5, 60),
        "lr": _float(1e-3, 5e-2, log=True),
        "reg": _float(1e-3, 0.3, log=True),
    },
    "als": {
        "factors": _int(4, 128, log=True),
        "iterations": _int(5, 30),
        "reg": _float(1e-3, 1.0, log=True),
    },
    # BPMF (Salakhutdinov & Mnih 2008): the noise precision matters most, then the rank
    "bpmf": {
        "factors": _int(4, 64, log=True),
        "burn_in": _int(5, 40),
        "samples": _int(10, 60),
        "alpha": _float(0.5, 8.0, log=True),
        "beta0": _float(0.5, 8.0, log=True),
    },
    # the blend's own parameters (its members keep their configured hyperparameters)
    "blend": {"holdout": _float(0.05, 0.3), "reg": _float(1e-3, 100.0, log=True)},
    "ease": {"reg": _float(1.0, 5000.0, log=True)},
    # Mult-VAE (Liang et al. 2018): the bottleneck, the input dropout, the KL weight's cap and
    # the step; the epochs are early-stopped on the validation NDCG
    "mult-vae": {
        "latent_dim": _int(32, 400, log=True),
        "dropout": _float(0.2, 0.7),
        "anneal_cap": _float(0.05, 0.5),
        "lr": _float(3e-4, 3e-3, log=True),
    },
    # the ranker's own parameters (its retrievers keep their configured hyperparameters)
    "rerank": {
        "candidates": _int(30, 300, log=True),
        "learning_rate": _float(0.01, 0.2, log=True),
        "num_leaves": _int(3, 63, log=True),
        "min_child_samples": _int(20, 500, log=True),
    },
}


def space_for(model: str, overrides: dict[str, Any] | None = None) -> SearchSpace:
    """The space of ``model``: its default space with ``overrides`` replacing ranges by name.

    Raises ``ConfigError`` for an unknown model, a name that is not one of the model's
    hyperparameters, a malformed range, a range whose ends the model refuses, or an empty space.
    """
    from recsys_core.models.spec import ModelSpec

    fields = get_model_class(model).Config.model_fields  # unknown model: UnknownModelError
    space = dict(SPACES.get(model, {}))
    for name, given in (overrides or {}).items():
        try:
            space[name] = (
                given if isinstance(given, ParamRange) else ParamRange.model_validate(given)
            )
        except ValueError as exc:
            raise ConfigError(f"bad search range for {model}.{name}: {exc}") from None
    if not space:
        raise ConfigError(
            f"no search space for model {model!r}; give one, e.g. "
            '{"reg": {"kind": "float", "low": 0.01, "high": 1, "log": true}}; '
            f"models with a default space: {', '.join(sorted(SPACES))}"
        )
    unknown = sorted(set(space) - set(fields))
    if unknown:
        raise ConfigError(
            f"search space of {model!r} names unknown hyperparameter(s) "
            f"{', '.join(map(repr, unknown))}; valid: {', '.join(fields)}"
        )
    for name, rng in space.items():
        for value in rng.ends():
            try:
                ModelSpec(name=model, params={name: value})
            except ValueError as exc:
                raise ConfigError(
                    f"search range of {model}.{name} includes {value!r}, which "
                    f"the model refuses: {exc}"
                ) from None
    return space
