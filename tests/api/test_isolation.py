"""A shop never sees or touches another shop's data: one check per endpoint family."""

from __future__ import annotations

from tests.api.conftest import OTHER, SHOP, SUB_PHONE, Env, assert_problem, reveal_body


async def test_shop_endpoints_refuse_another_shop(ready: Env) -> None:
    env = ready
    for method, url, body in [
        ("GET", f"/v1/shops/{OTHER}/service", None),
        ("POST", f"/v1/shops/{OTHER}/service/disable", None),
        ("POST", f"/v1/shops/{OTHER}/service/enable", {"agreement_version": "v1"}),
        ("GET", f"/v1/shops/{OTHER}/callers", None),
        ("POST", f"/v1/shops/{OTHER}/callers", {"number": SUB_PHONE}),
        ("DELETE", f"/v1/shops/{OTHER}/callers/+8613800000009", None),
        ("POST", f"/v1/shops/{OTHER}/callers/batch", {"rows": [{"number": SUB_PHONE}]}),
        ("GET", f"/v1/shops/{OTHER}/calls", None),
        ("GET", f"/v1/shops/{OTHER}/calls/export", None),
    ]:
        for who in ("main", "sub"):
            r = await env.call(method, url, who, json=body)
            assert_problem(r, 403, "permission_denied")
    state = (await env.call("GET", f"/v1/shops/{OTHER}/service", "other")).json()
    assert state["service_state"] == "enabled"


async def test_bindings_of_another_shop_are_not_found(ready: Env) -> None:
    env = ready
    mine = (await env.call("POST", "/v1/orders/o-1/reveal", "other",
                           json=reveal_body())).json()
    assert mine["decision"] == "plaintext"
    env.services.policy = env.services.policy.__class__(plaintext_enabled=False)
    theirs = (await env.call("POST", "/v1/orders/o-1/reveal", "other",
                             json=reveal_body())).json()
    binding = theirs["binding_id"]
    for method, url, body in [
        ("GET", f"/v1/bindings/{binding}", None),
        ("POST", f"/v1/bindings/{binding}/caller", {"caller_number": SUB_PHONE}),
        ("POST", f"/v1/bindings/{binding}/release", None),
        ("POST", f"/v1/bindings/{binding}/call", None),
    ]:
        r = await env.call(method, url, "main", json=body)
        assert_problem(r, 404, "not_found")
    still = await env.call("GET", f"/v1/bindings/{binding}", "other")
    assert still.json()["state"] == "active"
    # the same order id in another shop is another order: its own binding
    own = (await env.call("POST", "/v1/orders/o-1/reveal", "main", json=reveal_body())).json()
    assert own["binding_id"] != binding
    assert SHOP != OTHER
