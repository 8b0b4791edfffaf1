"""Batches written as one JSON document on PostgreSQL (binding_store.recordset_insert) store
every value exactly as a row-by-row insert would: the outbox's JSON payloads with quotes,
backslashes, unicode and control characters, the call attempts' texts, timestamps of any
offset; SQLite (a plain insert) holds the same."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType

from sqlalchemy import select

from binding_store import models as m
from binding_store.attempt_writer import attempt_row, write_attempts
from binding_store.db import Database
from binding_store.outbox import Outbox, encode
from binding_store.webhook_models import WebhookEvent
from routing.events import Event, EventType
from routing.model import Action, CallAttempt
from routing.reasons import Reason

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AWKWARD = ['say "hi"', "back\\slash \\n \\u0000", "naïve 中文 🙂 \u2028\u2029",
           "tab\tnew\nline\r\x01\x1f\x7f", "'; DROP TABLE webhook_events; --", "", "{}[],:"]


async def test_event_payloads_round_trip_exactly(database: Database) -> None:
    data = {"texts": AWKWARD, "nested": {"k\"ey": AWKWARD[1], "n": 1.5, "none": None},
            "big": 2**63, "flag": True}
    east = timezone(timedelta(hours=8))
    sent = [Event(EventType.CALL_STARTED, f"call:{i}:{AWKWARD[i]}", AWKWARD[-i - 1][:64],
                  NOW.astimezone(east) if i % 2 else None,
                  # an event's data may be any mapping (a read-only one too)
                  MappingProxyType({**data, "i": i}) if i % 3 else {**data, "i": i})
            for i in range(len(AWKWARD))]
    async with database.session() as s:
        await Outbox().write(s, sent, NOW)
        await s.commit()
    async with database.session() as s:
        stored = (await s.scalars(select(WebhookEvent).order_by(WebhookEvent.id))).all()
    assert [(r.type, r.stream, r.shop_id, r.occurred_at, r.created_at, r.dispatched_at)
            for r in stored] == [(e.type.value, e.stream, e.shop_id, e.occurred_at, NOW, None)
                                 for e in sent]
    assert [r.payload for r in stored] == [encode(dict(e.data)) for e in sent]
    assert [json.loads(r.payload) for r in stored] == [e.data for e in sent]
    assert len({r.event_id for r in stored}) == len(sent)


async def test_attempt_texts_round_trip_exactly(database: Database) -> None:
    base = CallAttempt(uniqueid="1700000000.1", linkedid="1700000000.1", at=NOW,
                       caller_masked="138****0001", caller_a="", virtual_x="+8617000000001",
                       action=Action.REJECT, reason=Reason.CALLER_NOT_AUTHORIZED,
                       direction=None, binding_id="", shop_id="", order_id="",
                       system_name="pbx")
    sent = [replace(base, uniqueid=f"1700000000.{i}", order_id=text[:64], shop_id=text[-64:],
                    at=NOW + timedelta(microseconds=i), mark=None if i % 2 else "grace",
                    extension=None if i % 3 else "12")
            for i, text in enumerate(AWKWARD)]
    await write_attempts(database, [attempt_row(a) for a in sent])
    await write_attempts(database, [attempt_row(a) for a in sent])  # a repeat: ignored
    columns = [c for c in m.CallAttempt.__table__.columns if c.name != "id"]
    async with database.session() as s:
        stored = (await s.execute(select(*columns).order_by(m.CallAttempt.at))).all()
    assert [dict(r._mapping) for r in stored] == [attempt_row(a) for a in sent]
