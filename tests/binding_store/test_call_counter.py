"""Call caps counted on the real stores: Redis, SQLite and PostgreSQL. Exact under
concurrency, all-or-nothing across the parties, on the store's clock, buyers never in clear."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from binding_store.call_counter import RedisCallCounter, SqlCallCounter
from binding_store.call_rules_models import CallCapEvent
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from routing.call_caps import CallCaps, CallCounter, Cap, CapSubject, to_count
from routing.errors import StoreUnavailable

A, B, X = "+8613800000001", "+8613900000001", "+8617000000001"


@pytest.fixture(params=["sql", pytest.param("redis", marks=pytest.mark.redis)])
async def counter(request: pytest.FixtureRequest, database: Database, cipher: BuyerCipher
                  ) -> AsyncIterator[CallCounter]:
    if request.param == "sql":
        yield SqlCallCounter(database, cipher)
        return
    client: Redis = Redis.from_url(request.getfixturevalue("redis_url"))
    yield RedisCallCounter(client, request.getfixturevalue("redis_prefix"), cipher,
                           timeout=5.0)
    await client.aclose()


def parties(caps: CallCaps, *, a: str = A, b: str = B, x: str = X):  # type: ignore[no-untyped-def]
    return to_count(caps, caller_a=a, buyer_key=b, virtual_x=x)


async def test_day_cap_is_exact_under_concurrency(counter: CallCounter) -> None:
    caps = CallCaps(caller=Cap(day=10))
    results = await asyncio.gather(*(counter.admit(parties(caps)) for _ in range(40)))
    assert results.count(None) == 10
    assert results.count(CapSubject.CALLER) == 30


async def test_hour_cap_and_the_first_broken_party_is_named(counter: CallCounter) -> None:
    caps = CallCaps(caller=Cap(hour=5), buyer=Cap(hour=2), number=Cap(hour=9))
    assert [await counter.admit(parties(caps)) for _ in range(3)] == [
        None, None, CapSubject.BUYER]
    # other buyers on the same A and X: each has its own 2, A has 5 in all
    other = parties(caps, b="+8613900000002")
    assert [await counter.admit(other) for _ in range(3)] == [None, None, CapSubject.BUYER]
    third = parties(caps, b="+8613900000003")
    assert [await counter.admit(third) for _ in range(2)] == [None, CapSubject.CALLER]


async def test_a_refused_call_counts_for_nobody(counter: CallCounter) -> None:
    tight = CallCaps(caller=Cap(day=100), number=Cap(day=1))
    assert await counter.admit(parties(tight)) is None
    assert await counter.admit(parties(tight)) is CapSubject.NUMBER
    # A took one call (not two): 99 more fit under a cap of 100 on another X
    roomy = CallCaps(caller=Cap(day=100))
    admitted = [await counter.admit(parties(roomy, x="+8617000000002")) for _ in range(100)]
    assert admitted.count(None) == 99


async def test_no_caps_count_nothing(counter: CallCounter) -> None:
    assert to_count(CallCaps(), caller_a=A, buyer_key=B, virtual_x=X) == ()
    assert await counter.admit(()) is None


async def test_sql_counts_buyers_by_blind_index_only(database: Database,
                                                     cipher: BuyerCipher) -> None:
    counter = SqlCallCounter(database, cipher)
    await counter.admit(parties(CallCaps(buyer=Cap(day=3))))
    async with database.session() as s:
        keys = (await s.scalars(select(CallCapEvent.subject_key))).all()
    assert keys == [f"buyer:{cipher.blind_index(B)}"] and B[3:] not in keys[0]


@pytest.mark.redis
async def test_redis_counts_buyers_by_blind_index_with_a_relative_ttl(
        redis_url: str, redis_prefix: str, cipher: BuyerCipher) -> None:
    client: Redis = Redis.from_url(redis_url)
    try:
        counter = RedisCallCounter(client, redis_prefix, cipher)
        await counter.admit(parties(CallCaps(buyer=Cap(day=3))))
        keys = [k.decode() async for k in client.scan_iter(match=f"{redis_prefix}:*")]
        assert keys == [f"{redis_prefix}:cap:buyer:{cipher.blind_index(B)}"]
        ttl = await client.pttl(keys[0])
        assert 86_400_000 < ttl <= 86_460_000  # a day and a minute, from Redis's own clock
    finally:
        await client.aclose()


async def test_an_unreachable_store_is_an_error_never_a_pass(cipher: BuyerCipher) -> None:
    dead = Redis.from_url("redis://127.0.0.1:17899/6", socket_connect_timeout=0.5)
    try:
        with pytest.raises(StoreUnavailable):
            await RedisCallCounter(dead, "x", cipher, timeout=2.0).admit(
                parties(CallCaps(caller=Cap(day=1))))
    finally:
        await dead.aclose()
    db = Database("postgresql+psycopg://postgres@127.0.0.1:17898/none", timeout=0.5)
    try:
        with pytest.raises(StoreUnavailable):
            await SqlCallCounter(db, cipher).admit(parties(CallCaps(caller=Cap(day=1))))
    finally:
        await db.dispose()


@pytest.fixture(params=["sql", pytest.param("redis", marks=pytest.mark.redis)])
async def two_nodes(request: pytest.FixtureRequest, database: Database, cipher: BuyerCipher
                    ) -> AsyncIterator[tuple[CallCounter, CallCounter]]:
    """Two counters as two privnum nodes have them: a client (or an engine) each, one store.
    SQLite serves one process: there both share the engine."""
    if request.param == "sql":
        other = (database if database.dialect == "sqlite"
                 else Database(database.url, timeout=database.timeout))
        yield SqlCallCounter(database, cipher), SqlCallCounter(other, cipher)
        if other is not database:
            await other.dispose()
        return
    url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
    clients: list[Redis] = [Redis.from_url(url), Redis.from_url(url)]
    yield (RedisCallCounter(clients[0], prefix, cipher, timeout=5.0),
           RedisCallCounter(clients[1], prefix, cipher, timeout=5.0))
    for client in clients:
        await client.aclose()


async def test_overlapping_parties_on_two_nodes_stay_exact(
        two_nodes: tuple[CallCounter, CallCounter]) -> None:
    """Three callers, four buyers, one X, every cap at once, calls racing on two nodes: X's
    hour cap is reached exactly, no buyer passes its own, no caller its own, and the calls
    refused counted for nobody (the winners are exactly what was counted)."""
    caps = CallCaps(caller=Cap(hour=4), buyer=Cap(day=3), number=Cap(hour=9))
    callers = [f"+861380000000{i}" for i in range(3)]
    buyers = [f"+861390000000{i}" for i in range(4)]
    calls = [(callers[i % 3], buyers[i % 4]) for i in range(48)]
    results = await asyncio.gather(*(
        two_nodes[i % 2].admit(parties(caps, a=a, b=b)) for i, (a, b) in enumerate(calls)))
    admitted = [call for call, got in zip(calls, results, strict=True) if got is None]
    assert len(admitted) == 9  # X's cap: 3 callers x 4 leave room for 12, buyers for 12
    for caller in callers:
        assert sum(a == caller for a, _ in admitted) <= 4
    for buyer in buyers:
        assert sum(b == buyer for _, b in admitted) <= 3
    assert set(results) <= {None, CapSubject.CALLER, CapSubject.BUYER, CapSubject.NUMBER}
    # X is full: another call on it is refused by X, on either node
    assert await two_nodes[1].admit(parties(caps, a=callers[0], b=buyers[3])) in {
        CapSubject.NUMBER, CapSubject.CALLER, CapSubject.BUYER}
    # on another X, what the losers left behind shows: each caller has 4 - (its wins) left
    elsewhere = CallCaps(caller=Cap(hour=4))
    for caller in callers:
        won = sum(a == caller for a, _ in admitted)
        more = [await two_nodes[0].admit(parties(elsewhere, a=caller, x="+8617000000009"))
                for _ in range(5)]
        assert more.count(None) == 4 - won
