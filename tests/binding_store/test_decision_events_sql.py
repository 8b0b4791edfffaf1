"""PostgreSQL builds the call events of a batch of attempts itself
(binding_store.decision_events_sql): each row must be the one routing.events gives in Python,
to the byte, for every reason, action, direction, empty field and awkward text."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import timedelta, timezone

import pytest
from sqlalchemy import select

from binding_store.attempt_writer import attempt_row, row_problem, write_attempts
from binding_store.binding_policy import BindingPolicy
from binding_store.bindings import BindingStore
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.decision_events_sql import INSERT_WITH_EVENTS, reasons_document
from binding_store.outbox import Outbox, encode
from binding_store.recordset_insert import as_document
from binding_store.webhook_models import WebhookEvent
from routing.events import BindingFacts, decision_events
from routing.model import Action, CallAttempt, Direction
from routing.reasons import Reason
from tests.binding_store.test_bindings_helpers import A1, B1, NOW, X1, seed

pytestmark = pytest.mark.postgres

# What a field may hold that its JSON text must carry exactly: quotes, a backslash, other
# scripts, a tab, a newline and another control character.
AWKWARD = 'o"1\\\u00e9\u4e2d\t\n\x01'


def attempts(binding_id: str) -> list[CallAttempt]:
    """Every reason with both actions, every direction, each optional field empty and set."""
    out = []
    shapes = itertools.product(
        Reason, Action, (None, *Direction),
        ("", "pbx-9"),  # linkedid: empty means the uniqueid stands for the call
        (binding_id, "", "gone"),  # a stored binding (buyer facts), none, an unknown one
        (None, "", "12"),  # extension
        ("", "grace"),  # mark
    )
    for n, (reason, action, direction, linkedid, binding, extension, mark) in enumerate(shapes):
        at = NOW + timedelta(seconds=n, microseconds=(n * 7919) % 1_000_000 if n % 3 else 0)
        if n % 5 == 0:  # given in another zone: the payload says UTC, with a Z
            at = at.astimezone(timezone(timedelta(hours=8)))
        out.append(CallAttempt(
            uniqueid=f"1764331200.{n}", linkedid=linkedid and f"{linkedid}.{n}", at=at,
            caller_masked="" if n % 7 == 0 else "138****0001",
            caller_a="" if n % 4 == 0 else A1, virtual_x="" if n % 11 == 0 else X1,
            action=action, reason=reason, direction=direction, binding_id=binding,
            shop_id="" if n % 6 == 0 else "s1",
            order_id=AWKWARD if n % 9 == 0 else ("" if n % 2 else "o1"),
            system_name="" if n % 8 == 0 else "pbx", mark=mark,
            extension=extension))
    return out


async def stored_events(db: Database) -> list[WebhookEvent]:
    async with db.session() as s:
        return list((await s.scalars(select(WebhookEvent).order_by(WebhookEvent.id))).all())


async def test_postgresql_writes_the_events_python_builds(pg_database: Database,
                                                          cipher: BuyerCipher) -> None:
    await seed(pg_database, pool=[(X1, "bj", None)])
    view = await BindingStore(pg_database, cipher, policy=BindingPolicy(),
                              outbox=Outbox(enabled=False)).issue(
        "s1", "o1", "buyer-1", A1, B1, NOW, actor="t")
    facts = BindingFacts(buyer_masked=view.buyer_masked, buyer_id=view.buyer_id)
    batch = attempts(view.binding_id)
    # the same call again in one batch, repeated and decided again a second later (PostgreSQL
    # stores both decisions, partitioned by time): one pair of events, the first decision's
    batch[3:3] = [batch[1], replace(batch[1], at=batch[1].at + timedelta(seconds=1))]
    rows = [attempt_row(a) for a in batch]
    assert [row_problem(r) for r in rows] == [None] * len(rows)
    await write_attempts(pg_database, rows, Outbox(), batch)

    expected = []
    seen = set()
    for attempt in batch:
        if (attempt.system_name, attempt.uniqueid) in seen:
            continue
        seen.add((attempt.system_name, attempt.uniqueid))
        of_call = facts if attempt.binding_id == view.binding_id else BindingFacts()
        expected += decision_events(attempt, of_call)
    got = await stored_events(pg_database)
    assert len(got) == len(expected) > 2 * len(list(Reason)) * 2 * 3
    latest = max(a.at for a in batch)
    for row, event in zip(got, expected, strict=True):
        assert (row.type, row.stream, row.shop_id) == (event.type.value, event.stream,
                                                       event.shop_id)
        assert row.payload == encode(dict(event.data))
        assert row.occurred_at == event.occurred_at
        assert row.created_at == latest
        assert row.event_id.startswith("evt_") and len(row.event_id) == 36
        assert row.dispatched_at is None
    assert len({row.event_id for row in got}) == len(got)
    # a later batch repeating a stored call writes no event for it; a new one has its own
    again = [batch[0], replace(batch[0], uniqueid="1764331299.1", linkedid="")]
    await write_attempts(pg_database, [attempt_row(a) for a in again], Outbox(), again)
    after = await stored_events(pg_database)
    assert [(r.stream, r.payload) for r in after[len(got):]] == [
        (e.stream, encode(dict(e.data))) for e in decision_events(again[1], facts)]



async def test_a_reason_the_parameter_does_not_list_still_has_its_events(
        pg_database: Database) -> None:
    """Never a silent drop: a code missing from the reasons parameter (a Reason added
    without its entry) gets its events with the code alone."""
    refused = replace(attempts("")[0], action=Action.REJECT, reason=Reason.QUIET_HOURS,
                      binding_id="")
    listed = [r for r in json.loads(reasons_document()) if r["code"] != Reason.QUIET_HOURS]
    async with pg_database.session() as s:
        await s.execute(INSERT_WITH_EVENTS, {**as_document([attempt_row(refused)]),
                                             "reasons": json.dumps(listed)})
        await s.commit()
    got = await stored_events(pg_database)
    assert [row.type for row in got] == ["call.started", "call.rejected"]
    for row in got:
        payload = json.loads(row.payload)
        assert (payload["reason"], payload["reason_text"], payload["q850_cause"]) == (
            "quiet_hours", None, None)
