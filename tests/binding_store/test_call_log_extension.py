"""The extension entered on an extension-mode call, through the call log: from the routing
decision or the CDR's ``pn_ext`` into the record, its hash (only when set: older chains
verify unchanged), the shop query, the export and the call events."""

from __future__ import annotations

from dataclasses import replace

from binding_store.call_log import CallLogStore
from binding_store.call_log_audit import verify
from binding_store.db import Database
from routing.events import record_events
from tests.binding_store.call_log_columns import (
    assert_hashed_only_when_set,
    closed_orphan,
    exported,
    sample_record,
    set_decision,
    shop_page,
    stored_rows,
    tamper,
)
from tests.fixtures.ami.scenario import MERCHANT_A, UID_BRIDGED_9001, UID_SIP, cdr_events, seed


def test_the_hash_covers_the_extension_only_when_set() -> None:
    assert_hashed_only_when_set("extension", "0042", "0043")
    assert sample_record(extension="0042").display_x == "170 0000 0001 ext. 0042"
    assert sample_record().display_x == "170 0000 0001"


def test_call_events_carry_the_extension() -> None:
    for ext in ("0042", None):
        events = record_events(sample_record(extension=ext), chain_seq=1, row_hash="h")
        assert {e.data["extension"] for e in events if "extension" in e.data} == {ext}
        cdr = next(e for e in events if e.data.get("record"))
        assert cdr.data["record"]["extension"] == ext


async def test_the_extension_comes_from_the_decision_or_the_cdr(database: Database) -> None:
    await seed(database)
    await set_decision(database, UID_BRIDGED_9001, extension="0042")
    events = [replace(e, pn_ext="7") if e.uniqueid == UID_SIP else e for e in cdr_events()]
    await CallLogStore(database).write_batch(events)
    rows = await stored_rows(database)
    assert rows[UID_BRIDGED_9001].extension == "0042"
    assert rows[UID_SIP].extension == "7"  # no extension in its decision: the CDR's
    others = {r.extension for uid, r in rows.items() if uid not in (UID_BRIDGED_9001, UID_SIP)}
    assert others == {None}
    assert (await verify(database)).ok

    shown = await shop_page(database)
    assert shown[UID_BRIDGED_9001].extension == "0042"
    assert shown[UID_BRIDGED_9001].display_x.endswith(" ext. 0042")
    extensions = {r.record.uniqueid: r.record.extension for r in await exported(database)}
    assert extensions[UID_BRIDGED_9001] == "0042" and extensions[UID_SIP] == "7"


async def test_a_changed_extension_breaks_the_chain(database: Database) -> None:
    await seed(database)
    await CallLogStore(database).write_batch(
        [replace(e, pn_ext="12") if e.uniqueid == UID_SIP else e for e in cdr_events()])
    assert (await verify(database)).ok
    await tamper(database, UID_SIP, extension="13")
    assert not (await verify(database)).ok


async def test_an_orphan_attempt_keeps_its_extension(database: Database) -> None:
    await seed(database, attempts=False)
    row = await closed_orphan(database, action="reject", reason="extension_invalid",
                              direction=None, extension="99", caller_masked="138****0001",
                              caller_a=MERCHANT_A)
    assert (row.reason, row.extension) == ("extension_invalid", "99")
