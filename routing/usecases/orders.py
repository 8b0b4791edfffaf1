"""Orders the platform registers (the platform credential only): the buyer number is
encrypted by the store at once and never shown again; a reveal names the order id only."""

from __future__ import annotations

from datetime import datetime

from routing.api_ports import OrderPort, Principal, ShopPort
from routing.numbers import normalize
from routing.orders import OrderView, OrderWrite, check_order_time, check_status
from routing.shop_views import check_id
from routing.usecases.access import in_shop, platform_only


class Orders:
    def __init__(self, *, orders: OrderPort, shops: ShopPort, region: str) -> None:
        self._orders = orders
        self._shops = shops
        self._region = region

    async def register(self, who: Principal, *, shop_id: str, order_id: str,
                       buyer_number: str, buyer_id: str, ordered_at: datetime, status: str,
                       now: datetime) -> OrderWrite:
        """Create or replace the order (idempotent: the same values change nothing)."""
        platform_only(who, "register orders")
        shop_id = check_id("shop", shop_id)
        order_id = check_id("order", order_id)
        buyer_id = check_id("buyer", buyer_id)
        buyer = normalize(buyer_number, self._region)
        when = check_order_time(ordered_at, now)
        state = check_status(status)
        await self._shops.get(shop_id)  # an unknown shop: NotFound
        return await self._orders.put(shop_id=shop_id, order_id=order_id, buyer_number=buyer,
                                      buyer_id=buyer_id, ordered_at=when, status=state,
                                      actor=who.actor, now=now)

    async def get(self, who: Principal, shop_id: str, order_id: str) -> OrderView:
        shop_id = check_id("shop", shop_id)
        in_shop(who, shop_id, action="read the shop's orders")
        await self._shops.get(shop_id)
        return await self._orders.get(shop_id, check_id("order", order_id))
