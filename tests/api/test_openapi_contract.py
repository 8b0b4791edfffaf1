"""The OpenAPI document as a generated client reads it: operation ids unique and unchanged (a
snapshot), an example on every request and response, the error ``code`` an enum of every code
the API answers with, ``Idempotency-Key`` on every POST; and ``/docs`` that loads nothing from
outside (its assets are served by privnum itself)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI

from api.problems import PROBLEM_CODES, STATUS_BY_CODE, HttpCode
from routing.errors import ErrorCode
from tests.api.conftest import Env

SNAPSHOT = Path(__file__).with_name("operation_ids.json")


@pytest.fixture
def document(env: Env) -> dict[str, Any]:
    app = env.client._transport.app  # type: ignore[attr-defined]
    assert isinstance(app, FastAPI)
    return app.openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{method.upper()} {path}", op) for path, ops in document["paths"].items()
            for method, op in ops.items()]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = document["components"]["schemas"][name]
    return schema


def has_example(document: dict[str, Any], media: dict[str, Any]) -> bool:
    if media.get("example") is not None or media.get("examples"):
        return True
    schema = resolve(document, media.get("schema", {}))
    # An optional body is ``anyOf: [<model>, null]``: the model's examples count.
    choices = [resolve(document, s) for s in schema.get("anyOf", schema.get("oneOf", []))]
    return any("examples" in s for s in [schema, *choices])


def test_operation_ids_are_unique_and_unchanged(document: dict[str, Any]) -> None:
    ids = {name: op.get("operationId") for name, op in operations(document)}
    assert all(ids.values()), [n for n, i in ids.items() if not i]
    assert len(set(ids.values())) == len(ids), "duplicate operation ids"
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids.values()), ids
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    # A new route adds a line to the snapshot; a changed or removed id breaks generated
    # clients and needs a deliberate decision (and a CHANGELOG line).
    assert ids == expected, (
        f"operation ids differ from {SNAPSHOT.name}; if intended, write this there:\n"
        + json.dumps(ids, indent=2, sort_keys=True))


def test_every_operation_has_request_and_response_examples(document: dict[str, Any]) -> None:
    missing: list[str] = []
    for name, op in operations(document):
        body = op.get("requestBody")
        if body is not None:
            missing += [f"{name} request {t}" for t, media in body["content"].items()
                        if not has_example(document, media)]
        successes = {s: r for s, r in op["responses"].items() if str(s).startswith("2")}
        assert successes, name
        for status, response in op["responses"].items():
            for media_type, media in response.get("content", {}).items():
                if not has_example(document, media):
                    missing.append(f"{name} {status} {media_type}")
        missing += [f"{name} parameter {p['name']}" for p in op.get("parameters", [])
                    if p["in"] == "path" and not (p.get("example") or p.get("examples")
                                                  or p["schema"].get("examples"))]
    assert not missing, missing


def test_examples_are_valid_for_their_models(document: dict[str, Any]) -> None:
    """Each model's examples validate against the model itself (no stale example)."""
    from api import (
        binding_schemas,
        call_log_schemas,
        operations_schemas,
        schemas,
        shop_schemas,
        webhook_schemas,
    )

    checked = 0
    for module in (schemas, shop_schemas, binding_schemas, call_log_schemas, operations_schemas,
                   webhook_schemas):
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__ and hasattr(
                    value, "model_validate"):
                extra = value.model_config.get("json_schema_extra") or {}
                assert isinstance(extra, dict)
                for example in extra.get("examples", []):
                    value.model_validate(example)
                    checked += 1
    assert checked >= 25


def test_the_problem_code_is_an_enum_of_every_code(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]
    assert problem["properties"]["code"]["$ref"] == "#/components/schemas/ProblemCode"
    enum = document["components"]["schemas"]["ProblemCode"]["enum"]
    assert enum == sorted(enum) == list(PROBLEM_CODES)
    assert {c.value for c in ErrorCode} <= set(enum)
    assert {c.value for c in HttpCode} <= set(enum)
    assert set(STATUS_BY_CODE) == set(ErrorCode)
    # Every problem response of every operation points at the Problem schema, with an
    # example whose code is in the enum and whose status is the response's.
    for name, op in operations(document):
        for status, response in op["responses"].items():
            media = response.get("content", {}).get("application/problem+json")
            if media is None:
                continue
            assert media["schema"] == {"$ref": "#/components/schemas/Problem"}, name
            assert media["example"]["code"] in enum and media["example"]["status"] == int(
                status), (name, status)


async def test_problem_codes_answered_are_in_the_enum(ready: Env) -> None:
    seen = [
        await ready.call("GET", "/v1/bindings/nosuch", "main"),  # not_found (domain)
        await ready.call("GET", "/v1/nowhere"),  # not_found (router)
        await ready.call("PUT", "/v1/bindings/b1/release", "main"),  # method_not_allowed
        await ready.call("POST", "/v1/shops/shop-1/callers", "main", json={}),  # invalid
        await ready.call("GET", "/v1/bindings/x"),  # unauthenticated
        await ready.call("POST", "/v1/shops/shop-1/service/disable", "main",
                         headers={"Idempotency-Key": "a b"}),
    ]
    codes = [r.json()["code"] for r in seen]
    assert codes == ["not_found", "not_found", "method_not_allowed", "invalid_request",
                     "unauthenticated", "invalid_idempotency_key"]
    assert set(codes) <= set(PROBLEM_CODES)


def test_every_post_documents_the_idempotency_key(document: dict[str, Any]) -> None:
    posts = [(n, op) for n, op in operations(document) if n.startswith("POST ")]
    assert len(posts) >= 8
    for name, op in posts:
        headers = [p for p in op["parameters"] if p["in"] == "header"]
        assert [p["name"] for p in headers].count("Idempotency-Key") == 1, name
        assert {"409", "422"} <= set(map(str, op["responses"])), name
        for status, response in op["responses"].items():
            if str(status).startswith("2"):
                assert "Idempotent-Replayed" in response["headers"], name
    others = [op for n, op in operations(document) if not n.startswith("POST ")]
    assert not any(p["name"] == "Idempotency-Key" for op in others
                   for p in op.get("parameters", []))


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


async def test_docs_load_nothing_from_outside(env: Env) -> None:
    page = await env.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    links = _Links()
    links.feed(page.text)
    urls = [*links.urls, *re.findall(r"url:\s*'([^']+)'", page.text)]
    assert len(urls) >= 4, urls  # stylesheet, icon, script, the document
    assert not re.search(r"https?://", page.text), "an absolute URL in /docs"
    assert "validatorUrl\": null" in page.text  # no badge fetched from an outside validator
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        asset = await env.client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
    script = await env.client.get("/docs/assets/swagger-ui-bundle.js")
    assert "javascript" in script.headers["content-type"]
    assert b"SwaggerUIBundle" in script.content
    css = await env.client.get("/docs/assets/swagger-ui.css")
    assert css.headers["content-type"].startswith("text/css")


async def test_docs_assets_are_not_in_the_document(env: Env, document: dict[str, Any]) -> None:
    assert not [p for p in document["paths"] if p.startswith("/docs")]
    missing = await env.client.get("/docs/assets/nosuch.js")
    assert missing.status_code == 404
