"""The call path's look-up: Redis first, SQL on a miss or when Redis is down; call log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from binding_store import models as m
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_rebuild import rebuild_index
from binding_store.redis_index import RedisIndex, ShopState
from binding_store.route_lookup import StoreRouteLookup
from routing.model import (
    Action,
    BindingState,
    CallAttempt,
    CallerStatus,
    Direction,
    ServiceState,
)
from routing.reasons import Reason
from tests.binding_store.test_bindings_helpers import A1, B1, B2, NOW, X1, X2, seed, store


@pytest.fixture
async def index(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisIndex]:
    idx = RedisIndex.from_url(redis_url, prefix=redis_prefix, timeout=2.0)
    yield idx
    await idx.close()


async def test_sql_lookup_matches_as_merchant_and_as_buyer(database: Database,
                                                          cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    issued = await store(database, cipher).issue("s1", "o1", "buyer", A1, B1, NOW, actor="t")
    lookup = StoreRouteLookup(database, cipher)
    merchant = await lookup.find_for_call(A1, X1, NOW)
    assert merchant.x_in_pool and len(merchant.bindings) == 1
    found = merchant.bindings[0]
    assert (found.binding_id, found.matched_as, found.buyer_b) == (
        issued.binding_id, Direction.MERCHANT, B1)
    assert found.shop_service is ServiceState.ENABLED
    assert found.caller_status is CallerStatus.APPROVED
    back = await lookup.find_for_call(B1, X1, NOW)
    assert back.bindings[0].matched_as is Direction.CALLBACK
    assert (await lookup.find_for_call(B2, X1, NOW)).bindings == ()
    assert (await lookup.find_for_call(A1, X2, NOW)).bindings == ()
    assert not (await lookup.find_for_call(A1, "+8617099999999", NOW)).x_in_pool


async def test_sql_lookup_keeps_ended_bindings_within_the_lookback(
        database: Database, cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher)
    issued = await bindings.issue("s1", "o1", "", A1, B1, NOW, ttl=timedelta(minutes=5),
                                  actor="t")
    lookup = StoreRouteLookup(database, cipher, lookback=timedelta(days=7))
    at = NOW + timedelta(minutes=5)  # exactly expired
    (seen,) = (await lookup.find_for_call(A1, X1, at)).bindings
    assert seen.binding_id == issued.binding_id and not seen.is_active(at)
    await bindings.expire_due(at)
    assert len((await lookup.find_for_call(A1, X1, at + timedelta(days=6))).bindings) == 1
    assert (await lookup.find_for_call(A1, X1, at + timedelta(days=8))).bindings == ()


async def test_caller_status_reaches_the_call_path(database: Database,
                                                   cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None)])
    await store(database, cipher).issue("s1", "o1", "", A1, B1, NOW, actor="t")
    async with database.session() as s:
        row = (await s.execute(select(m.CallerNumber).where(m.CallerNumber.number == A1))
               ).scalar_one()
        row.status = "disabled"
        await s.commit()
    (seen,) = (await StoreRouteLookup(database, cipher).find_for_call(B1, X1, NOW)).bindings
    assert seen.caller_status is CallerStatus.DISABLED


@pytest.mark.redis
async def test_redis_hit_answers_without_sql(database: Database, cipher: BuyerCipher,
                                             index: RedisIndex) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    issued = await store(database, cipher, index).issue("s1", "o1", "", A1, B1, now, actor="t")
    await rebuild_index(index, database, now=now)  # what the healer does at start-up
    no_sql = Database("postgresql+psycopg://nobody@127.0.0.1:1/none", timeout=0.5)
    try:
        lookup = StoreRouteLookup(no_sql, cipher, index=index)
        for who, direction in ((A1, Direction.MERCHANT), (B1, Direction.CALLBACK)):
            (seen,) = (await lookup.find_for_call(who, X1, now)).bindings
            assert seen.binding_id == issued.binding_id and seen.matched_as is direction
            assert seen.buyer_b == B1 and seen.state is BindingState.ACTIVE
        assert lookup.index_hits == 2 and lookup.sql_reads == 0
        # The repositories' state changes reach the call path without SQL.
        await index.write_states(1, callers=[("s1", A1, "disabled")], raise_watermark=True)
        (seen,) = (await lookup.find_for_call(A1, X1, now)).bindings
        assert seen.caller_status is CallerStatus.DISABLED
        await index.write_states(2, shops=[("s1", ShopState("disabled"))], raise_watermark=True)
        (seen,) = (await lookup.find_for_call(A1, X1, now)).bindings
        assert seen.shop_service is ServiceState.DISABLED
        await index.write_states(3, shops=[("s1", ShopState("enabled"))],
                                 callers=[("s1", A1, "approved")], raise_watermark=True)
        (seen,) = (await lookup.find_for_call(A1, X1, now)).bindings
        assert seen.shop_service is ServiceState.ENABLED
        assert seen.caller_status is CallerStatus.APPROVED
        # States this version does not know (a newer writer's) count as disabled.
        await index.write_states(4, shops=[("s1", ShopState("frozen"))],
                                 callers=[("s1", A1, "on_hold")], raise_watermark=True)
        (seen,) = (await lookup.find_for_call(A1, X1, now)).bindings
        assert seen.shop_service is ServiceState.DISABLED
        assert seen.caller_status is CallerStatus.DISABLED
        assert lookup.sql_reads == 0
    finally:
        await no_sql.dispose()


@pytest.mark.redis
async def test_redis_miss_or_unknown_state_reads_sql_and_seeds(
        database: Database, cipher: BuyerCipher, index: RedisIndex) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    await store(database, cipher, index).issue("s1", "o1", "", A1, B1, now, actor="t")
    await rebuild_index(index, database, now=now)
    await index.drop_states(callers=[("s1", A1)])  # caller status key missing: SQL answers
    lookup = StoreRouteLookup(database, cipher, index=index)
    (seen,) = (await lookup.find_for_call(A1, X1, now)).bindings
    assert lookup.sql_reads == 1 and seen.caller_status is CallerStatus.APPROVED
    # What SQL found went into the index: the next call is a hit.
    await lookup.find_for_call(A1, X1, now)
    assert (lookup.sql_reads, lookup.index_hits) == (1, 1)


@pytest.mark.redis
async def test_an_index_behind_sql_or_without_watermark_is_not_trusted(
        database: Database, cipher: BuyerCipher, index: RedisIndex, redis_url: str) -> None:
    """Keys that claim a binding is active, from an index older than SQL, are ignored."""
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher, index)
    issued = await bindings.issue("s1", "o1", "", A1, B1, now, actor="t")
    await rebuild_index(index, database, now=now)
    stale = (await index.lookup(A1, cipher.blind_index(B1), X1)).ax
    assert stale is not None
    await bindings.release(issued.binding_id, actor="t", now=now)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        # Redis goes back in time: the binding's keys without tombstone, the old watermark.
        await raw.delete(index.tombstone_key(issued.binding_id))
        await raw.set(index.watermark_key, 0)
        await index.put([stale], now=now)
        pokes: list[bool] = []
        lookup = StoreRouteLookup(database, cipher, index=index,
                                  on_stale_index=lambda: pokes.append(True))
        for who in (A1, B1):
            (seen,) = (await lookup.find_for_call(who, X1, now)).bindings
            assert seen.state is BindingState.RELEASED
        await raw.delete(index.watermark_key)
        (seen,) = (await lookup.find_for_call(A1, X1, now)).bindings
        assert seen.state is BindingState.RELEASED
        assert (lookup.index_hits, lookup.stats.index_behind, lookup.stats.index_lost) == (
            0, 2, 1)
        assert len(pokes) == 3
    finally:
        await raw.aclose()


async def test_redis_down_degrades_to_sql(database: Database, cipher: BuyerCipher,
                                          caplog: pytest.LogCaptureFixture) -> None:
    await seed(database, pool=[(X1, "", None)])
    issued = await store(database, cipher).issue("s1", "o1", "", A1, B1, NOW, actor="t")
    dead = RedisIndex.from_url("redis://127.0.0.1:1/0", prefix="p", timeout=0.3)
    try:
        lookup = StoreRouteLookup(database, cipher, index=dead, redis_backoff_seconds=0)
        for _ in range(3):
            (seen,) = (await lookup.find_for_call(A1, X1, NOW)).bindings
            assert seen.binding_id == issued.binding_id
        assert lookup.sql_reads == 3
        warnings = [r for r in caplog.records if "Redis index unavailable" in r.getMessage()]
        assert len(warnings) == 1  # logged once per outage
    finally:
        await dead.close()


async def test_record_is_idempotent(database: Database, cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None)])
    lookup = StoreRouteLookup(database, cipher)
    attempt = CallAttempt(uniqueid="1700000000.1", linkedid="1700000000.1", at=NOW,
                          caller_masked="138****0001", caller_a=A1, virtual_x=X1,
                          action=Action.BRIDGE, reason=Reason.BRIDGED,
                          direction=Direction.MERCHANT, binding_id="b", shop_id="s1",
                          order_id="o1", system_name="pbx1")
    await lookup.record(attempt)
    await lookup.record(attempt)
    async with database.session() as s:
        count = await s.scalar(select(func.count()).select_from(m.CallAttempt))
        row = (await s.execute(select(m.CallAttempt))).scalar_one()
    assert count == 1 and row.reason == "bridged" and row.direction == "merchant"
