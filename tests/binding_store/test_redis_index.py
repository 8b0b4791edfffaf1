"""The Redis hot index against a real Redis: keys, TTL = expiry, no plaintext, rebuild."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.redis_index import RedisIndex
from routing.errors import StoreUnavailable
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
    two_hours = 2 * 3600 * 1000
    for key in (ax, bx):
        # The key lives the binding's validity, counted from the issuer's now (the slack
        # covers the time between the write and this read, never a clock difference).
        assert two_hours - 60_000 < await raw.pttl(key) <= two_hours
    values = await _values(raw, redis_prefix)
    assert set(values) == {ax, bx}
    for value in values.values():
        assert b"13900000001" not in value
    pair = await index.lookup(A1, cipher.blind_index(B1), X1)
    got_ax, got_bx = pair.ax, pair.bx
    assert got_ax == got_bx and got_ax is not None
    assert got_ax.binding_id == issued.binding_id
    assert cipher.decrypt(got_ax.buyer_cipher) == B1  # ciphertext, decryptable in memory


async def test_release_and_switch_remove_the_old_keys(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    bindings = store(database, cipher, index)
    issued = await bindings.issue("s1", "o1", "", A1, B1, now, actor="t")
    switched = await bindings.switch_caller(issued.binding_id, A2, actor="t", now=now)
    assert await raw.exists(index.ax_key(A1, X1)) == 0
    new_ax = index.ax_key(A2, X1)
    assert await raw.exists(new_ax) == 1
    await bindings.release(switched.binding.binding_id, actor="t", now=now)
    assert await raw.exists(new_ax, index.bx_key(cipher.blind_index(B1), X1)) == 0


async def test_forget_leaves_a_newer_binding_alone(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher, index, cooldown=timedelta(0))
    first = await bindings.issue("s1", "o1", "", A1, B1, now, actor="t")
    await bindings.release(first.binding_id, actor="t", now=now)
    second = await bindings.issue("s1", "o2", "", A1, B1, now, actor="t")
    # A late delete for the first binding must not remove the second one's keys.
    from binding_store.redis_index import IndexEntry
    stale = IndexEntry(first.binding_id, "s1", "o1", A1, X1, cipher.blind_index(B1), b"",
                       first.expires_at)
    await index.forget(stale)
    got = (await index.lookup(A1, cipher.blind_index(B1), X1)).ax
    assert got is not None and got.binding_id == second.binding_id


async def test_rebuild_restores_keys_and_drops_stale_ones(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis,
        redis_prefix: str) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher, index)
    issued = await bindings.issue("s1", "o1", "", A1, B1, now, actor="t")
    await index.set_shop_state("s1", "enabled")  # as the shop/caller repositories do
    await index.set_caller_status("s1", A1, "approved")
    before = await _values(raw, redis_prefix)
    for key in before:
        await raw.delete(key)
    await raw.set(f"{redis_prefix}:ax:+8613800009999:{X1}",
                  before[index.ax_key(A1, X1)].replace(issued.binding_id.encode(), b"gone" * 8))
    seen: list[tuple[str, int, int]] = []
    report = await index.rebuild(database, progress=lambda *a: seen.append(a))
    assert (report.bindings, report.shops, report.callers, report.removed) == (1, 1, 2, 1)
    after = await _values(raw, redis_prefix)
    assert set(after) == set(before) | {index.caller_key("s1", A2)}
    assert await raw.pttl(index.ax_key(A1, X1)) > 0
    assert ("bindings", 1, 1) in seen


async def test_redis_down_is_store_unavailable() -> None:
    idx = RedisIndex.from_url("redis://127.0.0.1:1/0", prefix="p", timeout=0.5)
    with pytest.raises(StoreUnavailable):
        await idx.lookup(A1, "bidx", X1)
    with pytest.raises(StoreUnavailable):
        await idx.set_caller_status("s1", A1, "disabled")
    await idx.close()


async def test_lookup_returns_both_bindings_with_their_states_in_one_round_trip(
        database: Database, cipher: BuyerCipher, index: RedisIndex, raw: aioredis.Redis) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    await store(database, cipher, index).issue("s1", "o1", "", A1, B1, now, actor="t")
    assert (await index.lookup(A1, cipher.blind_index(B1), X1)).ax_shop is None
    await index.set_shop_state("s1", "enabled")
    await index.set_caller_status("s1", A1, "approved")
    pair = await index.lookup(A1, cipher.blind_index(B1), X1)
    assert (pair.ax_shop, pair.ax_caller, pair.bx_shop, pair.bx_caller) == (
        "enabled", "approved", "enabled", "approved")
    assert 0 < await raw.ttl(index.caller_key("s1", A1)) <= index.state_ttl


async def test_seeding_never_overwrites_a_repository_write(
        index: RedisIndex, raw: aioredis.Redis) -> None:
    await index.set_caller_status("s1", A1, None)  # removed: a tombstone, not a delete
    await index.seed_states([("s1", "enabled")], [("s1", A1, "approved")])
    assert await raw.get(index.caller_key("s1", A1)) == b"removed"
    assert await raw.get(index.shop_key("s1")) == b"enabled"
