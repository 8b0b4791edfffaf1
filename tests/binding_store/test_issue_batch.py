"""Group commit on PostgreSQL: concurrent issues go out as a few ``privnum_issue``
statements, and each request still gets its own answer: refusals are the right domain
errors, good requests land with their audit and outbox rows, a binding past its expiry in
the way goes through the ORM path (which expires it with its event)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from binding_store.binding_policy import BindingPolicy
from binding_store.bindings import BindingStore
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.models import AuditEvent, Binding
from binding_store.outbox import Outbox
from binding_store.webhook_models import WebhookEvent
from routing.errors import (
    CallerNotApproved,
    NotFound,
    PoolExhausted,
    PrivnumError,
    ServiceNotEnabled,
)
from tests.binding_store.test_bindings_helpers import (
    A1,
    A2,
    A3,
    NOW,
    buyer,
    seed,
    virtual,
)

pytestmark = pytest.mark.postgres


def _store(db: Database, cipher: BuyerCipher) -> BindingStore:
    return BindingStore(db, cipher, policy=BindingPolicy(), outbox=Outbox())


async def test_one_batch_each_request_its_own_answer(pg_database: Database,
                                                     cipher: BuyerCipher) -> None:
    await seed(pg_database, shops={"s1": "enabled", "s2": "not_enabled"},
               callers={("s1", A1): "approved", ("s1", A2): "pending"},
               pool=[(virtual(i), "", None) for i in range(3)])
    store = _store(pg_database, cipher)
    requests = [("s1", f"o{i}", A1, buyer(i)) for i in range(4)]  # 3 numbers: one refused
    requests += [("s1", "o0", A1, buyer(0)),  # the same order again
                 ("s1", "p1", A2, buyer(9)),  # caller pending
                 ("s1", "p2", A3, buyer(9)),  # not a caller of the shop
                 ("s2", "p3", A1, buyer(9)),  # service not enabled
                 ("nope", "p4", A1, buyer(9))]  # no such shop
    answers = await asyncio.gather(*(
        store.issue(shop, order, "u", a, b, NOW, actor="test") for shop, order, a, b in requests),
        return_exceptions=True)
    assert store.batches < len(requests)  # they went out together
    issued = [a for a in answers[:5] if not isinstance(a, BaseException)]
    refused = [a for a in answers[:5] if isinstance(a, BaseException)]
    assert len(issued) == 4 and len(refused) == 1 and isinstance(refused[0], PoolExhausted)
    by_order: dict[str, set[str]] = {}
    for view in issued:
        by_order.setdefault(view.order_id, set()).add(view.binding_id)
    assert all(len(ids) == 1 for ids in by_order.values())
    assert len({v.virtual_x for v in issued}) == 3
    assert [type(a) for a in answers[5:]] == [CallerNotApproved, CallerNotApproved,
                                              ServiceNotEnabled, NotFound]
    assert "status pending" in str(answers[5])

    async with pg_database.session() as s:
        rows = (await s.scalars(select(Binding).where(Binding.state == "active"))).all()
        audits = (await s.scalars(select(AuditEvent))).all()
        events = (await s.scalars(select(WebhookEvent))).all()
    assert len(rows) == 3
    x_of = {r.id: r.virtual_x for r in rows}
    assert {a.subject: json.loads(a.detail)["virtual_x"] for a in audits} == x_of
    assert all(a.kind == "binding.create" and a.actor == "test" for a in audits)
    payloads = [json.loads(e.payload)["binding"] for e in events]
    assert {p["binding_id"]: p["virtual_x"] for p in payloads} == x_of
    assert all(e.type == "binding.created" and e.stream.startswith("order:s1:")
               for e in events)
    for a, e in zip(sorted(audits, key=lambda a: a.subject),
                    sorted(payloads, key=lambda p: p["binding_id"]), strict=True):
        assert "*" in json.loads(a.detail)["buyer"] and "*" in e["buyer_masked"]


async def test_a_binding_past_its_expiry_goes_the_orm_way(pg_database: Database,
                                                          cipher: BuyerCipher) -> None:
    await seed(pg_database, pool=[(virtual(i), "", None) for i in range(2)])
    store = _store(pg_database, cipher)
    first = await store.issue("s1", "o1", "u", A1, buyer(1), NOW, ttl=timedelta(minutes=1),
                              actor="t")
    later = NOW + timedelta(minutes=5)
    again = await store.issue("s1", "o1", "u", A1, buyer(1), later, actor="t")
    assert again.binding_id != first.binding_id and again.created
    assert again.virtual_x != first.virtual_x  # the expired pair cools down too
    async with pg_database.session() as s:
        types = list(await s.scalars(select(WebhookEvent.type).order_by(WebhookEvent.id)))
    assert types == ["binding.created", "binding.expired", "binding.created"]


async def test_a_request_the_database_refuses_fails_alone(pg_database: Database,
                                                          cipher: BuyerCipher) -> None:
    """A value too long for its column fails that request only: the batch's other bindings
    land with their audit rows and events (written together after the last request)."""
    await seed(pg_database, pool=[(virtual(i), "", None) for i in range(4)])
    store = _store(pg_database, cipher)
    orders = ["o0", "o" * 65, "o2", "o3"]
    answers = await asyncio.gather(*(
        store.issue("s1", order, "u", A1, buyer(i), NOW, actor="test")
        for i, order in enumerate(orders)), return_exceptions=True)
    assert store.batches < len(orders)  # they went out together
    assert isinstance(answers[1], PrivnumError), answers[1]
    created = {a.binding_id for a in answers if not isinstance(a, BaseException)}
    assert len(created) == 3
    async with pg_database.session() as s:
        audits = {a.subject for a in (await s.scalars(select(AuditEvent))).all()}
        events = {json.loads(e.payload)["binding"]["binding_id"]
                  for e in (await s.scalars(select(WebhookEvent))).all()}
    assert audits == events == created


def _held(order_id: str, caller_a: str, virtual_x: str) -> Binding:
    return Binding(id=f"held-{order_id}", shop_id="s1", order_id=order_id, buyer_id="u",
                   caller_a=caller_a, virtual_x=virtual_x, buyer_cipher=b"x",
                   buyer_bidx=f"bidx-{order_id}", buyer_masked="139****0000",
                   created_at=NOW, expires_at=NOW + timedelta(hours=1), state="active")


async def _waiting_on_a_lock(db: Database) -> None:
    for _ in range(500):
        async with db.session() as s:
            waiting = (await s.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"))).scalar_one()
        if waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the issue never waited for the other transaction")


@pytest.mark.parametrize("race", ["order", "caller line"])
async def test_a_race_lost_to_a_committed_binding_fails_no_request(
        pg_database: Database, cipher: BuyerCipher, race: str) -> None:
    """A request whose insert meets another transaction's binding for its order or its
    (A, X) waits for it; once that commits, a lost order race answers the winner's binding
    and a lost (A, X) race takes the next X."""
    await seed(pg_database, pool=[(virtual(i), "", None) for i in range(2)])
    store = _store(pg_database, cipher)
    # another transaction holds the first X for A1, for the same order or for another one:
    # inserted, not yet committed
    held = _held("o1" if race == "order" else "o9", A1, virtual(0))
    async with pg_database.session() as other:
        other.add(held)
        await other.flush()
        issuing = asyncio.create_task(store.issue("s1", "o1", "u", A1, buyer(1), NOW,
                                                  actor="t"))
        await _waiting_on_a_lock(pg_database)  # its insert waits on the held binding's row
        await other.commit()
    view = await issuing
    if race == "order":
        assert (view.binding_id, view.created) == (held.id, False)
    else:
        assert view.binding_id != held.id and view.created
        assert view.virtual_x == virtual(1)
    async with pg_database.session() as s:
        active = (await s.scalars(select(Binding).where(Binding.state == "active"))).all()
    assert len(active) == (1 if race == "order" else 2)
