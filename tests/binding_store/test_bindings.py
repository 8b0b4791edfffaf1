"""Issuing, idempotency, pair uniqueness, LRR, cool-down, regions, expiry, release: on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.models import AuditEvent, Binding, PoolNumber
from routing.binding_views import InvalidBindingRequest
from routing.errors import (
    CallerCoolingDown,
    CallerNotApproved,
    NotFound,
    PoolExhausted,
    ServiceNotEnabled,
)
from routing.model import BindingState
from tests.binding_store.test_bindings_helpers import (
    A1,
    A2,
    A3,
    B1,
    B2,
    B3,
    B4,
    COOLDOWN,
    NOW,
    X1,
    X2,
    X3,
    seed,
    store,
)

LONG_AGO = NOW - timedelta(days=30)


async def test_issue_then_repeat_returns_the_same_binding(database: Database,
                                                         cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher)
    first = await bindings.issue("s1", "o1", "buyer-1", A1, "139 0000 0001", NOW, actor="t")
    assert first.created and first.virtual_x == X1 and first.caller_a == A1
    assert first.buyer_masked == "139****0001"
    assert first.expires_at == NOW + timedelta(hours=24)
    again = await bindings.issue("s1", "o1", "buyer-1", A2, B2, NOW + timedelta(minutes=5),
                                 actor="t")
    assert not again.created
    assert (again.binding_id, again.virtual_x, again.caller_a) == (first.binding_id, X1, A1)


async def test_refusals(database: Database, cipher: BuyerCipher) -> None:
    await seed(database, shops={"s1": "enabled", "s2": "not_enabled"},
               callers={("s1", A1): "approved", ("s1", A2): "pending", ("s2", A3): "approved"},
               pool=[(X1, "", None)])
    bindings = store(database, cipher)
    with pytest.raises(ServiceNotEnabled):
        await bindings.issue("s2", "o1", "", A3, B1, NOW, actor="t")
    with pytest.raises(NotFound):
        await bindings.issue("nope", "o1", "", A1, B1, NOW, actor="t")
    with pytest.raises(CallerNotApproved):
        await bindings.issue("s1", "o1", "", A2, B1, NOW, actor="t")  # pending
    with pytest.raises(CallerNotApproved):
        await bindings.issue("s1", "o1", "", A3, B1, NOW, actor="t")  # another shop's caller
    with pytest.raises(InvalidBindingRequest):
        await bindings.issue("s1", "o1", "", A1, B1, NOW, ttl=timedelta(seconds=59), actor="t")


async def test_pairs_are_unique_and_x_is_shared(database: Database, cipher: BuyerCipher) -> None:
    await seed(database, callers={("s1", a): "approved" for a in (A1, A2, A3)},
               pool=[(X1, "", None)])
    bindings = store(database, cipher)
    one = await bindings.issue("s1", "o1", "", A1, B1, NOW, actor="t")
    two = await bindings.issue("s1", "o2", "", A2, B2, NOW, actor="t")
    assert one.virtual_x == two.virtual_x == X1  # one X, many bindings
    with pytest.raises(PoolExhausted):
        await bindings.issue("s1", "o3", "", A1, B3, NOW, actor="t")  # (A1, X1) taken
    with pytest.raises(PoolExhausted):
        await bindings.issue("s1", "o4", "", A3, B1, NOW, actor="t")  # (B1, X1) taken


async def test_exhausted_message_names_shop_caller_and_pool_size(database: Database,
                                                                 cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    bindings = store(database, cipher)
    await bindings.issue("s1", "o1", "", A1, B1, NOW, actor="t")
    await bindings.issue("s1", "o2", "", A1, B2, NOW, actor="t")
    with pytest.raises(PoolExhausted) as caught:
        await bindings.issue("s1", "o3", "", A1, B3, NOW, actor="t")
    assert type(caught.value) is PoolExhausted  # busy numbers, no cool-down involved
    message = str(caught.value)
    assert "s1" in message and A1 in message and "pool size 2" in message
    assert "0003" not in message  # nothing of the buyer


async def test_least_recently_released_first(database: Database, cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", NOW - timedelta(hours=3)),
                               (X2, "", NOW - timedelta(hours=2)), (X3, "", None)])
    bindings = store(database, cipher)
    got = [(await bindings.issue("s1", f"o{i}", "", A1, b, NOW, actor="t")).virtual_x
           for i, b in enumerate((B1, B2, B3))]
    assert got == [X3, X1, X2]  # never released, then least recently released


async def test_region_preference(database: Database, cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "SH", None), (X2, "BJ", LONG_AGO)])
    bindings = store(database, cipher)
    assert (await bindings.issue("s1", "o1", "", A1, B1, NOW, preferred_region="BJ",
                                 actor="t")).virtual_x == X2
    assert (await bindings.issue("s1", "o2", "", A2, B2, NOW, actor="t")).virtual_x == X1
    # The preferred region is full for A1: another region's number still serves.
    assert (await bindings.issue("s1", "o3", "", A1, B3, NOW, preferred_region="BJ",
                                 actor="t")).virtual_x == X1


async def test_cooldown_keeps_a_released_x_from_the_same_caller(database: Database,
                                                                cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "BJ", None), (X2, "SH", None)])
    bindings = store(database, cipher)
    first = await bindings.issue("s1", "o1", "", A1, B1, NOW, preferred_region="BJ", actor="t")
    assert first.virtual_x == X1
    await bindings.release(first.binding_id, actor="t", now=NOW + timedelta(minutes=1))
    later = NOW + timedelta(minutes=2)
    again = await bindings.issue("s1", "o2", "", A1, B2, later, preferred_region="BJ", actor="t")
    assert again.virtual_x == X2  # X1 is cooling down for A1
    other = await bindings.issue("s1", "o3", "", A2, B3, later, preferred_region="BJ", actor="t")
    assert other.virtual_x == X1  # but not for A2
    after = NOW + timedelta(minutes=1) + COOLDOWN
    back = await bindings.issue("s1", "o4", "", A1, B4, after, preferred_region="BJ", actor="t")
    assert back.virtual_x == X1  # cool-down over (exactly)


async def test_cooldown_with_a_single_number_exhausts(database: Database,
                                                      cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher)
    first = await bindings.issue("s1", "o1", "", A1, B1, NOW, ttl=timedelta(minutes=1),
                                 actor="t")
    # Expiry also releases the pair: within the cool-down A1 cannot get X1 back, and the
    # refusal says so (waiting helps, importing numbers is not needed).
    with pytest.raises(CallerCoolingDown) as caught:
        await bindings.issue("s1", "o2", "", A1, B2, NOW + timedelta(minutes=30), actor="t")
    err = caught.value
    assert isinstance(err, PoolExhausted) and err.code == "caller_cooling_down"
    assert err.free_at == NOW + timedelta(minutes=1) + COOLDOWN  # expired at +1 min
    assert err.retry_after_seconds == 31 * 60
    message = str(err)
    assert "cool-down" in message and "pool import" not in message and A1 in message
    assert "2026-03-01 13:01:00 UTC (in 31 min 0 s)" in message
    assert "0002" not in message  # nothing of the buyer
    assert (await bindings.get(first.binding_id, NOW + timedelta(minutes=30))).state \
        is BindingState.EXPIRED


async def test_expiry_is_exact_to_the_second(database: Database, cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    bindings = store(database, cipher, cooldown=timedelta(0))
    first = await bindings.issue("s1", "o1", "", A1, B1, NOW, ttl=timedelta(seconds=60),
                                 actor="t")
    edge = NOW + timedelta(seconds=60)
    just_before = edge - timedelta(microseconds=1)
    assert (await bindings.get(first.binding_id, just_before)).state is BindingState.ACTIVE
    same = await bindings.issue("s1", "o1", "", A1, B1, just_before, actor="t")
    assert same.binding_id == first.binding_id and not same.created
    assert (await bindings.get(first.binding_id, edge)).state is BindingState.EXPIRED
    renewed = await bindings.issue("s1", "o1", "", A1, B1, edge, actor="t")
    assert renewed.created and renewed.binding_id != first.binding_id
    async with database.session() as s:
        old = await s.get(Binding, first.binding_id)
        assert old is not None and old.state == "expired" and old.released_at == edge


async def test_early_release_and_reissue(database: Database, cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher, cooldown=timedelta(0))
    first = await bindings.issue("s1", "o1", "", A1, B1, NOW, actor="t")
    at = NOW + timedelta(minutes=10)
    done = await bindings.release(first.binding_id, actor="t", now=at)
    assert done.state is BindingState.RELEASED and done.released_at == at
    assert (await bindings.release(first.binding_id, actor="t", now=at)).state \
        is BindingState.RELEASED  # idempotent
    async with database.session() as s:
        pooled = await s.get(PoolNumber, X1)
        assert pooled is not None and pooled.last_released_at == at
    again = await bindings.issue("s1", "o1", "", A1, B1, at, actor="t")
    assert again.created and again.virtual_x == X1
    with pytest.raises(NotFound):
        await bindings.release("missing", actor="t", now=at)


async def test_expire_due_sweeps_and_stamps_the_pool(database: Database,
                                                     cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None)])
    bindings = store(database, cipher)
    short = await bindings.issue("s1", "o1", "", A1, B1, NOW, ttl=timedelta(minutes=5),
                                 actor="t")
    await bindings.issue("s1", "o2", "", A2, B2, NOW, actor="t")
    assert await bindings.expire_due(NOW + timedelta(minutes=4)) == 0
    assert await bindings.expire_due(NOW + timedelta(minutes=6)) == 1
    async with database.session() as s:
        row = await s.get(Binding, short.binding_id)
        pooled = await s.get(PoolNumber, X1)
        assert row is not None and row.state == "expired"
        assert pooled is not None and pooled.last_released_at == short.expires_at


async def test_audit_events_never_hold_the_buyer_number(database: Database,
                                                        cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    bindings = store(database, cipher)
    issued = await bindings.issue("s1", "o1", "", A1, B1, NOW, actor="admin")
    switched = await bindings.switch_caller(issued.binding_id, A2, actor="admin", now=NOW)
    await bindings.release(switched.binding.binding_id, actor="admin", now=NOW)
    async with database.session() as s:
        events = (await s.execute(select(AuditEvent).order_by(AuditEvent.id))).scalars().all()
    assert [e.kind for e in events] == ["binding.create", "binding.switch", "binding.release"]
    assert all(e.actor == "admin" and e.shop_id == "s1" for e in events)
    for e in events:
        assert "13900000001" not in e.detail
        json.loads(e.detail)


async def test_cooling_and_busy_numbers_the_refusal_names_the_first_one_back(
        database: Database, cipher: BuyerCipher) -> None:
    """X1 released from A1 10 min ago and X2 40 min ago; X3 busy with A1: the caller waits
    for X2 (20 min), not for X3 (busy) and not the whole cool-down."""
    await seed(database, pool=[(X1, "", None), (X2, "", None), (X3, "", None)])
    bindings = store(database, cipher)
    got = {}
    for n, b in enumerate((B1, B2, B3)):
        issued = await bindings.issue("s1", f"o{n}", "", A1, b, NOW, actor="t")
        got[issued.virtual_x] = issued.binding_id
    await bindings.release(got[X2], actor="t", now=NOW + timedelta(minutes=20))
    await bindings.release(got[X1], actor="t", now=NOW + timedelta(minutes=50))
    at = NOW + timedelta(minutes=60)
    with pytest.raises(CallerCoolingDown) as caught:
        await bindings.issue("s1", "o9", "", A1, B4, at, actor="t")
    assert caught.value.free_at == NOW + timedelta(minutes=20) + COOLDOWN
    assert caught.value.retry_after_seconds == 20 * 60
    # another caller is not cooling on them: it gets one at once (never-released X3 first)
    assert (await bindings.issue("s1", "o10", "", A2, B4, at, actor="t")).virtual_x == X3
