"""A current Redis index answers every call in one round trip, strangers and non-pool numbers
included, with the reasons SQL would give; SQL only where the index cannot tell."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_rebuild import rebuild_index
from binding_store.redis_index import IndexEntry, RedisIndex
from binding_store.route_lookup import StoreRouteLookup
from binding_store.watermark import read as read_watermark
from routing.decide import decide
from routing.model import BindingState, CallContext, CallRequest
from routing.reasons import Reason
from tests.binding_store.test_bindings_helpers import A1, A2, B1, X1, X2, seed, store

pytestmark = pytest.mark.redis
OUTSIDE = "+8617099999999"


@pytest.fixture
async def index(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisIndex]:
    idx = RedisIndex.from_url(redis_url, prefix=redis_prefix, timeout=2.0)
    yield idx
    await idx.close()


def reason(context: CallContext, caller: str, x: str, now: datetime) -> Reason:
    request = CallRequest(caller=caller, dialed=x, uniqueid="u1", linkedid="u1", channel="")
    return decide(request, context, now, 600).reason


async def both(database: Database, cipher: BuyerCipher, index: RedisIndex, caller: str,
               x: str, now: datetime) -> tuple[Reason, Reason, StoreRouteLookup]:
    """The reason from the index and from SQL alone, for the same call."""
    lean = StoreRouteLookup(database, cipher, index=index)
    sql = StoreRouteLookup(database, cipher)
    got = reason(await lean.find_for_call(caller, x, now), caller, x, now)
    want = reason(await sql.find_for_call(caller, x, now), caller, x, now)
    return got, want, lean


async def test_strangers_and_numbers_outside_the_pool_are_answered_by_redis(
        database: Database, cipher: BuyerCipher, index: RedisIndex) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    await store(database, cipher, index).issue("s1", "o1", "", A1, B1, now, actor="t")
    await rebuild_index(index, database, now=now)
    for caller, x, expected in ((A1, X1, Reason.BRIDGED), (B1, X1, Reason.BRIDGED),
                                (A2, X1, Reason.CALLER_NOT_AUTHORIZED),
                                (A1, X2, Reason.CALLER_NOT_AUTHORIZED),
                                (A1, OUTSIDE, Reason.NOT_PRIVACY_NUMBER)):
        got, want, lean = await both(database, cipher, index, caller, x, now)
        assert got == want == expected, (caller, x)
        assert (lean.index_hits, lean.sql_reads) == (1, 0), (caller, x)


async def test_ended_bindings_keep_their_reason_from_redis(
        database: Database, cipher: BuyerCipher, index: RedisIndex) -> None:
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    await rebuild_index(index, database, now=now)
    bindings = store(database, cipher, index)
    short = await bindings.issue("s1", "o1", "", A1, B1, now, ttl=timedelta(minutes=5),
                                 actor="t")
    released = await bindings.issue("s1", "o2", "", A2, B1, now, actor="t")
    assert released.virtual_x != short.virtual_x
    await bindings.release(released.binding_id, actor="t", now=now)
    later = now + timedelta(minutes=10)  # the first one has expired meanwhile
    for caller, x in ((A1, short.virtual_x), (A2, released.virtual_x)):
        got, want, lean = await both(database, cipher, index, caller, x, later)
        assert got == want == Reason.BINDING_EXPIRED
        assert lean.sql_reads == 0
    # A rebuild keeps them as markers too.
    await index.client.delete(index.ax_key(A1, short.virtual_x))
    await rebuild_index(index, database, now=later)
    got, want, lean = await both(database, cipher, index, A1, short.virtual_x, later)
    assert got == want == Reason.BINDING_EXPIRED and lean.sql_reads == 0


async def test_a_release_whose_commit_is_pending_reads_sql(
        database: Database, cipher: BuyerCipher, index: RedisIndex) -> None:
    """Before the commit the keys are held: SQL says whether the end happened."""
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    issued = await store(database, cipher, index).issue("s1", "o1", "", A1, B1, now,
                                                       actor="t")
    await index.forget(IndexEntry(issued.binding_id, "s1", "o1", A1, X1,
                                  cipher.blind_index(B1), b"", issued.expires_at), now=now)
    lookup = StoreRouteLookup(database, cipher, index=index)
    (seen,) = (await lookup.find_for_call(A1, X1, now)).bindings
    assert seen.state is BindingState.ACTIVE  # the commit never came: still bridges
    assert lookup.sql_reads == 1


async def test_a_binding_redis_missed_makes_the_index_behind(
        database: Database, cipher: BuyerCipher, index: RedisIndex, redis_url: str) -> None:
    """An issue whose keys cannot be written raises SQL's watermark: the index's "nothing
    here" is no longer trusted, and the new binding bridges from SQL."""
    now = datetime.now(UTC)
    await seed(database, pool=[(X1, "", None)])
    await rebuild_index(index, database, now=now)
    before = await read_watermark(database)
    broken = RedisIndex.from_url("redis://127.0.0.1:1/0", prefix=index.prefix, timeout=0.5)
    try:
        await store(database, cipher, broken).issue("s1", "o1", "", A1, B1, now, actor="t")
    finally:
        await broken.close()
    assert await read_watermark(database) == before + 1
    # Another process (it learns SQL's watermark at start, then from its healer).
    other = RedisIndex.from_url(redis_url, prefix=index.prefix, timeout=2.0)
    try:
        lookup = StoreRouteLookup(database, cipher, index=other)
        got = reason(await lookup.find_for_call(A1, X1, now), A1, X1, now)
    finally:
        await other.close()
    assert got is Reason.BRIDGED
    assert (lookup.sql_reads, lookup.stats.index_behind) == (1, 1)


async def test_every_key_of_a_call_shares_one_hash_tag(index: RedisIndex,
                                                       redis_url: str) -> None:
    raw = aioredis.Redis.from_url(redis_url)
    try:
        keys = [index.ax_key(A1, X1), index.bx_key("bidx", X1), index.watermark_key,
                index.pool_key, index.shop_key("s1"), index.caller_key("s1", A1),
                index.tombstone_key("b1"), index.applied_key, index.rebuild_key]
        slots = {await raw.execute_command("CLUSTER", "KEYSLOT", k) for k in keys}
    except aioredis.ResponseError:  # a standalone server without the command
        slots = {k[k.index("{"):k.index("}") + 1] for k in keys}
    finally:
        await raw.aclose()
    assert len(slots) == 1


async def test_new_bindings_index_entries_go_over_the_lean_connection(
        index: RedisIndex, redis_url: str) -> None:
    """The entries of new bindings (the issue path's publisher) share the call path's lean
    connection: redis-py's per-call cost was more than the script's; the entries read back."""
    now = datetime(2026, 3, 1, tzinfo=UTC)
    entries = [IndexEntry(f"b{i}", "s1", f"o{i}", A1, x, f"bidx-{i}", b"cipher",
                          now + timedelta(hours=1)) for i, x in enumerate((X1, X2))]
    lean = index.lean
    assert lean is not None
    assert await index.put(entries[:1], now=now) == 1  # connects (and selects the database)
    before = lean.writes
    assert await index.put(entries[1:], now=now) == 1
    assert lean.writes == before + 1
    raw = aioredis.Redis.from_url(redis_url)
    try:
        stored = [await raw.get(index.ax_key(A1, x)) for x in (X1, X2)]
    finally:
        await raw.aclose()
    assert [IndexEntry.loads(value) for value in stored] == entries
