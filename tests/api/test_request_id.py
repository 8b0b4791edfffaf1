"""X-Request-Id in and out on every response (also one the body guard answers), a client's id
refused when it could carry a phone number, and the request latency histogram in /metrics."""

from __future__ import annotations

import re

from tests.api.conftest import Env


async def test_a_response_carries_a_fresh_id_or_the_clients(env: Env) -> None:
    fresh = await env.call("GET", "/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
    again = await env.call("GET", "/healthz")
    assert again.headers["x-request-id"] != fresh.headers["x-request-id"]
    given = await env.call("GET", "/healthz", headers={"X-Request-Id": "lb-7f3a.2"})
    assert given.headers["x-request-id"] == "lb-7f3a.2"
    uuid = "9b2c1e4e-0a51-4c7e-9f2e-3a7d5c1b8e20"
    assert (await env.call("GET", "/healthz", headers={"X-Request-Id": uuid})
            ).headers["x-request-id"] == uuid


async def test_an_id_that_could_be_a_phone_number_is_replaced(env: Env) -> None:
    for bad in ("13712345678", "req-+8613712345678", "x" * 65, "a b", "\xe9t\xe9".encode()):
        response = await env.call("GET", "/healthz", headers={"X-Request-Id": bad})
        rid = response.headers["x-request-id"]
        assert rid != bad and re.fullmatch(r"[0-9a-f]{32}", rid), bad


async def test_a_refused_body_carries_the_id_too(env: Env) -> None:
    response = await env.call("POST", "/v1/shops/shop-1/callers", "main", content=b"x=1",
                              headers={"Content-Type": "text/plain", "X-Request-Id": "r-415"})
    assert response.status_code == 415
    assert response.headers["x-request-id"] == "r-415"


async def test_request_latency_is_a_histogram_by_route_and_method(env: Env) -> None:
    for _ in range(3):
        await env.call("GET", "/healthz")
    await env.call("GET", "/v1/shops/shop-1/calls", "main")
    text = (await env.call("GET", "/metrics")).text
    count = re.search(r'^privnum_http_request_duration_seconds_count\{method="GET",'
                      r'route="/healthz"\} (\S+)$', text, re.M)
    assert count is not None and float(count[1]) == 3.0
    assert re.search(r'^privnum_http_request_duration_seconds_bucket\{le="\+Inf",method="GET",'
                     r'route="/v1/shops/\{shop_id\}/calls"\} 1\.0$', text, re.M)
