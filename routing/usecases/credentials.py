"""Credentials: who presents a token (and for which account the platform acts), and the
tokens the platform issues, lists and revokes."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta

from routing.api_ports import AccountPort, Principal, PrincipalKind, ShopPort
from routing.errors import InvalidInput, PermissionDenied, Unauthenticated
from routing.shop_views import check_id
from routing.token_ports import IssuedToken, TokenPort, TokenView
from routing.usecases.access import Scope, platform_only


class Credentials:
    def __init__(self, *, tokens: TokenPort, accounts: AccountPort, shops: ShopPort) -> None:
        self._tokens = tokens
        self._accounts = accounts
        self._shops = shops

    async def authenticate(self, token: str | None, now: datetime,
                           on_behalf_of: str | None = None) -> Principal:
        """The principal of a bearer token; with ``on_behalf_of`` (the platform's token
        only), that account's principal, acting through the platform's token."""
        if token is None:
            raise Unauthenticated("a bearer token is required (Authorization: Bearer <token>)")
        who = await self._tokens.verify(token.strip(), now)
        if who is None:
            raise Unauthenticated("the token is unknown, revoked or expired")
        if on_behalf_of is None:
            return who
        if who.kind is not PrincipalKind.PLATFORM:
            raise PermissionDenied(f"missing scope '{Scope.PLATFORM}': only the platform's "
                                   "credential acts on behalf of an account")
        account = await self._accounts.get(check_id("account", on_behalf_of))  # 404 unknown
        return Principal(kind=PrincipalKind.ACCOUNT, token_id=who.token_id,
                         shop_id=account.shop_id, account_id=account.id, role=account.role,
                         via=who.token_id)

    async def issue(self, who: Principal, *, now: datetime, admin: bool = False,
                    kind: PrincipalKind | None = None, shop_id: str | None = None,
                    account_id: str | None = None, shops: Sequence[str] = (),
                    label: str = "", days: int | None = None) -> IssuedToken:
        """A platform token, a shop account's or an auditor's; the secret is shown once."""
        platform_only(who, "issue tokens")
        if days is not None and days < 1:
            raise InvalidInput("days must be at least 1")
        expires = now + timedelta(days=days) if days else None
        # A shop's main account may get its token before the shop (and the account) exist:
        # it enables the service with it. So neither is looked up here.
        return await self._tokens.issue(now=now, admin=admin, kind=kind, shop_id=shop_id,
                                        account_id=account_id, shops=shops, label=label,
                                        expires_at=expires, actor=who.actor)

    async def revoke(self, who: Principal, token_id: str, now: datetime) -> TokenView:
        platform_only(who, "revoke tokens")
        await self._tokens.revoke(token_id, now=now, actor=who.actor)
        return await self._tokens.get(token_id)

    async def get(self, who: Principal, token_id: str) -> TokenView:
        platform_only(who, "read tokens")
        return await self._tokens.get(token_id)

    async def list(self, who: Principal, shop_id: str | None = None
                   ) -> builtins.list[TokenView]:
        platform_only(who, "list tokens")
        if shop_id is not None:
            await self._shops.get(check_id("shop", shop_id))
        return await self._tokens.list(shop_id)



