"""``GET /model`` (what serves each role), ``GET /metrics`` (Prometheus) and
``POST /tombstones/refresh`` (re-read the forgotten users now, see ``recsys_service.forgotten``):
scope ``admin``.
"""

# no "from __future__ import annotations": FastAPI reads the parameter types

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Security
from fastapi.responses import Response

from recsys_service.auth import ADMIN, authorize
from recsys_service.schemas import ModelOut, model_info
from recsys_service.settings import ROLES
from recsys_service.state import Answer, Service, service

router = APIRouter(dependencies=[Security(authorize, scopes=[ADMIN])])
Svc = Annotated[Service, Depends(service)]


@router.get("/model")
async def model(svc: Svc) -> Any:
    """What serves each role, and the problems of the last reload."""
    out: dict[str, Any] = {}
    for role in ROLES:
        st = svc.live.status(role)
        s = st.served
        out[role] = {
            **(
                model_info(s)
                if s
                else ModelOut(
                    name=svc.settings.registered_model, version=None, role=role, alias=st.alias
                )
            ).model_dump(),
            "run_id": s.run_id if s else None,
            "loaded_at": _iso(s.loaded_at) if s else None,
            "last_checked": _iso(st.last_checked) if st.last_checked else None,
            "ready": s is not None,
            "problem": st.problem if s is None else None,
            "registry_error": st.registry_error,
        }
    out["poll_interval_s"] = svc.settings.poll_interval_s
    return out


@router.post("/tombstones/refresh")
async def refresh_tombstones(svc: Svc) -> Any:
    """Read the tombstones of forgotten users now (``recsys forget`` calls this; the
    request names no user) and drop them from the served models."""
    forgotten = svc.forgotten
    dropped = await asyncio.to_thread(forgotten.check)
    if forgotten.problem:
        return Answer({"detail": forgotten.problem}, status_code=503)
    return {"dropped": dropped, "tombstones": len(forgotten.keys)}


@router.get("/metrics")
async def prometheus(svc: Svc) -> Response:
    """Prometheus metrics."""
    metrics = svc.metrics
    return Response(metrics.render(), media_type=metrics.content_type)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
