"""Orders the platform registers: the buyer number is encrypted at once (the key ring's
current key) and kept masked beside; nothing else of it is stored."""

from __future__ import annotations

from datetime import datetime

from binding_store import audit
from binding_store.api_models import Order
from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from routing.audit import AuditKind
from routing.errors import NotFound
from routing.numbers import mask
from routing.orders import OrderStatus, OrderView, OrderWrite


def not_registered(shop_id: str, order_id: str) -> NotFound:
    return NotFound(f"order {order_id} of shop {shop_id} is not registered")


def order_view(row: Order, cipher: BuyerCipher) -> OrderView:
    return OrderView(shop_id=row.shop_id, order_id=row.order_id, buyer_id=row.buyer_id,
                     buyer_masked=row.buyer_masked, ordered_at=row.ordered_at,
                     status=OrderStatus(row.status), created_at=row.created_at,
                     updated_at=row.updated_at, buyer_number=cipher.decrypt(row.buyer_cipher))


class OrderStore:
    def __init__(self, db: Database, cipher: BuyerCipher) -> None:
        self._db = db
        self._cipher = cipher

    def _view(self, row: Order) -> OrderView:
        return order_view(row, self._cipher)

    async def put(self, *, shop_id: str, order_id: str, buyer_number: str, buyer_id: str,
                  ordered_at: datetime, status: OrderStatus, actor: str, now: datetime
                  ) -> OrderWrite:
        async with self._db.session() as session:
            row = await session.get(Order, (shop_id, order_id))
            created = row is None
            masked = mask(buyer_number)
            if row is None:
                row = Order(shop_id=shop_id, order_id=order_id, created_at=now)
                session.add(row)
            changed = created or (row.buyer_masked != masked
                                  or self._cipher.decrypt(row.buyer_cipher) != buyer_number
                                  or row.buyer_id != buyer_id or row.ordered_at != ordered_at
                                  or row.status != status.value)
            if changed:
                row.buyer_cipher = self._cipher.encrypt(buyer_number)
                row.buyer_masked = masked
                row.buyer_id = buyer_id
                row.ordered_at = ordered_at
                row.status = status.value
                row.updated_at = now
                audit.record(session, now=now, actor=actor, kind=AuditKind.ORDER_REGISTERED,
                             shop_id=shop_id, subject=order_id,
                             detail={"buyer": masked, "buyer_id": buyer_id,
                                     "ordered_at": ordered_at, "status": status.value,
                                     "created": created})
                await session.commit()
            return OrderWrite(order=self._view(row), created=created)

    async def get(self, shop_id: str, order_id: str) -> OrderView:
        async with self._db.session() as session:
            row = await session.get(Order, (shop_id, order_id))
        if row is None:
            raise not_registered(shop_id, order_id)
        return self._view(row)
