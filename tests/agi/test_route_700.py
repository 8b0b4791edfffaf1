"""A 15-digit 700 X on the whole call path: FastAGI server + RouteHandler + real stores
(SQLite and PostgreSQL, with and without the Redis index), driven over a real socket with
every form Asterisk may deliver the dialled number in."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from agi import channel_vars as cv
from agi.handlers import RouteHandler, RouteOptions
from agi.server import FastAgiServer
from binding_store import models as m
from binding_store.bindings import BindingStore
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_rebuild import rebuild_index
from binding_store.pool import PoolRepository
from binding_store.redis_index import RedisIndex
from binding_store.route_lookup import StoreRouteLookup
from binding_store.shops import ShopRepository
from tests.agi.asterisk_parse import answer_variables
from tests.agi.fake_asterisk import ANSWER_STEPS, FakeAsterisk, env_bytes, load_env_blocks

MAIN, BUYER = "13800000001", "13900000001"
X_NATIONAL = "700123456789012"
X = "+86" + X_NATIONAL
DIALLED_FORMS = (X_NATIONAL, X, "86" + X_NATIONAL, "0086" + X_NATIONAL)


@dataclass
class World:
    db: Database
    server: FastAgiServer
    lookup: StoreRouteLookup
    binding_id: str
    calls: int = 0

    async def call(self, caller: str, dialled: str, route: str = "route") -> dict[str, str]:
        self.calls += 1
        env = env_bytes(load_env_blocks()[0], script=route, args=[f"link-{self.calls}"],
                        overrides={"agi_callerid": caller, "agi_extension": dialled,
                                   "agi_uniqueid": f"pbx-{self.calls}"})
        result = await FakeAsterisk(env, ANSWER_STEPS).run("127.0.0.1", self.server.port)
        assert result.ok, result.mismatch
        return {cv.DIAL_NUMBER: "", **answer_variables(result.commands)}


@pytest.fixture(params=["sql", pytest.param("redis", marks=pytest.mark.redis)])
async def world(request: pytest.FixtureRequest, database: Database, cipher: BuyerCipher
                ) -> AsyncIterator[World]:
    now = datetime.now(UTC)  # Redis expires the index keys on its own clock
    index = None
    if request.param == "redis":
        index = RedisIndex.from_url(request.getfixturevalue("redis_url"),
                                    prefix=request.getfixturevalue("redis_prefix"),
                                    timeout=2.0)
    await ShopRepository(database, index).enable(
        "shop1", now=now, main_account_id="main1", main_phone=MAIN, agreement_version="v1",
        accepted_by="main1")
    report = await PoolRepository(database).import_csv(
        io.StringIO(f"number,region\n{X_NATIONAL},n700\n"), now=now)
    assert report.inserted == 1
    issued = await BindingStore(database, cipher, index=index).issue(
        "shop1", "order1", "buyer1", MAIN, BUYER, now, actor="main1")
    assert issued.virtual_x == X
    if index is not None:  # built at start-up, as under 'privnum serve'
        await rebuild_index(index, database, now=now)
    lookup = StoreRouteLookup(database, cipher, index=index)
    server = FastAgiServer({
        "route": RouteHandler(lookup, lookup, lambda: now, RouteOptions(max_call_seconds=600)),
        "route164": RouteHandler(lookup, lookup, lambda: now,
                                 RouteOptions(max_call_seconds=600, dial_format="e164")),
    }, port=0)
    await server.start()
    yield World(database, server, lookup, issued.binding_id)
    await server.shutdown(grace=1.0)
    if index is not None:
        await index.close()


async def test_merchant_reaches_the_buyer_who_sees_the_700_number(world: World) -> None:
    for dialled in DIALLED_FORMS:
        out = await world.call(MAIN, dialled)
        assert (out[cv.ACTION], out[cv.DIAL_NUMBER], out[cv.CALLERID], out[cv.X]) == (
            "bridge", BUYER, X_NATIONAL, X), dialled
        assert (out[cv.BINDING], out[cv.DIRECTION]) == (world.binding_id, "merchant")
    async with world.db.session() as s:
        rows = (await s.execute(select(m.CallAttempt.virtual_x, m.CallAttempt.reason))).all()
    assert sorted(rows) == [(X, "bridged")] * len(DIALLED_FORMS)


async def test_buyer_callback_reaches_the_merchant_and_e164_dial_format(world: World) -> None:
    back = await world.call("+86" + BUYER, "+86" + X_NATIONAL)
    assert (back[cv.ACTION], back[cv.DIAL_NUMBER], back[cv.CALLERID], back[cv.DIRECTION]) == (
        "bridge", MAIN, X_NATIONAL, "callback")
    e164 = await world.call(MAIN, X_NATIONAL, route="route164")
    assert (e164[cv.DIAL_NUMBER], e164[cv.CALLERID]) == ("+86" + BUYER, X)


REJECTS = (
    (X_NATIONAL, X_NATIONAL, "no_caller_id"),  # a 700 number is never A or B
    ("+86" + X_NATIONAL, X_NATIONAL, "no_caller_id"),
    (MAIN, "700123456789013", "not_privacy_number"),  # not in the pool
    (MAIN, "70012345678901", "not_privacy_number"),  # 14 digits
    (MAIN, "7001234567890123", "not_privacy_number"),  # 16 digits
)


async def test_700_rejects(world: World) -> None:
    for caller, dialled, reason in REJECTS:
        out = await world.call(caller, dialled)
        assert (out[cv.ACTION], out[cv.REASON], out[cv.DIAL_NUMBER]) == (
            "reject", reason, ""), (caller, dialled)
