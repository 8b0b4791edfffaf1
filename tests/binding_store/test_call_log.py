"""The call log on SQLite and PostgreSQL: ingest, idempotency, the shop query, orphans."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from binding_store.call_log import CallLogStore
from binding_store.call_log_audit import verify
from binding_store.call_log_query import export_rows, list_calls
from binding_store.cdr_models import Cdr
from binding_store.db import Database
from binding_store.models import CallAttempt
from routing.call_log_views import CallLogQuery, LinkTemplates, Outcome
from routing.cdr import billable
from routing.errors import CallLogQueryError
from tests.fixtures.ami.scenario import (
    ALL_CALLS,
    CALL_DAY,
    FORBIDDEN,
    MERCHANT_A,
    NOW,
    SHOP,
    UID_AGI_DOWN,
    UID_REJECTED,
    UID_SIP,
    cdr_events,
    seed,
)

LINKS = LinkTemplates(order="https://m.example/orders/{order_id}",
                      chat="https://m.example/im?order={order_id}&buyer={buyer_id}")


async def _rows(db: Database) -> list[Cdr]:
    async with db.session() as s:
        return list((await s.scalars(select(Cdr).order_by(Cdr.chain_seq))).all())


async def test_ingest_one_record_per_call_and_replay_is_idempotent(database: Database) -> None:
    await seed(database)
    store = CallLogStore(database)
    events = cdr_events()
    assert await store.write_batch(events) == ALL_CALLS
    assert await store.write_batch(events) == 0
    assert await store.write_batch(events[5:9], source="csv") == 0
    rows = await _rows(database)
    assert len(rows) == ALL_CALLS
    by_uid = {r.uniqueid: r for r in rows}
    sip = by_uid[UID_SIP]  # two forks of the same channel, merged
    assert (sip.duration, sip.billsec, sip.outcome) == (1, 1, Outcome.ANSWERED)
    assert sip.buyer_masked == "139****0003" and sip.buyer_id == "buyer-3"
    assert sip.caller_a == MERCHANT_A and sip.direction == "merchant"
    assert sip.start_utc == CALL_DAY.replace(second=49)
    rejected = by_uid[UID_REJECTED]
    assert (rejected.outcome, rejected.reason, rejected.hangup_cause) == (
        "rejected", "binding_expired", 21)
    failed = by_uid[UID_AGI_DOWN]  # no attempt: the routing service was down
    assert (failed.outcome, failed.reason, failed.shop_id, failed.caller_a) == (
        "failed", "routing_error", "", "")
    assert failed.caller_masked == "138****0001"
    assert (await verify(database)).ok


async def test_no_plain_buyer_number_in_any_stored_column(database: Database) -> None:
    await seed(database, attempts=False)
    await CallLogStore(database).write_batch(cdr_events())
    for row in await _rows(database):
        text = " ".join(str(getattr(row, c.key)) for c in Cdr.__table__.columns)
        assert not [n for n in FORBIDDEN if n in text], row.uniqueid


async def test_concurrent_appends_keep_one_chain(database: Database) -> None:
    await seed(database)
    store = CallLogStore(database)
    calls = billable(cdr_events())
    results = await asyncio.gather(*(store.write_batch([c]) for c in calls),
                                   *(store.write_batch([c]) for c in calls))
    assert sum(results) == ALL_CALLS
    report = await verify(database)
    assert report.ok, report.problems
    assert report.head_seq == ALL_CALLS


async def test_shop_query_defaults_filters_pages(database: Database) -> None:
    await seed(database)
    store = CallLogStore(database)
    await store.write_batch(cdr_events())
    page = await list_calls(database, CallLogQuery(shop_id=SHOP), NOW, LINKS)
    assert page.window.since == NOW - timedelta(days=1)
    starts = [e.record.start_utc for e in page.entries]
    assert len(page.entries) == 5 and starts == sorted(starts, reverse=True)
    first = page.entries[0].record
    assert first.uniqueid == UID_SIP
    assert page.entries[0].order_link == "https://m.example/orders/O-3"
    assert page.entries[0].chat_link == "https://m.example/im?order=O-3&buyer=buyer-3"
    rejected = [e for e in page.entries if e.record.outcome == "rejected"]
    assert [e.reason_text for e in rejected] == ["number expired"]
    # a day later the default window is empty; asking 2 days back finds them
    later = NOW + timedelta(days=1, hours=1)
    assert not (await list_calls(database, CallLogQuery(shop_id=SHOP), later, LINKS)).entries
    back = CallLogQuery(shop_id=SHOP, since=later - timedelta(days=2))
    assert len((await list_calls(database, back, later, LINKS)).entries) == 5
    # filters
    only = await list_calls(database, CallLogQuery(shop_id=SHOP, order_id="O-2"), NOW, LINKS)
    assert {e.record.order_id for e in only.entries} == {"O-2"} and len(only.entries) == 2
    ans = await list_calls(database, CallLogQuery(shop_id=SHOP, outcome="answered"), NOW, LINKS)
    assert len(ans.entries) == 4
    by_caller = CallLogQuery(shop_id=SHOP, caller=MERCHANT_A)
    assert len((await list_calls(database, by_caller, NOW, LINKS)).entries) == 5
    nobody = CallLogQuery(shop_id=SHOP, caller="+8613800000009")
    assert not (await list_calls(database, nobody, NOW, LINKS)).entries
    # cursor pagination: 2 + 2 + 1, no overlap, same order
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        p = await list_calls(database, CallLogQuery(shop_id=SHOP, limit=2, cursor=cursor), NOW,
                             LINKS)
        seen += [e.record.uniqueid for e in p.entries]
        cursor = p.next_cursor
    assert cursor is None
    assert seen == [e.record.uniqueid for e in page.entries]


async def test_more_than_30_days_back_is_an_error(database: Database) -> None:
    with pytest.raises(CallLogQueryError, match="30 days"):
        await list_calls(database, CallLogQuery(shop_id=SHOP, since=NOW - timedelta(days=31)),
                         NOW, LINKS)
    ok = CallLogQuery(shop_id=SHOP, since=NOW - timedelta(days=30))
    assert (await list_calls(database, ok, NOW, LINKS)).entries == ()
    with pytest.raises(CallLogQueryError, match="outcome"):
        await list_calls(database, CallLogQuery(shop_id=SHOP, outcome="won"), NOW, LINKS)
    with pytest.raises(CallLogQueryError, match="cursor"):
        await list_calls(database, CallLogQuery(shop_id=SHOP, cursor="!!"), NOW, LINKS)


async def test_attempt_without_cdr_is_closed_once_after_grace(database: Database) -> None:
    await seed(database)
    store = CallLogStore(database)
    async with database.session() as s:
        s.add(CallAttempt(system_name="", uniqueid="lost-1", linkedid="lost-1", at=CALL_DAY,
                          action="bridge", reason="bridged", direction="merchant",
                          binding_id="B-9001", shop_id=SHOP, order_id="O-1",
                          caller_masked="138****0001", caller_a=MERCHANT_A, virtual_x="9001"))
        await s.commit()
    await store.write_batch(cdr_events())
    assert await store.close_orphans(CALL_DAY + timedelta(minutes=1), 3600) == 0
    assert await store.close_orphans(NOW + timedelta(hours=2), 3600) == 1
    assert await store.close_orphans(NOW + timedelta(hours=3), 3600) == 0
    rows = {r.uniqueid: r for r in await _rows(database)}
    lost = rows["lost-1"]
    assert (lost.source, lost.outcome, lost.disposition) == ("attempt", "unknown", "NO CDR")
    assert lost.buyer_masked == "139****0001"
    assert len(rows) == ALL_CALLS + 1
    assert (await verify(database)).ok


async def test_export_streams_all_in_range_oldest_first(database: Database) -> None:
    await seed(database)
    await CallLogStore(database).write_batch(cdr_events())
    rows = [r async for r in export_rows(database, CALL_DAY, NOW, chunk=2)]
    assert len(rows) == ALL_CALLS
    starts = [r.record.start_utc for r in rows]
    assert starts == sorted(starts)
    shop_rows = [r async for r in export_rows(database, CALL_DAY, NOW, shop_id=SHOP)]
    assert len(shop_rows) == 5
    async with database.session() as s:
        assert await s.scalar(select(func.count()).select_from(Cdr)) == ALL_CALLS
