"""A shop's caller numbers (主叫号码): only the main account changes them (the platform acts
on its behalf); the store enforces the rules of what may be added (reviewed sub-account
mobiles, the main number stays)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from routing.api_ports import CallerPort, Principal, ShopPort
from routing.model import CallerStatus
from routing.shop_views import BatchReport, BatchRow, CallerView, check_id
from routing.usecases.access import acting_account, in_shop, main_only

_CHANGE = "change caller numbers"


class Callers:
    def __init__(self, *, shops: ShopPort, callers: CallerPort) -> None:
        self._shops = shops
        self._callers = callers

    async def list(self, who: Principal, shop_id: str, status: CallerStatus | None = None
                   ) -> list[CallerView]:
        """The main number first."""
        shop_id = check_id("shop", shop_id)
        in_shop(who, shop_id)
        await self._shops.get(shop_id)  # NotFound for an unknown shop
        return await self._callers.list_callers(shop_id, status=status)

    async def add(self, who: Principal, shop_id: str, number: str, *, now: datetime,
                  account_id: str | None = None) -> CallerView:
        """A sub-account's phone: approved if it passed review, otherwise pending."""
        actor = await self._acting(who, shop_id)
        account = check_id("account", account_id) if account_id else None
        return await self._callers.add(shop_id, number, actor=actor, now=now,
                                       account_id=account)

    async def remove(self, who: Principal, shop_id: str, number: str, now: datetime
                     ) -> CallerView:
        actor = await self._acting(who, shop_id)
        return await self._callers.remove(shop_id, number, actor=actor, now=now)

    async def set_status(self, who: Principal, shop_id: str, number: str,
                         status: CallerStatus, now: datetime) -> CallerView:
        actor = await self._acting(who, shop_id)
        return await self._callers.set_status(shop_id, number, status, actor=actor, now=now)

    async def batch_add(self, who: Principal, shop_id: str, rows: Sequence[BatchRow],
                        now: datetime) -> BatchReport:
        """One result per row; the good rows land even if others are refused."""
        actor = await self._acting(who, shop_id)
        return await self._callers.batch_add(shop_id, rows, actor=actor, now=now)

    async def _acting(self, who: Principal, shop_id: str) -> str:
        shop_id = check_id("shop", shop_id)
        main_only(who, shop_id, _CHANGE)
        return await acting_account(self._shops, who, shop_id)
