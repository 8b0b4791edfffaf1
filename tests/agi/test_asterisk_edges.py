"""What Asterisk sends, checked at the edge, over a real socket on real SQLite and PostgreSQL:
the FastAGI server + RouteHandler + the batching AttemptWriter (as ``privnum serve`` runs them).

* a caller ID that only resembles the bound number (letters, ``*``, ``#``, other scripts'
  digits) is not it: the call is rejected;
* ids Asterisk supplies (``agi_uniqueid``, the linkedid argument) are stored and logged only in
  Asterisk's shape: an over-long one or one holding a phone number is replaced, and the call
  attempt is written like every other one.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from agi import channel_vars as cv
from agi.handlers import RouteHandler, RouteOptions
from agi.server import FastAgiServer
from binding_store import models as m
from binding_store.all_models import Base
from binding_store.attempt_writer import AttemptWriter
from binding_store.bindings import BindingStore
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.pool import PoolRepository
from binding_store.route_lookup import StoreRouteLookup
from binding_store.shops import ShopRepository
from tests.agi import helpers
from tests.agi.asterisk_parse import answer_variables
from tests.agi.fake_asterisk import ANSWER_STEPS, FakeAsterisk, SendLine, env_bytes, load_env_blocks

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
MAIN, BUYER, X = "13800000001", "13900000001", "17000000001"
ARABIC = str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668"
                                     "\u0669")
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))


@dataclass
class Line:
    db: Database
    server: FastAgiServer
    writer: AttemptWriter

    async def call(self, caller: str, uniqueid: str, linkedid: str = "", dialled: str = X
                   ) -> dict[str, str]:
        env = env_bytes(load_env_blocks()[0], script="route", args=[linkedid or uniqueid],
                        overrides={"agi_callerid": caller, "agi_extension": dialled,
                                   "agi_uniqueid": uniqueid})
        peer = FakeAsterisk(env, [*ANSWER_STEPS, SendLine("HANGUP")])
        result = await peer.run("127.0.0.1", self.server.port)
        assert result.ok, result.mismatch
        return {cv.DIAL_NUMBER: "", **answer_variables(result.commands)}

    async def attempts(self) -> list[m.CallAttempt]:
        async with self.db.session() as s:
            return list((await s.scalars(select(m.CallAttempt).order_by(m.CallAttempt.id))).all())


@contextlib.asynccontextmanager
async def serving(database: Database, cipher: BuyerCipher) -> AsyncIterator[Line]:
    await ShopRepository(database).enable("shop1", now=T0, main_account_id="main1",
                                          main_phone=MAIN, agreement_version="v1",
                                          accepted_by="main1")
    await PoolRepository(database).import_csv(io.StringIO(f"number,region\n{X},bj\n"), now=T0)
    await BindingStore(database, cipher).issue("shop1", "order1", "buyer1", MAIN, BUYER, T0,
                                               actor="main1")
    writer = AttemptWriter(database, batch_size=8, linger=0.01)
    writer.start()
    lookup = StoreRouteLookup(database, cipher)
    handler = RouteHandler(lookup, writer, lambda: T0,
                           RouteOptions(max_call_seconds=600, system_name="pnlab"))
    server = FastAgiServer({"route": handler}, port=0)
    await server.start()
    try:
        yield Line(database, server, writer)
    finally:
        await server.shutdown(grace=1.0)
        await writer.close()


@pytest.fixture
async def line(database: Database, cipher: BuyerCipher) -> AsyncIterator[Line]:
    """On SQLite and on PostgreSQL."""
    async with serving(database, cipher) as served:
        yield served


@pytest.fixture
async def lite_line(sqlite_url: str, cipher: BuyerCipher) -> AsyncIterator[Line]:
    """On SQLite only (what is checked does not depend on the database)."""
    database = Database(sqlite_url, timeout=5.0)
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        async with serving(database, cipher) as served:
            yield served
    finally:
        await database.dispose()


@pytest.mark.parametrize("caller", [
    "ABC" + MAIN, MAIN + "ABC", "*" + MAIN, MAIN + "#", "*86*" + MAIN, MAIN.translate(ARABIC),
    MAIN.translate(FULL_WIDTH), "+86" + MAIN.translate(ARABIC), "tel:+86" + MAIN,
])
async def test_a_caller_id_that_only_looks_like_the_bound_number_is_rejected(
        lite_line: Line, caller: str) -> None:
    assert (await lite_line.call(MAIN, "pnlab-1795869349.1"))[cv.ACTION] == "bridge"  # real A
    out = await lite_line.call(caller, "pnlab-1795869349.2")
    assert (out[cv.ACTION], out[cv.REASON], out[cv.DIAL_NUMBER]) == (
        "reject", "no_caller_id", "")


@pytest.mark.parametrize("dialled", ["ABC" + X, "*" + X, X + "#", X.translate(ARABIC)])
async def test_a_dialled_number_that_only_looks_like_x_is_not_x(lite_line: Line,
                                                               dialled: str) -> None:
    out = await lite_line.call(MAIN, "pnlab-1795869349.3", dialled=dialled)
    assert (out[cv.ACTION], out[cv.REASON]) == ("reject", "not_privacy_number")


async def test_ids_from_asterisk_are_bounded_and_never_carry_a_number(
        line: Line, caplog: pytest.LogCaptureFixture) -> None:
    """36 calls, four of them with ids that are not Asterisk's (the linkedid argument is the
    uniqueid unless given): all 36 attempts are written; no over-long id and no phone number
    reaches the database or the log."""
    odd = {
        7: ("x" * 70, ""),  # wider than the column: once killed the PostgreSQL writer
        13: (BUYER, ""),  # an assigned id that is the buyer's number
        21: ("pnlab-1795869349.21", BUYER),  # the linkedid argument is the buyer's number
        30: ("pnlab-1380000000.1", "13800000001.5"),  # the caller's own number, id-shaped
    }
    callers = (MAIN, BUYER, "13700000009")
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="privnum")  # ours at DEBUG; drivers echo SQL
    for n in range(36):
        uniqueid, linkedid = odd.get(n, (f"pnlab-1795869349.{n}", ""))
        decided = await line.call(callers[n % 3], uniqueid, linkedid)
        assert decided[cv.ACTION] == ("reject" if n % 3 == 2 else "bridge")
    await line.writer.close()
    rows = await line.attempts()
    assert len(rows) == 36 and line.writer.refused == 0
    by_at = dict(enumerate(rows))
    for n in odd:
        assert by_at[n].uniqueid != odd[n][0] or n == 21
    assert by_at[21].linkedid == by_at[21].uniqueid == "pnlab-1795869349.21"
    stored = " ".join(f"{r.uniqueid} {r.linkedid}" for r in rows)
    for secret in ("x" * 65, BUYER, "13800000001", "1380000000.1"):
        assert secret not in stored and secret not in caplog.text
    assert all(len(r.uniqueid) <= 64 and len(r.linkedid) <= 64 for r in rows)
    # one line per refused id: calls 7 and 13 (uniqueid and linkedid), 21, 30 (both)
    assert caplog.text.count("is not an Asterisk id") == 7


async def test_an_unknown_script_and_a_number_as_uniqueid_are_logged_masked(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=helpers.LOGGER_NAME)
    env = env_bytes(load_env_blocks()[0], script=f"route{BUYER}",
                    overrides={"agi_uniqueid": "+86" + BUYER})
    async with helpers.serving({"route": helpers.Recorder()}) as server:
        result = await FakeAsterisk(env).run("127.0.0.1", server.port)
        assert result.server_closed and server.stats.unknown_route == 1
    assert "outcome=unknown_route" in caplog.text and "uniqueid=pn-" in caplog.text
    assert BUYER not in caplog.text and "139****0001" in caplog.text
