"""Limits at the edge: what one request may send before any route reads it.

:class:`EdgeLimits` (ASGI middleware, outermost but for the metrics) refuses, before the body
reaches a route:

- a request whose path or query carries a control character (U+0000-U+001F, U+007F): 422;
  ids reach the event store and the logs, where a NUL fails a whole PostgreSQL batch;
- a body that is not ``application/json`` (``text/plain`` is what a browser sends cross-site
  without asking first): 415;
- a body larger than ``max_body_bytes``: 413, from ``Content-Length`` before anything is read,
  or from the count of what arrives when the length is not declared (chunked);
- a body that does not arrive whole within ``body_timeout_s`` (one byte every few seconds would
  hold a connection and a worker's memory forever): 408, and the connection is closed;
- JSON nested deeper than ``max_json_depth`` (the JSON parser recurses; 1,000 levels were a
  500): 400;
- a JSON string carrying a control character (``\\u0000``...; no field of this API is free
  text): 422.

The body is read once here, bounded, and handed to the route as it came. Every refusal is a
JSON ``{"detail": ...}`` that says what to send instead.

uvicorn's own limits (:func:`uvicorn_options`) are set from the same settings: the number of
connections and requests a worker holds at once (``limit_concurrency``, 503 beyond), how long an
idle keep-alive connection stays open, the largest request head h11 buffers, and how long the
request head may take to arrive (:class:`HeadDeadline`: a connection that sends nothing, or its
headers a byte at a time, is closed).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

import numpy as np
import orjson

from recsys_service.settings import ServiceSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_ESCAPE = re.compile(rb"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_CONTROL_ESCAPES = frozenset(b"bfnrt")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_EXAMPLE = (
    '[{"event_id": "e1", "user_id": "42", "item_id": "7", "type": "click"}] to '
    'POST /events, {"user_id": "42", "k": 10} to POST /recommendations'
)


class EdgeLimits:
    """ASGI middleware enforcing the request limits of :class:`ServiceSettings`."""

    def __init__(self, app: ASGIApp, *, settings: ServiceSettings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.max_depth = settings.max_json_depth
        self.body_timeout = settings.body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        bad = _control_in(scope["path"], "path") or _control_in(
            unquote(scope.get("query_string", b"").decode("latin-1")), "query"
        )
        if bad:
            await _refuse(send, 422, bad)
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", ())}
        length_header: bytes = headers.get(b"content-length", b"")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        try:
            length = int(length_header) if length_header else None
        except ValueError:
            await _refuse(
                send,
                400,
                f"Content-Length {length_header.decode('latin-1')!r} is not a number of bytes",
                close=True,
            )
            return
        if length is not None and length > self.max_body:
            await _refuse(send, 413, _too_large(length, self.max_body), close=True)
            return
        if not (chunked or (length or 0) > 0):
            await self.app(scope, receive, send)  # no body: nothing to check
            return
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media != b"application/json" and not media.endswith(b"+json"):
            shown = media.decode("latin-1") or "none"
            await _refuse(
                send,
                415,
                f"the body must be sent as Content-Type: application/json "
                f"(got {shown!r}); send JSON such as {JSON_EXAMPLE}",
                close=True,
            )
            return
        body = await self._read(scope, receive, send)
        if body is None:
            return  # refused (or the client left)
        problem = json_problem(body, self.max_depth)
        if problem:
            await _refuse(send, *problem)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as uvicorn does

        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        deadline = time.monotonic() + self.body_timeout
        parts: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - time.monotonic())
            except TimeoutError:
                await _refuse(
                    send,
                    408,
                    f"the body did not arrive within {self.body_timeout:g} "
                    "s; send it whole, at once",
                    close=True,
                )
                return None
            if message["type"] == "http.disconnect":
                # the client left: the route says so in its own words (a 499 nobody reads)
                async def gone(message: Message = message) -> Message:
                    return message

                await self.app(scope, gone, send)
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _refuse(send, 413, _too_large(size, self.max_body, streamed=True), close=True)
                return None
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts)


def json_problem(body: bytes, max_depth: int) -> tuple[int, str] | None:
    """(status, message) when ``body`` nests deeper than ``max_depth`` or a string of it
    carries a control character; None otherwise (malformed JSON is left to the route)."""
    strings = list(_JSON_STRING.finditer(body))
    for match in strings:
        raw = match[0]
        if b"\\" not in raw:
            continue
        for esc in _ESCAPE.finditer(raw):
            code = esc[1]
            if code[:1] == b"u":
                point = int(code[1:], 16)
                if point < 0x20 or point == 0x7F:
                    return 422, _control_message(point, raw)
            elif code[0] in _CONTROL_ESCAPES:
                return 422, _control_message(_CONTROL_ESCAPES_POINTS[code[0]], raw)
    bare = _JSON_STRING.sub(b'""', body) if strings else body
    codes = np.frombuffer(bare, dtype=np.uint8)
    step = ((codes == 0x5B) | (codes == 0x7B)).astype(np.int32)
    step -= (codes == 0x5D) | (codes == 0x7D)
    depth = int(np.cumsum(step).max()) if len(step) else 0
    if depth > max_depth:
        return 400, (
            f"the JSON body nests {depth} levels deep; at most {max_depth} are "
            f"allowed: send a flat list of objects such as {JSON_EXAMPLE}"
        )
    return None


_CONTROL_ESCAPES_POINTS = {ord("b"): 8, ord("f"): 12, ord("n"): 10, ord("r"): 13, ord("t"): 9}


def _control_message(point: int, raw: bytes) -> str:
    shown = raw[:60].decode("utf-8", "replace")
    return (
        f"the JSON string {shown}{'...' if len(raw) > 60 else ''} carries the control "
        f"character U+{point:04X}; ids and fields may not contain control characters"
    )


def _control_in(text: str, where: str) -> str | None:
    found = _CONTROL.search(text)
    if found is None:
        return None
    return (
        f"the {where} carries the control character U+{ord(found[0]):04X} at position "
        f"{found.start()}; ids and parameters may not contain control characters"
    )


def _too_large(size: int, limit: int, *, streamed: bool = False) -> str:
    what = f"more than {limit} bytes arrived" if streamed else f"a body of {size} bytes"
    return (
        f"{what}; at most {limit} bytes are allowed (RECSYS_SERVE_MAX_BODY_BYTES): send "
        "fewer events per request"
    )


async def _refuse(send: Send, status: int, detail: str, *, close: bool = False) -> None:
    headers = [(b"content-type", b"application/json")]
    if close:  # the rest of the body is not read: the connection cannot carry another request
        headers.append((b"connection", b"close"))
    body = orjson.dumps({"detail": detail})
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- uvicorn ---------------------------------------------------------------------------------


def uvicorn_options(settings: ServiceSettings) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.Config`` that carry the service's connection limits."""
    return dict(
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=settings.keep_alive_s,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # by name: the worker processes import it with the app, not while they unpickle
        # their config (before they answer the supervisor's health pings)
        http=(
            "recsys_service.limits:HeadDeadline"
            if _httptools()
            else "recsys_service.limits:H11HeadDeadline"
        ),
    )


def _httptools() -> bool:
    try:
        import httptools  # noqa: F401
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        return False
    return True


class _HeadDeadlineMixin:
    """Closes a connection whose request head (request line and headers) has not arrived
    within ``config.header_timeout_s`` of the connection opening or of the previous answer.

    uvicorn's keep-alive timer stops at the first byte of a request: a client sending its
    headers one byte at a time would otherwise hold the connection for as long as it likes.
    """

    config: Any
    loop: asyncio.AbstractEventLoop
    transport: Any
    cycle: Any

    def _arm_head(self) -> None:
        timeout = getattr(self.config, "header_timeout_s", None)
        if timeout and getattr(self, "_head_timer", None) is None:
            self._head_cycle = self.cycle
            self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(
                timeout, self._head_late
            )

    def _disarm_head(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_head()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            self._arm_head()  # a new request starts: its head has header_timeout_s to arrive
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not None and self.cycle is not getattr(self, "_head_cycle", None):
            self._disarm_head()  # the head arrived: the body has its own deadline (EdgeLimits)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head()
        super().connection_lost(exc)  # type: ignore[misc]


def _protocols() -> tuple[type, type]:
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class HeadDeadline(_HeadDeadlineMixin, HttpToolsProtocol):
        """httptools' protocol with a deadline on the request head."""

    class H11HeadDeadline(_HeadDeadlineMixin, H11Protocol):
        """h11's protocol with a deadline on the request head."""

    return HeadDeadline, H11HeadDeadline


HeadDeadline, H11HeadDeadline = _protocols()
for _cls in (HeadDeadline, H11HeadDeadline):  # picklable by name: workers are spawned
    _cls.__qualname__ = _cls.__name__
