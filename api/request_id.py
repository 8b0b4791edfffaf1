"""``X-Request-Id`` in and out, and the request's id for every log line written while it runs.

A client's id is kept when it may be logged verbatim (the rule of ``routing.call_ids``: a UUID
or a short token, no run of digits that could be a phone number); otherwise, or when there is
none, the request gets a fresh one. Either way the response carries it back.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from routing.call_ids import is_call_id

HEADER = "x-request-id"

# Context-local, not shared: each request (task) sees its own id; log formatters read it.
REQUEST_ID: ContextVar[str | None] = ContextVar("privnum_request_id", default=None)


def current_request_id() -> dict[str, str]:
    """Log fields of the request being served (none outside one)."""
    rid = REQUEST_ID.get()
    return {"request_id": rid} if rid else {}


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope.get("headers", [])
                      if k.lower() == HEADER.encode()), "")
        rid = given if given and is_call_id(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != HEADER.encode()]
                message = {**message, "headers": [*headers, (HEADER.encode(), rid.encode())]}
            await send(message)

        token = REQUEST_ID.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
