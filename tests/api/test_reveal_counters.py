"""Reveal counters on SQL (SQLite, PostgreSQL) and Redis: atomic, exact under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from binding_store.db import Database
from binding_store.reveal_counters import RedisRevealCounters, SqlRevealCounters
from routing.reveal_ports import QuotaAsk, QuotaTake, RevealCounters
from routing.risk import RiskPolicy
from tests.api.conftest import enable_shops, make_env, reveal_body

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
RESET = NOW + timedelta(hours=10)


@pytest.fixture(params=["sql", pytest.param("redis", marks=pytest.mark.redis)])
async def counters(request: pytest.FixtureRequest, database: Database
                   ) -> AsyncIterator[RevealCounters]:
    if request.param == "sql":
        yield SqlRevealCounters(database)
        return
    client: Redis = Redis.from_url(request.getfixturevalue("redis_url"))
    # Exactness is under test, not latency: a loaded test host must not trip the 0.5 s default.
    yield RedisRevealCounters(client, request.getfixturevalue("redis_prefix"), timeout=5.0)
    await client.aclose()  # type: ignore[attr-defined]


async def test_quota_is_exact_under_concurrency(counters: RevealCounters) -> None:
    takes = await asyncio.gather(*(counters.take_quota("s1", "2026-11-28", 10, RESET, NOW,
                                                       order_id=f"o-{i}")
                                   for i in range(40)))
    assert sum(t.taken for t in takes) == 10
    assert sorted(t.used for t in takes if t.taken) == list(range(1, 11))
    assert all(t.used == 10 for t in takes if not t.taken)
    assert await counters.quota_used("s1", "2026-11-28") == 10
    assert await counters.quota_used("s1", "2026-11-29") == 0
    first = next(i for i, t in enumerate(takes) if t.taken)
    await counters.give_back_quota("s1", "2026-11-28", order_id=f"o-{first}")
    assert await counters.quota_used("s1", "2026-11-28") == 9
    assert (await counters.take_quota("s1", "2026-11-28", 10, RESET, NOW,
                                      order_id="o-new")).taken
    assert not (await counters.take_quota("s2", "2026-11-28", 0, RESET, NOW,
                                          order_id="o-1")).taken


async def test_velocity_counts_every_hit(counters: RevealCounters) -> None:
    hits = await asyncio.gather(*(counters.hit_velocity("a1", 7, RESET, NOW) for _ in range(25)))
    assert sorted(hits) == list(range(1, 26))
    assert await counters.hit_velocity("a1", 8, RESET, NOW) == 1
    assert await counters.hit_velocity("a2", 7, RESET, NOW) == 1


async def test_hit_takes_the_quota_only_within_the_velocity_limit(counters: RevealCounters
                                                                  ) -> None:
    """``hit``: the velocity count, and the quota unit only while the count is within the
    limit; exact under concurrency like the two steps it joins."""
    day = "2026-11-28"

    def ask(order: str) -> QuotaAsk:
        return QuotaAsk("s1", day, 3, RESET, order)

    hits = await asyncio.gather(*(counters.hit("a1", 7, RESET, NOW, velocity_limit=4,
                                               quota=ask(f"o-{i}")) for i in range(6)))
    assert sorted(count for count, _ in hits) == list(range(1, 7))
    over = [take for count, take in hits if count > 4]
    assert over == [None, None]  # refused by velocity: no unit asked for
    takes = [take for count, take in hits if count <= 4]
    assert all(t is not None for t in takes)
    assert sum(t.taken for t in takes if t is not None) == 3
    assert await counters.quota_used("s1", day) == 3

    # another window: an order that has its unit takes it again at no cost
    kept = next(i for i, (count, t) in enumerate(hits)
                if count <= 4 and t is not None and t.taken)
    count, again = await counters.hit("a1", 8, RESET, NOW, velocity_limit=4,
                                      quota=ask(f"o-{kept}"))
    assert count == 1 and again == QuotaTake(taken=True, used=3, first=False)
    count, none = await counters.hit("a1", 8, RESET, NOW, velocity_limit=4, quota=None)
    assert count == 2 and none is None
    assert await counters.quota_used("s1", day) == 3


@pytest.mark.redis
async def test_hits_sent_together_each_get_their_own_answer(redis_url: str,
                                                           redis_prefix: str) -> None:
    """On Redis the hits of reveals that arrive together are one script call: each hit gets
    the answer it would get alone, in the order they came (with and without a unit asked,
    over the velocity limit, a unit the order has already, a shop with no quota)."""
    client: Redis = Redis.from_url(redis_url)
    counters = RedisRevealCounters(client, redis_prefix, timeout=5.0)
    day = "2026-11-28"

    def ask(order: str, shop: str = "s1", limit: int = 2) -> QuotaAsk:
        return QuotaAsk(shop, day, limit, RESET, order)

    asks = [("a1", ask("o-1")), ("a2", None), ("a1", None), ("a2", ask("o-2")),
            ("a1", ask("o-1")), ("a3", ask("o-3")), ("a4", ask("o-1", "s2", 0)),
            ("a5", ask("o-1"))]
    try:
        hits = await asyncio.gather(*(counters.hit(account, 7, RESET, NOW, velocity_limit=2,
                                                   quota=quota) for account, quota in asks))
        assert hits == [
            (1, QuotaTake(taken=True, used=1, first=True)), (1, None), (2, None),
            (2, QuotaTake(taken=True, used=2, first=True)), (3, None),
            (1, QuotaTake(taken=False, used=2)), (1, QuotaTake(taken=False, used=0)),
            (1, QuotaTake(taken=True, used=2, first=False))]
        assert await counters.quota_used("s1", day) == 2
    finally:
        await client.aclose()  # type: ignore[attr-defined]


@pytest.mark.postgres
@pytest.mark.slow
async def test_fifty_concurrent_plaintext_reveals_with_quota_ten(pg_database: Database,
                                                                 tmp_path: Path) -> None:
    env = await make_env(pg_database, tmp_path, policy=RiskPolicy(daily_plaintext_quota=10,
                                                                  velocity_limit=1000),
                         pool_size=60)
    try:
        await enable_shops(env)
        responses = await asyncio.gather(*(
            env.call("POST", f"/v1/orders/c-{i}/reveal", "main",
                     json=reveal_body(f"+86139{i:08d}")) for i in range(50)))
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses][:3]
        decisions = [r.json()["decision"] for r in responses]
        assert decisions.count("plaintext") == 10
        assert decisions.count("privacy") == 40
        assert {r.json()["rule"] for r in responses if r.json()["decision"] == "privacy"} == {
            "daily_quota"}
    finally:
        await env.client.aclose()
