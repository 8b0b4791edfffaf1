"""API bearer tokens: issue (the secret is shown once), verify (hash + constant-time compare),
revoke. A token reads ``pn_<id>_<secret>``; only SHA-256 of the whole string is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select, update

from binding_store import audit
from binding_store.api_models import ApiToken
from binding_store.db import Database
from binding_store.models import Account
from routing.api_ports import IssuedToken, Principal, PrincipalKind, TokenView
from routing.audit import AuditKind
from routing.errors import Conflict, InvalidInput, NotFound
from routing.model import AccountRole
from routing.shop_views import check_id, check_name

PREFIX = "pn"
_ID_BYTES = 8
_SECRET_BYTES = 32
_MAX_TOKEN = 128



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

    async def issue(self, *, now: datetime, admin: bool = False, shop_id: str | None = None,
                    account_id: str | None = None, label: str = "",
                    expires_at: datetime | None = None, actor: str = "cli") -> IssuedToken:
        if admin == (account_id is not None or shop_id is not None):
            raise InvalidInput("a token is either --admin or for --shop and --account")
        if not admin:
            if shop_id is None or account_id is None:
                raise InvalidInput("an account token needs both --shop and --account")
            shop_id, account_id = check_id("shop", shop_id), check_id("account", account_id)
        label = check_name(label)
        token_id = secrets.token_hex(_ID_BYTES)
        secret = f"{PREFIX}_{token_id}_{secrets.token_urlsafe(_SECRET_BYTES).replace('_', '-')}"
        kind = PrincipalKind.ADMIN if admin else PrincipalKind.ACCOUNT
        async with self._db.session() as session:
            if account_id is not None:
                existing = await session.get(Account, account_id)
                if existing is not None and existing.shop_id != shop_id:
                    raise Conflict(f"account {account_id} belongs to shop {existing.shop_id}, "
                                   f"not {shop_id}")
            session.add(ApiToken(id=token_id, token_hash=hash_token(secret), kind=kind.value,
                                 shop_id=shop_id, account_id=account_id, label=label,
                                 created_at=now, expires_at=expires_at))
            audit.record(session, now=now, actor=actor, kind=AuditKind.TOKEN_ISSUED,
                         shop_id=shop_id, subject=token_id,
                         detail={"kind": kind.value, "account": account_id, "label": label})
            await session.commit()
        return IssuedToken(token_id=token_id, secret=secret, kind=kind, shop_id=shop_id,
                           account_id=account_id, created_at=now)

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
            query = query.where(ApiToken.shop_id == shop_id)
        async with self._db.session() as session:
            rows = (await session.scalars(query)).all()
        return [TokenView(token_id=r.id, kind=PrincipalKind(r.kind), shop_id=r.shop_id,
                          account_id=r.account_id, label=r.label, created_at=r.created_at,
                          expires_at=r.expires_at, revoked_at=r.revoked_at) for r in rows]

    async def verify(self, token: str, now: datetime) -> Principal | None:
        token_id = token_id_of(token)
        if token_id is None:
            return None
        query = (select(ApiToken, Account.role, Account.shop_id)
                 .outerjoin(Account, Account.id == ApiToken.account_id)
                 .where(ApiToken.id == token_id))
        async with self._db.session() as session:
            found = (await session.execute(query)).first()
        if found is None:
            hmac.compare_digest(hash_token(token), "0" * 64)  # same work either way
            return None
        row, role, account_shop = found
        if not hmac.compare_digest(hash_token(token), row.token_hash):
            return None
        if row.revoked_at is not None or (row.expires_at is not None and now >= row.expires_at):
            return None
        if row.kind == PrincipalKind.ADMIN.value:
            return Principal(kind=PrincipalKind.ADMIN, token_id=row.id)
        if account_shop is not None and account_shop != row.shop_id:
            return None  # the account moved to another shop: the token no longer fits
        return Principal(kind=PrincipalKind.ACCOUNT, token_id=row.id, shop_id=row.shop_id,
                         account_id=row.account_id,
                         role=AccountRole(role) if role is not None else None)
