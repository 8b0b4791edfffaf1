"""The plaintext quota counts one unit per (order, local day in the shop's zone), on the SQL
counters and on real Redis, through the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from binding_store.reveal_counters import RedisRevealCounters, SqlRevealCounters
from routing.risk import RiskPolicy
from tests.api.conftest import SHOP, Env


@pytest.fixture(params=["sql", "redis"])
async def counted(request: pytest.FixtureRequest, ready: Env) -> AsyncIterator[Env]:
    ports = ready.services.use_cases.ports
    if request.param == "sql":
        ports.counters = SqlRevealCounters(ready.db)  # type: ignore[misc]
        yield ready
        return
    client: Redis = Redis.from_url(request.getfixturevalue("redis_url"))
    ports.counters = RedisRevealCounters(  # type: ignore[misc]
        client, request.getfixturevalue("redis_prefix"), timeout=2.0)
    yield ready
    await client.aclose()  # type: ignore[attr-defined]


async def reveal(env: Env, order: str) -> dict[str, object]:
    r = await env.client.post(f"/v1/orders/{order}/reveal", headers=env.auth("main"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, dict)
    return body


async def test_one_unit_per_order_and_local_day(counted: Env) -> None:
    env = counted
    env.services.policy = RiskPolicy(timezone="Asia/Shanghai", daily_plaintext_quota=2,
                                     velocity_limit=1000)
    for order in ("o-1", "o-2", "o-3"):
        await env.register(order, SHOP)
    first = await reveal(env, "o-1")
    again = await reveal(env, "o-1")
    assert first["decision"] == again["decision"] == "plaintext"
    assert first["quota"] == again["quota"]
    assert again["quota"]["used"] == 1  # type: ignore[index]
    # ten clicks on one order at once still spend one unit
    clicks = await asyncio.gather(*(reveal(env, "o-2") for _ in range(10)))
    assert {c["decision"] for c in clicks} == {"plaintext"}
    assert {c["quota"]["used"] for c in clicks} == {2}  # type: ignore[index]
    full = await reveal(env, "o-3")
    assert full["decision"] == "privacy" and full["rule"] == "daily_quota"
    assert (await reveal(env, "o-1"))["decision"] == "plaintext"  # already counted today
    # 14:00 in Shanghai → past the next local midnight: a new day, a new unit
    env.clock.advance(hours=11)
    next_day = await reveal(env, "o-1")
    assert next_day["decision"] == "plaintext"
    assert next_day["quota"]["used"] == 1  # type: ignore[index]


async def test_the_day_is_the_shops_local_day(counted: Env) -> None:
    env = counted
    env.services.policy = RiskPolicy(timezone="Asia/Shanghai", daily_plaintext_quota=5)
    await env.register("o-1", SHOP)
    await reveal(env, "o-1")
    env.clock.advance(hours=9, minutes=59)  # 23:59 local: still the same day
    assert (await reveal(env, "o-1"))["quota"]["used"] == 1  # type: ignore[index]
    env.clock.advance(minutes=2)  # 00:01 local
    assert (await reveal(env, "o-1"))["quota"]["used"] == 1  # type: ignore[index]
    day = (env.clock.now + timedelta(hours=8)).date().isoformat()
    assert await env.services.counters.quota_used(SHOP, day) == 1


async def test_a_shop_with_its_own_zone_counts_its_own_day(counted: Env) -> None:
    from binding_store.shops import ShopRepository

    env = counted
    env.services.policy = RiskPolicy(timezone="Asia/Shanghai", daily_plaintext_quota=5)
    await ShopRepository(env.db).set_timezone(SHOP, "America/New_York", actor="test",
                                              now=env.clock.now)
    await env.register("o-1", SHOP)
    assert (await reveal(env, "o-1"))["quota"]["used"] == 1  # type: ignore[index]
    env.clock.advance(hours=20)  # 21:00 in New York: a new day in Shanghai, not in the shop's
    assert (await reveal(env, "o-1"))["quota"]["used"] == 1  # type: ignore[index]
    assert await env.services.counters.quota_used(SHOP, "2026-11-28") == 1
    env.clock.advance(hours=4)  # 01:00 on the 29th in New York
    assert (await reveal(env, "o-1"))["quota"]["used"] == 1  # type: ignore[index]
    assert await env.services.counters.quota_used(SHOP, "2026-11-29") == 1
