"""Onboarding with no shell: shops, sub-accounts with phone review, caller numbers (single and
batch with per-row results), tokens and the pool's utilisation, all over HTTP with the
platform credential; the bench's own onboarding runs end to end here for a few shops."""

from __future__ import annotations

from bench.onboarding import AGREEMENT, onboard, phones, shop_id
from binding_store.audit import AuditLog
from tests.api.conftest import MAIN, SHOP, SUB, SUB2, Env, assert_problem, x_number


async def test_a_platform_onboards_shops_end_to_end(env: Env) -> None:
    done = await onboard(env.client, env.tokens["admin"], range(5), concurrency=2)
    assert [d.shop_id for d in done] == [shop_id(i) for i in range(5)]
    for i, shop in enumerate(done):
        assert shop.callers_added == 2 and shop.refused_rows == ["invalid_number"]
        auth = {"Authorization": f"Bearer {shop.token}"}
        status = (await env.client.get(f"/v1/shops/{shop.shop_id}/service", headers=auth)).json()
        assert status["service_state"] == "enabled" and status["agreement_version"] == AGREEMENT
        assert status["main_account_id"] == f"{shop.shop_id}-main"
        callers = (await env.client.get(f"/v1/shops/{shop.shop_id}/callers",
                                        headers=auth)).json()["callers"]
        assert {c["number"]: c["status"] for c in callers} == {p: "approved" for p in phones(i)}
        accounts = (await env.client.get(f"/v1/shops/{shop.shop_id}/accounts",
                                         headers=auth)).json()["accounts"]
        assert [(a["role"], a["phone_review"]) for a in accounts] == [
            ("main", "reviewed"), ("sub", "reviewed"), ("sub", "reviewed")]
        # the shop's token is its own: another shop's data stays out of reach
        other = done[(i + 1) % len(done)].shop_id
        r = await env.client.get(f"/v1/shops/{other}/service", headers=auth)
        assert_problem(r, 403, "permission_denied")
    pool = await env.call("GET", "/v1/pool/utilisation", "admin")
    assert pool.json() == {"in_use": 0, "in_service": 20, "ratio": 0.0}
    # the audit names the platform and the account it acted for
    first = shop_id(0)
    enabled = await AuditLog(env.db).events(shop_id=first, kind="shop.enabled")
    assert enabled[0].actor.startswith("platform:")
    assert enabled[0].actor.endswith(f">{first}-main")
    added = await AuditLog(env.db).events(shop_id=first, kind="caller.added")
    assert {e.actor.split(">")[-1] for e in added} == {f"{first}-main"}


async def test_sub_accounts_phone_review_change_and_removal(ready: Env) -> None:
    env = ready
    base = f"/v1/shops/{SHOP}/accounts"
    new = await env.call("POST", base, "main", json={"account_id": "clerk", "phone":
                                                     "+8613700000001"})
    assert new.status_code == 201 and new.json()["phone_review"] == "pending"
    # a shop account cannot record the platform's review, nor review at all
    r = await env.call("POST", base, "main", json={"account_id": "clerk2",
                                                   "phone_reviewed": True})
    assert_problem(r, 403, "permission_denied")
    assert_problem(await env.call("PUT", f"{base}/clerk/review", "main",
                                  json={"reviewed": True}), 403, "permission_denied")
    r = await env.call("POST", f"/v1/shops/{SHOP}/callers", "main",
                       json={"number": "+8613700000001", "account_id": "clerk"})
    assert r.status_code == 201 and r.json()["status"] == "pending"
    reviewed = await env.call("PUT", f"{base}/clerk/review", "admin", json={"reviewed": True})
    assert reviewed.json()["phone_review"] == "reviewed"
    # a new phone: reviewed again, and the old one is no caller number any more
    changed = await env.call("PATCH", f"{base}/clerk", "main", json={"phone": "13700000002"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["phone"] == "+8613700000002"
    assert changed.json()["phone_review"] == "pending"
    callers = (await env.call("GET", f"/v1/shops/{SHOP}/callers", "main")).json()["callers"]
    assert "+8613700000001" not in {c["number"] for c in callers}
    assert_problem(await env.call("PATCH", f"{base}/clerk", "sub", json={"phone": None}),
                   403, "permission_denied")
    assert_problem(await env.call("DELETE", f"{base}/{MAIN}", "admin"), 403,
                   "permission_denied")
    # removal: its caller numbers go and its tokens stop working
    removed = await env.call("DELETE", f"{base}/{SUB}", "main")
    assert removed.status_code == 200, removed.text
    callers = (await env.call("GET", f"/v1/shops/{SHOP}/callers", "main")).json()["callers"]
    assert all(c["account_id"] != SUB for c in callers)
    assert_problem(await env.call("GET", f"/v1/shops/{SHOP}/service", "sub"), 401,
                   "unauthenticated")
    remaining = (await env.call("GET", base, "admin")).json()["accounts"]
    assert [a["account_id"] for a in remaining] == [MAIN, SUB2, "clerk"]
    kinds = {e.kind for e in await AuditLog(env.db).events(shop_id=SHOP)}
    assert {"account.phone", "account.removed", "account.reviewed"} <= kinds


async def test_tokens_over_the_api(ready: Env) -> None:
    env = ready
    r = await env.call("POST", "/v1/tokens", "admin",
                       json={"kind": "account", "shop_id": SHOP, "account_id": SUB2,
                             "label": "clerk 2", "days": 30})
    assert r.status_code == 201, r.text
    token = r.json()
    assert token["secret"].startswith("pn_")
    listed = (await env.call("GET", f"/v1/tokens?shop_id={SHOP}", "admin")).json()["tokens"]
    mine = next(t for t in listed if t["token_id"] == token["token_id"])
    assert mine["state"] == "active" and "secret" not in mine and mine["expires_at"]
    assert token["secret"] not in (await env.call("GET", "/v1/tokens", "admin")).text
    auditor = await env.call("POST", "/v1/tokens", "admin",
                             json={"kind": "auditor", "shops": [SHOP]})
    assert auditor.json()["shops"] == [SHOP]
    for body in ({"kind": "auditor"}, {"kind": "platform", "shop_id": SHOP},
                 {"kind": "account", "shop_id": SHOP},
                 {"kind": "auditor", "shops": [SHOP], "account_id": MAIN}):
        assert_problem(await env.call("POST", "/v1/tokens", "admin", json=body), 422,
                       "invalid_input")
    for who in ("main", "sub"):
        r = await env.call("POST", "/v1/tokens", who, json={"kind": "platform"})
        assert_problem(r, 403, "permission_denied")
        assert "'platform'" in r.json()["detail"]
    revoked = await env.call("DELETE", f"/v1/tokens/{token['token_id']}", "admin")
    assert revoked.json()["state"] == "revoked"
    again = await env.call("DELETE", f"/v1/tokens/{token['token_id']}", "admin")
    assert again.status_code == 200  # idempotent
    r = await env.client.get(f"/v1/shops/{SHOP}/service",
                             headers={"Authorization": f"Bearer {token['secret']}"})
    assert_problem(r, 401, "unauthenticated")
    issued = await AuditLog(env.db).events(kind="api.token_issued")
    assert all(e.actor.startswith("platform:") for e in issued[:2])


async def test_pool_utilisation_counts_active_bindings(ready: Env) -> None:
    env = ready
    from routing.risk import RiskPolicy

    env.services.policy = RiskPolicy(plaintext_enabled=False)
    await env.register("o-1", SHOP)
    r = await env.client.post("/v1/orders/o-1/reveal", headers=env.auth("main"))
    assert r.status_code == 200 and r.json()["virtual_number"].startswith("+86170")
    pool = (await env.call("GET", "/v1/pool/utilisation", "admin")).json()
    assert pool == {"in_use": 1, "in_service": 20, "ratio": 0.05}
    assert x_number(1).startswith("+86170")
