"""15-digit 700 numbers as X on SQLite and PostgreSQL: imported, allocated, found by the call
path through SQL and through the Redis index."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_rebuild import rebuild_index
from binding_store.pool import PoolRepository
from binding_store.redis_index import RedisIndex
from binding_store.route_lookup import StoreRouteLookup
from routing.errors import InvalidNumber, NotFound
from routing.model import Direction, PoolState
from routing.number_classes import NumberClasses, RegionClasses, Segment
from tests.binding_store.test_bindings_helpers import A1, B1, NOW, seed, store

X700 = ("+86700000000000001", "+86700000000000002")
POOL_700 = ["number,region\n", "700000000000001,n700\n", "+86 700 0000 0000 0002,n700\n"]
ONLY_700 = NumberClasses.of([RegionClasses("CN", segments=(Segment("700", 15),))])


@pytest.fixture
async def index(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisIndex]:
    idx = RedisIndex.from_url(redis_url, prefix=redis_prefix, timeout=2.0)
    yield idx
    await idx.close()


async def test_import_takes_700_numbers_in_every_dialled_form(database: Database) -> None:
    repo = PoolRepository(database)
    report = await repo.import_csv([
        "number,region\n", "700123456789012,a\n", "+86700123456789013,a\n",
        "86700123456789014,a\n", "0086 700 1234 5678 9015,a\n", "70012345678901,a\n",
        "4001234567,a\n", "86700123456789012,a\n", "17000000001,a\n"], now=NOW)
    assert (report.rows, report.inserted) == (8, 5)
    assert [(e.line, e.value, e.message) for e in report.errors] == [
        (6, "70012345678901", "not a valid phone number"),
        (7, "4001234567",
         "a shared_cost number; region CN accepts mobile, fixed_line, 700 (15 digits)")]
    assert [(d.line, d.message) for d in report.duplicates] == [(8, "repeats line 2")]
    assert [n.number for n in await repo.list_numbers()] == [
        "+8617000000001", "+86700123456789012", "+86700123456789013", "+86700123456789014",
        "+86700123456789015"]
    # the shipping-phone check and state changes read every form of a 700 number
    for form in ("700123456789013", "+86700123456789013", "86700123456789013"):
        assert await repo.is_virtual_number(form)
    assert not await repo.is_virtual_number("700999999999999")
    view = await repo.set_state("700 1234 5678 9014", PoolState.RETIRED, actor="t", now=NOW)
    assert (view.number, view.state) == ("+86700123456789014", PoolState.RETIRED)
    with pytest.raises(NotFound):
        await repo.set_state("700999999999999", PoolState.RETIRED, actor="t", now=NOW)
    with pytest.raises(InvalidNumber):
        await repo.set_state("7001", PoolState.RETIRED, actor="t", now=NOW)


async def test_only_700_after_the_transition(database: Database) -> None:
    repo = PoolRepository(database, ONLY_700)
    report = await repo.import_csv(
        ["number,region\n", "17000000001,a\n", "700123456789012,a\n"], now=NOW)
    assert report.inserted == 1
    assert [(e.line, e.message) for e in report.errors] == [
        (2, "a mobile number; region CN accepts 700 (15 digits)")]


async def test_a_700_x_is_issued_and_routes_from_sql(database: Database,
                                                     cipher: BuyerCipher) -> None:
    await seed(database)
    await PoolRepository(database).import_csv(POOL_700, now=NOW)
    issued = await store(database, cipher).issue("s1", "o1", "b1", A1, B1, NOW, actor="t")
    assert issued.virtual_x in X700
    lookup = StoreRouteLookup(database, cipher)
    (merchant,) = (await lookup.find_for_call(A1, issued.virtual_x, NOW)).bindings
    (callback,) = (await lookup.find_for_call(B1, issued.virtual_x, NOW)).bindings
    assert (merchant.matched_as, merchant.buyer_b) == (Direction.MERCHANT, B1)
    assert (callback.matched_as, callback.caller_a) == (Direction.CALLBACK, A1)
    assert merchant.binding_id == callback.binding_id == issued.binding_id
    other = next(x for x in X700 if x != issued.virtual_x)
    in_pool = await lookup.find_for_call(A1, other, NOW)
    assert in_pool.x_in_pool and in_pool.bindings == ()
    assert lookup.sql_reads == 3


@pytest.mark.redis
async def test_a_700_x_routes_from_the_redis_index(database: Database, cipher: BuyerCipher,
                                                   index: RedisIndex, redis_url: str,
                                                   redis_prefix: str) -> None:
    now = datetime.now(UTC)  # Redis expires keys on its own clock
    await seed(database)
    await PoolRepository(database).import_csv(POOL_700, now=now)
    issued = await store(database, cipher, index).issue("s1", "o1", "", A1, B1, now, actor="t")
    x = issued.virtual_x
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.exists(index.ax_key(A1, x))
        for key in client.scan_iter(match=f"{redis_prefix}:*"):
            client.delete(key)  # nothing left: the rebuild must restore the 700 X's keys
    finally:
        client.close()
    report = await rebuild_index(index, database, now=now)
    assert report.bindings == 1
    no_sql = Database("postgresql+psycopg://nobody@127.0.0.1:1/none", timeout=0.5)
    try:
        lookup = StoreRouteLookup(no_sql, cipher, index=index)
        for who, direction in ((A1, Direction.MERCHANT), (B1, Direction.CALLBACK)):
            (seen,) = (await lookup.find_for_call(who, x, now)).bindings
            assert (seen.binding_id, seen.matched_as, seen.virtual_x) == (
                issued.binding_id, direction, x)
        assert lookup.index_hits == 2 and lookup.sql_reads == 0
    finally:
        await no_sql.dispose()
