"""The reveal says when a call rule will refuse A's calls through the binding it issued."""

from __future__ import annotations

from routing.call_rules import CallerReporting, ShopCallRules
from tests.api.conftest import MAIN_PHONE, SHOP, Env, enable_shops, reveal_body


async def _privacy(env: Env, order: str) -> dict[str, object]:
    r = await env.call("POST", f"/v1/orders/{order}/reveal", "main", json=reveal_body())
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    assert body["decision"] == "privacy"
    return body


async def test_reveal_says_an_unreported_caller_cannot_call_yet(env: Env) -> None:
    await enable_shops(env, level="L0")  # L0: always privacy
    rules = env.services.use_cases.ports.call_rules  # the API's own store (and its cache)
    assert (await _privacy(env, "o-1"))["calls_refused"] is None  # not required
    await rules.set(SHOP, ShopCallRules(require_caller_report=True), actor="t", now=env.clock.now)
    body = await _privacy(env, "o-2")
    assert body["caller_number"] == MAIN_PHONE and body["binding_id"]
    assert body["calls_refused"] == "caller_unreported"  # issued all the same
    await rules.set_reporting(SHOP, MAIN_PHONE, CallerReporting.REPORTED, actor="t",
                              now=env.clock.now)
    assert (await _privacy(env, "o-3"))["calls_refused"] is None
