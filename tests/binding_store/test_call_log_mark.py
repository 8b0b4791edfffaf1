"""How a call rule let a call through ("grace", "fallback"), through the call log: from the
routing decision into the record, its hash (only when set: older chains verify unchanged),
the shop query, the export and the ``cdr`` event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    LinkTemplates,
    Outcome,
    Source,
    row_digest,
)
from routing.events import record_events
from scripts.cdr_export import EXPORT_COLUMNS, export_dict
from tests.fixtures.ami.scenario import (
    BUYERS,
    CALL_DAY,
    NOW,
    SHOP,
    UID_BRIDGED_9001,
    cdr_events,
    seed,
)

LINKS = LinkTemplates(order="", chat="")
AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _record(mark: str | None) -> CallRecord:
    return CallRecord(
        system_name="pbx", uniqueid="u1", linkedid="u1", shop_id="s1", order_id="o1",
        binding_id="b1", buyer_id="", caller_a="+8613800000001", caller_masked="139****0001",
        virtual_x="+8617000000001", buyer_masked="139****0001", start_utc=AT, answer_utc=AT,
        end_utc=AT, duration=5, billsec=5, disposition="ANSWERED", hangup_cause=16,
        direction=None, outcome=Outcome.ANSWERED, reason="bridged", source=Source.AMI,
        mark=mark)


def test_the_hash_covers_the_mark_only_when_set() -> None:
    plain = _record(None)
    assert "mark" not in plain.columns()
    # A row written before the column existed is read back with mark NULL: same hash.
    before = dict(plain.columns())
    assert row_digest("0" * 64, 1, {**before, "mark": None}, AT) == row_digest(
        "0" * 64, 1, before, AT)
    grace = _record("grace")
    assert grace.columns()["mark"] == "grace"
    assert row_digest("0" * 64, 1, grace.columns(), AT) != row_digest(
        "0" * 64, 1, {**grace.columns(), "mark": "fallback"}, AT)
    assert row_digest("0" * 64, 1, grace.columns(), AT) != row_digest(
        "0" * 64, 1, before, AT)


def test_the_cdr_event_carries_the_mark() -> None:
    for mark in ("grace", None):
        events = record_events(_record(mark), chain_seq=1, row_hash="h")
        cdr = next(e for e in events if e.data.get("record"))
        assert cdr.data["record"]["mark"] == mark


async def _rows(db: Database) -> dict[str, Cdr]:
    async with db.session() as s:
        return {r.uniqueid: r for r in (await s.scalars(select(Cdr))).all()}


async def test_the_mark_comes_from_the_decision(database: Database) -> None:
    await seed(database)
    async with database.session() as s:  # the decision of the 9001 call was a grace callback
        await s.execute(update(CallAttempt).where(CallAttempt.uniqueid == UID_BRIDGED_9001)
                        .values(mark="grace"))
        await s.commit()
    await CallLogStore(database).write_batch(cdr_events())
    rows = await _rows(database)
    assert rows[UID_BRIDGED_9001].mark == "grace"
    assert {r.mark for uid, r in rows.items() if uid != UID_BRIDGED_9001} == {None}
    assert (await verify(database)).ok

    page = await list_calls(database, CallLogQuery(shop_id=SHOP, since=CALL_DAY - timedelta(
        hours=1), until=NOW), NOW, LINKS)
    shown = {e.record.uniqueid: e.record.mark for e in page.entries}
    assert shown[UID_BRIDGED_9001] == "grace"
    assert {m for uid, m in shown.items() if uid != UID_BRIDGED_9001} == {None}
    exported = [r async for r in export_rows(database, CALL_DAY - timedelta(hours=1), NOW)]
    assert EXPORT_COLUMNS[-2:] == ("extension", "mark")
    marks = {r.record.uniqueid: export_dict(r)["mark"] for r in exported}
    assert marks[UID_BRIDGED_9001] == "grace"
    assert {m for uid, m in marks.items() if uid != UID_BRIDGED_9001} == {""}
    assert not any(b in str(export_dict(r)) for r in exported for b in BUYERS.values())


async def test_a_changed_mark_breaks_the_chain(database: Database) -> None:
    await seed(database)
    async with database.session() as s:
        await s.execute(update(CallAttempt).where(CallAttempt.uniqueid == UID_BRIDGED_9001)
                        .values(mark="fallback"))
        await s.commit()
    await CallLogStore(database).write_batch(cdr_events())
    assert (await verify(database)).ok
    async with database.session() as s:
        await s.execute(update(Cdr).where(Cdr.uniqueid == UID_BRIDGED_9001).values(mark=None))
        await s.commit()
    assert not (await verify(database)).ok


async def test_an_orphan_attempt_keeps_its_mark(database: Database) -> None:
    await seed(database, attempts=False)
    async with database.session() as s:
        s.add(CallAttempt(system_name="", uniqueid="lost-1", linkedid="lost-1", at=CALL_DAY,
                          action="bridge", reason="bridged", direction="callback",
                          binding_id="", shop_id=SHOP, order_id="", mark="grace",
                          caller_masked="139****0001", caller_a="", virtual_x="9001"))
        await s.commit()
    store = CallLogStore(database)
    assert await store.close_orphans(NOW + timedelta(hours=2), 3600) == 1
    rows = await _rows(database)
    assert (rows["lost-1"].outcome, rows["lost-1"].mark) == ("unknown", "grace")
    assert (await verify(database)).ok
