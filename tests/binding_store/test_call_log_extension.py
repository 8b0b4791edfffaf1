"""The extension entered on an extension-mode call, through the call log: from the routing
decision or the CDR's ``pn_ext`` into the record, its hash (only when set: older chains
verify unchanged), the shop query, the export and the call events."""

from __future__ import annotations

from dataclasses import replace
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
from tests.fixtures.ami.scenario import (
    CALL_DAY,
    MERCHANT_A,
    NOW,
    SHOP,
    UID_BRIDGED_9001,
    UID_SIP,
    cdr_events,
    seed,
)

LINKS = LinkTemplates(order="", chat="")
AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _record(extension: str | None) -> CallRecord:
    return CallRecord(
        system_name="pbx", uniqueid="u1", linkedid="u1", shop_id="s1", order_id="o1",
        binding_id="b1", buyer_id="", caller_a="+8613800000001", caller_masked="138****0001",
        virtual_x="+8617000000001", buyer_masked="139****0001", start_utc=AT, answer_utc=None,
        end_utc=AT, duration=0, billsec=0, disposition="NO ANSWER", hangup_cause=19,
        direction=None, outcome=Outcome.NOT_ANSWERED, reason="bridged", source=Source.AMI,
        extension=extension)


def test_the_hash_covers_the_extension_only_when_set() -> None:
    axb = _record(None)
    assert "extension" not in axb.columns()
    # A row written before the column existed is read back with extension NULL: same hash.
    before = {k: v for k, v in axb.columns().items()}
    assert row_digest("0" * 64, 1, {**before, "extension": None}, AT) == row_digest(
        "0" * 64, 1, before, AT)
    with_ext = _record("0042")
    assert with_ext.columns()["extension"] == "0042"
    assert row_digest("0" * 64, 1, with_ext.columns(), AT) != row_digest(
        "0" * 64, 1, {**with_ext.columns(), "extension": "0043"}, AT)
    assert with_ext.display_x == "170 0000 0001 ext. 0042"
    assert axb.display_x == "170 0000 0001"


def test_call_events_carry_the_extension() -> None:
    for ext in ("0042", None):
        events = record_events(_record(ext), chain_seq=1, row_hash="h")
        assert {e.data["extension"] for e in events if "extension" in e.data} == {ext}
        cdr = next(e for e in events if e.data.get("record"))
        assert cdr.data["record"]["extension"] == ext


async def _rows(db: Database) -> dict[str, Cdr]:
    async with db.session() as s:
        return {r.uniqueid: r for r in (await s.scalars(select(Cdr))).all()}


async def test_the_extension_comes_from_the_decision_or_the_cdr(database: Database) -> None:
    await seed(database)
    async with database.session() as s:  # the decision of the 9001 call names an extension
        await s.execute(update(CallAttempt).where(CallAttempt.uniqueid == UID_BRIDGED_9001)
                        .values(extension="0042"))
        await s.commit()
    events = [replace(e, pn_ext="7") if e.uniqueid == UID_SIP else e for e in cdr_events()]
    await CallLogStore(database).write_batch(events)
    rows = await _rows(database)
    assert rows[UID_BRIDGED_9001].extension == "0042"
    assert rows[UID_SIP].extension == "7"  # no extension in its decision: the CDR's
    others = {r.extension for uid, r in rows.items() if uid not in (UID_BRIDGED_9001, UID_SIP)}
    assert others == {None}
    assert (await verify(database)).ok

    page = await list_calls(database, CallLogQuery(shop_id=SHOP, since=CALL_DAY - timedelta(
        hours=1), until=NOW), NOW, LINKS)
    shown = {e.record.uniqueid: e.record for e in page.entries}
    assert shown[UID_BRIDGED_9001].extension == "0042"
    assert shown[UID_BRIDGED_9001].display_x.endswith(" ext. 0042")
    exported = {r.record.uniqueid: r.record.extension
                async for r in export_rows(database, CALL_DAY - timedelta(hours=1), NOW)}
    assert exported[UID_BRIDGED_9001] == "0042" and exported[UID_SIP] == "7"


async def test_a_changed_extension_breaks_the_chain(database: Database) -> None:
    await seed(database)
    await CallLogStore(database).write_batch(
        [replace(e, pn_ext="12") if e.uniqueid == UID_SIP else e for e in cdr_events()])
    assert (await verify(database)).ok
    async with database.session() as s:
        await s.execute(update(Cdr).where(Cdr.uniqueid == UID_SIP).values(extension="13"))
        await s.commit()
    assert not (await verify(database)).ok


async def test_an_orphan_attempt_keeps_its_extension(database: Database) -> None:
    await seed(database, attempts=False)
    async with database.session() as s:
        s.add(CallAttempt(system_name="", uniqueid="lost-1", linkedid="lost-1", at=CALL_DAY,
                          action="reject", reason="extension_invalid", direction=None,
                          binding_id="", shop_id=SHOP, order_id="", extension="99",
                          caller_masked="138****0001", caller_a=MERCHANT_A, virtual_x="9001"))
        await s.commit()
    store = CallLogStore(database)
    assert await store.close_orphans(NOW + timedelta(hours=2), 3600) == 1
    rows = await _rows(database)
    assert (rows["lost-1"].reason, rows["lost-1"].extension) == ("extension_invalid", "99")
    assert (await verify(database)).ok
