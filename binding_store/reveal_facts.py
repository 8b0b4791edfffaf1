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

from sqlalchemy import DateTime, String, and_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql import Select

from binding_store.api_models import Order
from binding_store.callers import caller_view
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.group_commit import Coalescer
from binding_store.models import Account, Binding, CallerNumber, Shop
from binding_store.orders import order_view
from binding_store.raw_reads import RawReads, raw_reads
from binding_store.shops import shop_view
from binding_store.types import UTCDateTime
from routing.errors import NotFound
from routing.model import AccountRole, BindingState
from routing.reveal_ports import RevealFacts
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
# A load's first row (shop, main account, order, binding; ``None``: no such shop) and the
# shop's callers
_Found = tuple[Mapping[str, Any] | None, tuple[CallerView, ...]]
_MAX_BATCH = 32
_MAX_INFLIGHT = 4


def facts_statement(batch: bool = False) -> Select[Any]:
    """The shop, its main account (as ``shops.main_account`` finds it), the order by its key,
    the binding as ``BindingStore.active_for_order`` finds it (active, not expired at
    ``:now``) and each caller number (main first, then by number); no row: no such shop.

    ``batch`` (PostgreSQL): the same for each element of the arrays ``:shops``, ``:orders``,
    ``:nows``, each row led by its element's number ``i`` (from 1); a shop's callers only on
    the rows of the shop's first element (the others: one row, no caller)."""
    shop, main, order, binding, caller = (part[1] for part in _PARTS)
    columns: list[Any] = [table.c[name].label(prefix + name)
                          for prefix, table, names in _PARTS for name in names]
    shop_id: Any = bindparam("shop_id")
    order_id: Any = bindparam("order_id")
    now: Any = bindparam("now", type_=UTCDateTime())
    source: Any = shop
    callers_on: Any = caller.c.shop_id == shop.c.id
    if batch:
        elements = func.unnest(
            bindparam("shops", type_=ARRAY(String)), bindparam("orders", type_=ARRAY(String)),
            bindparam("nows", type_=ARRAY(DateTime(timezone=True))),
        ).table_valued("shop_id", "order_id", "now", with_ordinality="i").render_derived(
            name="elements", with_types=False)
        wanted = select(elements.c.shop_id, elements.c.order_id, elements.c.now,
                        elements.c.i, func.min(elements.c.i).over(
                            partition_by=elements.c.shop_id).label("first")).cte("wanted")
        shop_id, order_id, now = wanted.c.shop_id, wanted.c.order_id, wanted.c.now
        columns.insert(0, wanted.c.i)
        source = wanted.join(shop, shop.c.id == shop_id)
        # A shop's callers come once, on the rows of its first element: the same for every
        # element of the shop in this statement, and they were most of its rows
        callers_on = and_(callers_on, wanted.c.i == wanted.c.first)
    statement = (
        select(*columns)
        .select_from(source)
        .outerjoin(main, and_(main.c.shop_id == shop.c.id,
                              main.c.role == AccountRole.MAIN.value))
        .outerjoin(order, and_(order.c.shop_id == shop.c.id, order.c.order_id == order_id))
        .outerjoin(binding, and_(binding.c.shop_id == shop.c.id,
                                 binding.c.order_id == order_id,
                                 binding.c.state == BindingState.ACTIVE.value,
                                 binding.c.expires_at > now))
        .outerjoin(caller, callers_on))
    if not batch:
        statement = statement.where(shop.c.id == shop_id)
    order_by = [caller.c.is_main.desc(), caller.c.number]
    return statement.order_by(*([wanted.c.i] if batch else []), *order_by)


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
        self._batches: Coalescer[tuple[str, str, datetime], _Found] | None = None
        if db.dialect == "postgresql":
            # Reveals that arrive together are read together: one statement, one round trip
            # for up to _MAX_BATCH of them while _MAX_INFLIGHT statements are at the database.
            self._raw = raw_reads(db)
            compiled = facts_statement(batch=True).compile(dialect=db.engine.dialect)
            self._sql = str(compiled)
            self._constants = {k: v for k, v in compiled.params.items()
                               if k not in ("shops", "orders", "nows")}
            self._names = [prefix + name for prefix, _, names in _PARTS for name in names]
            self._batches = Coalescer(self._read_batch, max_batch=_MAX_BATCH,
                                      max_inflight=_MAX_INFLIGHT)

    async def _read_batch(self, wanted: list[tuple[str, str, datetime]]) -> list[_Found]:
        assert self._raw is not None
        rows = await self._raw.fetch(self._sql, {
            **self._constants, "shops": [w[0] for w in wanted],
            "orders": [w[1] for w in wanted], "nows": [w[2] for w in wanted]})
        grouped: list[list[Mapping[str, Any]]] = [[] for _ in wanted]
        for row in rows:
            grouped[int(row[0]) - 1].append(dict(zip(self._names, row[1:], strict=True)))
        # one tuple of views per shop, from its first element's rows (the others have none)
        callers: dict[str, tuple[CallerView, ...]] = {}
        for (shop_id, _, _), element in zip(wanted, grouped, strict=True):
            if element and shop_id not in callers:
                callers[shop_id] = _callers(element)
        return [(element[0] if element else None, callers.get(shop_id, ()))
                for (shop_id, _, _), element in zip(wanted, grouped, strict=True)]

    async def _found(self, shop_id: str, order_id: str, now: datetime) -> _Found:
        if self._batches is not None:
            if now.tzinfo is None:
                raise ValueError("naive datetime given to a UTC column")
            return await self._batches.submit((shop_id, order_id, now))
        params = {"shop_id": shop_id, "order_id": order_id, "now": now}
        async with self._db.read_connection() as conn:
            rows = [r._mapping for r in (await conn.execute(self._statement, params)).all()]
        return (rows[0] if rows else None), _callers(rows)

    async def load(self, shop_id: str, order_id: str, now: datetime) -> RevealFacts:
        first, callers = await self._found(shop_id, order_id, now)
        if first is None:
            raise NotFound(f"shop {shop_id} not found")
        shop, main = _part(first, _SHOP), _part(first, _MAIN)
        order, binding = _part(first, _ORDER), _part(first, _BINDING)
        return RevealFacts(
            shop=shop_view(cast(Shop, shop), cast(Account | None, main)),
            order=None if order is None else order_view(cast(Order, order), self._cipher),
            callers=callers,
            active=None if binding is None else Binding.view(cast(Binding, binding), now))
