"""API bearer tokens: issue (the secret is shown once), verify (hash + constant-time compare),
revoke. A token reads ``pn_<id>_<secret>``; only SHA-256 of the whole string is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store import audit
from binding_store.api_models import ApiToken, ApiTokenShop
from binding_store.db import Database
from binding_store.models import Account, Shop
from routing.api_ports import Principal, PrincipalKind
from routing.audit import AuditKind
from routing.errors import Conflict, InvalidInput, NotFound
from routing.model import AccountRole
from routing.shop_views import check_id, check_name
from routing.token_ports import IssuedToken, TokenView

PREFIX = "pn"
_ID_BYTES = 8
_SECRET_BYTES = 32
_MAX_TOKEN = 128
_PLATFORM_KINDS = (PrincipalKind.PLATFORM.value, "admin")  # "admin": tokens issued before 0009


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id_of(token: str) -> str | None:
    """The public id part of a well-formed token, else ``None``."""
    if len(token) > _MAX_TOKEN:
        return None
    parts = token.split("_")
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 2 * _ID_BYTES:
        return None
    return parts[1]


class TokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def issue(self, *, now: datetime, admin: bool = False,
                    kind: PrincipalKind | None = None, shop_id: str | None = None,
                    account_id: str | None = None, shops: Sequence[str] = (), label: str = "",
                    expires_at: datetime | None = None, actor: str = "cli") -> IssuedToken:
        kind = kind or (PrincipalKind.PLATFORM if admin
                        else PrincipalKind.ACCOUNT if account_id is not None or shop_id
                        else None)
        if kind is None or kind is PrincipalKind.OPERATOR:
            raise InvalidInput("a token is a platform token, a shop account's (shop and "
                               "account) or an auditor's (the shops it reads)")
        granted = sorted({check_id("shop", s) for s in shops})
        if kind is PrincipalKind.PLATFORM and (account_id or shop_id or granted):
            raise InvalidInput("a platform token acts for every shop: give no shop or account")
        if kind is PrincipalKind.AUDITOR and (account_id or shop_id or not granted):
            raise InvalidInput("an auditor token needs the shops it reads (and no account)")
        if kind is PrincipalKind.ACCOUNT:
            if shop_id is None or account_id is None or granted:
                raise InvalidInput("an account token needs both a shop and an account")
            shop_id, account_id = check_id("shop", shop_id), check_id("account", account_id)
        label = check_name(label)
        token_id = secrets.token_hex(_ID_BYTES)
        secret = f"{PREFIX}_{token_id}_{secrets.token_urlsafe(_SECRET_BYTES).replace('_', '-')}"
        async with self._db.session() as session:
            if account_id is not None:
                existing = await session.get(Account, account_id)
                if existing is not None and existing.shop_id != shop_id:
                    raise Conflict(f"account {account_id} belongs to shop {existing.shop_id}, "
                                   f"not {shop_id}")
            for shop in granted:
                if await session.get(Shop, shop) is None:
                    raise NotFound(f"shop {shop} not found")
            session.add(ApiToken(id=token_id, token_hash=hash_token(secret), kind=kind.value,
                                 shop_id=shop_id, account_id=account_id, label=label,
                                 created_at=now, expires_at=expires_at))
            session.add_all(ApiTokenShop(token_id=token_id, shop_id=s) for s in granted)
            audit.record(session, now=now, actor=actor, kind=AuditKind.TOKEN_ISSUED,
                         shop_id=shop_id, subject=token_id,
                         detail={"kind": kind.value, "account": account_id, "label": label,
                                 "shops": granted})
            await session.commit()
        return IssuedToken(token_id=token_id, secret=secret, kind=kind, shop_id=shop_id,
                           account_id=account_id, created_at=now, shops=tuple(granted))

    async def revoke(self, token_id: str, *, now: datetime, actor: str = "cli") -> None:
        """Revoke by id (or by the full token). Idempotent for an already revoked token."""
        token_id = token_id_of(token_id) or token_id.strip()
        async with self._db.session() as session:
            row = await session.get(ApiToken, token_id)
            if row is None:
                raise NotFound(f"token {token_id[:32]} not found")
            if row.revoked_at is None:
                await session.execute(update(ApiToken).where(ApiToken.id == token_id)
                                      .values(revoked_at=now))
                audit.record(session, now=now, actor=actor, kind=AuditKind.TOKEN_REVOKED,
                             shop_id=row.shop_id, subject=token_id)
                await session.commit()

    async def list(self, shop_id: str | None = None) -> list[TokenView]:
        query = select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)
        if shop_id is not None:
            granted = select(ApiTokenShop.token_id).where(ApiTokenShop.shop_id == shop_id)
            query = query.where((ApiToken.shop_id == shop_id) | ApiToken.id.in_(granted))
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
            grants = await self._grants(session, [r.id for r in rows])
        return [_view(r, grants.get(r.id, ())) for r in rows]

    async def get(self, token_id: str) -> TokenView:
        token_id = token_id_of(token_id) or token_id.strip()
        async with self._db.session() as session:
            row = await session.get(ApiToken, token_id)
            if row is None:
                raise NotFound(f"token {token_id[:32]} not found")
            grants = await self._grants(session, [row.id])
        return _view(row, grants.get(row.id, ()))

    @staticmethod
    async def _grants(session: AsyncSession, ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {}
        if ids:
            rows = await session.execute(
                select(ApiTokenShop.token_id, ApiTokenShop.shop_id)
                .where(ApiTokenShop.token_id.in_(ids)).order_by(ApiTokenShop.shop_id))
            for token_id, shop in rows:
                found.setdefault(token_id, []).append(shop)
        return {k: tuple(v) for k, v in found.items()}

    async def verify(self, token: str, now: datetime) -> Principal | None:
        found = await self.verify_with_expiry(token, now)
        return None if found is None else found[0]

    async def verify_with_expiry(self, token: str, now: datetime
                                 ) -> tuple[Principal, datetime | None] | None:
        """``verify``, with the token's expiry (``None``: it does not expire)."""
        token_id = token_id_of(token)
        if token_id is None:
            return None
        query = (select(ApiToken, Account.role, Account.shop_id)
                 .outerjoin(Account, Account.id == ApiToken.account_id)
                 .where(ApiToken.id == token_id))
        async with self._db.read_session() as session:
            found = (await session.execute(query)).first()
        if found is None:
            hmac.compare_digest(hash_token(token), "0" * 64)  # same work either way
            return None
        row, role, account_shop = found
        if not hmac.compare_digest(hash_token(token), row.token_hash):
            return None
        if row.revoked_at is not None or (row.expires_at is not None and now >= row.expires_at):
            return None
        if row.kind in _PLATFORM_KINDS:
            return Principal(kind=PrincipalKind.PLATFORM, token_id=row.id), row.expires_at
        if row.kind == PrincipalKind.AUDITOR.value:
            async with self._db.session() as session:
                grants = await self._grants(session, [row.id])
            return Principal(kind=PrincipalKind.AUDITOR, token_id=row.id,
                             shops=frozenset(grants.get(row.id, ()))), row.expires_at
        if account_shop is not None and account_shop != row.shop_id:
            return None  # the account moved to another shop: the token no longer fits
        return Principal(kind=PrincipalKind.ACCOUNT, token_id=row.id, shop_id=row.shop_id,
                         account_id=row.account_id,
                         role=AccountRole(role) if role is not None else None), row.expires_at


def _view(row: ApiToken, shops: Sequence[str]) -> TokenView:
    kind = PrincipalKind.PLATFORM if row.kind in _PLATFORM_KINDS else PrincipalKind(row.kind)
    return TokenView(token_id=row.id, kind=kind, shop_id=row.shop_id,
                     account_id=row.account_id, label=row.label, created_at=row.created_at,
                     expires_at=row.expires_at, revoked_at=row.revoked_at, shops=tuple(shops))
