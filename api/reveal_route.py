"""The reveal's lean path: a plain reveal (a bearer token, a valid order id, an empty body or
a JSON object that validates as ``RevealRequest``, no ``X-Privnum-Account``) is answered
without FastAPI's route matching and dependency solving, which cost a repeated reveal about
as much as its own work. Anything else — a malformed input of any kind, another
authorization, acting on behalf of an account — goes the standard way (the route in
``api.routes_orders``), so every refusal is the one FastAPI gives, word for word.

It sits first among the app's routes and, like the standard route, inside the app's
exception handling: a domain error, a body over the limit or too slow, becomes the same
problem response. The answer is ``routes_orders.reveal_response``, the one the standard
route sends, and ``scope["route"]`` is the standard route (metrics count it under its path).
The OpenAPI document is the standard route's: this one is not in it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.datastructures import Headers, URLPath
from starlette.requests import Request
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import ACCOUNT_HEADER, services_of
from api.binding_schemas import RevealRequest
from api.routes_orders import reveal, reveal_response
from api.schemas import ID_PATTERN

_DECLINED = "privnum.reveal_declined"  # scope key: this request goes the standard way
_PATH = re.compile(r"/v1/orders/([^/]+)/reveal")
_ORDER_ID = re.compile(ID_PATTERN)
_ACCOUNT = ACCOUNT_HEADER.lower()


def standard_route(routes: list[BaseRoute]) -> APIRoute:
    """The reveal's route among ``routes`` (an ``APIRouter``'s)."""
    return next(r for r in routes if isinstance(r, APIRoute) and r.endpoint is reveal)


class LeanReveal(BaseRoute):
    """``router``: the app's router, which answers a declined request the standard way;
    ``route``: the standard route (metrics and telemetry name it)."""

    def __init__(self, router: ASGIApp, route: APIRoute) -> None:
        self._router = router
        self._route = route
        self.path = route.path
        self.path_format = route.path_format

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get(_DECLINED):
            return Match.NONE, {}
        found = _PATH.fullmatch(scope["path"]) if not scope.get("root_path") else None
        if found is None:
            return Match.NONE, {}
        return Match.FULL, {"endpoint": self._route.endpoint, "route": self._route,
                            "path_params": {"order_id": found.group(1)}}

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # the standard route has the name

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = await _receive_body(receive)
        plain = None
        if received[-1]["type"] == "http.request":  # else the client went away
            plain = _plain(scope, b"".join(m.get("body", b"") for m in received))
        if plain is None:
            await self._standard(scope, receive, send, received)
            return
        token, order_id, parsed = plain
        svc = services_of(Request(scope, receive))
        who = await svc.use_cases.credentials.authenticate(token, svc.clock())
        response = await reveal_response(svc, who, order_id, parsed)
        await response(scope, receive, send)

    async def _standard(self, scope: Scope, receive: Receive, send: Send,
                        received: list[Message]) -> None:
        pending = list(received)

        async def replay() -> Message:  # what was received, as it came, then the client
            return pending.pop(0) if pending else await receive()

        scope[_DECLINED] = True
        await self._router(scope, replay, send)


async def _receive_body(receive: Receive) -> list[Message]:
    """The body's messages up to its last one, or up to the client's going away (then the
    last message is not an ``http.request``)."""
    received: list[Message] = []
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return received


def _plain(scope: Scope, body: bytes) -> tuple[str, str, RevealRequest | None] | None:
    """The token, the order id and the body of a plain reveal, else ``None``. Each check is
    at least as strict as the standard route's (which then answers)."""
    headers = Headers(scope=scope)
    if _ACCOUNT in headers:
        return None
    scheme, token = get_authorization_scheme_param(headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        return None
    order_id: str = scope["path_params"]["order_id"]
    if not 1 <= len(order_id) <= 64 or _ORDER_ID.fullmatch(order_id) is None:
        return None
    if not body:
        return token, order_id, None
    content_type = headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return None
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        return token, order_id, RevealRequest.model_validate(data)
    except ValidationError:
        return None
