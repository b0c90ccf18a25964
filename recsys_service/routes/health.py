"""``GET /health`` (the process is up) and ``GET /ready`` (the roles it must serve are)."""

# no "from __future__ import annotations": FastAPI reads the parameter types

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from recsys_service.live_models import NotReady
from recsys_service.settings import ROLES
from recsys_service.state import Answer, Service, service

router = APIRouter()


@router.get("/health")
async def health() -> Any:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(svc: Annotated[Service, Depends(service)]) -> Any:
    """Readiness: the roles of ``ready_roles`` are served (default: at least one role, so
    that a deployment that trains only ranking models, or only rating models, is ready);
    the roles not served are listed with the reason, and the problems of the last reload of
    the roles that keep serving an older version."""
    reasons = {}
    for role in ROLES:
        try:
            svc.live.served(role)
        except NotReady as exc:
            reasons[role] = str(exc)
    required = svc.settings.ready_roles
    missing = (
        [r for r in required if r in reasons]
        if required is not None
        else list(ROLES)
        if len(reasons) == len(ROLES)
        else []
    )
    # a version refused or unreachable while an older one keeps serving (e.g. its model state
    # does not match the digest recorded at registration): said here, not hidden in /model
    problems = {r: e for r in ROLES if (e := svc.live.status(r).registry_error)}
    extra = {"problems": problems} if problems else {}
    if missing:
        return Answer({"ready": False, "reasons": reasons, **extra}, status_code=503)
    return {"ready": True, **({"not_served": reasons} if reasons else {}), **extra}
