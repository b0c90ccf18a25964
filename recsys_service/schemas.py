"""Request bodies and the JSON of the answers."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    create_model,
)

from recsys_core.serving import Recommendation, ScoredItem
from recsys_core.serving.explain import because
from recsys_service.live_models import Served

# ids are strings; integer ids are accepted and read as their decimal text
Id = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)] | StrictInt


class RecommendationRequest(BaseModel):
    """A user, the items they just interacted with, or both (the limits: see
    :func:`recommendation_request`)."""

    model_config = ConfigDict(extra="forbid")

    user_id: Id | None = Field(
        None, description="known user id (may be omitted for a new user with recent_items)"
    )
    recent_items: list[Id] = Field(
        default_factory=list,
        description="items interacted with after training, folded in at request time",
    )
    exclude: list[Id] = Field(default_factory=list, description="items never to recommend")
    k: StrictInt = Field(10, ge=1, description="list length")
    explain: StrictBool = Field(False, description="add the reasons of each item")


def recommendation_request(
    default_k: int, max_k: int, max_items: int
) -> type[RecommendationRequest]:
    """The body of ``POST /recommendations`` with the service's limits: a subclass of
    :class:`RecommendationRequest` whose fields carry them (and show them in the OpenAPI)."""

    return create_model(
        "RecommendationRequest",
        __base__=RecommendationRequest,
        __doc__=RecommendationRequest.__doc__,
        recent_items=(
            list[Id],
            Field(
                default_factory=list,
                max_length=max_items,
                description="items interacted with after training, folded in at request time",
            ),
        ),
        exclude=(
            list[Id],
            Field(
                default_factory=list, max_length=max_items, description="items never to recommend"
            ),
        ),
        k=(StrictInt, Field(default_k, ge=1, le=max_k, description="list length")),
    )


class ModelOut(BaseModel):
    name: str = Field(description="registered model")
    version: str | None
    role: str = Field(description="ranking or rating")
    alias: str
    algorithm: str | None = Field(None, description="model family, e.g. ease or sgd-mf")


class ReasonOut(BaseModel):
    text: str = Field(description="the reason in words")
    item_id: str | None = Field(None, description="the user's item behind it")
    title: str | None = Field(None, description="that item's title, when the data has one")
    weight: float | None = Field(
        None,
        description="its contribution to the score (item-item "
        "weight, factor similarity, or interactions "
        "for a popular item)",
    )


class ItemOut(BaseModel):
    item_id: str
    score: float
    title: str | None = Field(None, description="with explain: the item's title, when known")
    because: str | None = Field(None, description="with explain: the reasons as a sentence")
    reasons: list[ReasonOut] | None = None


class RecommendationOut(BaseModel):
    recommendation_id: str = Field(description="identifies this list in later feedback")
    user_id: str | None
    items: list[ItemOut]
    model: ModelOut
    fallback: str | None = Field(description="null, popularity or recent-items-ignored")
    folded_in: int = Field(description="recent items folded into the scores")
    warnings: list[str]


class SimilarOut(BaseModel):
    recommendation_id: str
    item_id: str
    items: list[ItemOut]
    model: ModelOut


class PredictionOut(BaseModel):
    user_id: str
    item_id: str
    rating: float
    fallback: str | None
    model: ModelOut


def model_info(served: Served) -> ModelOut:
    return ModelOut.model_validate(model_dict(served))


def model_dict(served: Served) -> dict[str, Any]:
    """:class:`ModelOut` of ``served`` as JSON-ready data."""
    return {
        "name": served.registered_model,
        "version": served.version,
        "role": served.role,
        "alias": served.alias,
        "algorithm": served.algorithm,
    }


# The answers of the list routes are built as plain data in the shape of their models and sent
# as they are: building the models, then validating and serializing them again, cost more CPU
# than scoring (tests/recsys_service/test_app.py validates the answers against the models).
def _item(item: ScoredItem, explain: bool, served: Served | None = None) -> dict[str, Any]:
    if not explain:
        return {
            "item_id": item.item_id,
            "score": float(item.score),
            "title": None,
            "because": None,
            "reasons": None,
        }
    reasons = [
        {
            "text": r.text,
            "item_id": r.item_id,
            "title": r.title,
            "weight": None if r.weight is None else float(r.weight),
        }
        for r in item.reasons or ()
    ]
    return {
        "item_id": item.item_id,
        "score": float(item.score),
        "title": served.scorer.item_title(item.item_id) if served is not None else None,
        "because": because(item.reasons),
        "reasons": reasons,
    }


def recommendation_answer(rec: Recommendation, served: Served, explain: bool) -> dict[str, Any]:
    """A :class:`RecommendationOut` as JSON-ready data, with a new ``recommendation_id``."""
    return {
        "recommendation_id": uuid.uuid4().hex,
        "user_id": rec.user_id,
        "items": [_item(i, explain, served) for i in rec.items],
        "model": model_dict(served),
        "fallback": rec.fallback,
        "folded_in": rec.folded_in,
        "warnings": list(rec.warnings),
    }


def similar_answer(item_id: str, items: list[ScoredItem], served: Served) -> dict[str, Any]:
    """A :class:`SimilarOut` as JSON-ready data, with a new ``recommendation_id``."""
    return {
        "recommendation_id": uuid.uuid4().hex,
        "item_id": item_id,
        "items": [_item(i, False) for i in items],
        "model": model_dict(served),
    }


def recommendation_body(rec: Recommendation, served: Served, explain: bool) -> RecommendationOut:
    return RecommendationOut.model_validate(recommendation_answer(rec, served, explain))


def similar_body(item_id: str, items: list[ScoredItem], served: Served) -> SimilarOut:
    return SimilarOut.model_validate(similar_answer(item_id, items, served))
