"""The app factory. No module-level app or state: everything comes in through ``ApiServices``."""

from __future__ import annotations

import time

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import (
    problems,
    routes_accounts,
    routes_misc,
    routes_orders,
    routes_platform,
    routes_pool,
    routes_recordings,
    routes_shops,
    routes_webhooks,
)
from api.console.mount import install as install_console
from api.idempotency import IdempotencyKeys
from api.middleware import BodyGuard
from api.openapi import install_docs, install_openapi, operation_id
from api.request_id import RequestId
from api.reveal_route import LeanReveal, standard_route
from api.services import ApiServices

API_VERSION = "1.0.0"
DESCRIPTION = """Privacy-number (AXB number-masking) platform API.

Authenticate with `Authorization: Bearer <token>` (a shop-account token or the platform admin
token; `privnum tokens issue`). Errors are `application/problem+json` with a stable `code`.
Every POST accepts an `Idempotency-Key` header: a retry with the same key and request gets the
first response again instead of running twice.
"""


class _Count:
    """Counts responses by route template and status, and times them (first byte received to
    last byte sent) by route and method, for /metrics (pure ASGI, no buffering)."""

    def __init__(self, app: ASGIApp, services: ApiServices) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = "unmatched"

        async def counting_send(message: Message) -> None:
            nonlocal path
            if message["type"] == "http.response.start":
                route = scope.get("route")
                path = getattr(route, "path", None) or "unmatched"
                self.services.metrics.http_response(path, int(message["status"]))
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                self.services.metrics.http_duration(path, scope["method"],
                                                    time.perf_counter() - started)

        await self.app(scope, receive, counting_send)


def create_app(services: ApiServices) -> FastAPI:
    app = FastAPI(title="privnum", version=API_VERSION, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  generate_unique_id_function=operation_id)
    app.state.services = services
    problems.install(app)
    app.include_router(routes_shops.router)
    app.include_router(routes_accounts.router)
    app.include_router(routes_platform.router)
    app.include_router(routes_orders.router)
    app.include_router(routes_misc.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_recordings.router)
    install_docs(app)
    install_openapi(app)
    # Inside BodyGuard: the body it reads to compare requests is bounded in size and time.
    app.add_middleware(IdempotencyKeys, services=services)
    if services.console is not None:
        install_console(app, services.console)
    app.include_router(routes_pool.router)
    # first: a plain reveal skips the route search and FastAPI's dependency solving
    app.router.routes.insert(0, LeanReveal(app.router,
                                           standard_route(routes_orders.router.routes)))
    app.add_middleware(BodyGuard, max_body_bytes=services.max_body_bytes,
                       body_timeout=services.body_timeout_seconds,
                       form_prefix="/console/" if services.console is not None else None)
    app.add_middleware(_Count, services=services)
    app.add_middleware(RequestId)  # outermost: every response, a 413 too, carries the id
    return app
