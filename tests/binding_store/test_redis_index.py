"""The Redis hot index against a real Redis: keys, TTL = expiry, no plaintext, tombstones,
versioned states, the watermark, rebuild."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
import redis.asyncio as aioredis

from binding_store import watermark
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_rebuild import rebuild_index
from binding_store.redis_index import IndexEntry, RedisIndex, ShopState
from routing.errors import RebuildInterrupted, StoreUnavailable
from tests.binding_store.test_bindings_helpers import A1, A2, B1, X1, X2, seed, store

pytestmark = pytest.mark.redis


@pytest.fixture
async def index(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisIndex]:
    idx = RedisIndex.from_url(redis_url, prefix=redis_prefix, timeout=2.0)
    yield idx
    await idx.close()


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _values(raw: aioredis.Redis, prefix: str) -> dict[str, bytes]:
    out = {}
    async for key in raw.scan_iter(match=f"{prefix}:*"):
        if await raw.type(key) != b"string":
            continue  # the pool's set
        value = await raw.get(key)
        assert value is not None
        out[key.decode()] = value
    return out


async def test_issue_writes_keys_with_ttl_equal_to_expiry_and_no_plaintext(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis,
        redis_prefix: str) -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # any date: lifetimes are durations
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher, index)
    issued = await bindings.issue("s1", "o1", "", A1, B1, now, ttl=timedelta(hours=2),
                                  actor="t")
    ax, bx = index.ax_key(A1, X1), index.bx_key(cipher.blind_index(B1), X1)
    # The key lives the binding's validity, counted from the issuer's now, and then the
    # look-back as a marker (the slack covers the time between the write and this read,
    # never a clock difference).
    lifetime = 2 * 3600 * 1000 + index.keep_ended_ms
    for key in (ax, bx):
        assert lifetime - 60_000 < await raw.pttl(key) <= lifetime
    values = await _values(raw, redis_prefix)
    assert set(values) == {ax, bx}
    for value in values.values():
        assert b"13900000001" not in value
    pair = await index.lookup(A1, cipher.blind_index(B1), X1)
    got_ax, got_bx = pair.ax, pair.bx
    assert got_ax == got_bx and got_ax is not None
    assert got_ax.binding_id == issued.binding_id
    assert cipher.decrypt(got_ax.buyer_cipher) == B1  # ciphertext, decryptable in memory


async def _ended(raw: aioredis.Redis, *keys: str) -> list[bool]:
    values = [await raw.get(k) for k in keys]
    return [v is not None and IndexEntry.loads(v).ended for v in values]


async def test_release_and_switch_turn_the_old_keys_into_ended_markers(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    bindings = store(database, cipher, index)
    issued = await bindings.issue("s1", "o1", "", A1, B1, now, actor="t")
    switched = await bindings.switch_caller(issued.binding_id, A2, actor="t", now=now)
    assert await _ended(raw, index.ax_key(A1, X1)) == [True]
    new_ax = index.ax_key(A2, X1)
    assert await _ended(raw, new_ax) == [False]
    await bindings.release(switched.binding.binding_id, actor="t", now=now)
    assert await _ended(raw, new_ax, index.bx_key(cipher.blind_index(B1), X1)) == [True, True]


async def test_forget_leaves_a_newer_binding_alone(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher, index, cooldown=timedelta(0))
    first = await bindings.issue("s1", "o1", "", A1, B1, now, actor="t")
    await bindings.release(first.binding_id, actor="t", now=now)
    second = await bindings.issue("s1", "o2", "", A1, B1, now, actor="t")
    # A late delete for the first binding must not remove the second one's keys.
    stale = IndexEntry(first.binding_id, "s1", "o1", A1, X1, cipher.blind_index(B1), b"",
                       first.expires_at)
    await index.forget(stale, now=now)
    got = (await index.lookup(A1, cipher.blind_index(B1), X1)).ax
    assert got is not None and got.binding_id == second.binding_id


async def test_a_late_put_never_brings_an_ended_binding_back(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis) -> None:
    """An issue's, a seed's or a rebuild's write that arrives after the release is refused:
    the release left a tombstone for the rest of the binding's validity."""
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher, index)
    issued = await bindings.issue("s1", "o1", "", A1, B1, now, ttl=timedelta(hours=3),
                                  actor="t")
    pair = await index.lookup(A1, cipher.blind_index(B1), X1)
    assert pair.ax is not None
    await bindings.release(issued.binding_id, actor="t", now=now)
    assert await raw.pttl(index.tombstone_key(issued.binding_id)) > 3 * 3600_000 - 60_000
    assert await index.put([pair.ax], now=now) == 0
    assert await _ended(raw, index.ax_key(A1, X1), index.bx_key(cipher.blind_index(B1), X1)
                        ) == [True, True]


async def test_states_carry_their_watermark_and_never_go_back(
        index: RedisIndex, raw: aioredis.Redis) -> None:
    await index.write_states(5, callers=[("s1", A1, None)])  # removed at watermark 5
    # A slow seed that read SQL at watermark 3 cannot undo it ...
    assert await index.write_states(3, callers=[("s1", A1, "approved")],
                                    shops=[("s1", ShopState("enabled", A2))]) == 1
    pair_states = await raw.mget(index.caller_key("s1", A1), index.shop_key("s1"))
    assert [json.loads(v) for v in pair_states] == [
        {"v": 5, "s": "removed"}, {"v": 3, "s": "enabled", "m": A2}]
    # ... a later change can, and so can a forced rebuild.
    await index.write_states(6, callers=[("s1", A1, "approved")])
    assert json.loads(await raw.get(index.caller_key("s1", A1))) == {"v": 6, "s": "approved"}
    await index.write_states(2, callers=[("s1", A1, "disabled")], force=True)
    assert json.loads(await raw.get(index.caller_key("s1", A1))) == {"v": 2, "s": "disabled"}
    assert 0 < await raw.ttl(index.caller_key("s1", A1)) <= index.state_ttl


async def test_a_state_held_for_a_change_reads_as_unknown_and_no_older_seed_restores_it(
        database: Database, cipher: BuyerCipher, index: RedisIndex) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    await store(database, cipher, index).issue("s1", "o1", "", A1, B1, now, actor="t")
    await index.write_states(4, shops=[("s1", ShopState("enabled"))],
                             callers=[("s1", A1, "approved")])
    await index.hold_states(5, shop_ids=["s1"], callers=[("s1", A1)])  # change 5 under way
    pair = await index.lookup(A1, cipher.blind_index(B1), X1)
    assert (pair.ax_shop, pair.ax_caller) == (None, None)  # the call path reads SQL
    await index.seed(4, [], now=now, shops=[("s1", ShopState("enabled"))],
                     callers=[("s1", A1, "approved")])  # read before the change committed
    pair = await index.lookup(A1, cipher.blind_index(B1), X1)
    assert (pair.ax_shop, pair.ax_caller) == (None, None)
    await index.write_states(5, shops=[("s1", ShopState("disabled"))],
                             callers=[("s1", A1, "disabled")], raise_watermark=True)
    pair = await index.lookup(A1, cipher.blind_index(B1), X1)
    assert (pair.ax_shop, pair.ax_caller) == (ShopState("disabled"), "disabled")


async def test_writers_raise_the_watermark_only_of_an_index_that_has_one(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis) -> None:
    """A flushed index must stay visibly lost: a writer's update does not make it look
    current again; once rebuilt, every committed change raises it."""
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher, index)
    first = await bindings.issue("s1", "o1", "", A1, B1, now, actor="t")
    await bindings.release(first.binding_id, actor="t", now=now)
    assert await index.read_watermark() is None
    assert index.known.value == 1  # the writer learnt its own change
    report = await rebuild_index(index, database, now=now)
    assert report.watermark == 1 and await index.read_watermark() == 1
    second = await bindings.issue("s1", "o2", "", A2, B1, now, actor="t")
    await bindings.release(second.binding_id, actor="t", now=now)
    assert await index.read_watermark() == 2 == index.known.value


async def test_the_watermark_advances_only_over_changes_applied_without_a_gap(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis) -> None:
    """Changes report out of order (concurrent writers): the watermark waits for the gap to
    close. A change that an old snapshot never saw leaves a gap for good: later changes do not
    make such an index look current; only a rebuild does."""
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    await rebuild_index(index, database, now=now)
    assert await index.read_watermark() == 0
    await index.write_states(2, callers=[("s1", A1, "approved")], raise_watermark=True)
    assert await index.read_watermark() == 0  # 1 not reported yet
    await index.write_states(1, callers=[("s1", A2, "approved")], raise_watermark=True)
    assert await index.read_watermark() == 2
    # Redis restarts from a snapshot taken at watermark 1: change 2 is lost with it.
    await raw.set(index.watermark_key, 1)
    await raw.delete(index.applied_key)
    for version in (3, 4):
        await index.write_states(version, callers=[("s1", A1, "disabled")],
                                 raise_watermark=True)
    assert await index.read_watermark() == 1
    async with database.session() as s:  # SQL is at 4
        for _ in range(4):
            await watermark.bump(s)
        await s.commit()
    assert (await rebuild_index(index, database, now=now)).watermark == 4
    assert await index.read_watermark() == 4


async def test_rebuild_restores_keys_and_drops_stale_ones(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis,
        redis_prefix: str) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher, index)
    issued = await bindings.issue("s1", "o1", "", A1, B1, now, actor="t")
    await index.write_states(0, shops=[("s1", ShopState("enabled"))],
                             callers=[("s1", A1, "approved")])
    before = await _values(raw, redis_prefix)
    for key in before:
        await raw.delete(key)
    await raw.set(index.ax_key("+8613800009999", X1),
                  before[index.ax_key(A1, X1)].replace(issued.binding_id.encode(), b"gone" * 8))
    seen: list[tuple[str, int, int]] = []
    report = await rebuild_index(index, database, now=now,
                                 progress=lambda *a: seen.append(a))
    assert (report.bindings, report.shops, report.callers, report.removed) == (1, 1, 2, 1)
    after = await _values(raw, redis_prefix)
    assert set(after) == set(before) | {index.caller_key("s1", A2), index.watermark_key}
    assert await raw.pttl(index.ax_key(A1, X1)) > 0
    assert await raw.smembers(index.pool_key) == {X1.encode()}
    assert ("bindings", 1, 1) in seen
    assert await index.read_watermark() == report.watermark == 0


async def test_a_rebuild_that_redis_loses_midway_sets_no_watermark(
        database: Database, cipher: BuyerCipher, index: RedisIndex, redis_url: str,
        redis_prefix: str) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    await store(database, cipher, index).issue("s1", "o1", "", A1, B1, now, actor="t")
    sync = redis.Redis.from_url(redis_url)

    def lose_everything(stage: str, _done: int, _total: int) -> None:
        if stage == "states":  # Redis comes back empty while the rebuild runs
            for key in sync.scan_iter(match=f"*{redis_prefix}*"):
                sync.delete(key)

    try:
        with pytest.raises(RebuildInterrupted):
            await rebuild_index(index, database, now=now, progress=lose_everything)
    finally:
        sync.close()
    assert await index.read_watermark() is None  # still visibly lost: calls keep reading SQL


async def test_redis_down_is_store_unavailable() -> None:
    idx = RedisIndex.from_url("redis://127.0.0.1:1/0", prefix="p", timeout=0.5)
    with pytest.raises(StoreUnavailable):
        await idx.lookup(A1, "bidx", X1)
    with pytest.raises(StoreUnavailable):
        await idx.write_states(1, callers=[("s1", A1, "disabled")])
    await idx.close()


async def test_lookup_returns_both_bindings_their_states_and_the_watermark(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    await store(database, cipher, index).issue("s1", "o1", "", A1, B1, now, actor="t")
    pair = await index.lookup(A1, cipher.blind_index(B1), X1)
    assert (pair.ax_shop, pair.watermark) == (None, None)
    await raw.set(index.watermark_key, 7)
    await index.write_states(7, shops=[("s1", ShopState("enabled", A2))],
                             callers=[("s1", A1, "approved")])
    pair = await index.lookup(A1, cipher.blind_index(B1), X1)
    assert (pair.ax_shop, pair.ax_caller, pair.bx_shop, pair.bx_caller, pair.watermark) == (
        ShopState("enabled", A2), "approved", ShopState("enabled", A2), "approved", 7)


async def test_states_of_another_format_read_as_unknown(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis) -> None:
    """An index written by an older privnum (plain ``enabled``) sends calls to SQL."""
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    await store(database, cipher, index).issue("s1", "o1", "", A1, B1, now, actor="t")
    await raw.set(index.shop_key("s1"), "enabled")
    await raw.set(index.caller_key("s1", A1), "approved")
    pair = await index.lookup(A1, cipher.blind_index(B1), X1)
    assert (pair.ax_shop, pair.ax_caller) == (None, None)
