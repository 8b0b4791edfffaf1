"""Quarantine of a virtual number (SQLite and PostgreSQL): out of allocation at once, its
active binding keeps routing calls, audited, evented in the same transaction; released back."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.models import AuditEvent
from binding_store.outbox import Outbox
from binding_store.quarantine import PoolQuarantine
from binding_store.route_lookup import StoreRouteLookup
from binding_store.webhook_models import WebhookEvent
from routing.decide import decide
from routing.errors import Conflict, NotFound, PoolExhausted
from routing.model import Action, CallRequest, PoolState
from tests.binding_store.test_bindings_helpers import A1, B1, B2, NOW, X1, seed, store


async def test_quarantined_x_leaves_allocation_but_its_binding_keeps_working(
        database: Database, cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher, cooldown=timedelta(0))
    bound = await bindings.issue("s1", "o1", "buyer-1", A1, B1, NOW, actor="t")
    quarantine = PoolQuarantine(database, Outbox())

    view = await quarantine.quarantine("170 0000 0001", "complaints", actor="op", now=NOW)
    assert (view.number, view.state, view.changed, view.active_bindings) == (
        X1, PoolState.QUARANTINED, True, 1)
    with pytest.raises(PoolExhausted):  # the only number is out of allocation
        await bindings.issue("s1", "o2", "buyer-2", A1, B2, NOW, actor="t")
    # the binding it carries still routes both ways
    lookup = StoreRouteLookup(database, cipher)
    for caller in (A1, B1):
        context = await lookup.find_for_call(caller, X1, NOW)
        assert decide(CallRequest(caller, X1, "u", "l"), context, NOW, 600).action is \
            Action.BRIDGE
    again = await quarantine.quarantine(X1, "again", actor="op", now=NOW)
    assert not again.changed

    released = await quarantine.release(X1, actor="op", now=NOW)
    assert released.state is PoolState.AVAILABLE and released.changed
    await bindings.release(bound.binding_id, actor="t", now=NOW)
    fresh = await bindings.issue("s1", "o2", "buyer-2", A1, B2, NOW, actor="t")
    assert fresh.virtual_x == X1  # back in allocation

    async with database.session() as s:
        audits = [(e.kind, e.subject, json.loads(e.detail)) for e in (await s.scalars(
            select(AuditEvent).order_by(AuditEvent.id))).all() if e.kind.startswith("pool.")]
        events = [(e.type, json.loads(e.payload)) for e in (await s.scalars(
            select(WebhookEvent).order_by(WebhookEvent.id))).all()
            if e.type.startswith("number.")]
    assert [(k, s, d["reason"], d["active_bindings"]) for k, s, d in audits] == [
        ("pool.quarantined", X1, "complaints", 1), ("pool.quarantine_released", X1, "", 1)]
    assert [(t, p["virtual_x"], p["reason"]) for t, p in events] == [
        ("number.quarantined", X1, "complaints"), ("number.quarantine_released", X1, None)]


async def test_release_of_a_number_not_quarantined_and_unknown_numbers(
        database: Database) -> None:
    await seed(database, pool=[(X1, "", None)])
    quarantine = PoolQuarantine(database)
    with pytest.raises(Conflict, match="not quarantined"):
        await quarantine.release(X1, actor="op", now=NOW)
    with pytest.raises(NotFound):
        await quarantine.quarantine("+8617000000099", "x", actor="op", now=NOW)
