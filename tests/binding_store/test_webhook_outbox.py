"""The outbox on SQLite and PostgreSQL: every binding change, routing decision and call record
writes its events in its own transaction (a change that fails writes none, a repeat writes
none again), with masked buyers only."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from binding_store.attempt_writer import AttemptWriter, attempt_row, write_attempts
from binding_store.binding_policy import BindingPolicy
from binding_store.bindings import BindingStore
from binding_store.call_log import CallLogStore
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.models import CallAttempt as AttemptRow
from binding_store.outbox import Outbox
from binding_store.webhook_models import WebhookEvent
from routing.cdr import CdrEvent
from routing.errors import PoolExhausted
from routing.model import Action, CallAttempt, Direction
from routing.reasons import Reason
from tests.binding_store.test_bindings_helpers import A1, A2, B1, NOW, X1, X2, seed

PLAIN_B = B1.removeprefix("+86")


async def events(db: Database) -> list[tuple[str, str, dict[str, object]]]:
    async with db.session() as s:
        rows = (await s.scalars(select(WebhookEvent).order_by(WebhookEvent.id))).all()
    return [(r.type, r.stream, json.loads(r.payload)) for r in rows]


def bindings(db: Database, cipher: BuyerCipher, *, enabled: bool = True) -> BindingStore:
    return BindingStore(db, cipher, policy=BindingPolicy(cooldown=timedelta(0)),
                        outbox=Outbox(enabled=enabled))


async def test_each_binding_change_writes_its_event(database: Database,
                                                    cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "bj", None), (X2, "bj", None)])
    store = bindings(database, cipher)
    first = await store.issue("s1", "o1", "buyer-1", A1, B1, NOW, actor="t")
    switched = await store.switch_caller(first.binding_id, A2, actor="t", now=NOW)
    await store.release(switched.binding.binding_id, actor="t", now=NOW)
    await store.issue("s1", "o2", "buyer-1", A1, B1, NOW, ttl=timedelta(minutes=5), actor="t")
    assert await store.expire_due(NOW + timedelta(minutes=4)) == 0
    assert await store.expire_due(NOW + timedelta(minutes=6)) == 1
    assert await store.expire_due(NOW + timedelta(minutes=7)) == 0  # expired once, one event
    found = await events(database)
    assert [(t, s) for t, s, _ in found] == [
        ("binding.created", "order:s1:o1"), ("binding.switched", "order:s1:o1"),
        ("binding.released", "order:s1:o1"), ("binding.created", "order:s1:o2"),
        ("binding.expired", "order:s1:o2")]
    created = found[0][2]["binding"]
    assert isinstance(created, dict)
    assert created["buyer_masked"] == "139****0001" and created["caller_a"] == A1
    switch = found[1][2]
    assert switch["previous"]["binding_id"] == first.binding_id  # type: ignore[index]
    assert switch["binding"]["caller_a"] == A2  # type: ignore[index]
    assert found[4][2]["binding"]["state"] == "expired"  # type: ignore[index]
    assert PLAIN_B not in json.dumps(found)


async def test_a_change_that_fails_or_repeats_writes_no_event(database: Database,
                                                              cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "bj", None)])
    store = bindings(database, cipher)
    await store.issue("s1", "o1", "buyer-1", A1, B1, NOW, actor="t")
    await store.issue("s1", "o1", "buyer-1", A1, B1, NOW, actor="t")  # the same one again
    with pytest.raises(PoolExhausted):
        await store.issue("s1", "o2", "buyer-2", A1, "+8613900000002", NOW, actor="t")
    assert [t for t, _, _ in await events(database)] == ["binding.created"]
    silent = bindings(database, cipher, enabled=False)
    await silent.release((await silent.active_for_order("s1", "o1", NOW)).binding_id,  # type: ignore[union-attr]
                         actor="t", now=NOW)
    assert len(await events(database)) == 1  # webhooks.enabled = false: no outbox rows


def decision(uid: str, *, action: Action, reason: Reason, binding: str = "",
             direction: Direction | None = None) -> CallAttempt:
    return CallAttempt(uniqueid=uid, linkedid=uid, at=NOW, caller_masked="138****0001",
                       caller_a=A1 if direction else "", virtual_x=X1, action=action,
                       reason=reason, direction=direction, binding_id=binding,
                       shop_id="s1" if binding else "", order_id="o1" if binding else "",
                       system_name="pbx")


def cdr(uid: str, binding: str, *, answered: bool) -> CdrEvent:
    start = NOW + timedelta(seconds=1)
    return CdrEvent(system_name="pbx", uniqueid=uid, linkedid=uid, sequence=1, start=start,
                    answer=start + timedelta(seconds=3) if answered else None,
                    end=start + timedelta(seconds=33), duration=33,
                    billsec=30 if answered else 0,
                    disposition="ANSWERED" if answered else "NO ANSWER", lastapp="Dial",
                    hangup_cause=16 if answered else 19, pn_binding=binding, pn_shop="s1",
                    pn_order="o1", pn_x=X1, pn_reason="bridged", pn_direction="merchant",
                    src=A1, pn_caller=A1)


async def test_an_attempt_written_again_in_a_later_batch_writes_no_second_event(
        database: Database) -> None:
    await seed(database, pool=[(X1, "bj", None)])
    outbox = Outbox()
    first = [decision(f"pbx-1764331200.{i}", action=Action.REJECT,
                      reason=Reason.CALLER_NOT_AUTHORIZED) for i in range(1, 4)]
    await write_attempts(database, [attempt_row(a) for a in first], outbox, first)
    # a retried batch: two already stored, one new
    again = [first[0], first[2], decision("pbx-1764331200.9", action=Action.REJECT,
                                          reason=Reason.CALLER_NOT_AUTHORIZED)]
    await write_attempts(database, [attempt_row(a) for a in again], outbox, again)
    started = [s for t, s, _ in await events(database) if t == "call.started"]
    assert sorted(started) == [f"call:pbx-1764331200.{i}" for i in (1, 2, 3, 9)]


async def test_each_stored_attempt_has_its_events_and_no_other_does(
        database: Database, cipher: BuyerCipher) -> None:
    """The same call decided again later: SQLite stores a call once whatever its time,
    PostgreSQL (partitioned by time) stores the later one too; either way events go with
    stored attempts only, with the binding's masked buyer, in the order of the batch."""
    await seed(database, pool=[(X1, "bj", None)])
    outbox = Outbox()
    view = await bindings(database, cipher).issue("s1", "o1", "buyer-1", A1, B1, NOW,
                                                  actor="t")
    bridged = decision("pbx-1764331200.1", action=Action.BRIDGE, reason=Reason.BRIDGED,
                       binding=view.binding_id, direction=Direction.MERCHANT)
    later = replace(bridged, at=NOW + timedelta(seconds=5))
    refused = decision("pbx-1764331200.2", action=Action.REJECT,
                       reason=Reason.CALLER_NOT_AUTHORIZED)
    unknown = replace(refused, uniqueid="pbx-1764331200.3", linkedid="pbx-1764331200.3",
                      binding_id="gone")  # a binding id no row has: no buyer facts
    await write_attempts(database, [attempt_row(bridged)], outbox, [bridged])
    batch = [refused, later, unknown, refused]
    await write_attempts(database, [attempt_row(a) for a in batch], outbox, batch)
    async with database.session() as s:
        stored = (await s.execute(select(AttemptRow.uniqueid).order_by(AttemptRow.id))
                  ).scalars().all()
    started = [(st, d) for t, st, d in await events(database) if t == "call.started"]
    assert [st.removeprefix("call:") for st, _ in started] == list(stored)
    expected = ["pbx-1764331200.1", "pbx-1764331200.2", "pbx-1764331200.3"]
    if database.dialect == "postgresql":
        expected.insert(2, "pbx-1764331200.1")  # the later decision, stored too
    assert list(stored) == expected
    facts = {(d["uniqueid"], d["buyer_masked"], d["buyer_id"]) for _, d in started}
    assert ("pbx-1764331200.1", "139****0001", "buyer-1") in facts
    assert ("pbx-1764331200.3", None, None) in facts


async def test_calls_write_decision_and_record_events_once(database: Database,
                                                           cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "bj", None)])
    outbox = Outbox()
    view = await bindings(database, cipher).issue("s1", "o1", "buyer-1", A1, B1, NOW,
                                                  actor="t")
    writer = AttemptWriter(database, batch_size=10, linger=0.01, outbox=outbox)
    writer.start()
    bridged = decision("pbx-1764331200.1", action=Action.BRIDGE, reason=Reason.BRIDGED,
                       binding=view.binding_id, direction=Direction.MERCHANT)
    refused = decision("pbx-1764331200.2", action=Action.REJECT,
                       reason=Reason.CALLER_NOT_AUTHORIZED)
    for attempt in (bridged, refused, bridged):  # the third is a repeat
        await writer.record(attempt)
    await writer.close()
    log = CallLogStore(database, outbox=outbox)
    assert await log.write_batch([cdr(bridged.uniqueid, view.binding_id, answered=True)]) == 1
    assert await log.write_batch([cdr(bridged.uniqueid, view.binding_id, answered=True)]) == 0
    calls = [(t, s, d) for t, s, d in await events(database) if t != "binding.created"]
    assert [(t, s) for t, s, _ in calls] == [
        ("call.started", "call:pbx-1764331200.1"), ("call.started", "call:pbx-1764331200.2"),
        ("call.rejected", "call:pbx-1764331200.2"), ("call.ringing", "call:pbx-1764331200.1"),
        ("call.answered", "call:pbx-1764331200.1"), ("call.ended", "call:pbx-1764331200.1"),
        ("cdr", "call:pbx-1764331200.1")]
    started, _, rejected, ringing, answered, ended, record = (d for _, _, d in calls)
    assert started["buyer_masked"] == "139****0001" and started["a_reached"] == A1
    assert started["source"] == "decision" and started["observed"] is True
    assert rejected["reason"] == "caller_not_authorized" and rejected["q850_cause"] == 21
    assert rejected["hangup_by"] == "privnum"
    assert ringing["observed"] is False and ringing["ringing_at"] is None
    assert ringing["alerted"] is True
    assert answered["answered_at"].startswith("2026-03-01T12:00:04")  # type: ignore[union-attr]
    assert (ended["duration"], ended["billable_seconds"], ended["q850_cause"]) == (33, 30, 16)
    assert ended["hangup_by"] is None and ended["hangup_by_observed"] is False
    assert record["record"]["chain_seq"] == 1  # type: ignore[index]
    assert PLAIN_B not in json.dumps(calls)


async def test_every_reason_code_flows_through_call_rejected(database: Database) -> None:
    """New reject reasons need no change here: code, text and cause come from the enum."""
    writer = AttemptWriter(database, outbox=Outbox())
    refusals = [r for r in Reason if r is not Reason.BRIDGED]
    for i, reason in enumerate(refusals):
        await writer.record(replace(decision(f"pbx-1764331201.{i}", action=Action.REJECT,
                                             reason=reason)))
    rejected = [d for t, _, d in await events(database) if t == "call.rejected"]
    assert [(d["reason"], d["reason_text"], d["q850_cause"]) for d in rejected] == [
        (r.value, r.text, r.hangup_cause) for r in refusals]
