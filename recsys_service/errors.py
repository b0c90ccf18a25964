"""The service's answers to requests FastAPI cannot validate, and to roles without a model:
one ``detail`` that says what was wrong and how to fix it."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from recsys_service.live_models import NotReady
from recsys_service.settings import ServiceSettings
from recsys_service.state import error

_FIELDS = "user_id, recent_items, exclude, k, explain"


class _Shown(str):
    def __repr__(self) -> str:
        return str(self)


def install_handlers(app: FastAPI, settings: ServiceSettings) -> None:
    """Register the exception handlers of the service on ``app``."""

    @app.exception_handler(NotReady)
    async def not_ready(request: Request, exc: NotReady):
        return error(503, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        status, messages = 422, []
        seen = set()
        for err in exc.errors():
            loc = list(err.get("loc", ()))
            where = loc[0] if loc else "body"
            field = ".".join(
                str(p) if not isinstance(p, int) else f"[{p}]"
                for p in loc[1:3]
                if p not in ("constrained-str", "int", "str")
            )
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
                messages.append(
                    f"malformed JSON body ({reason}); send a JSON object such as "
                    '{"user_id": "42", "recent_items": ["7"], "k": 10}'
                )
            elif kind in ("model_attributes_type", "dict_type") and not field:
                messages.append(
                    f"the body must be a JSON object with the fields {_FIELDS}; "
                    f"got {type(value).__name__}"
                )
            elif kind == "missing" and not field:
                messages.append('a JSON body is required, such as {"user_id": "42", "k": 10}')
            elif kind == "missing":
                messages.append(f"{where} parameter {field!r} is required")
            elif kind == "extra_forbidden":
                messages.append(f"unknown field {field!r}; the allowed fields are {_FIELDS}")
            elif field == "k":
                messages.append(
                    f"k={value!r} is not valid: k must be an integer from 1 to {settings.max_k}"
                )
            elif kind == "too_long":
                messages.append(
                    f"{field} has {len(raw)} entries; at most "
                    f"{settings.max_recent_items} are allowed in one request"
                )
            elif field.split("[")[0] in ("user_id", "item_id", "recent_items", "exclude"):
                messages.append(
                    f"{field}={value!r} is not a valid id: ids are non-empty strings or integers"
                )
            elif kind.startswith("bool"):
                messages.append(f"{field}={value!r} must be true or false")
            else:
                messages.append(f"{field or where}={value!r}: {err.get('msg')}")
        return error(status, "; ".join(messages))
