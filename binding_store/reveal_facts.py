"""Everything a reveal reads before it decides, in one session: the shop with its main account,
the registered order and the order's active binding in one statement, the shop's caller
numbers in a second, on an autocommit connection (no BEGIN/ROLLBACK). A reveal used to
open five sessions for these (each a pool check-out, a pre-ping, BEGIN and ROLLBACK around
its query); at a platform's peak that was most of its cost."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, select

from binding_store.api_models import Order
from binding_store.callers import caller_view
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.models import Account, Binding, CallerNumber, Shop
from binding_store.orders import order_view
from binding_store.shops import shop_view
from routing.api_ports import RevealFacts
from routing.errors import NotFound
from routing.model import AccountRole, BindingState


class RevealFactsStore:
    def __init__(self, db: Database, cipher: BuyerCipher) -> None:
        self._db = db
        self._cipher = cipher

    async def load(self, shop_id: str, order_id: str, now: datetime) -> RevealFacts:
        # The same rows the single-purpose reads return: the main account as
        # ``shops.main_account`` finds it, the order by its key, the binding as
        # ``BindingStore.active_for_order`` (active and not yet expired at ``now``).
        facts = (
            select(Shop, Account, Order, Binding)
            .outerjoin(Account, and_(Account.shop_id == Shop.id,
                                     Account.role == AccountRole.MAIN.value))
            .outerjoin(Order, and_(Order.shop_id == Shop.id, Order.order_id == order_id))
            .outerjoin(Binding, and_(Binding.shop_id == Shop.id, Binding.order_id == order_id,
                                     Binding.state == BindingState.ACTIVE.value,
                                     Binding.expires_at > now))
            .where(Shop.id == shop_id)
            .limit(1))
        callers = (select(CallerNumber).where(CallerNumber.shop_id == shop_id)
                   .order_by(CallerNumber.is_main.desc(), CallerNumber.number))
        async with self._db.read_session() as session:
            row = (await session.execute(facts)).first()
            if row is None:
                raise NotFound(f"shop {shop_id} not found")
            shop, main, order, binding = row
            caller_rows = (await session.scalars(callers)).all()
            return RevealFacts(
                shop=shop_view(shop, main),
                order=None if order is None else order_view(order, self._cipher),
                callers=tuple(caller_view(c) for c in caller_rows),
                active=None if binding is None else binding.view(now))
