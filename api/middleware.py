"""Pure-ASGI guards that run before routing: body size limit (413), JSON-only bodies (415) and
a deadline for the body to arrive (408).

The size limit is enforced on ``Content-Length`` and again while the body streams in (chunked
uploads), so an oversized request never reaches a handler and never writes anything. A body
that has not fully arrived ``body_timeout`` seconds after the handler first asks for it
(headers sent, then a trickle or nothing: slowloris) is answered 408 and the connection is
closed, so it cannot hold a worker and a socket for ever.
"""

from __future__ import annotations

import asyncio
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM_JSON

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` while a body streams in; rendered as a 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


class BodyTimeout(HTTPException):
    """Raised from ``receive`` when the body is late; rendered as a 408 problem, and the
    connection is closed (the rest of that body must not be read as the next request)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"request body not received within {seconds:g} s",
                         headers={"Connection": "close"})


def _problem_bytes(status: int, code: str, title: str, detail: str) -> bytes:
    return json.dumps({"type": f"urn:privnum:problem:{code}", "title": title, "status": status,
                       "detail": detail, "code": code}).encode()


async def _send_problem(send: Send, status: int, code: str, title: str, detail: str, *,
                        close: bool = False) -> None:
    body = _problem_bytes(status, code, title, detail)
    headers = [(b"content-type", PROBLEM_JSON.encode()),
               (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _json_type(value: str) -> bool:
    media = value.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/")
                                           and media.endswith("+json"))


class BodyGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout: float = 10.0,
                 form_prefix: str | None = None) -> None:
        self.app = app
        self.form_prefix = form_prefix  # under it, HTML forms (url-encoded) are bodies too
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

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
        form = (self.form_prefix is not None and scope["path"].startswith(self.form_prefix)
                and (content_type or "").split(";")[0].strip().lower()
                == "application/x-www-form-urlencoded")
        if (has_body or content_type) and not (_json_type(content_type or "") or form):
            await _send_problem(send, 415, "unsupported_media_type", "Unsupported media type",
                                "request bodies must be application/json")
            return
        body = _BodyReader(receive, limit, self.body_timeout)
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, body.receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _send_problem(send, 413, "payload_too_large", "Payload too large",
                                    f"request body over {limit} bytes")
        except BodyTimeout as exc:
            if not started:
                await _send_problem(send, 408, "request_timeout", "Request timeout",
                                    str(exc.detail), close=True)


class _BodyReader:
    """``receive`` for the app: counts the body against ``limit`` and wants all of it within
    ``timeout`` seconds of the first read."""

    def __init__(self, receive: Receive, limit: int, timeout: float) -> None:
        self._receive = receive
        self._limit = limit
        self._timeout = timeout
        self._received = 0
        self._done = False
        self._deadline: float | None = None

    async def receive(self) -> Message:
        if self._done:  # afterwards the app only listens for a disconnect: no deadline
            return await self._receive()
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().time() + self._timeout
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            raise BodyTimeout(self._timeout) from None
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._limit:
                raise BodyTooLarge(self._limit)
            self._done = not message.get("more_body", False)
        return message
