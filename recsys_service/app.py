"""The FastAPI application: ``create_app()`` (uvicorn: ``recsys_service.app:create_app``).

Routes (``recsys_service.routes``): ``GET|POST /recommendations``, ``GET /similar-items/{item_id}``
(ranking role), ``GET /predict`` (rating role), ``GET /health`` (the process is up), ``GET /ready``
(every role has a model), ``GET /model`` (what serves each role and the last reload's problems),
``GET /metrics`` (Prometheus), ``POST /events`` (feedback into the event store; every served
list is recorded with its ``recommendation_id`` and model version, see
``recsys_service.feedback``), ``POST /tombstones/refresh`` (re-read the forgotten users now,
see ``recsys_service.forgotten``). Bad input gets a 4xx whose ``detail`` says what to fix; a role
without a model, or an event store that cannot be reached, gets 503 with the reason. Every
route but ``/health`` and ``/ready`` needs an API key with its scope (``recsys_service.auth``).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from recsys_core.events.keys import KeyStore
from recsys_core.events.store import EventStore
from recsys_core.redaction import redact
from recsys_core.settings import get_settings
from recsys_service.auth import Authenticator
from recsys_service.docs import mount_docs
from recsys_service.errors import install_handlers
from recsys_service.feedback import ServedRecorder
from recsys_service.forgotten import Forgotten
from recsys_service.limits import EdgeLimits
from recsys_service.live_models import LiveModels
from recsys_service.metrics import MetricsMiddleware, ServiceMetrics
from recsys_service.routes import admin, health, predict, recommendations
from recsys_service.routes import events as events_routes
from recsys_service.settings import ServiceSettings
from recsys_service.state import Service

log = logging.getLogger(__name__)


def create_app(
    settings: ServiceSettings | None = None,
    *,
    live: LiveModels | None = None,
    poll: bool = True,
    events: EventStore | None = None,
    keys: KeyStore | None = None,
) -> FastAPI:
    """Build the service. ``poll=False`` leaves reloading to the caller (``live.refresh()``);
    ``events``: the event store (default: ``settings.events_url``); ``keys``: the API keys
    (default: those of the event store's database; none checked when ``settings.auth`` is
    false)."""
    settings = settings or get_settings().serving
    metrics = ServiceMetrics()
    if live is None:
        live = LiveModels(settings, on_reload=metrics.on_reload)
    if events is None:
        events = EventStore(settings.events_url)  # connects on first use only
    if keys is None and settings.auth:
        keys = KeyStore(events.url)  # reads the pepper now: a missing one stops the start
    svc = Service(
        settings=settings,
        live=live,
        metrics=metrics,
        events=events,
        recorder=ServedRecorder(
            events,
            metrics.served_lists,
            settings.served_queue_size,
            outbox=settings.served_outbox,
            outbox_max=settings.served_outbox_max,
            fsync_s=settings.served_outbox_fsync_s,
        ),
        forgotten=Forgotten(live, settings.events_url, settings.forget_poll_s),
        auth=Authenticator(keys if settings.auth else None, settings.key_cache_s),
    )
    app = FastAPI(
        title="recsys",
        summary="Recommendations from the registry's champions",
        lifespan=_lifespan(svc, poll),
        docs_url=None,
        redoc_url=None,
    )
    mount_docs(app)  # /docs and /redoc from shipped assets, not a CDN
    app.state.service = svc
    # the parts one by one too, for callers that drive them (``app.state.live.refresh()``)
    for part in ("settings", "live", "metrics", "events", "recorder", "forgotten", "auth"):
        setattr(app.state, part, getattr(svc, part))
    app.add_middleware(EdgeLimits, settings=settings)  # before any route reads a body
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    install_handlers(app, settings)
    app.include_router(health.router)  # the only routes without a key
    app.include_router(recommendations.router(settings))
    app.include_router(predict.router)
    app.include_router(events_routes.router)
    app.include_router(admin.router)
    return app


def _lifespan(svc: Service, poll: bool):
    settings, live, forgotten = svc.settings, svc.live, svc.forgotten

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from recsys_core.tracking import mlflow_run

        uri = mlflow_run.configure(settings.tracking_uri)
        log.info(
            "serving %r (ranking alias %r, rating alias %r) from %s",
            settings.registered_model,
            settings.ranking_alias,
            settings.rating_alias,
            redact(uri),
        )
        svc.recorder.start()  # replays the lists a previous process left in the outbox
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
            await asyncio.to_thread(svc.recorder.stop)
            svc.metrics.process_exit()

    return lifespan
