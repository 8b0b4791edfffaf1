"""The merchant flow over HTTP on real stores: enable → callers → reveal → switch → release."""

from __future__ import annotations

from routing.risk import RiskPolicy
from tests.api.conftest import (
    BUYER,
    MAIN_PHONE,
    SHOP,
    SUB2_PHONE,
    SUB_PHONE,
    Env,
    assert_problem,
    reveal_body,
)


async def test_enable_is_idempotent_and_status(env: Env) -> None:
    r = await env.call("GET", f"/v1/shops/{SHOP}/service", "main")
    assert_problem(r, 404, "not_found")
    body = {"agreement_version": "2023-05", "main_phone": "138 0000 0001"}
    first = await env.call("POST", f"/v1/shops/{SHOP}/service/enable", "main", json=body)
    again = await env.call("POST", f"/v1/shops/{SHOP}/service/enable", "main", json=body)
    assert first.status_code == again.status_code == 200
    assert first.json()["changed"] is True and again.json()["changed"] is False
    status = (await env.call("GET", f"/v1/shops/{SHOP}/service", "main")).json()
    assert status["service_state"] == "enabled"
    assert status["agreement_version"] == "2023-05"
    callers = (await env.call("GET", f"/v1/shops/{SHOP}/callers", "main")).json()["callers"]
    assert [(c["number"], c["is_main"]) for c in callers] == [(MAIN_PHONE, True)]
    off = await env.call("POST", f"/v1/shops/{SHOP}/service/disable", "main")
    assert off.json()["service_state"] == "disabled"
    on = await env.call("POST", f"/v1/shops/{SHOP}/service/enable", "main",
                        json={"agreement_version": "2023-05"})
    assert on.json()["service_state"] == "enabled"


async def test_privacy_reveal_then_switch_and_release(ready: Env) -> None:
    env = ready
    env.services.policy = RiskPolicy(privacy_only_levels=frozenset({"L0", "L1"}))
    r = await env.call("POST", "/v1/orders/o-1/reveal", "sub", json=reveal_body())
    assert r.status_code == 200, r.text
    first = r.json()
    assert first["decision"] == "privacy" and first["rule"] == "shop_level"
    assert first["caller_number"] == SUB_PHONE  # the sub-account's own approved number
    assert first["other_callers"] == [MAIN_PHONE]
    assert first["virtual_number"].startswith("+86170")
    assert first["buyer_number"] is None
    assert BUYER not in r.text
    again = (await env.call("POST", "/v1/orders/o-1/reveal", "sub", json=reveal_body())).json()
    assert again["binding_id"] == first["binding_id"] and again["created"] is False

    # sub2 has no caller number of its own: the main number is its default
    r2 = await env.call("POST", "/v1/orders/o-2/reveal", "sub2",
                        json=reveal_body("+8613900000002"))
    assert r2.json()["caller_number"] == MAIN_PHONE

    sw = await env.call("POST", f"/v1/bindings/{first['binding_id']}/caller", "sub",
                        json={"caller_number": MAIN_PHONE})
    assert sw.status_code == 200, sw.text
    switched = sw.json()
    assert switched["binding"]["caller_number"] == MAIN_PHONE
    assert switched["previous_binding_id"] == first["binding_id"]
    new_id = switched["binding"]["binding_id"]
    # not an approved caller: refused, binding unchanged
    bad = await env.call("POST", f"/v1/bindings/{new_id}/caller", "sub",
                         json={"caller_number": SUB2_PHONE})
    assert_problem(bad, 409, "caller_not_approved")
    rel = await env.call("POST", f"/v1/bindings/{new_id}/release", "main")
    assert rel.status_code == 200 and rel.json()["state"] == "released"
    rel2 = await env.call("POST", f"/v1/bindings/{new_id}/release", "main")
    assert rel2.json()["state"] == "released"
    gone = await env.call("POST", f"/v1/bindings/{new_id}/caller", "main",
                          json={"caller_number": SUB_PHONE})
    assert_problem(gone, 409, "binding_not_active")


async def test_plaintext_reveal_is_audited_without_plaintext(ready: Env) -> None:
    env = ready
    r = await env.call("POST", "/v1/orders/o-9/reveal", "main", json=reveal_body())
    body = r.json()
    assert body["decision"] == "plaintext" and body["rule"] == "plaintext_allowed"
    assert body["buyer_number"] == BUYER
    assert body["quota"]["used"] == 1 and body["quota"]["limit"] == 20
    events = await env.services.audit.events(shop_id=SHOP, kind="reveal.plaintext")  # type: ignore[attr-defined]
    assert len(events) == 1
    assert events[0].detail["buyer"] == "139****0001"
    assert "13900000001" not in str(events[0].detail)
