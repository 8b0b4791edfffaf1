"""The idempotency-key purge of ``privnum serve`` / ``privnum api``: a lifecycle task that
deletes expired keys and leaves live ones, until told to stop. Expiry is relative to the
task's clock (expired a day ago, live for a day), never a date."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.idempotency import SqlIdempotencyStore
from binding_store.idempotency_models import IdempotencyKey
from routing.idempotency import ClaimState, request_digest
from routing.usecases.idempotency import Idempotency
from scripts.background import idempotency_purger
from scripts.clock import utc_now


async def count(db: Database) -> int:
    async with db.session() as session:
        return int((await session.execute(
            select(func.count()).select_from(IdempotencyKey))).scalar_one())


async def test_the_purge_task_deletes_expired_keys_only(database: Database,
                                                         cipher: BuyerCipher) -> None:
    store = SqlIdempotencyStore(database, cipher)
    digest = request_digest("POST", "/v1/x", "", b"{}")
    now = utc_now()
    for i, created in enumerate([now - timedelta(days=2)] * 3 + [now]):
        got = await store.claim("tok", f"k{i}", digest, now=created,
                                lease_until=created + timedelta(seconds=60),
                                expires_at=created + timedelta(days=1))
        assert got.state is ClaimState.CLAIMED
    task = idempotency_purger(Idempotency(store), interval=3600)
    await task.startup()
    for _ in range(200):  # a bound for the test, not a timing assertion
        if await count(database) == 1:
            break
        await asyncio.sleep(0.05)
    await asyncio.wait_for(task.shutdown(), 10)  # stops at once, not after the interval
    assert await count(database) == 1  # the live key stays
