"""Bearer tokens: required, hashed at rest, revocable, expirable; sub-accounts never change
caller numbers."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from binding_store.api_models import ApiToken
from binding_store.tokens import TokenStore, hash_token, token_id_of
from tests.api.conftest import MAIN, SHOP, SUB2, SUB2_PHONE, SUB_PHONE, Env, assert_problem

PROTECTED = [
    ("GET", f"/v1/shops/{SHOP}/service", None),
    ("POST", f"/v1/shops/{SHOP}/service/enable", {"agreement_version": "v1"}),
    ("POST", f"/v1/shops/{SHOP}/service/disable", None),
    ("GET", f"/v1/shops/{SHOP}/callers", None),
    ("POST", f"/v1/shops/{SHOP}/callers", {"number": SUB_PHONE}),
    ("DELETE", f"/v1/shops/{SHOP}/callers/{SUB_PHONE}", None),
    ("POST", f"/v1/shops/{SHOP}/callers/batch", {"rows": [{"number": SUB_PHONE}]}),
    ("POST", "/v1/orders/o-1/reveal", {"buyer_number": "13900000001", "buyer_id": "b"}),
    ("GET", "/v1/bindings/abc", None),
    ("POST", "/v1/bindings/abc/caller", {"caller_number": SUB_PHONE}),
    ("POST", "/v1/bindings/abc/release", None),
    ("POST", "/v1/bindings/abc/call", None),
    ("GET", "/v1/numbers/+8617000000001/virtual", None),
    ("GET", f"/v1/shops/{SHOP}/calls", None),
    ("GET", f"/v1/shops/{SHOP}/calls/export", None),
]


async def test_every_endpoint_needs_a_valid_token(env: Env) -> None:
    for header in [None, "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer ",
                   "Bearer pn_0123456789abcdef_forged"]:
        for method, url, body in PROTECTED:
            headers = {"Authorization": header} if header else {}
            r = await env.client.request(method, url, json=body, headers=headers)
            assert_problem(r, 401, "unauthenticated")
            assert r.headers["www-authenticate"].startswith("Bearer")


async def test_tokens_are_hashed_at_rest(env: Env) -> None:
    async with env.db.session() as session:
        rows = (await session.scalars(select(ApiToken))).all()
    secrets = set(env.tokens.values())
    assert rows and all(r.token_hash not in secrets for r in rows)
    assert {hash_token(s) for s in secrets} == {r.token_hash for r in rows}


async def test_revoked_and_expired_tokens_stop_working(ready: Env) -> None:
    """Revoked through the serving process (kept tokens are forgotten at once); expired at
    its expiry. (Revoked by another process: within api.token_cache_seconds, see
    tests/binding_store/test_token_cache.py.)"""
    env = ready
    store = TokenStore(env.db)
    url = "/v1/numbers/+8617000000001/virtual"
    assert (await env.call("GET", url, "main")).status_code == 200
    revoked = await env.call("DELETE", f"/v1/tokens/{token_id_of(env.tokens['main'])}",
                             "admin")
    assert revoked.status_code == 200, revoked.text
    assert_problem(await env.call("GET", url, "main"), 401, "unauthenticated")
    short = await store.issue(now=env.clock.now, shop_id=SHOP, account_id=MAIN,
                              expires_at=env.clock.now + timedelta(hours=1))
    env.tokens["short"] = short.secret
    assert (await env.call("GET", url, "short")).status_code == 200
    env.clock.advance(hours=1)
    assert_problem(await env.call("GET", url, "short"), 401, "unauthenticated")


async def test_sub_account_can_never_change_caller_numbers(ready: Env) -> None:
    env = ready
    for method, url, body in [
        ("POST", f"/v1/shops/{SHOP}/callers", {"number": SUB2_PHONE, "account_id": SUB2}),
        ("DELETE", f"/v1/shops/{SHOP}/callers/{SUB_PHONE}", None),
        ("POST", f"/v1/shops/{SHOP}/callers/batch",
         {"rows": [{"number": SUB2_PHONE, "account_id": SUB2}]}),
        ("POST", f"/v1/shops/{SHOP}/service/disable", None),
        ("POST", f"/v1/shops/{SHOP}/service/enable", {"agreement_version": "v2"}),
    ]:
        r = await env.call(method, url, "sub", json=body)
        assert_problem(r, 403, "permission_denied")
    callers = (await env.call("GET", f"/v1/shops/{SHOP}/callers", "sub")).json()["callers"]
    assert sorted(c["number"] for c in callers) == sorted(["+8613800000001", SUB_PHONE])
    state = (await env.call("GET", f"/v1/shops/{SHOP}/service", "sub")).json()
    assert state["service_state"] == "enabled"


async def test_main_account_manages_callers_and_main_number_is_undeletable(ready: Env) -> None:
    env = ready
    main = "+8613800000001"
    r = await env.call("DELETE", f"/v1/shops/{SHOP}/callers/{main}", "main")
    assert_problem(r, 409, "conflict")
    batch = await env.call("POST", f"/v1/shops/{SHOP}/callers/batch", "main", json={"rows": [
        {"number": SUB2_PHONE, "account_id": SUB2},
        {"number": "12345"},
        {"number": "+8601012345678"},
        {"number": SUB_PHONE},
    ]})
    assert batch.status_code == 200, batch.text
    rows = batch.json()["rows"]
    assert [r["outcome"] for r in rows] == ["ok", "invalid_number", "not_mobile", "duplicate"]
    assert batch.json()["added"] == 1
    removed = await env.call("DELETE", f"/v1/shops/{SHOP}/callers/{SUB2_PHONE}", "main")
    assert removed.status_code == 200 and removed.json()["number"] == SUB2_PHONE
    again = await env.call("DELETE", f"/v1/shops/{SHOP}/callers/{SUB2_PHONE}", "main")
    assert_problem(again, 404, "not_found")


async def test_admin_token_acts_on_any_shop_but_cannot_reveal(ready: Env) -> None:
    env = ready
    assert (await env.call("GET", f"/v1/shops/{SHOP}/callers", "admin")).status_code == 200
    r = await env.call("POST", f"/v1/shops/{SHOP}/callers", "admin",
                       json={"number": SUB2_PHONE, "account_id": SUB2})
    assert r.status_code == 201, r.text
    rv = await env.call("POST", "/v1/orders/o-1/reveal", "admin",
                        json={"buyer_number": "13900000001", "buyer_id": "b1"})
    assert_problem(rv, 403, "permission_denied")


async def test_removing_a_sub_account_stops_its_token_at_once(ready: Env) -> None:
    """Its token was kept by this process (used just before); the removal forgets it."""
    env = ready
    url = "/v1/numbers/+8617000000001/virtual"
    assert (await env.call("GET", url, "sub2")).status_code == 200
    removed = await env.call("DELETE", f"/v1/shops/{SHOP}/accounts/{SUB2}", "main")
    assert removed.status_code == 200, removed.text
    assert_problem(await env.call("GET", url, "sub2"), 401, "unauthenticated")
