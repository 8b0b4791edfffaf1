"""Every endpoint family × every kind of credential: allowed, 403 naming the missing scope, or
401. The platform on behalf of an account has that account's rights, no more."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from binding_store.audit import AuditLog
from routing.risk import RiskPolicy
from tests.api.conftest import MAIN, OTHER, SHOP, SUB, Env, assert_problem

KINDS = ("platform", "on_behalf_main", "on_behalf_sub", "main", "sub", "auditor",
         "auditor_elsewhere", "none", "revoked")
ACCOUNTS = frozenset({"on_behalf_main", "on_behalf_sub", "main", "sub"})
SHOPLY = ACCOUNTS | {"platform"}
MANAGERS = frozenset({"platform", "on_behalf_main", "main"})
READERS = SHOPLY | {"auditor"}
PLATFORM = frozenset({"platform"})
S = f"/v1/shops/{SHOP}"
ORDER = {"shop_id": SHOP, "buyer_number": "+8613900000001", "buyer_id": "buyer-1",
         "ordered_at": "2026-11-28T10:00:00+08:00", "status": "paid"}


@dataclass(frozen=True)
class Family:
    name: str
    method: str
    url: str
    body: Callable[[str], Any] | None
    allowed: frozenset[str]
    scope: str | None  # the scope a refusal names (None: refused for another reason)


FAMILIES = [
    Family("service status", "GET", f"{S}/service", None, SHOPLY, "shop"),
    Family("accounts", "GET", f"{S}/accounts", None, SHOPLY, "shop"),
    Family("account add", "POST", f"{S}/accounts", lambda k: {"account_id": f"new-{k}"},
           MANAGERS, "shop:manage"),
    Family("callers", "GET", f"{S}/callers", None, SHOPLY, "shop"),
    Family("callers batch", "POST", f"{S}/callers/batch",
           lambda k: {"rows": [{"number": "not-a-number"}]}, MANAGERS, "shop:manage"),
    Family("order register", "PUT", "/v1/orders/o-m", lambda k: ORDER, PLATFORM, "platform"),
    Family("order read", "GET", f"/v1/orders/o-m?shop_id={SHOP}", None, SHOPLY, "shop"),
    Family("reveal", "POST", "/v1/orders/o-m/reveal", lambda k: {}, ACCOUNTS, None),
    Family("binding", "GET", "/v1/bindings/{binding}", None, SHOPLY, "shop"),
    Family("call log", "GET", f"{S}/calls", None, READERS, "calls:read"),
    Family("call export", "GET", f"{S}/calls/export", None, READERS, "calls:read"),
    Family("tokens", "GET", "/v1/tokens", None, PLATFORM, "platform"),
    Family("pool", "GET", "/v1/pool/utilisation", None, PLATFORM, "platform"),
    Family("webhooks", "GET", "/v1/webhooks", None, PLATFORM, "platform"),
]


async def issue(env: Env, body: dict[str, Any]) -> dict[str, Any]:
    r = await env.call("POST", "/v1/tokens", "admin", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert isinstance(out, dict)
    return out


async def credentials(env: Env) -> dict[str, dict[str, str]]:
    """Headers of each kind of credential."""
    auditor = await issue(env, {"kind": "auditor", "shops": [SHOP], "label": "audit"})
    elsewhere = await issue(env, {"kind": "auditor", "shops": [OTHER]})
    revoked = await issue(env, {"kind": "account", "shop_id": SHOP, "account_id": MAIN})
    r = await env.call("DELETE", f"/v1/tokens/{revoked['token_id']}", "admin")
    assert r.status_code == 200 and r.json()["state"] == "revoked"

    def bearer(secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}

    return {
        "platform": env.auth("admin"),
        "on_behalf_main": {**env.auth("admin"), "X-Privnum-Account": MAIN},
        "on_behalf_sub": {**env.auth("admin"), "X-Privnum-Account": SUB},
        "main": env.auth("main"), "sub": env.auth("sub"),
        "auditor": bearer(auditor["secret"]), "auditor_elsewhere": bearer(elsewhere["secret"]),
        "none": {}, "revoked": bearer(revoked["secret"]),
    }


@pytest.fixture
async def matrix(ready: Env) -> tuple[Env, dict[str, dict[str, str]], str]:
    env = ready
    assert (await env.register("o-m", SHOP)).status_code == 201
    env.services.policy = RiskPolicy(plaintext_enabled=False)
    r = await env.client.post("/v1/orders/o-m/reveal", headers=env.auth("main"))
    assert r.status_code == 200, r.text
    env.services.policy = RiskPolicy(timezone="Asia/Shanghai")
    return env, await credentials(env), r.json()["binding_id"]


@pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])
async def test_scope_matrix(matrix: tuple[Env, dict[str, dict[str, str]], str],
                            family: Family) -> None:
    env, headers, binding = matrix
    url = family.url.format(binding=binding)
    for kind in KINDS:
        kw: dict[str, Any] = {"headers": headers[kind]}
        if family.body is not None:
            kw["json"] = family.body(kind)
        r = await env.client.request(family.method, url, **kw)
        if kind in ("none", "revoked"):
            assert_problem(r, 401, "unauthenticated")
        elif kind in family.allowed:
            assert r.status_code in (200, 201), f"{family.name} as {kind}: {r.text}"
        else:
            assert_problem(r, 403, "permission_denied")
            if family.scope is not None:
                assert f"'{family.scope}'" in r.json()["detail"], (kind, r.text)


Matrix = tuple[Env, dict[str, dict[str, str]], str]


async def test_on_behalf_is_audited_with_who_and_for_whom(matrix: Matrix) -> None:
    env, headers, _ = matrix
    r = await env.client.post(f"{S}/accounts", headers=headers["on_behalf_main"],
                              json={"account_id": "clerk-9", "phone": "+8613700000009"})
    assert r.status_code == 201, r.text
    events = await AuditLog(env.db).events(shop_id=SHOP, kind="account.added")
    actor = next(e.actor for e in events if e.subject == "clerk-9")
    assert actor.startswith("platform:") and actor.endswith(f">{MAIN}")
    # the platform's own change of caller numbers names it and the main account it acts for
    r = await env.client.post(f"{S}/callers/batch", headers=headers["platform"],
                              json={"rows": [{"number": "+8613800000003",
                                              "account_id": "acct-sub2"}]})
    assert r.status_code == 200 and r.json()["added"] == 1, r.text
    added = await AuditLog(env.db).events(shop_id=SHOP, kind="caller.added")
    assert added[0].actor.startswith("platform:") and added[0].actor.endswith(f">{MAIN}")
    reveal = await env.client.post("/v1/orders/o-m/reveal", headers=headers["on_behalf_sub"])
    assert reveal.status_code == 200, reveal.text
    revealed = await AuditLog(env.db).events(shop_id=SHOP, kind="reveal.plaintext")
    assert revealed[0].actor.endswith(f">{SUB}") and revealed[0].actor.startswith("platform:")


async def test_acting_on_behalf_needs_the_platform_and_a_known_account(ready: Env) -> None:
    env = ready
    r = await env.call("GET", f"{S}/service", "main", headers={"X-Privnum-Account": SUB})
    assert_problem(r, 403, "permission_denied")
    assert "'platform'" in r.json()["detail"]
    r = await env.call("GET", f"{S}/service", "admin", headers={"X-Privnum-Account": "nobody"})
    assert_problem(r, 404, "not_found")
    r = await env.call("GET", f"/v1/shops/{OTHER}/service", "admin",
                       headers={"X-Privnum-Account": MAIN})
    assert_problem(r, 403, "permission_denied")  # the account's shop only
    r = await env.call("GET", "/v1/webhooks", "admin", headers={"X-Privnum-Account": MAIN})
    assert_problem(r, 403, "permission_denied")


async def test_unknown_shop_account_or_order_is_404_everywhere(ready: Env) -> None:
    env = ready
    n = "/v1/shops/nosuch"
    for method, url, body in [
        ("GET", f"{n}/service", None), ("GET", f"{n}/accounts", None),
        ("POST", f"{n}/accounts", {"account_id": "x1"}), ("GET", f"{n}/callers", None),
        ("GET", f"{n}/calls", None), ("GET", f"{n}/calls/export", None),
        ("PUT", "/v1/orders/o-1", {**ORDER, "shop_id": "nosuch"}),
        ("GET", "/v1/orders/o-1?shop_id=nosuch", None),
        ("GET", "/v1/tokens?shop_id=nosuch", None),
        ("GET", f"{S}/accounts/nobody", None), ("PATCH", f"{S}/accounts/nobody", {"phone": None}),
        ("DELETE", f"{S}/accounts/nobody", None),
        ("PUT", f"{S}/accounts/nobody/review", {"reviewed": True}),
        ("GET", f"/v1/orders/no-order?shop_id={SHOP}", None),
        ("POST", "/v1/orders/no-order/reveal", None),
        ("GET", "/v1/tokens/ffffffffffffffff", None),
        ("DELETE", "/v1/tokens/ffffffffffffffff", None),
        ("POST", "/v1/tokens", {"kind": "auditor", "shops": ["nosuch"]}),
    ]:
        who = "main" if url.endswith("/reveal") else "admin"
        r = await env.call(method, url, who, json=body)
        assert_problem(r, 404, "not_found")
    # another shop's account is not found either
    r = await env.call("GET", f"/v1/shops/{OTHER}/accounts/{MAIN}", "admin")
    assert_problem(r, 404, "not_found")
