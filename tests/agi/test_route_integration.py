"""The whole call path on real stores: FastAGI server + RouteHandler + StoreRouteLookup on
SQLite and PostgreSQL, with and without the Redis index (kept current by its healer, as under
``privnum serve``), driven over a real socket."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from agi import channel_vars as cv
from agi.handlers import RouteHandler, RouteOptions
from agi.server import FastAgiServer
from binding_store import models as m
from binding_store.accounts import AccountRepository
from binding_store.bindings import BindingStore
from binding_store.callers import CallerRepository
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_healer import Freshness, IndexHealer
from binding_store.pool import PoolRepository
from binding_store.redis_index import RedisIndex
from binding_store.route_lookup import StoreRouteLookup
from binding_store.shops import ShopRepository
from routing.model import CallerStatus
from tests.agi.asterisk_parse import answer_variables
from tests.agi.fake_asterisk import ANSWER_STEPS, FakeAsterisk, env_bytes, load_env_blocks

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
MAIN, SUB, BUYER, STRANGER = "13800000001", "13800000002", "13900000001", "13700000009"
X1, X2 = "17000000001", "17000000002"


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    db: Database
    bindings: BindingStore
    callers: CallerRepository
    shops: ShopRepository
    index: RedisIndex | None
    server: FastAgiServer
    clock: Clock
    lookup: StoreRouteLookup
    handler: RouteHandler
    binding_id: str = ""
    x: str = ""
    calls: int = 0

    async def call(self, caller: str, dialed: str) -> dict[str, str]:
        self.calls += 1
        env = env_bytes(load_env_blocks()[0], script="route", args=[f"link-{self.calls}"],
                        overrides={"agi_callerid": caller, "agi_extension": dialed,
                                   "agi_uniqueid": f"pbx-{self.calls}"})
        peer = FakeAsterisk(env, ANSWER_STEPS)
        result = await peer.run("127.0.0.1", self.server.port)
        assert result.ok, result.mismatch
        return {cv.DIAL_NUMBER: "", **answer_variables(result.commands)}


@pytest.fixture(params=["sql", pytest.param("redis", marks=pytest.mark.redis)])
async def world(request: pytest.FixtureRequest, database: Database, cipher: BuyerCipher
                ) -> AsyncIterator[World]:
    index = None
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        index = RedisIndex.from_url(url, prefix=request.getfixturevalue("redis_prefix"),
                                    timeout=2.0)
    shops, callers = ShopRepository(database, index), CallerRepository(database, index)
    await shops.enable("shop1", now=T0, main_account_id="main1", main_phone=MAIN,
                       agreement_version="v1", accepted_by="main1")
    pool = PoolRepository(database)
    await pool.import_csv(io.StringIO(f"number,region\n{X1},bj\n{X2},bj\n"), now=T0)
    bindings = BindingStore(database, cipher, index=index)
    clock = Clock()
    if index is not None:  # what 'privnum serve' does at start-up: an empty index is built
        healer = IndexHealer(index, database, clock=clock)
        assert await healer.run_once() is Freshness.CURRENT
    lookup = StoreRouteLookup(database, cipher, index=index)
    handler = RouteHandler(lookup, lookup, clock, RouteOptions(max_call_seconds=600))
    server = FastAgiServer({"route": handler}, port=0)
    await server.start()
    issued = await bindings.issue("shop1", "order1", "buyer1", MAIN, BUYER, T0, actor="main1")
    w = World(database, bindings, callers, shops, index, server, clock, lookup, handler,
              issued.binding_id, issued.virtual_x)
    yield w
    await server.shutdown(grace=1.0)
    if index is not None:
        await index.close()


def national(e164: str) -> str:
    return e164.removeprefix("+86")


async def test_merchant_reaches_buyer_and_buyer_reaches_merchant(world: World) -> None:
    x = national(world.x)
    out = await world.call(MAIN, x)
    assert (out[cv.ACTION], out[cv.DIAL_NUMBER], out[cv.CALLERID]) == ("bridge", BUYER, x)
    assert out[cv.BINDING] == world.binding_id
    back = await world.call(BUYER, x)
    assert (back[cv.ACTION], back[cv.DIAL_NUMBER], back[cv.DIRECTION]) == (
        "bridge", MAIN, "callback")


async def test_only_the_shops_caller_number_is_remembered(world: World) -> None:
    x = national(world.x)
    callers = world.handler.callers
    for _ in range(2):
        assert (await world.call(BUYER, x))[cv.ACTION] == "bridge"  # the buyer's callback
    assert (callers.shop_lines, callers.line_hits, callers.misses) == (0, 0, 2)
    for _ in range(3):
        assert (await world.call(MAIN, x))[cv.DIAL_NUMBER] == BUYER
    # parsed once, then answered from memory: A is the shop's number, not the buyer's
    assert (callers.shop_lines, callers.line_hits, callers.misses) == (1, 2, 3)
    assert (await world.call(BUYER, x))[cv.ACTION] == "bridge"
    assert (callers.shop_lines, callers.line_hits, callers.misses) == (1, 2, 4)


async def test_stranger_and_other_number_are_rejected(world: World) -> None:
    x = national(world.x)
    assert (await world.call(STRANGER, x))[cv.REASON] == "caller_not_authorized"
    other = X2 if x == X1 else X1
    assert (await world.call(MAIN, other))[cv.REASON] == "caller_not_authorized"
    assert (await world.call(MAIN, "17099999999"))[cv.REASON] == "not_privacy_number"


async def test_expiry_then_reissue(world: World) -> None:
    x = national(world.x)
    world.clock.now = T0 + timedelta(hours=24)
    out = await world.call(MAIN, x)
    assert (out[cv.ACTION], out[cv.REASON]) == ("reject", "binding_expired")
    again = await world.bindings.issue("shop1", "order1", "buyer1", MAIN, BUYER,
                                       world.clock.now, actor="main1")
    assert again.binding_id != world.binding_id
    out = await world.call(MAIN, national(again.virtual_x))
    assert (out[cv.ACTION], out[cv.BINDING]) == ("bridge", again.binding_id)


async def test_released_binding_is_rejected(world: World) -> None:
    await world.bindings.release(world.binding_id, actor="main1", now=T0 + timedelta(minutes=5))
    world.clock.now = T0 + timedelta(minutes=6)
    out = await world.call(MAIN, national(world.x))
    assert (out[cv.ACTION], out[cv.REASON]) == ("reject", "binding_expired")


async def test_attempts_are_recorded_with_masked_callers(world: World) -> None:
    x = national(world.x)
    await world.call(MAIN, x)
    await world.call(BUYER, x)
    await world.call(STRANGER, x)
    async with world.db.session() as s:
        rows = (await s.execute(select(m.CallAttempt).order_by(m.CallAttempt.id))).scalars().all()
    assert [(r.action, r.reason, r.direction) for r in rows] == [
        ("bridge", "bridged", "merchant"), ("bridge", "bridged", "callback"),
        ("reject", "caller_not_authorized", None)]
    assert [r.caller_masked for r in rows] == ["138****0001", "139****0001", "137****0009"]
    assert all(BUYER not in (r.caller_a + r.caller_masked) for r in rows)


async def test_disabling_a_caller_stops_its_calls_and_sends_callbacks_to_the_main_number(
        world: World) -> None:
    accounts = AccountRepository(world.db)
    await accounts.add_sub_account("shop1", "sub1", actor="main1", now=T0, phone=SUB,
                                   phone_reviewed=True)
    await world.callers.add("shop1", SUB, actor="main1", now=T0)
    issued = await world.bindings.issue("shop1", "order2", "buyer2", SUB, "13900000002", T0,
                                        actor="sub1")
    x = national(issued.virtual_x)
    assert (await world.call(SUB, x))[cv.ACTION] == "bridge"
    back = await world.call("13900000002", x)
    assert (back[cv.ACTION], back[cv.DIAL_NUMBER]) == ("bridge", SUB)
    await world.callers.set_status("shop1", SUB, CallerStatus.DISABLED, actor="main1",
                                   now=T0 + timedelta(minutes=1))
    out = await world.call(SUB, x)
    assert (out[cv.ACTION], out[cv.REASON]) == ("reject", "caller_disabled")
    # The buyer still reaches the shop within the binding's validity: its main number.
    back = await world.call("13900000002", x)
    assert (back[cv.ACTION], back[cv.DIRECTION], back[cv.DIAL_NUMBER], back[cv.CALLERID]) == (
        "bridge", "callback", MAIN, x)
    assert back[cv.BINDING] == issued.binding_id
    async with world.db.session() as s:
        rows = (await s.execute(select(m.CallAttempt).where(m.CallAttempt.direction == "callback")
                                .order_by(m.CallAttempt.id))).scalars().all()
    # The call log says which A each callback reached.
    assert [r.caller_a for r in rows] == ["+86" + SUB, "+86" + MAIN]


async def test_disabling_the_shop_stops_bridging_and_reenabling_restores_it(world: World) -> None:
    x = national(world.x)
    assert (await world.call(MAIN, x))[cv.ACTION] == "bridge"  # states now cached in Redis
    await world.shops.disable("shop1", actor="main1", now=T0 + timedelta(minutes=1))
    out = await world.call(MAIN, x)
    assert (out[cv.ACTION], out[cv.REASON]) == ("reject", "service_disabled")
    await world.shops.reenable("shop1", actor="main1", now=T0 + timedelta(minutes=2))
    assert (await world.call(MAIN, x))[cv.ACTION] == "bridge"


async def test_removed_caller_cannot_call_even_with_a_warm_index(world: World) -> None:
    accounts = AccountRepository(world.db)
    await accounts.add_sub_account("shop1", "sub1", actor="main1", now=T0, phone=SUB,
                                   phone_reviewed=True)
    await world.callers.add("shop1", SUB, actor="main1", now=T0)
    issued = await world.bindings.issue("shop1", "order3", "buyer3", SUB, "13900000003", T0,
                                        actor="sub1")
    x = national(issued.virtual_x)
    assert (await world.call(SUB, x))[cv.ACTION] == "bridge"
    assert (await world.call("13900000003", x))[cv.DIAL_NUMBER] == SUB
    await world.callers.remove("shop1", SUB, actor="main1", now=T0 + timedelta(minutes=1))
    out = await world.call(SUB, x)
    assert (out[cv.ACTION], out[cv.REASON]) == ("reject", "caller_disabled")
    back = await world.call("13900000003", x)
    assert (back[cv.ACTION], back[cv.DIAL_NUMBER]) == ("bridge", MAIN)


async def test_a_disabled_shop_refuses_callbacks_too(world: World) -> None:
    x = national(world.x)
    await world.shops.disable("shop1", actor="main1", now=T0 + timedelta(minutes=1))
    back = await world.call(BUYER, x)
    assert (back[cv.ACTION], back[cv.REASON]) == ("reject", "service_disabled")


async def test_the_warm_path_answers_from_redis(world: World) -> None:
    x = national(world.x)
    for _ in range(3):
        assert (await world.call(MAIN, x))[cv.ACTION] == "bridge"
    if world.index is not None:
        assert world.lookup.index_hits >= 2  # the first call seeds, the rest hit
