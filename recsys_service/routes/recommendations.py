"""``GET|POST /recommendations`` and ``GET /similar-items/{item_id}`` (ranking role): lists,
each recorded with its ``recommendation_id`` and model version (``recsys_service.feedback``)."""

# no "from __future__ import annotations": FastAPI reads the local Body and K types

from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from recsys_service.auth import EXPLAIN, RECOMMEND, Caller, Recommender, require
from recsys_service.feedback import ServedList
from recsys_service.live_models import Served
from recsys_service.schemas import (
    RecommendationOut,
    RecommendationRequest,
    SimilarOut,
    recommendation_answer,
    recommendation_request,
    similar_answer,
)
from recsys_service.settings import RANKING, ServiceSettings
from recsys_service.state import Answer, Service, error, service

MAX_ID = 256
IdPath = Annotated[str, Path(min_length=1, max_length=MAX_ID)]
Svc = Annotated[Service, Depends(service)]


def record(
    svc: Service, out: dict[str, Any], user_id: str | None, served: Served, caller: Caller
) -> JSONResponse:
    """Queue the list for recording with the key that asked for it (never for a forgotten
    user) and answer it."""
    if user_id is None or not svc.forgotten.is_forgotten(user_id):  # no row names one
        svc.recorder.submit(
            ServedList(
                out["recommendation_id"],
                user_id,
                tuple(i["item_id"] for i in out["items"]),
                served.registered_model,
                served.version,
                served.alias,
                caller.name,
            )
        )
    return Answer(out)


def router(settings: ServiceSettings) -> APIRouter:
    """The list routes, with the limits of ``settings`` (shown in the OpenAPI)."""
    api = APIRouter()
    K = Annotated[
        int, Query(ge=1, le=settings.max_k, description=f"list length, 1 to {settings.max_k}")
    ]

    async def recommendations(
        svc: Svc,
        caller: Recommender,
        user_id: IdPath,
        k: K = settings.default_k,
        explain: bool = False,
    ) -> JSONResponse:
        """Top-k unseen items for a user (popularity for unknown users). Scope ``recommend``;
        ``explain=true`` also needs ``explain`` (the reasons name the user's items)."""
        if explain:
            require(caller, EXPLAIN, "explain=true")
        served = svc.live.served(RANKING)
        # a pseudonymized version knows users by pseudonym; the answer echoes the id sent
        model_user = served.model_user(user_id)
        rec = replace(served.scorer.recommend(model_user, k, explain=explain), user_id=user_id)
        svc.metrics.looked_up("/recommendations", served.scorer, model_user)
        svc.metrics.answered("/recommendations", rec.fallback)
        return record(svc, recommendation_answer(rec, served, explain), user_id, served, caller)

    # the hottest route: its common requests skip FastAPI's per-request parameter solving
    api.add_api_route(
        "/recommendations/{user_id}",
        recommendations,
        methods=["GET"],
        response_model=RecommendationOut,
        route_class_override=_prevalidated(_list_args(settings)),
    )

    async def recommendations_for(
        svc: Svc, caller: Recommender, body: RecommendationRequest
    ) -> JSONResponse:
        """Top-k for a user and/or the items they just interacted with (folded in). Scope
        ``recommend``; ``"explain": true`` also needs ``explain``."""
        if body.explain:
            require(caller, EXPLAIN, '"explain": true')
        if body.user_id is None and not body.recent_items:
            return error(422, "give a user_id, recent_items, or both")
        served = svc.live.served(RANKING)
        user_id = None if body.user_id is None else str(body.user_id)
        model_user = None if user_id is None else served.model_user(user_id)
        recent = [str(i) for i in body.recent_items]
        rec = served.scorer.recommend(
            model_user,
            body.k,
            recent_items=recent,
            exclude=[str(i) for i in body.exclude],
            explain=body.explain,
        )
        rec = replace(rec, user_id=user_id)
        svc.metrics.looked_up("/recommendations", served.scorer, model_user, recent_items=recent)
        svc.metrics.answered("/recommendations", rec.fallback)
        out = recommendation_answer(rec, served, body.explain)
        return record(svc, out, out["user_id"], served, caller)

    # FastAPI validates the body with the subclass that carries this service's limits
    recommendations_for.__annotations__["body"] = recommendation_request(
        settings.default_k, settings.max_k, settings.max_recent_items
    )
    api.post("/recommendations", response_model=RecommendationOut)(recommendations_for)

    @api.get("/similar-items/{item_id}", response_model=SimilarOut)
    async def similar_items(
        svc: Svc, caller: Recommender, item_id: IdPath, k: K = settings.default_k
    ) -> JSONResponse:
        """The k items most similar to an item. Scope ``recommend``."""
        served = svc.live.served(RANKING)
        items = served.scorer.similar_items(item_id, k)
        svc.metrics.looked_up("/similar-items", served.scorer, item_id=[item_id])
        if items is None:
            return error(
                404,
                f"unknown item {item_id!r}: the served model (version "
                f"{served.version}) has never seen it; ask for an item of its "
                "training data",
            )
        return record(svc, similar_answer(item_id, items, served), None, served, caller)

    return api


ListArgs = dict[str, Any]
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _prevalidated(parse: Callable[[Request], ListArgs | None]) -> type[APIRoute]:
    """A route class whose requests ``parse`` can read call the endpoint at once.

    FastAPI inspects the endpoint's parameter declarations at every request (a fifth of the CPU
    of a list request): ``parse`` reads the common, valid requests directly and returns the
    endpoint's arguments, and a key the service remembers with the needed scopes
    (``Authenticator.fast``) stands for the route's security dependency; for anything else
    FastAPI reads the request as usual, so every 4xx (401 and 403 included), and the OpenAPI
    document, stay FastAPI's.
    """

    class Prevalidated(APIRoute):
        def get_route_handler(self) -> Handler:
            full = super().get_route_handler()
            endpoint = self.endpoint

            async def handler(request: Request) -> Response:
                args = parse(request)
                if args is not None:
                    svc = service(request)
                    caller = svc.auth.fast(request, RECOMMEND)
                    if caller is not None and (not args["explain"] or EXPLAIN in caller.scopes):
                        return await endpoint(svc, caller, **args)
                return await full(request)

            return handler

    return Prevalidated


_BOOLS = {"true": True, "false": False}


def _list_args(settings: ServiceSettings) -> Callable[[Request], ListArgs | None]:
    """``GET /recommendations/{user_id}``: ``user_id``, ``k`` (plain decimal digits within
    the limits) and ``explain`` (true or false) as FastAPI would read them; None for anything
    else (FastAPI then validates, and says what is wrong)."""
    default_k, max_k = settings.default_k, settings.max_k

    def parse(request: Request) -> ListArgs | None:
        user_id = request.path_params["user_id"]  # the route's pattern: never empty
        query = request.query_params
        k, explain = query.get("k"), query.get("explain")
        if len(user_id) > MAX_ID:
            return None
        if k is None:
            k_value = default_k
        elif k.isascii() and k.isdigit() and k[0] != "0" and len(k) <= 6:
            k_value = int(k)
            if k_value > max_k:
                return None
        else:
            return None
        explain_value = False if explain is None else _BOOLS.get(explain)
        if explain_value is None:
            return None
        return {"user_id": user_id, "k": k_value, "explain": explain_value}

    return parse
