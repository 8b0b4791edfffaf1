"""Seeding helpers shared by the binding, look-up and concurrency tests (no tests here).

Shops, accounts, caller numbers and pool numbers are written as model rows directly so these
tests depend only on the data model, not on the repositories' commands.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from binding_store.binding_policy import BindingPolicy
from binding_store.bindings import BindingStore
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.models import Account, CallerNumber, PoolNumber, Shop
from binding_store.redis_index import RedisIndex

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
COOLDOWN = timedelta(hours=1)

A1, A2, A3 = "+8613800000001", "+8613800000002", "+8613800000003"
B1, B2, B3, B4 = "+8613900000001", "+8613900000002", "+8613900000003", "+8613900000004"
X1, X2, X3 = "+8617000000001", "+8617000000002", "+8617000000003"


def caller(i: int) -> str:
    return f"+86138{i:08d}"


def buyer(i: int) -> str:
    return f"+86139{i:08d}"


def virtual(i: int) -> str:
    return f"+86170{i:08d}"


async def seed(
    db: Database,
    *,
    shops: dict[str, str] | None = None,
    callers: dict[tuple[str, str], str] | None = None,
    pool: Iterable[tuple[str, str, datetime | None]] = (),
) -> None:
    """shops: id -> service state; callers: (shop, number) -> status; pool: (X, region, last)."""
    shops = {"s1": "enabled"} if shops is None else shops
    callers = {("s1", A1): "approved", ("s1", A2): "approved"} if callers is None else callers
    async with db.session() as s:
        for shop_id, state in shops.items():
            s.add(Shop(id=shop_id, name=shop_id, service_state=state, created_at=NOW,
                       updated_at=NOW))
        await s.flush()
        for shop_id in shops:
            s.add(Account(id=f"{shop_id}-main", shop_id=shop_id, role="main", created_at=NOW))
        for number, region, last in pool:
            s.add(PoolNumber(number=number, region=region, state="available",
                             last_released_at=last, created_at=NOW))
        await s.flush()
        for (shop_id, number), status in callers.items():
            s.add(CallerNumber(shop_id=shop_id, number=number, account_id=f"{shop_id}-main",
                               status=status, created_at=NOW, updated_at=NOW))
        await s.commit()


def store(db: Database, cipher: BuyerCipher, index: RedisIndex | None = None,
          cooldown: timedelta = COOLDOWN) -> BindingStore:
    return BindingStore(db, cipher, policy=BindingPolicy(cooldown=cooldown), index=index)
