"""The call log from a session recorded on the lab with the current dialplan (buyer numbers
kept off the wire): three calls as privnum's AMI user received them (``lab22/tap.ami``) and as
the safety-net CSV wrote them (``lab22/cdr.csv``). Both paths give the same records, masked,
with the new ``lastdata`` shape (``Dial(Local/out@privnum-dial/n,...)``).

Recorded with ``PRIVNUM_E2E_RECORD_DIR=tests/fixtures/ami/lab22 pytest -m asterisk
tests/e2e/test_ami_privacy.py``: a merchant call A -> X -> B, B's callback, a stranger refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from agi.ami_listener import AmiListener, AmiListenerConfig
from agi.ami_reconcile import reconcile_file
from binding_store.all_models import Base
from binding_store.call_log import CallLogStore
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from binding_store.models import Binding, PoolNumber, Shop
from tests.agi.fake_ami import FakeAmi, events_of

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "ami" / "lab22"
TAP, CSV = HERE / "tap.ami", HERE / "cdr.csv"
SECRETS = ("13900000001", "13900000002")  # the buyer and the stranger (national digits)
BINDING, SHOP, A, X = "a9b7985fd8bc467bb6a7a0b70bd79cb6", "tap-1-e82f", "+8613800000001", \
    "+8617000000001"
RECORDED = datetime(2026, 12, 3, 19, 25, tzinfo=UTC)  # the lab's zone is UTC
MERCHANT_CALL, CALLBACK, REFUSED = (
    "pnlab-1796325925.1", "pnlab-1796325928.8", "pnlab-1796325931.15")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'cdr.db'}", timeout=5.0)
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with database.session() as s:
        s.add(Shop(id=SHOP, name=SHOP, service_state="enabled", created_at=RECORDED,
                   updated_at=RECORDED))
        s.add(PoolNumber(number=X, created_at=RECORDED))
        await s.flush()
        s.add(Binding(id=BINDING, shop_id=SHOP, order_id="order-tap", buyer_id="buyer-tap",
                      caller_a=A, virtual_x=X, buyer_cipher=b"x", buyer_bidx="bidx",
                      buyer_masked="139****0001", created_at=RECORDED,
                      expires_at=RECORDED + timedelta(hours=24)))
        await s.commit()
    yield database
    await database.dispose()


async def _until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)


async def _records(db: Database) -> dict[str, dict[str, Any]]:
    async with db.session() as s:
        rows = (await s.execute(select(Cdr))).scalars().all()
    skip = {"id", "chain_seq", "source", "ingested_at", "row_hash", "prev_hash"}
    return {r.uniqueid: {k: v for k, v in vars(r).items()
                         if not k.startswith("_") and k not in skip} for r in rows}


def test_the_recording_carries_no_buyer_digits() -> None:
    for path in (TAP, CSV):
        text = path.read_text(encoding="utf-8")
        digits = "".join(ch for ch in text if ch.isdigit())
        for number in SECRETS:
            assert number not in text and number not in digits, path.name


async def test_ami_and_csv_give_the_same_masked_records(db: Database, tmp_path: Path) -> None:
    server = FakeAmi([events_of(TAP)], secret="s3cret")
    port = await server.start()
    listener = AmiListener(AmiListenerConfig(port=port, secret="s3cret", batch_seconds=0.02,
                                             reconnect_delay=0.05), CallLogStore(db))
    task = asyncio.create_task(listener.run())
    await _until(lambda: listener.stats.stored == 3 and not listener.queued)
    await listener.stop()
    await task
    await server.close()
    from_ami = await _records(db)

    merchant, callback, refused = (from_ami[u] for u in (MERCHANT_CALL, CALLBACK, REFUSED))
    assert (merchant["direction"], merchant["outcome"], merchant["caller_a"]) == (
        "merchant", "answered", A)
    assert (merchant["binding_id"], merchant["buyer_masked"]) == (BINDING, "139****0001")
    assert (callback["direction"], callback["outcome"], callback["caller_masked"]) == (
        "callback", "answered", "139****0001")
    assert (refused["outcome"], refused["reason"], refused["caller_masked"]) == (
        "rejected", "caller_not_authorized", "139****0002")
    assert refused["hangup_cause"] == 21  # the reason's cause (the prompt was cut short)
    assert all(r["system_name"] == "pnlab" and r["virtual_x"] == X for r in from_ami.values())
    assert not [n for n in SECRETS for r in from_ami.values() if n in str(r)]

    # The same three calls from the safety-net CSV only (a fresh call log).
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.tables["cdrs"].drop)
        await conn.run_sync(Base.metadata.tables["cdrs"].create)
        await conn.run_sync(Base.metadata.tables["cdr_chain"].drop)
        await conn.run_sync(Base.metadata.tables["cdr_chain"].create)
    result = await reconcile_file(CSV, CallLogStore(db), zone=UTC, system_name="pnlab",
                                  now=RECORDED + timedelta(hours=1))
    assert (result.read, result.stored, result.errors) == (6, 3, [])
    assert await _records(db) == from_ami
    assert not result.missing_file
