"""The app factory. No module-level app or state: everything comes in through ``ApiServices``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import problems, routes_misc, routes_orders, routes_pool, routes_shops, routes_webhooks
from api.middleware import BodyGuard
from api.problems import PROBLEM_JSON, Problem
from api.request_id import RequestId
from api.services import ApiServices

API_VERSION = "1.0.0"
DESCRIPTION = """Privacy-number (AXB number-masking) platform API.

Authenticate with `Authorization: Bearer <token>` (a shop-account token or the platform admin
token; `privnum tokens issue`). Errors are `application/problem+json` with a stable `code`.
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
                  docs_url="/docs", redoc_url=None, openapi_url="/openapi.json")
    app.state.services = services
    problems.install(app)
    app.include_router(routes_shops.router)
    app.include_router(routes_orders.router)
    app.include_router(routes_misc.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_pool.router)
    app.add_middleware(BodyGuard, max_body_bytes=services.max_body_bytes,
                       body_timeout=services.body_timeout_seconds)
    app.add_middleware(_Count, services=services)
    app.add_middleware(RequestId)  # outermost: every response, a 413 too, carries the id

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            _problem_only(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _problem_only(schema: dict[str, Any]) -> None:
    """Errors are problem+json only: drop FastAPI's default ``application/json`` 422 body and
    register the Problem schema the responses refer to."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if str(status).startswith(("4", "5")) and PROBLEM_JSON in content:
                    content.pop("application/json", None)
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
