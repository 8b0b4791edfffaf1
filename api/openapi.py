"""The OpenAPI document as a generated client wants it, and ``/docs`` with no internet.

- Operation ids are the route functions' names (``reveal``, ``add_webhook``): stable across
  releases and readable as method names; a test keeps a snapshot of them.
- Errors are ``application/problem+json`` only, and ``code`` is an enum (``ProblemCode``) of
  every code the API can answer with.
- Every POST documents the ``Idempotency-Key`` header (``api.idempotency`` applies it to all).
- Swagger UI's assets are served from the installed ``swagger-ui-bundle-v2`` package under
  ``/docs/assets``: the page loads nothing from a CDN.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from api.idempotency import REPLAYED
from api.problems import PROBLEM_CODES, PROBLEM_JSON, Problem, responses

DOCS = "/docs"
ASSETS = "/docs/assets"
_IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes a retry safe: a repeat of this request (same credential, key and "
                   "request) within 24 h gets the first response again (with "
                   "`Idempotent-Replayed: true`) instead of running again. The same key with "
                   "another request: 422 `idempotency_key_reused`; while the first still "
                   "runs: 409 `idempotency_key_in_use`. 1-255 visible ASCII characters.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255,
               "examples": ["5f0c2a8e-7b1d-4c39-9a57-0e6f3d2b8c41"]},
}


def operation_id(route: APIRoute) -> str:
    """The route function's name: unique in the app (a test checks), stable, readable."""
    return route.name


def install_docs(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) from local assets; the app must be built with ``docs_url=None``."""
    app.mount(ASSETS, StaticFiles(directory=Path(str(swagger_ui_path))), name="docs-assets")

    @app.get(DOCS, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            # No validator badge: it would send the document to an outside service.
            swagger_ui_parameters={"validatorUrl": None})


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            _problem_only(schema)
            _idempotency_header(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problem_only(schema: dict[str, Any]) -> None:
    """Errors are problem+json only: drop FastAPI's default ``application/json`` 422 body and
    register the Problem schema the responses refer to, its ``code`` an enum."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    problem["properties"]["code"] = {
        "$ref": "#/components/schemas/ProblemCode",
        "description": problem["properties"]["code"].get("description", "")}
    components["Problem"] = problem
    components["ProblemCode"] = {
        "type": "string", "enum": list(PROBLEM_CODES), "title": "ProblemCode",
        "description": "Every stable error code of the API (a new one may be added in a "
                       "minor release; clients should treat an unknown one as its status)."}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if str(status).startswith(("4", "5")) and PROBLEM_JSON in content:
                    content.pop("application/json", None)
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)


def _idempotency_header(schema: dict[str, Any]) -> None:
    for path in schema.get("paths", {}).values():
        operation = path.get("post")
        if operation is None:
            continue
        operation.setdefault("parameters", []).append(dict(_IDEMPOTENCY_PARAMETER))
        for status, response in operation.get("responses", {}).items():
            if str(status).startswith("2"):
                response.setdefault("headers", {})[REPLAYED.title()] = {
                    "description": "`true` when this is the kept response of an earlier "
                                   "request with the same Idempotency-Key.",
                    "schema": {"type": "string", "enum": ["true"]}}
        for status, response in responses(409, 422).items():
            operation["responses"].setdefault(str(status), response)
