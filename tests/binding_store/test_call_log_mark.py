"""How a call rule let a call through ("grace", "fallback"), through the call log: from the
routing decision into the record, its hash (only when set: older chains verify unchanged),
the shop query, the export and the ``cdr`` event."""

from __future__ import annotations

from binding_store.call_log import CallLogStore
from binding_store.call_log_audit import verify
from binding_store.db import Database
from routing.events import record_events
from scripts.cdr_export import EXPORT_COLUMNS, export_dict
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
from tests.fixtures.ami.scenario import BUYERS, UID_BRIDGED_9001, cdr_events, seed


def test_the_hash_covers_the_mark_only_when_set() -> None:
    assert_hashed_only_when_set("mark", "grace", "fallback")


def test_the_cdr_event_carries_the_mark() -> None:
    for mark in ("grace", None):
        events = record_events(sample_record(mark=mark), chain_seq=1, row_hash="h")
        cdr = next(e for e in events if e.data.get("record"))
        assert cdr.data["record"]["mark"] == mark


async def test_the_mark_comes_from_the_decision(database: Database) -> None:
    await seed(database)
    await set_decision(database, UID_BRIDGED_9001, mark="grace")  # a grace callback
    await CallLogStore(database).write_batch(cdr_events())
    rows = await stored_rows(database)
    assert rows[UID_BRIDGED_9001].mark == "grace"
    assert {r.mark for uid, r in rows.items() if uid != UID_BRIDGED_9001} == {None}
    assert (await verify(database)).ok

    shown = {uid: r.mark for uid, r in (await shop_page(database)).items()}
    assert shown[UID_BRIDGED_9001] == "grace"
    assert {m for uid, m in shown.items() if uid != UID_BRIDGED_9001} == {None}
    rows_out = await exported(database)
    assert EXPORT_COLUMNS[-2:] == ("extension", "mark")
    marks = {r.record.uniqueid: export_dict(r)["mark"] for r in rows_out}
    assert marks[UID_BRIDGED_9001] == "grace"
    assert {m for uid, m in marks.items() if uid != UID_BRIDGED_9001} == {""}
    assert not any(b in str(export_dict(r)) for r in rows_out for b in BUYERS.values())


async def test_a_changed_mark_breaks_the_chain(database: Database) -> None:
    await seed(database)
    await set_decision(database, UID_BRIDGED_9001, mark="fallback")
    await CallLogStore(database).write_batch(cdr_events())
    assert (await verify(database)).ok
    await tamper(database, UID_BRIDGED_9001, mark=None)
    assert not (await verify(database)).ok


async def test_an_orphan_attempt_keeps_its_mark(database: Database) -> None:
    await seed(database, attempts=False)
    row = await closed_orphan(database, action="bridge", reason="bridged",
                              direction="callback", mark="grace",
                              caller_masked="139****0001", caller_a="")
    assert (row.outcome, row.mark) == ("unknown", "grace")
