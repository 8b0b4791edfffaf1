"""Orders the platform registers: only the platform's credential, never a future order time,
the buyer number encrypted at once and never echoed; a reveal names the order id only."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from binding_store.audit import AuditLog
from routing.risk import RiskPolicy
from tests.api.conftest import BUYER, BUYER2, OTHER, SHOP, Env, assert_problem

DIGITS = (BUYER.removeprefix("+86"), BUYER2.removeprefix("+86"))


def order(shop: str = SHOP, buyer: str = BUYER, **extra: object) -> dict[str, object]:
    return {"shop_id": shop, "buyer_number": buyer, "buyer_id": "buyer-1",
            "ordered_at": "2026-11-28T10:00:00+08:00", "status": "paid", **extra}


async def test_platform_registers_orders_and_never_echoes_the_buyer(ready: Env) -> None:
    env = ready
    first = await env.call("PUT", "/v1/orders/o-1", "admin", json=order())
    assert first.status_code == 201, first.text
    again = await env.call("PUT", "/v1/orders/o-1", "admin", json=order())
    assert again.status_code == 200 and again.json()["created"] is False
    changed = await env.call("PUT", "/v1/orders/o-1", "admin",
                             json=order(buyer=BUYER2, status="shipped"))
    assert changed.json()["status"] == "shipped"
    read = await env.call("GET", "/v1/orders/o-1", "main")
    assert read.status_code == 200 and read.json()["buyer_id"] == "buyer-1"
    for r in (first, again, changed, read):
        assert all(d not in r.text for d in DIGITS)
        assert "buyer_number" not in r.json()
    async with env.db.engine.connect() as conn:  # at rest: ciphertext and the masked form
        rows = (await conn.execute(text("SELECT * FROM orders"))).all()
    assert len(rows) == 1 and all(d not in repr(rows) for d in DIGITS)
    events = await AuditLog(env.db).events(shop_id=SHOP, kind="order.registered")
    assert len(events) == 2  # the repeat with the same values changed nothing
    assert all(e.actor.startswith("platform:") for e in events)
    assert all(d not in repr(events) for d in DIGITS)


async def test_only_the_platform_registers_and_bad_orders_are_refused(ready: Env) -> None:
    env = ready
    for who in ("main", "sub"):
        r = await env.call("PUT", "/v1/orders/o-1", who, json=order())
        assert_problem(r, 403, "permission_denied")
        assert "scope 'platform'" in r.json()["detail"]
    on_behalf = await env.call("PUT", "/v1/orders/o-1", "admin", json=order(),
                               headers={"X-Privnum-Account": "acct-main"})
    assert_problem(on_behalf, 403, "permission_denied")  # on behalf: the account's rights
    future = await env.call("PUT", "/v1/orders/o-1", "admin",
                            json=order(ordered_at="9999-12-31T00:00:00Z"))
    assert_problem(future, 422, "invalid_input")
    assert "future" in future.json()["detail"]
    soon = (env.clock.now + timedelta(hours=1)).isoformat()
    assert_problem(await env.call("PUT", "/v1/orders/o-1", "admin",
                                  json=order(ordered_at=soon)), 422, "invalid_input")
    naive = await env.call("PUT", "/v1/orders/o-1", "admin",
                           json=order(ordered_at="2026-11-28T10:00:00"))
    assert_problem(naive, 422, "invalid_request")
    assert_problem(await env.call("PUT", "/v1/orders/o-1", "admin",
                                  json=order(buyer="12")), 422, "invalid_number")
    assert_problem(await env.call("PUT", "/v1/orders/o-1", "admin",
                                  json=order(status="lost")), 422, "invalid_request")
    assert_problem(await env.call("PUT", "/v1/orders/o-1", "admin",
                                  json=order(shop="nosuch")), 404, "not_found")
    assert_problem(await env.call("GET", "/v1/orders/o-1", "main"), 404, "not_found")


async def test_a_reveal_names_only_the_order(ready: Env) -> None:
    env = ready
    unknown = await env.client.post("/v1/orders/o-9/reveal", headers=env.auth("main"))
    assert_problem(unknown, 404, "not_found")
    assert (await env.register("o-1", SHOP, buyer=BUYER)).status_code == 201
    r = await env.client.post("/v1/orders/o-1/reveal", headers=env.auth("sub"))
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "plaintext" and r.json()["buyer_number"] == BUYER
    # another shop's order of the same id is not this shop's
    theirs = await env.client.post("/v1/orders/o-1/reveal", headers=env.auth("other"), json={})
    assert_problem(theirs, 404, "not_found")
    assert OTHER != SHOP


async def test_a_shop_can_never_supply_the_buyer_or_the_order_time(ready: Env) -> None:
    env = ready
    await env.register("o-1", SHOP, buyer=BUYER,
                       ordered_at=(env.clock.now - timedelta(days=200)).isoformat())
    auth = env.auth("main")
    for body in ({"buyer_number": BUYER2},
                 {"order_created_at": env.clock.now.isoformat()},
                 {"order_created_at": "9999-12-31T00:00:00Z"},
                 {"buyer_id": "someone-else"}):
        r = await env.client.post("/v1/orders/o-1/reveal", headers=auth, json=body)
        assert_problem(r, 422, "invalid_input")
        assert all(d not in r.text for d in DIGITS)
    # the registered order time decides: 200 days old is past the order-age rule
    env.services.policy = RiskPolicy(timezone="Asia/Shanghai", plaintext_max_order_age_days=90)
    r = await env.client.post("/v1/orders/o-1/reveal", headers=auth, json={})
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "privacy" and r.json()["rule"] == "order_age"
    # an older client that still sends the registered values is served
    same = await env.client.post("/v1/orders/o-1/reveal", headers=auth,
                                 json={"buyer_number": BUYER, "buyer_id": "buyer-1"})
    assert same.status_code == 200 and same.json()["binding_id"] == r.json()["binding_id"]
