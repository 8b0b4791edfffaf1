"""The index healer: how it judges an index against SQL and what it does about it (real Redis
with a test prefix; restarts and flushes of a whole server are in test_index_healing)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from binding_store import watermark
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_healer import Freshness, IndexHealer, judge
from binding_store.redis_index import RedisIndex
from binding_store.route_lookup import StoreRouteLookup
from tests.binding_store.test_bindings_helpers import A1, B1, X1, seed, store


@pytest.mark.parametrize(("index", "sql", "expected"), [
    (None, 0, Freshness.LOST),
    (None, 9, Freshness.LOST),
    (3, 3, Freshness.CURRENT),
    (2, 3, Freshness.BEHIND),
    (4, 3, Freshness.AHEAD),
])
def test_judge(index: int | None, sql: int, expected: Freshness) -> None:
    assert judge(index, sql) is expected


@pytest.fixture
async def index(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisIndex]:
    idx = RedisIndex.from_url(redis_url, prefix=redis_prefix, timeout=2.0)
    yield idx
    await idx.close()


def clock() -> datetime:
    return datetime.now(UTC)


async def bump_sql(database: Database, times: int) -> None:
    async with database.session() as s:
        for _ in range(times):
            await watermark.bump(s)
        await s.commit()


@pytest.mark.redis
async def test_a_lost_index_is_rebuilt_at_once_and_logged_once(
        database: Database, cipher: BuyerCipher, index: RedisIndex,
        caplog: pytest.LogCaptureFixture) -> None:
    await seed(database, pool=[(X1, "", None)])
    await store(database, cipher, index).issue("s1", "o1", "", A1, B1, clock(), actor="t")
    events: list[str] = []
    healer = IndexHealer(index, database, clock=clock, observe=events.append)
    with caplog.at_level(logging.INFO, logger="binding_store.index_healer"):
        assert await healer.run_once() is Freshness.CURRENT
        assert await healer.run_once() is Freshness.CURRENT
    assert events == ["lost", "rebuilt"]
    assert healer.stats.rebuilds == 1 and healer.stats.last_report is not None
    assert healer.stats.last_report.bindings == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no watermark" in warnings[0].getMessage()


@pytest.mark.redis
async def test_an_index_behind_gets_a_grace_then_a_rebuild(
        database: Database, index: RedisIndex) -> None:
    await seed(database)
    healer = IndexHealer(index, database, clock=clock, interval=3600.0)
    await healer.run_once()
    await bump_sql(database, 2)  # two committed changes that never reached this index
    assert await healer.run_once() is Freshness.BEHIND  # maybe a writer in flight: wait
    assert healer.stats.rebuilds == 1
    assert index.known.value == 2  # the call path already distrusts the index
    healer.interval = 0.0
    assert await healer.run_once() is Freshness.CURRENT
    assert healer.stats.rebuilds == 2 and await index.read_watermark() == 2


@pytest.mark.redis
async def test_an_index_ahead_of_sql_is_rebuilt_forced(
        database: Database, index: RedisIndex, redis_url: str) -> None:
    """SQL went back (restored from a backup): the index's states and watermark from the
    other history are replaced, not kept because they claim to be newer."""
    await seed(database, callers={("s1", A1): "disabled"})
    await bump_sql(database, 1)
    await index.write_states(50, callers=[("s1", A1, "approved")])
    raw = aioredis.Redis.from_url(redis_url)
    try:
        await raw.set(index.watermark_key, 9)
        events: list[str] = []
        healer = IndexHealer(index, database, clock=clock, observe=events.append)
        assert await healer.run_once() is Freshness.CURRENT
        assert events == ["ahead", "rebuilt"] and await index.read_watermark() == 1
        assert json.loads(await raw.get(index.caller_key("s1", A1))) == {
            "v": 1, "s": "disabled"}
    finally:
        await raw.aclose()


@pytest.mark.redis
async def test_garbage_in_the_index_sends_calls_to_sql_and_is_rebuilt_away(
        database: Database, cipher: BuyerCipher, index: RedisIndex, redis_url: str) -> None:
    now = clock()
    await seed(database, pool=[(X1, "", None)])
    issued = await store(database, cipher, index).issue("s1", "o1", "", A1, B1, now, actor="t")
    raw = aioredis.Redis.from_url(redis_url)
    try:
        await raw.set(index.watermark_key, "not a number")
        await raw.set(index.ax_key(A1, X1), "{not json")
        lookup = StoreRouteLookup(database, cipher, index=index)
        (seen,) = (await lookup.find_for_call(A1, X1, now)).bindings
        assert seen.binding_id == issued.binding_id and lookup.sql_reads == 1
        healer = IndexHealer(index, database, clock=clock)
        assert await healer.run_once() is Freshness.CURRENT
        (seen,) = (await lookup.find_for_call(A1, X1, now)).bindings
        assert seen.binding_id == issued.binding_id and lookup.index_hits == 1
    finally:
        await raw.aclose()
