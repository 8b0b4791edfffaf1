"""Shops' call rules in SQL (SQLite and PostgreSQL): set, audited, read back over the platform
defaults on the call path, cached there for ``cache_seconds``."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import event, select

from binding_store.call_rules import SqlCallRules
from binding_store.db import Database
from binding_store.models import AuditEvent
from binding_store.shops import ShopRepository
from routing.call_rules import (
    CallDirection,
    CallerReporting,
    CallRules,
    CallWindow,
    ShopCallRules,
)
from routing.errors import NotFound, StoreUnavailable
from tests.binding_store.shop_helpers import NOW, enabled_shop

PLATFORM = CallRules(grace_seconds=30, merchant_window=CallWindow.parse("08:00-21:00"),
                     timezone="Asia/Shanghai")


async def test_a_shop_without_rules_gets_the_platform_defaults(database: Database) -> None:
    await enabled_shop(database, "s1", subs=False)
    store = SqlCallRules(database, PLATFORM, cache_seconds=0)
    assert await store.get("s1") == ShopCallRules()
    assert await store.rules_for(frozenset({"s1"})) == {"s1": PLATFORM}


async def test_rules_set_read_back_audited_in_the_shops_zone(database: Database) -> None:
    await enabled_shop(database, "s1", subs=False)
    await ShopRepository(database).set_timezone("s1", "Europe/Berlin", actor="op", now=NOW)
    store = SqlCallRules(database, PLATFORM, cache_seconds=0)
    own = ShopCallRules(direction=CallDirection.MERCHANT_ONLY, grace_seconds=0,
                        fallback_number="+8640000000001", clear_merchant_window=True,
                        callback_window=CallWindow.parse("22:00-06:00"))
    assert await store.set("s1", own, actor="op", now=NOW) == own
    assert await store.get("s1") == own
    assert await store.set("s1", own, actor="op", now=NOW) == own  # unchanged: no event
    rules = (await store.rules_for(frozenset({"s1"})))["s1"]
    assert rules == CallRules(direction=CallDirection.MERCHANT_ONLY, grace_seconds=0,
                              fallback_number="+8640000000001", merchant_window=None,
                              callback_window=CallWindow.parse("22:00-06:00"),
                              timezone="Europe/Berlin")
    async with database.session() as s:
        events = (await s.scalars(select(AuditEvent))).all()
    changes = [e for e in events if e.kind == "shop.call_rules"]
    assert len(changes) == 1 and changes[0].actor == "op" and changes[0].shop_id == "s1"
    detail = json.loads(changes[0].detail)
    assert detail["to"]["direction"] == "merchant_only" and detail["to"]["merchant_window"] == ""
    assert detail["from"]["direction"] is None


async def test_back_to_defaults(database: Database) -> None:
    await enabled_shop(database, "s1", subs=False)
    store = SqlCallRules(database, PLATFORM, cache_seconds=0)
    await store.set("s1", ShopCallRules(grace_seconds=5), actor="op", now=NOW)
    await store.set("s1", ShopCallRules(), actor="op", now=NOW)
    assert (await store.rules_for(frozenset({"s1"})))["s1"] == PLATFORM


async def test_unknown_shop(database: Database) -> None:
    store = SqlCallRules(database, PLATFORM)
    with pytest.raises(NotFound):
        await store.get("nope")
    with pytest.raises(NotFound):
        await store.set("nope", ShopCallRules(), actor="op", now=NOW)
    with pytest.raises(StoreUnavailable):  # the call path never decides without them
        await store.rules_for(frozenset({"nope"}))


async def test_call_path_cache_keeps_rules_for_its_time(database: Database) -> None:
    await enabled_shop(database, "s1", subs=False)
    writer = SqlCallRules(database, PLATFORM)
    reader = SqlCallRules(database, PLATFORM, cache_seconds=3_600)
    assert (await reader.rules_for(frozenset({"s1"})))["s1"].direction is CallDirection.BOTH
    await writer.set("s1", ShopCallRules(direction=CallDirection.CALLBACK_ONLY), actor="op",
                     now=NOW)
    # another process changed them: this one sees the change once its cache runs out
    assert (await reader.rules_for(frozenset({"s1"})))["s1"].direction is CallDirection.BOTH
    fresh = SqlCallRules(database, PLATFORM, cache_seconds=0)
    assert (await fresh.rules_for(frozenset({"s1"})))["s1"].direction is \
        CallDirection.CALLBACK_ONLY
    # a change made through the same store applies at once
    await reader.set("s1", ShopCallRules(direction=CallDirection.MERCHANT_ONLY), actor="op",
                     now=NOW)
    assert (await reader.rules_for(frozenset({"s1"})))["s1"].direction is \
        CallDirection.MERCHANT_ONLY


async def test_caller_reporting_status(database: Database) -> None:
    await enabled_shop(database, "s1", subs=False)
    store = SqlCallRules(database, PLATFORM, cache_seconds=0)
    a, b = "+8613800138000", "+8613900139001"
    assert await store.unreported("s1", frozenset({a, b})) == {a, b}  # no row: unreported
    await store.set_reporting("s1", a, CallerReporting.REPORTED, actor="op", now=NOW)
    assert await store.unreported("s1", frozenset({a, b})) == {b}
    await store.set_reporting("s1", a, CallerReporting.REPORTED, actor="op", now=NOW)
    await store.set_reporting("s1", a, CallerReporting.UNREPORTED, actor="op", now=NOW)
    assert await store.unreported("s1", frozenset({a})) == {a}
    async with database.session() as s:
        kinds = [(e.kind, e.subject, json.loads(e.detail)["to"])
                 for e in (await s.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()
                 if e.kind == "caller.reporting"]
    assert kinds == [("caller.reporting", a, "reported"), ("caller.reporting", a, "unreported")]
    with pytest.raises(NotFound):
        await store.set_reporting("nope", a, CallerReporting.REPORTED, actor="op", now=NOW)


async def test_reporting_status_cached_on_the_call_path(database: Database) -> None:
    await enabled_shop(database, "s1", subs=False)
    writer = SqlCallRules(database, PLATFORM)
    reader = SqlCallRules(database, PLATFORM, cache_seconds=3_600)
    a = "+8613800138000"
    assert await reader.unreported("s1", frozenset({a})) == {a}
    await writer.set_reporting("s1", a, CallerReporting.REPORTED, actor="op", now=NOW)
    assert await reader.unreported("s1", frozenset({a})) == {a}  # until its cache runs out
    assert await SqlCallRules(database, PLATFORM, cache_seconds=0).unreported(
        "s1", frozenset({a})) == frozenset()


async def test_due_rules_are_read_again_in_the_background(database: Database) -> None:
    """Past half their cache life the cached rules still answer, and one background read
    replaces them; a refresh never brings back an entry that set() dropped meanwhile."""
    await enabled_shop(database, "s1", subs=False)
    store = SqlCallRules(database, PLATFORM, cache_seconds=3600)
    elsewhere = SqlCallRules(database, PLATFORM, cache_seconds=0)  # another process, say
    assert await store.rules_for(frozenset({"s1"})) == {"s1": PLATFORM}
    until, rules = store._cache["s1"]
    store._cache["s1"] = (until - 3000, rules)  # 3000 of its 3600 s have passed
    own = ShopCallRules(direction=CallDirection.MERCHANT_ONLY)
    await elsewhere.set("s1", own, actor="op", now=NOW)
    assert await store.rules_for(frozenset({"s1"})) == {"s1": PLATFORM}  # still valid
    assert store._refresh is not None
    await store._refresh
    fresh = (await store.rules_for(frozenset({"s1"})))["s1"]
    assert fresh.direction is CallDirection.MERCHANT_ONLY
    assert store._cache["s1"][0] > until - 3000

    until, rules = store._cache["s1"]
    store._cache["s1"] = (until - 3000, rules)
    assert (await store.rules_for(frozenset({"s1"})))["s1"] == fresh  # schedules a refresh
    await store.set("s1", ShopCallRules(), actor="op", now=NOW)  # drops the entry
    await store._refresh
    assert "s1" not in store._cache
    assert await store.rules_for(frozenset({"s1"})) == {"s1": PLATFORM}
    await store.close()


def _count_rules_reads(database: Database) -> list[str]:
    """The statements that read call rules, as the engine sends them."""
    seen: list[str] = []

    def before(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "shop_call_rules" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", before)
    return seen


async def test_calls_missing_rules_at_the_same_moment_share_one_read(database: Database) -> None:
    for shop in ("s1", "s2", "s3"):
        await enabled_shop(database, shop, subs=False)
    own = ShopCallRules(direction=CallDirection.MERCHANT_ONLY)
    await SqlCallRules(database, PLATFORM).set("s2", own, actor="op", now=NOW)
    store = SqlCallRules(database, PLATFORM, cache_seconds=3_600)
    reads = _count_rules_reads(database)
    asked = [frozenset({"s1"}), frozenset({"s2"}), frozenset({"s1", "s3"})] * 20
    answers = await asyncio.gather(*(store.rules_for(shops) for shops in asked))
    assert len(reads) == 1  # sixty calls, three shops, one statement
    assert answers[:3] == [{"s1": PLATFORM}, {"s2": own.apply(PLATFORM, "Asia/Shanghai")},
                           {"s1": PLATFORM, "s3": PLATFORM}]
    assert answers == answers[:3] * 20
    assert not store._reading and not store._reads
    await store.close()


async def test_a_shared_read_fails_only_the_calls_of_a_shop_it_cannot_find(
        database: Database) -> None:
    await enabled_shop(database, "s1", subs=False)
    store = SqlCallRules(database, PLATFORM)
    good, bad = await asyncio.gather(store.rules_for(frozenset({"s1"})),
                                     store.rules_for(frozenset({"gone"})),
                                     return_exceptions=True)
    assert good == {"s1": PLATFORM}
    assert isinstance(bad, StoreUnavailable)
    await store.close()


async def test_a_call_after_set_does_not_join_a_read_begun_before_it(database: Database) -> None:
    await enabled_shop(database, "s1", subs=False)
    store = SqlCallRules(database, PLATFORM, cache_seconds=3_600)
    before = asyncio.ensure_future(store.rules_for(frozenset({"s1"})))
    await asyncio.sleep(0)  # its read is queued
    own = ShopCallRules(direction=CallDirection.CALLBACK_ONLY)
    await store.set("s1", own, actor="op", now=NOW)
    after = await store.rules_for(frozenset({"s1"}))
    assert after["s1"].direction is CallDirection.CALLBACK_ONLY
    await before  # answered too (with whatever its read saw)
    await store.close()


async def test_a_waiting_call_cut_off_leaves_the_read_to_the_others(database: Database) -> None:
    await enabled_shop(database, "s1", subs=False)
    store = SqlCallRules(database, PLATFORM, cache_seconds=3_600)
    impatient = asyncio.ensure_future(store.rules_for(frozenset({"s1"})))
    patient = asyncio.ensure_future(store.rules_for(frozenset({"s1"})))
    await asyncio.sleep(0)
    impatient.cancel()  # as the call's deadline would
    assert await patient == {"s1": PLATFORM}
    with pytest.raises(asyncio.CancelledError):
        await impatient
    await store.close()
