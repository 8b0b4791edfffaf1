"""``Idempotency-Key`` on every POST, for every route there is or will be (pure ASGI).

A POST that carries the header is run at most once per (credential, key): the first one runs
and its response is kept (``routing.usecases.idempotency``); a repeat with the same request
gets that response again, marked ``Idempotent-Replayed: true``; the same key with a different
request is 422 ``idempotency_key_reused``; a repeat while the first still runs is 409
``idempotency_key_in_use`` with ``Retry-After``. A request without the header, or without a
valid credential (it is answered 401 as usual), passes through untouched.

The response is held until it is kept, then sent: a client that retries the moment it has an
answer finds the key done, never "in use". It sits inside ``BodyGuard``, so the body it reads
to compare requests is already bounded in size and time.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import from_error
from api.services import ApiServices
from routing.errors import PrivnumError, Unauthenticated
from routing.idempotency import StoredResponse, request_digest

HEADER = "idempotency-key"
REPLAYED = "idempotent-replayed"
# Request headers that change what a request does (the account a platform credential acts
# for): part of "the same request".
_MEANINGFUL_PREFIX = "x-privnum-"
_LOG = logging.getLogger("privnum.api")


def _headers(scope: Scope) -> list[tuple[str, str]]:
    return [(k.decode("latin-1").lower(), v.decode("latin-1"))
            for k, v in scope.get("headers", [])]


def _bearer(headers: list[tuple[str, str]]) -> str | None:
    value = next((v for k, v in headers if k == "authorization"), "")
    scheme, _, token = value.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


class IdempotencyKeys:
    def __init__(self, app: ASGIApp, services: ApiServices) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        key = next((v for k, v in headers if k == HEADER), None)
        if key is None:
            await self.app(scope, receive, send)
            return
        svc = self.services
        now = svc.clock()
        try:
            who = await svc.use_cases.credentials.authenticate(_bearer(headers), now)
        except Unauthenticated:
            await self.app(scope, receive, send)  # the route answers 401; nothing is kept
            return
        except PrivnumError as exc:  # the token store is down: nothing can be run safely
            await from_error(exc)(scope, receive, send)
            return
        body = await _read_body(receive)
        digest = request_digest(
            scope["method"], scope["path"], scope.get("query_string", b"").decode("latin-1"),
            body, [(k, v) for k, v in headers if k.startswith(_MEANINGFUL_PREFIX)])
        keys = svc.use_cases.idempotency
        try:
            begun = await keys.begin(who, key, digest, now)
        except PrivnumError as exc:
            await from_error(exc)(scope, receive, send)
            return
        if begun.replay is not None:
            await _send_kept(send, begun.replay)
            return

        delivered = False

        async def replay_body() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        try:
            await self.app(scope, replay_body, hold)
        except BaseException:
            await keys.finish(begun, None)
            raise
        try:
            await keys.finish(begun, _response_of(held))
        except PrivnumError as exc:
            # The request ran: its answer still goes out. Its key stays claimed until the
            # lease runs out; a repeat before then is told to retry.
            _LOG.warning("idempotency key not kept (%s): %s", exc.code, exc)
        for message in held:
            await send(message)


def _response_of(messages: list[Message]) -> StoredResponse | None:
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    if start is None:
        return None
    content_type = next((v.decode("latin-1") for k, v in start.get("headers", [])
                         if k.lower() == b"content-type"), "application/octet-stream")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return StoredResponse(status=int(start["status"]), content_type=content_type, body=body)


async def _send_kept(send: Send, kept: StoredResponse) -> None:
    await send({"type": "http.response.start", "status": kept.status, "headers": [
        (b"content-type", kept.content_type.encode("latin-1")),
        (b"content-length", str(len(kept.body)).encode()),
        (REPLAYED.encode(), b"true")]})
    await send({"type": "http.response.body", "body": kept.body})
