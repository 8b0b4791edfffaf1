"""Webhook subscriptions over the API: the platform credential only; bad URLs are 422; the
backlog shows in /metrics."""

from __future__ import annotations

import pytest

from binding_store.webhook_models import WebhookEvent
from tests.api.conftest import Env, assert_problem


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://127.0.0.1/hook", "invalid_request"),
    ("https://nosuch-host.invalid/hook", "invalid_input"),
    ("http://user:pw@127.0.0.1/hook", "invalid_input"),
])
async def test_a_url_that_is_not_http_or_does_not_resolve_is_422(env: Env, url: str,
                                                                  why: str) -> None:
    response = await env.call("POST", "/v1/webhooks", "admin", json={"url": url})
    assert_problem(response, 422, why)


async def test_unknown_event_type_or_shop(env: Env) -> None:
    r = await env.call("POST", "/v1/webhooks", "admin",
                       json={"url": "http://127.0.0.1:17990/h", "events": ["call.rang"]})
    assert_problem(r, 422, "invalid_input")
    r = await env.call("POST", "/v1/webhooks", "admin",
                       json={"url": "http://127.0.0.1:17990/h", "shop_id": "nosuch"})
    assert_problem(r, 404, "not_found")


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/webhooks"), ("POST", "/v1/webhooks"), ("GET", "/v1/webhooks/wh_1"),
    ("DELETE", "/v1/webhooks/wh_1"), ("GET", "/v1/webhooks/wh_1/deliveries"),
    ("POST", "/v1/webhooks/wh_1/replay")])
async def test_shop_accounts_cannot_touch_subscriptions(env: Env, method: str, path: str
                                                        ) -> None:
    body = {"url": "http://127.0.0.1:17990/h"} if path == "/v1/webhooks" else {}
    r = await env.call(method, path, "main", json=body if method == "POST" else None)
    assert_problem(r, 403, "permission_denied")


async def test_add_list_deliveries_remove(env: Env) -> None:
    r = await env.call("POST", "/v1/webhooks", "admin", json={
        "url": "http://127.0.0.1:17990/hook", "events": ["binding.*", "cdr"],
        "batch_size": 10, "description": "platform"})
    assert r.status_code == 201, r.text
    added = r.json()
    assert added["secret"].startswith("whsec_") and added["events"] == ["binding.*", "cdr"]
    listed = (await env.call("GET", "/v1/webhooks", "admin")).json()["webhooks"]
    assert [w["id"] for w in listed] == [added["id"]] and "secret" not in listed[0]
    r = await env.call("GET", f"/v1/webhooks/{added['id']}/deliveries", "admin")
    assert r.status_code == 200 and r.json() == {"deliveries": []}
    r = await env.call("POST", f"/v1/webhooks/{added['id']}/replay", "admin", json={})
    assert r.json() == {"replayed": 0}
    r = await env.call("DELETE", f"/v1/webhooks/{added['id']}", "admin")
    assert r.status_code == 200 and r.json()["removed_at"] is not None
    assert (await env.call("GET", "/v1/webhooks", "admin")).json() == {"webhooks": []}
    r = await env.call("GET", "/v1/webhooks/wh_nosuch", "admin")
    assert_problem(r, 404, "not_found")


async def test_metrics_show_the_backlog(env: Env) -> None:
    async with env.db.session() as s:
        s.add(WebhookEvent(event_id="evt_x", type="cdr", stream="call:1", shop_id="",
                           occurred_at=None, created_at=env.clock.now, payload="{}",
                           dispatched_at=None))
        await s.commit()
    env.clock.advance(seconds=42)
    text = (await env.call("GET", "/metrics")).text
    assert 'privnum_webhook_backlog{stage="undispatched"} 1.0' in text
    assert "privnum_webhook_oldest_pending_seconds 42.0" in text
