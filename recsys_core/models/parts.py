"""What the families made of other models share (``rerank``'s retrievers; ``blend``'s members
read the same way): a part named by its registry name with its hyperparameters, and the rows of
the training data a part is fitted on."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from recsys_core.features.matrix import Interactions


class PartSpec(BaseModel):
    """One model inside another: its registry name and hyperparameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(description="registry name of the model")
    params: dict[str, Any] = Field(default_factory=dict, description="its hyperparameters")


def parts_field(spec: type[PartSpec], models: tuple[str, ...], description: str) -> Any:
    """A config field of parts (at least one): by default ``models``, each with its own default
    hyperparameters."""
    return Field(tuple(spec(model=m) for m in models), min_length=1, description=description)


def subset(data: Interactions, mask: np.ndarray) -> Interactions:
    """The rows of ``data`` under ``mask``, with the same vocabularies (indices unchanged)."""
    return dataclasses.replace(
        data,
        user_idx=data.user_idx[mask],
        item_idx=data.item_idx[mask],
        rating=data.rating[mask],
        timestamp=data.timestamp[mask],
    )
