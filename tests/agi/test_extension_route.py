"""Calls to extension numbers through the whole call path on real stores (SQLite and
PostgreSQL): FastAGI server + RouteHandler with its ExtensionRouter, driven over a real socket
with the AGI arguments the dialplan sends (linkedid, digits entered, try number)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from agi import channel_vars as cv
from agi.extension_route import ExtensionRouter
from agi.handlers import RouteHandler, RouteOptions
from agi.server import FastAgiServer
from binding_store.binding_policy import BindingPolicy
from binding_store.bindings import BindingStore
from binding_store.callers import CallerRepository
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.extension_lookup import ExtensionDirectory, ExtensionLookup
from binding_store.extension_store import ExtensionPool
from binding_store.pool import PoolRepository
from binding_store.route_lookup import StoreRouteLookup
from binding_store.shops import ShopRepository
from routing.extension_calls import CollectPrompts
from routing.extensions import ModePolicy, NumberMode
from routing.model import CallAttempt
from tests.agi.asterisk_parse import answer_variables
from tests.agi.fake_asterisk import ANSWER_STEPS, FakeAsterisk, env_bytes, load_env_blocks

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
MAIN, BUYER, BUYER2, STRANGER = "13800000001", "13900000001", "13900000002", "13700000009"
XA, XE = "17000000001", "17000000002"  # an AXB number and an extension number (4 digits)


@dataclass
class Recorder:
    attempts: list[CallAttempt] = field(default_factory=list)

    async def record(self, attempt: CallAttempt) -> None:
        self.attempts.append(attempt)


@dataclass
class World:
    bindings: BindingStore
    server: FastAgiServer
    recorder: Recorder
    calls: int = 0

    async def call(self, caller: str, dialed: str, entered: str | None = None,
                   attempt: int = 0) -> dict[str, str]:
        self.calls += 1
        args = [f"link-{self.calls}", entered or "", str(attempt) if attempt else ""]
        env = env_bytes(load_env_blocks()[0], script="route", args=args,
                        overrides={"agi_callerid": caller, "agi_extension": dialed,
                                   "agi_uniqueid": f"pbx-{self.calls}"})
        result = await FakeAsterisk(env, ANSWER_STEPS).run("127.0.0.1", self.server.port)
        assert result.ok, result.mismatch
        return {cv.DIAL_NUMBER: "", cv.EXT: "", **answer_variables(result.commands)}


@pytest.fixture
async def world(database: Database, cipher: BuyerCipher) -> AsyncIterator[World]:
    shops, callers = ShopRepository(database), CallerRepository(database)
    await shops.enable("shop1", now=T0, main_account_id="main1", main_phone=MAIN,
                       agreement_version="v1", accepted_by="main1")
    assert callers is not None
    await PoolRepository(database).import_csv(io.StringIO(f"number\n{XA}\n{XE}\n"), now=T0)
    await ExtensionPool(database).set_mode("+86" + XE, NumberMode.EXTENSION, 4, actor="op",
                                           now=T0)
    bindings = BindingStore(database, cipher, policy=BindingPolicy(
        mode_policy=ModePolicy.EXTENSION))
    lookup = StoreRouteLookup(database, cipher)
    router = ExtensionRouter(ExtensionDirectory(database, refresh_seconds=0),
                             ExtensionLookup(database, cipher),
                             prompts=CollectPrompts(first="ask", again="wrong",
                                                    timeout_seconds=4, max_tries=3),
                             store_timeout=5.0)
    recorder = Recorder()
    handler = RouteHandler(lookup, recorder, lambda: T0, RouteOptions(max_call_seconds=600),
                           extensions=router)
    server = FastAgiServer({"route": handler}, port=0)
    await server.start()
    yield World(bindings, server, recorder)
    await server.shutdown(grace=1.0)


async def _two_orders(world: World) -> tuple[str, str]:
    one = await world.bindings.issue("shop1", "o1", "", MAIN, BUYER, T0, actor="t")
    two = await world.bindings.issue("shop1", "o2", "", MAIN, BUYER2, T0, actor="t")
    assert (one.virtual_x, two.virtual_x) == ("+86" + XE, "+86" + XE)
    return one.extension, two.extension


async def test_merchant_is_asked_then_reaches_the_buyer_of_the_extension(world: World) -> None:
    _, ext2 = await _two_orders(world)
    ask = await world.call(MAIN, XE)
    assert (ask[cv.ACTION], ask[cv.EXT_LENGTH], ask[cv.EXT_PROMPT], ask[cv.EXT_TIMEOUT]) == (
        cv.ACTION_COLLECT, "4", "ask", "4")
    assert world.recorder.attempts == []  # asking is no decision
    out = await world.call(MAIN, XE, ext2, 1)
    assert (out[cv.ACTION], out[cv.DIAL_NUMBER], out[cv.CALLERID], out[cv.EXT]) == (
        "bridge", BUYER2, XE, ext2)
    # the call log records the extension entered
    assert [(a.reason.value, a.extension) for a in world.recorder.attempts] == [
        ("bridged", ext2)]


async def test_wrong_extension_then_right_one(world: World) -> None:
    ext1, _ = await _two_orders(world)
    wrong = await world.call(MAIN, XE, "9999", 1)
    assert (wrong[cv.ACTION], wrong[cv.EXT_PROMPT]) == (cv.ACTION_COLLECT, "wrong")
    out = await world.call(MAIN, XE, ext1, 2)
    assert (out[cv.ACTION], out[cv.DIAL_NUMBER]) == ("bridge", BUYER)


@pytest.mark.parametrize(("entered", "reason", "cause"), [
    ("9999", "extension_invalid", "28"), ("", "extension_timeout", "102"),
])
async def test_third_failed_try_is_refused(world: World, entered: str, reason: str,
                                           cause: str) -> None:
    await _two_orders(world)
    out = await world.call(MAIN, XE, entered, 3)
    assert (out[cv.ACTION], out[cv.REASON], out[cv.HANGUP_CAUSE]) == ("reject", reason, cause)
    assert [a.extension for a in world.recorder.attempts] == [entered or None]


async def test_extension_after_x_in_the_dialled_number_routes_without_asking(world: World
                                                                             ) -> None:
    ext1, _ = await _two_orders(world)
    out = await world.call(MAIN, XE + ext1)
    assert (out[cv.ACTION], out[cv.DIAL_NUMBER], out[cv.EXT], out[cv.X]) == (
        "bridge", BUYER, ext1, "+86" + XE)
    bad = await world.call(MAIN, XE + "9999")
    assert (bad[cv.ACTION], bad[cv.REASON]) == ("reject", "extension_invalid")


async def test_buyer_callback_direct_then_asked_once_a_second_order_shares_x(world: World
                                                                            ) -> None:
    one = await world.bindings.issue("shop1", "o1", "", MAIN, BUYER, T0, actor="t")
    direct = await world.call(BUYER, XE)
    assert (direct[cv.ACTION], direct[cv.DIAL_NUMBER], direct[cv.DIRECTION], direct[cv.EXT]) == (
        "bridge", MAIN, "callback", one.extension)
    two = await world.bindings.issue("shop1", "o2", "", MAIN, BUYER, T0, actor="t")
    assert two.virtual_x == one.virtual_x
    assert (await world.call(BUYER, XE))[cv.ACTION] == cv.ACTION_COLLECT
    out = await world.call(BUYER, XE, two.extension, 1)
    assert (out[cv.ACTION], out[cv.DIAL_NUMBER], out[cv.BINDING]) == (
        "bridge", MAIN, two.binding_id)


async def _two_orders_extensions(world: World) -> tuple[str, str]:
    return await _two_orders(world)


async def test_stranger_is_asked_then_refused_and_axb_numbers_are_untouched(
        world: World, cipher: BuyerCipher) -> None:
    assert (await world.call(STRANGER, XE))[cv.ACTION] == cv.ACTION_COLLECT
    ext1, _ = await _two_orders_extensions(world)
    out = await world.call(STRANGER, XE, ext1, 3)  # someone else's extension: wrong for them
    assert (out[cv.ACTION], out[cv.REASON]) == ("reject", "extension_invalid")
    axb = await world.bindings.issue("shop1", "o9", "", MAIN, "13900000009", T0, actor="t",
                                     mode=NumberMode.AXB)
    assert axb.virtual_x == "+86" + XA and axb.extension == ""
    plain = await world.call(MAIN, XA)
    assert (plain[cv.ACTION], plain[cv.DIAL_NUMBER], plain[cv.EXT]) == (
        "bridge", "13900000009", "")
