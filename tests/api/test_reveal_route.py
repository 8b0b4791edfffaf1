"""The reveal's lean path (``api.reveal_route``) answers every request exactly as the standard
route does: status, headers (the request id aside) and body, refusals included."""

from __future__ import annotations

import json

import httpx
from starlette.types import Message

from api.app import create_app
from api.reveal_route import LeanReveal
from routing.risk import RiskPolicy
from tests.api.conftest import BUYER, MAIN, OTHER, SHOP, Env

ORDER, PLAINTEXT_ORDER = "o-lean", "o-lean-plain"
JSON = {"Content-Type": "application/json"}


def _cases(env: Env) -> list[tuple[str, str, dict[str, str], bytes | None]]:
    """(label, path, headers, body)."""
    main, other, admin = (env.auth(w) for w in ("main", "other", "admin"))
    path = f"/v1/orders/{ORDER}/reveal"
    body = json.dumps({"buyer_number": BUYER, "buyer_id": "buyer-1"}).encode()
    return [
        ("plain", path, {**main, **JSON}, body),
        ("plain, lower-case scheme", path,
         {"Authorization": main["Authorization"].replace("Bearer", "bearer"), **JSON}, body),
        ("plaintext decision", f"/v1/orders/{PLAINTEXT_ORDER}/reveal", {**main, **JSON}, b"{}"),
        ("no body", path, main, None),
        ("empty object", path, {**main, **JSON}, b"{}"),
        ("json null", path, {**main, **JSON}, b"null"),
        ("padded buyer id", path, {**main, **JSON}, b'{"buyer_id": "  buyer-1 "}'),
        ("content type with charset", path,
         {**main, "Content-Type": "application/json; charset=utf-8"}, body),
        ("+json content type", path, {**main, "Content-Type": "application/x+json"}, body),
        ("another buyer", path, {**main, **JSON}, b'{"buyer_number": "+8613900000002"}'),
        ("malformed number", path, {**main, **JSON}, b'{"buyer_number": "12ab"}'),
        ("another order time", path, {**main, **JSON},
         b'{"order_created_at": "2020-01-01T00:00:00Z"}'),
        ("naive order time", path, {**main, **JSON}, b'{"order_created_at": "2020-01-01"}'),
        ("unknown field", path, {**main, **JSON}, b'{"buyer": "x"}'),
        ("bad json", path, {**main, **JSON}, b'{"buyer_id": '),
        ("json array", path, {**main, **JSON}, b"[]"),
        ("text body", path, {**main, "Content-Type": "text/plain"}, b"hello"),
        ("no token", path, JSON, body),
        ("basic scheme", path, {"Authorization": "Basic eDp5", **JSON}, body),
        ("bearer without token", path, {"Authorization": "Bearer ", **JSON}, body),
        ("unknown token", path, {"Authorization": "Bearer nope", **JSON}, body),
        ("another shop's token", path, {**other, **JSON}, b"{}"),
        ("platform on behalf", path, {**admin, "X-Privnum-Account": MAIN, **JSON}, b"{}"),
        ("shop token on behalf", path, {**main, "X-Privnum-Account": MAIN, **JSON}, b"{}"),
        ("empty on behalf", path, {**main, "X-Privnum-Account": "", **JSON}, b"{}"),
        ("unregistered order", "/v1/orders/o-none/reveal", {**main, **JSON}, b"{}"),
        ("malformed number, unregistered order", "/v1/orders/o-none/reveal", {**main, **JSON},
         b'{"buyer_number": "12ab"}'),
        ("order id pattern", "/v1/orders/-x/reveal", {**main, **JSON}, b"{}"),
        ("order id with a space", "/v1/orders/o%20x/reveal", {**main, **JSON}, b"{}"),
        ("order id too long", f"/v1/orders/{'o' * 65}/reveal", {**main, **JSON}, b"{}"),
        ("trailing slash", f"/v1/orders/{ORDER}/reveal/", {**main, **JSON}, b"{}"),
    ]


def _seen(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(k, v) for k, v in response.headers.multi_items() if k != "x-request-id"]
    return response.status_code, headers, response.content


async def test_the_lean_path_answers_as_the_standard_route(ready: Env) -> None:
    env = ready
    env.services.policy = RiskPolicy(timezone="Asia/Shanghai", velocity_limit=10_000,
                                     daily_plaintext_quota=1)
    await env.register(PLAINTEXT_ORDER, SHOP, buyer=BUYER)  # takes the one plaintext unit
    await env.register(ORDER, SHOP, buyer=BUYER)
    await env.register(ORDER, OTHER, buyer=BUYER)
    lean_app = env.client._transport.app  # type: ignore[attr-defined]
    assert isinstance(lean_app.router.routes[0], LeanReveal)
    standard_app = create_app(env.services)
    standard_app.router.routes = [r for r in standard_app.router.routes
                                  if not isinstance(r, LeanReveal)]
    standard = httpx.AsyncClient(transport=httpx.ASGITransport(app=standard_app),
                                 base_url="http://privnum.test")
    lean = httpx.AsyncClient(transport=httpx.ASGITransport(app=lean_app),
                             base_url="http://privnum.test")
    try:
        for label, path, headers, body in _cases(env):
            # the first reveal issues the binding; afterwards both paths see the same state
            await standard.post(path, headers=headers, content=body)
            want = _seen(await standard.post(path, headers=headers, content=body))
            got = _seen(await lean.post(path, headers=headers, content=body))
            assert got == want, label
        statuses = {label: (await lean.post(path, headers=headers, content=body)).status_code
                    for label, path, headers, body in _cases(env)}
        assert statuses["plain"] == statuses["plaintext decision"] == 200
        assert statuses["bad json"] == statuses["another buyer"] == 422
        assert statuses["unknown token"] == 401
        # a malformed buyer number is refused before the order is found missing
        path, headers, body = next(c[1:] for c in _cases(env)
                                   if c[0] == "malformed number, unregistered order")
        refused = await lean.post(path, headers=headers, content=body)
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_number")
    finally:
        await standard.aclose()
        await lean.aclose()


async def test_metrics_count_the_lean_path_under_the_route(ready: Env) -> None:
    await ready.register(ORDER, SHOP, buyer=BUYER)
    r = await ready.call("POST", f"/v1/orders/{ORDER}/reveal", "main", json={})
    assert r.status_code == 200, r.text
    metrics = (await ready.client.get("/metrics")).text
    assert 'route="/v1/orders/{order_id}/reveal",status="200"' in metrics


async def _raw(app: object, headers: dict[str, str], messages: list[Message]
               ) -> tuple[int, bytes]:
    """One POST of the reveal straight through ASGI, its body as ``messages``."""
    pending = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": f"/v1/orders/{ORDER}/reveal",
             "raw_path": f"/v1/orders/{ORDER}/reveal".encode(), "query_string": b"",
             "root_path": "", "client": ("127.0.0.1", 1), "server": ("privnum.test", 80),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    await app(scope, receive, send)  # type: ignore[operator]
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent
                                      if m["type"] == "http.response.body")


async def test_a_body_in_parts_and_a_client_gone_mid_body(ready: Env) -> None:
    """A body that comes in parts is read whole; a client that goes away before its body
    ends gets what the standard route answers, and nothing is revealed."""
    env = ready
    await env.register(ORDER, SHOP, buyer=BUYER)
    lean_app = env.client._transport.app  # type: ignore[attr-defined]
    standard_app = create_app(env.services)
    standard_app.router.routes = [r for r in standard_app.router.routes
                                  if not isinstance(r, LeanReveal)]
    headers = {**env.auth("main"), **JSON}
    parts: list[Message] = [{"type": "http.request", "body": b'{"buyer_id"', "more_body": True},
                            {"type": "http.request", "body": b': "buyer-1"}'}]
    gone: list[Message] = [{"type": "http.request", "body": b"{}", "more_body": True},
                           {"type": "http.disconnect"}]
    await _raw(standard_app, headers, parts)  # issues the binding
    for messages in (parts, gone):
        assert await _raw(lean_app, headers, messages) == await _raw(standard_app, headers,
                                                                      messages)
    assert (await _raw(lean_app, headers, parts))[0] == 200
    status, body = await _raw(lean_app, headers, gone)
    assert status == 400 and b"reveal" not in body
