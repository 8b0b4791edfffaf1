"""Bad input on every endpoint → a 4xx problem+json, never a 500, never a partial write."""

from __future__ import annotations

from sqlalchemy import func, select

from binding_store.models import AuditEvent, Binding
from routing.risk import RiskPolicy
from tests.api.conftest import (
    MAIN_PHONE,
    SHOP,
    SUB_PHONE,
    Env,
    assert_problem,
    reveal_body,
)


async def _counts(env: Env) -> tuple[int, int]:
    async with env.db.session() as session:
        bindings = await session.scalar(select(func.count()).select_from(Binding))
        events = await session.scalar(select(func.count()).select_from(AuditEvent))
    return int(bindings or 0), int(events or 0)


async def test_malformed_numbers(ready: Env) -> None:
    env = ready
    before = await _counts(env)
    cases = [
        ("POST", "/v1/orders/o-1/reveal", reveal_body("not-a-number"), 422, "invalid_number"),
        ("POST", "/v1/orders/o-1/reveal", reveal_body("+86123"), 422, "invalid_number"),
        ("POST", f"/v1/shops/{SHOP}/callers", {"number": "abc"}, 422, "invalid_number"),
        ("POST", f"/v1/shops/{SHOP}/callers", {"number": "+8601012345678"}, 422,
         "not_mobile_number"),
        ("DELETE", f"/v1/shops/{SHOP}/callers/zzz", None, 422, "invalid_number"),
        ("GET", "/v1/numbers/12/virtual", None, 422, "invalid_number"),
        ("GET", "/v1/numbers/%2B86%20abc/virtual", None, 422, "invalid_number"),
    ]
    for method, url, body, status, code in cases:
        r = await env.call(method, url, "main", json=body)
        assert_problem(r, status, code)
        assert "not-a-number" not in r.json()["detail"]  # inputs are masked, not echoed
    assert await _counts(env) == before


async def test_unknown_ids_and_shapes(ready: Env) -> None:
    env = ready
    cases = [
        ("GET", "/v1/bindings/0123456789abcdef0123456789abcdef", None, 404, "not_found"),
        ("POST", "/v1/bindings/nope/release", None, 404, "not_found"),
        ("POST", "/v1/bindings/no-such/caller", {"caller_number": MAIN_PHONE}, 404, "not_found"),
        ("GET", "/v1/shops/nope/service", None, 403, "permission_denied"),
        ("POST", "/v1/orders/bad%20id/reveal", reveal_body(), 422, "invalid_request"),
        ("POST", "/v1/orders/o-1/reveal", {"buyer_id": "bad id"}, 422, "invalid_request"),
        ("POST", "/v1/orders/o-1/reveal", {**reveal_body(), "extra": 1}, 422, "invalid_request"),
        ("POST", "/v1/orders/o-1/reveal", reveal_body(order_created_at="2026-01-01T00:00:00"),
         422, "invalid_request"),
        ("POST", "/v1/orders/o-1/reveal", [1, 2], 422, "invalid_request"),
        ("POST", f"/v1/shops/{SHOP}/callers/batch", {"rows": []}, 422, "invalid_request"),
        ("GET", "/v1/nothing-here", None, 404, "not_found"),
        ("PUT", f"/v1/shops/{SHOP}/service", None, 405, "method_not_allowed"),
    ]
    for method, url, body, status, code in cases:
        r = await env.call(method, url, "main", json=body)
        assert_problem(r, status, code)
    admin = await env.call("GET", "/v1/shops/nope/service", "admin")
    assert_problem(admin, 404, "not_found")


async def test_body_limits_and_content_type(ready: Env) -> None:
    env = ready
    before = await _counts(env)
    url = "/v1/orders/o-1/reveal"
    big = b'{"buyer_number": "' + b"1" * 70_000 + b'", "buyer_id": "b"}'
    r = await env.call("POST", url, "main", content=big,
                       headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "payload_too_large")

    async def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(20):
            yield b" " * 8192

    r = await env.call("POST", url, "main", content=chunks(),
                       headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "payload_too_large")
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        r = await env.call("POST", url, "main", content=b'{"buyer_number": "1"}',
                           headers={"Content-Type": ctype})
        assert_problem(r, 415, "unsupported_media_type")
    r = await env.call("POST", url, "main", content=b"{not json",
                       headers={"Content-Type": "application/json"})
    assert_problem(r, 422, "invalid_request")
    assert await _counts(env) == before


async def test_expired_binding(ready: Env) -> None:
    env = ready
    env.services.policy = RiskPolicy(plaintext_enabled=False)
    first = (await env.call("POST", "/v1/orders/o-1/reveal", "main", json=reveal_body())).json()
    env.clock.advance(hours=24, seconds=1)
    got = (await env.call("GET", f"/v1/bindings/{first['binding_id']}", "main")).json()
    assert got["state"] == "expired"
    for url, body in [(f"/v1/bindings/{first['binding_id']}/caller",
                       {"caller_number": SUB_PHONE}),
                      (f"/v1/bindings/{first['binding_id']}/call", None)]:
        assert_problem(await env.call("POST", url, "main", json=body), 409, "binding_not_active")
    # after expiry the merchant may obtain a privacy number again
    again = (await env.call("POST", "/v1/orders/o-1/reveal", "main", json=reveal_body())).json()
    assert again["binding_id"] != first["binding_id"] and again["created"] is True


async def test_unavailable_features_are_503_problems(ready: Env) -> None:
    env = ready
    env.services.policy = RiskPolicy(plaintext_enabled=False)
    b = (await env.call("POST", "/v1/orders/o-1/reveal", "main", json=reveal_body())).json()
    r = await env.call("POST", f"/v1/bindings/{b['binding_id']}/call", "main")
    assert_problem(r, 503, "click_to_call_unavailable")
    if env.services.call_log is None:
        assert_problem(await env.call("GET", f"/v1/shops/{SHOP}/calls", "main"), 503,
                       "call_log_unavailable")


async def test_service_not_enabled(env: Env) -> None:
    r = await env.call("POST", "/v1/orders/o-1/reveal", "main", json=reveal_body())
    assert_problem(r, 409, "service_not_enabled")  # the shop does not exist yet
    r = await env.call("POST", f"/v1/shops/{SHOP}/service/enable", "main",
                       json={"agreement_version": "v1", "main_phone": MAIN_PHONE})
    assert r.status_code == 200
    await env.call("POST", f"/v1/shops/{SHOP}/service/disable", "main")
    r = await env.call("POST", "/v1/orders/o-1/reveal", "main", json=reveal_body())
    assert_problem(r, 409, "service_not_enabled")
    r = await env.call("POST", f"/v1/shops/{SHOP}/service/enable", "sub",
                       json={"agreement_version": "v1"})
    assert_problem(r, 409, "conflict")  # sub token, unknown account: not the main account
