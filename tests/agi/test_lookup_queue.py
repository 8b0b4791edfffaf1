"""A burst on the embedded store: calls queue for a look-up slot within their deadline and
every bound call is still bridged (real SQLite, real sockets, the batched attempt writer)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from agi import channel_vars as cv
from agi.handlers import RouteHandler, RouteOptions
from agi.server import FastAgiServer
from binding_store.all_models import Base
from binding_store.attempt_writer import AttemptWriter
from binding_store.bindings import BindingStore
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.pool import PoolRepository
from binding_store.route_lookup import StoreRouteLookup
from binding_store.shops import ShopRepository
from tests.agi.asterisk_parse import answer_variables
from tests.agi.fake_asterisk import ANSWER_STEPS, FakeAsterisk, env_bytes, load_env_blocks

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
MAIN = "13800000001"
POOL = [f"1700000{i:04d}" for i in range(10)]
CALLS = 100


@pytest.fixture
async def sqlite_db(sqlite_url: str) -> AsyncIterator[Database]:
    db = Database(sqlite_url, timeout=5.0)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield db
    await db.dispose()


async def serve_burst(db: Database, cipher: BuyerCipher, options: RouteOptions
                      ) -> tuple[list[dict[str, str]], AttemptWriter]:
    shops = ShopRepository(db, None)
    await shops.enable("shop1", now=T0, main_account_id="main1", main_phone=MAIN,
                       agreement_version="v1", accepted_by="main1")
    csv = "number,region\n" + "".join(f"{x},bj\n" for x in POOL)
    await PoolRepository(db).import_csv(io.StringIO(csv), now=T0)
    store = BindingStore(db, cipher)
    xs = []
    for i in range(len(POOL)):
        issued = await store.issue("shop1", f"order{i}", "buyer1", MAIN, f"1390000{i:04d}", T0,
                                   actor="main1")
        xs.append(issued.virtual_x.removeprefix("+86"))
    lookup = StoreRouteLookup(db, cipher)
    attempts = AttemptWriter(db)
    attempts.start()
    handler = RouteHandler(lookup, attempts, lambda: T0, options)
    server = FastAgiServer({"route": handler}, port=0, call_timeout=30.0)
    await server.start()

    async def call(n: int) -> dict[str, str]:
        env = env_bytes(load_env_blocks()[0], script="route", args=[f"link-{n}"],
                        overrides={"agi_callerid": MAIN, "agi_extension": xs[n % len(xs)],
                                   "agi_uniqueid": f"pbx-{n}"})
        result = await FakeAsterisk(env, ANSWER_STEPS).run("127.0.0.1", server.port)
        assert result.ok, result.mismatch
        return answer_variables(result.commands)

    try:
        answers = await asyncio.gather(*(call(n) for n in range(CALLS)))
    finally:
        await server.shutdown(grace=5.0)
        await attempts.close()
    return answers, attempts


async def test_a_burst_of_bound_calls_queues_and_every_one_is_bridged(
        sqlite_db: Database, cipher: BuyerCipher) -> None:
    options = RouteOptions(max_call_seconds=600, store_timeout=1.0, max_concurrent_lookups=4,
                           lookup_queue_seconds=25.0)
    answers, attempts = await serve_burst(sqlite_db, cipher, options)
    assert [a[cv.REASON] for a in answers] == ["bridged"] * CALLS
    assert attempts.written == CALLS


async def test_a_call_that_cannot_get_a_slot_in_time_fails_closed(
        sqlite_db: Database, cipher: BuyerCipher) -> None:
    """One slot, and a queue no call can wait in: whoever waits is rejected, never bridged
    to anyone else, and the first call still gets through."""
    options = RouteOptions(max_call_seconds=600, store_timeout=5.0, max_concurrent_lookups=1,
                           lookup_queue_seconds=1e-9)
    answers, _ = await serve_burst(sqlite_db, cipher, options)
    reasons = {a[cv.REASON] for a in answers}
    assert "bridged" in reasons
    assert reasons <= {"bridged", "routing_error"}
    assert all(a[cv.ACTION] == "reject" for a in answers if a[cv.REASON] == "routing_error")
