"""The reveal's facts in one read (SQLite and PostgreSQL): the same values the single-purpose
reads return."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from binding_store.callers import CallerRepository
from binding_store.crypto import BuyerCipher, KeyRing
from binding_store.db import Database
from binding_store.orders import OrderStore
from binding_store.reveal_facts import RevealFactsStore
from binding_store.shops import ShopRepository
from routing.errors import NotFound
from routing.orders import OrderStatus
from tests.binding_store.shop_helpers import NOW, enabled_shop
from tests.binding_store.test_bindings_helpers import A1, A2, A3, B1, X1, X2, seed, store


async def test_facts_match_the_single_reads(database: Database, keyring: KeyRing) -> None:
    await enabled_shop(database, "s1")
    cipher = BuyerCipher(keyring)
    orders = OrderStore(database, cipher)
    await orders.put(shop_id="s1", order_id="o-1", buyer_number="+8613912345678",
                     buyer_id="b1", ordered_at=NOW - timedelta(hours=1),
                     status=OrderStatus.PAID, actor="platform:t1", now=NOW)
    facts = RevealFactsStore(database, cipher)

    got = await facts.load("s1", "o-1", NOW)
    assert got.shop == await ShopRepository(database).get("s1")
    assert got.order == await orders.get("s1", "o-1")
    assert list(got.callers) == await CallerRepository(database).list_callers("s1")
    assert got.active is None  # no binding issued for the order yet

    unregistered = await facts.load("s1", "o-2", NOW)
    assert unregistered.order is None and unregistered.shop == got.shop
    with pytest.raises(NotFound, match="shop nope not found"):
        await facts.load("nope", "o-1", NOW)


async def test_facts_with_callers_and_a_binding(database: Database, keyring: KeyRing) -> None:
    """Several callers (one row each in the statement: each once, main first, then by
    number) and the order's active binding, as ``active_for_order`` shows it; once the
    binding has expired, none."""
    await seed(database, shops={"s1": "enabled"},
               callers={("s1", A2): "approved", ("s1", A1): "pending", ("s1", A3): "approved"},
               pool=[(X1, "east", None), (X2, "east", None)])
    cipher = BuyerCipher(keyring)
    await OrderStore(database, cipher).put(
        shop_id="s1", order_id="o-1", buyer_number=B1, buyer_id="b1",
        ordered_at=NOW - timedelta(hours=1), status=OrderStatus.PAID, actor="platform:t1",
        now=NOW)
    bindings = store(database, cipher)
    issued = await bindings.issue("s1", "o-1", "b1", A2, B1, NOW, ttl=timedelta(hours=2),
                                  actor="s1-main")
    facts = RevealFactsStore(database, cipher)

    got = await facts.load("s1", "o-1", NOW)
    assert list(got.callers) == await CallerRepository(database).list_callers("s1")
    assert [c.number for c in got.callers] == sorted([A1, A2, A3])
    assert got.active == await bindings.active_for_order("s1", "o-1", NOW)
    assert got.active is not None and got.active.binding_id == issued.binding_id
    assert (await facts.load("s1", "o-2", NOW)).active is None  # another order's: none
    later = NOW + timedelta(hours=3)
    assert (await facts.load("s1", "o-1", later)).active is None


async def test_reveals_read_together_each_get_their_own_facts(database: Database,
                                                              keyring: KeyRing) -> None:
    """Loads that arrive together (on PostgreSQL one statement for all of them): each gets
    its shop, order, binding at its own ``now`` and callers, or its NotFound."""
    await seed(database, shops={"s1": "enabled", "s2": "enabled"},
               callers={("s1", A2): "approved", ("s1", A1): "approved",
                        ("s2", A3): "approved"},
               pool=[(X1, "east", None), (X2, "east", None)])
    cipher = BuyerCipher(keyring)
    orders = OrderStore(database, cipher)
    for shop, order in [("s1", "o-1"), ("s1", "o-2"), ("s2", "o-1")]:
        await orders.put(shop_id=shop, order_id=order, buyer_number=B1, buyer_id="b1",
                         ordered_at=NOW - timedelta(hours=1), status=OrderStatus.PAID,
                         actor="platform:t1", now=NOW)
    await store(database, cipher).issue("s1", "o-1", "b1", A2, B1, NOW,
                                        ttl=timedelta(hours=2), actor="s1-main")
    facts = RevealFactsStore(database, cipher)
    later = NOW + timedelta(hours=3)
    wanted = [("s1", "o-1", NOW), ("s1", "o-1", later), ("s1", "o-2", NOW),
              ("s2", "o-1", NOW), ("s2", "o-9", NOW), ("nope", "o-1", NOW)] * 3
    together = await asyncio.gather(*(facts.load(s, o, t) for s, o, t in wanted),
                                    return_exceptions=True)
    for (shop, order, at), got in zip(wanted, together, strict=True):
        if shop == "nope":
            assert isinstance(got, NotFound)
            continue
        assert not isinstance(got, BaseException)
        alone = await facts.load(shop, order, at)
        assert got == alone
        assert got.shop.id == shop and (got.order is None) == (order == "o-9")
        assert (got.active is not None) == ((shop, order, at) == ("s1", "o-1", NOW))
    assert [c.number for c in (await facts.load("s2", "o-1", NOW)).callers] == [A3]
