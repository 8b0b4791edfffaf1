"""Pure-ASGI guards that run before routing: body size limit (413) and JSON-only bodies (415).

The size limit is enforced on ``Content-Length`` and again while the body streams in (chunked
uploads), so an oversized request never reaches a handler and never writes anything.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` while a body streams in; rendered as a 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


def _problem_bytes(status: int, code: str, title: str, detail: str) -> bytes:
    return json.dumps({"type": f"urn:privnum:problem:{code}", "title": title, "status": status,
                       "detail": detail, "code": code}).encode()


async def _send_problem(send: Send, status: int, code: str, title: str, detail: str) -> None:
    body = _problem_bytes(status, code, title, detail)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", PROBLEM_JSON.encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _json_type(value: str) -> bool:
    media = value.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


class BodyGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        length_text = headers.get("content-length")
        limit = self.max_body_bytes
        if length_text is not None:
            try:
                length = int(length_text)
            except ValueError:
                await _send_problem(send, 400, "bad_request", "Bad request",
                                    "Content-Length is not a number")
                return
            if length > limit:
                await _send_problem(send, 413, "payload_too_large", "Payload too large",
                                    f"request body over {limit} bytes")
                return
        else:
            length = -1
        content_type = headers.get("content-type")
        has_body = length > 0 or "transfer-encoding" in headers
        if (has_body or content_type) and not _json_type(content_type or ""):
            await _send_problem(send, 415, "unsupported_media_type", "Unsupported media type",
                                "request bodies must be application/json")
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_problem(send, 413, "payload_too_large", "Payload too large",
                                    f"request body over {limit} bytes")

