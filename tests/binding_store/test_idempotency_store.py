"""The idempotency-key store on SQLite and PostgreSQL: one claim wins among concurrent ones,
a kept response comes back sealed and opened, a dead request's lease runs out, expired keys
are taken over and purged. Times are relative to a fixed instant (never today's date)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.idempotency import SqlIdempotencyStore
from binding_store.idempotency_models import IdempotencyKey
from routing.idempotency import ClaimState, StoredResponse, request_digest

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE, TTL = timedelta(seconds=60), timedelta(hours=24)
BODY = b'{"buyer_number":"+8613912345678"}'
DIGEST = request_digest("POST", "/v1/orders/o1/reveal", "", BODY)


async def claim(store: SqlIdempotencyStore, now: datetime = NOW, digest: bytes = DIGEST,
                scope: str = "tok1", key: str = "k-1") -> tuple[ClaimState, str]:
    got = await store.claim(scope, key, digest, now=now, lease_until=now + LEASE,
                            expires_at=now + TTL)
    return got.state, got.claim_id


async def test_one_of_many_concurrent_claims_wins(database: Database,
                                                  cipher: BuyerCipher) -> None:
    store = SqlIdempotencyStore(database, cipher)
    states = [s for s, _ in await asyncio.gather(*(claim(store) for _ in range(8)))]
    assert states.count(ClaimState.CLAIMED) == 1, states
    assert set(states) == {ClaimState.CLAIMED, ClaimState.IN_PROGRESS}


async def test_a_kept_response_is_sealed_and_replayed(database: Database,
                                                      cipher: BuyerCipher) -> None:
    store = SqlIdempotencyStore(database, cipher)
    state, claim_id = await claim(store)
    assert state is ClaimState.CLAIMED
    kept = StoredResponse(200, "application/json", b'{"buyer_number":"+8613912345678"}')
    await store.complete("tok1", "k-1", claim_id, kept)
    again = await store.claim("tok1", "k-1", DIGEST, now=NOW + TTL - timedelta(seconds=1),
                              lease_until=NOW + TTL, expires_at=NOW + 2 * TTL)
    assert again.state is ClaimState.REPLAY and again.response == kept
    other = request_digest("POST", "/v1/orders/o1/reveal", "", b"{}")
    assert (await claim(store, digest=other))[0] is ClaimState.MISMATCH
    assert (await claim(store, scope="tok2"))[0] is ClaimState.CLAIMED  # per credential
    async with database.session() as session:
        rows = (await session.execute(select(IdempotencyKey))).scalars().all()
    stored = b"".join(r.body or b"" for r in rows) + repr(
        [(r.key_digest, r.request_digest) for r in rows]).encode()
    assert b"13912345678" not in stored and b"k-1" not in stored


async def test_a_dead_requests_lease_runs_out(database: Database, cipher: BuyerCipher) -> None:
    store = SqlIdempotencyStore(database, cipher)
    _, first = await claim(store)
    assert (await claim(store, NOW + LEASE - timedelta(seconds=1)))[0] is ClaimState.IN_PROGRESS
    state, second = await claim(store, NOW + LEASE)
    assert state is ClaimState.CLAIMED and second != first
    # The first request's late answer no longer counts; the second's does.
    await store.complete("tok1", "k-1", first, StoredResponse(201, "application/json", b"1"))
    await store.complete("tok1", "k-1", second, StoredResponse(201, "application/json", b"2"))
    got = await store.claim("tok1", "k-1", DIGEST, now=NOW + LEASE, lease_until=NOW,
                            expires_at=NOW)
    assert got.response is not None and got.response.body == b"2"


async def test_abandoned_and_expired_keys(database: Database, cipher: BuyerCipher) -> None:
    store = SqlIdempotencyStore(database, cipher)
    _, claim_id = await claim(store)
    await store.abandon("tok1", "k-1", claim_id)
    assert (await claim(store))[0] is ClaimState.CLAIMED  # forgotten: runs again
    other = request_digest("POST", "/x", "", b"{}")
    assert (await claim(store, NOW + TTL, digest=other))[0] is ClaimState.CLAIMED
    for i in range(5):
        await claim(store, key=f"k-{i + 10}")
    assert await store.purge(NOW + TTL - timedelta(seconds=1)) == 0
    assert await store.purge(NOW + TTL, limit=3) == 3
    assert await store.purge(NOW + TTL, limit=3) == 2
    assert await store.purge(NOW + 2 * TTL) == 1  # the taken-over key, later
