"""Linear blend of several rating models (``blend``).

The Netflix Prize recipe (Töscher, Jahrer & Bell, "The BigChaos solution to the Netflix Grand
Prize", 2009, section on linear blending; Koren, "The BellKor solution to the Netflix Grand
Prize", 2009): hold out a random part of the training ratings, fit every member on the rest,
fit a ridge regression of the held-out ratings on the members' predictions (with an intercept),
then refit every member on all the training ratings and keep the weights.

The members are named in the config with their hyperparameters
(``members=({"model": "als", "params": {"factors": 10}}, ...)``). A saved blend holds its
members in subfolders ``member_0``, ``member_1``, ... (each a saved model of its own); the
weights are the blend's own state.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys_core.exceptions import ConfigError
from recsys_core.features.matrix import Interactions
from recsys_core.models.base import ModelConfig
from recsys_core.models.composite import Composite
from recsys_core.models.registry import create, get_model_class, register
from recsys_core.models.training import Training

log = logging.getLogger(__name__)


class MemberSpec(BaseModel):
    """One member model: its registry name and hyperparameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(description="registry name of the member model")
    params: dict[str, Any] = Field(default_factory=dict, description="its hyperparameters")


def subset(data: Interactions, mask: np.ndarray) -> Interactions:
    """The rows of ``data`` under ``mask``, with the same vocabularies (indices unchanged)."""
    return dataclasses.replace(
        data,
        user_idx=data.user_idx[mask],
        item_idx=data.item_idx[mask],
        rating=data.rating[mask],
        timestamp=data.timestamp[mask],
    )


def _check_member(spec: MemberSpec) -> MemberSpec:
    klass = get_model_class(spec.model)
    if not klass.predicts_ratings:
        raise ConfigError(f"member {spec.model!r} ranks but does not predict ratings")
    create(spec.model, spec.params)  # validates the member's hyperparameters
    return spec


_DEFAULT_MEMBERS = (
    MemberSpec(model="als"),
    MemberSpec(model="bpmf"),
    MemberSpec(model="item-knn"),
    MemberSpec(model="svdpp"),
)


class BlendConfig(ModelConfig):
    """Hyperparameters of the linear blend."""

    members: tuple[MemberSpec, ...] = Field(
        _DEFAULT_MEMBERS, min_length=1, description="member models (rating models) and params"
    )
    holdout: float = Field(0.1, gt=0, lt=0.5, description="share of ratings held out to blend")
    reg: float = Field(1.0, ge=0, description="ridge penalty on the blend weights")
    seed: int = Field(42, description="random seed of the held-out part")

    @field_validator("members")
    @classmethod
    def _members_exist(cls, value: tuple[MemberSpec, ...]) -> tuple[MemberSpec, ...]:
        return tuple(_check_member(m) for m in value)


@register("blend")
class Blend(Composite):
    """Ridge blend of rating models fitted on a held-out part of the training data."""

    Config = BlendConfig
    config: BlendConfig
    intercept_: np.float64
    weights_: np.ndarray
    state_docs: ClassVar[dict[str, str]] = {
        "intercept_": "intercept of the ridge blend",
        "weights_": "weight of each member's prediction (members in member_0, member_1, ...); "
        "r = intercept_ + sum_m weights_[m] r_m",
    }

    def _n_members(self) -> int:
        return len(self.config.members)

    def _fit(self, data: Interactions, training: Training) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        held = rng.random(len(data)) < cfg.holdout
        held &= data.known
        if held.sum() < 2 or (~held).sum() < 2:
            raise ConfigError(
                f"the blend's held-out part has {int(held.sum())} of {len(data)} ratings; "
                "use more data or another holdout"
            )
        part = subset(data, ~held)
        u, i, y = data.user_idx[held], data.item_idx[held], data.rating[held].astype(np.float64)
        feats = np.column_stack(
            [create(m.model, m.params).fit(part).predict_idx(u, i) for m in cfg.members]
        )
        X = np.column_stack([np.ones(y.size), feats])
        penalty = cfg.reg * np.eye(X.shape[1])
        penalty[0, 0] = 0.0  # the intercept is not shrunk
        w = np.linalg.solve(X.T @ X + penalty, X.T @ y)
        self.intercept_ = np.float64(w[0])
        self.weights_ = w[1:]
        log.info("blend weights %s (intercept %.3f)", np.round(self.weights_, 3), w[0])
        self.members_ = [create(m.model, m.params).fit(data) for m in cfg.members]

    def _predict_idx(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = np.full(u.size, float(self.intercept_))
        for w, member in zip(self.weights_, self.members_, strict=True):
            out += w * member.predict_idx(u, i)
        return out

    def _score_users(self, u: np.ndarray) -> np.ndarray:
        out = np.full((u.size, self.n_items), float(self.intercept_))
        for w, member in zip(self.weights_, self.members_, strict=True):
            out += w * member._score_users(u)
        return out
