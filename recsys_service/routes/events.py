"""``POST /events``: feedback into the event store."""

# no "from __future__ import annotations": FastAPI reads the parameter types

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.requests import ClientDisconnect

from recsys_core.exceptions import DataSourceError, DataValidationError, EventConflictError
from recsys_service.auth import Ingester
from recsys_service.state import Answer, Service, error, service

log = logging.getLogger(__name__)

router = APIRouter()


@router.post("/events")
async def post_events(
    request: Request, svc: Annotated[Service, Depends(service)], caller: Ingester
) -> Any:
    """Store a JSON list of events (rating, click, view, purchase) in one transaction. Scope
    ``ingest``.

    200 once committed, with ``received``/``stored``/``duplicates`` (an ``event_id`` the
    caller's key already stored with the same content changes nothing); 409 when it stored
    that id with other content, and 422 with every bad event (a forgotten user's included):
    nothing stored; 413 beyond
    ``max_event_batch`` events; 503 when the store cannot be reached (nothing stored:
    send the batch again); 499 (logged only: nobody reads it) when the client left before
    its body was read.
    """
    try:
        batch = await request.json()
    except ClientDisconnect:
        # the client left while its request waited for the event loop (a load tester at its
        # timeout): its body cannot be read, nothing is stored, and nobody reads the answer
        log.info(
            "POST /events: the client closed the connection before its body was "
            "read; nothing stored"
        )
        return error(
            499, "the client closed the connection before the body was read; nothing was stored"
        )
    except ValueError as exc:
        return error(
            400,
            f"malformed JSON body ({exc}); send a JSON list of events such "
            'as [{"event_id": "e1", "user_id": "42", "item_id": "7", '
            '"type": "click", "recommendation_id": "..."}]',
        )
    if not isinstance(batch, list):
        return error(422, f"the body must be a JSON list of events; got {type(batch).__name__}")
    limit = svc.settings.max_event_batch
    if len(batch) > limit:
        return error(
            413, f"{len(batch)} events in one request; at most {limit} are allowed: split the batch"
        )
    metrics = svc.metrics
    try:
        result = await asyncio.to_thread(svc.events.append, batch, caller.name)
    except EventConflictError as exc:
        metrics.events.labels("refused").inc(len(batch))
        return Answer({"detail": str(exc), "problems": _problems(exc)}, status_code=409)
    except DataValidationError as exc:
        metrics.events.labels("refused").inc(len(batch))
        return Answer({"detail": str(exc), "problems": _problems(exc)}, status_code=422)
    except DataSourceError as exc:
        log.warning("events not stored: %s", exc)
        return error(503, f"{exc} (nothing was stored; send the batch again)")
    metrics.events.labels("stored").inc(result.stored)
    metrics.events.labels("duplicate").inc(result.duplicates)
    return {"received": result.received, "stored": result.stored, "duplicates": result.duplicates}


def _problems(exc: DataValidationError) -> list[dict[str, Any]]:
    return [
        dict(index=p.index, event_id=p.event_id, field=p.field, message=p.message)
        for p in exc.report or ()
    ]
