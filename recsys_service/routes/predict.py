"""``GET /predict``: a user's predicted rating of an item (rating role)."""

# no "from __future__ import annotations": FastAPI reads the parameter types

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from recsys_core.exceptions import ModelCapabilityError
from recsys_service.auth import Recommender
from recsys_service.schemas import PredictionOut, model_info
from recsys_service.settings import RATING
from recsys_service.state import Service, error, service

router = APIRouter()
IdQuery = Annotated[str, Query(min_length=1, max_length=256)]


@router.get("/predict", response_model=PredictionOut)
async def predict(
    svc: Annotated[Service, Depends(service)],
    caller: Recommender,
    user_id: IdQuery,
    item_id: IdQuery,
) -> PredictionOut | JSONResponse:
    """Predicted rating of a user for an item (rating role). Scope ``recommend``."""
    served = svc.live.served(RATING)
    try:
        model_user = served.model_user(user_id)
        p = served.scorer.predict(model_user, item_id)
    except ModelCapabilityError as exc:
        return error(503, f"{exc} (rating alias {served.alias!r} is version {served.version})")
    svc.metrics.looked_up("/predict", served.scorer, model_user, item_id=[item_id])
    svc.metrics.answered("/predict", p.fallback)
    return PredictionOut(
        user_id=user_id,
        item_id=p.item_id,
        rating=p.rating,
        fallback=p.fallback,
        model=model_info(served),
    )
