"""Everything a reveal reads before it decides, in one statement on one autocommit connection
(no BEGIN/ROLLBACK): the shop with its main account, the registered order, the order's active
binding and the shop's caller numbers (one row per caller). A reveal used to open five
sessions for these (each a pool check-out, a pre-ping, BEGIN and ROLLBACK around its query),
then one session with two ORM statements; at a platform's peak that was most of its cost.

The statement is built once, of table columns (no ORM entities to load); the rows' parts are
read into the same view functions the single-purpose stores use, so a reveal sees exactly
what they show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import and_, bindparam, select
from sqlalchemy.sql import Select

from binding_store.api_models import Order
from binding_store.callers import caller_view
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.models import Account, Binding, CallerNumber, Shop
from binding_store.orders import order_view
from binding_store.raw_reads import RawReads, raw_reads
from binding_store.shops import shop_view
from binding_store.types import UTCDateTime
from routing.api_ports import RevealFacts
from routing.errors import NotFound
from routing.model import AccountRole, BindingState
from routing.shop_views import CallerView

# (label prefix, table, columns the views read)
_SHOP = ("s_", Shop.__table__, ("id", "name", "level", "service_state", "agreement_version",
                                "accepted_by", "accepted_at", "created_at", "updated_at",
                                "timezone"))
_MAIN = ("m_", Account.__table__, ("id", "phone"))
_ORDER = ("o_", Order.__table__, ("shop_id", "order_id", "buyer_id", "buyer_masked",
                                  "ordered_at", "status", "created_at", "updated_at",
                                  "buyer_cipher"))
_BINDING = ("b_", Binding.__table__, ("id", "shop_id", "order_id", "buyer_id", "caller_a",
                                      "virtual_x", "buyer_masked", "created_at", "expires_at",
                                      "released_at", "state", "extension"))
_CALLER = ("c_", CallerNumber.__table__, ("id", "shop_id", "number", "account_id", "status",
                                          "is_main", "created_at", "updated_at"))
_PARTS = (_SHOP, _MAIN, _ORDER, _BINDING, _CALLER)


def facts_statement() -> Select[Any]:
    """The shop, its main account (as ``shops.main_account`` finds it), the order by its key,
    the binding as ``BindingStore.active_for_order`` finds it (active, not expired at
    ``:now``) and each caller number (main first, then by number); no row: no such shop."""
    shop, main, order, binding, caller = (part[1] for part in _PARTS)
    columns = [table.c[name].label(prefix + name)
               for prefix, table, names in _PARTS for name in names]
    return (
        select(*columns)
        .select_from(shop)
        .outerjoin(main, and_(main.c.shop_id == shop.c.id,
                              main.c.role == AccountRole.MAIN.value))
        .outerjoin(order, and_(order.c.shop_id == shop.c.id,
                               order.c.order_id == bindparam("order_id")))
        .outerjoin(binding, and_(binding.c.shop_id == shop.c.id,
                                 binding.c.order_id == bindparam("order_id"),
                                 binding.c.state == BindingState.ACTIVE.value,
                                 binding.c.expires_at > bindparam("now", type_=UTCDateTime())))
        .outerjoin(caller, caller.c.shop_id == shop.c.id)
        .where(shop.c.id == bindparam("shop_id"))
        .order_by(caller.c.is_main.desc(), caller.c.number))


def _part(row: Mapping[str, Any], part: tuple[str, Any, tuple[str, ...]]) -> Any:
    """The row's columns of one table, read by the view functions as the mapped object's."""
    prefix, _, names = part
    if row[prefix + names[0]] is None:
        return None  # the outer join found nothing
    return SimpleNamespace(**{name: row[prefix + name] for name in names})


def _callers(rows: Sequence[Mapping[str, Any]]) -> tuple[CallerView, ...]:
    seen: set[int] = set()
    out: list[CallerView] = []
    for row in rows:
        found = _part(row, _CALLER)
        if found is not None and found.id not in seen:
            seen.add(found.id)
            out.append(caller_view(cast(CallerNumber, found)))
    return tuple(out)


class RevealFactsStore:
    def __init__(self, db: Database, cipher: BuyerCipher) -> None:
        self._db = db
        self._cipher = cipher
        self._statement = facts_statement()
        # PostgreSQL: the statement's text, run on connections of its own (no ORM, no pool
        # pre-ping); its columns come back in the statement's order, as labelled
        self._raw: RawReads | None = None
        if db.dialect == "postgresql":
            self._raw = raw_reads(db)
            compiled = self._statement.compile(dialect=db.engine.dialect)
            self._sql = str(compiled)
            self._constants = {k: v for k, v in compiled.params.items()
                               if k not in ("shop_id", "order_id", "now")}
            self._names = [prefix + name for prefix, _, names in _PARTS for name in names]

    async def _rows(self, shop_id: str, order_id: str, now: datetime
                    ) -> list[Mapping[str, Any]]:
        params = {"shop_id": shop_id, "order_id": order_id, "now": now}
        if self._raw is None:
            async with self._db.read_connection() as conn:
                return [r._mapping for r in (await conn.execute(self._statement, params)).all()]
        if now.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        rows = await self._raw.fetch(self._sql, {**self._constants, **params})
        return [dict(zip(self._names, row, strict=True)) for row in rows]

    async def load(self, shop_id: str, order_id: str, now: datetime) -> RevealFacts:
        rows = await self._rows(shop_id, order_id, now)
        if not rows:
            raise NotFound(f"shop {shop_id} not found")
        first = rows[0]
        shop, main = _part(first, _SHOP), _part(first, _MAIN)
        order, binding = _part(first, _ORDER), _part(first, _BINDING)
        return RevealFacts(
            shop=shop_view(cast(Shop, shop), cast(Account | None, main)),
            order=None if order is None else order_view(cast(Order, order), self._cipher),
            callers=_callers(rows),
            active=None if binding is None else Binding.view(cast(Binding, binding), now))
