"""Credentials: who presents a token, and the tokens the platform issues, lists and revokes."""

from __future__ import annotations

from datetime import datetime, timedelta

from routing.api_ports import IssuedToken, Principal, TokenPort, TokenView
from routing.errors import Unauthenticated
from routing.usecases.access import platform_only


class Credentials:
    def __init__(self, *, tokens: TokenPort) -> None:
        self._tokens = tokens

    async def authenticate(self, token: str | None, now: datetime) -> Principal:
        if token is None:
            raise Unauthenticated("a bearer token is required (Authorization: Bearer <token>)")
        who = await self._tokens.verify(token.strip(), now)
        if who is None:
            raise Unauthenticated("the token is unknown, revoked or expired")
        return who

    async def issue(self, who: Principal, *, now: datetime, admin: bool = False,
                    shop_id: str | None = None, account_id: str | None = None,
                    label: str = "", days: int | None = None) -> IssuedToken:
        """A platform token (``admin``) or a shop account's; the secret is shown once."""
        platform_only(who, "issue tokens")
        expires = now + timedelta(days=days) if days else None
        return await self._tokens.issue(now=now, admin=admin, shop_id=shop_id,
                                        account_id=account_id, label=label,
                                        expires_at=expires, actor=who.actor)

    async def revoke(self, who: Principal, token_id: str, now: datetime) -> None:
        platform_only(who, "revoke tokens")
        await self._tokens.revoke(token_id, now=now, actor=who.actor)

    async def list(self, who: Principal, shop_id: str | None = None) -> list[TokenView]:
        platform_only(who, "list tokens")
        return await self._tokens.list(shop_id)
