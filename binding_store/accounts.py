"""Accounts: the shop's main account (created at enablement) and its sub-accounts, which the
main account maintains. ``phone_reviewed`` records that the phone passed the platform's review."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from binding_store import audit
from binding_store.api_models import ApiToken
from binding_store.db import Database
from binding_store.models import Account, CallerNumber
from binding_store.shops import require_admin
from routing.audit import AuditKind
from routing.errors import Conflict, NotFound, PermissionDenied
from routing.model import AccountRole
from routing.numbers import normalize
from routing.shop_views import AccountView, check_id, check_name


def account_view(row: Account) -> AccountView:
    return AccountView(id=row.id, shop_id=row.shop_id, role=AccountRole(row.role), name=row.name,
                       phone=row.phone, phone_reviewed=row.phone_reviewed,
                       created_at=row.created_at)


class AccountRepository:
    """``on_tokens_revoked(account_id)``: told after a removal revoked the account's tokens
    (a process that keeps verified tokens forgets them at once)."""

    def __init__(self, db: Database,
                 on_tokens_revoked: Callable[[str], None] | None = None) -> None:
        self._db = db
        self._on_tokens_revoked = on_tokens_revoked

    async def get(self, account_id: str) -> AccountView:
        async with self._db.session() as session:
            row = await session.get(Account, account_id)
        if row is None:
            raise NotFound(f"account {account_id} not found")
        return account_view(row)

    async def list_accounts(self, shop_id: str) -> list[AccountView]:
        """Main account first, then sub-accounts by id."""
        async with self._db.session() as session:
            rows = (await session.scalars(
                select(Account).where(Account.shop_id == shop_id).order_by(Account.id)
            )).all()
        views = [account_view(r) for r in rows]
        return sorted(views, key=lambda a: (a.role is not AccountRole.MAIN, a.id))

    async def add_sub_account(
        self,
        shop_id: str,
        account_id: str,
        *,
        actor: str,
        now: datetime,
        phone: str | None = None,
        name: str = "",
        phone_reviewed: bool = False,
    ) -> AccountView:
        """A sub-account of ``shop_id``; only the shop's main account (``actor``) adds one."""
        account_id = check_id("account", account_id)
        name = check_name(name)
        e164 = normalize(phone) if phone else None
        try:
            async with self._db.session() as session:
                await require_admin(session, shop_id, actor)
                existing = await session.get(Account, account_id)
                if existing is not None:
                    raise Conflict(f"account {account_id} already exists (shop {existing.shop_id})")
                row = Account(id=account_id, shop_id=shop_id, role=AccountRole.SUB.value,
                              name=name, phone=e164, phone_reviewed=phone_reviewed,
                              created_at=now)
                session.add(row)
                audit.record(session, now=now, actor=actor, kind=AuditKind.ACCOUNT_ADDED,
                             shop_id=shop_id, subject=account_id,
                             detail={"phone": e164, "phone_reviewed": phone_reviewed})
                await session.commit()
        except IntegrityError:
            raise Conflict(f"account {account_id} already exists") from None
        return account_view(row)

    async def set_phone_reviewed(
        self, account_id: str, reviewed: bool, *, actor: str, now: datetime
    ) -> AccountView:
        """Record the platform's review of an account's phone (a platform action)."""
        async with self._db.session() as session:
            row = await session.get(Account, account_id)
            if row is None:
                raise NotFound(f"account {account_id} not found")
            if row.phone_reviewed != reviewed:
                row.phone_reviewed = reviewed
                audit.record(session, now=now, actor=actor, kind=AuditKind.ACCOUNT_REVIEWED,
                             shop_id=row.shop_id, subject=account_id,
                             detail={"phone_reviewed": reviewed})
                await session.commit()
            return account_view(row)

    async def _sub_account(self, session: AsyncSession, shop_id: str, account_id: str,
                           actor: str) -> Account:
        await require_admin(session, shop_id, actor)
        row = await session.get(Account, account_id)
        if row is None or row.shop_id != shop_id:
            raise NotFound(f"account {account_id} not found")
        if row.role != AccountRole.SUB.value:
            raise PermissionDenied("the main account is changed by re-enabling the service, "
                                   "not as a sub-account")
        return row

    async def change_phone(self, shop_id: str, account_id: str, phone: str | None, *,
                           actor: str, now: datetime) -> AccountView:
        """A sub-account's new phone; it awaits the platform's review again. The old phone's
        caller numbers must be removed first (through the caller store)."""
        e164 = normalize(phone) if phone else None
        async with self._db.session() as session:
            row = await self._sub_account(session, shop_id, account_id, actor)
            if row.phone == e164:
                return account_view(row)
            old = row.phone
            await _no_callers(session, shop_id, account_id)
            row.phone = e164
            row.phone_reviewed = False
            audit.record(session, now=now, actor=actor, kind=AuditKind.ACCOUNT_PHONE,
                         shop_id=shop_id, subject=account_id,
                         detail={"phone": e164, "previous": old})
            await session.commit()
            return account_view(row)

    async def remove_sub_account(self, shop_id: str, account_id: str, *, actor: str,
                                 now: datetime) -> AccountView:
        """Remove the sub-account and revoke its tokens (its caller numbers are removed
        first, through the caller store, which keeps the routing index right)."""
        async with self._db.session() as session:
            row = await self._sub_account(session, shop_id, account_id, actor)
            view = account_view(row)
            await _no_callers(session, shop_id, account_id)
            revoked = await session.execute(
                update(ApiToken).where(ApiToken.account_id == account_id,
                                       ApiToken.revoked_at.is_(None)).values(revoked_at=now))
            await session.delete(row)
            audit.record(session, now=now, actor=actor, kind=AuditKind.ACCOUNT_REMOVED,
                         shop_id=shop_id, subject=account_id,
                         detail={"tokens_revoked": int(getattr(revoked, "rowcount", 0) or 0)})
            await session.commit()
        if self._on_tokens_revoked is not None:
            self._on_tokens_revoked(account_id)
        return view


async def _no_callers(session: AsyncSession, shop_id: str, account_id: str) -> None:
    left = await session.scalar(select(func.count()).select_from(CallerNumber).where(
        CallerNumber.shop_id == shop_id, CallerNumber.account_id == account_id))
    if left:
        raise Conflict(f"account {account_id} still has caller numbers: remove them first")
