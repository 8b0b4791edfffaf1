"""A shop's privacy-number service: status, enablement (agreement, main account), the switch,
the shop level; and its accounts (the main account and the sub-accounts it maintains)."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import datetime

from routing.api_ports import (
    AccountPort,
    CallerPort,
    Principal,
    PrincipalKind,
    ShopPort,
    acting_for,
)
from routing.errors import InvalidInput, NotFound, PermissionDenied
from routing.model import AccountRole
from routing.numbers import DEFAULT_REGION, normalize, normalize_mobile
from routing.risk import DEFAULT_TIMEZONE
from routing.shop_views import (
    AccountView,
    EnableResult,
    ShopView,
    check_id,
    check_timezone,
    ignored_on_enable,
)
from routing.usecases.access import (
    Scope,
    acting_account,
    in_shop,
    main_only,
    platform_only,
)


class Shops:
    def __init__(self, *, shops: ShopPort, accounts: AccountPort, callers: CallerPort,
                 default_timezone: str = DEFAULT_TIMEZONE, region: str = DEFAULT_REGION
                 ) -> None:
        self._shops = shops
        self._accounts = accounts
        self._callers = callers
        self._default_timezone = default_timezone
        self._region = region

    def timezone_of(self, shop: ShopView) -> str:
        """The zone people read ``shop``'s call log in: its own, else the default (the risk
        policy's, Asia/Shanghai unless configured)."""
        return shop.timezone or self._default_timezone

    async def get(self, who: Principal, shop_id: str, scope: Scope = Scope.SHOP) -> ShopView:
        shop_id = check_id("shop", shop_id)
        in_shop(who, shop_id, scope, "read the shop")
        return await self._shops.get(shop_id)

    async def all(self, who: Principal) -> list[ShopView]:
        platform_only(who, "list every shop")
        return await self._shops.all()

    async def enable(self, who: Principal, shop_id: str, *, now: datetime,
                     main_account_id: str | None, main_phone: str | None,
                     agreement_version: str | None, accepted_by: str | None = None,
                     name: str | None = None, level: str | None = None,
                     timezone: str | None = None) -> EnableResult:
        """Open the service (idempotent). A shop account enables its own shop as its main
        account; the platform names the main account. Enabling an enabled shop changes
        nothing: the result lists what of the values given it left as they were."""
        shop_id = check_id("shop", shop_id)
        in_shop(who, shop_id, Scope.SHOP_MANAGE, "enable the service")
        zone = check_timezone(timezone) if timezone is not None else None
        if who.kind is not PrincipalKind.ACCOUNT:
            if main_account_id is None:
                raise InvalidInput("the platform admin must give main_account_id")
            main_id = main_account_id
        else:
            if who.role is AccountRole.SUB:
                raise PermissionDenied("only the shop's main account may enable the service")
            if main_account_id not in (None, who.account_id):
                raise PermissionDenied("main_account_id must be the token's own account")
            assert who.account_id is not None
            main_id = who.account_id
        result = await self._shops.enable(shop_id, now=now, main_account_id=main_id,
                                          main_phone=main_phone,
                                          agreement_version=agreement_version,
                                          accepted_by=accepted_by, name=name, level=level,
                                          actor=acting_for(who.actor, main_id))
        if result.changed:
            if zone is not None and result.shop.timezone is None:
                shop = await self._shops.set_timezone(shop_id, zone, actor=who.actor, now=now)
                return replace(result, shop=shop)
            return result
        phone = main_phone
        if main_phone is not None:
            with contextlib.suppress(InvalidInput):  # a bad number differs either way
                phone = normalize_mobile(main_phone, self._region)
        return replace(result, ignored=ignored_on_enable(
            result.shop, main_phone=phone, agreement_version=agreement_version,
            accepted_by=accepted_by, name=name, level=level, timezone=zone))

    async def disable(self, who: Principal, shop_id: str, now: datetime) -> ShopView:
        shop_id = check_id("shop", shop_id)
        main_only(who, shop_id, "disable the service")
        return await self._shops.disable(shop_id, actor=who.actor, now=now)

    async def set_level(self, who: Principal, shop_id: str, level: str, now: datetime
                        ) -> ShopView:
        platform_only(who, "set a shop's level")
        return await self._shops.set_level(shop_id, level, actor=who.actor, now=now)

    async def set_timezone(self, who: Principal, shop_id: str, timezone: str | None,
                           now: datetime) -> ShopView:
        """The zone the shop's people read its call log in (None: back to the default)."""
        shop_id = check_id("shop", shop_id)
        main_only(who, shop_id, "set the shop's time zone")
        zone = check_timezone(timezone) if timezone is not None else None
        return await self._shops.set_timezone(shop_id, zone, actor=who.actor, now=now)

    # ---- accounts ---------------------------------------------------------------------

    async def accounts(self, who: Principal, shop_id: str) -> list[AccountView]:
        """Main account first."""
        await self.get(who, shop_id)  # NotFound for an unknown shop
        return await self._accounts.list_accounts(shop_id)

    async def add_sub_account(self, who: Principal, shop_id: str, account_id: str, *,
                              now: datetime, phone: str | None, name: str = "",
                              phone_reviewed: bool = False) -> AccountView:
        """A sub-account; only the shop's main account adds one."""
        shop_id = check_id("shop", shop_id)
        main_only(who, shop_id, "add sub-accounts")
        if phone_reviewed:  # the review is the platform's to record
            platform_only(who, "record a phone as reviewed")
        actor = await acting_account(self._shops, who, shop_id)
        return await self._accounts.add_sub_account(shop_id, account_id, actor=actor, now=now,
                                                    phone=phone, name=name,
                                                    phone_reviewed=phone_reviewed)

    async def review_phone(self, who: Principal, account_id: str, reviewed: bool,
                           now: datetime) -> AccountView:
        """Record the platform's review of an account's phone."""
        platform_only(who, "review phones")
        return await self._accounts.set_phone_reviewed(check_id("account", account_id),
                                                       reviewed, actor=who.actor, now=now)

    async def account(self, who: Principal, shop_id: str, account_id: str) -> AccountView:
        """One account of the shop (another shop's or none: NotFound)."""
        await self.get(who, shop_id)
        found = await self._accounts.get(check_id("account", account_id))
        if found.shop_id != shop_id:
            raise NotFound(f"account {account_id} not found")
        return found

    async def review_account(self, who: Principal, shop_id: str, account_id: str,
                             reviewed: bool, now: datetime) -> AccountView:
        """The platform's phone review of an account of ``shop_id``."""
        platform_only(who, "review phones")
        await self.account(who, shop_id, account_id)
        return await self._accounts.set_phone_reviewed(account_id, reviewed, actor=who.actor,
                                                       now=now)

    async def change_phone(self, who: Principal, shop_id: str, account_id: str,
                           phone: str | None, now: datetime) -> AccountView:
        """A sub-account's new phone: reviewed again before it can be a caller number."""
        main_only(who, shop_id, "change a sub-account's phone")
        await self.account(who, shop_id, account_id)
        e164 = normalize(phone, self._region) if phone else None
        actor = await acting_account(self._shops, who, shop_id)
        if (await self._accounts.get(account_id)).phone != e164:
            await self._drop_callers(shop_id, account_id, actor, now)
        return await self._accounts.change_phone(shop_id, account_id, e164, actor=actor,
                                                 now=now)

    async def remove_sub_account(self, who: Principal, shop_id: str, account_id: str,
                                 now: datetime) -> AccountView:
        main_only(who, shop_id, "remove sub-accounts")
        await self.account(who, shop_id, account_id)
        actor = await acting_account(self._shops, who, shop_id)
        if (await self.account(who, shop_id, account_id)).role is AccountRole.MAIN:
            raise PermissionDenied("the main account cannot be removed")
        await self._drop_callers(shop_id, account_id, actor, now)
        return await self._accounts.remove_sub_account(shop_id, account_id, actor=actor,
                                                       now=now)

    async def _drop_callers(self, shop_id: str, account_id: str, actor: str, now: datetime
                            ) -> None:
        """The account's caller numbers go through the caller store, which takes them out of
        the routing index first (a removed number must not call on)."""
        for caller in await self._callers.list_callers(shop_id):
            if caller.account_id == account_id and not caller.is_main:
                await self._callers.remove(shop_id, caller.number, actor=actor, now=now)
