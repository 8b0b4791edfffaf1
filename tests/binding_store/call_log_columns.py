"""Shared pieces of the tests of the call log's optional columns (the extension entered, the
call-rule mark): a sample record, the hash rule they follow, and the store round trips."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from binding_store.call_log import CallLogStore
from binding_store.call_log_audit import verify
from binding_store.call_log_query import export_rows, list_calls
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from binding_store.models import CallAttempt
from routing.call_log_views import (
    CallLogQuery,
    CallRecord,
    ExportRow,
    LinkTemplates,
    Outcome,
    Source,
    row_digest,
)
from tests.fixtures.ami.scenario import CALL_DAY, NOW, SHOP

AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GENESIS = "0" * 64
SINCE = CALL_DAY - timedelta(hours=1)
LOST = "lost-1"


def sample_record(**changes: Any) -> CallRecord:
    """An answered call of shop s1 with none of the optional columns set, then ``changes``."""
    return replace(CallRecord(
        system_name="pbx", uniqueid="u1", linkedid="u1", shop_id="s1", order_id="o1",
        binding_id="b1", buyer_id="", caller_a="+8613800000001", caller_masked="138****0001",
        virtual_x="+8617000000001", buyer_masked="139****0001", start_utc=AT, answer_utc=AT,
        end_utc=AT, duration=5, billsec=5, disposition="ANSWERED", hangup_cause=16,
        direction=None, outcome=Outcome.ANSWERED, reason="bridged", source=Source.AMI),
        **changes)


def assert_hashed_only_when_set(column: str, value: str, other: str) -> None:
    """The row hash covers ``column`` when it is set, and a row written before the column
    existed (read back with NULL) keeps its hash: older chains verify unchanged."""
    plain = sample_record()
    assert column not in plain.columns()
    before = dict(plain.columns())
    assert row_digest(GENESIS, 1, {**before, column: None}, AT) == row_digest(
        GENESIS, 1, before, AT)
    with_value = sample_record(**{column: value})
    assert with_value.columns()[column] == value
    digest = row_digest(GENESIS, 1, with_value.columns(), AT)
    assert digest != row_digest(GENESIS, 1, {**with_value.columns(), column: other}, AT)
    assert digest != row_digest(GENESIS, 1, before, AT)


async def set_decision(db: Database, uniqueid: str, **values: Any) -> None:
    """Change the routing decision recorded for ``uniqueid`` before its CDR arrives."""
    async with db.session() as s:
        await s.execute(update(CallAttempt).where(CallAttempt.uniqueid == uniqueid)
                        .values(**values))
        await s.commit()


async def tamper(db: Database, uniqueid: str, **values: Any) -> None:
    """Change a stored call record behind the chain's back."""
    async with db.session() as s:
        await s.execute(update(Cdr).where(Cdr.uniqueid == uniqueid).values(**values))
        await s.commit()


async def stored_rows(db: Database) -> dict[str, Cdr]:
    async with db.session() as s:
        return {r.uniqueid: r for r in (await s.scalars(select(Cdr))).all()}


async def shop_page(db: Database) -> dict[str, CallRecord]:
    """The scenario shop's calls as its call log lists them."""
    page = await list_calls(db, CallLogQuery(shop_id=SHOP, since=SINCE, until=NOW), NOW,
                            LinkTemplates(order="", chat=""))
    return {e.record.uniqueid: e.record for e in page.entries}


async def exported(db: Database) -> list[ExportRow]:
    return [r async for r in export_rows(db, SINCE, NOW)]


async def closed_orphan(db: Database, **attempt: Any) -> Cdr:
    """A decision whose CDR never came (``attempt``: its columns), closed as an orphan; the
    chain still verifies."""
    async with db.session() as s:
        s.add(CallAttempt(system_name="", uniqueid=LOST, linkedid=LOST, at=CALL_DAY,
                          binding_id="", shop_id=SHOP, order_id="", virtual_x="9001",
                          **attempt))
        await s.commit()
    assert await CallLogStore(db).close_orphans(NOW + timedelta(hours=2), 3600) == 1
    assert (await verify(db)).ok
    return (await stored_rows(db))[LOST]
