"""The API wired to REAL stores (SQLite and PostgreSQL via the ``database`` fixture)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.metrics import Metrics
from api.services import ApiServices
from binding_store.accounts import AccountRepository
from binding_store.crypto import KeyRing
from binding_store.db import Database
from binding_store.pool import PoolRepository
from binding_store.tokens import TokenStore
from routing.risk import RiskPolicy
from scripts.container import Container
from scripts.http_service import api_services
from scripts.settings import Settings

START = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai
SHOP, OTHER = "shop-1", "shop-2"
MAIN, SUB, SUB2 = "acct-main", "acct-sub", "acct-sub2"
OTHER_MAIN = "other-main"
MAIN_PHONE, SUB_PHONE, SUB2_PHONE = "+8613800000001", "+8613800000002", "+8613800000003"
OTHER_PHONE = "+8613800000009"
BUYER, BUYER2 = "+8613900000001", "+8613900000002"
AGREEMENT = "2023-05"


def x_number(i: int) -> str:
    return f"+86170{i:08d}"


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Env:
    db: Database
    services: ApiServices
    client: httpx.AsyncClient
    clock: Clock
    tokens: dict[str, str] = field(default_factory=dict)
    shop_of: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def call(self, method: str, url: str, who: str | None = None, **kw: Any
                   ) -> httpx.Response:
        """One request as ``who``. A reveal whose body still names the buyer (the way
        clients revealed before the platform registered orders) is preceded by the
        platform's registration of that order with those values, so the request matches."""
        headers = dict(kw.pop("headers", {}))
        body = kw.get("json")
        if (method == "POST" and url.endswith("/reveal") and url.startswith("/v1/orders/")
                and isinstance(body, dict) and "buyer_number" in body and who in self.shop_of):
            await self.register(url.split("/")[3], self.shop_of[who],
                                buyer=body["buyer_number"],
                                buyer_id=body.get("buyer_id", "buyer-1"),
                                ordered_at=body.get("order_created_at"))
        if who is not None:
            headers.update(self.auth(who))
        return await self.client.request(method, url, headers=headers, **kw)

    async def register(self, order_id: str, shop: str, *, buyer: str = "+8613900000001",
                       buyer_id: str = "buyer-1", ordered_at: str | None = None,
                       status: str = "paid") -> httpx.Response:
        """The platform registers an order (``ordered_at`` default: an hour ago)."""
        when = ordered_at or (self.clock.now - timedelta(hours=1)).isoformat()
        r = await self.client.put(f"/v1/orders/{order_id}", headers=self.auth("admin"), json={
            "shop_id": shop, "buyer_number": buyer, "buyer_id": buyer_id,
            "ordered_at": when, "status": status})
        return r


LINKS = {"order_link_template": "https://shop.example.com/orders/{order_id}",
         "chat_link_template": "https://shop.example.com/im?order={order_id}&buyer={buyer_id}"}


def settings_for(tmp_path: Path, url: str, *, links: bool = True) -> Settings:
    """Settings of the test API; ``links``: the shop's link templates are configured."""
    keys = tmp_path / "keys.json"
    if not keys.exists():
        KeyRing.generate().save(keys)
    return Settings(data_dir=tmp_path, database={"url": url}, keys={"file": keys},
                    call_log=LINKS if links else {})


async def make_env(db: Database, tmp_path: Path, policy: RiskPolicy | None = None,
                   pool_size: int = 20, *, links: bool = True) -> Env:
    clock = Clock()
    services = api_services(Container(settings_for(tmp_path, db.url, links=links),
                                      database=db), Metrics())
    services.clock = clock
    services.policy = policy or RiskPolicy(timezone="Asia/Shanghai")
    app = create_app(services)
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://privnum.test")
    lines = ["number,region"] + [f"{x_number(i)},east" for i in range(1, pool_size + 1)]
    await PoolRepository(db).import_csv(lines, now=clock.now)
    store = TokenStore(db)
    env = Env(db=db, services=services, client=client, clock=clock)
    env.tokens["admin"] = (await store.issue(now=clock.now, admin=True)).secret
    for name, shop, account in [("main", SHOP, MAIN), ("sub", SHOP, SUB), ("sub2", SHOP, SUB2),
                                ("other", OTHER, OTHER_MAIN)]:
        issued = await store.issue(now=clock.now, shop_id=shop, account_id=account)
        env.tokens[name] = issued.secret
        env.shop_of[name] = shop
    return env


async def enable_shops(env: Env, *, level: str | None = None) -> None:
    """Both shops enabled; shop-1 has two reviewed sub-accounts, the first one a caller."""
    for who, shop, phone in [("main", SHOP, MAIN_PHONE), ("other", OTHER, OTHER_PHONE)]:
        r = await env.call("POST", f"/v1/shops/{shop}/service/enable", who,
                           json={"agreement_version": AGREEMENT, "main_phone": phone})
        assert r.status_code == 200, r.text
    accounts = AccountRepository(env.db)
    await accounts.add_sub_account(SHOP, SUB, actor=MAIN, now=env.clock.now, phone=SUB_PHONE,
                                   phone_reviewed=True)
    await accounts.add_sub_account(SHOP, SUB2, actor=MAIN, now=env.clock.now, phone=SUB2_PHONE,
                                   phone_reviewed=True)
    r = await env.call("POST", f"/v1/shops/{SHOP}/callers", "main",
                       json={"number": SUB_PHONE, "account_id": SUB})
    assert r.status_code == 201, r.text
    if level is not None:
        from binding_store.shops import ShopRepository

        await ShopRepository(env.db).set_level(SHOP, level, actor="test", now=env.clock.now)


@pytest.fixture
async def env(database: Database, tmp_path: Path) -> AsyncIterator[Env]:
    built = await make_env(database, tmp_path)
    yield built
    await built.client.aclose()


@pytest.fixture
async def ready(env: Env) -> Env:
    await enable_shops(env)
    return env


def reveal_body(buyer: str = BUYER, **extra: Any) -> dict[str, Any]:
    return {"buyer_number": buyer, "buyer_id": "buyer-1", **extra}


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:privnum:problem:")
    assert body["title"] and body["detail"]
    if code is not None:
        assert body["code"] == code, body
