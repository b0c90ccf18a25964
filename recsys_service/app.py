"""The FastAPI application: ``create_app()`` (uvicorn: ``recsys_service.app:create_app``).

Routes: ``GET|POST /recommendations``, ``GET /similar-items/{item_id}`` (ranking role),
``GET /predict`` (rating role), ``GET /health`` (the process is up), ``GET /ready`` (every role
has a model), ``GET /model`` (what serves each role and the last reload's problems),
``GET /metrics`` (Prometheus), ``POST /events`` (feedback into the event store; every served
list is recorded with its ``recommendation_id`` and model version, see
``recsys_service.feedback``), ``POST /tombstones/refresh`` (re-read the forgotten users now,
see ``recsys_service.forgotten``). Bad input gets a 4xx whose ``detail`` says what to fix; a role
without a model, or an event store that cannot be reached, gets 503 with the reason.
"""

# no "from __future__ import annotations": FastAPI reads the local Body and K types

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from recsys_core.events.store import EventStore
from recsys_core.exceptions import DataSourceError, DataValidationError, ModelCapabilityError
from recsys_core.redaction import redact
from recsys_service.feedback import ServedList, ServedRecorder
from recsys_service.forgotten import Forgotten
from recsys_service.limits import EdgeLimits
from recsys_service.live_models import LiveModels, NotReady, Served
from recsys_service.metrics import MetricsMiddleware, ServiceMetrics
from recsys_service.schemas import (
    ModelOut,
    PredictionOut,
    RecommendationOut,
    RecommendationRequest,
    SimilarOut,
    model_info,
    recommendation_answer,
    recommendation_request,
    similar_answer,
)
from recsys_service.settings import RANKING, RATING, ROLES, ServiceSettings

log = logging.getLogger(__name__)

_MAX_ID = 256
IdPath = Annotated[str, Path(min_length=1, max_length=_MAX_ID)]


class Answer(JSONResponse):
    """A JSON answer serialized by orjson (1 us for a list of 10, the standard library 16 us)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def create_app(
    settings: ServiceSettings | None = None,
    *,
    live: LiveModels | None = None,
    poll: bool = True,
    events: EventStore | None = None,
) -> FastAPI:
    """Build the service. ``poll=False`` leaves reloading to the caller (``live.refresh()``);
    ``events``: the event store (default: ``settings.events_url``)."""
    settings = settings or ServiceSettings()
    metrics = ServiceMetrics()
    if live is None:
        live = LiveModels(settings, on_reload=metrics.on_reload)
    if events is None:
        events = EventStore(settings.events_url)  # connects on first use only
    recorder = ServedRecorder(events, metrics.served_lists, settings.served_queue_size,
                              outbox=settings.served_outbox, outbox_max=settings.served_outbox_max)
    forgotten = Forgotten(live, settings.events_url, settings.forget_poll_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from recsys_core.tracking import mlflow_run

        uri = mlflow_run.configure(settings.tracking_uri)
        log.info("serving %r (ranking alias %r, rating alias %r) from %s",
                 settings.registered_model, settings.ranking_alias, settings.rating_alias,
                 redact(uri))
        recorder.start()  # replays the lists a previous process left in the outbox
        if poll:
            await asyncio.to_thread(forgotten.start)  # before the first load: none comes back
            live.start()
            # each worker process accepts connections only once it has looked at the registry:
            # with several workers behind one socket, none answers 503 while another is ready
            await asyncio.to_thread(live.first_look.wait, settings.startup_wait_s)
        try:
            yield
        finally:
            live.stop()
            forgotten.stop()
            await asyncio.to_thread(recorder.stop)
            metrics.process_exit()

    app = FastAPI(title="recsys", summary="Recommendations from the registry's champions",
                  lifespan=lifespan)
    app.state.settings, app.state.live, app.state.metrics = settings, live, metrics
    app.state.events, app.state.recorder = events, recorder
    app.state.forgotten = forgotten
    app.add_middleware(EdgeLimits, settings=settings)  # before any route reads a body
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    K = Annotated[int, Query(ge=1, le=settings.max_k,
                             description=f"list length, 1 to {settings.max_k}")]
    _handlers(app, settings)

    def _count_fallback(route: str, fallback: str | None) -> None:
        metrics.answered(route, fallback)

    def _record(out: dict[str, Any], user_id: str | None, served: Served) -> JSONResponse:
        if user_id is None or not forgotten.is_forgotten(user_id):  # no row names a forgotten user
            recorder.submit(ServedList(out["recommendation_id"], user_id,
                                       tuple(i["item_id"] for i in out["items"]),
                                       served.registered_model, served.version, served.alias))
        return Answer(out)

    async def recommendations(user_id: IdPath, k: K = settings.default_k,
                              explain: bool = False) -> JSONResponse:
        """Top-k unseen items for a user (popularity for unknown users)."""
        served = live.served(RANKING)
        # a pseudonymized version knows users by pseudonym; the answer echoes the id sent
        model_user = served.model_user(user_id)
        rec = replace(served.scorer.recommend(model_user, k, explain=explain), user_id=user_id)
        metrics.looked_up("/recommendations", served.scorer, model_user)
        _count_fallback("/recommendations", rec.fallback)
        return _record(recommendation_answer(rec, served, explain), user_id, served)

    # the hottest route: its common requests skip FastAPI's per-request parameter solving
    app.router.add_api_route("/recommendations/{user_id}", recommendations, methods=["GET"],
                             response_model=RecommendationOut,
                             route_class_override=_prevalidated(_list_args(settings)))

    async def recommendations_for(body: RecommendationRequest) -> JSONResponse:
        """Top-k for a user and/or the items they just interacted with (folded in)."""
        if body.user_id is None and not body.recent_items:
            return _error(422, "give a user_id, recent_items, or both")
        served = live.served(RANKING)
        user_id = None if body.user_id is None else str(body.user_id)
        model_user = None if user_id is None else served.model_user(user_id)
        recent = [str(i) for i in body.recent_items]
        rec = served.scorer.recommend(
            model_user, body.k, recent_items=recent,
            exclude=[str(i) for i in body.exclude], explain=body.explain,
        )  # fmt: skip
        rec = replace(rec, user_id=user_id)
        metrics.looked_up("/recommendations", served.scorer, model_user, recent_items=recent)
        _count_fallback("/recommendations", rec.fallback)
        out = recommendation_answer(rec, served, body.explain)
        return _record(out, out["user_id"], served)

    # FastAPI validates the body with the subclass that carries this service's limits
    recommendations_for.__annotations__["body"] = recommendation_request(
        settings.default_k, settings.max_k, settings.max_recent_items)
    app.post("/recommendations", response_model=RecommendationOut)(recommendations_for)

    @app.get("/similar-items/{item_id}", response_model=SimilarOut)
    async def similar_items(item_id: IdPath, k: K = settings.default_k) -> JSONResponse:
        """The k items most similar to an item."""
        served = live.served(RANKING)
        items = served.scorer.similar_items(item_id, k)
        metrics.looked_up("/similar-items", served.scorer, item_id=[item_id])
        if items is None:
            return _error(404, f"unknown item {item_id!r}: the served model (version "
                               f"{served.version}) has never seen it; ask for an item of its "
                               "training data")
        return _record(similar_answer(item_id, items, served), None, served)

    events_stored, events_duplicate = (metrics.events.labels(o) for o in ("stored", "duplicate"))

    @app.post("/events")
    async def post_events(request: Request) -> Any:
        """Store a JSON list of events (rating, click, view, purchase) in one transaction.

        200 once committed, with ``received``/``stored``/``duplicates`` (an ``event_id`` already
        stored changes nothing); 422 with every bad event and nothing stored; 413 beyond
        ``max_event_batch`` events; 503 when the store cannot be reached (nothing stored:
        send the batch again); 499 (logged only: nobody reads it) when the client left before
        its body was read.
        """
        try:
            batch = await request.json()
        except ClientDisconnect:
            # the client left while its request waited for the event loop (a load tester at its
            # timeout): its body cannot be read, nothing is stored, and nobody reads the answer
            log.info("POST /events: the client closed the connection before its body was "
                     "read; nothing stored")
            return _error(499, "the client closed the connection before the body was read; "
                               "nothing was stored")
        except ValueError as exc:
            return _error(400, f"malformed JSON body ({exc}); send a JSON list of events such "
                               'as [{"event_id": "e1", "user_id": "42", "item_id": "7", '
                               '"type": "click", "recommendation_id": "..."}]')
        if not isinstance(batch, list):
            return _error(422, "the body must be a JSON list of events; got "
                               f"{type(batch).__name__}")
        if len(batch) > settings.max_event_batch:
            return _error(413, f"{len(batch)} events in one request; at most "
                               f"{settings.max_event_batch} are allowed: split the batch")
        try:
            result = await asyncio.to_thread(events.append, batch)
        except DataValidationError as exc:
            metrics.events.labels("refused").inc(len(batch))
            problems = [dict(index=p.index, event_id=p.event_id, field=p.field,
                             message=p.message) for p in exc.report or ()]
            return Answer({"detail": str(exc), "problems": problems}, status_code=422)
        except DataSourceError as exc:
            log.warning("events not stored: %s", exc)
            return _error(503, f"{exc} (nothing was stored; send the batch again)")
        events_stored.inc(result.stored)
        events_duplicate.inc(result.duplicates)
        return {"received": result.received, "stored": result.stored,
                "duplicates": result.duplicates}

    @app.get("/predict", response_model=PredictionOut)
    async def predict(user_id: Annotated[str, Query(min_length=1, max_length=256)],
                      item_id: Annotated[str, Query(min_length=1, max_length=256)],
                      ) -> PredictionOut | JSONResponse:
        """Predicted rating of a user for an item (rating role)."""
        served = live.served(RATING)
        try:
            model_user = served.model_user(user_id)
            p = served.scorer.predict(model_user, item_id)
        except ModelCapabilityError as exc:
            return _error(503, f"{exc} (rating alias {served.alias!r} is version "
                               f"{served.version})")
        metrics.looked_up("/predict", served.scorer, model_user, item_id=[item_id])
        _count_fallback("/predict", p.fallback)
        return PredictionOut(user_id=user_id, item_id=p.item_id, rating=p.rating,
                             fallback=p.fallback, model=model_info(served))

    @app.get("/health")
    async def health() -> Any:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> Any:
        """Readiness: the roles of ``ready_roles`` are served (default: at least one role, so
        that a deployment that trains only ranking models, or only rating models, is ready);
        the roles not served are listed with the reason."""
        reasons = {}
        for role in ROLES:
            try:
                live.served(role)
            except NotReady as exc:
                reasons[role] = str(exc)
        required = settings.ready_roles
        missing = ([r for r in required if r in reasons] if required is not None
                   else list(ROLES) if len(reasons) == len(ROLES) else [])
        if missing:
            return Answer({"ready": False, "reasons": reasons}, status_code=503)
        return {"ready": True, **({"not_served": reasons} if reasons else {})}

    @app.get("/model")
    async def model() -> Any:
        """What serves each role, and the problems of the last reload."""
        out: dict[str, Any] = {}
        for role in ROLES:
            st = live.status(role)
            s = st.served
            out[role] = {
                **(model_info(s) if s else ModelOut(name=settings.registered_model, version=None,
                                                    role=role, alias=st.alias)).model_dump(),
                "run_id": s.run_id if s else None,
                "loaded_at": _iso(s.loaded_at) if s else None,
                "last_checked": _iso(st.last_checked) if st.last_checked else None,
                "ready": s is not None,
                "problem": st.problem if s is None else None,
                "registry_error": st.registry_error,
            }
        out["poll_interval_s"] = settings.poll_interval_s
        return out

    @app.post("/tombstones/refresh")
    async def refresh_tombstones() -> Any:
        """Read the tombstones of forgotten users now (``recsys forget`` calls this; the
        request names no user) and drop them from the served models."""
        dropped = await asyncio.to_thread(forgotten.check)
        if forgotten.problem:
            return Answer({"detail": forgotten.problem}, status_code=503)
        return {"dropped": dropped, "tombstones": len(forgotten.keys)}

    @app.get("/metrics")
    async def prometheus() -> Response:
        """Prometheus metrics."""
        return Response(metrics.render(), media_type=metrics.content_type)

    return app


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _error(status: int, detail: str) -> JSONResponse:
    return Answer({"detail": detail}, status_code=status)


ListArgs = dict[str, Any]
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _prevalidated(parse: Callable[[Request], ListArgs | None]) -> type[APIRoute]:
    """A route class whose requests ``parse`` can read call the endpoint at once.

    FastAPI inspects the endpoint's parameter declarations at every request (a fifth of the CPU
    of a list request): ``parse`` reads the common, valid requests directly and returns the
    endpoint's arguments; for anything else it returns None and FastAPI reads the request as
    usual, so every 4xx, and the OpenAPI document, stay FastAPI's.
    """

    class Prevalidated(APIRoute):
        def get_route_handler(self) -> Handler:
            full = super().get_route_handler()
            endpoint = self.endpoint

            async def handler(request: Request) -> Response:
                args = parse(request)
                if args is None:
                    return await full(request)
                return await endpoint(**args)

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
        if len(user_id) > _MAX_ID:
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


_FIELDS = "user_id, recent_items, exclude, k, explain"


class _Shown(str):
    def __repr__(self) -> str:
        return str(self)


def _handlers(app: FastAPI, settings: ServiceSettings) -> None:
    @app.exception_handler(NotReady)
    async def not_ready(request: Request, exc: NotReady):
        return _error(503, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        status, messages = 422, []
        seen = set()
        for err in exc.errors():
            loc = list(err.get("loc", ()))
            where = loc[0] if loc else "body"
            field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]"
                             for p in loc[1:3] if p not in ("constrained-str", "int", "str"))
            field = field.replace(".[", "[")
            key = (where, field)
            if key in seen:
                continue
            seen.add(key)
            kind, raw = err.get("type", ""), err.get("input")
            # query and path values are text: show them as sent, JSON values as Python reads them
            value = _Shown(raw) if where in ("query", "path") and isinstance(raw, str) else raw
            if kind == "json_invalid":
                status = 400
                reason = err.get("ctx", {}).get("error", "not JSON")
                messages.append(f"malformed JSON body ({reason}); send a JSON object such as "
                                '{"user_id": "42", "recent_items": ["7"], "k": 10}')
            elif kind in ("model_attributes_type", "dict_type") and not field:
                messages.append(f"the body must be a JSON object with the fields {_FIELDS}; "
                                f"got {type(value).__name__}")
            elif kind == "missing" and not field:
                messages.append("a JSON body is required, such as "
                                '{"user_id": "42", "k": 10}')
            elif kind == "missing":
                messages.append(f"{where} parameter {field!r} is required")
            elif kind == "extra_forbidden":
                messages.append(f"unknown field {field!r}; the allowed fields are {_FIELDS}")
            elif field == "k":
                messages.append(f"k={value!r} is not valid: k must be an integer from 1 to "
                                f"{settings.max_k}")
            elif kind == "too_long":
                messages.append(f"{field} has {len(raw)} entries; at most "
                                f"{settings.max_recent_items} are allowed in one request")
            elif field.split("[")[0] in ("user_id", "item_id", "recent_items", "exclude"):
                messages.append(f"{field}={value!r} is not a valid id: ids are non-empty "
                                "strings or integers")
            elif kind.startswith("bool"):
                messages.append(f"{field}={value!r} must be true or false")
            else:
                messages.append(f"{field or where}={value!r}: {err.get('msg')}")
        return _error(status, "; ".join(messages))
