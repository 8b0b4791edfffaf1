"""The console's plumbing: its state on the app, the signed-in principal, page rendering with
the security headers, and HTML error pages (the API's error mapping, shown as a page)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.console.exports import ExportJobs
from api.console.options import ConsoleOptions
from api.console.session import COOKIE, SessionCodec
from api.problems import status_of
from api.services import ApiServices
from routing.api_ports import Principal
from routing.errors import PermissionDenied, PrivnumError, Unauthenticated
from routing.usecases import access

HERE = Path(__file__).parent
PREFIX = "/console"
# Nothing but this origin's own style sheet and images; no script at all, no framing.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    # same-origin: no console URL leaks to an order or chat link, and form posts still carry
    # their Origin (no-referrer would make it "null").
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


@dataclass
class ConsoleState:
    options: ConsoleOptions
    codec: SessionCodec
    jobs: ExportJobs
    templates: Jinja2Templates


def state_of(request: Request) -> ConsoleState:
    state = request.app.state.console
    assert isinstance(state, ConsoleState)
    return state


def services_of(request: Request) -> ApiServices:
    svc = request.app.state.services
    assert isinstance(svc, ApiServices)
    return svc


class SignInRequired(Exception):
    """No session, an ended one, or its credential no longer valid."""


async def signed_in(request: Request) -> Principal:
    """The principal of the request's session, authenticated exactly as a bearer token is."""
    svc = services_of(request)
    now = svc.clock()
    session = state_of(request).codec.read(request.cookies.get(COOKIE), now)
    if session is None:
        raise SignInRequired
    try:
        return await svc.use_cases.credentials.authenticate(session.token, now)
    except Unauthenticated:
        raise SignInRequired from None


def allowed(rule: Callable[[Principal], None], who: Principal) -> bool:
    """Whether ``access``'s ``rule`` lets ``who`` in (to show a link, never to guard)."""
    try:
        rule(who)
    except PermissionDenied:
        return False
    return True


def nav(who: Principal | None) -> dict[str, Any]:
    if who is None:
        return {"who": None}
    return {"who": who,
            "calls_url": (f"{PREFIX}/shops/{quote(who.shop_id, safe='')}/calls"
                          if who.shop_id else f"{PREFIX}/shops"),
            "show_shops": who.shop_id is None,
            "show_exports": allowed(access.audit_call_log, who),
            "show_operations": allowed(access.see_operations, who)}


def render(request: Request, template: str, who: Principal | None, status: int = 200,
           **context: Any) -> Response:
    return state_of(request).templates.TemplateResponse(
        request, template, {**nav(who), **context}, status_code=status)


def safe_next(target: str | None) -> str:
    """Only a console path (no other site, no scheme-relative URL) is a place to return to."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


class ConsoleRoute(APIRoute):
    """Console pages answer in HTML: no session → the sign-in page; a use case's refusal →
    an error page with the status the API gives the same error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = RedirectResponse(
                    f"{PREFIX}/sign-in?next={quote(here, safe='')}", status_code=303)
                response.delete_cookie(COOKIE, path=PREFIX)
                return response
            except PrivnumError as exc:
                who = None
                with contextlib.suppress(SignInRequired):
                    who = await signed_in(request)
                code = status_of(exc)
                return render(request, "error.html", who, status=code, code=code,
                              message=str(exc) or exc.code)

        return page


class SecurityHeaders:
    """The console's headers on every console response (pages, assets, redirects, errors);
    a form post from another origin is refused before it reaches a page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "POST" and not _same_origin(scope):
            response = Response("cross-site form post refused", status_code=403,
                                media_type="text/plain", headers=HEADERS)
            await response(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.decode().lower() not in HEADERS]
                headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _same_origin(scope: Scope) -> bool:
    headers = dict(scope.get("headers", []))
    site = headers.get(b"sec-fetch-site")
    if site is not None:  # the browser's own word on where the post comes from
        return bool(site in (b"same-origin", b"none"))
    origin = headers.get(b"origin")
    if origin is None:  # not a browser form post (a script or an old client)
        return True
    return bool(origin.split(b"://", 1)[-1] == headers.get(b"host", b""))
